#!/usr/bin/env bash
# netns.sh - four replicas on four "hosts": each in a network namespace of
# its own, joined by veth pairs to a bridge that lives in a fifth
# namespace; each host runs its own pbftd for its one node from one shared
# cluster.ini; the load generator runs in a sixth namespace. Every address
# (10.77.0.0/24) exists only inside namespaces this script creates and
# deletes. Scenarios, each under load:
#   1. the primary's host cut off, then healed: a new view serves clients;
#      the old primary catches up;
#   2. a minority (one host) cut off: service goes on; healed;
#   3. a majority (two hosts) cut off: no request completes (safety first);
#      healed: service resumes within a bound;
#   4. 50 ms delay and 5% loss on one host with tc netem (skipped with one
#      line where the kernel has no netem);
#   5. partitions held 20 s (long enough for TCP to back off: the next
#      retransmission of a cut connection is then 10 s or more away), made
#      by pointing each host's neighbour entry for the hosts across the cut
#      at a MAC address nobody has: the segments leave the sender as on a
#      working network and are lost on the way, as in a real partition (a
#      blackhole route would not do: the sender's own stack then fails the
#      send, and TCP retries every 500 ms without backing off): the primary
#      cut from the other replicas while clients still reach it, and a 2|2
#      split; load while cut, none after the heal. A cut link shows as down
#      in the status of both ends within dead_after (and pbftd's status
#      period of 1 s and the time of the status calls); after the heal
#      every link is up again within dead_after and one redial, and every
#      replica is in one view, not changing (or, alone in a view change,
#      following that view), at one last_executed and state digest within
#      10 s, with no client traffic (a miss is reported at the end, after
#      the other scenarios ran);
#   6. an application host's client-only pbftd (--nodes '') in the client
#      namespace reports the cluster ready and commits a request;
# and at the end every acknowledged request of every run is in all four
# ledgers, in one order (tests/tools/histcheck.py).
# Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN): otherwise it skips
# (exit 77) with one line. Needs PBFT_BUILD. PBFT_NETNS_NO_LINK_STATUS=1
# leaves out the checks of per-link status (scenario 5), to measure the
# time to be in step on a build whose status has no links.
set -euo pipefail

build=${PBFT_BUILD:?PBFT_BUILD must name the build directory}
nolinks=${PBFT_NETNS_NO_LINK_STATUS:-}
mult=${PBFT_TIMEOUT_MULT:-1}
pbftctl=$build/pbftctl/pbftctl
pbftd=$build/pbftd/pbftd
here=$(cd "$(dirname "$0")" && pwd)
histcheck=$here/../tools/histcheck.py
tag=p$$
hub=pbft-$tag-hub
cl=pbft-$tag-cl
ns() { echo "pbft-$tag-n$1"; }

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no ip command (iproute2)"
ip netns add "$hub" 2>/dev/null || skip "cannot create network namespaces here"

