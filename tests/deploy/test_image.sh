#!/bin/sh
# test_image.sh SOURCE_ROOT: builds deploy/Dockerfile and runs the image's echoviewd --help and
# --check-config on its configuration. Only where a debian:12 base image can be made locally,
# without a registry: a running Docker daemon, debootstrap, and a Debian 12 mirror reachable
# from here in ECHOVIEW_DEBIAN_MIRROR (e.g. a local apt mirror or file:/ path); the base is
# `debootstrap --variant=minbase bookworm` + `docker import` as debian:12, and the build uses
# the same mirror (--build-arg is not needed: the image's sources.list is the mirror's).
# Otherwise skips (77) and says which of the three is missing. Suite `slow`.
set -eu
src=$1
why=""
command -v docker >/dev/null 2>&1 || why="docker not installed"
[ -n "$why" ] || docker info >/dev/null 2>&1 || why="no Docker daemon (docker info fails)"
[ -n "$why" ] || command -v debootstrap >/dev/null 2>&1 || why="debootstrap not installed"
[ -n "$why" ] || [ -n "${ECHOVIEW_DEBIAN_MIRROR:-}" ] ||
  why="no local Debian 12 mirror (set ECHOVIEW_DEBIAN_MIRROR)"
if [ -n "$why" ]; then
  echo "cannot make a debian:12 base image locally: $why: skipped"
  exit 77
fi
tmp=$(mktemp -d)
tag="echoviewd-test:$$"
trap 'docker rmi -f "$tag" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
debootstrap --variant=minbase bookworm "$tmp/rootfs" "$ECHOVIEW_DEBIAN_MIRROR" > "$tmp/debootstrap.log" 2>&1 ||
  { tail -20 "$tmp/debootstrap.log"; echo "debootstrap failed"; exit 1; }
echo "deb $ECHOVIEW_DEBIAN_MIRROR bookworm main" > "$tmp/rootfs/etc/apt/sources.list"
tar -C "$tmp/rootfs" -c . | docker import - debian:12 > /dev/null
nice docker build -f "$src/deploy/Dockerfile" -t "$tag" "$src"
docker run --rm "$tag" --help > /dev/null || { echo "image: echoviewd --help failed"; exit 1; }
docker run --rm "$tag" --check-config /etc/echoviewd/echoviewd.yaml ||
  { echo "image: the shipped configuration is refused"; exit 1; }
docker inspect --format '{{.Config.User}} {{json .Config.Healthcheck.Test}}' "$tag"
echo "image built; echoviewd runs as a non-root user and accepts its configuration"
