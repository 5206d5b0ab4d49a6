#!/usr/bin/env bash
# rejoin.sh - a replica that crashed votes again in its view, on 127.0.0.1
# only. Under steady load (pbftctl bench --log): backup A killed with -9,
# restarted by pbftd and caught up; then backup B killed with -9. With
# n = 4 the cluster then needs A's prepares: if A were still mute (it may
# have sent pre-prepares or prepares its log lost), nothing would complete
# until a view change (the view-change timeout, 10 s here). The longest
# gap between two completed requests must stay under 2 s (times
# PBFT_TIMEOUT_MULT), and every acknowledged request must be in every
# ledger, in one order. Needs PBFT_BUILD (the meson build directory).
# Hard time bounds throughout; every process is killed by its pid.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" rejoin
gentle=1 # pbftd stops its replicas

"$pbftctl" init -n 4 --base-port "$base" --clients 2 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
grep -q '^view_change_timeout = 10s' "$cfg" ||
    fail "expected the default view-change timeout of 10 s in $cfg"
# Every replica pid pbftd reports, for the trap (pbftd stops its children
# when it exits; these are in case it cannot).
note_pids() {
	local p
	for p in $(status | python3 -c '
import json, sys
print(" ".join(str(r["pid"]) for r in json.load(sys.stdin)["replicas"] if r.get("pid")))'); do
		rpids+=("$p")
	done
}

"$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
wait_until 20 all_running || fail "replicas did not come up"
note_pids
primary=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["primary"])')
a=$(( (primary + 1) % 4 ))
b=$(( (primary + 2) % 4 ))

# Load for the whole scenario: the bench runs 40 s, and at least 12 s of
# it must be left after the second kill, so that a stall of the
# view-change timeout (10 s) would show.
duration=$((40 * mult))
bench_end=$(( $(date +%s) + duration ))
timeout $((120 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 4 --duration "$duration" --json --log "$dir/h" \
    >"$dir/bench.json" 2>"$dir/bench.err" &
bpid=$!
sleep 3
victim=$(field "$a" pid)
kill -9 "$victim"
echo "$(date +%T.%N | cut -c1-12) killed backup $a (pid $victim) under load"
restarted() { [ "$(field "$a" restarts)" -ge 1 ] && [ "$(field "$a" state)" = running ]; }
wait_until 15 restarted || fail "node $a not restarted"
note_pids
# Caught up: it executed at least what the primary had when it came
# back, and fetches no state. Then up to 5 s more for it to vote again (a
# replica still mute would stall the cluster below); a build that keeps
# it mute until a view change goes on after those 5 s, and the gap shows.
want=$(field "$primary" last_executed)
caught_up() {
	status | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]['"$a"']
sys.exit(0 if r["state"] == "running" and not r.get("state_transfer") and
         r["last_executed"] >= '"$want"' else 1)'
}
wait_until 20 caught_up || fail "node $a did not catch up: $(status)"
voting() { [ "$(field "$a" muted)" = False ]; }
t0=$(date +%s%N)
if wait_until 5 voting; then
	echo "$(date +%T.%N | cut -c1-12) node $a caught up and votes again after $(( ($(date +%s%N) - t0) / 1000000 )) ms more"
else
	echo "$(date +%T.%N | cut -c1-12) node $a caught up but is still mute"
fi
victim=$(field "$b" pid)
kill -9 "$victim"
echo "$(date +%T.%N | cut -c1-12) killed backup $b (pid $victim) under load"
left=$(( bench_end - $(date +%s) ))
kill -0 "$bpid" 2>/dev/null && [ "$left" -ge 12 ] ||
    fail "only $left s of load left after the second kill: too little to measure a stall"
wait "$bpid" || fail "bench: $(cat "$dir/bench.json") $(cat "$dir/bench.err")"
bpid=
note_pids

done=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed"])' "$dir/bench.json")
[ "$done" -gt 100 ] || fail "too little load got through: $(cat "$dir/bench.json")"
# The longest time between two completed requests, from the first
# completion to the last (bench --log: status, client, invoked and
# finished times in microseconds, ...).
gap=$(python3 -c '
import sys
t = sorted(int(l.split()[3]) for l in open(sys.argv[1]) if l.startswith("ok "))
print(max(b - a for a, b in zip(t, t[1:])) // 1000)' "$dir/h")
echo "longest gap between completed requests: $gap ms ($done completed)"
[ "$gap" -lt $((2000 * mult)) ] ||
    fail "no request completed for $gap ms after the second backup was killed"
ctl submit settle >/dev/null || fail "submit after the crashes"
converged() {
	status | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
sys.exit(0 if all(x["state"] == "running" for x in r) and
         not any(x.get("state_transfer") for x in r) and
         len({x["last_executed"] for x in r}) == 1 and
         len({x["state_digest"] for x in r}) == 1 and
         r[0]["last_executed"] >= '"$1"' else 1)'
}
want=$(field "$primary" last_executed)
wait_until 60 converged "$want" || fail "replicas did not converge: $(status)"
ledgers() { for i in 0 1 2 3; do echo "$dir/c/data/node-$i/ledger"; done; }
python3 "$histcheck" --log "$dir/h" $(ledgers) || fail "history check"
echo "ok: a backup back from kill -9 votes again in its view: with another backup killed, the longest gap was $gap ms"
