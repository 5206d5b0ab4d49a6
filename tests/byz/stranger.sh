#!/usr/bin/env bash
# stranger.sh - a stranger with no key opens connections to the primary as
# fast as it takes them (32 at a time), each a HELLO naming another
# replica and, once the primary answered with its own AUTH (or after
# 100 ms), 64 random bytes as the stranger's AUTH, while a real client
# keeps requests going:
#   - the primary's CPU time per attempt (what it spent during the attack
#     beyond what the same client load cost it without one) is bounded;
#   - so is the number of handshakes per second it signed for the
#     stranger (the Byzantine peer counts the AUTHs it got back);
#   - the client's throughput under attack is at least half of what it was
#     without.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# Bounds. On main before the fixes of the issue (item 2) a handshake cost
# the replica about 160 us of CPU (an X25519 key, an Ed25519 signature and
# a verification) for 78 us of the attacker's, and about 6,000 a second
# filled its event loop. No key or signature work before the peer proved it
# can receive, and handshakes bounded per source address, make an attempt
# cost a few microseconds.
CPU_US_PER_ATTEMPT_MAX=$((30 * mult))
SIGNED_PER_S_MAX=250 # a legitimate cluster needs a handful
RATE_RATIO_MIN=0.5
SECONDS_LOAD=5
# New connections a second: the issue measured that about 6,000 a second
# fill a replica's event loop when each costs a handshake's cryptography.
# A fixed rate, and the attacker at a lower priority, keep its own CPU (it
# shares this host's cores with the cluster; a real one would not) from
# being what slows the client.
ATTEMPTS_PER_S=${PBFT_BYZ_ATTEMPTS_PER_S:-6000}

cluster_init --clients 2
cluster_start 0,1,2,3
target=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["primary"])')
tpid=$(field "$target" pid)

# The client connects first and runs SECONDS_LOAD + 2 seconds; in the
# second run the stranger starts 1.5 s in, for SECONDS_LOAD seconds (a
# replica that limits handshakes by source address, all of them 127.0.0.1
# here, must not hold the client's own connections against it). The rate
# is the median of the client's per-second figures (its progress lines)
# from 3 s to SECONDS_LOAD + 1 s, which the stranger covers whole.
bench() {
	timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --clients 2 \
	    --outstanding 4 --duration $((SECONDS_LOAD + 2)) >"$1" 2>"$1.err" ||
	    fail "bench: $(cat "$1" "$1.err")"
}
rate() {
	python3 - "$1.err" $SECONDS_LOAD <<'PY'
import statistics, sys
r = []
for l in open(sys.argv[1]):
    f = l.split()
    if len(f) > 2 and f[0].endswith("s") and f[2] == "req/s":
        t = float(f[0][:-1])
        if 2.5 <= t <= int(sys.argv[2]) + 1.5:
            r.append(float(f[1]))
print(round(statistics.median(r), 1) if r else 0)
PY
}

c0=$(cpu_ticks "$tpid")
t0=$(date +%s%N)
bench "$dir/base"
c1=$(cpu_ticks "$tpid")
t1=$(date +%s%N)
base_rate=$(rate "$dir/base")
# the primary's CPU per second of client load alone, in ticks
load_ticks_per_s=$(python3 -c "print(($c1 - $c0) / (($t1 - $t0) / 1e9))")

bench "$dir/attack" &
bgpids+=($!)
sleep 1.5
c2=$(cpu_ticks "$tpid")
t2=$(date +%s%N)
nice -n 10 "$byz" -c "$cfg" stranger --target "$target" --conns 32 \
    --rate $ATTEMPTS_PER_S --seconds $SECONDS_LOAD >"$dir/byz.json" ||
    fail "the Byzantine peer failed"
c3=$(cpu_ticks "$tpid")
t3=$(date +%s%N)
wait "${bgpids[0]}" || fail "bench under attack failed"
bgpids=()
attack_rate=$(rate "$dir/attack")
echo "stranger: $(cat "$dir/byz.json")"
echo "client: $base_rate requests/s alone, $attack_rate under attack"
[ "$base_rate" != 0 ] || fail "no progress lines from the client: $(cat "$dir/base.err")"

read -r attempts us_per signed_per_s <<<"$(python3 - "$dir/byz.json" <<PY
import json, sys
j = json.load(open(sys.argv[1]))
secs = ($t3 - $t2) / 1e9
extra = max(0.0, ($c3 - $c2) - $load_ticks_per_s * secs) / $ticks_per_s
n = max(1, j["attempts"])
print(j["attempts"], round(extra * 1e6 / n, 1), round(j["signed"] / j["seconds"]))
PY
)"
[ "$attempts" -gt 0 ] || fail "the stranger made no attempt"
check "$(python3 -c "print(int($us_per <= $CPU_US_PER_ATTEMPT_MAX))")" \
    "$attempts attempts cost the primary $us_per us of CPU each (bound $CPU_US_PER_ATTEMPT_MAX)"
check "$((signed_per_s <= SIGNED_PER_S_MAX))" \
    "the primary signed $signed_per_s handshakes a second for the stranger (bound $SIGNED_PER_S_MAX)"
check "$(python3 -c "print(int($attack_rate >= $RATE_RATIO_MIN * $base_rate))")" \
    "client throughput under attack $attack_rate/s, alone $base_rate/s (bound: at least ${RATE_RATIO_MIN}x)"
finish
