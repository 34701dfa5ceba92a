#!/bin/sh
# Training throughput of echoview's executor vs PyTorch CPU on the same DARTS network, batch and
# thread count, measured in the same run (alternating, best of REPS for each, so that a busy
# shared machine penalises both alike). Writes JSON lines to stdout.
#
#   bench/train_vs_torch.sh [BUILD_DIR] [THREADS] [SIZES] [STEPS] [REPS]
#   bench/train_vs_torch.sh build 2 "32 96" 3 2
#
# Needs Debian's python3-torch (/usr/bin/python3) for the peer; the network is the reference
# NetworkCIFAR of tests/fixtures/gen_golden.py (DARTS_V2, layout normal,reduce,normal,reduce,
# C = 16, 1-channel input, 14 classes), Adam, cross-entropy, BN in training mode.
set -eu
build=${1:-build}
threads=${2:-2}
sizes=${3:-"32 96"}
steps=${4:-3}
reps=${5:-2}
here=$(cd "$(dirname "$0")" && pwd)
echo "{\"machine\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\",\"cores\":$(nproc),\"load_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
for size in $sizes; do
    r=0
    while [ "$r" -lt "$reps" ]; do
        "$build/tools/echoview" train --benchmark "$steps" --genotype DARTS_V2 --size "$size" --init-channels 16 \
            --layout normal,reduce,normal,reduce --batch 64 --threads "$threads"
        /usr/bin/python3 "$here/train_torch.py" --size "$size" --init-channels 16 \
            --layout normal,reduce,normal,reduce --batch 64 --threads "$threads" --steps "$steps"
        r=$((r + 1))
    done
done
echo "{\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
