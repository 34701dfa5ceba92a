#!/usr/bin/env bash
# run.sh: installs what is missing, builds, and runs echoviewd on conf/echoviewd.yaml: a built-in
# synthetic scanner sends phantom frames as RFC 4175 RTP over loopback into the `rtp-raw`
# stream `scanner-1`, classified by the shipped model. Ctrl-C stops it.
#   bash scripts/run.sh [extra echoviewd options]
# Environment: BUILD_DIR (default build), CONFIG (default conf/echoviewd.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BUILD_DIR:-build}
config=${CONFIG:-conf/echoviewd.yaml}

bash scripts/install-deps.sh
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Dcuda=auto
fi
ninja -C "$build"
[ -x "$build/daemon/echoviewd" ] || { echo "run.sh: echoviewd was not built (GStreamer, libmicrohttpd, libsystemd or libmosquitto missing?)" >&2; exit 1; }

export GST_PLUGIN_PATH="$root/$build/plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
"$build/daemon/echoviewd" --check-config "$config"
port=$(sed -n 's/^  port: *\([0-9]*\).*/\1/p' "$config" | head -1)
port=${port:-8088}
cat <<MSG

  live page:   http://127.0.0.1:$port/
  live view:   curl -s http://127.0.0.1:$port/api/v1/streams/scanner-1
  all streams: curl -s http://127.0.0.1:$port/api/v1/streams
  events:      curl -sN http://127.0.0.1:$port/api/v1/events
  metrics:     curl -s http://127.0.0.1:$port/metrics

MSG
exec "$build/daemon/echoviewd" --config "$config" "$@"
