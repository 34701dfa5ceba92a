#!/usr/bin/env bash
# batch_streams.sh: would batching frames across streams into one plan run (model-instance-id
# batching in echoviewclassify) raise the cpu backend's throughput? For 4, 8 and 16 streams,
# frames per CPU-second of STREAMS batch-1 plans run round-robin (today: one plan per element)
# against one plan of batch STREAMS, alternated, on one thread (bench_engine streams). Prints
# the median of the repeats per model and stream count.
# usage: bench/batch_streams.sh [BUILD_DIR] [MODEL_DIR...]
#   BUILD_DIR defaults to build; models default to models/echo-2cell-96 and models/echo-2cell-32.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
build="${1:-$root/build}"
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=("$root/models/echo-2cell-96" "$root/models/echo-2cell-32")
echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for model in "${models[@]}"; do
  for n in 4 8 16; do
    # about the same work per run whatever the stream count: 480 frames (96 px), 4800 (32 px)
    frames=$((480 / n))
    case "$model" in *-32) frames=$((4800 / n)) ;; esac
    "$build/bench/bench_engine" streams "$model" "$n" "$frames" 5
  done
done > "$tmp/runs.jsonl"
python3 - "$tmp/runs.jsonl" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    j = json.loads(line)
    r = rows.setdefault((j["model"], j["streams"]), {"u": [], "b": [], "j": j})
    r["u"].append(j["unbatched_frames_per_cpu_s"])
    r["b"].append(j["batched_frames_per_cpu_s"])
print("| model | streams | unbatched (frames/CPU-s) | batched (frames/CPU-s) | batched / unbatched "
      "| arena: each plan / batched plan (MB) |")
print("|---|---|---|---|---|---|")
for (model, n), r in rows.items():
    u, b, j = statistics.median(r["u"]), statistics.median(r["b"]), r["j"]
    name = model.rstrip("/").split("/")[-1]
    print(f"| {name} | {n} | {u:.0f} | {b:.0f} | {b / u:.2f} | "
          f"{j['arena_bytes_unbatched_each'] / 1e6:.1f} / {j['arena_bytes_batched'] / 1e6:.1f} |")
PY
