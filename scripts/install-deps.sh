#!/usr/bin/env bash
# install-deps.sh: installs every Debian 12 package echoview needs to build, run and test.
# Idempotent: packages already present are skipped, and apt-get update runs only when
# something is missing. Used by the README's commands and by .ci/run.
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config
  # engine
  libyaml-dev libjansson-dev
  # media (libjpeg-turbo: JPEG frames in datasets)
  libpng-dev libjpeg62-turbo-dev
  # ONNX export
  protobuf-c-compiler libprotobuf-c-dev
  # fuzz targets (libFuzzer ships with clang)
  clang
)
# Extra groups, enabled by the modules that need them (GStreamer, daemon, DICOM).
if [ -f "$(dirname "$0")/deps-extra.txt" ]; then
  while read -r p; do
    case "$p" in ''|'#'*) ;; *) packages+=("$p") ;; esac
  done < "$(dirname "$0")/deps-extra.txt"
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
