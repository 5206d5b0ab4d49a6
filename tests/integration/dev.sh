#!/usr/bin/env bash
# dev.sh - the original's way of starting nodes: four `pbft-replica --dev`
# processes (keys derived from the node index, addresses from the port)
# reach consensus on requests sent through the client library. The client
# side is a cluster.ini written with the same derived keys.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" dev

# The seed of demo key i is SHA-256("pbft-dev-key" || u32le(i)).
seed() { python3 -c 'import hashlib, struct, sys
print(hashlib.sha256(b"pbft-dev-key" + struct.pack("<I", int(sys.argv[1]))).hexdigest())' "$1"; }

{
	printf '[cluster]\nname = dev\ncontrol_client = dev\n'
	for i in 0 1 2 3; do
		pub=$("$pbftctl" keygen --seed "$(seed $i)")
		printf '[node.%d]\naddress = 127.0.0.1:%d\npublic_key = %s\n' \
		    $i $((base + i)) "$pub"
	done
	pub=$("$pbftctl" keygen --seed "$(seed 1000)" -o "$dir/dev.pem")
	printf '[client.dev]\npublic_key = %s\nprivate_key_file = dev.pem\n' \
	    "$pub"
} >"$dir/cluster.ini"

for i in 0 1 2 3; do
	TMPDIR=$dir "$replica" --dev -p $((base + i)) -i $i -n 4 \
	    -b 127.0.0.1:$base 2>"$dir/dev$i.log" &
	pids+=($!)
done
grep -q . "$dir/dev0.log" || sleep 0.5
out=$(timeout $((60 * mult)) "$pbftctl" bench -c "$dir/cluster.ini" \
    --requests 100 --json 2>/dev/null) || fail "bench against --dev: $out"
echo "$out" | grep -q '"completed":100' || fail "not all completed: $out"
grep -q "INSECURE" "$dir/dev0.log" || fail "--dev did not warn loudly"
echo "ok: four --dev replicas ordered 100 requests"
# Each data directory is made by mkdtemp: unpredictable name, mode 0700.
for i in 0 1 2 3; do
	d=$(echo "$dir"/pbft-dev-$((base + i))-??????)
	[ -d "$d" ] || fail "no mkdtemp data directory for node $i: $d"
	[ "$(stat -c %a "$d")" = 700 ] || fail "$d: mode $(stat -c %a "$d")"
done
echo "ok: --dev data directories made by mkdtemp (mode 0700)"
echo "2 passed, 0 failed"
