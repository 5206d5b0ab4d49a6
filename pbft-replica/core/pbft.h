/*
 * pbft.h - the PBFT consensus protocol as a pure, deterministic state machine.
 *
 * Castro and Liskov, "Practical Byzantine Fault Tolerance" (OSDI '99) and
 * "Practical Byzantine Fault Tolerance and Proactive Recovery" (TOCS 2002).
 *
 * The core does no I/O: no sockets, files, clocks or randomness. Everything
 * happens inside pbft_step(): one event in, a list of actions out. The replica
 * process (pbft-replica/) and the simulator (tests/sim/) are drivers: they turn
 * the world into events and carry out the actions. Given the same sequence of
 * events, the core emits the same actions, byte for byte.
 *
 * Driver contract (the order of actions matters):
 *  - Actions are carried out in the order they appear in one step's output.
 *  - Every PBFT_ACT_PERSIST of a step must be durable before any SEND or
 *    BROADCAST of the same step leaves the replica (a replica must never
 *    send something it would forget after a crash), except output marked
 *    early. Drivers usually write all PERSIST records, sync once, then send
 *    (group commit per step).
 *  - An early SEND or BROADCAST (a pre-prepare or a prepare of the normal
 *    case) may leave before the records of its step and earlier steps are
 *    durable, and may overtake output that waits for them, unless a record
 *    marked barrier is not durable yet (of its step or an earlier one):
 *    then it waits like the rest. A replica that crashes may so have sent
 *    votes it forgets. Two barriers bound what it can forget: a view's
 *    entry (no early vote of a view leaves before it), and the early-vote
 *    bound, a record naming view v and seq S that the core emits before
 *    its first early vote in v above the previous bound, with S half a
 *    window ahead (so about one per half window of batches). No early vote
 *    for a seq above S in v leaves before that record is durable, so after
 *    a crash the core is mute (sends no pre-prepare or prepare) only in
 *    the views below the last one it was in, and in that one at the seqs
 *    up to the bound its log holds (pbft_boot_record).
 *  - The driver hands pbft_boot_record's record to the log and makes it
 *    durable before the first pbft_step, and writes pbft_clean_record's
 *    after everything else is durable when it stops on purpose.
 *  - PBFT_ACT_EXECUTE actions come in strictly increasing seq order, each
 *    exactly once. After carrying out a PBFT_ACT_TAKE_CHECKPOINT for seq the
 *    driver computes the service's digest of its state after executing seq and
 *    delivers it as PBFT_EV_STATE_DIGEST (usually right away).
 *  - Memory that actions point into belongs to the core and stays valid only
 *    until the next call into the core.
 *
 * Trust: PBFT_EV_MSG carries a message decoded by the wire module from a
 * channel that authenticated the sending replica (`from`), which is all a
 * pre-prepare, prepare or commit needs. What a third party must believe is
 * signed, and the core verifies those signatures through the crypto
 * interface (checkpoints and their proofs, VIEW-CHANGE, NEW-VIEW), rejecting
 * (and counting) anything invalid. Cheap checks come first (sender, window,
 * shape, whether the message is news), a signature verified once is
 * remembered rather than verified again (status: sig_verifies,
 * sig_cached), and a replica or client that sent one that does not verify
 * is named in a PBFT_ACT_DISCONNECT or PBFT_ACT_DROP_CLIENT.
 */
#ifndef PBFT_CORE_H
#define PBFT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

/*
 * Crypto used by the core. Production plugs in Ed25519 and SHA-256 (common/
 * sig.h); the simulator may plug in a cheap deterministic stand-in. All
 * functions must be deterministic and must not fail.
 */
