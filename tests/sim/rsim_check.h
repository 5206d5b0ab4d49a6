/*
 * rsim_check.h - checks of the simulator of the real replica driver
 * (tests/sim/rsim.c) that read what only the real driver leaves behind:
 * its data directory on the simulated disk and its retained memory.
 *
 * Durable before send: when a correct replica's PRE-PREPARE, PREPARE,
 * COMMIT, CHECKPOINT, VIEW-CHANGE or NEW-VIEW leaves it, the record that
 * pbft-replica/core/pbft.h makes it wait for must be on the disk as a
 * crash would leave it now. On a deterministic sample of those frames
 * the node's durable image is copied aside (simfs_copy_durable), opened
 * with the real store and replayed (store_replay), and the records
 * looked for: for a COMMIT of (v, n, d) the prepared claim (v, n, d) (or
 * the COMMIT's own record; or a later claim for n; or a stable
 * checkpoint at n or above); for an early PRE-PREPARE or PREPARE of
 * (v, n) the barriers, view v's entry and an early-vote bound of v at n
 * or above (or the vote's own record); for a CHECKPOINT its own record
 * (or a stable checkpoint at or above it); for a VIEW-CHANGE to v its
 * record for v or later (or the entry into v: a retransmission released
 * after it); for a NEW-VIEW of v the entry into v. Every VIEW-CHANGE and
 * NEW-VIEW is checked, about one CHECKPOINT in every / 4 and one vote in
 * every; the copy and replay do not change the run (its trace and disk
 * digests are those of a run without the check).
 *
 * Disk damage at restart (rchk_corrupt): a byte of one of the node's
 * durable files flipped before a crashed replica starts again.
 *
 * State transfers (rchk_xfer_mixed): those that met a lying replica and
 * a silent or stalled one, counted.
 *
 * Retained memory (rchk_mem): what each replica holds, sampled as the
 * run goes, bounded by the window and queue limits and not growing with
 * the run's length.
 */
#ifndef PBFT_RSIM_CHECK_H
#define PBFT_RSIM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rchk;
struct replica;

/* For replicas 0..n-1 whose data directories are data_dir/node-ID, and
 * clients clients; every: one covered frame in about every (0: none) is
 * checked. */
struct rchk *rchk_new(uint32_t n, uint32_t clients, const char *data_dir,
    uint64_t seed, uint32_t every);
void rchk_free(struct rchk *c);

/*
 * A correct replica's frame leaves it, to a Byzantine replica of mode
 * to_mode (enum rsim_byz), to a correct one stalled (RSIM_BYZ_COUNT), or
 * to another correct one or a client (-1). 0, or -1 with why set: the
 * record it waits for is not durable.
 */
int rchk_frame_out(struct rchk *c, uint32_t from, int to_mode,
    const uint8_t *frame, size_t len, char *why, size_t whylen);
/*
 * A correct replica's frame to client `to`: a REPLY names that client
 * (check_reply in rsim.c keys results by the client a reply names, so a
 * reply sent to another client would pass it). 0, or -1 with why set.
 */
int rchk_reply_to(struct rchk *c, uint32_t from, uint32_t to,
    const uint8_t *frame, size_t len, char *why, size_t whylen);
/* State transfers (a replica, a checkpoint) that asked both a replica
 * serving altered state and a silent or stalled one. */
uint64_t rchk_xfer_mixed(const struct rchk *c);

/*
 * Disk damage. Before crashed replica id (down: its disk as the crash
 * left it) starts again: one byte, chosen by rnd, of its write-ahead log
 * (log.0, log.1), a snapshot or the service's journal flipped, and what
 * the start must then do worked out:
 *  - a log: whatever the store's replay of the damaged image does on a
 *    copy. If it refuses, the start must refuse; if it replays the very
 *    records it replays undamaged (the byte was beyond the log's end, in
 *    the spare, in unchecked padding), the start must succeed; if it
 *    replays other records, the damage went unnoticed (a violation at
 *    once). Not damaged: the records of the log's last flush, whose
 *    damage the format cannot tell from a write a crash tore (store.h):
 *    the store drops them as a torn tail, as it must drop a torn write;
 *  - the snapshot of the checkpoint the log names: the start must refuse
 *    (its checksum), unless a later own checkpoint's snapshot is on disk,
 *    from which it may go on instead; another snapshot: it must succeed
 *    (unread, or refused by its checksum and passed over);
 *  - the journal: it must succeed without the damaged byte, cut off with
 *    what the snapshot does not name or with everything, to fetch the
 *    state (reopen checks the journal against the snapshot's head).
 * 1 when damaged, 0 when not (nothing to damage), -1 with why set.
 */
int rchk_corrupt(
    struct rchk *c, uint32_t id, uint64_t rnd, char *why, size_t whylen);
/*
 * replica_new refused id's start with err. 1: the damage explains it (a
 * detection, counted): the operator wipes the data directory and starts
 * the replica empty, which then catches up by state transfer. 0: it
 * does not (the caller reports err); -1 with why: it should have
 * started (the damage was harmless).
 */
int rchk_refused(
    struct rchk *c, uint32_t id, const char *err, char *why, size_t whylen);
/* id started: 0, or -1 with why set when it runs on damage it did not
 * notice. Clears the damage. */
int rchk_started(struct rchk *c, uint32_t id, char *why, size_t whylen);
/* A replica started empty after its disk was wiped: it forgot every vote
 * it sent (as a Byzantine one may), for the rest of the run. */
bool rchk_amnesiac(const struct rchk *c, uint32_t id);
uint32_t rchk_amnesiacs(const struct rchk *c);
/* Damage done, refused starts, harmless starts, fetched states. */
void rchk_corrupt_counts(const struct rchk *c, uint64_t out[4]);

/*
 * Retained memory. A correct replica r sent a frame; at its CHECKPOINTs
 * what it holds (replica_mem_stats, its store's buffers and log, frames
 * held) is sampled. 0, or -1 with why set when a count breaks its bound
 * (reply slots and waiting requests: one a client; checkpoint images:
 * SNAPS_MAX; the primary's queue: the core's limits).
 */
int rchk_mem(struct rchk *c, uint32_t id, struct replica *r, size_t held,
    const uint8_t *frame, size_t len, char *why, size_t whylen);
/*
 * At the end of a run: 0, or -1 with why set when the mean of a
 * replica's samples over the run's second half is above twice the first
 * half's (and a margin): it grows with the run, not with the window.
 */
int rchk_mem_end(struct rchk *c, char *why, size_t whylen);
/* The largest sample of each metric over every replica, named. */
void rchk_mem_print(const struct rchk *c);

#endif
