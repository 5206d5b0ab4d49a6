#!/usr/bin/env bash
# check_library.sh STAGE_ROOT - libpbft as an embedder gets it from a staged
# install (meson install --destdir STAGE_ROOT), or, with STAGE_ROOT /, as
# installed on this machine (the libpbft-dev package, tests/install/
# check_deb.sh):
#   - the public headers compile as C and as C++ (when a C++ compiler is
#     there);
#   - examples/counter builds out of tree with the installed pbft.pc only
#     (PKG_CONFIG_SYSROOT_DIR points pkg-config into the staging root);
#   - counter replicas on 127.0.0.1 (a configuration made by the installed
#     pbftctl init, checkpoints every 10 requests) take COUNT increments
#     from counter-client, which reads back COUNT: half of them with
#     replicas 0-2, the rest after replica 3 joined late (it must fetch
#     the state through the library's checkpoints) and replica 0 restarted
#     (it must restore its snapshot); every replica reaches COUNT.
# Every wait is bounded in time; the whole run is bounded by `timeout`.
set -euo pipefail

stage=${1:?usage: check_library.sh STAGE_ROOT}
count=${PBFT_COUNTER_N:-200}
mult=${PBFT_TIMEOUT_MULT:-1}
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../examples/counter
fail() { echo "FAIL: $*" >&2; exit 1; }
find_one() {
	local f
	f=$(find "$stage" -path "*/$1" -print -quit)
	[ -n "$f" ] || fail "no $1 in the staged install"
	echo "$f"
}
if [ "$stage" = / ]; then
	pc=$(pkg-config --variable=pcfiledir pbft)/pbft.pc
	pbftctl=$(command -v pbftctl) || fail "no pbftctl installed"
else
	pc=$(find_one pkgconfig/pbft.pc)
	pbftctl=$(find_one bin/pbftctl)
fi
libdir=$(dirname "$(dirname "$pc")")

dir=$(mktemp -d /tmp/pbft-library.XXXXXX)
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		for f in "$dir"/replica-*.log; do
			[ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
		done
	fi
	[ -n "${PBFT_TEST_KEEP:-}" ] || rm -rf "$dir"
	exit $rc
}
trap cleanup EXIT

if [ "$stage" != / ]; then
	export PKG_CONFIG_PATH=$(dirname "$pc")
	export PKG_CONFIG_SYSROOT_DIR=$stage
	export LD_LIBRARY_PATH=$stage$(pkg-config --variable=libdir pbft |
	    sed "s#^$stage##")
	[ -f "$LD_LIBRARY_PATH/libpbft.so.0" ] ||
	    fail "no libpbft.so.0 in $LD_LIBRARY_PATH"
	[ "$LD_LIBRARY_PATH" = "$libdir" ] ||
	    fail "pbft.pc's libdir is not $libdir"
fi

# The headers alone, as C (strict) and as C++.
printf '#include <pbft/pbft.h>\nint main(void) { return pbft_version() == 0; }\n' \
    >"$dir/hdr.c"
cc -std=c99 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags pbft) \
    -o "$dir/hdr" "$dir/hdr.c" $(pkg-config --libs pbft) ||
    fail "the headers do not compile as C99"
"$dir/hdr" || fail "pbft_version() from the installed library"
if command -v c++ >/dev/null 2>&1; then
	cp "$dir/hdr.c" "$dir/hdr.cc"
	c++ -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags pbft) \
	    -o "$dir/hdrxx" "$dir/hdr.cc" $(pkg-config --libs pbft) ||
	    fail "the headers do not compile as C++"
	"$dir/hdrxx" || fail "pbft_version() from C++"
	echo "ok: the public headers compile and link as C99 and C++"
else
	echo "ok: the public headers compile and link as C99 (no C++ compiler)"
fi

# The example, out of tree, with pkg-config only.
cp -r "$src" "$dir/counter"
make -s -C "$dir/counter" >/dev/null || fail "examples/counter does not build"
# The client again, on the static library (pkg-config --static).
cc -O2 -o "$dir/counter/counter-client-static" "$dir/counter/counter-client.c" \
    "$dir/counter/counter.c" $(pkg-config --cflags pbft) -Wl,-Bstatic -lpbft \
    -Wl,-Bdynamic $(pkg-config --static --libs pbft | sed 's/-lpbft//') ||
    fail "counter-client does not link with libpbft.a"
ldd "$dir/counter/counter-client-static" | grep -q libpbft &&
    fail "counter-client-static loads libpbft.so"
echo "ok: examples/counter built against the library in $stage (shared and static)"

base=$(( 20000 + ($$ % 2000) * 10 ))
"$pbftctl" init -n 4 --base-port "$base" --clients 1 -o "$dir/c" >/dev/null
cfg=$dir/c/cluster.ini
# Checkpoints every 10 requests: a replica that missed more than a window
# of them must fetch the service's state (the library's whole-image
# checkpoints), not replay it.
sed -i 's/^checkpoint_interval.*/checkpoint_interval = 10/
s/^view_change_timeout.*/view_change_timeout = 2s/' "$cfg"
grep -q '^checkpoint_interval = 10$' "$cfg" ||
    sed -i '/^\[cluster\]/a checkpoint_interval = 10' "$cfg"
declare -A rpid
start() {
	"$dir/counter/counter-replica" -c "$cfg" -i "$1" \
	    >>"$dir/replica-$1.log" 2>&1 &
	rpid[$1]=$!
	pids+=($!)
}
stop() {
	kill "${rpid[$1]}"
	for _ in $(seq 1 100); do
		kill -0 "${rpid[$1]}" 2>/dev/null || return 0
		sleep 0.1
	done
	fail "replica $1 did not stop on SIGTERM"
}
# add N EXPECTED [static]: N increments, then the value read is EXPECTED
add() {
	local out bin=$dir/counter/counter-client${3:+-static}
	out=$(timeout $((120 * mult)) "$bin" -c "$cfg" -C admin -n "$1") ||
	    fail "$(basename "$bin") -n $1 failed"
	[ "$out" = "$2" ] || fail "counter-client read $out, want $2"
}
# wait_log I PATTERN: replica I's output has PATTERN, within 30 s.
wait_log() {
	local end=$(( $(date +%s) + 30 * mult ))
	for _ in $(seq 1 $((300 * mult))); do
		grep -q -- "$2" "$dir/replica-$1.log" && return 0
		[ "$(date +%s)" -lt "$end" ] || break
		sleep 0.1
	done
	return 1
}

half=$((count / 2))
for i in 0 1 2; do start $i; done
add "$half" "$half"
echo "ok: $half increments on replicas 0-2, confirmed by f+1; read $half"

# Replica 3 starts far behind and fetches the state; replica 0 restarts
# and restores its own latest snapshot.
start 3
stop 0
start 0
add $((count - half)) "$count" static
echo "ok: $((count - half)) more (static client) with replica 0 restarted and 3 new; read $count"
wait_log 3 "state of checkpoint [0-9]* installed" ||
    fail "replica 3 did not install a fetched state"
wait_log 0 "restored the state of checkpoint" ||
    fail "replica 0 did not restore its snapshot"
echo "ok: replica 3 installed a fetched state; replica 0 restored its snapshot"

# Every replica executed every increment (the read comes after them).
for i in 0 1 2 3; do
	wait_log $i "^value $count at" ||
	    fail "replica $i did not reach $count (last: $(grep '^value' \
	    "$dir/replica-$i.log" | tail -n 1))"
	if grep -q "^value $((count + 1)) at" "$dir/replica-$i.log"; then
		fail "replica $i went past $count"
	fi
done
echo "ok: all 4 replicas are at $count"