struct pbft_crypto {
	void *ctx;
	/* out = H(data). */
	void (*digest)(void *ctx, const uint8_t *data, size_t len,
	    uint8_t out[PBFT_DIGEST_LEN]);
	/* Signs data with this replica's own key. */
	void (*sign)(void *ctx, const uint8_t *data, size_t len,
	    uint8_t sig[PBFT_SIG_LEN]);
	/* True when sig is replica's signature over data. */
	bool (*verify)(void *ctx, uint32_t replica, const uint8_t *data,
	    size_t len, const uint8_t sig[PBFT_SIG_LEN]);
	/*
	 * True when req->auth authenticates req as sent by req->client.
	 * strict: by the client's signature, which every replica can check
	 * alike. Otherwise this replica's MAC entry may suffice, the
	 * signature checked when it does not. The core asks strict
	 * everywhere (requests received, forwarded and in pre-prepares), so
	 * that a request's validity is objective: a MAC that verifies where
	 * the signature would not would let a faulty client, with a faulty
	 * primary, choose which correct backups accept a batch.
	 */
	bool (*verify_request)(
	    void *ctx, const struct pbft_request *req, bool strict);
};

/* Test-only switches that break the protocol on purpose (never in daemons). */
#define PBFT_TEST_BROKEN_QUORUM 0x1 /* quorum of 2f instead of 2f+1 */
#define PBFT_TEST_BROKEN_NEWVIEW 0x2 /* accept NEW-VIEW without checking O */
#define PBFT_TEST_BROKEN_MUTE                                                  \
	0x4 /* votes after a crash as if it were clean                         \
	     */
#define PBFT_TEST_BROKEN_CLAIMS                                                \
	0x8 /* NEW-VIEW trusts one pre-prepared claim                          \
	     */
/* commits beyond the window do not hold off the view timer */
#define PBFT_TEST_BROKEN_FAR 0x10
/* a replica that shows it is behind is not told the stable checkpoint */
#define PBFT_TEST_BROKEN_TELL 0x20
/* STATUS messages go unanswered */
#define PBFT_TEST_BROKEN_STATUS 0x40
/* the view timer starts a view change even when cut off from the rest */
#define PBFT_TEST_BROKEN_ALONE 0x80
/* back from a crash, mute only up to the last early vote its log holds,
 * not up to its durable bound: votes below the bound */
#define PBFT_TEST_BROKEN_BOUND 0x100
/* a replica alone in a higher view takes no COMMITs of lower views, and
 * is not answered with them: it waits for a stable checkpoint */
#define PBFT_TEST_BROKEN_STRANDED 0x200

struct pbft_config {
	uint32_t n; /* replicas, n >= 3f+1 */
	uint32_t f; /* faults tolerated */
	uint32_t id; /* this replica, 0..n-1 */
	uint32_t clients; /* client ids are 0..clients-1 */
	uint64_t checkpoint_interval; /* K: checkpoint every K seqs */
	uint64_t window; /* L: high mark = low mark + L; L % K == 0 */
	uint32_t batch_reqs_max; /* requests per batch */
	uint32_t batch_bytes_max; /* encoded batch bytes */
	uint32_t inflight_max; /* batches proposed, not yet executed */
	uint32_t queue_reqs_max; /* primary's pending request queue */
	/* Bytes of requests the primary queues, all clients together; one
	 * client holds at most the larger of a quarter of it and
	 * PBFT_QUEUE_CLIENT_FLOOR (pbft_enqueue). */
	uint64_t queue_bytes_max;
	/* Batch bytes answered to one replica's FETCH_BATCH per
	 * retransmission period (at least one answer a period). */
	uint64_t fetch_bytes_max;
	uint32_t batch_delay_ticks; /* partial-batch hold: pbft_try_propose */
	uint32_t view_timeout_ticks; /* initial view-change timeout */
	uint32_t retransmit_ticks; /* resend own unfinished votes after this */
	uint32_t test_flags; /* PBFT_TEST_*; 0 in production */
	const struct pbft_crypto *crypto;
};

/* A client may always queue this much (pbft_config.queue_bytes_max). */
#define PBFT_QUEUE_CLIENT_FLOOR (1024 * 1024)

/* Fills cfg with defaults for n replicas, this id and clients clients. */
void pbft_config_default(
    struct pbft_config *cfg, uint32_t n, uint32_t id, uint32_t clients);

