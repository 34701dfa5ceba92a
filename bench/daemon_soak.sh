#!/usr/bin/env bash
# daemon_soak.sh BUILD [SECONDS]: resident memory of echoviewd over a soak (default 1800 s)
# with a steady simulated RTP stream, a phantom stream, and a stream whose sender is cut every
# few seconds (stall -> restart), plus periodic HTTP and event clients. Prints "t_s rss_kib
# restarts anon_kib" every 15 s (anon_kib: RssAnon, the heap and stacks without the mapped
# libraries, whose pages the kernel may drop and re-read under memory pressure), then the least-squares slope of RSS and of RssAnon over the last two thirds of
# the run in KiB per hour, the restarts of the flaky stream in that window and bytes per
# restart: "flat" is a slope near zero there, not a feeling.
# Environment: SOAK_PORT_OFFSET (default 0) is added to every port (HTTP 18333, RTP 15333 and
# 15334) so that two soaks can run side by side; SOAK_ENV ("VAR=value ..."), e.g.
# SOAK_ENV="GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0 G_SLICE=always-malloc", is set for
# echoviewd only (not for the senders and clients). The daemon's pid is printed to stderr.
set -euo pipefail
build=$1; secs=${2:-1800}
off=${SOAK_PORT_OFFSET:-0}
http=$((18333 + off)); rtp=$((15333 + off)); flaky=$((15334 + off))
read -r -a daemon_env <<< "${SOAK_ENV:-}"
root=$(cd "$(dirname "$0")/.." && pwd)
export GST_PLUGIN_PATH=$root/$build/plugins
model=${MODEL:-$root/tests/fixtures/golden/darts_v2_nrnr_g1}
tmp=$(mktemp -d); pid=
samples=$tmp/samples
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
cat > "$tmp/c.yaml" <<YAML
http: {port: $http}
supervision: {stall-timeout: 1, restart-delay: 0.2, restart-delay-max: 1}
classifier: {model-file: $model, backend: cpu}
simulate:
  - {id: s1, port: $rtp, width: 320, height: 240, framerate: 15, properties: {schedule: "A4CH-LV:2,PLAX-full:2"}}
streams:
  - {id: rtp, source: {type: rtp-raw, port: $rtp, width: 320, height: 240, framerate: 15}}
  - {id: flaky, source: {type: rtp-raw, port: $flaky, width: 64, height: 48, framerate: 15}}
  - {id: local, source: {type: phantom, width: 160, height: 120, framerate: 10}}
YAML
env ${daemon_env[@]+"${daemon_env[@]}"} "$root/$build/daemon/echoviewd" --config "$tmp/c.yaml" > "$tmp/log" 2>&1 & pid=$!
echo "# echoviewd pid $pid${SOAK_ENV:+ ($SOAK_ENV)}" >&2
start=$SECONDS; next=0
while [ $((SECONDS - start)) -lt $secs ]; do
  timeout 3 gst-launch-1.0 -q videotestsrc is-live=true ! video/x-raw,width=64,height=48,format=I420,framerate=15/1 \
    ! rtpvrawpay ! udpsink host=127.0.0.1 port=$flaky >/dev/null 2>&1 || true
  curl -s -m 5 http://127.0.0.1:$http/api/v1/streams >/dev/null || true
  timeout 1 curl -sN http://127.0.0.1:$http/api/v1/events >/dev/null || true
  sleep 2
  t=$((SECONDS - start))
  if [ $t -ge $next ]; then
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    anon=$(awk '/RssAnon/ {print $2}' /proc/$pid/status)
    r=$(curl -s -m 5 http://127.0.0.1:$http/api/v1/streams/flaky \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["restarts"])' 2>/dev/null || echo -)
    echo "$t $rss $r $anon" | tee -a "$samples"
    next=$((next + 15))
  fi
done
# Slope over the samples of the last two thirds (the first third holds the warm-up: pools,
# caches, arenas reaching their working size).
awk -v from=$((secs / 3)) '
  $1 >= from && $3 != "-" {
    n++; sx += $1; sy += $2; sa += $4; sxx += $1 * $1; sxy += $1 * $2; sxa += $1 * $4
    if (n == 1) { t0 = $1; rss0 = $2; r0 = $3 } t1 = $1; rss1 = $2; r1 = $3 }
  END {
    if (n < 3) { print "too few samples for a slope"; exit 1 }
    d = n * sxx - sx * sx
    rss_slope = (n * sxy - sx * sy) / d * 3600; anon_slope = (n * sxa - sx * sa) / d * 3600
    printf "window %d..%d s: RSS %d -> %d KiB, slope %+.0f KiB/h (RssAnon %+.0f KiB/h); ",
      t0, t1, rss0, rss1, rss_slope, anon_slope
    printf "%d restarts of the flaky stream in the window (%d in all)", r1 - r0, r1
    if (r1 > r0)
      printf ", %+.0f bytes per restart (RssAnon %+.0f)", rss_slope * (t1 - t0) / 3.6 * 1.024 \
        / (r1 - r0), anon_slope * (t1 - t0) / 3.6 * 1.024 / (r1 - r0)
    printf "\n" }' "$samples"
