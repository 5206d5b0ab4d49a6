/*
 * replica_int.h - the replica driver's state, shared by its files:
 * replica.c (events, actions, group commit, checkpoints, status), replies.c
 * (the reply table), recover.c (recovery on start) and xfer.c (state
 * transfer). Nothing outside the driver includes this.
 */
#ifndef PBFT_REPLICA_INT_H
#define PBFT_REPLICA_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "net.h"
#include "pbft.h"
#include "pbft_build.h"
#include "replica.h"
#include "service.h"
#include "store.h"
#include "wbuf.h"
#if PBFT_FAULT_INJECTION
#include "fault.h"
#endif
#include "diskspace.h"

#define SNAPS_MAX 4
/* The largest head (client table, reply table and the service's image but
 * its tail) a
 * replica snapshots or accepts to fetch: a peer-named head length above it
 * is refused before a byte of it is fetched, and a head is held in memory
 * only as its bytes come. */
#define STATE_HEAD_BYTES_MAX (1ULL << 30)
#define XFER_RETRY_TICKS 100 /* 1 s without progress: next peer */
#define XFER_RESEND_TICKS 20 /* 200 ms without progress: ask again */
#define XFER_WINDOW 4 /* state chunks asked for at a time */
/* Answers to a peer's FETCH_STATE: a byte budget that refills by one chunk
 * a tick (100 MiB/s) up to a window of chunks, and none while the peer has
 * a window of chunks still to read from its write queue. An honest asker
 * never has more than a window of chunks asked for. */
#define XFER_SERVE_BYTES_TICK ((uint64_t)PBFT_CHUNK_BYTES_MAX)
#define XFER_SERVE_BURST ((uint64_t)XFER_WINDOW * PBFT_CHUNK_BYTES_MAX)

/*
 * The last reply to each client, to answer a retransmitted request. Part of
 * the checkpointed state (as in Castro and Liskov, TOCS 2002): without it
 * a request that executed before a checkpoint could never be answered by a
 * replica that got the state by transfer or restarted from a snapshot, while
 * the client table keeps it from executing again. All of it but the view
 * (clients match replies on seq, status and result) is the same at every
 * correct replica at a checkpoint: the outcome of the same request at the
 * same seq. In a snapshot image and a fetched state it is encoded as
 *
 *   u32 count | count x (u32 client | u64 ts | u64 seq | u8 status |
 *                        u32 len | result)
 *
 * for the clients with a reply (seq != 0), in client order: at most
 * 4 + nclients x (25 + PBFT_RESULT_BYTES_MAX) bytes (about 16 MiB at
 * PBFT_CLIENTS_MAX). An empty encoding (no bytes) is no replies.
 */
struct reply_slot {
	uint64_t ts, seq, view;
	uint8_t status;
	uint32_t len;
	uint8_t result[PBFT_RESULT_BYTES_MAX];
};

/*
 * A checkpoint's state image: img, then (services with incremental
 * checkpoints) the first tail_len bytes of the service's own file.
 */
struct snap {
	uint64_t seq; /* 0 = unused */
	/* u32 table length | client table | u32 replies length | reply
	 * table | service image */
	struct wbuf img;
	uint64_t tail_len;
};

/*
 * An ongoing state transfer (TOCS section 5.3.2). The image a peer serves
 * is its snapshot's img (client table, reply table, then the service's
 * head) followed
 * by the service's tail; chunk i holds its bytes from i times
 * PBFT_CHUNK_BYTES_MAX. The head is fetched into img and checked against
 * the certified digest before any of the tail is asked for; of the tail,
 * only what the service does not hold already, which it checks against the
 * head and stages as it comes (service.h): a peer's word sizes nothing
 * beyond one chunk that the certified state does not.
 */
