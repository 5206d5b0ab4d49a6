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
 * record for v or later; for a NEW-VIEW of v the entry into v.
 *
 * Disk damage at restart (rchk_corrupt): a byte of one of the node's
 * durable files flipped before a crashed replica starts again.
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

/* For replicas 0..n-1 whose data directories are data_dir/node-ID;
 * every: one covered frame in about every (0: none) is checked. */
struct rchk *rchk_new(
    uint32_t n, const char *data_dir, uint64_t seed, uint32_t every);
void rchk_free(struct rchk *c);

/*
 * A correct replica's frame leaves it (to another replica). 0, or -1
 * with why set: the record it waits for is not durable.
 */
int rchk_frame_out(struct rchk *c, uint32_t from, const uint8_t *frame,
    size_t len, char *why, size_t whylen);

/* Frames checked, and the durable images read for them. */
uint64_t rchk_frames_checked(const struct rchk *c);

#endif
