#!/usr/bin/env bash
# durability.sh - crash and loss of a replica under pbftd, on 127.0.0.1 only:
#   1. kill -9 of a backup, and then of the primary, while two clients
#      keep pipelined load on the cluster: pbftd restarts them, all four
#      replicas converge to one last_executed and state digest, and the
#      history checker finds every acknowledged request in every ledger,
#      in one order;
#   1b. kill -9 of every replica at once under load: each restarts mute up
#      to its durable early-vote bound, the cluster serves again (in a
#      later view when that bound stops it), and nothing acknowledged is
#      lost;
#   2. a replica stopped and its data directory wiped while the cluster
#      runs more than 50 MB of transactions through many checkpoints:
#      restarted, it fetches the state by state transfer and converges;
#   2b. that replica stopped again (keeping its data) while 13 MB more go
#      through, then restarted under steady load: it installs a state
#      while the load runs, fetching only the part of the ledger it lacks;
#   3. a replica's write-ahead log cut at 16 random offsets after the
#      records its header came with: each time the replica starts, serves
#      and stops cleanly; cut among those records (durable before the
#      header) or with one byte flipped there it refuses to start with a
#      clear error; given its log back, it rejoins.
# With PBFT_FAULTS set by the caller (fault-injection builds) the same
# script exercises a faulty state-transfer peer or a replica crashing
# mid-transfer, in step 2 alone (PBFT_DURABILITY_ONLY=xfer).
# Needs PBFT_BUILD (the meson build directory). Hard time bounds throughout.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" durability

"$pbftctl" init -n 4 --base-port "$base" --clients 2 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
# pbftd restarts a killed replica after 1 s: a view-change timeout of the
# same length raced it, and a backup whose timer won alone sat in a view
# change the others never joined (a known gap, see the performance issue's
# notes). 3 s lets a restarted replica come back first. (A killed primary
# comes back mute, so the backups change view all the same.)
sed -i 's/^view_change_timeout.*/view_change_timeout = 3s/' "$cfg"
sed -i 's/^checkpoint_interval.*/checkpoint_interval = 20/' "$cfg"
grep -q '^checkpoint_interval = 20' "$cfg" ||
    sed -i '/^\[cluster\]/a checkpoint_interval = 20' "$cfg"

"$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
wait_until 20 all_running || fail "replicas did not come up"

# converged MIN: every replica running and not fetching state, one
# last_executed >= MIN and one state digest. (A replica that restarts
# waiting for a checkpoint's state reports that checkpoint as executed
# while it fetches it.)
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
ledgers() { for i in 0 1 2 3; do echo "$dir/c/data/node-$i/ledger"; done; }

# PBFT_DURABILITY_ONLY=xfer (the fault-injection variants in
# tests/integration/meson.build): step 2 alone, the state transfer their
# faults are about; the other steps run in the normal build.
only=${PBFT_DURABILITY_ONLY:-}
if [ "$only" = xfer ]; then
	: >"$dir/h1"
else # steps 1 and 1b

