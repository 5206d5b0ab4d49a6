#!/usr/bin/env bash
# replay.sh - a replica with a valid key (node 1, whose own process is not
# started: the Byzantine peer plays it) repeats signed messages to make a
# correct replica (node 2) verify signatures for nothing:
#   1. one signed CHECKPOINT for a future sequence number, sent
#      CKPT_COUNT times on one channel: node 2's replica_sig_checks
#      (signature verifications) and CPU time during the attack are bounded;
#   2. VIEW-CHANGEs for ever higher views, VC_COUNT of them, each signed:
#      the same two bounds.
# The cluster (nodes 0, 2 and 3, a quorum) must still order requests after.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# Bounds. On main before the fixes of the issue (item 3), 22,960 identical
# checkpoint frames cost 21,238 verifications and 3 s of CPU: every copy
# was verified again. What was verified once need not be again, and how far
# ahead checkpoints and views are accepted is bounded: a handful of
# verifications, and well under a second of CPU, for the whole run.
CKPT_COUNT=20000
CKPT_VERIFY_MAX=100
CKPT_CPU_MS_MAX=$((500 * mult))
VC_COUNT=20000
VC_VERIFY_MAX=1000 # 5% of the view changes sent
VC_CPU_MS_MAX=$((1000 * mult))

cluster_init --clients 2
cluster_start 0,2,3
target=2
tpid=$(field $target pid)

# measure NAME VERIFY_MAX CPU_MS_MAX CMD...: runs the attack, then checks.
measure() {
	local what=$1 vmax=$2 cmax=$3
	shift 3
	local v0 c0 v1 c1 out
	v0=$(field $target replica_sig_checks)
	c0=$(cpu_ticks "$tpid")
	out=$(timeout $((60 * mult)) "$byz" -c "$cfg" "$@") ||
	    fail "$what: the Byzantine peer failed"
	# the target may still be working through what it read: wait until
	# its count stands still for a second
	v1=$(field $target replica_sig_checks)
	for _ in $(seq 1 $((20 * mult))); do
		sleep 1
		local v
		v=$(field $target replica_sig_checks)
		[ "$v" = "$v1" ] && break
		v1=$v
	done
	c1=$(cpu_ticks "$tpid")
	local sent verif cpu_ms
	sent=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["sent"])' "$out")
	verif=$((v1 - v0))
	cpu_ms=$(((c1 - c0) * 1000 / ticks_per_s))
	echo "$what: $out"
	check $((verif <= vmax)) \
	    "$what: $sent sent, node $target verified $verif signatures (bound $vmax)"
	check $((cpu_ms <= cmax)) \
	    "$what: node $target spent $cpu_ms ms of CPU (bound $cmax)"
}

low=$(field $target stable_checkpoint)
seq=$((low + 100 * 20))
measure "checkpoint replay" $CKPT_VERIFY_MAX $CKPT_CPU_MS_MAX \
    checkpoint --as 1 --target $target --seq $seq --count $CKPT_COUNT

view=$(field $target view)
measure "view-change escalation" $VC_VERIFY_MAX $VC_CPU_MS_MAX \
    view-change --as 1 --target $target --view "$view" --count $VC_COUNT

ctl submit after-the-attacks >/dev/null ||
    fail "the cluster stopped ordering requests"
finish
