#!/usr/bin/env bash
# check_install.sh STAGE_ROOT - runs pbftd from a staged install
# (meson install --destdir STAGE_ROOT) with the installed configuration, as
# the shipped systemd unit would, without systemd:
#   - the installed cluster.ini.example keeps data_dir and control_socket
#     out of the configuration directory (which the unit makes read-only),
#     inside the unit's StateDirectory and RuntimeDirectory;
#   - with those paths moved under a temporary root, the configuration
#     directory read-only and (as root) as an unprivileged user, pbftd
#     starts, `pbftctl status` answers and a `pbftctl submit` commits;
#   - with strace, no system call that pbftd or its replicas make is one the
#     unit's SystemCallFilter denies.
# Every wait is bounded; the whole run is bounded by `timeout`.
set -euo pipefail

stage=${1:?usage: check_install.sh STAGE_ROOT}
mult=${PBFT_TIMEOUT_MULT:-1}
fail() { echo "FAIL: $*" >&2; exit 1; }
find_one() {
	local f
	f=$(find "$stage" -path "*/$1" -print -quit)
	[ -n "$f" ] || fail "no $1 in the staged install"
	echo "$f"
}
pbftd=$(find_one sbin/pbftd)
pbftctl=$(find_one bin/pbftctl)
replica=$(find_one bin/pbft-replica)
example=$(find_one pbft/cluster.ini.example)
unit=$(find_one systemd/system/pbftd.service)

# The unit's directories against the installed configuration's paths.
unit_val() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
cfg_val() { sed -n "s/^$1 *= *//p" "$example"; }
confdir=$(unit_val ReadOnlyPaths)
state=/var/lib/$(unit_val StateDirectory)
run=/run/$(unit_val RuntimeDirectory)
data_dir=$(cfg_val data_dir)
sock=$(cfg_val control_socket)
grep -q "^ExecStart=.* -c $confdir/cluster.ini\$" "$unit" ||
    fail "the unit does not run $confdir/cluster.ini"
case $data_dir in "$state" | "$state"/*) ;;
*) fail "installed data_dir '$data_dir' is not in the unit's $state" ;;
esac
case $sock in "$run"/*) ;;
*) fail "installed control_socket '$sock' is not in the unit's $run" ;;
esac
echo "ok: installed data_dir $data_dir and control_socket $sock are the unit's"

# A throw-away root: ROOT/etc/pbft (read-only), ROOT/var/lib/pbft,
# ROOT/run/pbft, as the unit provides them.
root=$(mktemp -d /tmp/pbft-install.XXXXXX)
pid=
cleanup() {
	local rc=$?
	if [ -n "$pid" ]; then # pbftd stops its replicas on SIGTERM
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	[ $rc -ne 0 ] && tail -n 30 "$root/pbftd.log" 2>/dev/null
	chmod -R u+w "$root" 2>/dev/null
	rm -rf "$root"
	exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT # a test timeout: exit through cleanup
chmod 755 "$root"
etc=$root/etc/pbft
mkdir -p "$etc/keys" "$root$state" "$root$run"
base=$(( 20000 + ($$ % 2000) * 10 ))
sed -e "s#^data_dir = .*#data_dir = $root$data_dir#" \
    -e "s#^control_socket = .*#control_socket = $root$sock#" \
    -e "s#^address = 127.0.0.1:700\([0-9]\)#address = 127.0.0.1:$((base / 10))\1#" \
    "$example" >"$etc/cluster.ini"
# The demo keys, from the seeds the file names.
sed -n 's/^; demo-key \(keys\/[a-z0-9]*\.pem\) seed \([0-9a-f]*\)$/\1 \2/p' \
    "$example" | while read -r path seed; do
	"$pbftctl" keygen --seed "$seed" -o "$etc/$path" >/dev/null
done
[ -f "$etc/keys/node0.pem" ] || fail "no demo keys in $example"
chmod 0700 "$root$state"
chmod 0750 "$root$run"
run_as=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	# The staged programs, where that user can run them (a staging root
	# from mktemp is private to root).
	mkdir "$root/bin"
	cp "$pbftd" "$replica" "$root/bin/"
	pbftd=$root/bin/pbftd
	replica=$root/bin/pbft-replica
	# As User=pbft would: an unprivileged user, keys its own.
	chown -R 65534:65534 "$etc/keys" "$root$state" "$root$run"
	run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
chmod -R a-w "$etc" # ReadOnlyPaths
trace=()
if command -v strace >/dev/null && [ -z "${PBFT_NO_STRACE:-}" ]; then
	trace=(strace -f -qq -o "$root/trace")
	: >"$root/trace"
	[ ${#run_as[@]} -eq 0 ] || chown 65534:65534 "$root/trace"
fi

"$pbftd" -t -c "$etc/cluster.ini" >/dev/null || fail "pbftd -t refuses it"
timeout $((180 * mult)) "${run_as[@]}" "${trace[@]}" "$pbftd" \
    -c "$etc/cluster.ini" --replica-bin "$replica" \
    2>"$root/pbftd.log" &
pid=$!
ctl() { timeout $((30 * mult)) "$pbftctl" -c "$etc/cluster.ini" \
    -t $((20 * mult)) "$@"; }
up=0
for _ in $(seq 1 $((60 * mult))); do
	kill -0 "$pid" 2>/dev/null || fail "pbftd exited"
	ctl status >/dev/null 2>&1 && { up=1; break; }
	sleep 0.5
done
[ $up = 1 ] || fail "pbftctl status got no answer"
[ "$(stat -c %a "$root$sock")" = 660 ] || fail "socket mode"
committed=0
for _ in $(seq 1 $((20 * mult))); do
	ctl submit installed-tx >/dev/null 2>&1 && { committed=1; break; }
	sleep 1
done
[ $committed = 1 ] || fail "pbftctl submit did not commit"
[ -n "$(ls -A "$root$data_dir")" ] || fail "nothing in $root$data_dir"
echo "ok: pbftd from the install answers status and commits a submit"
ctl shutdown >/dev/null 2>&1 || kill "$pid"
for _ in $(seq 1 $((100 * mult))); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "pbftd did not stop"
wait "$pid" || true
pid=

# System calls made, against what the unit's filter denies.
if [ ${#trace[@]} -gt 0 ]; then
	denied=$(sed -n 's/^SystemCallFilter=~//p' "$unit")
	[ -n "$denied" ] || fail "the unit denies no system call group"
	# shellcheck disable=SC2086
	python3 - "$root/trace" $denied <<'EOF' || exit 1
import re, subprocess, sys
def expand(name, seen):
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name],
                         capture_output=True, text=True, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        w = line.strip()
        if w and not w.startswith("#"):
            calls |= expand(w, seen)
    return calls
denied = set()
for g in sys.argv[2:]:
    denied |= expand(g, set())
used = set()
for line in open(sys.argv[1]):
    m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
    if m:
        used.add(m.group(1))
bad = sorted(used & denied)
if bad:
    print("FAIL: the unit's filter would kill pbftd on: " + " ".join(bad))
    sys.exit(1)
print("ok: %d system calls traced, none in %s" % (len(used), " ".join(sys.argv[2:])))
EOF
else
	echo "skip: system call check (needs strace)"
fi
echo "check_install: passed"
