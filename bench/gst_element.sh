#!/usr/bin/env bash
# gst_element.sh: what echoviewclassify costs per frame beside the bare engine, whether one CPU
# core keeps up with a live 30 fps 800x600 stream in sync mode, and whether async keeps video
# latency flat when inference is slower than the frame rate.
# usage: bench/gst_element.sh [BUILD_DIR] [MODEL_DIR]
#   BUILD_DIR defaults to build-gst; MODEL_DIR to models/echo-2cell-96, else a 96x96 stand-in
#   made from a fixture bundle (random weights, init_channels 4: cheaper than the real model).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-gst}"
model="${2:-$root/models/echo-2cell-96}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "$model/model.yaml" ]; then
  fixture="$root/tests/fixtures/golden/darts_v2_nrnr_g1"
  mkdir -p "$tmp/standin96"
  sed 's/input: {width: 16, height: 16/input: {width: 96, height: 96/; s/^name: .*/name: standin-96/' \
    "$fixture/model.yaml" > "$tmp/standin96/model.yaml"
  cp "$fixture/weights.safetensors" "$tmp/standin96/"
  model="$tmp/standin96"
  echo "# model: 96x96 stand-in (models/echo-2cell-96 not found)"
fi
export GST_PLUGIN_PATH="$build/plugins"
echo "# machine: $(lscpu | sed -n 's/^Model name: *//p') , $(nproc) cores; GStreamer $(pkg-config --modversion gstreamer-1.0)"
echo "# bare engine on the same model (echoview bench):"
"$build/tools/echoview" bench --model "$model" --backend cpu --threads 1 2>/dev/null | head -c 600 || true
echo
exec /usr/bin/python3 "$root/bench/gst_element.py" "$model"
