#!/usr/bin/env bash
# diskfaults.sh - a disk that fails under one replica of a 4-node cluster
# run by pbftd, on 127.0.0.1 only (tests/faults/diskfault.c, preloaded into
# pbftd and its replicas, makes node 1's reads, writes or syncs fail while
# a control file says so). One scenario per run:
#   read-log, read-snapshot, read-journal: node 1 stopped cleanly, then
#     restarted while reading its log headers, its snapshot or its ledger
#     journal fails with EIO: it refuses to start with a line naming the
#     file, the offset and the error; pbftd shows it failed with that
#     reason and does not restart it; not one byte of its data directory
#     changed; with the disk healed, `pbftctl restart 1` brings it back and
#     it converges with the others;
#   write-wal-enospc, write-wal-eio, write-journal-enospc,
#     write-journal-eio, write-snapshot-enospc: node 1's writes of that
#     file fail while the cluster runs: it exits non-zero (not by a
#     signal: no abort) with a line naming the file and the error, the
#     others go on; healed and restarted, it converges;
#   sync-wal-eio, sync-journal-eio: the same for a sync, and the process
#     never syncs that file again after the failure (the preload records
#     every such sync);
#   reserve: node 1's data directory reports less free space than
#     min_free: it refuses client requests (status "disk low: ..." and
#     the metric pbft_data_free_bytes), the cluster goes on; with space
#     back it takes requests again by itself.
# Needs PBFT_BUILD (a -Dfault_injection=true build directory).
set -euo pipefail

scenario=${1:?usage: diskfaults.sh SCENARIO}
# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" diskfaults
shim=$build/tests/faults/libdiskfault.so
fail_tag=$scenario
log_skip=connected # (faults.log, the injected faults, is among the logs)
[ -f "$shim" ] || fail "no $shim: not a fault-injection build"

"$pbftctl" init -n 4 --base-port "$base" --clients 2 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
data=$dir/c/data/node-1
# A replica back from a fault must catch up before its view timer
# expires, or it sits alone in a view change the others never join (the
# rejoin gap of a returning replica, not a disk matter).
vct=8s
[ "$scenario" = reserve ] && vct=2s # a low primary is changed
sed -i "s/^view_change_timeout.*/view_change_timeout = $vct/" "$cfg"
sed -i 's/^checkpoint_interval.*/checkpoint_interval = 20/' "$cfg"
grep -q '^checkpoint_interval = 20' "$cfg" ||
    sed -i '/^\[cluster\]/a checkpoint_interval = 20' "$cfg"
