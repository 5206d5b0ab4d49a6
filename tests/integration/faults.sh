#!/usr/bin/env bash
# faults.sh - one misbehaviour (PBFT_FAULTS, fault-injection builds) on
# one replica of a 4-node cluster, or a pair of them in a 7-node cluster,
# under steady load from three clients through pbftd-run replicas:
#   - every request acknowledged to a client is in every correct replica's
#     ledger, at the index its reply named, in one order (histcheck);
#   - the correct replicas converge to one last_executed and state digest;
#   - service goes on: the longest gap between acknowledgements and the
#     time to the first one are measured and bounded.
#   - the fault left its mark: EVIDENCE (a status field such as
#     rejected.bad_signature or view_changes) is above zero summed over the
#     correct replicas, and a crash fault's replica did abort (and was
#     restarted by pbftd).
# Usage: faults.sh N SPEC [EVIDENCE]   e.g.  faults.sh 4 1:wrong-key \
#            rejected.bad_signature
# Needs PBFT_BUILD (a -Dfault_injection=true build directory).
set -euo pipefail

n=${1:?usage: faults.sh N SPEC}
spec=${2:?usage: faults.sh N SPEC}
evidence=${3:-}
# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" faults
fail_tag="$n $spec"
log_skip=connected

faulty=$(echo "$spec" | tr ',' '\n' | cut -d: -f1 | sort -u | tr '\n' ' ')
"$pbftctl" init -n "$n" --base-port "$base" --clients 3 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 1s/' "$cfg"
sed -i 's/^checkpoint_interval.*/checkpoint_interval = 20/' "$cfg"
grep -q '^checkpoint_interval = 20' "$cfg" ||
    sed -i '/^\[cluster\]/a checkpoint_interval = 20' "$cfg"

PBFT_FAULTS=$spec "$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"
grep -q "FAULT INJECTION" "$dir/pbftd.log" ||
    wait_until 5 grep -q "FAULT INJECTION" "$dir/pbftd.log" ||
    fail "the replicas were not built with fault injection"

timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --clients 3 \
    --outstanding 2 --duration 8 --json --log "$dir/h" \
    >"$dir/bench.json" 2>"$dir/bench.err" || true
acked=$(grep -c '^ok ' "$dir/h" || true)
[ "$acked" -ge 100 ] || fail "only $acked requests acknowledged: $(cat "$dir/bench.json")"

correct=()
for i in $(seq 0 $((n - 1))); do
	case " $faulty " in *" $i "*) ;; *) correct+=("$i") ;; esac
done
converged() {
	ctl status --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
c = [r[int(i)] for i in sys.argv[1:]]
ok = (len({x["last_executed"] for x in c}) == 1 and
      len({x["state_digest"] for x in c}) == 1)
sys.exit(0 if ok else 1)' "${correct[@]}"
}
wait_until 60 converged || fail "correct replicas disagree: $(ctl status --json)"
ledgers=()
for i in "${correct[@]}"; do ledgers+=("$dir/c/data/node-$i/ledger"); done
python3 "$histcheck" --log "$dir/h" "${ledgers[@]}" >"$dir/hc.txt" ||
    fail "history check: $(cat "$dir/hc.txt")"
read -r first gap <<<"$(python3 - "$dir/h" <<'PY'
import sys
inv, done = [], []
for l in open(sys.argv[1]):
    f = l.split()
    inv.append(int(f[2]))
    if f[0] == 'ok':
        done.append(int(f[3]))
done.sort()
start = min(inv)
gaps = [b - a for a, b in zip(done, done[1:])] or [0]
print((done[0] - start) // 1000, max(gaps) // 1000)
PY
)"
if [ -n "$evidence" ]; then
	seen=$(ctl status --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
total = 0
for i in sys.argv[2:]:
    v = r[int(i)]
    for k in sys.argv[1].split("."):
        v = v.get(k, 0) if isinstance(v, dict) else 0
    total += v
print(total)' "$evidence" "${correct[@]}")
	[ "$seen" -gt 0 ] || fail "no sign of the fault: $evidence = 0"
fi
case $spec in *crash-*)
	grep -q "FAULT INJECTION: crash-.*: aborting now" "$dir/pbftd.log" ||
	    fail "the crash point was never reached"
	grep -q "killed by signal 6" "$dir/pbftd.log" ||
	    fail "pbftd did not see the abort"
	evidence="crash, restart by pbftd"
	;;
esac
bound=$((6000 * mult))
[ "$first" -le "$bound" ] || fail "first acknowledgement after $first ms"
[ "$gap" -le "$bound" ] || fail "service stalled for $gap ms"
echo "fault $spec, n = $n: $acked acknowledged requests checked in ${#correct[@]} correct ledgers; first ack after $first ms; longest stall $gap ms${evidence:+; evidence: $evidence${seen:+ = $seen}}"
