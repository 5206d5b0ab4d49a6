/*
 * fault.h - misbehaviour on command, for the fault tests. Compiled only
 * into -Dfault_injection=true builds; a normal build has none of it.
 *
 * PBFT_FAULTS="ID:NAME[=ARG][,ID:NAME[=ARG]]..." in the environment turns
 * faults on for node ID (entries for other nodes are ignored, so one
 * setting serves a cluster under pbftd). Names:
 *
 *   silent              sends nothing to replicas or clients
 *   equivocate          as primary, half the backups get a different
 *                       (validly signed) batch for each sequence number
 *   wrong-key           signs consensus messages with a key nobody knows
 *   wrong-digest        prepares, commits and checkpoints name a wrong
 *                       digest (validly signed)
 *   replay              re-sends old messages, 20 a tick, at random
 *   garbage             sends 50 undecodable frames a tick to every peer
 *   delay=MS            holds every message to replicas for MS ms
 *   corrupt-chunks      serves corrupted state-transfer chunks
 *   lying-tail          serves a state whose head names a tail 256 MiB
 *                       longer than its own, and that tail: entries of
 *                       the right format and order, invented
 *   fetch-flood         asks the next replica (ID + 1) for the first
 *                       chunks of its own latest checkpoint's state, 100
 *                       requests a tick, and reads whatever comes back
 *   xfer-first=ID       asks replica ID first when it fetches a state
 *                       (unless it remembers ID as a liar)
 *   crash-before-wal    abort() before syncing the 200th WAL group
 *   crash-after-wal     abort() after syncing it, before its messages
 *   crash-view-change   abort() when about to send a VIEW-CHANGE
 *   crash-state-transfer abort() halfway through fetching a state
 *
 * Crashes happen once per data directory (a marker file remembers), so a
 * supervised replica comes back and stays up.
 */
#ifndef PBFT_FAULT_H
#define PBFT_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

struct net;
struct fault;

enum fault_point {
	FAULT_BEFORE_WAL,
	FAULT_AFTER_WAL,
	FAULT_VIEW_CHANGE,
	FAULT_STATE_TRANSFER,
};

/* NULL if spec names no fault for node id; err set and *bad on a
 * malformed spec. key: this node's private key (borrowed). */
struct fault *fault_new(const char *spec, uint32_t id, uint32_t n,
    const char *node_dir, void *key, bool *bad, char *err, size_t errlen);
void fault_free(struct fault *f);

/* Outgoing replica message (to = UINT32_MAX: broadcast). Returns true if
 * the fault took care of it (sent something else, or nothing). */
bool fault_send(
    struct fault *f, struct net *net, uint32_t to, const struct pbft_msg *m);
bool fault_drop_replies(const struct fault *f);
bool fault_corrupt_chunks(const struct fault *f);
/* lying-tail: fills chunk c->index of the lie told about the image whose
 * head is img (u32 table length | table | service head) and whose tail is
 * tail_len bytes: count, total_len, data_len and data (the fault's own
 * buffer). False if the fault is off or the lie has no such chunk. */
bool fault_lying_chunk(struct fault *f, struct pbft_state_chunk *c,
    const uint8_t *img, size_t img_len, uint64_t tail_len);
/* xfer-first: the replica to ask first, or UINT32_MAX. */
uint32_t fault_xfer_first(const struct fault *f);
void fault_tick(struct fault *f, struct net *net);
void fault_point(struct fault *f, enum fault_point p);

#endif
