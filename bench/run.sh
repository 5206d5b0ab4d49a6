#!/usr/bin/env bash
# bench/run.sh - the standard performance scenarios, one JSON result each.
#
#     bench/run.sh [-b BUILD] [-o OUTDIR] [-d SECONDS] [-s SCENARIO]...
#                  [--memory MINUTES]
#
# Each scenario starts a fresh cluster of pbft-replica processes on
# 127.0.0.1 (keys from `pbftctl init`), runs `pbftctl bench` against it and
# writes OUTDIR/<scenario>.json (bench's --json object plus the scenario's
# settings); a summary table goes to standard output. Scenarios:
#   peak-n4-64       saturation: 16 clients x 256 outstanding, 64 B
#   rate70-n4-64     open loop at 70% of peak-n4-64's throughput, from 4
#                    clients (see README: a client's requests share a
#                    signature per 2-5 ms while it has some unanswered, so
#                    many clients with a trickle each cost the primary more)
#   light-n4-64      1 client, 1 outstanding, fsync = batch
#   light-off-n4-64  the same with fsync = off
#   peak-n7-64, peak-n10-64    16 x 256, 64 B
#   peak-n4-1024     16 x 64, 1 KiB;  peak-n4-4096  8 x 64, 4 KiB
#   memory           (with --memory M) M minutes at saturation (16 x 256);
#                    RSS of every process sampled each second into
#                    memory.csv
# -s runs only the named scenarios (rate70-n4-64 reads peak-n4-64's result
# from OUTDIR). Defaults: build directory ./build, OUTDIR bench/results,
# 10 s each.
set -euo pipefail

build=build
out=bench/results
secs=10
memory=0
only=" "
while [ $# -gt 0 ]; do
	case $1 in
	-b) build=$2; shift 2 ;;
	-o) out=$2; shift 2 ;;
	-d) secs=$2; shift 2 ;;
	-s) only="$only$2 "; shift 2 ;;
	--memory) memory=$2; shift 2 ;;
	-h|--help) sed -n '2,27p' "$0"; exit 0 ;;
	*) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
pbftctl=$build/pbftctl/pbftctl
replica=$build/pbft-replica/pbft-replica
[ -x "$pbftctl" ] && [ -x "$replica" ] ||
    { echo "bench/run.sh: build first (meson setup $build && ninja -C $build)" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d /tmp/pbft-bench.XXXXXX)
pids=()
stop_cluster() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}
trap 'stop_cluster; rm -rf "$work"' EXIT

# start N FSYNC: a fresh cluster in $work/c
start() {
	stop_cluster
	rm -rf "$work/c"
	"$pbftctl" init -n "$1" --base-port 27000 --clients 16 -o "$work/c" >/dev/null
	sed -i "s/^fsync = .*/fsync = $2/" "$work/c/cluster.ini"
	for i in $(seq 0 $(($1 - 1))); do
		"$replica" -c "$work/c/cluster.ini" -i "$i" 2>"$work/r$i.log" &
		pids+=($!)
	done
	sleep 1
}
# run NAME N FSYNC BENCH-ARGS...
run() {
	local name=$1 n=$2 fs=$3
	shift 3
	[ "$only" = " " ] || [[ "$only" == *" $name "* ]] || return 0
	start "$n" "$fs"
	"$pbftctl" bench -c "$work/c/cluster.ini" --json "$@" \
	    >"$work/res.json" 2>/dev/null || true
	python3 - "$work/res.json" "$out/$name.json" "$name" "$fs" "$*" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r.update({"scenario": sys.argv[3], "fsync": sys.argv[4], "args": sys.argv[5]})
json.dump(r, open(sys.argv[2], "w"))
l = r["latency_ms"]
print("%-16s n=%-2d %5dB fsync=%-5s %9.0f req/s  p50 %7.2f  p99 %7.2f  p99.9 %7.2f ms  errors %d timeouts %d" % (
    r["scenario"], r["n"], r["size"], r["fsync"], r["throughput"], l["p50"],
    l["p99"], l["p999"], r["errors"], r["timeouts"]))
PY
}
sat="--clients 16 --outstanding 256 --duration $secs"
run peak-n4-64 4 batch $sat --size 64
peak=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["throughput"]))' "$out/peak-n4-64.json" 2>/dev/null || echo 0)
run rate70-n4-64 4 batch --clients 4 --outstanding 4096 --duration "$secs" \
    --size 64 --rate $(( peak * 7 / 10 > 0 ? peak * 7 / 10 : 1 ))
run light-n4-64 4 batch --clients 1 --outstanding 1 --duration "$secs" --size 64
run light-off-n4-64 4 off --clients 1 --outstanding 1 --duration "$secs" --size 64
run peak-n7-64 7 batch $sat --size 64
run peak-n10-64 10 batch $sat --size 64
run peak-n4-1024 4 batch --clients 16 --outstanding 64 --duration "$secs" --size 1024
run peak-n4-4096 4 batch --clients 8 --outstanding 64 --duration "$secs" --size 4096
if [ "$memory" -gt 0 ]; then
	start 4 batch
	"$pbftctl" bench -c "$work/c/cluster.ini" --clients 16 --outstanding 256 \
	    --duration $((memory * 60)) --json >"$out/memory.json" 2>/dev/null &
	b=$!
	echo "second,$(seq -s, 0 3 | sed 's/\([0-9]\)/r\1/g'),bench" >"$out/memory.csv"
	for s in $(seq 1 $((memory * 60))); do
		kill -0 "$b" 2>/dev/null || break
		row=$s
		for p in "${pids[@]}" "$b"; do
			row="$row,$( (ps -o rss= -p "$p" 2>/dev/null || true) | tr -d ' ')"
		done
		echo "$row" >>"$out/memory.csv"
		sleep 1
	done
	wait "$b" || true
	python3 - "$out/memory.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for col in [c for c in rows[0] if c != "second"]:
    v = [int(r[col] or 0) for r in rows]
    # Medians of a window after the warm-up and of the last window.
    w = max(1, min(60, len(v) // 5))
    first, last = sorted(v[w:2 * w] or v[:w]), sorted(v[-w:])
    a, b = first[len(first) // 2], last[len(last) // 2]
    print("memory %-5s RSS median %7d KiB after warm-up, %7d KiB at the end (%+.1f%%), max %d KiB" % (
        col, a, b, 100.0 * (b - a) / max(a, 1), max(v)))
PY
fi
