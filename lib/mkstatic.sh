#!/bin/sh
# mkstatic.sh OUT.a AR LD OBJCOPY OBJ... - libpbft.a as one relocatable
# object whose hidden symbols (everything include/pbft/ does not declare)
# are made local, so that a program linked with it sees the public API
# only, as with the shared library.
set -eu
out=$1 ar=$2 ld=$3 objcopy=$4
shift 4
tmp=$out.o
rm -f "$out" "$tmp"
"$ld" -r -o "$tmp" "$@"
"$objcopy" --localize-hidden "$tmp"
"$ar" rcs "$out" "$tmp"
rm -f "$tmp"
