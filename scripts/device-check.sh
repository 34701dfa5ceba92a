#!/usr/bin/env bash
# device-check.sh: the cuda backend's check on a machine with a GPU (H100/H200, CUDA 13).
#
# Builds the engine, the cuda backend, tests/engine/test_cuda.c and bench/cuda_bench.c directly
# with nvcc and gcc (no meson needed), then runs:
#   1. test_golden (the engine itself is sane on this machine),
#   2. test_cuda (every kernel and whole networks against the reference backend),
#   3. bench/cuda_bench (latency with and without graph replay, throughput at batch 64/256),
#   4. bench/cuda_bench.py (PyTorch eager on the same networks and GPU), when torch with CUDA
#      is importable.
# Logs and CSV files go to $OUT (the device runner's output folder) or $BUILD/results.
#
#   scripts/device-check.sh            # everything
#   QUICK=1 scripts/device-check.sh    # fewer runs and sizes (a few minutes less)
#
# Needs: nvcc (CUDA_HOME, /usr/local/cuda or PATH), gcc, libyaml and jansson headers. cuDNN is
# looked for in CUDNN_HOME, the CUDA toolkit, /usr, and the Python package nvidia-cudnn; without
# it the backend is built without cuDNN (own kernels only).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-${TMPDIR:-/tmp}/echoview-device-build}
RESULTS=${OUT:-$BUILD/results}
mkdir -p "$BUILD" "$RESULTS"
QUICK=${QUICK:-0}

say() { printf '== %s\n' "$*"; }
die() { printf 'device-check: %s\n' "$*" >&2; exit 1; }

# ---- the machine ---------------------------------------------------------------------------
say "machine"
uname -a
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv || echo "nvidia-smi not found"

CUDA_HOME=${CUDA_HOME:-}
if [ -z "$CUDA_HOME" ]; then
    if [ -x /usr/local/cuda/bin/nvcc ]; then CUDA_HOME=/usr/local/cuda
    elif command -v nvcc >/dev/null; then CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
    else die "nvcc not found (set CUDA_HOME or PATH)"; fi
fi
NVCC=$CUDA_HOME/bin/nvcc
[ -x "$NVCC" ] || die "no nvcc at $NVCC"
"$NVCC" --version | tail -2
CUDA_LIBDIR=
for d in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets/x86_64-linux/lib"; do
    [ -f "$d/libcudart_static.a" ] && { CUDA_LIBDIR=$d; break; }
done
[ -n "$CUDA_LIBDIR" ] || die "libcudart_static.a not found under $CUDA_HOME"

# ---- cuDNN ----------------------------------------------------------------------------------
CUDNN_INC= CUDNN_LIB=
find_cudnn_in() { # include dir, lib dir
    [ -f "$1/cudnn.h" ] || return 1
    for f in "$2/libcudnn.so" "$2"/libcudnn.so.9*; do
        [ -f "$f" ] && { CUDNN_INC=$1; CUDNN_LIB=$f; return 0; }
    done
    return 1
}
[ -n "${CUDNN_HOME:-}" ] && find_cudnn_in "$CUDNN_HOME/include" "$CUDNN_HOME/lib"
[ -z "$CUDNN_LIB" ] && find_cudnn_in "$CUDA_HOME/include" "$CUDA_LIBDIR"
[ -z "$CUDNN_LIB" ] && find_cudnn_in "$CUDA_HOME/include" "$CUDA_HOME/lib"
[ -z "$CUDNN_LIB" ] && find_cudnn_in /usr/include /usr/lib/x86_64-linux-gnu
[ -z "$CUDNN_LIB" ] && find_cudnn_in /usr/include/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu
if [ -z "$CUDNN_LIB" ]; then
    for py in python3 /usr/bin/python3; do
        d=$("$py" -c "import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))" 2>/dev/null) || continue
        [ -n "$d" ] && find_cudnn_in "$d/include" "$d/lib" && break
    done
fi
CUDNN_CFLAGS= CUDNN_LINK=
if [ -n "$CUDNN_LIB" ]; then
    echo "cuDNN: $CUDNN_LIB (header in $CUDNN_INC)"
    CUDNN_CFLAGS="-DEV_CUDA_HAVE_CUDNN -I$CUDNN_INC"
    CUDNN_LINK="$CUDNN_LIB -Wl,-rpath,$(dirname "$CUDNN_LIB")"
    export LD_LIBRARY_PATH=$(dirname "$CUDNN_LIB")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
    echo "cuDNN: not found; building the backend without it (own kernels for every convolution)"
fi

