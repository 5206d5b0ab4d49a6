#!/bin/sh
# check_symbols.sh LIBPBFT.so INCLUDE_DIR - libpbft exports exactly the
# functions its public headers declare (PBFT_API in INCLUDE_DIR/pbft/*.h):
# nothing internal leaks (cfg_load, wire_*, ...), nothing declared is
# missing.
set -eu
lib=$1
inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" \
    { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/exported"
grep -h -v "^#" "$inc"/pbft/*.h | grep -o 'PBFT_API[^(]*(' |
    sed 's/.*[ *]\([A-Za-z_0-9]*\)($/\1/' | sort -u >"$tmp/declared"
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
	echo "check_symbols: exported (<) and declared (>) differ:"
	diff "$tmp/exported" "$tmp/declared" || true
	exit 1
fi
echo "check_symbols: ok ($(wc -l <"$tmp/declared") functions)"