dir=$(mktemp -d /tmp/pbft-netns.XXXXXX)
pids=()
cleanup() {
	local rc=$? states=""
	if [ $rc -ne 0 ] && [ -n "${summary_ok:-}" ]; then
		# While they still run, for the report below.
		states=$(for i in 0 1 2 3; do
			summary "$i" || echo "node $i: no status"
		done)
	fi
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	pkill -9 -f "pbft-replica -c $dir/" 2>/dev/null || true
	wait 2>/dev/null || true
	for i in 0 1 2 3; do ip netns del "$(ns $i)" 2>/dev/null || true; done
	ip netns del "$cl" 2>/dev/null || true
	rm -f "$dir/gw.sock"
	ip netns del "$hub" 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		echo "--- pbftd logs (test failed) ---"
		for i in 0 1 2 3; do
			grep -v "connected\|disconnected" "$dir/pbftd$i.log" |
			    tail -n 15 || true
		done
		echo "--- replicas: id view view_changing last_executed" \
		    "stable_checkpoint state_transfer peers_connected ---"
		echo "$states"
		if [ "${runs:-0}" -gt 0 ]; then
			echo "--- the last load run: result and stderr ---"
			cat "$dir/b$runs.json" || true
			tail -n 20 "$dir/e$runs.txt" || true
		fi
	fi
	[ -n "${PBFT_TEST_KEEP:-}" ] || rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT # a test timeout: exit through cleanup
fail() { echo "FAIL: $*" >&2; exit 1; }
passed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
# wait_until SECONDS CMD...: tries CMD every 0.1 s, SECONDS * 10 times (times
# PBFT_TIMEOUT_MULT), and never for longer than three times SECONDS by the
# clock: a try that is slow itself (a status call waiting out a silent
# replica takes a second) must not stretch the wait tenfold.
wait_until() {
	local tries=$(($1 * 10 * mult)) end=$((SECONDS + 3 * $1 * mult))
	shift
	while [ "$tries" -gt 0 ] && [ "$SECONDS" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		tries=$((tries - 1))
		sleep 0.1
	done
	return 1
}

# ---- the hosts ---------------------------------------------------------
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up
ip -n "$hub" link set lo up
attach() { # attach NS ADDR HUBSIDE
	ip netns add "$1"
	ip -n "$1" link add eth0 type veth peer name "$3" netns "$hub"
	ip -n "$1" addr add "$2/24" dev eth0
	ip -n "$1" link set eth0 up
	ip -n "$1" link set lo up
	ip -n "$hub" link set "$3" master br0
	ip -n "$hub" link set "$3" up
}
for i in 0 1 2 3; do attach "$(ns $i)" "10.77.0.$((i + 1))" "h$i"; done
attach "$cl" 10.77.0.100 hcl

"$pbftctl" init -n 4 --hosts 10.77.0.1,10.77.0.2,10.77.0.3,10.77.0.4 \
    --base-port 7000 --clients 7 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 1s/' "$cfg"
sed -i 's/^checkpoint_interval.*/checkpoint_interval = 20/' "$cfg"
grep -q '^checkpoint_interval = 20' "$cfg" ||
    sed -i '/^\[cluster\]/a checkpoint_interval = 20' "$cfg"
for i in 0 1 2 3; do
	ip netns exec "$(ns $i)" "$pbftd" -c "$cfg" --nodes "$i" \
	    -s "$dir/pbftd$i.sock" --client "bench$((i + 2))" \
	    2>"$dir/pbftd$i.log" &
	pids+=($!)
done
for i in 0 1 2 3; do
	wait_until 10 test -S "$dir/pbftd$i.sock" || fail "pbftd $i did not start"
done

status_of() { # status_of NODE FIELD
	timeout $((10 * mult)) "$pbftctl" -s "$dir/pbftd$1.sock" -t 5 status \
	    --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["replicas"]['"$1"'].get("'"$2"'", -1))'
}
# summary NODE: one line of the node's state, for a failure report.
summary() {
	timeout $((10 * mult)) "$pbftctl" -s "$dir/pbftd$1.sock" -t 5 status \
	    --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]['"$1"']
print("node", r["id"], r["view"], r["view_changing"], r["last_executed"],
      r["stable_checkpoint"], r["state_transfer"], r["peers_connected"])'
}
summary_ok=1
runs=0
# load SECONDS: bench from the client host; sets $completed to the requests
# completed (runs in this shell, so that every run's log is kept).
completed=0
load() {
	runs=$((runs + 1))
	ip netns exec "$cl" timeout $(( ($1 + 30) * mult )) "$pbftctl" bench \
	    -c "$cfg" --clients 2 --outstanding 2 --duration "$1" --json \
	    --log "$dir/h$runs" 2>"$dir/e$runs.txt" >"$dir/b$runs.json" || true
	completed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed"])' \
	    "$dir/b$runs.json" 2>/dev/null || echo 0)
}
cut() { ip -n "$hub" link set "h$1" down; }
heal() { ip -n "$hub" link set "h$1" up; }

load 3; done0=$completed
[ "$done0" -gt 50 ] || fail "baseline: only $done0 requests"
ok "baseline over the bridge: $done0 requests in 3 s"