mport=$((base + 9))
sed -i "/^\[cluster\]/a metrics_listen = 127.0.0.1:$mport" "$cfg"
# field NODE KEY: one field of a replica's status (empty when absent).
field() {
	ctl status --json | python3 -c '
import json, sys
v = json.load(sys.stdin)["replicas"][int(sys.argv[1])].get(sys.argv[2], "")
print(v)' "$1" "$2"
}
state_is() { [ "$(field "$1" state)" = "$2" ]; }
converged() {
	ctl status --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
ok = (all(x["state"] == "running" for x in r) and
      len({x.get("last_executed") for x in r}) == 1 and
      len({x.get("state_digest") for x in r}) == 1)
sys.exit(0 if ok else 1)'
}
load() { # load SECONDS: acknowledged requests through the client library
	timeout $((30 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
	    --outstanding 2 --duration "$1" --json >"$dir/bench.json" \
	    2>/dev/null || true
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed"])' \
	    "$dir/bench.json" 2>/dev/null || echo 0
}
sums() { # every file of node 1's data directory: name, size, sha256
	(cd "$data" && for f in $(find . -type f | sort); do
		echo "$f $(stat -c %s "$f") $(sha256sum <"$f" | cut -c1-64)"
	done)
}
fault() { echo "$*" >"$dir/ctl"; }
heal() { rm -f "$dir/ctl"; }

LD_PRELOAD=$shim DISKFAULT_CTL=$dir/ctl DISKFAULT_LOG=$dir/faults.log \
    "$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
wait_until 20 converged || fail "the cluster did not start"
n=$(load 3)
[ "$n" -ge 50 ] || fail "only $n requests before the fault"
ls "$data"/snapshot-* >/dev/null 2>&1 || fail "no snapshot was written"

# back_and_converged: node 1, healed and restarted, catches up.
back_and_converged() {
	heal
	ctl restart 1 >/dev/null || fail "pbftctl restart 1 refused"
	wait_until 20 state_is 1 running || fail "node 1 did not start again"
	n=$(load 2)
	[ "$n" -ge 20 ] || fail "only $n requests after node 1 came back"
	wait_until 40 converged || fail "node 1 did not converge: $(ctl status --json)"
}

# refuse_to_start PATTERN WHAT: a read error at start is not a new replica.
refuse_to_start() {
	ctl stop 1 >/dev/null
	wait_until 10 state_is 1 stopped || fail "node 1 did not stop"
	sums >"$dir/before"
	fault "read EIO node-1/$1"
	ctl restart 1 >/dev/null
	wait_until 15 state_is 1 failed ||
	    fail "node 1 is $(field 1 state), not failed, with $2 unreadable"
	sleep 2 # pbftd must not restart it meanwhile
	state_is 1 failed || fail "node 1 was restarted while its disk fails"
	sums >"$dir/after"
	diff "$dir/before" "$dir/after" >"$dir/diff" ||
	    fail "node 1's data directory changed: $(cat "$dir/diff")"
	grep -Eq "replica 1.*$2: read at [0-9]+: Input/output error" \
	    "$dir/pbftd.log" || fail "no line names $2 and the error"
	field 1 reason | grep -q "Input/output error" ||
	    fail "status shows no reason: $(field 1 reason)"
	ctl status | grep -q "Input/output error" ||
	    fail "pbftctl status shows no reason"
	n=$(load 2)
	[ "$n" -ge 20 ] || fail "only $n requests with node 1 failed"
	back_and_converged
	echo "$1 unreadable: refused to start ($(grep -Eo "$2: read at [0-9]+: [A-Za-z/ ]+" "$dir/pbftd.log" | head -1)), $(wc -l <"$dir/before") files unchanged, back and converged"
}

# fail_stop RULE WHAT: an I/O error while running stops node 1, in words.
fail_stop() {
	local old
	old=$(field 1 pid)
	fault "$1"
	load 4 >"$dir/n" &
	lpid=$!
	wait_until 20 grep -q "node 1: pbft-replica (pid $old) exited with status [1-9]" \
	    "$dir/pbftd.log" || {
		grep -q "node 1: pbft-replica (pid $old) killed by signal" \
		    "$dir/pbftd.log" && fail "node 1 died by a signal"
		fail "node 1 did not stop on $1"
	}
	# Healed before pbftd's restart (1 s later): this checks the stop,
	# not what a replica started on a still failing disk meets.
	heal
	wait "$lpid" || true
	n=$(cat "$dir/n")
	grep -q "node 1: pbft-replica (pid $old) killed by signal" \
	    "$dir/pbftd.log" && fail "node 1 died by a signal"
	grep -Eq "replica 1: error: .*$2.*(Input/output error|No space left on device)" \
	    "$dir/pbftd.log" || fail "no error line names $2 and the error"
	[ "$n" -ge 20 ] || fail "only $n requests while node 1 failed"
	back_and_converged
	echo "$1: node 1 stopped ($(grep -Eo "replica 1: error: .*$2.*(Input/output error|No space left on device)" "$dir/pbftd.log" | head -1 | sed "s|$dir/c/data/||" | cut -c1-200)); the cluster went on ($n requests); back and converged"
}

no_resync() {
	if grep -q " resync " "$dir/faults.log" 2>/dev/null; then
		fail "a file was synced again after its sync failed: $(grep " resync " "$dir/faults.log" | head -3)"
	fi
}

metric() { # metric NAME NODE: its value from pbftd's /metrics
	python3 - "$mport" "$1" "$2" <<'PY'
import sys, urllib.request
port, name, node = sys.argv[1:]
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port,
                              timeout=5).read().decode()
for line in text.splitlines():
    if line.startswith('%s{node="%s"} ' % (name, node)):
        print(line.split()[-1])
PY
}
disk_is_low() { field 0 disk | grep -q '^disk low'; }
disk_ok() { [ "$(field 0 disk)" = ok ]; }
disk_low_count() {
	ctl status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["replicas"][0]["rejected"].get("disk_low", 0))'
}