# ---- the engine's C dependencies --------------------------------------------------------------
have_header() { printf '#include <%s>\n' "$1" | gcc -E -x c - >/dev/null 2>&1; }
missing=
have_header yaml.h || missing="$missing libyaml (yaml.h; Debian: libyaml-dev)"
have_header jansson.h || missing="$missing jansson (jansson.h; Debian: libjansson-dev)"
if [ -n "$missing" ]; then
    die "the engine needs these headers, missing here:$missing. Install them (offline: copy the
.deb files and dpkg -i) or run on a machine that has them; nothing was built."
fi

# ---- build ------------------------------------------------------------------------------------
say "build in $BUILD"
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -D_GNU_SOURCE -DEV_ENGINE_PRIVATE -Werror=implicit-function-declaration -pthread"
INC="-I$ROOT/base -I$ROOT/engine -I$ROOT/engine/cuda -I$CUDA_HOME/include -I$ROOT/tests/common"
ARCH=${CUDA_ARCH:-"-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]"}
objs=()
set -e
for src in engine/*.c; do
    obj=$BUILD/$(basename "$src" .c).o
    if [ "$src" = engine/preprocess.c ]; then
        # not needed here; another change may have it half-written
        gcc $CFLAGS $INC -DEV_HAVE_CUDA_BACKEND -c "$src" -o "$obj" 2>"$BUILD/preprocess.log" \
            && objs+=("$obj") || echo "note: engine/preprocess.c did not compile; left out (see $BUILD/preprocess.log)"
        continue
    fi
    gcc $CFLAGS $INC -DEV_HAVE_CUDA_BACKEND -c "$src" -o "$obj"
    objs+=("$obj")
done
for src in base/*.c; do  # the YAML reader (model.yaml) and the latency statistic (cuda_bench)
    obj=$BUILD/base_$(basename "$src" .c).o
    gcc $CFLAGS $INC -c "$src" -o "$obj"
    objs+=("$obj")
done
gcc $CFLAGS $INC -DEV_HAVE_CUDA_BACKEND $CUDNN_CFLAGS -c engine/cuda/backend_cuda.c -o "$BUILD/backend_cuda.o"
"$NVCC" -O3 -lineinfo $ARCH -Xcompiler -fPIC -I"$ROOT/engine/cuda" -c engine/cuda/kernels.cu -o "$BUILD/kernels.o"
rm -f "$BUILD/libechoview.a"
ar rcs "$BUILD/libechoview.a" "${objs[@]}" "$BUILD/backend_cuda.o" "$BUILD/kernels.o"
LIBS="$BUILD/libechoview.a $CUDA_LIBDIR/libcudart_static.a $CUDNN_LINK -lyaml -ljansson -lstdc++ -ldl -lrt -lpthread -lm"
for prog in tests/engine/test_cuda.c tests/engine/test_golden.c bench/cuda_bench.c; do
    gcc $CFLAGS $INC -DEV_HAVE_CUDA_BACKEND "$prog" -o "$BUILD/$(basename "$prog" .c)" $LIBS
done
set +e
echo "built: test_cuda test_golden cuda_bench"

# ---- run --------------------------------------------------------------------------------------
status=0
say "test_golden (reference engine)"
"$BUILD/test_golden" "$ROOT/tests/fixtures" >"$RESULTS/test_golden.log" 2>&1
rc=$?; tail -1 "$RESULTS/test_golden.log"; [ $rc -eq 0 ] || { echo "test_golden failed ($rc)"; status=1; }

say "test_cuda"
"$BUILD/test_cuda" "$ROOT/tests/fixtures" >"$RESULTS/test_cuda.log" 2>&1
rc=$?
grep -E '^FAIL' "$RESULTS/test_cuda.log" | head -40
grep -E 'kernel |CUDA device|plan \(cuda' "$RESULTS/test_cuda.log" | head -40
tail -1 "$RESULTS/test_cuda.log"
case $rc in
    0) echo "test_cuda: passed";;
    77) echo "test_cuda: SKIPPED (no usable GPU?)"; status=1;;
    *) echo "test_cuda: FAILED ($rc), full log in $RESULTS/test_cuda.log"; status=1;;
esac

if [ "$QUICK" = 1 ]; then bench_args="--runs 500 --sizes 32,128"; else bench_args="--runs 2000 --sizes 32,64,96,128"; fi
say "cuda_bench $bench_args"
"$BUILD/cuda_bench" $bench_args --csv "$RESULTS/cuda_bench.csv" 2>&1 | tee "$RESULTS/cuda_bench.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

say "PyTorch eager peer"
PY=
for py in python3 /usr/bin/python3; do
    "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null && { PY=$py; break; }
done
if [ -n "$PY" ]; then
    "$PY" bench/cuda_bench.py $bench_args --csv "$RESULTS/torch_bench.csv" 2>&1 | tee "$RESULTS/torch_bench.log"
else
    echo "torch with CUDA is not importable here; no PyTorch numbers"
fi

say "done: status $status, results in $RESULTS"
exit $status
