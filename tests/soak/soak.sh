#!/usr/bin/env bash
# soak.sh - long load with random faults (not part of CI).
#
#     PBFT_BUILD=build tests/soak/soak.sh [MINUTES] [PBFT_FAULTS]
#
# Starts a 4-node cluster under pbftd on 127.0.0.1 and keeps two clients
# of pipelined load on it for MINUTES (default 10). Every 20-40 s one
# random fault: kill -9 of a random replica, kill -9 of the primary, a
# replica stopped for 10 s, or a replica's data directory wiped (it comes
# back by state transfer). With a fault-injection build, PBFT_FAULTS adds
# a standing Byzantine replica (e.g. "3:garbage").
# Writes to the run directory (printed at the start):
#   throughput.csv  second, completed requests per second (from bench)
#   rss.csv         second, then RSS in KiB of pbftd and each replica slot
#   faults.log      what was done when
# and at the end checks every acknowledged request against the ledgers
# (tests/tools/histcheck.py) and reports RSS growth of the processes that
# lived through the whole run. Bounded: it stops by itself.
set -euo pipefail

build=${PBFT_BUILD:?PBFT_BUILD must name the build directory}
minutes=${1:-10}
faults=${2:-}
pbftctl=$build/pbftctl/pbftctl
pbftd=$build/pbftd/pbftd
here=$(cd "$(dirname "$0")" && pwd)
histcheck=$here/../tools/histcheck.py
dir=$(mktemp -d /tmp/pbft-soak.XXXXXX)
echo "soak: $minutes minutes, run directory $dir"
pid=
bpid=
cleanup() {
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null || true
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	sleep 1
	pkill -9 -f "pbft-replica -c $dir/" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 143' TERM INT # a test timeout: exit through cleanup

"$pbftctl" init -n 4 --base-port $((10000 + ($$ % 2200) * 10)) --clients 3 \
    -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
sed -i 's/^view_change_timeout.*/view_change_timeout = 1s/' "$cfg"
ctl() { timeout 20 "$pbftctl" -c "$cfg" -t 15 "$@"; }
PBFT_FAULTS=$faults "$pbftd" -c "$cfg" 2>"$dir/pbftd.log" &
pid=$!
sleep 2
end=$(( $(date +%s) + minutes * 60 ))
timeout $(( minutes * 60 + 60 )) "$pbftctl" bench -c "$cfg" --clients 2 \
    --outstanding 4 --duration $(( minutes * 60 )) --log "$dir/h" \
    2>"$dir/bench.progress" >"$dir/bench.txt" &
bpid=$!

field() {
	ctl status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["replicas"][int(sys.argv[1])][sys.argv[2]] if sys.argv[1] != "p" else s["primary"])' "$1" "$2"
}
t0=$(date +%s)
next=$(( t0 + 20 + RANDOM % 20 ))
echo "second,pbftd,r0,r1,r2,r3" >"$dir/rss.csv"
while [ "$(date +%s)" -lt "$end" ]; do
	now=$(( $(date +%s) - t0 ))
	row="$now,$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ' || echo 0)"
	for i in 0 1 2 3; do
		p=$(pgrep -f "pbft-replica -c $cfg -i $i" | head -n 1 || true)
		row="$row,$( [ -n "$p" ] && ps -o rss= -p "$p" | tr -d ' ' || echo 0)"
	done
	echo "$row" >>"$dir/rss.csv"
	if [ "$(date +%s)" -ge "$next" ]; then
		victim=$(( RANDOM % 4 ))
		case $(( RANDOM % 4 )) in
		0) p=$(pgrep -f "pbft-replica -c $cfg -i $victim" | head -n 1 || true)
		   [ -n "$p" ] && kill -9 "$p"
		   echo "$now kill -9 node $victim" >>"$dir/faults.log" ;;
		1) victim=$(field p primary 2>/dev/null || echo 0)
		   p=$(pgrep -f "pbft-replica -c $cfg -i $victim" | head -n 1 || true)
		   [ -n "$p" ] && kill -9 "$p"
		   echo "$now kill -9 primary $victim" >>"$dir/faults.log" ;;
		2) ctl stop "$victim" >/dev/null || true
		   echo "$now stop node $victim for 10 s" >>"$dir/faults.log"
		   sleep 10; ctl restart "$victim" >/dev/null || true ;;
		3) ctl stop "$victim" >/dev/null || true; sleep 1
		   rm -rf "$dir/c/data/node-$victim"
		   ctl restart "$victim" >/dev/null || true
		   echo "$now wipe node $victim" >>"$dir/faults.log" ;;
		esac
		next=$(( $(date +%s) + 20 + RANDOM % 20 ))
	fi
	sleep 1
done
wait "$bpid" || true
bpid=
grep -E '^ *[0-9.]+s ' "$dir/bench.progress" |
    awk '{ printf "%d,%d\n", $1, $2 }' >"$dir/throughput.csv" || true
cat "$dir/bench.txt"
# Let every replica catch up, then judge the history.
timeout 120 "$pbftctl" bench -c "$cfg" --requests 300 --log "$dir/h2" \
    >/dev/null 2>&1 || true
sleep 5
python3 "$histcheck" --log "$dir/h" --log "$dir/h2" \
    $(for i in 0 1 2 3; do
	e=$(field "$i" last_executed 2>/dev/null || echo -1)
	m=$(field 0 last_executed 2>/dev/null || echo -2)
	[ "$e" = "$m" ] && echo "$dir/c/data/node-$i/ledger"
    done) || { echo "soak: VIOLATION"; exit 1; }
python3 - "$dir/rss.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n = len(rows)
if n < 120:
    sys.exit(0)
for col in rows[0].keys():
    if col == 'second':
        continue
    vals = [int(r[col] or 0) for r in rows]
    first = sorted(vals[30:90])[30]
    last = sorted(vals[-60:])[30]
    alive = all(v > 0 for v in vals)
    print('rss %-6s minute 1: %7d KiB  last minute: %7d KiB  %s' % (
        col, first, last,
        ('growth %+.1f%%' % (100.0 * (last - first) / first)) if alive and first
        else '(restarted during the run)'))
PY
echo "faults:"; cat "$dir/faults.log" 2>/dev/null || true
echo "soak: no violation; files in $dir"
