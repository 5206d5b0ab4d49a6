#!/usr/bin/env bash
# credentials.sh - private keys given as systemd credentials
# ($CREDENTIALS_DIRECTORY, as LoadCredential= provides them):
#   - with the key files gone from keys/, `pbftd -t` fails naming the file;
#     with the keys in a credentials directory (named node0.pem, ... as the
#     files' last components) it passes;
#   - a cluster started by pbftd from credentials only (its replicas inherit
#     the directory) commits a submit;
#   - a credential, or a key file, readable by group or others is refused
#     with its path and mode, and that replica does not start.
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
