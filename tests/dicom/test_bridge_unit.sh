#!/bin/sh
# test_bridge_unit.sh SYSTEMD_DIR BRIDGE BUILT_UNITS BINDIR: the installed unit names this
# build's BINDIR; the unit has resource ceilings; `systemd-analyze verify` is clean on
# echoview-dicom-bridge.service and its offline security exposure is at most 1.5; it admits
# loopback only (IPAddressDeny=any, IPAddressAllow=localhost) and the LAN drop-in example adds
# an IPAddressAllow=; the TLS drop-in example (LoadCredential=) verifies clean. Skips (77) without systemd-analyze.
set -eu
units=$1
exe=$2
built=$3   # the unit meson installs: it names this build's bindir
bindir=$4
want="ExecStart=$bindir/echoview-dicom-bridge --config /etc/echoview-dicom-bridge/echoview-dicom-bridge.yaml"
grep -qxF "$want" "$built/echoview-dicom-bridge.service" ||
  { echo "installed echoview-dicom-bridge.service lacks: $want"; exit 1; }
for want in MemoryMax=2G TasksMax=256 LimitNOFILE=1024; do
  grep -qxF "$want" "$units/echoview-dicom-bridge.service" || { echo "the unit lacks $want"; exit 1; }
done
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze not found: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
u=echoview-dicom-bridge.service
sed "s|/usr/bin/echoview-dicom-bridge|$exe|g" "$units/$u" > "$tmp/$u"
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "./$u" 2>&1) ||
  { echo "$out"; exit 1; }
if echo "$out" | grep -q "echoview-dicom-bridge"; then echo "$out"; exit 1; fi
echo "verify: clean"
# who may connect: loopback only unless a drop-in adds the scanners' network
grep -qx 'IPAddressDeny=any' "$units/$u" && grep -qx 'IPAddressAllow=localhost' "$units/$u" ||
  { echo "$u must have IPAddressDeny=any and IPAddressAllow=localhost"; exit 1; }
grep -q '^IPAddressAllow=' "$units/echoview-dicom-bridge.service.d/lan.conf.example" ||
  { echo "lan.conf.example has no IPAddressAllow="; exit 1; }
# the TLS drop-in example: its LoadCredential= lines verify clean on the unit
grep -q '^LoadCredential=dicom-tls.key:' "$units/echoview-dicom-bridge.service.d/tls.conf.example" ||
  { echo "tls.conf.example has no LoadCredential= for the key"; exit 1; }
mkdir "$tmp/tls"
cat "$tmp/$u" "$units/echoview-dicom-bridge.service.d/tls.conf.example" > "$tmp/tls/$u"
out=$(cd "$tmp/tls" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "./$u" 2>&1) ||
  { echo "$out"; exit 1; }
if echo "$out" | grep -q "echoview-dicom-bridge"; then echo "with tls.conf: $out"; exit 1; fi
echo "verify with tls.conf.example: clean"
score=$(systemd-analyze security --offline=true "$tmp/$u" 2>&1 |
  sed -n 's/.*Overall exposure level for echoview-dicom-bridge.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "no exposure score"; exit 1; }
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' || { echo "exposure $score above 1.5"; exit 1; }
