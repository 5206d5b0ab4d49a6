#!/usr/bin/env bash
# config.sh - configuration checking end to end, through `pbftd -t`:
#   - `pbftctl init -n 4, 7, 10` write configurations that pbftd -t accepts;
#   - every error class of cluster.ini is reported as FILE:LINE: problem
#     with exit status 2;
#   - corrupting each value of a generated configuration in turn is rejected
#     with the number of that line;
#   - keygen with a seed is deterministic and writes mode 0600.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" config
ok() { passed=$((passed + 1)); } # counts, quietly

for n in 4 7 10; do
	"$pbftctl" init -n $n --base-port $((40000 + n * 20)) -o "$dir/n$n" \
	    >/dev/null || fail "init -n $n"
	out=$("$pbftd" -t -c "$dir/n$n/cluster.ini") ||
	    fail "pbftd -t rejects the n=$n config"
	[ "$out" = "configuration OK" ] || fail "n=$n: said '$out'"
	ok
done
echo "ok: init -n 4, 7, 10 accepted by pbftd -t"

base=$dir/n4/cluster.ini

# expect_error NAME PATTERN: pbftd -t on $dir/t.ini exits 2 with PATTERN.
expect_error() {
	local err rc=0
	err=$("$pbftd" -t -c "$dir/n4/t.ini" 2>&1 >/dev/null) || rc=$?
	[ $rc = 2 ] || fail "$1: exit status $rc, want 2 ($err)"
	echo "$err" | grep -Eq -- "$2" || fail "$1: '$err' does not match '$2'"
	ok
}
# mutate SED-SCRIPT: writes the n=4 config with the edit applied to t.ini.
mutate() { sed "$1" "$base" >"$dir/n4/t.ini"; }
lineof() { grep -n -m1 -- "$1" "$base" | cut -d: -f1; }

mutate '/^\[cluster\]/a frobnicate = 1'
expect_error "unknown key" "t.ini:$(( $(lineof '^\[cluster\]') + 1 )): unknown key 'frobnicate'"
mutate '$a [nodes.9]\nx = 1'
expect_error "unknown section" "t.ini:[0-9]+: unknown section \[nodes.9\]"
mutate '$a [node.1]\naddress = 127.0.0.1:1'
expect_error "duplicate id" "t.ini:[0-9]+: duplicate section \[node.1\]"
mutate 's/^\[node.3\]/[node.5]/'
expect_error "ids not 0..n-1" "node ids must be exactly 0..5: \[node.3\] is missing"
mutate 's/^\[node.2\]/[node.02]/'
expect_error "leading zero id" "t.ini:$(lineof '^\[node.2\]'): bad node id"
mutate '/^\[cluster\]/a f = 2'
expect_error "n < 3f+1" "t.ini:$(( $(lineof '^\[cluster\]') + 1 )): f = 2 needs at least 7 nodes"
l=$(grep -n '^address' "$base" | sed -n 2p | cut -d: -f1)
mutate "${l}s/.*/address = 127.0.0.1/"
expect_error "address without port" "t.ini:$l: bad address"
mutate "${l}s/.*/address = 127.0.0.1:70000/"
expect_error "port out of range" "t.ini:$l: bad address"
first=$(grep -m1 '^address' "$base")
mutate "${l}s/.*/$first/"
expect_error "duplicate address" "t.ini:$l: address .* is already used by node 0"
l=$(lineof '^public_key')
mutate "${l}s/= ./= z/"
expect_error "bad public key" "t.ini:$l: public_key must be 64 hex digits"
l=$(lineof 'private_key_file = keys/node1.pem')
mutate "${l}s/node1.pem/missing.pem/"
expect_error "unreadable key file" "t.ini:$l: cannot read private key file"
mutate "${l}s/node1.pem/node2.pem/"
expect_error "key does not match" "t.ini:$l: private key in .* does not match"
cp "$base" "$dir/n4/t.ini"
chmod 644 "$dir/n4/keys/node1.pem"
expect_error "key readable by others" "t.ini:$l: private key file .* is readable by group or others"
chmod 600 "$dir/n4/keys/node1.pem"
mutate 's/^control_client = admin/control_client = nobody/'
expect_error "unknown control client" "control_client 'nobody' has no \[client.nobody\]"
mutate '1i stray = 1'
expect_error "key outside a section" "t.ini:[0-9]+: key 'stray' outside of any section"
mutate '/^\[cluster\]/a this line has no equals sign'
expect_error "syntax error" "t.ini:$(( $(lineof '^\[cluster\]') + 1 )): syntax error"
mutate '/^\[cluster\]/a view_change_timeout = 0s'
expect_error "zero view_change_timeout" "t.ini:$(( $(lineof '^\[cluster\]') + 1 )): view_change_timeout"
mutate '/^\[cluster\]/a heartbeat_interval = 5ms'
expect_error "heartbeat_interval below 10ms" "t.ini:$(( $(lineof '^\[cluster\]') + 1 )): heartbeat_interval: want a duration"
mutate '/^\[cluster\]/a dead_after = 1500ms\nheartbeat_interval = 1s'
expect_error "dead_after under two heartbeats" "t.ini:$(( $(lineof '^\[cluster\]') + 1 )): dead_after \(1500ms\) must be at least twice heartbeat_interval \(1000ms\)"
echo "ok: every error class reported as FILE:LINE with exit status 2"

