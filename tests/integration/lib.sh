# shellcheck shell=bash disable=SC2034
# lib.sh - what crash_all.sh and rejoin.sh share: paths from PBFT_BUILD, a
# temporary directory named for the test, a cleanup trap that kills every
# process the test started by its pid (pid: pbftd; bpid: the bench;
# rpids: replicas), fail and a wait bounded in time and count. Sourced
# with the test's name as $1.

build=${PBFT_BUILD:?PBFT_BUILD must name the build directory}
mult=${PBFT_TIMEOUT_MULT:-1}
pbftctl=$build/pbftctl/pbftctl
pbftd=$build/pbftd/pbftd
here=$(cd "$(dirname "$0")" && pwd)
histcheck=$here/../tools/histcheck.py
dir=$(mktemp -d "/tmp/pbft-$1.XXXXXX")
pid=
bpid=
rpids=()

cleanup() {
	local rc=$?
	[ -n "$bpid" ] && kill -9 "$bpid" 2>/dev/null || true
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	for p in "${rpids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		echo "--- pbftd log (test failed) ---"
		tail -n 80 "$dir/pbftd.log" 2>/dev/null || true
	fi
	[ -n "${PBFT_TEST_KEEP:-}" ] || rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT # a test timeout: exit through cleanup
fail() { echo "FAIL: $*" >&2; exit 1; }

# wait_until SECONDS CMD...: bounded in time (the machine may be loaded,
# so not in tries) and in count.
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