enum pbft_event_type {
	PBFT_EV_MSG = 1, /* a protocol message from replica `from` */
	PBFT_EV_REQUEST, /* a client request received directly */
	PBFT_EV_TICK, /* one tick of time passed */
	PBFT_EV_STATE_DIGEST, /* answer to PBFT_ACT_TAKE_CHECKPOINT */
	PBFT_EV_STATE_INSTALLED, /* answer to PBFT_ACT_FETCH_STATE */
	PBFT_EV_PEER_UP, /* the channel to replica `from` came up */
};

struct pbft_event {
	enum pbft_event_type type;
	uint32_t from; /* PBFT_EV_MSG, _PEER_UP */
	const struct pbft_msg *msg; /* PBFT_EV_MSG, _REQUEST */
	uint64_t seq; /* _STATE_DIGEST, _INSTALLED */
	uint8_t digest[PBFT_DIGEST_LEN]; /* service digest at seq */
	const uint8_t *client_table; /* _STATE_INSTALLED */
	size_t client_table_len;
};

enum pbft_action_type {
	PBFT_ACT_SEND = 1, /* send msg to replica `to` */
	PBFT_ACT_BROADCAST, /* send msg to every other replica */
	PBFT_ACT_PERSIST, /* make record durable (see contract) */
	PBFT_ACT_EXECUTE, /* execute a committed batch */
	PBFT_ACT_RESEND_REPLY, /* re-send the cached reply to a client */
	PBFT_ACT_TAKE_CHECKPOINT, /* compute the service digest after seq */
	PBFT_ACT_STABLE, /* checkpoint seq is stable: drop older state */
	PBFT_ACT_VIEW, /* entered view `view` (informational) */
	PBFT_ACT_FETCH_STATE, /* behind: fetch the state certified at seq */
	/* Replica `to` sent an invalid signature or certificate: close its
	 * channel (the usual dialling opens a new one). */
	PBFT_ACT_DISCONNECT,
	/* Client `client` sent a request that does not authenticate: close
	 * its channel. */
	PBFT_ACT_DROP_CLIENT,
};

struct pbft_action {
	enum pbft_action_type type;
	uint32_t to; /* SEND, DISCONNECT */
	const struct pbft_msg *msg; /* SEND, BROADCAST */
	bool early; /* SEND, BROADCAST: need not wait for the log */
	const uint8_t *record; /* PERSIST */
	size_t record_len;
	bool barrier; /* PERSIST: early output waits until it is durable */
	uint64_t seq; /* EXECUTE, TAKE_CHECKPOINT, STABLE, FETCH_STATE */
	uint64_t view; /* EXECUTE, VIEW */
	/* EXECUTE: the batch; skip[i] marks duplicates not to be executed. */
	const struct pbft_request *reqs;
	const bool *skip;
	uint32_t nreqs;
	/* RESEND_REPLY, DROP_CLIENT */
	uint32_t client;
	uint64_t timestamp;
	/* FETCH_STATE: the certified digest; TAKE_CHECKPOINT: client table. */
	uint8_t digest[PBFT_DIGEST_LEN];
	const uint8_t *client_table;
	size_t client_table_len;
};

struct pbft_actions {
	struct pbft_action *v;
	size_t n;
	size_t cap;
};

/* Rejection reasons, counted per reason (pbft_status). */
enum pbft_reject {
	PBFT_REJ_BAD_SIG = 0,
	PBFT_REJ_WRONG_VIEW,
	PBFT_REJ_OUT_OF_WINDOW,
	PBFT_REJ_BAD_DIGEST,
	PBFT_REJ_CONFLICT, /* second different pre-prepare for (v, n) */
	PBFT_REJ_NOT_PRIMARY,
	PBFT_REJ_BAD_SENDER, /* replica field doesn't match the channel */
	PBFT_REJ_BAD_CERT, /* invalid certificate or proof */
	PBFT_REJ_BAD_NEW_VIEW, /* O set doesn't match its V set */
	PBFT_REJ_BAD_REQUEST, /* client authentication or field failed */
	PBFT_REJ_OLD_REQUEST, /* timestamp not newer than the last */
	PBFT_REJ_QUEUE_FULL,
	/* request refused: queued bytes at queue_bytes_max, or its client's
	 * share of them */
	PBFT_REJ_QUEUE_BYTES,
	/* a request not answered: that replica's answers for this period
	 * are spent (FETCH_BATCH, a VIEW-CHANGE for our view) */
	PBFT_REJ_RATE_LIMITED,
	PBFT_REJ_COUNT,
};

