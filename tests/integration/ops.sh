#!/usr/bin/env bash
# ops.sh - what an operator relies on, with real processes on 127.0.0.1:
#   - metrics_listen serves Prometheus text: per-replica gauges and
#     counters that move with the load, rejected input by reason, and a
#     fsync latency histogram; anything but GET /metrics gets 404/405;
#   - -L FILE: pbftd and its replicas log there; after the file is moved
#     away, SIGHUP makes every process write to a new FILE;
#   - with NOTIFY_SOCKET set, pbftd sends STATUS=waiting for ..., then
#     READY=1 once a quorum of replicas is connected (and its client to
#     them), then STATUS= lines;
#   - SIGHUP does not stop a replica started by hand.
# Needs PBFT_BUILD (the meson build directory). Hard time bounds throughout.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" ops

mport=$((base + 9))
"$pbftctl" init -n 4 --base-port "$base" -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i "/^\[cluster\]/a metrics_listen = 127.0.0.1:$mport" "$cfg"

# A stand-in for systemd's notification socket.
notify_stub 60
NOTIFY_SOCKET=$dir/notify.sock "$pbftd" -c "$cfg" -L "$dir/pbftd.log" \
    2>"$dir/stderr.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
wait_until 10 grep -q "^READY=1" "$dir/notify.txt" || fail "no READY=1"
# Waiting first (the first poll comes before any replica answered), READY=1
# with a quorum up, and nothing but STATUS=waiting before it.
python3 - "$dir/notify.txt" <<'PY' || fail "sd_notify order: $(cat "$dir/notify.txt")"
import re, sys
lines = open(sys.argv[1]).read().split('\n')
r = lines.index('READY=1')
before = [l for l in lines[:r] if l.startswith('STATUS=')]
assert any(l.startswith('STATUS=waiting for ') for l in before)
assert all(l.startswith('STATUS=waiting for ') or
    l.startswith('STATUS=starting ') for l in before), before
m = re.match(r'STATUS=ready; ([34]) of 4 replicas up', lines[r + 1])
assert m, lines[r + 1]
PY
wait_until 5 grep -q "^STATUS=ready; 4 of 4 replicas up; view 0, last executed" \
    "$dir/notify.txt" || fail "no STATUS updates: $(cat "$dir/notify.txt")"
ok "sd_notify: STATUS=waiting, READY=1 once a quorum is connected, then STATUS lines"
for i in $(seq 1 30); do ctl submit "m$i" >/dev/null || fail "submit m$i"; done

# scrape PATH: prints "STATUS BODY" via python (no curl needed).
scrape() {
	python3 - "$mport" "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen('http://127.0.0.1:%s%s' % (sys.argv[1], sys.argv[2]), timeout=5)
    print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
PY
}
metrics_ready() {
	scrape /metrics >"$dir/m.txt" && python3 - "$dir/m.txt" <<'PY'
import sys
lines = open(sys.argv[1]).read().split('\n')
assert lines[0] == '200'
vals = {}
for l in lines[1:]:
    if l and not l.startswith('#'):
        k, v = l.rsplit(' ', 1)
        vals[k] = float(v)
for n in range(4):
    assert vals['pbft_replica_up{node="%d"}' % n] == 1
    assert vals['pbft_requests_executed_total{node="%d"}' % n] >= 30
    assert vals['pbft_last_executed{node="%d"}' % n] >= 30
    assert vals['pbft_peers_connected{node="%d"}' % n] == 3
    assert vals['pbft_wal_fsync_seconds_count{node="%d"}' % n] > 0
    assert vals['pbft_wal_fsync_seconds_bucket{node="%d",le="+Inf"}' % n] == \
        vals['pbft_wal_fsync_seconds_count{node="%d"}' % n]
    assert ('pbft_rejected_total{node="%d",reason="bad_signature"}' % n) in vals
    assert ('pbft_rejected_total{node="%d",reason="handshake"}' % n) in vals
    assert vals['pbft_wal_compactions_abandoned_total{node="%d"}' % n] == 0
    assert ('pbft_snapshots_total{node="%d"}' % n) in vals
    assert ('pbft_state_transfer_bytes_total{node="%d"}' % n) in vals
    assert vals['pbft_muted{node="%d"}' % n] == 0
    # the normal case checks no replica signature (checkpoints and view
    # changes do): far fewer checks than requests
    assert vals['pbft_replica_signature_checks_total{node="%d"}' % n] < \
        vals['pbft_requests_executed_total{node="%d"}' % n] / 4
assert sum(vals['pbft_request_signature_checks_total{node="%d"}' % n]
    for n in range(4)) > 0
assert 'pbft_view_changes_total{node="0"}' in vals
PY
}
wait_until 10 metrics_ready || fail "metrics: $(head -c 2000 "$dir/m.txt")"
ok "GET /metrics: up, executed, peers, fsync histogram, signature checks, rejections by reason"

# A connection that sends garbage to a replica shows up as a rejection.
python3 -c 'import socket; s = socket.create_connection(("127.0.0.1", '"$base"')); s.sendall(b"\x10\x00\x00\x00garbage-garbage!"); s.recv(100)' 2>/dev/null || true
rejected() {
	scrape /metrics | grep -q 'pbft_rejected_total{node="0",reason="handshake"} [1-9]'
}
wait_until 10 rejected || fail "garbage was not counted: $(scrape /metrics | grep 'node="0",reason="handshake"')"
ok "garbage on a replica port counted as rejected (handshake)"
[ "$(scrape /nope | head -n 1)" = 404 ] || fail "GET /nope was not 404"
code=$(python3 -c '
import socket; s = socket.create_connection(("127.0.0.1", '"$mport"'))
s.sendall(b"POST /metrics HTTP/1.0\r\n\r\n"); print(s.recv(100).split()[1].decode())')
[ "$code" = 405 ] || fail "POST /metrics gave $code"
ok "other paths 404, other methods 405"

# Logs: everything in the file; rotate, SIGHUP, new file.
grep -q "pbftd: info: cluster" "$dir/pbftd.log" || fail "pbftd did not log to -L"
grep -q "replica 3: info:" "$dir/pbftd.log" || fail "replicas did not log to -L"
mv "$dir/pbftd.log" "$dir/pbftd.log.1"
kill -HUP "$pid"
wait_until 10 grep -q "pbftd: info: SIGHUP: reopened" "$dir/pbftd.log" ||
    fail "pbftd did not reopen its log"
for n in 0 1 2 3; do
	wait_until 10 grep -q "replica $n: info: SIGHUP: log file reopened" \
	    "$dir/pbftd.log" || fail "replica $n did not reopen its log"
done
ctl submit after-rotate >/dev/null || fail "submit after SIGHUP"
kill -0 "$pid" || fail "pbftd died on SIGHUP"
ok "-L log file: rotated with SIGHUP by pbftd and every replica"

kill -TERM "$pid"
wait "$pid" || fail "pbftd exit status after SIGTERM"
pid=
"$replica" -c "$cfg" -i 0 2>"$dir/hand.log" &
rp=$!
wait_until 10 grep -q "listening on" "$dir/hand.log" || fail "replica by hand"
kill -HUP "$rp"
sleep 0.3
kill -0 "$rp" || fail "SIGHUP stopped a replica"
kill -TERM "$rp"; wait "$rp" || fail "replica exit after SIGTERM"
ok "SIGHUP leaves a replica running"
echo "$passed passed, 0 failed"
