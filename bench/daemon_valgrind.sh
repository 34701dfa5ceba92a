#!/usr/bin/env bash
# daemon_valgrind.sh BUILD_DIR [SECONDS]: runs echoviewd under valgrind (memcheck, full leak
# check, --track-origins=yes) for SECONDS (default 60) with a running RTP stream, a phantom
# stream, a stream whose sender is cut every 5 s (stall, restart), one /api/v1/events client held
# open the whole run (it receives every per-second `stats` event), short event clients, every
# HTTP endpoint in turn and a SIGHUP reload, then stops it with SIGTERM. Prints valgrind's
# summary; "ERROR SUMMARY: 0 errors" and "definitely lost: 0" are the bar. Reports about code
# outside echoview, each explained, are suppressed by bench/daemon_valgrind.supp. The whole log
# is kept in $VG_LOG (default /tmp/echoviewd-valgrind.log).
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
    source: {type: rtp-raw, port: 15111, width: 320, height: 240, framerate: 15}
  - id: flaky
    source: {type: rtp-raw, port: 15112, width: 64, height: 48, framerate: 15}
  - id: local
    source: {type: phantom, width: 160, height: 120, framerate: 10}
YAML
supp=(--suppressions="$root/bench/daemon_valgrind.supp")
[ -f /usr/share/glib-2.0/valgrind/glib.supp ] && supp+=(--suppressions=/usr/share/glib-2.0/valgrind/glib.supp)
valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --track-origins=yes "${supp[@]}" --num-callers=30 --log-file="$tmp/vg.log" \
  "$root/$build/daemon/echoviewd" --config "$tmp/c.yaml" > "$tmp/d.log" 2>&1 &
pid=$!
url=http://127.0.0.1:18111
for _ in $(seq 120); do curl -s -m 2 "$url/healthz" >/dev/null && break; sleep 1; done
# one event client for the whole run: hello, every stats/state/view event, keepalives
curl -sN "$url/api/v1/events" > "$tmp/events.txt" 2>/dev/null &
events=$!
end=$((SECONDS + secs))
n=0
while [ $SECONDS -lt $end ]; do
  # the flaky stream: 3 s of frames losing 10% of their packets (incomplete frames out of
  # rtpvrawdepay: the origin of the uninitialised `stats` values once seen here), then silence
  # (stall -> restart)
  timeout 3 gst-launch-1.0 -q videotestsrc is-live=true ! video/x-raw,width=64,height=48,format=I420,framerate=15/1 \
    ! rtpvrawpay mtu=400 ! identity drop-probability=0.1 ! udpsink host=127.0.0.1 port=15112 \
    >/dev/null 2>&1 || true
  for path in / /healthz /readyz /api/v1/status /api/v1/streams /api/v1/streams/rtp \
      /api/v1/streams/local /api/v1/streams/nope /metrics /nope; do
    curl -s -m 5 "$url$path" >/dev/null || true
  done
  curl -s -m 5 -I "$url/api/v1/streams" >/dev/null || true
  timeout 2 curl -sN "$url/api/v1/events" >/dev/null || true
  n=$((n + 1))
  [ $((n % 4)) -eq 0 ] && kill -HUP $pid
  sleep 2
done
kill -TERM $pid
wait $pid || true
wait $events || true
grep -c "^event: stats" "$tmp/events.txt" | sed 's/^/stats events received by the held client: /'
grep -E "definitely lost|indirectly lost|possibly lost|ERROR SUMMARY" "$tmp/vg.log"
grep -c "restart\|stalled" "$tmp/d.log" | sed 's/^/state-change log lines: /'
# the fps check (source.framerate declared above): valgrind's pace makes streams degraded
grep -c "fps classified for" "$tmp/d.log" | sed 's/^/low-fps degraded log lines: /' || true
cp "$tmp/vg.log" "${VG_LOG:-/tmp/echoviewd-valgrind.log}"