# 1. The primary's host cut off.
cut 0
load 6; done1=$completed
[ "$done1" -gt 50 ] || fail "primary cut off: only $done1 requests"
view=$(status_of 1 view)
[ "$view" -ge 1 ] || fail "no new view after the primary was cut off"
heal 0
load 3
# Caught up: in the others' view (not changing to a later one alone) and
# at their last executed batch. Scenario 2 needs all three hosts that stay.
caught_up() {
	[ "$(status_of 0 view)" = "$(status_of 1 view)" ] &&
	    [ "$(status_of 0 view_changing)" = False ] &&
	    [ "$(status_of 0 last_executed)" -ge "$(status_of 1 last_executed)" ]
}
load 2
wait_until 30 caught_up || fail "the old primary did not catch up"
ok "primary's host cut off: $done1 requests in view $view; healed, it caught up"

# 2. A minority cut off.
cut 2
load 4; done2=$completed
[ "$done2" -gt 50 ] || fail "minority cut off: only $done2 requests"
heal 2
ok "one host cut off: $done2 requests in 4 s"

# 3. A majority cut off: nothing may complete; healed: service resumes.
load 2
cut 1
cut 2
load 3; done3=$completed
[ "$done3" -le 4 ] || fail "majority cut off, yet $done3 requests completed"
heal 1
heal 2
load 20; done4=$completed
[ "$done4" -gt 20 ] || fail "after healing the majority: only $done4 requests"
first=$(python3 -c '
import sys
f = [l.split() for l in open(sys.argv[1])]
inv = min(int(x[2]) for x in f)
ok = [int(x[3]) for x in f if x[0] == "ok"]
print((min(ok) - inv) // 1000)' "$dir/h$runs")
[ "$first" -le $((15000 * mult)) ] || fail "service resumed only after $first ms"
ok "two hosts cut off: $done3 completed; healed: first request done after $first ms, $done4 in 20 s"

# 4. Delay and loss on one host.
if ip netns exec "$(ns 3)" tc qdisc add dev eth0 root netem delay 50ms \
    loss 5% 2>/dev/null; then
	load 5; done5=$completed
	ip netns exec "$(ns 3)" tc qdisc del dev eth0 root 2>/dev/null || true
	[ "$done5" -gt 20 ] || fail "netem on one host: only $done5 requests"
	ok "50 ms delay and 5% loss on one host: $done5 requests in 5 s"
else
	echo "skip: tc netem is not available in this kernel (scenario 4)"
fi

# 5. Partitions held 20 s, then quiet. Each host of one group sends what
# is meant for the other group to an Ethernet address that no host has:
# the bridge floods it and every host drops it, in both directions, and
# the senders see nothing go wrong.
lost_mac=02:00:5e:00:00:01
partition() { # partition add|del "A B" "C D": no traffic between the groups
	local a b
	for a in $2; do
		for b in $3; do
			lose "$1" "$a" "$b"
			lose "$1" "$b" "$a"
		done
	done
}
lose() { # lose add|del FROM TO
	if [ "$1" = add ]; then
		ip -n "$(ns "$2")" neigh replace "10.77.0.$(($3 + 1))" \
		    lladdr "$lost_mac" dev eth0 nud permanent
	else
		ip -n "$(ns "$2")" neigh del "10.77.0.$(($3 + 1))" dev eth0
	fi
}
now_ms() { date +%s%3N; }
# state NODE: "view view_changing following last_executed" of the node's
# replica.
state_of() {
	timeout $((10 * mult)) "$pbftctl" -s "$dir/pbftd$1.sock" -t 5 status \
	    --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]['"$1"']
print(r["view"], r["view_changing"],
      r["following_view"] if r.get("following") else "-", r["last_executed"])'
}
# settle_ms SINCE_MS LIMIT_S: asks the four pbftds' status every 100 ms
# (the control protocol, directly) until every replica is in one view,
# none changing (one that follows the view, alone in a view change, counts
# as in it), at one last_executed, stable checkpoint and state digest, and
# stays so for a second; prints
# the milliseconds from SINCE_MS to the first sample of that state, or
# fails after LIMIT_S seconds (times PBFT_TIMEOUT_MULT) printing the
# last states. Also prints, first, when every link was first seen up
# (-1: never).
settle_ms() {
	python3 - "$1" $(($2 * mult)) "$dir" "$nolinks" <<'PY'
import json, socket, sys, time
since, limit, d = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
nolinks = sys.argv[4] != ""
def state(i):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(3)
        s.connect(f"{d}/pbftd{i}.sock")
        s.sendall(b'{"v":1,"id":1,"cmd":"status","args":{}}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            b = s.recv(65536)
            if not b:
                break
            buf += b
        s.close()
        r = json.loads(buf)["replicas"][i]
        ups = [p["up"] for p in r.get("peers", [])]
        links[i] = nolinks or (len(ups) == 3 and all(ups))
        # A replica alone in a view change that follows the others' view
        # (executing on their COMMITs, not voting) counts as in it, at
        # their last_executed and stable checkpoint with their digest.
        if r.get("following"):
            return (r["following_view"], "following", r["last_executed"],
                    r["stable_checkpoint"], r["state_digest"])
        return (r["view"], r["view_changing"], r["last_executed"],
                r["stable_checkpoint"], r["state_digest"])
    except Exception:
        return None
end = time.time() + limit
first, held_state, last, settled = None, None, None, None
links, links_at, followers = [False] * 4, -1, "-"
while time.time() < end:
    t = time.time()
    last = [state(i) for i in range(4)]
    if links_at < 0 and all(links):
        links_at = int(t * 1000) - since
    # One view, at most one follower (2f+1 = 3 really in the view, not
    # changing), one last_executed, stable checkpoint and digest.
    steady = [x for x in last if x and x[1] is False]
    views = {(x[0],) + x[2:] for x in last if x}
    one = steady[0] if len(steady) >= 3 and len(views) == 1 and \
        all(x and x[1] in (False, "following") for x in last) else None
    if one is not None and one == held_state:
        if t - first >= 1.0 and settled is None:
            settled = int(first * 1000) - since
        if settled is not None and links_at >= 0:
            print(links_at, settled, followers)
            sys.exit(0)
    elif one is not None:
        first, held_state = t, one
        # Who follows, as first in step (node:view).
        followers = ",".join(f"{i}:{x[0]}" for i, x in enumerate(last)
                             if x[1] == "following") or "-"
    elif settled is None:
        first, held_state = None, None
    time.sleep(0.1)
print(links_at, settled if settled is not None else f"none: {last}", "-")
sys.exit(1)
PY
}
# link_down NODE PEER: NODE's status shows its link to PEER as down.
link_down() {
	timeout $((10 * mult)) "$pbftctl" -s "$dir/pbftd$1.sock" -t 5 status \
	    --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]['"$1"']
sys.exit(0 if [p["up"] for p in r["peers"] if p["id"] == '"$2"'] == [False]
         else 1)'
}
# within SECS CMD...: runs CMD until it succeeds, for at most SECS (times
# PBFT_TIMEOUT_MULT); sets $took to the milliseconds it took.
took=0
within() {
	local t0 end
	t0=$(now_ms)
	end=$((t0 + $1 * 1000 * mult)); shift
	while [ "$(now_ms)" -lt "$end" ]; do
		if "$@" >/dev/null 2>&1; then
			took=$(($(now_ms) - t0))
			return 0
		fi
		sleep 0.2
	done
	took=$(($(now_ms) - t0))
	return 1
}
DEAD_AFTER_S=5 # cluster.ini's default dead_after
# held SIDE_A SIDE_B WHO: cuts the groups apart for 20 s; checks that both
# ends of the link between the first of each group show it down within
# dead_after (and up to 4 s for pbftd's status period of 1 s and the
# status calls, slow on a loaded host), puts load on the cluster
# for 6 s, heals at 20 s and waits for the replicas to be in step with no
# client traffic. WHO names the scenario.
held() {
	local a=${1%% *} b=${2%% *} t0 t1 down_ab down_ba
	t0=$(now_ms)
	partition add "$1" "$2"
	down_ab=- down_ba=-
	if [ -z "$nolinks" ]; then
		within $((DEAD_AFTER_S + 4)) link_down "$a" "$b" ||
		    fail "$3: node $a shows its link to $b up $took ms after the cut"
		down_ab=$took
		within 3 link_down "$b" "$a" ||
		    fail "$3: node $b shows its link to $a up after the cut"
		down_ba=$(( $(now_ms) - t0 ))
	fi
	load 6
	while [ $(( $(now_ms) - t0 )) -lt 20000 ]; do sleep 0.5; done
	partition del "$1" "$2"
	t1=$(now_ms)
	# In step as first sampled within 10 s of the heal (and for a second
	# after it).
	settled=$(settle_ms "$t1" 20) || true
	links_up=${settled%% *}
	settled=${settled#* }
	followers=${settled##* } # node:view of those seen following
	settled=${settled% *}
	# Every link back within dead_after and one redial (at most 5 s) of
	# the heal, and a little for the status calls.
	[ "$links_up" -ge 0 ] && [ "$links_up" -le $(( (DEAD_AFTER_S + 7) * 1000 * mult )) ] ||
	    fail "$3: links not all up within $((DEAD_AFTER_S + 7)) s of the heal ($links_up ms)"
	if ! [ "$settled" -le $((10000 * mult)) ] 2>/dev/null; then
		# Reported at the end, so that every scenario runs.
		late="${late}$3: healed, no client traffic: not in one view at"
		late="$late one last_executed within 10 s (view view_changing"
		late="$late following last_executed, links up: $(for i in 0 1 2 3; do
		    echo -n "[$(state_of "$i"), $(links_of "$i")] "; done));"
		late="$late in step after: $settled ms; "
		echo "not ok: $3: links up after $links_up ms; in step after" \
		    "$settled ms (bound 10 s)"
		return 0
	fi
	ok "$3 for 20 s ($completed requests while cut; links seen down" \
	    "by $down_ab and $down_ba ms): healed with no client traffic," \
	    "links up after $links_up ms, in step after $settled ms" \
	    "(following: $followers)"
}
# links_of NODE: how many of its links are up.
links_of() {
	timeout $((10 * mult)) "$pbftctl" -s "$dir/pbftd$1.sock" -t 5 status \
	    --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]['"$1"']
print(sum(p["up"] for p in r.get("peers", [])))'
}
late=""
# Whatever an earlier scenario left behind settles first (a request or two
# make a checkpoint that a replica behind may need).
load 2
settle_ms "$(now_ms)" 30 >/dev/null ||
    late="${late}not in step 30 s before the long partitions, with 2 s of load; "
