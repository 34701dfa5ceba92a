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
[ ${#targets[@]} -gt 0 ] || targets=(genotype model image manifest daemon_config dicom)

command -v clang >/dev/null || { echo "clang not found: skipping"; exit 77; }
work=$(mktemp -d /tmp/ev_fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$work/probe.c"
if ! clang -fsanitize=fuzzer "$work/probe.c" -o "$work/probe" 2>/dev/null; then
  echo "clang has no libFuzzer runtime: skipping"
  exit 77
fi

engine=(common baselines genotype model net_builder network ops_ref plan preprocess safetensors yaml_util backend_none
        cpu/cpu_pool)  # the pool: search/dataset.c (fuzz_manifest) decodes on it
flags=(-g -O1 -std=c11 -D_GNU_SOURCE -DEV_ENGINE_PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src/base" -I"$src/engine" -I"$src/media")
status=0
for t in "${targets[@]}"; do
  srcs=("$src/tests/fuzz/fuzz_$t.c")
  extra=()
  libs=(-lyaml -ljansson -lm -lpthread)
  case $t in
    image) srcs+=("$src/media/image.c"); libs+=(-lpng) ;;
    # fuzz_manifest.c compiles search/dataset.c in (its parser is static)
    manifest) srcs+=("$src/media/image.c" "$src/media/video_name.c" "$src/search/dataset_split.c"); extra+=(-I"$src/search"); libs+=(-lpng) ;;
  esac
  if [ "$t" = daemon_config ]; then
    # the daemon's parser and pipeline descriptions: GLib, the YAML reader and (for the
    # GStreamer-side checks that live beside the descriptions, not run here) GStreamer
    if ! pkg-config --exists glib-2.0 yaml-0.1 gstreamer-1.0; then
      echo "fuzz_$t: glib-2.0, yaml-0.1 or gstreamer-1.0 development files missing: skipped"
      continue
    fi
    srcs+=("$src/daemon/evd_config.c" "$src/daemon/evd_pipeline.c" "$src/daemon/evd_models.c"
           "$src/base/ev_yaml.c" "$src/base/ev_shard.c")
    extra+=(-I"$src/daemon" $(pkg-config --cflags glib-2.0 yaml-0.1 gstreamer-1.0))
    libs=($(pkg-config --libs glib-2.0 yaml-0.1 gstreamer-1.0) -lm -lpthread)
  else
    for e in "${engine[@]}"; do srcs+=("$src/engine/$e.c"); done
    srcs+=("$src/base/ev_yaml.c")
  fi
  if [ "$t" = dicom ]; then
    # the DICOM shim is C++ on DCMTK (DCMTK itself is not instrumented, the shim is)
    if [ ! -f /usr/include/dcmtk/dcmdata/dctk.h ] || ! command -v clang++ >/dev/null; then
      echo "fuzz_$t: DCMTK development files or clang++ missing: skipped"
      continue
    fi
    if ! { clang "${flags[@]}" -c "$src/tests/fuzz/fuzz_dicom.c" -o "$work/fuzz_dicom.o" &&
           clang++ -g -O1 -std=c++17 -fsanitize=fuzzer,address,undefined -I"$src/engine" \
             -I"$src/media" -c "$src/media/dicom_shim.cpp" -o "$work/dicom_shim.o" &&
           clang++ -fsanitize=fuzzer,address,undefined "$work/fuzz_dicom.o" "$work/dicom_shim.o" \
             -ldcmnet -ldcmjpeg -ldcmimage -ldcmimgle -ldcmdata -loflog -lofstd \
             -o "$work/fuzz_dicom"; } 2>"$work/build_$t.log"; then
      cat "$work/build_$t.log"
      echo "fuzz_$t: build failed"
      status=1
      continue
    fi
  elif ! clang "${flags[@]}" "${extra[@]}" "${srcs[@]}" "${libs[@]}" -o "$work/fuzz_$t" 2>"$work/build_$t.log"; then
    cat "$work/build_$t.log"
    echo "fuzz_$t: build failed"
    status=1
    continue
  fi
  mkdir -p "$work/corpus_$t"
  [ -d "$src/tests/fuzz/corpus_$t" ] && cp -r "$src/tests/fuzz/corpus_$t/." "$work/corpus_$t/"
  # -timeout: an input that takes over 10 s is a finding (written as a timeout-* artifact),
  # reported at once instead of hanging until meson's limit. -seed: the same mutation sequence
  # on every run, so a CI result can be reproduced (EV_FUZZ_SEED=0: a random seed per run).
  if (cd "$work" && "./fuzz_$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
        -timeout=10 -seed="${EV_FUZZ_SEED:-1}" -print_final_stats=1 "corpus_$t" > "run_$t.log" 2>&1); then
    echo "fuzz_$t: no crash in ${seconds}s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/run_$t.log" | grep -o '[0-9]*$') runs)"
  else
    tail -40 "$work/run_$t.log"
    echo "fuzz_$t: CRASH"
    status=1
  fi
done
exit $status
