#!/usr/bin/env bash
# check_deb.sh - the Debian packages, on this machine (root: it installs
# them, and purges them again at the end unless PBFT_DEB_KEEP is set):
#   - dpkg-buildpackage -us -uc -b builds pbft, libpbft0 and libpbft-dev
#     from a copy of the tree's files (nocheck: CI ran the tests already;
#     PBFT_DEB_CHECK=1 runs the unit suite in the build);
#   - lintian reports no error (its warnings are printed);
#   - dpkg -i installs them; the system user pbft exists; the installed
#     pbftctl init makes a configuration that the installed pbftd -t
#     accepts; pbftd with the installed pbft-replica runs 4 replicas on
#     127.0.0.1 and commits a pbftctl submit;
#   - examples/counter builds and runs against the installed libpbft-dev
#     (tests/install/check_library.sh /).
# Every wait is bounded; the whole run is bounded by `timeout`.
set -euo pipefail

mult=${PBFT_TIMEOUT_MULT:-1}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (it installs the packages)"
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
dir=$(mktemp -d /tmp/pbft-deb.XXXXXX)
pid=
installed=
had_user=$(getent passwd pbft >/dev/null && echo 1 || true)
cleanup() {
	local rc=$?
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	wait 2>/dev/null || true
	[ $rc -ne 0 ] && tail -n 30 "$dir"/*.log 2>/dev/null
	if [ -n "$installed" ] && [ -z "${PBFT_DEB_KEEP:-}" ]; then
		dpkg --purge libpbft-dev libpbft0 pbft >/dev/null || true
		# Debian keeps a package's system user after a purge; a test
		# leaves the machine as it found it.
		[ -n "$had_user" ] || userdel pbft 2>/dev/null || true
	fi
	[ -n "${PBFT_TEST_KEEP:-}" ] || rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT

src=$dir/pbft-$version
mkdir "$src"
files() { # the tree's files, without build directories
	if git -C "$top" rev-parse >/dev/null 2>&1; then
		git -C "$top" ls-files -co --exclude-standard
	else
		(cd "$top" && find . -type f ! -path './.git/*' | sed 's#^\./##')
	fi | grep -vE '^(build|obj-)[^/]*/'
}
(cd "$top" && files | tar -cf - -T -) | tar -xf - -C "$src"
opts=nocheck
[ "${PBFT_DEB_CHECK:-0}" = 1 ] && opts=
(cd "$src" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b) \
    >"$dir/build.log" 2>&1 || fail "dpkg-buildpackage failed"
debs=("$dir/pbft_${version}_"*.deb "$dir/libpbft0_${version}_"*.deb
    "$dir/libpbft-dev_${version}_"*.deb)
echo "ok: built $(cd "$dir" && ls ./*.deb | tr '\n' ' ')"

lintian "$dir"/pbft_"${version}"_*.changes >"$dir/lintian.out" 2>&1 || true
cat "$dir/lintian.out"
if grep -q '^E:' "$dir/lintian.out"; then
	fail "lintian reports errors"
fi
echo "ok: lintian: no error ($(grep -c '^W:' "$dir/lintian.out" || true) warnings)"

installed=1
dpkg -i "${debs[@]}" >"$dir/dpkg.log" 2>&1 || fail "dpkg -i failed"
getent passwd pbft >/dev/null || fail "no system user pbft"
[ -f /lib/systemd/system/pbftd.service ] || fail "no pbftd.service"
[ ! -e /etc/pbft/cluster.ini ] || echo "note: /etc/pbft/cluster.ini exists"
echo "ok: installed; user pbft exists"

base=$(( 14000 + ($$ % 2000) * 10 ))
/usr/bin/pbftctl init -n 4 --base-port "$base" --clients 1 -o "$dir/c" \
    >/dev/null || fail "installed pbftctl init"
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 2s/' "$cfg"
/usr/sbin/pbftd -t -c "$cfg" >/dev/null || fail "installed pbftd -t"
/usr/sbin/pbftd -c "$cfg" -s "$dir/s.sock" 2>"$dir/pbftd.log" &
pid=$!
ctl() { timeout $((30 * mult)) /usr/bin/pbftctl -s "$dir/s.sock" -t $((20 * mult)) "$@"; }
up=0
for _ in $(seq 1 $((60 * mult))); do
	ctl submit deb-tx >/dev/null 2>&1 && { up=1; break; }
	sleep 0.5
done
[ $up = 1 ] || fail "the installed cluster did not commit a submit"
grep -q '/usr/bin/pbft-replica' /proc/"$(pgrep -P "$pid" | head -n 1)"/cmdline ||
    fail "pbftd did not run the installed pbft-replica"
echo "ok: the installed pbftd and pbft-replica commit a submit"
kill "$pid"
for _ in $(seq 1 100); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
pid=

"$here/check_library.sh" / || fail "the counter example on libpbft-dev"
echo "ok: examples/counter on the installed libpbft-dev"
