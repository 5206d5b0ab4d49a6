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

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" fclient
log_skip=connected

"$pbftctl" init -n 4 --base-port "$base" --clients 3 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 1s/' "$cfg"
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
