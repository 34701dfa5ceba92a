#!/bin/sh
# Search-step throughput (images/s) of `echoview search` vs PyTorch CPU (Debian python3-torch)
# on the same DARTS supernet, batch, order and thread count, measured in the same run
# (alternating, REPS rounds, so that a busy shared machine penalises both alike). One search
# step = one architecture step on a validation batch + one weight step on a training batch.
# Writes JSON lines to stdout; the ratio is the last line.
#
#   bench/search_vs_torch.sh [BUILD_DIR] [THREADS] [SIZE] [C] [LAYERS] [BATCH] [ORDER] [STEPS] [REPS]
#   bench/search_vs_torch.sh build 2 32 8 5 16 1 2 1
#
# The peer is bench/search_torch.py (the reference model_search.py + architect.py on the ops of
# tests/fixtures/gen_golden.py), 1-channel input, 14 classes, random frames.
set -eu
build=${1:-build}
threads=${2:-2}
size=${3:-32}
c=${4:-8}
layers=${5:-5}
batch=${6:-16}
order=${7:-1}
steps=${8:-2}
reps=${9:-1}
here=$(cd "$(dirname "$0")" && pwd)
echo "{\"machine\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\",\"cores\":$(nproc),\"load_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
best_ev=0
best_pt=0
r=0
while [ "$r" -lt "$reps" ]; do
    ev=$("$build/tools/echoview" search --benchmark "$steps" --size "$size" --init-channels "$c" \
        --layers "$layers" --batch "$batch" --order "$order" --threads "$threads")
    echo "$ev"
    pt=$(/usr/bin/python3 "$here/search_torch.py" --size "$size" --init-channels "$c" \
        --layers "$layers" --batch "$batch" --order "$order" --threads "$threads" \
        --steps "$steps" --warmup 1)
    echo "$pt"
    best_ev=$(printf '%s\n%s\n' "$ev" "$best_ev" | sed -n 's/.*"images_per_second":\([0-9.]*\).*/\1/p;/^[0-9.]*$/p' | sort -g | tail -1)
    best_pt=$(printf '%s\n%s\n' "$pt" "$best_pt" | sed -n 's/.*"images_per_second": \([0-9.]*\).*/\1/p;/^[0-9.]*$/p' | sort -g | tail -1)
    r=$((r + 1))
done
echo "{\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"echoview_images_per_second\":$best_ev,\"pytorch_images_per_second\":$best_pt,\"ratio\":$(echo "$best_ev $best_pt" | awk '{printf "%.2f", $1 / $2}')}"
