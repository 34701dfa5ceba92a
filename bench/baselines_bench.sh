#!/bin/bash
# baselines_bench.sh: the paper's baselines (ResNet18, DenseNet201; random weights at
# torchvision's definition) on echoview's cpu backend against ONNX Runtime (CPU provider,
# onnxruntime-node, on our exported ONNX of the same bundle), batch 1, 1 thread, in one run:
# first ORT's logits are checked against the cpu backend's (bench/onnx_check.mjs, 1e-4), then
# REPS alternating runs of each (ours, ORT, ours, ORT, ...), each ITERATIONS timed frames; prints
# every run's p50 and the median of the p50s.
#
#   cd bench && npm install --ignore-scripts onnxruntime-node   # once
#   bench/baselines_bench.sh [SIZE] [ITERATIONS] [REPS] [ARCH...]   # defaults 128 50 3 resnet18 densenet201
# Needs a meson build (BUILD=DIR, default build) with protobuf-c found (the ONNX exporter) and
# node. Writes bench/out/baselines/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-128}
ITERS=${2:-50}
REPS=${3:-3}
shift $(($# < 3 ? $# : 3))
ARCHS=${*:-resnet18 densenet201}
BUILD=${BUILD:-build}
OUT=bench/out/baselines
mkdir -p "$OUT"
ninja -C "$BUILD" bench/bench_engine tools/echoview >&2
BENCH=$BUILD/bench/bench_engine
p50() { sed -n 's/.*"p50": *\([0-9.]*\).*/\1/p'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for arch in $ARCHS; do
  dir=$OUT/${arch}_s$SIZE
  "$BENCH" make "$dir" "$arch" 0 "$SIZE" 1 >&2
  "$BUILD/tools/echoview" export --model "$dir" --format onnx --out "$dir.onnx" >&2
  /usr/bin/python3 bench/write_input.py "$OUT/input.f32" $((SIZE * SIZE))
  "$BENCH" run "$dir" cpu 1 1 1 "$OUT/input.f32" "$OUT/logits.f32" > /dev/null
  node bench/onnx_check.mjs "$dir.onnx" "$OUT/input.f32" "$OUT/logits.f32" 1 1 "$SIZE" "$SIZE" >&2
  ours="" ort=""
  for rep in $(seq "$REPS"); do
    ours="$ours $("$BENCH" run "$dir" cpu 1 1 "$ITERS" | p50)"
    ort="$ort $(node bench/ort_bench.mjs "$dir.onnx" 1 "$ITERS" 1 "$SIZE" "$SIZE" | tr -d ' ' | sed 's/"p50":/"p50": /' | p50)"
  done
  mo=$(echo "$ours" | median) mr=$(echo "$ort" | median)
  echo "$arch ${SIZE}px: echoview cpu p50 ms:$ours (median $mo); ORT p50 ms:$ort (median $mr); ours/ORT $(awk -v a="$mo" -v b="$mr" 'BEGIN {printf "%.2f", a / b}')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
