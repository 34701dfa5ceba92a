#!/bin/sh
# test_units.sh SYSTEMD_DIR ECHOVIEWD: `systemd-analyze verify` is clean on the units and the
# offline security exposure of echoviewd.service is at most 1.5. Skips (77) without
# systemd-analyze.
set -eu
units=$1
exe=$2
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
