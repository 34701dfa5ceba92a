#!/bin/sh
# test_debian.sh SOURCE_ROOT [WORK]: the Debian packages (debian/) build and install where the units
# expect their files. In a copy of the tree (no build folders, no .git): `dpkg-buildpackage -us
# -uc -b` (nocheck: the suites run on their own; nice, one job), `lintian` with no error and no
# warning (the accepted ones are overridden, with a reason, in debian/*.lintian-overrides), then
# every .deb unpacked with `dpkg -x` into one temporary root, where: every ExecStart/
# ExecStartPre binary, --config/--check-config file and Documentation= file of the units
# exists; the sysusers.d and tmpfiles.d entries and the plugin are there; the model of the
# installed configuration exists; the installed echoviewd runs `--help` and accepts the
# installed configuration with `--check-config` (plugin and model taken from the root).
# Builds the whole project: suite `slow`. WORK (emptied first and at the end; default a
# temporary folder): a fixed place, so that a compiler cache hits on the next run (the
# compiler's -ffile-prefix-map names it). Skips (77) without dpkg-buildpackage or lintian.
set -eu
src=$1
for tool in dpkg-buildpackage dh lintian fakeroot; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: skipped"; exit 77; }
done
if [ -n "${2:-}" ]; then
  tmp=$2
  rm -rf "$tmp"
  mkdir -p "$tmp"
else
  tmp=$(mktemp -d)
fi
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/echoview"
# The tracked and new files of the tree, without build outputs (any build*/ folder).
(cd "$src" && git ls-files -co --exclude-standard 2>/dev/null || find . -type f -o -type l) |
  grep -v -e '^build' -e '^\./build' -e '^\.git/' |
  (cd "$src" && tar -cf - -T -) | tar -xf - -C "$tmp/echoview"
cd "$tmp/echoview"
echo "dpkg-buildpackage in $tmp/echoview"
if ! DEB_BUILD_OPTIONS="nocheck parallel=1" nice -n 10 dpkg-buildpackage -us -uc -b \
    > "$tmp/build.log" 2>&1; then
  tail -60 "$tmp/build.log"; echo "dpkg-buildpackage failed"; exit 1
fi
cd "$tmp"
ls ./*.deb
changes=$(ls ./*.changes)
out=$(lintian --fail-on error,warning --tag-display-limit 0 "$changes" 2>&1) ||
  { echo "$out"; echo "lintian: errors or warnings (above)"; exit 1; }
[ -z "$out" ] || echo "$out"
echo "lintian: no error, no warning"
root="$tmp/root"
mkdir "$root"
for deb in ./*.deb; do dpkg -x "$deb" "$root"; done
fail=0
missing() { echo "missing in the packages: $1 ($2)"; fail=1; }
units="$root/usr/lib/systemd/system"
for unit in echoviewd.service echoviewd.socket echoviewd@.service echoview-dicom-bridge.service; do
  [ -f "$units/$unit" ] || { missing "/usr/lib/systemd/system/$unit" unit; continue; }
  # Paths the unit names: binaries, configuration files (the template's with instance 0-1:
  # an example is not shipped, so only its folder must exist), documentation.
  for path in $(sed -n -e 's/^ExecStart\(Pre\)\{0,1\}=\([^ ]*\).*/\2/p' \
      -e 's/^ExecStart\(Pre\)\{0,1\}=.* --\(check-\)\{0,1\}config \([^ ]*\).*/\3/p' \
      -e 's|^Documentation=file://||p' "$units/$unit"); do
    case "$path" in
      /bin/kill) ;;
      *%i*) [ -d "$root$(dirname "$path")" ] || missing "$(dirname "$path")" "$unit" ;;
      *) [ -e "$root$path" ] || missing "$path" "$unit" ;;
    esac
  done
done
for f in /usr/lib/sysusers.d/echoviewd.conf /usr/lib/tmpfiles.d/echoviewd.conf \
    /etc/echoviewd/echoviewd.yaml /etc/echoview-dicom-bridge/echoview-dicom-bridge.yaml \
    /usr/bin/echoview /usr/share/doc/echoview/DEPLOY.md; do
  [ -e "$root$f" ] || missing "$f" "expected file"
done
plugin=$(find "$root/usr/lib" -name libgstechoview.so -path '*gstreamer-1.0*' | head -1)
[ -n "$plugin" ] || missing "gstreamer-1.0/libgstechoview.so" plugin
model=$(sed -n 's/^ *model-file: *\([^ ]*\).*/\1/p' "$root/etc/echoviewd/echoviewd.yaml")
case "$model" in /usr/share/echoview/models/*) ;; *) echo "installed config's model: $model"; fail=1 ;; esac
[ -f "$root$model/model.yaml" ] || missing "$model/model.yaml" "model of /etc/echoviewd/echoviewd.yaml"
[ "$fail" -eq 0 ] || exit 1
echo "every file the units and the configuration name is in the packages"
libdir=$(dirname "$plugin" | sed 's|/gstreamer-1.0$||')
LD_LIBRARY_PATH="$libdir" "$root/usr/sbin/echoviewd" --help > /dev/null ||
  { echo "installed echoviewd --help failed"; exit 1; }
sed "s|model-file: /usr/|model-file: $root/usr/|" "$root/etc/echoviewd/echoviewd.yaml" > "$tmp/check.yaml"
LD_LIBRARY_PATH="$libdir" GST_PLUGIN_PATH="$(dirname "$plugin")" \
  GST_REGISTRY="$tmp/registry.bin" "$root/usr/sbin/echoviewd" --check-config "$tmp/check.yaml" ||
  { echo "installed echoviewd refuses the installed configuration"; exit 1; }
echo "installed echoviewd: --help runs, installed configuration valid"
