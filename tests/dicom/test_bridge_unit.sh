#!/bin/sh
# test_bridge_unit.sh SYSTEMD_DIR BRIDGE: `systemd-analyze verify` is clean on
# echoview-dicom-bridge.service and its offline security exposure is at most 1.5. Skips (77)
# without systemd-analyze.
set -eu
units=$1
exe=$2
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze not found: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
u=echoview-dicom-bridge.service
sed "s|/usr/bin/echoview-dicom-bridge|$exe|g" "$units/$u" > "$tmp/$u"
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "./$u" 2>&1) ||
  { echo "$out"; exit 1; }
if echo "$out" | grep -q "echoview-dicom-bridge"; then echo "$out"; exit 1; fi
echo "verify: clean"
score=$(systemd-analyze security --offline=true "$tmp/$u" 2>&1 |
  sed -n 's/.*Overall exposure level for echoview-dicom-bridge.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "no exposure score"; exit 1; }
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' || { echo "exposure $score above 1.5"; exit 1; }