struct xfer {
	bool active;
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t peer; /* asked now */
	uint32_t expect; /* the chunk wanted next */
	uint32_t asked_to; /* chunks expect .. asked_to - 1 are asked for */
	uint32_t count; /* chunks in all, from the first chunk */
	uint64_t total_len;
	uint64_t head_len; /* image bytes before the tail; 0 until known */
	bool head_ok; /* the head matched the certified digest */
	uint8_t head_sd[PBFT_DIGEST_LEN]; /* the service's digest in it */
	uint32_t idle_ticks;
	bool asked_up; /* the peer was connected when last asked */
	struct wbuf img; /* the image's head */
	uint64_t fetched; /* tail bytes fetched since the transfer began */
	/* Peers, a bit each (xfer_next_peer): not to ask again in this
	 * transfer; silent for a checkpoint fetched; for this one. */
	uint64_t avoid, silent_once, silent_now;
	uint64_t staged_from; /* peers whose bytes are staged */
	/* Peers whose state failed a check, remembered across restarts
	 * (store_liars_read): avoided from the start of every transfer. */
	uint64_t liars;
	ev_tstamp began;
	uint64_t failures; /* images that did not match the digest */
	uint64_t completed;
	uint64_t bytes_total; /* fetched by every transfer so far */
};

struct replica {
	struct ev_loop *loop;
	struct cluster_cfg *cfg;
	struct replica_opts opts;
	uint32_t id;
	struct replica_crypto rc;
	const struct pbft_crypto *crypto; /* the core's: &rc.ops or a test's */
	struct pbft *core;
	struct pbft_actions acts;
	struct net *net;
	struct store *store;
	struct diskspace disk; /* free space against min_free */
	uint32_t disk_ticks;
	struct service *svc;
	ev_timer tick;
	/* Group commit off the loop (fsync = batch): records of any number of
	 * steps share one background flush; their output waits in net. */
	ev_prepare wal_prep; /* before the loop waits: start a flush */
	ev_io wal_done; /* the store's eventfd: a flush ended */
	bool wal_dirty; /* records buffered since the last flush began */
	/* Output waits for them: flush now. Records whose output all went
	 * early wait for the next flush someone needs (or a tick). */
	bool wal_need;
	bool wal_inflight;
	/* A barrier record (the view's) is buffered / in the flush in flight:
	 * until it is durable, early output waits like the rest. */
	bool barrier_dirty, barrier_inflight;
	bool started; /* the start's record is durable */
	/* Checkpoints off the loop (fsync = batch): a checkpoint's snapshot is
	 * written on the store's background thread as soon as it is taken,
	 * and the log is compacted there once it is stable. */
	struct snap *bg_snap; /* the image the thread is writing */
	struct snap *snap_wanted; /* taken, waiting for the thread */
	uint64_t stable_wait; /* no flush until its snapshot is durable */
	/* An own checkpoint taken: no flush (so not our CHECKPOINT for it,
	 * whose record it carries) until its snapshot is durable, so that a
	 * checkpoint we announced survives a crash (restore_own). */
	uint64_t ckpt_wait;
	bool compact_wanted;
	struct reply_slot **replies; /* nclients, allocated on first use */
	struct snap snaps[SNAPS_MAX];
	struct xfer xfer;
	/* events produced while carrying out actions, fed afterwards */
	struct pbft_event deferred[SNAPS_MAX];
	size_t ndeferred;
	uint64_t frames_bad;
	uint64_t vc_deferred; /* the core's view_changes_deferred, logged */
	uint8_t *chunk_buf; /* a state chunk read from the service's file */
	/* Bytes each peer may still be answered (XFER_SERVE_*), and the
	 * requests not answered for want of it. */
	uint64_t serve_credit[PBFT_REPLICAS_MAX];
	uint64_t serve_refused;
	/* Chunks answered per peer: of checkpoint seq, every index below hi,
	 * the last at tick `at`; asked again within a retransmission period
	 * they are refused (serve_again_ok). */
	struct {
		uint64_t seq, hi, at;
	} served[PBFT_REPLICAS_MAX];
	uint64_t ticks;
	bool peer_up[PBFT_REPLICAS_MAX]; /* as net_peer_up said at the last tick
	                                  */
	struct pbft_action fetch_on_start; /* .seq != 0: state to fetch */
#if PBFT_FAULT_INJECTION
	struct fault *fault;
#endif
};

