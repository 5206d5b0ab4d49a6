#!/usr/bin/env bash
# pbftd.sh - the supervisor with real replicas on 127.0.0.1, hard time bounds:
#   - pbftd -c on a 4-node config; 100 `pbftctl submit`s succeed; status
#     --json shows all four replicas at one last_executed and state digest;
#   - kill -9 of a replica: pbftd restarts it;
#   - the control socket survives garbage, a 10 MB line, an unknown command,
#     an idle client and a half-closed socket, and keeps serving;
#   - SIGTERM: pbftd exits 0 and no replica is left;
#   - kill -9 of pbftd: the replicas exit by themselves.
set -euo pipefail

# shellcheck source=tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" pbftd

"$pbftctl" init -n 4 --base-port "$base" -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 1s/' "$cfg"

"$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
wait_until 10 test -S "$dir/c/pbftd.sock" || fail "no control socket"

wait_until 20 all_running || fail "replicas did not come up"

for i in $(seq 1 100); do
	ctl submit "tx$i" >/dev/null || fail "submit tx$i failed"
done
ok "100 submits through pbftd"

same_state() {
	ctl status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
r = s["replicas"]
ex = {x["last_executed"] for x in r}
dg = {x["state_digest"] for x in r}
sys.exit(0 if len(ex) == 1 and len(dg) == 1 and min(ex) >= 100 else 1)'
}
wait_until 10 same_state || fail "replicas disagree: $(ctl status --json)"
ok "status --json: four replicas at one last_executed and state digest"

ctl put color blue >/dev/null || fail "put"
[ "$(ctl get color)" = blue ] || fail "get did not return the value put"
ctl del color >/dev/null || fail "del"
if ctl get color 2>/dev/null; then fail "get after del succeeded"; fi
ok "put, get, del"

victim=$(ctl status --json | python3 -c '
import json, sys; print(json.load(sys.stdin)["replicas"][2]["pid"])')
kill -9 "$victim"
restarted() {
	ctl status --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"][2]
sys.exit(0 if r["restarts"] >= 1 and r["state"] == "running" else 1)'
}
wait_until 15 restarted || fail "replica 2 was not restarted"
ctl submit after-restart >/dev/null || fail "submit after restart"
ok "kill -9 of a replica: restarted, cluster serves"

# kill -9 of the primary: service resumes within three view-change
# timeouts (through a new view, or through the primary pbftd restarted,
# whichever comes first), and the killed replica catches up.
primary_pid=$(ctl status --json | python3 -c '
import json, sys
s = json.load(sys.stdin); print(s["replicas"][s["primary"]]["pid"])')
old_view=$(ctl status --json | python3 -c '
import json, sys; print(json.load(sys.stdin)["view"])')
kill -9 "$primary_pid"
new_view() {
	ctl status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if s["view"] > '"$old_view"' else 1)'
}
# A view change needs a waiting request: submit, and time it.
t0=$(date +%s%N)
ctl submit after-failover >/dev/null || fail "submit after the primary died"
took_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$took_ms" -le $((3000 * mult + 2000)) ] ||
    fail "failover took $took_ms ms (view-change timeout 1 s)"
if new_view; then how="a new view"; else how="the restarted primary"; fi
echo "failover: request answered after $took_ms ms, by $how"
# Push the cluster past a checkpoint so the restarted replica can catch up.
timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" --requests 250 \
    --clients 4 --json >/dev/null || fail "load after failover"
caught_up() {
	ctl status --json | python3 -c '
import json, sys
r = json.load(sys.stdin)["replicas"]
st = {x["stable_checkpoint"] for x in r}
sys.exit(0 if len(st) == 1 and min(st) >= 100 and
    all(x["state"] == "running" for x in r) else 1)'
}
wait_until 30 caught_up || fail "restarted primary did not catch up: $(ctl status --json)"
ok "kill -9 of the primary: service resumes, restart, catch-up"

# Hostile control clients; pbftd must answer each and keep serving.
python3 - "$dir/c/pbftd.sock" <<'PY' || fail "control socket abuse"
import json, socket, sys, time
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s
def line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf
idle = conn()                                   # connects, never sends
s = conn(); s.sendall(b"garbage\n")
assert json.loads(line(s))["ok"] is False
s = conn(); s.sendall(b'{"v":1,"id":3,"cmd":"frobnicate"}\n')
r = json.loads(line(s)); assert r["ok"] is False and "unknown" in r["error"], r
s = conn()
try:
    s.sendall(b"x" * (10 * 1024 * 1024) + b"\n")
except OSError:
    pass                                        # pbftd may close first
r = line(s)
assert r == b"" or json.loads(r)["ok"] is False
s = conn(); s.sendall(b'{"v":1,"id":4,"cmd":"status"}\n'); s.shutdown(socket.SHUT_WR)
assert json.loads(line(s))["ok"] is True        # half-closed: still answered
s = conn(); s.sendall(b'{"v":1,"id":5,"cmd":"peers"}\n')
assert json.loads(line(s))["ok"] is True        # idle one did not block us
PY
ok "control socket: garbage, 10 MB line, unknown command, idle, half-closed"

replicas=$(pgrep -f "pbft-replica -c $cfg" | wc -l)
[ "$replicas" = 4 ] || fail "expected 4 replicas, found $replicas"
kill -TERM "$pid"
rc=0
timeout $((20 * mult)) tail --pid="$pid" -f /dev/null || fail "pbftd did not exit"
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "pbftd exited with $rc after SIGTERM"
if pgrep -f "pbft-replica -c $cfg" >/dev/null; then fail "replicas left behind"; fi
ok "SIGTERM: exit 0, no replica left"

"$pbftd" -c "$cfg" 2>>"$dir/pbftd.log" &
pid=$!
wait_until 20 all_running || fail "second start: replicas did not come up"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
gone() { ! pgrep -f "pbft-replica -c $cfg" >/dev/null; }
wait_until 10 gone || fail "replicas outlived a killed pbftd"
ok "kill -9 of pbftd: replicas exit by themselves"

# Two pbftd on one host, two nodes each, one cluster.ini (as two hosts
# would run it): each with its own control socket and client identity.
"$pbftd" -c "$cfg" --nodes 0,1 -s "$dir/a.sock" 2>>"$dir/pbftd.log" &
pid=$!
"$pbftd" -c "$cfg" --nodes 2,3 -s "$dir/b.sock" --client bench0 \
    2>>"$dir/pbftd.log" &
pid2=$!
pids+=("$pid2")
wait_until 10 test -S "$dir/b.sock" || fail "second pbftd has no socket"
sctl() { timeout $((20 * mult)) "$pbftctl" -s "$1" -t $((15 * mult)) "${@:2}"; }
wait_until 20 sctl "$dir/a.sock" submit from-a || fail "submit through a"
sctl "$dir/b.sock" submit from-b >/dev/null || fail "submit through b"
local_states=$(sctl "$dir/b.sock" status --json | python3 -c '
import json, sys
print(" ".join(r["state"] for r in json.load(sys.stdin)["replicas"]))')
[ "$local_states" = "remote remote running running" ] ||
    fail "b's view of the nodes: $local_states"
kill -TERM "$pid" "$pid2"
wait "$pid" "$pid2" || fail "a pbftd did not exit cleanly"
pid= pid2=
ok "two pbftd, two nodes each, one cluster"
echo "$passed passed, 0 failed"
