/*
 * rsim_byz.h - the Byzantine replicas of the simulator of the real replica
 * driver (tests/sim/rsim.c).
 *
 * A Byzantine replica runs the real driver; what it does wrong is done to
 * the frames it sends (and, for some modes, in answer to the frames sent
 * to it). Each altered frame is decoded with common/wire.h as a receiver
 * would, changed, re-encoded and, where the message is signed, signed
 * again with the replica's own fake key: it authenticates, and the correct
 * replicas must reject it on protocol grounds.
 *
 * The modes beyond rsim.h's first three (silent, mutate, lie-state):
 *   equivocate    as primary, PRE-PREPAREs with a batch one request
 *                 shorter (and its digest) to about half of the frames;
 *                 a replica may get both versions for one slot
 *   wrong-digest  PREPAREs, COMMITs and CHECKPOINTs with another digest
 *   replay        now and then a frame it sent or was sent earlier, to a
 *                 random peer
 *   vote-all      a PREPARE and a COMMIT for every PRE-PREPARE sent to
 *                 it, and for an altered digest of it too
 *   bad-newview   as new primary, NEW-VIEWs whose O set is altered (an
 *                 entry made null or not, or one invented)
 *   lying-vc      VIEW-CHANGEs whose claims lie: prepared entries hidden,
 *                 moved to the latest view with another (often null)
 *                 digest, or invented above them, each backed by a
 *                 matching pre-prepared claim
 * garbage is another name for mutate.
 */
#ifndef PBFT_RSIM_BYZ_H
#define PBFT_RSIM_BYZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_crypto.h"

#define RSIM_BYZ_OLD 64 /* frames a replaying replica keeps */

/* How a Byzantine replica reaches the simulator. */
struct rsim_byz_io {
	void *ctx;
	uint32_t n; /* replicas */
	uint32_t window; /* the log window: claims invented up to it */
	uint64_t (*rnd)(void *ctx);
	/* A frame leaves replica from for replica to, through the simulated
	 * network (its delays, losses, partitions). */
	void (*send)(void *ctx, uint32_t from, uint32_t to, const uint8_t *f,
	    size_t len);
};

struct rsim_byz_frame {
	uint8_t *p;
	size_t len;
};

struct rsim_byz_node {
	uint32_t id;
	int mode; /* enum rsim_byz */
	struct fake_crypto *fc; /* its own key */
	struct rsim_byz_frame old[RSIM_BYZ_OLD]; /* replay */
	uint64_t nold;
};

/* The mode's name for --byz-mode ("random" for RSIM_BYZ_RANDOM). */
const char *rsim_byz_name(int mode);
/* A --byz-mode argument: the mode, RSIM_BYZ_RANDOM, or -2 if unknown. */
int rsim_byz_parse(const char *s);

/* True for the modes rsim_byz_out handles. */
bool rsim_byz_handles(int mode);
/* A frame from replica from to Byzantine replica b was sent. */
void rsim_byz_seen(struct rsim_byz_node *b, const struct rsim_byz_io *io,
    const uint8_t *f, size_t len);
/* Byzantine replica b sends f to replica to: what goes out instead, by
 * io->send (it may be more than one frame, or none). */
void rsim_byz_out(struct rsim_byz_node *b, const struct rsim_byz_io *io,
    uint32_t to, const uint8_t *f, size_t len);
/* Frees what b kept. */
void rsim_byz_free(struct rsim_byz_node *b);

/*
 * A mode outside random's draw, against the client library.
 * deaf: drops what clients send it directly (it hears a request only when
 * backups forward it) and names, in its replies, the next view at or
 * above its own whose primary it is; as primary it costs a client that
 * sends to the primary alone a retransmission interval per request, and
 * a client that believes it goes to it first in every view.
 */
#define RSIM_BYZ_DEAF 64
/* Whether Byzantine replica b takes a frame a client sent it. */
bool rsim_byz_hears_client(const struct rsim_byz_node *b);
/* Byzantine replica b of n sends *f (len bytes, malloc'd) to a client:
 * what goes out instead, in *f; its length. */
size_t rsim_byz_to_client(
    const struct rsim_byz_node *b, uint32_t n, uint8_t **f, size_t len);

#endif
