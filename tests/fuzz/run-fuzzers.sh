#!/usr/bin/env bash
# run-fuzzers.sh SRC_DIR SECONDS [TARGET...]: builds the libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined) straight from the sources and runs each for SECONDS on
# a copy of its seed corpus. Exit 0: no crash; 1: a crash (the reproducer is printed);
# 77: clang or its libFuzzer runtime is missing (skip).
set -uo pipefail
src=${1:?source dir}
seconds=${2:-10}
shift 2 || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(genotype model image)

command -v clang >/dev/null || { echo "clang not found: skipping"; exit 77; }
work=$(mktemp -d /tmp/ev_fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$work/probe.c"
if ! clang -fsanitize=fuzzer "$work/probe.c" -o "$work/probe" 2>/dev/null; then
  echo "clang has no libFuzzer runtime: skipping"
  exit 77
fi

engine=(common genotype model network ops_ref plan preprocess safetensors yaml_util backend_none)
flags=(-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src/engine" -I"$src/media")
status=0
for t in "${targets[@]}"; do
  srcs=("$src/tests/fuzz/fuzz_$t.c")
  for e in "${engine[@]}"; do srcs+=("$src/engine/$e.c"); done
  libs=(-lyaml -ljansson -lm -lpthread)
  if [ "$t" = image ]; then srcs+=("$src/media/image.c"); libs+=(-lpng); fi
  if ! clang "${flags[@]}" "${srcs[@]}" "${libs[@]}" -o "$work/fuzz_$t" 2>"$work/build_$t.log"; then
    cat "$work/build_$t.log"
    echo "fuzz_$t: build failed"
    status=1
    continue
  fi
  mkdir -p "$work/corpus_$t"
  [ -d "$src/tests/fuzz/corpus_$t" ] && cp -r "$src/tests/fuzz/corpus_$t/." "$work/corpus_$t/"
  if (cd "$work" && "./fuzz_$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus_$t" > "run_$t.log" 2>&1); then
    echo "fuzz_$t: no crash in ${seconds}s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/run_$t.log" | grep -o '[0-9]*$') runs)"
  else
    tail -40 "$work/run_$t.log"
    echo "fuzz_$t: CRASH"
    status=1
  fi
done
exit $status
