#!/usr/bin/env bash
# xfer_liar.sh - a lying state-transfer peer against a replica that lost its
# data, on 127.0.0.1 under pbftd (fault-injection builds):
#   PBFT_FAULTS="0:lying-tail,0:fetch-flood,3:xfer-first=0": node 0 serves
#   a state whose head names a tail 256 MiB longer than the certified one,
#   and invents that tail; node 3, wiped, asks node 0 first.
#   1. node 3 refuses node 0's state and completes from another replica;
#      its ledger file never holds more than a correct replica's ledger
#      (the certified state, and the batches executed after it) plus one
#      chunk (sampled every 10 ms while it catches up);
#   2. node 3 remembers node 0 across a restart: stopped (keeping its data)
#      while the cluster moves on, then restarted, it fetches the state
#      again without asking node 0 first;
#   3. node 0 also floods node 1 with state requests (fetch-flood)
#      throughout: node 1 refuses what exceeds its budget for node 0 and
#      its write queue to node 0 never overflows.
# Needs PBFT_BUILD (a -Dfault_injection=true build directory). Hard time
# bounds throughout.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" xfer-liar
log_skip=connected
chunk=1048576

export PBFT_FAULTS=${PBFT_FAULTS:-0:lying-tail,0:fetch-flood,3:xfer-first=0}
"$pbftctl" init -n 4 --base-port "$base" --clients 2 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 3s/' "$cfg"
sed -i 's/^checkpoint_interval.*/checkpoint_interval = 20/' "$cfg"
grep -q '^checkpoint_interval = 20' "$cfg" ||
    sed -i '/^\[cluster\]/a checkpoint_interval = 20' "$cfg"
converged() {
	status | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
ok = (all(x["state"] == "running" for x in r) and
      not any(x.get("state_transfer") for x in r) and
      len({x["last_executed"] for x in r}) == 1 and
      len({x["state_digest"] for x in r}) == 1 and
      r[0]["last_executed"] >= '"$1"')
sys.exit(0 if ok else 1)'
}
stopped() { [ "$(field 3 state)" = stopped ]; }
load() { # load REQUESTS TAG: that many 64 KiB transactions
	timeout $((120 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
	    --outstanding 2 --size 65536 --requests "$1" --json \
	    >"$dir/bench-$2.json" 2>"$dir/bench-$2.err" ||
	    fail "bench $2: $(cat "$dir/bench-$2.json")"
}
# Samples the size of node 3's ledger file every 10 ms into $dir/max.
poll_ledger() {
	python3 - "$dir/c/data/node-3/ledger" "$dir/max" <<'PY' &
import os, sys, time
top = 0
end = time.time() + 600
while time.time() < end:
    try:
        top = max(top, os.stat(sys.argv[1]).st_size)
    except OSError:
        pass
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % top)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    time.sleep(0.01)
PY
	bpid=$! # the poller
}
installs() { grep -cE 'replica 3: info: state of checkpoint [0-9]+ installed' "$dir/pbftd.log" || true; }
lies() { grep -c 'replica 3: warn: state from replica 0 does not match' "$dir/pbftd.log" || true; }

"$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
wait_until 20 all_running || fail "replicas did not come up"

# ---- 1. a wiped replica, a liar asked first --------------------------------
load 150 a
ctl stop 3 >/dev/null || fail "stop 3"
wait_until 10 stopped || fail "node 3 did not stop"
rm -rf "$dir/c/data/node-3"
exec1=$(field 0 last_executed)
poll_ledger
t0=$(date +%s%N)
ctl restart 3 >/dev/null || fail "restart 3"
wait_until 90 converged "$exec1" ||
    fail "wiped replica did not catch up: $(status)"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
sleep 0.1
kill "$bpid" 2>/dev/null || true
wait "$bpid" 2>/dev/null || true
bpid=
top=$(cat "$dir/max")
line=$(grep -E 'replica 3: info: state of checkpoint [0-9]+ installed' \
    "$dir/pbftd.log" | tail -n 1)
[ -n "$line" ] || fail "node 3 did not catch up through state transfer"
total=$(echo "$line" | sed -E 's/.*installed \(([0-9]+) bytes.*/\1/')
from=$(echo "$line" | sed -E 's/.*from replica ([0-9]+).*/\1/')
correct=$(stat -c %s "$dir/c/data/node-1/ledger")
wchar=$(awk '/^wchar/ {print $2}' "/proc/$(field 3 pid)/io" 2>/dev/null || echo "?")
echo "node 3: ledger file at most $top bytes (node 1's: $correct; the certified state: $total); $wchar bytes written by its process; caught up in $took ms"
[ "$(lies)" -ge 1 ] || fail "node 3 did not ask node 0 first, or did not catch its lie"
[ "$from" != 0 ] || fail "node 3 installed node 0's state"
[ "$top" -le $((correct + chunk)) ] ||
    fail "node 3's ledger file grew to $top bytes; a correct one holds $correct"
ok "the lie was refused; the ledger file stayed within a correct replica's $correct bytes + one chunk ($top); completed from replica $from"

# ---- 2. the liar is remembered across a restart -----------------------------
ctl stop 3 >/dev/null || fail "stop 3 (2)"
wait_until 10 stopped || fail "node 3 did not stop (2)"
n0=$(installs)
l0=$(lies)
load 120 b
exec2=$(field 0 last_executed)
ctl restart 3 >/dev/null || fail "restart 3 (2)"
wait_until 90 converged "$exec2" ||
    fail "node 3 did not catch up after its restart: $(status)"
[ "$(installs)" -gt "$n0" ] || fail "node 3 caught up without a state transfer"
[ "$(lies)" -eq "$l0" ] ||
    fail "after a restart node 3 asked the liar it had caught before"
ok "after a restart node 3 fetched the state again without asking node 0"

# ---- 3. a flood of state requests -----------------------------------------
# Node 0 has asked node 1 for chunks of its state, 100 requests every 10 ms,
# since its first checkpoint: node 1 answered within its budget for node 0,
# never overflowing its queue to node 0 (a full queue disconnects).
case $PBFT_FAULTS in *0:fetch-flood*)
	drops=$(field 1 queue_drops)
	refused=$(field 1 state_requests_refused)
	echo "node 1: $refused state requests refused, $drops write queues overflowed"
	[ "$drops" -eq 0 ] ||
	    fail "node 1's queue to node 0 overflowed $drops times under a flood of state requests"
	[ "$refused" -gt 0 ] || fail "node 1 refused no state request of the flood"
	ok "node 1 answered a flood of state requests within its budget: $refused refused, no queue overflowed"
	;;
esac