const char *pbft_reject_name(enum pbft_reject r);

struct pbft_status {
	uint64_t view;
	uint32_t primary;
	bool view_changing; /* waiting for NEW-VIEW */
	/* Changing views alone: f+1 others said (STATUS) they work in
	 * following_view, below ours; we execute on its COMMITs without
	 * voting (a stranded replica) until a view change takes us along. */
	bool following;
	uint64_t following_view;
	uint64_t last_executed;
	uint64_t stable_checkpoint;
	uint64_t low_mark, high_mark;
	uint64_t next_seq; /* primary: next seq to assign */
	uint32_t queued_reqs; /* primary: waiting to be ordered */
	uint32_t pending_reqs; /* backup: waiting to be executed */
	bool view_timer_running;
	/* back from a crash: sends no pre-prepare or prepare in this view
	 * for the next seq to execute, nor any up to mute_seq (UINT64_MAX:
	 * none in this view) */
	bool muted;
	uint64_t mute_seq;
	uint64_t view_changes; /* view changes completed */
	/* view timer expiries that started no view change: cut off */
	uint64_t view_changes_deferred;
	uint64_t executed_batches;
	/* of them, executed on 2f+1 COMMITs of a view below ours: while
	 * changing to a view the others did not follow */
	uint64_t executed_late;
	uint64_t executed_reqs;
	uint64_t rejected[PBFT_REJ_COUNT];
	/* Replica signatures verified, and those found verified already
	 * (the same bytes and signature from the same signer, cached). */
	uint64_t sig_verifies, sig_cached;
	uint64_t queued_bytes; /* primary: request bytes waiting */
	uint64_t disconnects; /* DISCONNECT and DROP_CLIENT emitted */
	uint8_t stable_digest[PBFT_DIGEST_LEN];
};

struct pbft;

/*
 * Creates a core. cfg is copied (crypto is borrowed and must outlive the
 * core). Returns NULL if cfg is invalid or memory is short; the reason is
 * written to err (size errlen) when err is not NULL. All memory whose size
 * depends on n, clients and the window is allocated here; during operation the
 * core allocates only batch bodies, bounded by the window.
 */
struct pbft *pbft_new(const struct pbft_config *cfg, char *err, size_t errlen);
void pbft_free(struct pbft *p); /* safe on NULL */

/*
 * Replays one record previously emitted by PBFT_ACT_PERSIST, in emission
 * order, before the first pbft_step after a restart. Returns 0, or -1 if the
 * record is malformed (the driver must then refuse to start). The core then
 * never sends anything that contradicts what it sent before the crash.
 * Back in a view change whose VIEW-CHANGE the log lost (it kept the view's
 * entry, a record of the same step), it sends one at the first tick.
 */
int pbft_recover(struct pbft *p, const uint8_t *record, size_t len);

/*
 * After the records: the driver restored the service snapshot of the stable
 * checkpoint seq and hands over the client table saved with it. Returns 0,
 * or -1 if seq is not the recovered stable checkpoint or the table is
 * malformed. The core then retransmits its votes at the next tick so that
 * peers help it re-commit what it had executed.
 */
int pbft_recover_state(
    struct pbft *p, uint64_t seq, const uint8_t *ct, size_t ct_len);

/*
 * Instead of pbft_recover_state: the driver restored the snapshot of one of
 * its own checkpoints above the stable one (a CHECKPOINT it signed, which
 * the log holds). A replica that announced a checkpoint keeps its state
 * across a crash: with f+1 correct replicas among the 2f+1 that certify a
 * checkpoint, one that lost it to a crash must not leave the certified
 * state with Byzantine replicas alone. pbft_recover_own_checkpoints writes
 * those checkpoints' seqs, newest first (at most max), and returns their
 * number. pbft_recover_own_state takes the service digest at seq (as in
 * PBFT_EV_STATE_DIGEST) and the client table saved with it: 0, and the
 * core goes on from there as if it had executed up to seq; -1 (nothing
 * changed) if seq is not such a checkpoint or the state is not the one
 * it signed.
 */