held "0" "1 2 3" "the primary cut from the replicas (clients reach it)"
load 2
settle_ms "$(now_ms)" 30 >/dev/null ||
    late="${late}not in step 30 s after the primary's partition, with 2 s of load; "
held "0 1" "2 3" "a 2|2 split"

# 6. An application host: a client-only pbftd (no replicas of its own)
# in the client namespace, talking to the remote cluster.
ip netns exec "$cl" "$pbftd" -c "$cfg" --nodes '' -s "$dir/gw.sock" \
    --client bench6 2>"$dir/gw.log" &
pids+=($!)
wait_until 10 test -S "$dir/gw.sock" || fail "the gateway did not start"
gw() { timeout $((30 * mult)) "$pbftctl" -s "$dir/gw.sock" -t 20 "$@"; }
wait_until 20 sh -c "'$pbftctl' -s '$dir/gw.sock' status | grep -q '^ready: yes'" ||
    fail "client-only pbftd not ready: $(gw status)"
gw put netns/gw ok >/dev/null || fail "put through the client-only pbftd"
[ "$(gw get netns/gw)" = ok ] || fail "get through the client-only pbftd: $(gw get netns/gw)"
ok "a client-only pbftd on the client host: ready, a put and a get commit"

# Safety over everything: every acknowledged request in every ledger.
load 3
converged() {
	local e0 e
	e0=$(status_of 0 last_executed)
	for i in 1 2 3; do
		e=$(status_of "$i" last_executed)
		[ "$e" = "$e0" ] || return 1
	done
}
wait_until 60 converged || fail "the four replicas did not converge"
logs=()
for r in $(seq 1 "$runs"); do logs+=(--log "$dir/h$r"); done
python3 "$histcheck" "${logs[@]}" "$dir"/c/data/node-{0,1,2,3}/ledger ||
    fail "history check"
ok "every acknowledged request of $runs runs is in all four ledgers, in one order"
[ -z "$late" ] || fail "$late"
echo "$passed passed, 0 failed"
