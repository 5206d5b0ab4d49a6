#!/bin/sh
# check_symbols.sh INCLUDE_DIR LIBPBFT... - libpbft (libpbft.so's dynamic
# symbols, libpbft.a's global ones) defines exactly the functions its
# public headers declare (PBFT_API in INCLUDE_DIR/pbft/*.h): nothing
# internal is visible (cfg_load, wire_*, ...), nothing declared is missing.
set -eu
inc=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -h -v "^#" "$inc"/pbft/*.h | grep -o 'PBFT_API[^(]*(' |
    sed 's/.*[ *]\([A-Za-z_0-9]*\)($/\1/' | sort -u >"$tmp/declared"
rc=0
for lib in "$@"; do
	case $lib in
	*.a) nm --defined-only "$lib" ;;
	*) nm -D --defined-only "$lib" ;;
	esac | awk '$2 ~ /^[TDBRGSVW]$/ { sub(/@.*/, "", $3); print $3 }' |
	    sort -u >"$tmp/exported"
	if ! cmp -s "$tmp/exported" "$tmp/declared"; then
		echo "check_symbols: $lib: defined (<) and declared (>) differ:"
		diff "$tmp/exported" "$tmp/declared" || true
		rc=1
	fi
done
[ $rc = 0 ] && echo "check_symbols: ok ($(wc -l <"$tmp/declared") functions)"
exit $rc
