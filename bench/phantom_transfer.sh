#!/bin/sh
# Equal-budget transfer comparison of the phantom's versions (docs/ACCURACY.md): the same
# recipe (data size, seeds, network, schedule) trained once on version-1 and once on version-2
# phantom frames, then scored on a folder of real frames with bench/real_frames_eval.py. The
# real frames are only read for scoring: nothing is fitted on them.
#
#   bench/phantom_transfer.sh REAL_FRAMES_DIR [BUILD_DIR] [WORK_DIR] [EPOCHS] [STEPS] [SEED]
#
# Data: 100 patients x 14 views x 2 frames of 640x480 scanner frames per version (seed 11), split
# by patient 60/20/20; training crops with --auto-roi (the roi_* columns are dropped). Network:
# DARTS_V2, 2 cells (normal, reduce, normal, reduce), C = 16, 32 px, Adam 1e-3 with cosine
# decay, EPOCHS x STEPS batches of 64 (default 8 x 20: what a shared 2-core machine finishes in
# under half an hour), validation on 280 frames. The two trainings run side by side on one
# thread each, so they see the same machine. SEED is the training seed (the data stay seed 11).
set -eu
real=$1
build=${2:-build}
work=${3:-/tmp/echoview-transfer}
epochs=${4:-8}
steps=${5:-20}
seed=${6:-1}
ev="$build/tools/echoview"
mkdir -p "$work"
for v in 1 2; do
    "$ev" phantom --out "$work/v$v" --patients 100 --frames-per-patient 2 --seed 11 \
        --full-frame 640x480 --threads 2 --phantom-version $v
    awk -F, 'BEGIN { OFS = "," } { print $1, $2, $3, $4, $5 }' "$work/v$v/manifest.csv" \
        > "$work/v$v/manifest-auto.csv"
done
for v in 1 2; do
    "$ev" train --data "$work/v$v/manifest-auto.csv" --auto-roi --init-channels 16 --threads 1 \
        --quiet --genotype DARTS_V2 --out "$work/model-v$v" --name "xfer-v$v" --size 32 \
        --layout normal,reduce,normal,reduce --epochs "$epochs" --lr 1e-3 --cosine --patience 0 \
        --steps-per-epoch "$steps" --val-frames 280 --seed "$seed" &
done
wait
for v in 1 2; do
    "$ev" eval --model "$work/model-v$v" --data "$work/v$v/manifest-auto.csv" --auto-roi \
        --split test --out "$work/model-v$v"
    python3 bench/real_frames_eval.py --echoview "$ev" --model "$work/model-v$v" "$real" \
        --json "$work/real-v$v.json" > "$work/real-v$v.md"
done
