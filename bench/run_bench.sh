#!/bin/bash
# run_bench.sh: echoview's cpu backend against ONNX Runtime (CPU provider, onnxruntime-node, on
# our exported ONNX of the same model) and PyTorch eager (the reference network of
# tests/fixtures/gen_golden.py with the same weights), in one run, batch 1, threads 1 and 2,
# for DARTS_V2 and PAPER128 at init channels 16 and 36, layout [normal, reduce, normal, reduce],
# gray input 32/64/96/128 px. Every configuration first checks that all three give the same
# logits (ORT and PyTorch vs echoview, 1e-4 relative).
#
#   cd bench && npm install --ignore-scripts onnxruntime-node   # once
#   bench/run_bench.sh [ITERATIONS]       # from the repository root; BUILD=DIR (default build)
# Needs a meson build with protobuf-c (protoc-c) found, node, /usr/bin/python3 with torch (Debian
# python3-torch). Writes bench/out/ (ignored by git): the bundles, ONNX files, results.jsonl,
# and prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
ITERS=${1:-300}
OUT=bench/out
mkdir -p "$OUT/models"
PY=/usr/bin/python3

# the engine-side driver is meson's (bench/meson.build), built with the library it times; the
# ONNX exporter is in the library when protobuf-c (protoc-c) was found at setup
BUILD=${BUILD:-build}
if [ ! -f "$BUILD/build.ninja" ]; then
  echo "run_bench.sh: no meson build in $BUILD (meson setup $BUILD first, or set BUILD=DIR)" >&2
  exit 1
fi
ninja -C "$BUILD" bench/bench_engine >&2
BENCH=$BUILD/bench/bench_engine

RESULTS=$OUT/results.jsonl
: > "$RESULTS"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores" >&2
for geno in DARTS_V2 PAPER128; do
  for c in 16 36; do
    for size in 32 64 96 128; do
      name=${geno,,}_c${c}_s${size}
      dir=$OUT/models/$name
      "$BENCH" make "$dir" "models/genotypes/$geno.yaml" "$c" "$size" 1 >&2
      "$BENCH" onnx "$dir" "$OUT/$name.onnx" >&2
      $PY bench/write_input.py "$OUT/input_$size.f32" $((size * size))
      "$BENCH" run "$dir" cpu 1 1 1 "$OUT/input_$size.f32" "$OUT/$name.logits" >/dev/null
      node bench/onnx_check.mjs "$OUT/$name.onnx" "$OUT/input_$size.f32" "$OUT/$name.logits" \
          1 1 "$size" "$size" >&2
      for threads in 1 2; do
        ours=$("$BENCH" run "$dir" cpu "$threads" 1 "$ITERS")
        ort=$(node bench/ort_bench.mjs "$OUT/$name.onnx" "$threads" "$ITERS" 1 "$size" "$size" 2>/dev/null)
        torch=$($PY bench/torch_bench.py "$dir" "$geno" "$threads" 50 \
                "$OUT/input_$size.f32" "$OUT/$name.logits")
        printf '{"genotype": "%s", "init_channels": %d, "size": %d, "threads": %d, "echoview": %s, "onnxruntime": %s, "pytorch": %s}\n' \
            "$geno" "$c" "$size" "$threads" "$ours" "$ort" "$torch" | tee -a "$RESULTS" >&2
      done
    done
  done
done

$PY - "$RESULTS" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| genotype | C | px | thr | MMAC | echoview p50 / p99 ms | GFLOP/s | ORT p50 / p99 ms | PyTorch p50 ms | ours/ORT | PyTorch/ours | RSS MB ours / ORT / PT |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    e, o, t = r["echoview"], r["onnxruntime"], r["pytorch"]
    el, ol, tl = e["latency_ms"], o["latency_ms"], t["latency_ms"]
    print(f"| {r['genotype']} | {r['init_channels']} | {r['size']} | {r['threads']} | {e['macs']/1e6:.0f} "
          f"| {el['p50']:.3f} / {el['p99']:.3f} | {e['gflops']:.1f} | {ol['p50']:.3f} / {ol['p99']:.3f} "
          f"| {tl['p50']:.1f} | {el['p50']/ol['p50']:.2f} | {tl['p50']/el['p50']:.0f} "
          f"| {e['peak_rss_kb']/1024:.0f} / {o['peak_rss_kb']/1024:.0f} / {t['peak_rss_kb']/1024:.0f} |")
PYEOF
