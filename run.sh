#!/usr/bin/env bash
# run.sh - one entry point for building, running and testing pbft on one
# machine. Each verb is a thin wrapper over meson, pbftd and pbftctl.
#
#   ./run.sh start        install what is missing, build, create the demo keys
#                         for conf/cluster.ini on first run, run the 4-node
#                         cluster in the foreground (Ctrl-C stops it)
#   ./run.sh test         install what is missing, build, run every test
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$top"
build=${PBFT_BUILD:-build}
conf=${PBFT_CONF:-conf/cluster.ini}

# Debian 12 packages the build and the tests need.
pkgs=(meson ninja-build pkg-config gcc clang libssl-dev libev-dev libinih-dev
      check libjansson-dev libmicrohttpd-dev python3 clang-format iproute2
      curl)

usage() {
	cat <<'USAGE'
usage: ./run.sh VERB [ARGS]

  start          deps + build + demo keys + run the cluster in the foreground
  test           deps + build + run every test (what CI runs)
  deps           install missing Debian packages (apt-get; root or sudo)
  build          configure and compile into ./build
  keygen         create the demo keys of conf/cluster.ini if missing
  network        run pbftd on conf/cluster.ini in the foreground
  network-bg     run pbftd in the background (log: run/pbftd.log)
  node N         run pbftd for node N only (one node of the cluster)
  status         pbftctl status
  submit DATA    pbftctl submit DATA
  stop           stop a background pbftd
  clean          remove the build directory and run/ state
  help           this text
USAGE
}

deps() {
	local missing=()
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "run.sh: installing: ${missing[*]}"
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
	    --no-install-recommends "${missing[@]}"
}

build() {
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" --buildtype=debugoptimized
	fi
	ninja -C "$build"
}

keygen() {
	# Demo keys only: derived from the seeds documented in conf/cluster.ini.
	local seeds
	seeds=$(sed -n 's/^; demo-key \([^ ]*\) seed \([0-9a-f]\{64\}\)$/\1 \2/p' "$conf")
	mkdir -p "$(dirname "$conf")/keys"
	while read -r file seed; do
		[ -n "$file" ] || continue
		local path
		path="$(dirname "$conf")/$file"
		[ -f "$path" ] && continue
		"$build/pbftctl/pbftctl" keygen --seed "$seed" -o "$path" >/dev/null
		echo "run.sh: created demo key $path"
	done <<<"$seeds"
}

network() {
	exec "$build/pbftd/pbftd" -c "$conf" "$@"
}

case "${1:-help}" in
start)
	deps
	build
	keygen
	"$build/pbftd/pbftd" -t -c "$conf"
	echo "run.sh: starting the cluster; in another terminal: ./run.sh status, ./run.sh submit hello"
	network
	;;
test)
	deps
	build
	meson test -C "$build" --print-errorlogs --num-processes 2 \
	    ${PBFT_TEST_ARGS:-}
	;;
deps) deps ;;
build) build ;;
keygen) keygen ;;
network) network ;;
network-bg)
	mkdir -p run
	"$build/pbftd/pbftd" -c "$conf" -D -p "$top/run/pbftd.pid" \
	    2>>run/pbftd.log
	echo "run.sh: pbftd running (pid $(cat run/pbftd.pid)); log: run/pbftd.log"
	;;
node)
	[ $# -eq 2 ] || { usage >&2; exit 2; }
	network --nodes "$2"
	;;
status) exec "$build/pbftctl/pbftctl" -c "$conf" status ;;
submit)
	shift
	exec "$build/pbftctl/pbftctl" -c "$conf" submit "$@"
	;;
stop)
	if [ -f run/pbftd.pid ]; then
		kill "$(cat run/pbftd.pid)" && rm -f run/pbftd.pid
	else
		echo "run.sh: no background pbftd (run/pbftd.pid missing)" >&2
		exit 1
	fi
	;;
clean) rm -rf "$build" run ;;
help | -h | --help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
