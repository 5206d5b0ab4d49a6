#!/usr/bin/env bash
# crash_all.sh - every replica killed with -9 at once under load (a power
# loss), on 127.0.0.1 only: pbftd restarts them, each mute where it may
# have forgotten votes, and the next request must complete within 9 s of
# the kill (times PBFT_TIMEOUT_MULT), with the default view-change timeout
# of 10 s: the replicas see from STATUS that the primary cannot propose in
# its view and change views after a retransmission period (1 s), not the
# timeout (16.3 s on a build that waited for it). The rest is pbftd's
# first restart delay (0.1 s) and the replicas finding each other; the
# client sends as each channel comes up. Nothing acknowledged may be lost.
# Needs PBFT_BUILD (the meson build directory). Hard time bounds
# throughout; every process is killed by its pid.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" crash-all
gentle=1 # pbftd stops its replicas

"$pbftctl" init -n 4 --base-port "$base" --clients 2 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
grep -q '^view_change_timeout = 10s' "$cfg" ||
    fail "expected the default view-change timeout of 10 s in $cfg"
ctl() { timeout $((30 * mult)) "$pbftctl" -c "$cfg" -t $((25 * mult)) "$@"; }
replica_pids() {
	status | python3 -c '
import json, sys
print(" ".join(str(r["pid"]) for r in json.load(sys.stdin)["replicas"] if r.get("pid")))'
}

"$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
wait_until 20 all_running || fail "replicas did not come up"
ctl submit warm-up >/dev/null || fail "first submit"

timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 4 --duration 4 --json --log "$dir/h" \
    >"$dir/bench.json" 2>"$dir/bench.err" &
bpid=$!
sleep 2
victims=$(replica_pids)
rpids+=($victims)
t0=$(date +%s%N)
# shellcheck disable=SC2086
kill -9 $victims
echo "killed every replica (pids $victims) under load"
wait "$bpid" || true
bpid=
ctl submit after-the-crash >/dev/null || fail "submit after killing every replica"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
rpids+=($(replica_pids))
echo "kill -9 of every replica to a completed request: $took ms"
[ "$took" -lt $((9000 * mult)) ] ||
    fail "the first request after killing every replica took $took ms"
converged() {
	status | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
sys.exit(0 if all(x["state"] == "running" for x in r) and
         not any(x.get("state_transfer") for x in r) and
         len({x["last_executed"] for x in r}) == 1 else 1)'
}
wait_until 60 converged || fail "replicas did not converge: $(status)"
ledgers() { for i in 0 1 2 3; do echo "$dir/c/data/node-$i/ledger"; done; }
python3 "$histcheck" --log "$dir/h" $(ledgers) || fail "history check"
echo "ok: kill -9 of every replica under load: a request completed $took ms after"
