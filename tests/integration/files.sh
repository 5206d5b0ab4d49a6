#!/usr/bin/env bash
# files.sh - files another local user could plant:
#   - `pbftctl init -o DIR` refuses a DIR or DIR/keys writable by others,
#     or (run as root, planted as nobody) owned by another user;
#   - a key path that exists is refused without --force, and a planted
#     symlink never receives a key, with or without --force (keygen too);
#   - pbftd removes a stale control socket of its own, but refuses a path
#     holding a regular file or a symlink, leaving it and its target alone;
#     the socket it makes has mode 0660.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" files
chmod 755 "$dir"
loot=$dir/loot
: >"$loot"

# A directory others may write: refused, nothing written inside.
mkdir -m 0777 "$dir/open"
chmod 0777 "$dir/open"
refuses "writable by group or others" "$pbftctl" init -n 4 -o "$dir/open"
mkdir -m 0700 "$dir/c2" && mkdir -m 0770 "$dir/c2/keys"
chmod 0770 "$dir/c2/keys"
refuses "keys is writable by group" "$pbftctl" init -n 4 -o "$dir/c2"
[ -z "$(find "$dir/open" "$dir/c2/keys" -mindepth 1)" ] || fail "wrote into them"
ok "init refuses a directory or keys directory others may write"

# A directory owned by someone else (root only: plant it as nobody).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	mkdir -m 0755 "$dir/theirs"
	chown 65534:65534 "$dir/theirs"
	setpriv --reuid=65534 --regid=65534 --clear-groups \
	    mkdir -m 0700 "$dir/theirs/keys"
	refuses "belongs to uid 65534" "$pbftctl" init -n 4 -o "$dir/theirs"
	ok "init refuses a directory owned by another user"
else
	echo "skip: owner check (needs root to plant as another user)"
fi

# A planted symlink where a key goes: refused, with or without --force
# (which replaces regular files only); its target is never written.
mkdir -m 0700 "$dir/c" "$dir/c/keys"
ln -s "$loot" "$dir/c/keys/node0.pem"
refuses "node0.pem exists \(use --force" \
    "$pbftctl" init -n 4 --base-port "$base" -o "$dir/c"
refuses "node0.pem exists and is not a regular file" \
    "$pbftctl" init -n 4 --base-port "$base" -o "$dir/c" --force
[ ! -s "$loot" ] || fail "init wrote a key through the symlink"
[ -L "$dir/c/keys/node0.pem" ] || fail "init removed the symlink"
rm "$dir/c/keys/node0.pem"
"$pbftctl" init -n 4 --base-port "$base" -o "$dir/c" --force >/dev/null ||
    fail "init --force over the keys of the first attempt"
[ -f "$dir/c/keys/node0.pem" ] && [ ! -L "$dir/c/keys/node0.pem" ] ||
    fail "node0.pem is not a regular file"
[ "$(stat -c %a "$dir/c/keys/node0.pem")" = 600 ] || fail "key mode"
refuses "cluster.ini exists \(use --force" \
    "$pbftctl" init -n 4 --base-port "$base" -o "$dir/c"
ok "a planted key symlink is refused, even with --force, and not followed"

ln -s "$loot" "$dir/k.pem"
refuses "k.pem exists \(use --force" "$pbftctl" keygen -o "$dir/k.pem"
refuses "not a regular file" "$pbftctl" keygen -o "$dir/k.pem" --force
[ ! -s "$loot" ] || fail "keygen wrote through the symlink"
"$pbftctl" keygen -o "$dir/k2.pem" >/dev/null || fail "keygen"
"$pbftctl" keygen -o "$dir/k2.pem" --force >/dev/null ||
    fail "keygen --force over a regular file"
[ "$(stat -c %a "$dir/k2.pem")" = 600 ] || fail "keygen --force: mode"
ok "keygen: a symlink is refused, even with --force; a key file is replaced"

# The control socket path.
cfg=$dir/c/cluster.ini
sock=$dir/c/pbftd.sock
echo "precious" >"$dir/precious"
chmod 0600 "$dir/precious"
for plant in file symlink; do
	rm -f "$sock"
	if [ $plant = file ]; then
		echo "not a socket" >"$sock"
	else
		ln -s "$dir/precious" "$sock"
	fi
	refuses "not a socket of ours" timeout $((20 * mult)) "$pbftd" -c "$cfg"
	[ -e "$sock" ] || fail "pbftd removed the planted $plant"
	[ "$(cat "$dir/precious")" = precious ] &&
	    [ "$(stat -c %a "$dir/precious")" = 600 ] ||
	    fail "pbftd changed the symlink's target"
done
ok "pbftd leaves a regular file or symlink at the socket path alone"

# A stale socket of our own (a pbftd killed with -9) is replaced.
rm -f "$sock"
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$sock"
[ -S "$sock" ] || fail "could not make a stale socket"
"$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
for _ in $(seq 1 $((100 * mult))); do
	timeout 5 "$pbftctl" -c "$cfg" -t 3 status >/dev/null 2>&1 && break
	sleep 0.1
done
timeout 5 "$pbftctl" -c "$cfg" -t 3 status >/dev/null ||
    fail "pbftd did not serve after replacing its stale socket"
[ "$(stat -c %a "$sock")" = 660 ] || fail "socket mode $(stat -c %a "$sock")"
kill "$pid"
wait "$pid" || true
pid=
[ ! -e "$sock" ] || fail "pbftd left its socket behind"
ok "a stale socket is replaced; the new one has mode 0660"

echo "$passed passed, 0 failed"
