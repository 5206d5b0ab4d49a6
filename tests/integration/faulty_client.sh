#!/usr/bin/env bash
# faulty_client.sh - a client whose requests authenticate at some replicas
# and not at others (the attack of the Aardvark paper), in a 4-node
# cluster under pbftd; needs a fault-injection build (PBFT_CLIENT_FAULT):
#   - bad-macs: the MACs for replicas 1 and 3 are wrong, the signature is
#     right: every request completes (every replica judges a request by its
#     signature, so the MACs do not matter) and no view change happens;
#   - bad-sig: every MAC is right, the signature wrong: nothing executes,
#     the requests are rejected, and still no view change happens;
#   - a correct client afterwards is served, and every acknowledged request
#     is in every ledger (histcheck).
# Needs PBFT_BUILD. Hard time bounds throughout.
set -euo pipefail

build=${PBFT_BUILD:?PBFT_BUILD must name the build directory}
mult=${PBFT_TIMEOUT_MULT:-1}
pbftctl=$build/pbftctl/pbftctl
pbftd=$build/pbftd/pbftd
here=$(cd "$(dirname "$0")" && pwd)
histcheck=$here/../tools/histcheck.py
dir=$(mktemp -d /tmp/pbft-fclient.XXXXXX)
pid=
cleanup() {
	local rc=$?
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	pkill -9 -f "pbft-replica -c $dir/" 2>/dev/null || true
	wait 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		grep -v "connected" "$dir/pbftd.log" 2>/dev/null | tail -n 40 || true
	fi
	[ -n "${PBFT_TEST_KEEP:-}" ] || rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT # a test timeout: exit through cleanup
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
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

base=$(( 10000 + ($$ % 2200) * 10 ))
"$pbftctl" init -n 4 --base-port "$base" --clients 3 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 1s/' "$cfg"
ctl() { timeout $((20 * mult)) "$pbftctl" -c "$cfg" -t $((15 * mult)) "$@"; }
sum() { # sum FIELD: over all replicas (rejected.X for nested)
	ctl status --json | python3 -c '
import json, sys
t = 0
for r in json.load(sys.stdin)["replicas"]:
    v = r
    for k in sys.argv[1].split("."):
        v = v.get(k, 0) if isinstance(v, dict) else 0
    t += v
print(t)' "$1"
}
"$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
all_up() { [ "$(sum peers_connected)" = 12 ]; }
wait_until 10 all_up || fail "replicas did not connect"

PBFT_CLIENT_FAULT=bad-macs timeout $((60 * mult)) "$pbftctl" bench \
    -c "$cfg" --clients 2 --outstanding 2 --duration 4 --json \
    --log "$dir/h1" >"$dir/b1.json" 2>/dev/null || true
grep -q '"timeouts":0' "$dir/b1.json" || fail "bad-macs: $(cat "$dir/b1.json")"
n1=$(grep -c '^ok ' "$dir/h1" || true)
[ "$n1" -gt 100 ] || fail "bad-macs: only $n1 requests"
[ "$(sum view_changes)" = 0 ] || fail "bad MACs forced a view change"
ok "bad MACs for two replicas: $n1 requests done (judged by the signature), no view change"

PBFT_CLIENT_FAULT=bad-sig timeout $((60 * mult)) "$pbftctl" bench \
    -c "$cfg" --clients 1 --outstanding 2 --duration 3 --json \
    >"$dir/b2.json" 2>/dev/null || true
grep -q '"completed":0' "$dir/b2.json" || fail "bad-sig executed: $(cat "$dir/b2.json")"
sleep $((3 * mult))
[ "$(sum rejected.bad_request)" -gt 0 ] || fail "bad signatures were not rejected"
[ "$(sum view_changes)" = 0 ] || fail "bad signatures forced a view change"
ok "bad signature, good MACs: nothing executed, $(sum rejected.bad_request) rejections, no view change"

timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 2 --duration 2 --json --log "$dir/h3" >"$dir/b3.json" \
    2>/dev/null || fail "a correct client was not served"
same() {
	ctl status --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
sys.exit(0 if len({x["last_executed"] for x in r}) == 1 else 1)'
}
wait_until 30 same || fail "replicas did not converge"
python3 "$histcheck" --log "$dir/h1" --log "$dir/h3" \
    "$dir"/c/data/node-{0,1,2,3}/ledger || fail "history check"
ok "a correct client is served; every acknowledged request in every ledger"
echo "$passed passed, 0 failed"
