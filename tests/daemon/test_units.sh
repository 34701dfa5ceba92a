#!/bin/sh
# test_units.sh SYSTEMD_DIR ECHOVIEWD BUILT_UNITS SBINDIR DOCDIR: the units meson installs
# (BUILT_UNITS) name this build's SBINDIR and DOCDIR, not /usr; the unit has its resource
# ceilings and a 0750 configuration directory; `systemd-analyze verify` is clean on the units
# and the offline security exposure of echoviewd.service is at most 1.5. Skips (77) without
# systemd-analyze (after the checks that need no systemd).
set -eu
units=$1
exe=$2
built=$3
sbindir=$4
docdir=$5
for want in "ExecStart=$sbindir/echoviewd --config /etc/echoviewd/echoviewd.yaml" \
    "ExecStartPre=$sbindir/echoviewd --check-config /etc/echoviewd/echoviewd.yaml" \
    "Documentation=file://$docdir/echoview/DAEMON.md"; do
  grep -qxF "$want" "$built/echoviewd.service" ||
    { echo "installed echoviewd.service lacks: $want"; exit 1; }
done
grep -qxF "Documentation=file://$docdir/echoview/DAEMON.md" "$built/echoviewd.socket" ||
  { echo "installed echoviewd.socket names another doc folder"; exit 1; }
for want in ConfigurationDirectoryMode=0750 MemoryMax=4G TasksMax=1024 LimitNOFILE=8192; do
  grep -qxF "$want" "$units/echoviewd.service" || { echo "echoviewd.service lacks $want"; exit 1; }
done
echo "installed units: $sbindir/echoviewd, $docdir"
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze not found: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The units name the installed binary; point them at the built one.
for u in echoviewd.service echoviewd.socket; do
  sed "s|/usr/sbin/echoviewd|$exe|g" "$units/$u" > "$tmp/$u"
done
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
  ./echoviewd.service ./echoviewd.socket 2>&1) || { echo "$out"; exit 1; }
# Problems about other units on this machine are not ours; anything naming ours is.
if echo "$out" | grep -q "echoviewd"; then echo "$out"; exit 1; fi
echo "verify: clean"
score=$(systemd-analyze security --offline=true "$tmp/echoviewd.service" 2>&1 |
  sed -n 's/.*Overall exposure level for echoviewd.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "no exposure score"; exit 1; }
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' || { echo "exposure $score above 1.5"; exit 1; }
