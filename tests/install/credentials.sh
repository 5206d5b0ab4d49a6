#!/usr/bin/env bash
# credentials.sh - private keys given as systemd credentials
# ($CREDENTIALS_DIRECTORY, as LoadCredential= provides them):
#   - with the key files gone from keys/, `pbftd -t` fails naming the file;
#     with the keys in a credentials directory (named node0.pem, ... as the
#     files' last components) it passes;
#   - a cluster started by pbftd from credentials only (its replicas inherit
#     the directory) commits a submit;
#   - a credential, or a key file, readable by group or others is refused
#     with its path and mode, and that replica does not start;
#   - an encrypted key (pbftctl keygen --encrypt) loads with its passphrase
#     from private_key_passphrase_file or a credential, and is refused with
#     a wrong passphrase, with none, or with a passphrase file others read.
# Every wait is bounded; PBFT_TIMEOUT_MULT stretches them.
set -euo pipefail

build=${PBFT_BUILD:?PBFT_BUILD must name the build directory}
mult=${PBFT_TIMEOUT_MULT:-1}
pbftctl=$build/pbftctl/pbftctl
pbftd=$build/pbftd/pbftd
export PBFT_REPLICA_BIN=$build/pbft-replica/pbft-replica
dir=$(mktemp -d /tmp/pbft-credentials.XXXXXX)
pid=
cleanup() {
	local rc=$?
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	wait 2>/dev/null || true
	[ $rc -ne 0 ] && tail -n 20 "$dir"/pbftd*.log 2>/dev/null
	[ -n "${PBFT_TEST_KEEP:-}" ] || rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

base=$(( 12000 + ($$ % 2000) * 10 ))
"$pbftctl" init -n 4 --base-port "$base" --clients 1 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 2s/' "$cfg"
creds=$dir/creds
mkdir -m 0700 "$creds"
mv "$dir"/c/keys/*.pem "$creds"/

out=$("$pbftd" -t -c "$cfg" 2>&1) && fail "pbftd -t passed without keys"
echo "$out" | grep -q "cannot read private key file $dir/c/keys/node0.pem" ||
    fail "without keys: '$out'"
out=$(CREDENTIALS_DIRECTORY=$creds "$pbftd" -t -c "$cfg" 2>&1) ||
    fail "pbftd -t with credentials: '$out'"
echo "ok: keys found in \$CREDENTIALS_DIRECTORY, not without it"

chmod 0640 "$creds/node2.pem"
out=$(CREDENTIALS_DIRECTORY=$creds "$pbftd" -t -c "$cfg" 2>&1) &&
    fail "pbftd -t took a group-readable credential"
echo "$out" | grep -q "private key file $creds/node2.pem is readable by group or others (mode 0640" ||
    fail "group-readable credential: '$out'"
chmod 0600 "$creds/node2.pem"
cp -p "$creds/node1.pem" "$dir/c/keys/node1.pem"
chmod 0604 "$dir/c/keys/node1.pem"
out=$("$build/pbft-replica/pbft-replica" -c "$cfg" -i 1 2>&1) &&
    fail "a replica started with a world-readable key"
echo "$out" | grep -q "node1.pem is readable by group or others (mode 0604" ||
    fail "world-readable key file: '$out'"
rm "$dir/c/keys/node1.pem"
echo "ok: group- and world-readable keys are refused with path and mode"

CREDENTIALS_DIRECTORY=$creds "$pbftd" -c "$cfg" -s "$dir/s.sock" \
    2>"$dir/pbftd.log" &
pid=$!
ctl() { timeout $((30 * mult)) "$pbftctl" -s "$dir/s.sock" -t $((20 * mult)) "$@"; }
up=0
for _ in $(seq 1 $((60 * mult))); do
	ctl submit cred-tx >/dev/null 2>&1 && { up=1; break; }
	sleep 0.5
done
[ $up = 1 ] || fail "the cluster started from credentials did not commit"
echo "ok: a cluster with every key a credential commits a submit"

# Encrypted keys (PKCS#8 under a passphrase): node 1 gets a new key,
# written by `pbftctl keygen --encrypt`, its passphrase in a file named by
# private_key_passphrase_file; then as a credential. (The other keys are
# credentials since the steps above.)
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
printf 'correct horse battery staple\n' >"$dir/pass"
chmod 0600 "$dir/pass"
pub=$("$pbftctl" keygen --encrypt --passphrase-file "$dir/pass" \
    -o "$dir/c/keys/enc1.pem") || fail "keygen --encrypt"
grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$dir/c/keys/enc1.pem" ||
    fail "keygen --encrypt wrote a plain key"
enc=$dir/c/enc.ini
python3 - "$cfg" "$enc" "$pub" "$dir/c/keys/enc1.pem" "$dir/pass" <<'PY'
import sys
src, dst, pub, key, pw = sys.argv[1:]
out, sect = [], None
for line in open(src):
    if line.startswith('['):
        sect = line.strip()
    if sect == '[node.1]' and line.startswith('public_key'):
        line = 'public_key = %s\n' % pub
    if sect == '[node.1]' and line.startswith('private_key_file'):
        line = 'private_key_file = %s\nprivate_key_passphrase_file = %s\n' % (key, pw)
    out.append(line)
open(dst, 'w').write(''.join(out))
PY
out=$(CREDENTIALS_DIRECTORY=$creds "$pbftd" -t -c "$enc" 2>&1) || fail "pbftd -t with an encrypted key: '$out'"
printf 'wrong horse\n' >"$dir/pass.bad"
chmod 0600 "$dir/pass.bad"
sed "s#^private_key_passphrase_file = .*#private_key_passphrase_file = $dir/pass.bad#" \
    "$enc" >"$dir/c/bad.ini"
out=$(CREDENTIALS_DIRECTORY=$creds "$pbftd" -t -c "$dir/c/bad.ini" 2>&1) &&
    fail "pbftd -t took a wrong passphrase"
echo "$out" | grep -q "enc1.pem: cannot decrypt the key (wrong passphrase?)" ||
    fail "wrong passphrase: '$out'"
sed '/^private_key_passphrase_file/d' "$enc" >"$dir/c/nopass.ini"
out=$(CREDENTIALS_DIRECTORY=$creds "$pbftd" -t -c "$dir/c/nopass.ini" 2>&1 </dev/null) &&
    fail "pbftd -t took an encrypted key without its passphrase"
echo "$out" | grep -q "enc1.pem is encrypted: give its passphrase" ||
    fail "no passphrase: '$out'"
chmod 0644 "$dir/pass"
out=$(CREDENTIALS_DIRECTORY=$creds "$pbftd" -t -c "$enc" 2>&1) &&
    fail "pbftd -t took a world-readable passphrase file"
echo "$out" | grep -q "passphrase file $dir/pass is readable by group or others (mode 0644" ||
    fail "world-readable passphrase file: '$out'"
chmod 0600 "$dir/pass"
# The passphrase as a credential, named as the file's last component.
rm -f "$creds/pass"
cp -p "$dir/pass" "$creds/pass"
mv "$dir/pass" "$dir/pass.moved"
out=$(CREDENTIALS_DIRECTORY=$creds "$pbftd" -t -c "$enc" 2>&1) ||
    fail "pbftd -t with the passphrase as a credential: '$out'"
echo "ok: an encrypted key loads with its passphrase (a file or a credential), not with a wrong one or none; a readable passphrase file is refused"
