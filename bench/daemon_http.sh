#!/usr/bin/env bash
# daemon_http.sh BUILD MODEL [WIDTH HEIGHT]: HTTP throughput and latency of /api/v1/streams
# (and /healthz, /metrics as peers) under wrk while 4 rtp-raw streams run at 30 fps
# (default 320x240 I420 from videotestsrc senders on loopback).
set -euo pipefail
build=$1; model=$(realpath "$2"); w=${3:-320}; h=${4:-240}
root=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH=$root/$build/plugins
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port=18222
{ echo "http: {port: $port, connection-limit: 256}"
  echo "classifier: {model-file: $model, backend: cpu}"
  echo "streams:"
  for i in 0 1 2 3; do echo "  - {id: s$i, source: {type: rtp-raw, port: $((15220 + i)), width: $w, height: $h}}"; done
} > "$tmp/c.yaml"
"$root/$build/daemon/echoviewd" --config "$tmp/c.yaml" > "$tmp/log" 2>&1 & pids+=($!)
for i in 0 1 2 3; do
  gst-launch-1.0 -q videotestsrc is-live=true pattern=ball ! video/x-raw,width=$w,height=$h,format=I420,framerate=30/1 \
    ! rtpvrawpay ! udpsink host=127.0.0.1 port=$((15220 + i)) > /dev/null 2>&1 & pids+=($!)
done
sleep 6
curl -s http://127.0.0.1:$port/api/v1/status | head -c 400; echo
for path in /api/v1/streams /healthz /metrics; do
  echo "== wrk -t2 -c16 -d15s --latency $path"
  wrk -t2 -c16 -d15s --latency "http://127.0.0.1:$port$path" | grep -E "Requests/sec|Latency |50%|99%|requests in|Non-2xx"
done
curl -s http://127.0.0.1:$port/api/v1/streams | python3 -c 'import json,sys; print([(s["id"], s["state"], round(s["fps"],1), s["dropped"]) for s in json.load(sys.stdin)["streams"]])'
