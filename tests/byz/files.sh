#!/usr/bin/env bash
# files.sh - a local user who can write where an operator will run
# `pbftctl init -o DIR` plants DIR/keys/node0.pem as a symbolic link to a
# file of its own: the private key must not be written through the link
# (init refuses, or writes a new file in its place), and the planted file
# must not end up holding a key.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# Bound: no key bytes in the attacker's file. On main before the fixes of
# the issue (item 7) init accepted an existing DIR/keys owned by anyone and
# opened keys with O_TRUNC and no O_NOFOLLOW: the planted link received
# node 0's private key.
out=$dir/out
mkdir -p "$out/keys" "$dir/attacker"
chmod 0777 "$out/keys"
printf 'planted\n' >"$dir/attacker/stolen.pem"
chmod 0666 "$dir/attacker/stolen.pem"
ln -s "$dir/attacker/stolen.pem" "$out/keys/node0.pem"

rc=0
timeout $((20 * mult)) "$pbftctl" init -n 4 -o "$out" >"$dir/init.out" \
    2>"$dir/init.err" || rc=$?
echo "pbftctl init exited $rc: $(cat "$dir/init.err")"
check "$(grep -q 'PRIVATE KEY' "$dir/attacker/stolen.pem" && echo 0 || echo 1)" \
    "the planted link's target does not receive a private key"
if [ -L "$out/keys/node0.pem" ]; then
	check "$((rc != 0))" \
	    "init left the planted link in place and reported failure (exit $rc)"
fi
finish