/* replica.c, for replies.c, recover.c and xfer.c */
void replica_step(struct replica *r, const struct pbft_event *ev);
void send_to(
    struct replica *r, uint32_t to, const struct pbft_msg *m, bool early);
/* Sends a reply to a client (unless a planted fault drops it). */
void send_client(
    struct replica *r, uint32_t client, const struct pbft_reply *rep);
struct snap *snap_find(struct replica *r, uint64_t seq);
struct snap *snap_slot(struct replica *r);
int snap_build(
    struct replica *r, struct snap *s, const uint8_t *table, size_t table_len);
void bg_settle(struct replica *r);

/* replica_ev.c: the libev watchers of a replica with a loop */
void replica_ev_start(struct replica *r);
void replica_ev_stop(struct replica *r);
/* The loop should call replica_before_wait before it next waits. */
void replica_ev_want_wait(struct replica *r);
/* Now, in seconds: the environment's clock (opts.now) or the loop's. */
double replica_now(const struct replica *r);

/* xfer.c: state transfer, fetching (TOCS section 5.3.2) and serving */
void do_fetch_state(struct replica *r, const struct pbft_action *a);
void on_state_chunk(
    struct replica *r, uint32_t from, const struct pbft_state_chunk *c);
void on_fetch_state(
    struct replica *r, uint32_t from, const struct pbft_fetch_state *f);
void xfer_tick(struct replica *r);
void xfer_next_peer(struct replica *r, bool bad);
bool serve_again_ok(
    struct replica *r, uint32_t from, uint64_t seq, uint32_t index);
/* A snapshot image: u32 table length | client table | u32 replies length |
 * reply table | service image. 0, or -1 when it cannot be one. */
int image_split(const uint8_t *img, size_t len, const uint8_t **ct,
    size_t *ctlen, const uint8_t **rp, size_t *rplen, const uint8_t **svc,
    size_t *svclen);

/* replies.c: the reply table (struct reply_slot), of n clients */
/* The slot of a client, allocated on first use; NULL for no such client. */
struct reply_slot *reply_slot(struct replica *r, uint32_t client);
/* PBFT_ACT_RESEND_REPLY: the cached reply again, if it is the one asked. */
void do_resend_reply(struct replica *r, const struct pbft_action *a);
/* Appends the encoding of v[0 .. n-1] to wb. */
void replies_encode(struct reply_slot *const *v, uint32_t n, struct wbuf *wb);
/* Checks the encoding p, len and, if apply, makes v hold it (slots not in
 * it emptied). Call it with apply only on an encoding it accepted: 0 or
 * -1. */
int replies_load(struct reply_slot **v, uint32_t n, const uint8_t *p,
    size_t len, bool apply);
/* out = H(sd | H(p, len)): the digest the core is handed for the state
 * (PBFT_EV_STATE_DIGEST), the service's sd and the encoded reply table p
 * together; the core adds its client table (pbft_state_digest). */
void replies_fold(const struct pbft_crypto *c,
    const uint8_t sd[PBFT_DIGEST_LEN], const uint8_t *p, size_t len,
    uint8_t out[PBFT_DIGEST_LEN]);

/* recover.c: recovery on start, and the record of a clean stop */
/* store_replay's callback: one record of the log into the core. */
int recover_record(void *arg, const uint8_t *rec, size_t len);
/* After the log replay: the state of the stable checkpoint the log names
 * (or of a newer own one), or a fetch of it set up; 0 or -1 (err). */
int restore_snapshot(struct replica *r, char *err, size_t errlen);
/* The start's record, durable before anything is sent: 0 or -1 (err). */
int record_start(struct replica *r, char *err, size_t errlen);
/* A stop on purpose: every record durable, then the clean stop's. */
void record_stop(struct replica *r);

#endif
