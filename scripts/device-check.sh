#!/usr/bin/env bash
# device-check.sh: the cuda backend's check, built here and run on a GPU machine.
#
#   scripts/device-check.sh --prepare DIR   # here (nvcc 13, cudnn.h, the Debian -dev packages)
#   scripts/device-check.sh --run DIR       # on the GPU machine (QUICK=1: the short version)
#
# --prepare configures a meson build (BUILD, default build-device) with the cuda backend for every
# GPU generation nvcc offers of sm_80, sm_90 and sm_100, libyaml and jansson linked statically
# (-Dstatic_deps=true) and cudart statically (always), builds test_golden, test_cuda and
# cuda_bench from that build's own target lists, and copies them with the fixtures and the
# PyTorch peer script into DIR. The binaries need only the driver, libc and libstdc++; cuDNN is
# loaded at run time when one is found (engine/cuda/cudnn_loader.h). DIR stays near 10 MiB.
#
# --run DIR, on a bare GPU image (CUDA, PyTorch with its cuDNN wheel, Python; no -dev packages,
# no network), runs in order, each step under a time limit:
#   1. test_golden: the engine agrees with PyTorch's golden fixtures on this machine;
#   2. test_cuda: every kernel and whole networks against the reference backend, fp32 and fp16,
#      batches 1/3/64, graph replay on and off (exit 77 here means no GPU: the script stops
#      with exit 77, which is what CI's dry run on a CPU machine checks);
#   3. cuda_bench: batch-1 latency with and without graph replay, batch 64/256 throughput, fp16;
#   4. bench/cuda_bench.py: PyTorch eager on the same networks and GPU, when torch sees the GPU.
# Ends with one table. Logs and CSV files go to $OUT (the device runner's output folder), else
# DIR/results. Exit status: 0 all passed, 77 no GPU, 1 a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf '== %s\n' "$*"; }
die() {
    printf 'device-check: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

# libraries a prepared binary may need: the C library, libstdc++ and nothing else
ALLOWED_NEEDED='^(libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+)\.so\.[0-9]+$|^ld-linux-x86-64\.so\.2$'

prepare() {
    local dir=$1
    local build=${BUILD:-build-device}
    local nvcc logs
    logs=$(mktemp -d "${TMPDIR:-/tmp}/device-check.XXXXXX")
    nvcc=$(command -v nvcc || true)
    [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
    [ -n "$nvcc" ] || die "nvcc not found (PATH or /usr/local/cuda/bin): the cuda backend cannot be built here"
    export PATH="$(dirname "$nvcc"):$PATH"
    local offered arches=
    offered=$("$nvcc" --list-gpu-arch 2>/dev/null | tr '\n' ' ')
    for a in 80 90 100; do
        case " $offered " in *" compute_$a "*) arches="${arches:+$arches,}$a" ;; esac
    done
    [ -n "$arches" ] || die "nvcc offers none of compute_80/90/100 (it offers: $offered)"
    say "prepare: meson build in $build (gpu_arch=$arches, static libyaml/jansson/cudart)"
    local setup=(-Dcuda=enabled -Dstatic_deps=true -Dgpu_arch="$arches" -Dfuzzers=disabled)
    if [ -f "$build/build.ninja" ]; then
        meson configure "$build" "${setup[@]}" >/dev/null || die "meson configure $build failed"
    else
        meson setup "$build" "${setup[@]}" >"$logs/setup.log" 2>&1 ||
            { tail -30 "$logs/setup.log"; die "meson setup $build failed (log: $logs/setup.log)"; }
    fi
    # the three programs, by their meson target names (meson knows their sources and libraries)
    local targets=(test_golden test_cuda cuda_bench) files=()
    local t f
    for t in "${targets[@]}"; do
        f=$(meson introspect --targets "$build" |
            python3 -c "import json,sys; print(next(x['filename'][0] for x in json.load(sys.stdin) if x['name']=='$t'))") ||
            die "meson build $build has no target $t (is the cuda backend on?)"
        files+=("$f")
    done
    nice meson compile -C "$build" "${targets[@]}" >"$logs/compile.log" 2>&1 ||
        { tail -30 "$logs/compile.log"; die "building ${targets[*]} failed (log: $logs/compile.log)"; }

    rm -rf "$dir"
    mkdir -p "$dir/bin" "$dir/tests" "$dir/bench"
    for f in "${files[@]}"; do
        cp "$f" "$dir/bin/"
        strip --strip-debug "$dir/bin/$(basename "$f")"
    done
    cp -r tests/fixtures "$dir/tests/fixtures"
    find "$dir/tests/fixtures" -name __pycache__ -prune -exec rm -rf {} +
    cp bench/cuda_bench.py "$dir/bench/"

    # the binaries must run where only the driver, libc and libstdc++ exist
    local bad=0 lib glibc
    for f in "$dir"/bin/*; do
        for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            if ! [[ $lib =~ $ALLOWED_NEEDED ]]; then
                echo "device-check: $(basename "$f") needs $lib, which a bare GPU image does not have" >&2
                bad=1
            fi
        done
    done
    [ $bad -eq 0 ] || die "prepared binaries have dependencies outside libc/libstdc++"
    glibc=$(objdump -T "$dir"/bin/* | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)

    {
        echo "echoview device check, prepared $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
        echo "nvcc: $("$nvcc" --version | tail -1)"
        echo "gpu generations: sm_${arches//,/, sm_} (PTX of the newest for later GPUs)"
        echo "needs: the NVIDIA driver, glibc >= ${glibc#GLIBC_}, libstdc++; cuDNN 9 optional (loaded at run time)"
    } >"$dir/MANIFEST"
    (cd "$dir" && find . -type f ! -name MANIFEST -printf '%P\t%s\n' | sort) >>"$dir/MANIFEST"
    cat "$dir/MANIFEST"
    say "prepared $dir: $(du -sh "$dir" | cut -f1), $(find "$dir" -type f | wc -l) files"
    echo "run it on a GPU machine: bash scripts/device-check.sh --run $dir   (carry: $dir)"
}

# the folder of a libcudnn.so.9 in this image (PyTorch's wheel first), or nothing
find_cudnn() {
    local py d
    for py in python3 /usr/bin/python3; do
        command -v "$py" >/dev/null || continue
        d=$("$py" - <<'EOF' 2>/dev/null
import glob, os, site, sys
roots = list(site.getsitepackages()) + [site.getusersitepackages()]
try:
    import nvidia.cudnn
    roots.insert(0, os.path.dirname(os.path.dirname(nvidia.cudnn.__path__[0])))
except Exception:
    pass
for r in roots:
    for sub in ("nvidia/cudnn/lib", "nvidia/cu13/lib", "torch/lib"):
        hits = sorted(glob.glob(os.path.join(r, sub, "libcudnn.so.9*")))
        if hits:
            print(os.path.dirname(hits[0]))
            sys.exit(0)
EOF
        ) && [ -n "$d" ] && { echo "$d"; return; }
    done
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu; do
        ls "$d"/libcudnn.so.9* >/dev/null 2>&1 && { echo "$d"; return; }
    done
}

# step NAME LIMIT_S COMMAND...: runs one step with its log in $results, records its exit status
declare -A step_rc
step() {
    local name=$1 limit=$2
    shift 2
    say "$name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >"$results/$name.log" 2>&1
    step_rc[$name]=$?
    tail -3 "$results/$name.log"
    case ${step_rc[$name]} in
        0) echo "$name: passed" ;;
        77) echo "$name: skipped (exit 77)" ;;
        124 | 137) echo "$name: TIMED OUT after ${limit}s (log: $results/$name.log)" ;;
        *) echo "$name: FAILED (exit ${step_rc[$name]}, log: $results/$name.log)" ;;
    esac
}

run() {
    local dir
    dir=$(cd "$1" && pwd) || die "no prepared folder $1 (run --prepare first)"
    [ -x "$dir/bin/test_golden" ] && [ -x "$dir/bin/test_cuda" ] && [ -x "$dir/bin/cuda_bench" ] ||
        die "$dir is not a prepared folder (bin/test_golden, bin/test_cuda, bin/cuda_bench missing)"
    results=${OUT:-$dir/results}
    mkdir -p "$results"
    local quick=${QUICK:-0} t0=$SECONDS
    say "machine"
    head -3 "$dir/MANIFEST"
    uname -srm
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader
    else
        echo "nvidia-smi: not found"
    fi
    if [ -z "${EV_CUDNN_LIBRARY:-}" ]; then
        local cudnn_dir
        cudnn_dir=$(find_cudnn)
        if [ -n "$cudnn_dir" ]; then
            export EV_CUDNN_LIBRARY=$(ls "$cudnn_dir"/libcudnn.so.9* | head -1)
            # cuDNN 9 opens its engine libraries (libcudnn_cnn, ...) by name at run time
            export LD_LIBRARY_PATH="$cudnn_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        fi
    fi
    echo "cuDNN library: ${EV_CUDNN_LIBRARY:-none found (own kernels only)}"

    local lim_cuda=300 lim_bench=240 lim_torch=150 bench_args=(--runs 2000 --sizes 32,64,96,128)
    if [ "$quick" = 1 ]; then
        lim_cuda=90 lim_bench=45 lim_torch=30 bench_args=(--runs 300 --sizes 32,128)
    fi
    step test_golden 120 "$dir/bin/test_golden" "$dir/tests/fixtures"
    [ "${step_rc[test_golden]}" -eq 0 ] || die "test_golden failed here: the engine itself is wrong on this machine"
    step test_cuda "$lim_cuda" "$dir/bin/test_cuda" "$dir/tests/fixtures"
    if [ "${step_rc[test_cuda]}" -eq 77 ]; then
        echo "device-check: no GPU: test_golden passed, test_cuda found no CUDA device; stopping here"
        exit 77
    fi
    grep -E '^(FAIL|not ok)' "$results/test_cuda.log" | head -40
    grep -E 'CUDA device' "$results/test_cuda.log" | head -3
    step cuda_bench "$lim_bench" "$dir/bin/cuda_bench" "${bench_args[@]}" --csv "$results/cuda_bench.csv"
    cat "$results/cuda_bench.log"
    step torch_peer "$lim_torch" python3 "$dir/bench/cuda_bench.py" "${bench_args[@]}" --csv "$results/torch_bench.csv"
    cat "$results/torch_peer.log"

    say "summary ($((SECONDS - t0)) s)"
    local s status=0
    for s in test_golden test_cuda cuda_bench torch_peer; do
        printf '%-12s exit %s\n' "$s" "${step_rc[$s]}"
    done
    [ "${step_rc[test_cuda]}" -eq 0 ] && [ "${step_rc[cuda_bench]}" -eq 0 ] || status=1
    # torch_peer 77: no torch with CUDA in this image, not a failure of ours
    case ${step_rc[torch_peer]} in 0 | 77) ;; *) status=1 ;; esac
    if [ -f "$results/cuda_bench.csv" ]; then
        echo "echoview (cuda_bench.csv):"
        column -s, -t <"$results/cuda_bench.csv" 2>/dev/null || cat "$results/cuda_bench.csv"
    fi
    if [ -f "$results/torch_bench.csv" ]; then
        echo "PyTorch eager (torch_bench.csv):"
        column -s, -t <"$results/torch_bench.csv" 2>/dev/null || cat "$results/torch_bench.csv"
    fi
    echo "results in $results"
    exit $status
}

case ${1:-} in
    --prepare) [ $# -eq 2 ] || usage; prepare "$2" ;;
    --run) [ $# -eq 2 ] || usage; run "$2" ;;
    *) usage ;;
esac
