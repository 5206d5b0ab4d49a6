#!/usr/bin/env bash
# access.sh - key-value access rules end to end: two pbftd, each acting as
# its own client (admin and bench0), on one cluster. A key belongs to the
# client that created it: the other may read it but not put or delete it
# (pbftctl says why and exits non-zero); a write_prefixes grant lets it
# write; client_max_keys refuses a put with a quota error.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" access
gentle=1 # both pbftd stop their replicas

"$pbftctl" init -n 4 --base-port "$base" --clients 1 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 2s/
/^\[cluster\]/a client_max_keys = 2
/^\[client.bench0\]/a write_prefixes = team/' "$cfg"

"$pbftd" -c "$cfg" --nodes 0,1 -s "$dir/a.sock" 2>"$dir/pbftd-a.log" &
pids+=($!)
"$pbftd" -c "$cfg" --nodes 2,3 -s "$dir/b.sock" --client bench0 \
    2>"$dir/pbftd-b.log" &
pids+=($!)
A() { timeout $((30 * mult)) "$pbftctl" -s "$dir/a.sock" -t $((20 * mult)) "$@"; }
B() { timeout $((30 * mult)) "$pbftctl" -s "$dir/b.sock" -t $((20 * mult)) "$@"; }

up=0
for _ in $(seq 1 $((60 * mult))); do
	A put k v1 >/dev/null 2>&1 && { up=1; break; }
	sleep 0.5
done
[ $up = 1 ] || fail "the cluster did not order a put"
[ "$(B get k)" = v1 ] || fail "bench0 cannot read admin's key"
refuses "denied: the key belongs to another client" B put k v2
refuses "denied" B del k
[ "$(A get k)" = v1 ] || fail "admin's key changed"
A put k v3 >/dev/null || fail "the owner cannot write its key"
ok "another client's put and del are refused; it reads; the owner writes"

A put team/x v1 >/dev/null || fail "admin put team/x"
B put team/x v2 >/dev/null || fail "the write_prefixes grant is refused"
[ "$(A get team/x)" = v2 ] || fail "team/x not written"
ok "write_prefixes = team/ lets bench0 write admin's team/x"

refuses "quota" A put third v
B put mine v >/dev/null || fail "bench0's own quota is separate"
ok "client_max_keys = 2: admin's third key is refused with a quota error"

echo "$passed passed, 0 failed"
