#!/bin/sh
# Reproduces the shipped phantom models in models/echo-*/ and their evaluation reports
# (docs/ACCURACY.md): the exact commands that made them. Deterministic: the same commands give
# the same bytes on any thread count (the executor's results do not depend on it).
#
#   bench/train_models.sh [BUILD_DIR] [WORK_DIR] [THREADS]
#
# The 96 px networks start from the weights of their 32 px versions (progressive resizing: the
# DARTS networks are fully convolutional, so the tensors are the same at any input size), and
# the 2-cell 96 px network continues on a second, larger phantom set; this was what the 2-core
# shared development machine allowed in the time given (about 40 minutes per 96 px network).
set -eu
build=${1:-build}
work=${2:-/tmp/echoview-models}
threads=${3:-2}
ev="$build/tools/echoview"
mkdir -p "$work"

# data: 100 patients (60 train / 20 val / 20 test), 14 views, 6 frames per patient and view,
# rendered at 128 px (sector framing) and area-resized by the loader to each model's input.
# ph300: 300 other patients (seed 8), 3 frames each, for the second 96 px stage.
"$ev" phantom --out "$work/ph100" --patients 100 --frames-per-patient 6 --seed 7
"$ev" phantom --out "$work/ph300" --patients 300 --frames-per-patient 3 --seed 8

c32="--data $work/ph100 --size 32 --init-channels 16 --epochs 30 --lr 1e-3 --cosine --patience 8
     --steps-per-epoch 40 --seed 1 --threads $threads"
"$ev" train $c32 --out "$work/echo-2cell-32" --layout normal,reduce,normal,reduce  # stopped early (epoch 22)
"$ev" train $c32 --out "$work/echo-1cell-32" --layout normal,reduce --stop-after 15
"$ev" train $c32 --out "$work/init-2cell-32" --name echo-2cell-32 --layout normal,reduce,normal,reduce \
    --stop-after 10

c96="--size 96 --init-channels 16 --threads $threads --val-frames 560 --steps-per-epoch 20
     --epochs 15 --lr 5e-4 --cosine --patience 5 --seed 1"
"$ev" train $c96 --data "$work/ph100" --out "$work/echo-1cell-96" --layout normal,reduce \
    --init-from "$work/echo-1cell-32"
"$ev" train $c96 --data "$work/ph100" --out "$work/stage1-2cell-96" --name echo-2cell-96 \
    --layout normal,reduce,normal,reduce --init-from "$work/init-2cell-32" --stop-after 11
"$ev" train --data "$work/ph300" --out "$work/echo-2cell-96" --size 96 --init-channels 16 \
    --layout normal,reduce,normal,reduce --epochs 12 --lr 3e-4 --cosine --patience 4 \
    --steps-per-epoch 30 --val-frames 700 --threads "$threads" --seed 2 \
    --init-from "$work/stage1-2cell-96"

# stage 3 (a later session, idle machine): 25 more short epochs on ph300
mv "$work/echo-2cell-96" "$work/stage2-2cell-96"
"$ev" train --data "$work/ph300" --out "$work/echo-2cell-96" --name echo-2cell-96 --size 96 \
    --init-channels 16 --layout normal,reduce,normal,reduce --epochs 25 --lr 3e-4 --cosine \
    --patience 6 --steps-per-epoch 30 --val-frames 700 --threads "$threads" --seed 3 \
    --init-from "$work/stage2-2cell-96"
for m in echo-1cell-32 echo-2cell-32 echo-1cell-96 echo-2cell-96; do
    "$ev" eval --model "$work/$m" --data "$work/ph100" --split test --out "$work/$m"
done
