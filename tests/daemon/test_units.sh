#!/bin/sh
# test_units.sh SYSTEMD_DIR ECHOVIEWD BUILT_UNITS SBINDIR DOCDIR: the units meson installs
# (BUILT_UNITS) name this build's SBINDIR and DOCDIR, not /usr; the unit has its resource
# ceilings and a 0750 configuration directory; the shard template echoviewd@.service has every
# [Service] line of echoviewd.service but the config, shard and cache ones (the hardening is
# shared, systemd has no include); `systemd-analyze verify` is clean on the units and on an
# instance of the template, and the offline security exposure of echoviewd.service and of
# echoviewd@0-3.service is at most 1.5. Skips (77) without systemd-analyze (after the checks
# that need no systemd).
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
grep -qxF "ExecStart=$sbindir/echoviewd --config /etc/echoviewd/echoviewd@%i.yaml --instance %H-%i --shard %I" \
  "$built/echoviewd@.service" || { echo "installed echoviewd@.service names another echoviewd"; exit 1; }
# The template's [Service] section, less the lines that name the instance, is the plain unit's.
service_lines() {
  sed -n '/^\[Service\]/,/^\[/p' "$1" | grep -v '^#' | grep -v '^$' |
    grep -v -e '^ExecStart' -e '^Environment=GST_REGISTRY=' -e '^CacheDirectory='
}
service_lines "$units/echoviewd.service" > "${TMPDIR:-/tmp}/evd-units.$$.a"
service_lines "$units/echoviewd@.service" > "${TMPDIR:-/tmp}/evd-units.$$.b"
if ! diff "${TMPDIR:-/tmp}/evd-units.$$.a" "${TMPDIR:-/tmp}/evd-units.$$.b"; then
  rm -f "${TMPDIR:-/tmp}/evd-units.$$".*
  echo "echoviewd@.service and echoviewd.service differ (above) outside the shard lines"; exit 1
fi
rm -f "${TMPDIR:-/tmp}/evd-units.$$".*
for want in 'Environment=GST_REGISTRY=/var/cache/echoviewd/%i/registry.bin' 'CacheDirectory=echoviewd/%i' \
    'ExecStartPre=/usr/sbin/echoviewd --check-config /etc/echoviewd/echoviewd@%i.yaml'; do
  grep -qxF "$want" "$units/echoviewd@.service" || { echo "echoviewd@.service lacks $want"; exit 1; }
done
echo "installed units: $sbindir/echoviewd, $docdir; template shares the hardening"
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-analyze not found: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The units name the installed binary; point them at the built one.
for u in echoviewd.service echoviewd.socket; do
  sed "s|/usr/sbin/echoviewd|$exe|g" "$units/$u" > "$tmp/$u"
done
# A template is verified through an instance: shard 0 of 3 (systemd-escape 0/3 = 0-3).
sed "s|/usr/sbin/echoviewd|$exe|g" "$units/echoviewd@.service" > "$tmp/echoviewd@0-3.service"
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
  ./echoviewd.service ./echoviewd.socket ./echoviewd@0-3.service 2>&1) || { echo "$out"; exit 1; }
# Problems about other units on this machine are not ours; anything naming ours is.
if echo "$out" | grep -q "echoviewd"; then echo "$out"; exit 1; fi
echo "verify: clean"
for u in echoviewd.service echoviewd@0-3.service; do
  score=$(systemd-analyze security --offline=true "$tmp/$u" 2>&1 |
    sed -n "s/.*Overall exposure level for $u: \([0-9.]*\).*/\1/p")
  [ -n "$score" ] || { echo "no exposure score for $u"; exit 1; }
  echo "exposure of $u: $score"
  awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' || { echo "exposure $score of $u above 1.5"; exit 1; }
done
