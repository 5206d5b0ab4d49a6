#!/usr/bin/env bash
# histcheck_test.sh - the history checker accepts a correct hand-made
# history and rejects a lost acknowledged request, a reordered one, an
# acknowledged request executed twice, and ledgers in two orders.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/pbft-histcheck.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ledger FILE TX...: a journal with these transactions (hex) in order.
ledger() {
	python3 - "$@" <<'PY'
import struct, sys
with open(sys.argv[1], 'wb') as f:
    for i, h in enumerate(sys.argv[2:]):
        b = bytes.fromhex(h)
        f.write(struct.pack('<QI', i, len(b)) + b)
PY
}
ledger "$dir/l0" aa01 aa02 aa03
ledger "$dir/l1" aa01 aa02 aa03
ledger "$dir/fork" aa01 aa03 aa02
ledger "$dir/twice" aa01 aa02 aa03 aa02

# a: acked at 0, done before b was invoked; b at 1; c at 2, concurrent.
cat >"$dir/good" <<'L'
ok c0 100 200 1 0 aa01
ok c1 300 400 2 1 aa02
ok c0 350 500 2 2 aa03
timeout c1 600 700 - - aa09
L
check() { python3 "$here/histcheck.py" "$@" >"$dir/out" 2>&1; }

check --log "$dir/good" "$dir/l0" "$dir/l1" ||
    fail "good history rejected: $(cat "$dir/out")"

# Bad 1: an acknowledged request missing from the ledgers.
sed 's/^ok c0 350 500 2 2 aa03$/ok c0 350 500 2 2 aa04/' "$dir/good" >"$dir/lost"
if check --log "$dir/lost" "$dir/l0" "$dir/l1"; then fail "lost request accepted"; fi
grep -q "lost" "$dir/out" || fail "lost: $(cat "$dir/out")"

# Bad 2: reordered: aa03 acknowledged before aa02 was invoked, yet aa02
# holds the lower index.
cat >"$dir/reordered" <<'L'
ok c0 100 200 1 0 aa01
ok c0 210 250 2 2 aa03
ok c1 300 400 2 1 aa02
L
if check --log "$dir/reordered" "$dir/l0" "$dir/l1"; then fail "reordered history accepted"; fi
grep -q "reordered" "$dir/out" || fail "reordered: $(cat "$dir/out")"

# Executed twice, and two orders among the ledgers.
if check --log "$dir/good" "$dir/twice"; then fail "duplicate accepted"; fi
grep -q "executed 2 times" "$dir/out" || fail "twice: $(cat "$dir/out")"
if check --log "$dir/good" "$dir/l0" "$dir/fork"; then fail "fork accepted"; fi
grep -q "two orders" "$dir/out" || fail "fork: $(cat "$dir/out")"
echo "5 passed, 0 failed"