# ---- 1. kill -9 under load -------------------------------------------------
timeout $((90 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 4 --duration 12 --json --log "$dir/h1" \
    >"$dir/bench1.json" 2>"$dir/bench1.err" &
pids+=($!)
sleep 3
victim=$(field 2 pid)
kill -9 "$victim"
echo "killed backup 2 (pid $victim) under load"
restarted() { [ "$(field 2 restarts)" -ge 1 ] && [ "$(field 2 state)" = running ]; }
wait_until 15 restarted || fail "node 2 not restarted"
sleep 2
primary=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["primary"])')
victim=$(field "$primary" pid)
kill -9 "$victim"
echo "killed the primary, node $primary (pid $victim), under load"
wait "${pids[0]}" || true
pids=()
done1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed"])' "$dir/bench1.json")
[ "$done1" -gt 100 ] || fail "too little load got through: $(cat "$dir/bench1.json")"
ctl submit settle >/dev/null || fail "submit after the crashes"
exec1=$(field 0 last_executed)
wait_until 60 converged "$exec1" ||
    fail "replicas did not converge: $(status)"
python3 "$histcheck" --log "$dir/h1" $(ledgers) ||
    fail "history check after kill -9"
ok "kill -9 of a backup and of the primary under load: $done1 acknowledged requests, all in four identical ledgers"

# ---- 1b. kill -9 of every replica at once ----------------------------------
# Each restarts mute up to its durable early-vote bound (it may have sent
# pre-prepares or prepares there whose records it lost), so the cluster
# usually moves to the next view before it serves again; nothing
# acknowledged before the crash may be lost.
timeout $((90 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 4 --duration 6 --json --log "$dir/h1b" \
    >"$dir/bench1b.json" 2>"$dir/bench1b.err" &
pids+=($!)
sleep 2
view0=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["view"])')
victims=$(status | python3 -c '
import json, sys
print(" ".join(str(r["pid"]) for r in json.load(sys.stdin)["replicas"]))')
# shellcheck disable=SC2086
kill -9 $victims
echo "killed every replica (pids $victims) under load in view $view0"
wait "${pids[0]}" || true
pids=()
all_restarted() {
	status | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
sys.exit(0 if all(x["state"] == "running" and x["restarts"] >= 1 and "view" in x for x in r) else 1)'
}
wait_until 20 all_restarted || fail "replicas not restarted: $(status)"
ctl submit settle-after-all >/dev/null || fail "submit after killing every replica"
view1=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["view"])')
# Mute only up to its durable early-vote bound: a replica that had
# executed past it is not, so a view change is not always needed.
[ "$view1" -ge "$view0" ] ||
    fail "served in view $view1 after every replica restarted in view $view0"
exec1=$(field 0 last_executed)
wait_until 60 converged "$exec1" ||
    fail "replicas did not converge after killing every replica: $(status)"
python3 "$histcheck" --log "$dir/h1" --log "$dir/h1b" $(ledgers) ||
    fail "history check after killing every replica"
done1b=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed"])' "$dir/bench1b.json")
ok "kill -9 of every replica under load: served again in view $view1 (was $view0); $done1b more acknowledged requests, none lost"
fi # steps 1 and 1b

# ---- 2. a wiped replica catches up by state transfer ----------------------
ctl stop 3 >/dev/null || fail "stop 3"
stopped() { [ "$(field 3 state)" = stopped ]; }
wait_until 10 stopped || fail "node 3 did not stop"
rm -rf "$dir/c/data/node-3"
timeout $((180 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 2 --size 65536 --requests 800 --json --log "$dir/h2" \
    >"$dir/bench2.json" 2>"$dir/bench2.err" ||
    fail "bench of large requests: $(cat "$dir/bench2.json")"
grep -q '"completed":800' "$dir/bench2.json" ||
    fail "not all large requests completed: $(cat "$dir/bench2.json")"
exec2=$(field 0 last_executed)
t0=$(date +%s%N)
ctl restart 3 >/dev/null || fail "restart 3"
wait_until 120 converged "$exec2" ||
    fail "wiped replica did not catch up: $(status)"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
bytes=$(grep -E 'replica 3.*state of checkpoint [0-9]+ installed' "$dir/pbftd.log" |
    tail -n 1 | sed -E 's/.*installed \(([0-9]+) bytes.*/\1/')
[ -n "$bytes" ] || fail "node 3 did not catch up through state transfer"
[ "$bytes" -ge 50000000 ] || fail "state transferred was only $bytes bytes"
python3 "$histcheck" --log "$dir/h1" --log "$dir/h2" $(ledgers) ||
    fail "history check after state transfer"
case ${PBFT_FAULTS:-} in *corrupt-chunks*)
	grep -q 'replica 3.*does not match the certified digest' "$dir/pbftd.log" ||
	    fail "the corrupted state was not detected"
	ok "a peer serving corrupted chunks was detected; the transfer completed from another"
	;;
esac
case ${PBFT_FAULTS:-} in *3:crash-state-transfer*)
	grep -q "replica 3: warn: FAULT INJECTION: crash-state-transfer: aborting" \
	    "$dir/pbftd.log" || fail "node 3 did not crash mid-transfer"
	grep -q "replica 3: warn: the log names checkpoint .* snapshot is missing" \
	    "$dir/pbftd.log" || fail "node 3 did not resume the transfer"
	ok "node 3 crashed halfway through the transfer and completed it after its restart"
	;;
esac
ok "wiped replica caught up by state transfer of $bytes bytes in $took ms"
if [ "$only" = xfer ]; then
	echo "$passed passed, 0 failed (step 2 only)"
	exit 0
fi

# ---- 2b. a replica far behind catches up while the load goes on ----------
# Stopped with its data, it misses 13 MB of transactions; restarted under
# steady load (a checkpoint every few hundred milliseconds), it must install
# a state while the load still runs, having fetched only what it lacked.
ctl stop 3 >/dev/null || fail "stop 3 (2b)"
wait_until 10 stopped || fail "node 3 did not stop (2b)"
timeout $((120 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 2 --size 65536 --requests 200 --json --log "$dir/h2b" \
    >"$dir/bench2b.json" 2>"$dir/bench2b.err" ||
    fail "bench while node 3 was stopped: $(cat "$dir/bench2b.json")"
installs() { grep -cE 'replica 3: info: state of checkpoint [0-9]+ installed' "$dir/pbftd.log" || true; }
n0=$(installs)
timeout $((90 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 64 --rate 2000 --duration 15 --json --log "$dir/h2c" \
    >"$dir/bench2c.json" 2>"$dir/bench2c.err" &
bp=$!
pids+=($bp)
sleep 2
t0=$(date +%s%N)
ctl restart 3 >/dev/null || fail "restart 3 (2b)"
installed_again() { [ "$(installs)" -gt "$n0" ]; }
wait_until 12 installed_again ||
    fail "node 3 did not install a state while the load ran: $(status)"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -0 "$bp" 2>/dev/null || fail "the load ended before node 3 caught up"
line=$(grep -E 'replica 3: info: state of checkpoint [0-9]+ installed' \
    "$dir/pbftd.log" | tail -n 1)
total=$(echo "$line" | sed -E 's/.*installed \(([0-9]+) bytes.*/\1/')
fetched=$(echo "$line" | sed -E 's/.* ([0-9]+) of them fetched.*/\1/')
[ $((fetched * 2)) -lt "$total" ] ||
    fail "node 3 fetched $fetched of $total bytes: not only what it lacked"
sbytes=$(field 3 state_transfer_bytes)
[ "$sbytes" -gt 0 ] && [ $((sbytes * 2)) -lt "$total" ] ||
    fail "node 3 reports $sbytes bytes fetched; its log $fetched of $total"
wait "$bp" || fail "bench under load (2b): $(cat "$dir/bench2c.json")"
pids=()
exec2=$(field 0 last_executed)
wait_until 60 converged "$exec2" ||
    fail "replicas did not converge after node 3 caught up: $(status)"
python3 "$histcheck" --log "$dir/h1" --log "$dir/h2" --log "$dir/h2b" \
    --log "$dir/h2c" $(ledgers) || fail "history check after 2b"
ok "a replica restarted 13 MB behind caught up under load in $took ms: fetched $fetched of $total bytes"

# ---- 3. a torn or corrupted write-ahead log --------------------------------
# live_log: the live log file of node 1 (the newer generation of log.0 and
# log.1), where the records written with its header end (base: durable
# before the header, so a crash never tears them) and where its records end
# (a reused file holds older bytes after that).
live_log() {
	python3 - "$dir/c/data/node-1" <<'PY'
import struct, sys
best = None
for i in (0, 1):
    try:
        b = open("%s/log.%d" % (sys.argv[1], i), "rb").read()
    except FileNotFoundError:
        continue
    if len(b) >= 32 and b[:8] == b"PBFTLOG2":
        g = struct.unpack_from("<Q", b, 8)[0]
        if best is None or g > best[1]:
            best = (i, g, b)
i, g, b = best
base = struct.unpack_from("<Q", b, 16)[0]
off = 32
while off + 24 <= len(b):
    ln, rg = struct.unpack_from("<II", b, off)
    if rg != g & 0xffffffff or ln == 0 or off + 24 + ln > len(b):
        break
    off += 24 + ln
print("%s/log.%d %d %d" % (sys.argv[1], i, base, off))
PY
}
# A compaction leaves only records the header came with: requests until
# node 1's log holds some after them, so that there is a tail to tear.
for i in 1 2 3 4 5 6; do
	read -r wal base size < <(live_log)
	[ "$size" -gt "$base" ] && break
	ctl submit "tail$i" >/dev/null || fail "submit before the log tests"
	sleep 0.2
done
ctl stop 1 >/dev/null || fail "stop 1"
stopped1() { [ "$(field 1 state)" = stopped ]; }
wait_until 10 stopped1 || fail "node 1 did not stop"
read -r wal base size < <(live_log)
[ "$size" -gt "$base" ] ||
    fail "node 1's log holds no records after its compacted ones (base $base)"
# Each run below may compact into the spare: both files go back each time.
logs=$dir/c/data/node-1
mkdir -p "$dir/logs.orig"
cp "$logs"/log.* "$dir/logs.orig/"
orig=$dir/logs.orig/${wal##*/} # the live file as it was
restore_logs() { rm -f "$logs"/log.*; cp "$dir/logs.orig"/log.* "$logs/"; }
[ "$size" -gt 96 ] || fail "write-ahead log of node 1 holds only $size bytes"
[ "$base" -ge 32 ] && [ "$base" -le "$size" ] ||
    fail "write-ahead log of node 1: base $base outside its records (end $size)"
# run_replica LOG: starts node 1 by hand, waits until it listens, stops
# it with SIGTERM; the exit status is the replica's.
run_replica() {
	"$replica" -c "$cfg" -i 1 2>"$1" &
	local rp=$! rc=0
	# Up to 30 s: a replica reads its whole ledger journal (tens of MB
	# here, after the state-transfer steps) before it listens, and on a
	# loaded host that took more than the 5 s this waited before.
	for _ in $(seq 1 $((300 * mult))); do
		grep -q "listening on" "$1" && break
		kill -0 "$rp" 2>/dev/null || break
		sleep 0.1
	done
	sleep 0.3
	kill -TERM "$rp" 2>/dev/null || true
	wait "$rp" || rc=$?
	return $rc
}
torn=0 refused=0 cuts=0
# Cuts where a crash tears: after the records the header came with. Cuts
# before that are damage, and must be refused with a clear error.
offsets() { # offsets N FROM TO: N random offsets in [FROM, TO)
	[ "$2" -lt "$3" ] || return 0
	python3 -c 'import random, sys; r = random.Random(int(sys.argv[4])); print(" ".join(str(r.randrange(int(sys.argv[2]), int(sys.argv[3]))) for _ in range(int(sys.argv[1]))))' "$1" "$2" "$3" "$$"
}
for off in $(offsets 16 $((base + 1)) "$size"); do
	restore_logs
	head -c "$off" "$orig" >"$wal"
	run_replica "$dir/torn.log" ||
	    fail "replica 1 with its log cut at $off of $size bytes: exit status $?: $(tail -n 3 "$dir/torn.log")"
	grep -q "listening on" "$dir/torn.log" ||
	    fail "replica 1 (log cut at $off) never listened"
	grep -q "torn tail" "$dir/torn.log" && torn=$((torn + 1))
	cuts=$((cuts + 1))
done
for off in $(offsets 4 33 "$base"); do
	restore_logs
	head -c "$off" "$orig" >"$wal"
	set +e
	timeout $((20 * mult)) "$replica" -c "$cfg" -i 1 2>"$dir/cut.log"
	rc=$?
	set -e
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] &&
	    grep -q "corrupt record at offset" "$dir/cut.log" ||
	    fail "replica 1 with its compacted records cut at $off of $base: exit status $rc, $(tail -n 3 "$dir/cut.log")"
	refused=$((refused + 1))
done
[ "$torn" -ge 1 ] || fail "no cut was reported as a torn tail"
ok "log cut at random offsets: $cuts clean starts ($torn reported a torn tail), $refused cuts inside the compacted records refused"
restore_logs
# A flipped byte: among the compacted records when there are some (refused
# whatever follows), else a third into the records.
python3 - "$orig" "$wal" "$size" "$base" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
size, base = int(sys.argv[3]), int(sys.argv[4])
b[32 + (base - 32) // 2 if base > 56 else 32 + (size - 32) // 3] ^= 0x40
open(sys.argv[2], 'wb').write(b)
PY
set +e
timeout $((20 * mult)) "$replica" -c "$cfg" -i 1 2>"$dir/corrupt.log"
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
    fail "replica 1 with a flipped byte: exit status $rc"
grep -q "corrupt record at offset" "$dir/corrupt.log" ||
    fail "no clear error for a flipped byte: $(tail -n 3 "$dir/corrupt.log")"
ok "a flipped byte in the middle of the log: refused ($(grep -o 'corrupt record at offset [0-9]*' "$dir/corrupt.log"))"
restore_logs
# The others first form a working quorum on their own (a replica the fault
# build crashed meanwhile may still be catching up): were the load below to
# stall, its clients would turn to node 1 while it is busy recovering, and
# node 1 would time out alone into a view change the others never join.
trio_agrees() {
	status | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
t = [r[i] for i in (0, 2, 3)]
sys.exit(0 if all(x["state"] == "running" and not x["view_changing"] and
                  not x["state_transfer"] and
                  x["view"] == t[0]["view"] for x in t) else 1)'
}
# A request through them first: a replica that alone timed out into a
# view change while the cluster sat idle is joined by the others only once
# a request waits (their timers run then), and a status poll alone would
# wait for that forever.
trio_serves() { ctl submit "trio-$SECONDS" >/dev/null; }
wait_until 30 trio_serves || fail "nodes 0, 2 and 3 do not serve: $(status)"
wait_until 30 trio_agrees || fail "nodes 0, 2 and 3 are not working: $(status)"
ctl restart 1 >/dev/null || fail "restart 1"
# Load past two checkpoints: a replica that alone moved to a view change
# meanwhile (its timer ran while node 1 was away) catches up from them.
timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --requests 100 --json --log "$dir/h3" >"$dir/bench3.json" ||
    fail "load after the log tests: $(cat "$dir/bench3.json")"
exec3=$(field 2 last_executed)
# Node 1 must be back among a quorum (2f+1 = 3) of replicas that agree.
# (Not all four: a replica that alone timed out into a view change while
# the cluster went idle waits there for the next request; see the note
# of the faults issue.)
quorum_with_1() {
	status | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
me = r[1]
same = [x for x in r if x["state"] == "running" and
        x["last_executed"] == me["last_executed"] and
        x["state_digest"] == me["state_digest"]]
sys.exit(0 if len(same) >= 3 and me["last_executed"] >= '"$exec3"' else 1)'
}
wait_until 60 quorum_with_1 || fail "node 1 did not rejoin: $(status)"
agree=$(status | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
print(" ".join(str(x["id"]) for x in r
      if x["last_executed"] == r[1]["last_executed"]))')
python3 "$histcheck" --log "$dir/h1" --log "$dir/h2" --log "$dir/h3" \
    $(for i in $agree; do echo "$dir/c/data/node-$i/ledger"; done) ||
    fail "history check at the end"
ok "node 1 rejoined with its log restored"
echo "$passed passed, 0 failed"
