#!/usr/bin/env bash
# daemon_valgrind.sh BUILD_DIR [SECONDS]: runs echoviewd under valgrind (memcheck, full leak
# check) for SECONDS (default 60) with a running RTP stream, a phantom stream, a stream whose
# sender is cut every 5 s (stall, restart), HTTP and event clients and a SIGHUP reload, then
# stops it with SIGTERM. Prints valgrind's leak summary; "definitely lost: 0" is the bar.
set -euo pipefail
build=${1:?usage: daemon_valgrind.sh BUILD_DIR [SECONDS]}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH=$root/$build/plugins G_SLICE=always-malloc G_DEBUG=gc-friendly
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model=${MODEL:-$root/tests/fixtures/golden/darts_v2_nrnr_g1}
cat > "$tmp/c.yaml" <<YAML
http: {port: 18111}
supervision: {stall-timeout: 1, restart-delay: 0.2, restart-delay-max: 1}
classifier: {model-file: $model, backend: cpu}
simulate:
  - {id: s1, port: 15111, width: 320, height: 240, framerate: 15, properties: {schedule: "A4CH-LV:2,PLAX-full:2"}}
streams:
  - id: rtp
    source: {type: rtp-raw, port: 15111, width: 320, height: 240}
  - id: flaky
    source: {type: rtp-raw, port: 15112, width: 64, height: 48}
  - id: local
    source: {type: phantom, width: 160, height: 120, framerate: 10}
YAML
supp=()
[ -f /usr/share/glib-2.0/valgrind/glib.supp ] && supp=(--suppressions=/usr/share/glib-2.0/valgrind/glib.supp)
valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  "${supp[@]}" --num-callers=30 --log-file="$tmp/vg.log" \
  "$root/$build/daemon/echoviewd" --config "$tmp/c.yaml" > "$tmp/d.log" 2>&1 &
pid=$!
end=$((SECONDS + secs))
n=0
while [ $SECONDS -lt $end ]; do
  # the flaky stream: 3 s of frames, then silence (stall -> restart)
  timeout 3 gst-launch-1.0 -q videotestsrc is-live=true ! video/x-raw,width=64,height=48,format=I420,framerate=15/1 \
    ! rtpvrawpay ! udpsink host=127.0.0.1 port=15112 >/dev/null 2>&1 || true
  curl -s -m 5 http://127.0.0.1:18111/api/v1/streams >/dev/null || true
  curl -s -m 5 http://127.0.0.1:18111/metrics >/dev/null || true
  timeout 2 curl -sN http://127.0.0.1:18111/api/v1/events >/dev/null || true
  n=$((n + 1))
  [ $((n % 4)) -eq 0 ] && kill -HUP $pid
  sleep 2
done
kill -TERM $pid
wait $pid || true
grep -E "definitely lost|indirectly lost|possibly lost|ERROR SUMMARY" "$tmp/vg.log"
grep -c "restart\|stalled" "$tmp/d.log" | sed 's/^/state-change log lines: /'
cp "$tmp/vg.log" "${VG_LOG:-/tmp/echoviewd-valgrind.log}"