size_t pbft_recover_own_checkpoints(
    const struct pbft *p, uint64_t *seqs, size_t max);
int pbft_recover_own_state(struct pbft *p, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], const uint8_t *ct, size_t ct_len);

/*
 * After the records (and pbft_recover_state or pbft_recover_awaiting_state):
 * writes the record that starts this run into rec and returns its length.
 * The driver makes it durable before the first pbft_step. Unless the
 * records ended with pbft_clean_record's, the replica may have sent early
 * votes it does not remember: in every view below the recovered one, and
 * in that one at the seqs up to its early-vote bound there (see the driver
 * contract above; every seq when the log predates the bound). It stays
 * mute (sends no pre-prepare or prepare) for those, and the record keeps
 * that across later restarts. Why that is safe: a correct replica must
 * never send two different pre-prepares or prepares for one view and seq;
 * every one it sent and forgot is at a seq it is now mute at, and it
 * remembers the others (their records are durable, or they never left).
 * It still commits and executes what others prepare. A backup prepares
 * again above the bound at once; a primary cannot tell which seqs up to
 * the bound it pre-prepared, so it proposes again only once the cluster
 * has executed up to there (a seq it never pre-prepared waits for the next
 * view change). From the next view on, it votes as before.
 */
#define PBFT_BOOT_RECORD_LEN 18
size_t pbft_boot_record(struct pbft *p, uint8_t rec[PBFT_BOOT_RECORD_LEN]);

/*
 * The record a driver appends last when it stops on purpose, once every
 * record before it is durable and nothing more is sent: the next start
 * need not be mute.
 */
#define PBFT_CLEAN_RECORD_LEN 1
size_t pbft_clean_record(uint8_t rec[PBFT_CLEAN_RECORD_LEN]);

/*
 * Log compaction: hands emit, in order, a minimal set of records that
 * pbft_recover turns back into the core's durable state (stable checkpoint
 * and proof, view, the window's pre-prepares, votes sent and certificates,
 * own checkpoints and view change). A driver may replace its whole log with
 * them after a PBFT_ACT_STABLE, which keeps the log bounded by the window.
 * Returns 0, or the first non-zero value emit returned.
 */
int pbft_compact(struct pbft *p,
    int (*emit)(void *arg, const uint8_t *rec, size_t len), void *arg);

/*
 * Feeds one event. Actions are appended to out (reset it first: out->n = 0);
 * out->v is grown with realloc when needed and owned by the caller, who frees
 * it once (free(out->v)). Returns 0, or -1 only on memory exhaustion.
 */
int pbft_step(
    struct pbft *p, const struct pbft_event *ev, struct pbft_actions *out);

/*
 * Instead of pbft_recover_state, when the snapshot of the recovered stable
 * checkpoint is missing (the replica crashed while fetching that state):
 * the core waits for the state of that checkpoint, executing nothing, as
 * if it had just asked for it. Returns the checkpoint's sequence number
 * and writes its certified digest, for the driver to fetch and then report
 * with PBFT_EV_STATE_INSTALLED; 0 if there is no stable checkpoint.
 */
uint64_t pbft_recover_awaiting_state(
    struct pbft *p, uint8_t digest[PBFT_DIGEST_LEN]);

void pbft_get_status(const struct pbft *p, struct pbft_status *st);

/*
 * The checkpoint digest that replicas agree on: H(service_digest ||
 * H(client_table)). Pure; drivers use it to check a fetched state.
 */
void pbft_state_digest(const struct pbft_crypto *c,
    const uint8_t service_digest[PBFT_DIGEST_LEN], const uint8_t *client_table,
    size_t client_table_len, uint8_t out[PBFT_DIGEST_LEN]);

#endif
