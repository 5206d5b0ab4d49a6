#!/usr/bin/env bash
# replicas.sh - four pbft-replica processes started by hand from a
# `pbftctl init` configuration, on 127.0.0.1 only:
#   1. 1,000 requests through the client library (pbftctl bench) complete,
#      and the four ledger journals are identical, entry by entry;
#   2. kill -9 of the primary: the others change view and keep serving;
#   3. the killed replica restarts mute, one stopped cleanly does not.
# Needs PBFT_BUILD (the meson build directory). Hard time bounds throughout.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" replicas

"$pbftctl" init -n 4 --base-port "$base" -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
# Short view-change timeout so the failover part stays quick.
sed -i 's/^view_change_timeout.*/view_change_timeout = 1s/' "$cfg"
grep -q '^view_change_timeout' "$cfg" ||
    sed -i '/^\[cluster\]/a view_change_timeout = 1s' "$cfg"

for i in 0 1 2 3; do
	"$replica" -c "$cfg" -i $i 2>"$dir/replica$i.log" &
	pids[$i]=$!
done

echo "submitting 1000 requests"
timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --requests 1000 \
    --outstanding 20 --size 64 --json >"$dir/bench1.json" ||
    fail "bench did not complete 1000 requests: $(cat "$dir/bench1.json")"
grep -q '"completed":1000' "$dir/bench1.json" ||
    fail "not all requests completed: $(cat "$dir/bench1.json")"

# Every replica executes in the same order; wait for stragglers, bounded.
for _ in $(seq 1 $((50 * mult))); do
	sizes=$(for i in 0 1 2 3; do stat -c %s "$dir/c/data/node-$i/ledger"; done | sort -u | wc -l)
	[ "$sizes" = 1 ] && break
	sleep 0.2
done
for i in 1 2 3; do
	cmp "$dir/c/data/node-0/ledger" "$dir/c/data/node-$i/ledger" ||
	    fail "ledger of node $i differs from node 0"
done
entries=$(python3 - "$dir/c/data/node-0/ledger" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
off = n = 0
while off < len(data):
    idx, ln = struct.unpack_from('<QI', data, off)
    assert idx == n, (idx, n)
    off += 12 + ln
    n += 1
print(n)
PY
)
[ "$entries" = 1000 ] || fail "ledger has $entries entries, want 1000"
echo "ok: 1000 requests, four identical ledgers"

# serve200 NAME WHEN: 200 requests from 4 clients complete (bench NAME.json).
serve200() {
	timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --requests 200 \
	    --clients 4 --outstanding 1 --size 64 --json >"$dir/$1.json" ||
	    fail "cluster did not serve $2: $(cat "$dir/$1.json")"
	grep -q '"completed":200' "$dir/$1.json" ||
	    fail "not all requests completed $2"
}

echo "killing the primary (node 0)"
kill -9 "${pids[0]}"
serve200 bench2 "after the primary died"
grep -q "entered view" "$dir/replica1.log" ||
    fail "no view change logged by replica 1"
echo "ok: view change after the primary was killed"

# 3. A replica that was killed starts mute (it may have sent pre-prepares
#    or prepares whose records it lost); one stopped with SIGTERM does not.
#    Either way the cluster keeps serving with it back.
wait "${pids[0]}" 2>/dev/null || true
"$replica" -c "$cfg" -i 0 2>"$dir/replica0b.log" &
pids[0]=$!
kill -TERM "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
"$replica" -c "$cfg" -i 2 2>"$dir/replica2b.log" &
pids[2]=$!
serve200 bench3 "after the restarts"
grep -q "did not stop cleanly" "$dir/replica0b.log" ||
    fail "replica 0 restarted after kill -9 without going mute"
if grep -q "did not stop cleanly" "$dir/replica2b.log"; then
	fail "replica 2 went mute after a clean stop"
fi
echo "ok: mute after kill -9, not after SIGTERM; the cluster serves"
echo "1 passed, 0 failed"
