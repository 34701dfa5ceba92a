#!/usr/bin/env bash
# daemon_soak.sh BUILD [SECONDS]: resident memory of echoviewd over a soak (default 1800 s)
# with a steady simulated RTP stream, a phantom stream, and a stream whose sender is cut every
# few seconds (stall -> restart), plus periodic HTTP and event clients. Prints "t_s rss_kib
# restarts" every 15 s.
set -euo pipefail
build=$1; secs=${2:-1800}
root=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH=$root/$build/plugins
model=${MODEL:-$root/tests/fixtures/golden/darts_v2_nrnr_g1}
tmp=$(mktemp -d); pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
cat > "$tmp/c.yaml" <<YAML
http: {port: 18333}
supervision: {stall-timeout: 1, restart-delay: 0.2, restart-delay-max: 1}
classifier: {model-file: $model, backend: cpu}
simulate:
  - {id: s1, port: 15333, width: 320, height: 240, framerate: 15, properties: {schedule: "A4CH-LV:2,PLAX-full:2"}}
streams:
  - {id: rtp, source: {type: rtp-raw, port: 15333, width: 320, height: 240}}
  - {id: flaky, source: {type: rtp-raw, port: 15334, width: 64, height: 48}}
  - {id: local, source: {type: phantom, width: 160, height: 120, framerate: 10}}
YAML
"$root/$build/daemon/echoviewd" --config "$tmp/c.yaml" > "$tmp/log" 2>&1 & pid=$!
start=$SECONDS; next=0
while [ $((SECONDS - start)) -lt $secs ]; do
  timeout 3 gst-launch-1.0 -q videotestsrc is-live=true ! video/x-raw,width=64,height=48,format=I420,framerate=15/1 \
    ! rtpvrawpay ! udpsink host=127.0.0.1 port=15334 >/dev/null 2>&1 || true
  curl -s -m 5 http://127.0.0.1:18333/api/v1/streams >/dev/null || true
  timeout 1 curl -sN http://127.0.0.1:18333/api/v1/events >/dev/null || true
  sleep 2
  t=$((SECONDS - start))
  if [ $t -ge $next ]; then
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    r=$(curl -s -m 5 http://127.0.0.1:18333/api/v1/streams/flaky | python3 -c 'import json,sys; print(json.load(sys.stdin)["restarts"])')
    echo "$t $rss $r"
    next=$((next + 15))
  fi
done
