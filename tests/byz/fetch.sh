#!/usr/bin/env bash
# fetch.sh - a replica with a valid key (node 1, played by the Byzantine
# peer) asks a correct replica (node 2) for what it holds, again and again:
# FETCH_STATE for every chunk of its stable checkpoint (the cluster idle,
# so that the checkpoint stays), then FETCH_BATCH for every batch it told
# us of (its PREPAREs name them) while a client keeps 64 KiB requests
# going; a new round of asks as soon as the answers to the last one stop
# coming (20 ms of quiet), so as fast as the target answers. The peer counts
# on its own connection the bytes it sent and the answers it got
# (STATE_CHUNK and BATCH frames): how many times, on average, the target
# answered the same chunk or batch again is bounded. The bytes answered
# per byte asked are printed beside it but not bounded: a correct replica
# answers a 54-byte ask for a chunk with 1 MiB, about 20,000 times as much,
# whenever a replica that fell behind needs it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

# Bound. On main before the fixes of the issue (item 4) every ask was
# answered in full: 1,620 bytes of FETCH_STATE returned 22.6 MB, and 100
# asks overflowed the server's 32 MiB queue to that peer. With outstanding
# fetches bounded per peer and answers rate-limited, what was answered is
# not answered again to the same peer for a while.
# A correct replica asks for a chunk or a batch again only when no answer
# came, so each goes to one peer at most once a retransmission period (a
# quarter of the view-change timeout: 0.5 s in this cluster): over the run,
# at most one answer per period, plus one for the period the run starts in.
SECONDS_ATTACK=8
PERIOD_MS=500
ANSWER_COPIES_MAX=$((SECONDS_ATTACK * 1000 / PERIOD_MS + 1))

cluster_init --clients 2
cluster_start 0,2,3
target=2
# a state of several MiB, so that a checkpoint has several chunks
timeout $((120 * mult)) "$pbftctl" bench -c "$cfg" --clients 1 \
    --outstanding 2 --size 65536 --requests 120 --json >"$dir/fill.json" \
    2>"$dir/fill.err" || fail "bench: $(cat "$dir/fill.json" "$dir/fill.err")"
seq=$(field $target stable_checkpoint)
[ "$seq" -gt 0 ] || fail "no stable checkpoint after the fill"

# attack WHAT: one run of the peer asking for WHAT (state, or batch under
# a steady load of 64 KiB requests); checks how often it got one thing.
attack() {
	local what=$1 out drops0 drops asked answered ratio
	if [ "$what" = batch ]; then
		timeout $((60 * mult)) "$pbftctl" bench -c "$cfg" \
		    --clients 1 --outstanding 1 --size 65536 --rate 20 \
		    --duration $((SECONDS_ATTACK + 2)) --json \
		    >"$dir/load.json" 2>"$dir/load.err" &
		bgpids+=($!)
	fi
	drops0=$(field $target queue_drops)
	out=$(timeout $((60 * mult)) "$byz" -c "$cfg" fetch --as 1 \
	    --target $target --seq "$seq" --seconds $SECONDS_ATTACK \
	    --what "$what") || fail "the Byzantine peer failed"
	[ ${#bgpids[@]} = 0 ] || wait "${bgpids[@]}" || true
	bgpids=()
	drops=$(($(field $target queue_drops) - drops0))
	echo "fetch $what: $out"
	read -r asked answered ratio copies <<<"$(python3 -c '
import json, sys
j = json.loads(sys.argv[1])
print(j["bytes_out"], j["answer_bytes"],
      round(j["answer_bytes"] / max(1, j["bytes_out"]), 1),
      round(j["answers"] / max(1, j["distinct_answers"]), 1))' "$out")"
	[ "$asked" -gt 0 ] || fail "the peer asked nothing"
	[ "$what" = batch ] && [ "$(json_str "$out" batches_seen)" = 0 ] &&
	    fail "the peer learned of no batch to ask for"
	echo "fetch $what: node $target answered $answered bytes to $asked bytes asked (${ratio}x); dropped the peer for a full queue $drops times"
	check "$(python3 -c "print(int($copies <= $ANSWER_COPIES_MAX))")" \
	    "fetch $what: node $target answered each chunk or batch $copies times on average ($(json_str "$out" answers) answers, $(json_str "$out" distinct_answers) distinct; bound $ANSWER_COPIES_MAX)"
}
json_str() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

attack state
attack batch
finish