# batch_timeout = 0 is documented (propose whenever a batch may fly).
mutate '/^\[cluster\]/a batch_timeout = 0'
[ "$("$pbftd" -t -c "$dir/n4/t.ini")" = "configuration OK" ] ||
    fail "batch_timeout = 0 refused"
ok
echo "ok: batch_timeout = 0 accepted"

# Key-value access options (cluster.ini(5)).
mutate '/^\[cluster\]/a client_max_keys = 100\nclient_max_bytes = 0\nshared_prefixes = pub/, tmp/
/^\[client.admin\]/a admin = yes\nwrite_prefixes = a/,b/'
[ "$("$pbftd" -t -c "$dir/n4/t.ini")" = "configuration OK" ] ||
    fail "access options refused"
ok
cl=$(( $(lineof '^\[client.admin\]') + 1 ))
mutate '/^\[client.admin\]/a admin = maybe'
expect_error "admin not yes/no" "t.ini:$cl: admin must be yes or no"
mutate '/^\[client.admin\]/a write_prefixes = a/,,b/'
expect_error "empty prefix" "t.ini:$cl: key prefixes: each 1..255"
mutate '/^\[client.admin\]/a write_prefixes = a/ b/'
expect_error "prefixes without comma" "t.ini:$cl: key prefixes: separate"
mutate "/^\[client.admin\]/a write_prefixes = $(seq -s, 1 17)"
expect_error "too many prefixes" "t.ini:$cl: key prefixes: at most 16"
mutate '/^\[cluster\]/a client_max_bytes = -1'
expect_error "negative quota" "t.ini:$(( $(lineof '^\[cluster\]') + 1 )): client_max_bytes: want a number"
echo "ok: key-value access options parsed and checked"

# Corrupt each value in turn: the error must name that line.
lines=$(grep -n '^[a-z_]* = ' "$base" | cut -d: -f1)
for l in $lines; do
	key=$(sed -n "${l}p" "$base" | cut -d' ' -f1)
	case $key in
	data_dir | control_socket) continue ;; # any path is a valid path
	private_key_file)
		# Keys of clients pbftd does not act as are not its to check.
		sed -n "${l}p" "$base" | grep -q bench && continue ;;
	esac
	mutate "${l}s/= .*/= !!bad value!!/"
	expect_error "corrupt $key" "t.ini:$l: "
done
echo "ok: corrupting each value is rejected with its line number"

a=$("$pbftctl" keygen --seed 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f -o "$dir/k1.pem")
b=$("$pbftctl" keygen --seed 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f -o "$dir/k2.pem")
[ "$a" = "$b" ] && [ ${#a} = 64 ] || fail "seeded keygen not deterministic"
[ "$(stat -c %a "$dir/k1.pem")" = 600 ] || fail "key file mode"
if "$pbftctl" keygen -o "$dir/k1.pem" >/dev/null 2>&1; then
	fail "keygen overwrote an existing key"
fi
ok
echo "ok: keygen"
echo "$passed passed, 0 failed"