# reserve: the primary (node 0) reports 1 MiB free, below min_free
# (256 MiB by default): it takes no client request, the backups replace it
# by a view change and the cluster goes on; space back, it takes requests
# again by itself.
reserve() {
	local v
	fault "free 1048576 node-0"
	wait_until 10 disk_is_low ||
	    fail "node 0 does not say it is low: $(field 0 disk)"
	field 0 disk | grep -Eq '^disk low: 1 MiB free, reserve 256 MiB$' ||
	    fail "status: $(field 0 disk)"
	v=$(metric pbft_data_free_bytes 0)
	[ -n "$v" ] && [ "${v%.*}" -le 1048576 ] ||
	    fail "pbft_data_free_bytes of node 0 is '$v'"
	grep -q "replica 0: warn: .*disk low: 1 MiB free, reserve 256 MiB" \
	    "$dir/pbftd.log" || fail "no log line says the disk is low"
	n=$(load 8)
	[ "$n" -ge 100 ] || fail "only $n requests while node 0 was low"
	nlow=$n
	# A low primary proposes nothing new: the backups replaced it.
	[ "$(field 1 view)" -ge 1 ] || fail "still view 0 with a low primary"
	[ "$(disk_low_count)" -gt 0 ] ||
	    fail "node 0 took every request though low"
	heal
	wait_until 10 disk_ok ||
	    fail "node 0 still low after space returned: $(field 0 disk)"
	grep -q "replica 0: info: .*disk space back" "$dir/pbftd.log" ||
	    fail "no log line says the space is back"
	v=$(metric pbft_data_free_bytes 0)
	[ "${v%.*}" -gt 1048576 ] || fail "pbft_data_free_bytes still $v"
	n=$(load 3)
	[ "$n" -ge 20 ] || fail "only $n requests after space returned"
	wait_until 30 converged || fail "not converged: $(ctl status --json)"
	echo "reserve: node 0 below min_free refused $(disk_low_count) requests ($(grep -o 'disk low: [^:]*' "$dir/pbftd.log" | head -1)); the cluster went on in view $(field 1 view) ($nlow requests in 8 s); space back, it took requests again; converged"
}

case $scenario in
reserve) reserve ;;
read-log) refuse_to_start "log." "log\.[01]" ;;
read-snapshot) refuse_to_start "snapshot-" "snapshot-[0-9]+" ;;
read-journal) refuse_to_start "ledger" "ledger" ;;
write-wal-enospc) fail_stop "write ENOSPC node-1/log." "log\.[01]" ;;
write-wal-eio) fail_stop "write EIO node-1/log." "log\.[01]" ;;
write-journal-enospc) fail_stop "write ENOSPC node-1/ledger" "ledger" ;;
write-journal-eio) fail_stop "write EIO node-1/ledger" "ledger" ;;
write-snapshot-enospc) fail_stop "write ENOSPC node-1/snapshot" "snapshot" ;;
sync-wal-eio) fail_stop "sync EIO node-1/log." "log\.[01]"; no_resync ;;
sync-journal-eio) fail_stop "sync EIO node-1/ledger" "ledger"; no_resync ;;
*) fail "unknown scenario" ;;
esac
