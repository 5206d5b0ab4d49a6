# shellcheck shell=bash disable=SC2034
# lib.sh - what every script under tests/integration shares. Sourced first,
# with the test's name as $1:
#
#     . "$(cd "$(dirname "$0")" && pwd)/lib.sh" NAME
#
# It sets build (PBFT_BUILD), mult (PBFT_TIMEOUT_MULT, 3 for sanitizer
# builds), the programs (pbftctl, pbftd, replica), here (this folder) and
# histcheck; dir, a temporary directory /tmp/pbft-NAME.XXXXXX (kept when
# PBFT_TEST_KEEP is set); base, the first of ten ports; fail, ok and the
# count passed; wait_until. Not here: anything about a cluster's shape or
# its configuration (each test says what it needs).
#
# Every exit (an EXIT trap; TERM and INT, a meson timeout, exit through
# it with 143) runs cleanup, which kills what the test started, by pid:
#   bpid    a bench or poller: KILL, first;
#   pids    every other process started: KILL;
#   pid     the test's pbftd: KILL, or with gentle=1 (and pids then too)
#           TERM and 5 s to exit before KILL;
#   rpids   replica pids read from pbftd's status: KILL, last;
# then any replica still running on the test's own configuration (a
# pbftd killed with -9 leaves its children to PR_SET_PDEATHSIG), and, when
# the test failed, prints its logs (show_logs, below).

build=${PBFT_BUILD:?PBFT_BUILD must name the build directory}
mult=${PBFT_TIMEOUT_MULT:-1}
pbftctl=$build/pbftctl/pbftctl
pbftd=$build/pbftd/pbftd
replica=$build/pbft-replica/pbft-replica
here=$(cd "$(dirname "$0")" && pwd)
histcheck=$here/../tools/histcheck.py
dir=$(mktemp -d "/tmp/pbft-$1.XXXXXX")
pid=
bpid=
pids=()
rpids=()
gentle=
cfg= # the cluster.ini the test makes
passed=0
# Ports from the pid so parallel runs do not collide, below the kernel's
# ephemeral range (32768-60999), where outgoing connections would take them.
base=$((10000 + ($$ % 2200) * 10))

# What show_logs prints when the test failed: the last log_lines lines of
# every $dir/*.log and of each file in log_more, without the lines that
# match log_skip (an extended regular expression; empty: none).
log_lines=60
log_more=()
log_skip=
show_logs() {
	local f
	echo "--- logs (test failed) ---"
	for f in "$dir"/*.log "${log_more[@]}"; do
		[ -f "$f" ] || continue
		echo "==> $f <=="
		if [ -n "$log_skip" ]; then
			grep -Ev -- "$log_skip" "$f" | tail -n "$log_lines"
		else
			tail -n "$log_lines" "$f"
		fi
	done
	return 0
}

# stop_pids SIGNAL PID...: sends SIGNAL, then waits up to 5 s for each.
stop_pids() {
	local sig=$1 p
	shift
	for p in "$@"; do kill "-$sig" "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
	done
}

# The test's stdout as it was, for cleanup: a TERM that arrives while a
# command's output goes to /dev/null (ctl submit x >/dev/null, wait_until)
# runs cleanup with that redirection still in place.
exec {lib_out}>&1

cleanup() {
	local rc=$? p
	[ -n "$bpid" ] && kill -9 "$bpid" 2>/dev/null || true
	[ -n "$gentle" ] && stop_pids TERM ${pid:+"$pid"} "${pids[@]}"
	for p in "${pids[@]}" $pid "${rpids[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	pkill -9 -f "pbft-replica -c $dir/" 2>/dev/null || true
	wait 2>/dev/null || true
	[ $rc -ne 0 ] && show_logs >&"$lib_out" 2>&1
	[ -n "${PBFT_TEST_KEEP:-}" ] || rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT # a test timeout: exit through cleanup

# fail MESSAGE: the test fails; fail_tag, when set, names the variant.
fail_tag=
fail() {
	echo "FAIL${fail_tag:+ [$fail_tag]}: $*" >&2
	exit 1
}
ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}

# refuses PATTERN CMD...: CMD fails and says PATTERN (an extended regular
# expression).
refuses() {
	local pat=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "'$*' succeeded; want a refusal ($pat)"
	echo "$out" | grep -Eq -- "$pat" || fail "'$*' said '$out', want '$pat'"
}

# notify_stub SECONDS: a stand-in for systemd's notification socket,
# $dir/notify.sock; what it receives goes to $dir/notify.txt, a line a
# datagram. It exits after SECONDS without one; its pid is npid.
notify_stub() {
	python3 - "$dir/notify.sock" "$dir/notify.txt" "$1" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(int(sys.argv[3]))
with open(sys.argv[2], 'a') as f:
    while True:
        f.write(s.recv(4096).decode() + '\n')
        f.flush()
PY
	npid=$!
	pids+=("$npid")
	wait_until 5 test -S "$dir/notify.sock" || fail "no notify socket"
}

# ctl ARGS...: pbftctl on the test's cluster ($cfg, set by the test before
# the first call), bounded in time; a test may redefine it. status: every
# replica's status as JSON; field NODE NAME: one field of it; all_running:
# every replica running and in a view.
ctl() { timeout $((20 * mult)) "$pbftctl" -c "$cfg" -t $((15 * mult)) "$@"; }
status() { ctl status --json; }
field() { # field NODE NAME
	status | python3 -c '
import json, sys
print(json.load(sys.stdin)["replicas"]['"$1"']["'"$2"'"])'
}
all_running() {
	status | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if all(r["state"] == "running" and "view" in r for r in s["replicas"]) else 1)'
}

# wait_until SECONDS CMD...: tries CMD every 0.1 s, SECONDS * 10 times (times
# PBFT_TIMEOUT_MULT), and never for longer than three times SECONDS by the
# clock: a try that is slow itself (a status call waiting out a silent
# replica takes a second) must not stretch the wait tenfold.
wait_until() {
	local tries=$(($1 * 10 * mult)) end=$((SECONDS + 3 * $1 * mult))
	shift
	while [ "$tries" -gt 0 ] && [ "$SECONDS" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		tries=$((tries - 1))
		sleep 0.1
	done
	return 1
}
