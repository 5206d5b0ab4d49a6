# shellcheck shell=bash
# lib.sh - what the scripts of tests/byz/ share: a 4-node cluster on
# 127.0.0.1 under pbftd (optionally without the node the Byzantine peer
# plays), its status and counters, the CPU time and memory of a replica
# process, and cleanup by PID. Sourced, not run.
#
# Needs PBFT_BUILD (the meson build directory) and PBFT_BYZ (tests/byz's
# program). PBFT_TIMEOUT_MULT stretches every wait (sanitizer builds), and
# the scripts multiply their bounds of CPU time and memory by it too (a
# sanitizer slows a process and grows its memory; counts stay as they are).
set -euo pipefail

build=${PBFT_BUILD:?PBFT_BUILD must name the build directory}
# shellcheck disable=SC2034 # (used by the scripts that source this file)
byz=${PBFT_BYZ:-$build/tests/byz/byz}
mult=${PBFT_TIMEOUT_MULT:-1}
pbftctl=$build/pbftctl/pbftctl
pbftd=$build/pbftd/pbftd
name=$(basename "$0" .sh)
dir=$(mktemp -d "/tmp/pbft-byz-$name.XXXXXX")
pid=
rpids=()
bgpids=()

cleanup() {
	local rc=$?
	for p in "${bgpids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	# replicas pbftd did not stop, still ours (their command line names
	# this test's directory: a PID may have been reused since)
	for p in "${rpids[@]}"; do
		if grep -qF "$dir/" "/proc/$p/cmdline" 2>/dev/null; then
			kill -9 "$p" 2>/dev/null || true
		fi
	done
	wait 2>/dev/null || true
	if [ $rc -ne 0 ] && [ -f "$dir/pbftd.log" ]; then
		echo "--- pbftd log (test failed) ---"
		grep -v "connected\|disconnected\|handshake failed" \
		    "$dir/pbftd.log" | tail -n 40 || true
	fi
	[ -n "${PBFT_TEST_KEEP:-}" ] || rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT # a test timeout: exit through cleanup
fail() { echo "FAIL [$name]: $*" >&2; exit 1; }
failed=0
# check OK MESSAGE: prints the figure; a bound that does not hold fails the
# script at its end (so every figure of the run is printed first).
check() {
	if [ "$1" = 1 ]; then
		echo "ok: $2"
	else
		echo "BOUND EXCEEDED: $2" >&2
		failed=1
	fi
}
finish() {
	[ "$failed" = 0 ] || fail "a bound did not hold (see above)"
	echo "$name: every bound held"
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

# cluster_init [pbftctl init args...]: keys and cluster.ini in $dir/c, for
# n = $cluster_n nodes (4 unless the script says otherwise).
cluster_n=4
cluster_init() {
	local base=$((10000 + ($$ % 2200) * 10))
	"$pbftctl" init -n $cluster_n --base-port "$base" -o "$dir/c" "$@" \
	    >/dev/null
	cfg=$dir/c/cluster.ini
	sed -i 's/^view_change_timeout.*/view_change_timeout = 2s/' "$cfg"
	sed -i 's/^checkpoint_interval.*/checkpoint_interval = 20/' "$cfg"
	grep -q '^checkpoint_interval = 20' "$cfg" ||
	    sed -i '/^\[cluster\]/a checkpoint_interval = 20' "$cfg"
}

ctl() { timeout $((20 * mult)) "$pbftctl" -c "$cfg" -t $((15 * mult)) "$@"; }
status() { ctl status --json; }
# field NODE PATH: a field of a replica's status ("rejected.bad_signature").
# A replica that did not answer pbftd in time is listed without its
# counters: ask again, a bounded number of times.
field() {
	local v
	for _ in $(seq 1 $((10 * mult))); do
		if v=$(status | python3 -c '
import json, sys
v = json.load(sys.stdin)["replicas"][int(sys.argv[1])]
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
sys.exit(3) if v is None else print(v)' "$1" "$2"); then
			echo "$v"
			return 0
		fi
		sleep 0.5
	done
	fail "no $2 in node $1's status: $(status)"
}

# cluster_start NODES: pbftd running the comma-separated NODES; waits until
# they run and a request is ordered.
cluster_start() {
	local nodes=$1
	"$pbftd" -c "$cfg" --nodes "$nodes" 2>"$dir/pbftd.log" &
	pid=$!
	wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
	local up='
import json, sys
s = json.load(sys.stdin)
want = [int(i) for i in sys.argv[1].split(",")]
r = s["replicas"]
sys.exit(0 if all(r[i]["state"] == "running" and "view" in r[i] and r[i]["pid"] > 0 for i in want) else 1)'
	wait_until 20 sh -c "'$pbftctl' -c '$cfg' status --json | python3 -c '$up' '$nodes'" ||
	    fail "replicas did not come up: $(status)"
	for i in ${nodes//,/ }; do rpids+=("$(field "$i" pid)"); done
	ctl submit warm-up >/dev/null || fail "the cluster does not order requests"
}

# cpu_ticks PID: user + system time of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# shellcheck disable=SC2034
ticks_per_s=$(getconf CLK_TCK)
# rss_kb PID: resident memory of a process.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# json FILE KEY: a top-level field of the one JSON object in FILE.
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
