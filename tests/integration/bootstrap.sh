#!/usr/bin/env bash
# bootstrap.sh - a node whose [node.N] gives no address, on 127.0.0.1 only:
#   - pbft-replica without --listen, and a bootstrap that is no node's
#     address, are refused with exit 2 and one clear line;
#   - node 3 started with --listen announces itself through the bootstrap
#     peer (node 0); the others learn its address, dial it, and all four
#     ledgers end identical after 300 requests.
# Needs PBFT_BUILD (the meson build directory). Hard time bounds throughout.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" bootstrap

"$pbftctl" init -n 4 --base-port "$base" -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
port3=$((base + 3))
# Node 3's section loses its address; [cluster] names node 0 as bootstrap.
python3 - "$cfg" "$base" <<'PY'
import sys
path, base = sys.argv[1], int(sys.argv[2])
out, sect = [], None
for line in open(path):
    s = line.strip()
    if s.startswith('['):
        sect = s
    if sect == '[node.3]' and s.startswith('address'):
        continue
    out.append(line)
    if s == '[cluster]':
        out.append('bootstrap = 127.0.0.1:%d\n' % base)
open(path, 'w').write(''.join(out))
PY
grep -q "^bootstrap = 127.0.0.1:$base" "$cfg" || fail "config edit failed"

# Refusals.
set +e
msg=$("$replica" -c "$cfg" -i 3 2>&1); rc=$?
set -e
[ $rc = 2 ] || fail "replica 3 without --listen: exit $rc, want 2"
echo "$msg" | grep -q "has no address: start it with --listen" ||
    fail "replica 3 without --listen: '$msg'"
set +e
msg=$("$pbftd" -t -c "$cfg" 2>&1); rc=$?
set -e
[ $rc = 2 ] || fail "pbftd -t without --listen for node 3: exit $rc"
echo "$msg" | grep -q -- "--listen 3=HOST:PORT" || fail "pbftd -t: '$msg'"
"$pbftd" -t -c "$cfg" --listen "3=127.0.0.1:$port3" >/dev/null ||
    fail "pbftd -t with --listen refused"
sed "s/^bootstrap = .*/bootstrap = 127.0.0.1:$((base + 9))/" "$cfg" \
    >"$dir/c/bad.ini"
set +e
msg=$("$pbftd" -t -c "$dir/c/bad.ini" 2>&1); rc=$?
set -e
[ $rc = 2 ] || fail "bootstrap of no node: exit $rc"
echo "$msg" | grep -q "is not the address of any" || fail "bad bootstrap: '$msg'"
echo "ok: refusals"

for i in 0 1 2; do
	"$replica" -c "$cfg" -i $i 2>"$dir/replica$i.log" &
	pids[$i]=$!
done
"$replica" -c "$cfg" -i 3 --listen "127.0.0.1:$port3" \
    2>"$dir/replica3.log" &
pids[3]=$!

timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --requests 300 \
    --outstanding 10 --size 64 --json >"$dir/bench.json" ||
    fail "bench did not complete: $(cat "$dir/bench.json")"
grep -q '"completed":300' "$dir/bench.json" ||
    fail "not all requests completed: $(cat "$dir/bench.json")"
for _ in $(seq 1 $((100 * mult))); do
	sizes=$(for i in 0 1 2 3; do stat -c %s "$dir/c/data/node-$i/ledger" 2>/dev/null || echo 0; done | sort -u | wc -l)
	[ "$sizes" = 1 ] && break
	sleep 0.2
done
for i in 1 2 3; do
	cmp "$dir/c/data/node-0/ledger" "$dir/c/data/node-$i/ledger" ||
	    fail "ledger of node $i differs from node 0"
done
for i in 1 2; do
	grep -q "replica 3 is at 127.0.0.1:$port3 (announced" \
	    "$dir/replica$i.log" || fail "replica $i did not learn node 3's address"
done
echo "ok: node 3 found through the bootstrap peer; four identical ledgers"
echo "2 passed, 0 failed"
