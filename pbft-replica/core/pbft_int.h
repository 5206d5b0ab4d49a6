/*
 * pbft_int.h - the consensus core's internal state, shared by its files:
 * pbft.c (events, requests, normal case, execution), pbft_ckpt.c
 * (checkpoints, garbage collection, state transfer), pbft_view.c (view
 * changes) and pbft_out.c (quorums, signature checks, actions out, which
 * the other three share and which calls none of them). Nothing outside
 * pbft-replica/core/ includes this.
 */
#ifndef PBFT_INT_H
#define PBFT_INT_H

#include "pbft.h"
#include "wbuf.h"
#include "wire.h"

#define CKPT_RING 4 /* recent checkpoints remembered per replica */
#define OWN_CKPTS 4 /* own checkpoints awaiting stability */
#define SIG_SEEN 16 /* verified signatures remembered per signer */

/* Persist record kinds (first byte of every record). */
enum rec_kind {
	REC_VIEW = 1, /* u64 view, u8 changing */
	REC_PP = 2, /* a pre-prepare frame we accepted or sent */
	REC_VOTE = 3, /* a prepare or commit frame we sent */
	REC_CKPT = 4, /* a checkpoint frame we sent */
	REC_STABLE = 5, /* u64 seq, digest, u32 n, n x (u32, sig) */
	REC_VC = 6, /* a view-change frame we sent */
	REC_CERT = 7, /* before wire version 2: u64 view, u64 seq, digest,
	                 pp_sig, u32 n, n x (u32, sig); read as REC_PREPARED */
	REC_BOOT = 8, /* a start: u8 muted, u64 mute_view, u64 mute_seq
	                 (without mute_seq: written before early votes were
	                 bounded; mute in all of mute_view) */
	REC_CLEAN = 9, /* a stop on purpose: everything before is durable */
	REC_PREPARED = 10, /* u64 view, u64 seq, digest: prepared there */
	REC_PREPREPARED = 11, /* u64 view, u64 seq, digest: a Q entry */
	REC_BOUND = 12, /* u64 view, u64 seq: no early vote in view above seq
	                   (pbft_bound_early) */
};

#define PBFT_BOUND_RECORD_LEN 17 /* REC_BOUND */
#define PBFT_BOOT_RECORD_V1_LEN 10 /* REC_BOOT without mute_seq */

/* A pre-prepare this replica accepted for a seq: one Q entry. */
struct q_entry {
	uint64_t view;
	uint8_t digest[PBFT_DIGEST_LEN];
};

/* One sequence number of the window (low, low + L]. */
struct slot {
	uint64_t seq; /* 0 when unused */
	/* the pre-prepare accepted in the current view */
	bool have_pp;
	uint64_t pp_view;
	uint8_t digest[PBFT_DIGEST_LEN];
	/* the batch whose digest is body_digest (may outlive a view) */
	uint8_t *body;
	uint32_t body_len;
	bool body_known;
	uint8_t body_digest[PBFT_DIGEST_LEN];
	/* votes of the current view, per replica */
	uint64_t prep_seen, commit_seen; /* bit i: replica i voted */
	uint8_t (*prep_digest)[PBFT_DIGEST_LEN]; /* [n] */
	uint8_t (*commit_digest)[PBFT_DIGEST_LEN]; /* [n] */
	/* what we sent in the current view (kept for retransmission) */
	bool sent_prepare, sent_commit;
	bool prepared, committed, executed;
	/* P: the highest view this seq prepared in here, and its digest */
	bool has_cert;
	uint64_t cert_view;
	uint8_t cert_digest[PBFT_DIGEST_LEN];
	/* Q: pre-prepares accepted, the latest view per digest, none below
	 * cert_view (pbft_note_pp) */
	struct q_entry q[PBFT_Q_PER_SEQ];
	uint32_t nq;
	uint32_t fetch_ticks; /* body unknown: ticks since the last fetch */
	/* FETCH_BATCH answers of this period: bit i, replica i got the body
	 * (since tick served_at - 1) */
	uint64_t served;
	uint64_t served_at;
	/* COMMITs of views below ours (pbft.c, late_commit): per replica,
	 * bit i of late_seen, the view and digest of its latest one; and
	 * once 2f+1 match, the view and digest they committed in. */
	uint64_t late_seen;
	uint64_t *late_view; /* [n] */
	uint8_t (*late_digest)[PBFT_DIGEST_LEN]; /* [n] */
	bool late_committed;
	uint64_t late_cview;
	uint8_t late_cdigest[PBFT_DIGEST_LEN];
};

struct ckpt_entry {
	uint64_t seq; /* 0 = empty */
	uint8_t digest[PBFT_DIGEST_LEN];
	uint8_t sig[PBFT_SIG_LEN];
};

struct own_ckpt {
	uint64_t seq; /* 0 = empty */
	uint8_t ct_digest[PBFT_DIGEST_LEN]; /* client table at seq */
	bool have_digest;
	uint8_t digest[PBFT_DIGEST_LEN]; /* agreed state digest */
	uint8_t sig[PBFT_SIG_LEN];
};

/* A request kept by the primary (queue) or a backup (pending). */
struct held_req {
	struct pbft_request r;
	uint8_t *buf; /* op then auth */
	uint64_t at; /* pending: ticks when this timestamp came */
};

struct pbft {
	struct pbft_config cfg;
	const struct pbft_crypto *c;
	uint32_t n, f, id;
	/* view */
	uint64_t view;
	bool changing; /* between VIEW-CHANGE and NEW-VIEW */
	uint32_t vc_attempt; /* failed attempts in a row */
	uint32_t vc_ticks; /* ticks left until the next attempt */
	uint32_t rt_vc; /* ticks since our VIEW-CHANGE was resent */
	uint8_t *my_vc; /* our VIEW-CHANGE frame, for resending */
	size_t my_vc_len;
	uint8_t **vc_frames; /* [n] latest VIEW-CHANGE frame per replica */
	size_t *vc_lens;
	uint64_t *vc_views;
	uint8_t *nv_frame; /* NEW-VIEW of the current view */
	size_t nv_len;
	uint64_t *seen_view; /* [n] highest view in a normal message */
	/* Mute in the views below mute_view, and in mute_view at the seqs up
	 * to mute_seq (UINT64_MAX: all): early votes may have been lost in a
	 * crash (pbft_boot_record). */
	bool muted;
	uint64_t mute_view, mute_seq;
	/* The early-vote bound: no pre-prepare or prepare has left in view
	 * bound_view above bound_seq, nor will before a REC_BOUND that raises
	 * it is durable (a barrier). bound_view = UINT64_MAX: none yet. */
	uint64_t bound_view, bound_seq;
	bool rec_clean; /* the replayed records ended with REC_CLEAN */
	bool rec_old; /* some were frames of an older wire version */
	/* The last REC_BOOT replayed was written by a core that bounds its
	 * early votes: a view with no REC_BOUND saw none of them. */
	bool rec_bounded;
	/* window */
	uint64_t low; /* stable checkpoint = low mark */
	uint8_t low_digest[PBFT_DIGEST_LEN];
	struct pbft_sigpair *low_proof; /* [n] */
	uint32_t low_proof_n;
	struct slot *slots; /* [L] */
	uint64_t last_exec;
	uint64_t next_seq; /* primary: next to assign */
	bool waiting_state; /* FETCH_STATE asked, not installed yet */
	uint64_t waiting_seq;
	/* checkpoints */
	struct ckpt_entry *ckpts; /* [n][CKPT_RING] */
	struct own_ckpt own[OWN_CKPTS];
	/* clients */
	uint64_t *last_ts; /* [clients] highest executed */
	uint64_t *queued_ts; /* [clients] primary: highest queued */
	struct held_req *pending; /* [clients] backup: latest waiting */
	uint32_t npending;
	struct held_req *queue; /* primary's ring of queue_reqs_max */
	uint32_t qhead, qlen;
	size_t qbytes;
	uint64_t *client_qbytes; /* [clients] their bytes in the queue */
	uint32_t hold_ticks;
	/* timers */
	bool vt_running;
	uint32_t vt_ticks; /* view timer ticks left */
	/* Expired, waiting to hear a quorum (view_timer_tick): since when
	 * (1 + ticks), and ticks since we last asked. */
	bool vt_expired;
	uint64_t vt_expired_at;
	uint32_t vt_ask_ticks;
	uint32_t vt_grace; /* heard again after a cut: ticks left to wait */
	uint64_t vt_exec; /* last_exec when the timer was last reset */
	/* What the running timer waits for (view_timer_tick): the requests
	 * pending when it started (at <= vt_start) and the batches
	 * pre-prepared in this view then (up to vt_seq). */
	uint64_t vt_start, vt_seq;
	/* Highest seq above last_exec that f+1 replicas committed in this
	 * view (a lagging replica's proof that the primary works), and its
	 * value when the timer was last reset. */
	uint64_t seen_commit, vt_seen_commit;
	/* Per replica: the highest seq it committed in view far_view, seen
	 * beyond our window (the view timer's progress evidence, nothing
	 * more). */
	uint64_t far_seq[PBFT_REPLICAS_MAX], far_view[PBFT_REPLICAS_MAX];
	uint64_t ticks; /* ticks seen */
	/* Per replica: the stable checkpoint we last told it of, and when
	 * (pbft_tell_stable). */
	uint64_t told_low[PBFT_REPLICAS_MAX], told_at[PBFT_REPLICAS_MAX];
	/* Per replica: 1 + ticks when we last answered its STATUS (0: never).
	 */
	uint64_t status_at[PBFT_REPLICAS_MAX];
	/* Per replica: 1 + ticks when a message from it last arrived, and
	 * when we last answered its ASK (0: never). */
	uint64_t heard_at[PBFT_REPLICAS_MAX], asked_at[PBFT_REPLICAS_MAX];
	/* Per replica: 1 + ticks when we last answered a VIEW-CHANGE for
	 * our view with our NEW-VIEW (0: never); and the retransmission
	 * period its FETCH_BATCH answers are counted in, and their bytes. */
	uint64_t nv_at[PBFT_REPLICAS_MAX];
	/* when a channel to it last came up and we told it where we are
	 * (on_peer_up: one a half period) */
	uint64_t up_at[PBFT_REPLICAS_MAX];
	/* the last VIEW-CHANGE verified, per sender (one a half period) */
	uint64_t vc_at[PBFT_REPLICAS_MAX];
	uint64_t fetch_at[PBFT_REPLICAS_MAX], fetch_bytes[PBFT_REPLICAS_MAX];
	/* Per signer, two rings (other messages, checkpoints): H(signed
	 * bytes || signature) of the last SIG_SEEN signatures verified
	 * (pbft_verify_sig). */
	uint8_t (*sig_seen)[PBFT_DIGEST_LEN]; /* [n * 2 * SIG_SEEN] */
	uint32_t *sig_seen_next; /* [n * 2] */
	/* Per replica: 1 + the view its STATUS last said it is mute in (0:
	 * none), for mute_stalls; and ours as we last said it. */
	uint64_t muted_view1[PBFT_REPLICAS_MAX], mute_told;
	/* view + 1 of each replica's last STATUS, if it was not changing
	 * views (0: it was, or none came): pbft_get_status's following. */
	uint64_t steady_view1[PBFT_REPLICAS_MAX];
	uint32_t vt_run_ticks; /* ticks the view timer ran, no progress */
	uint32_t rt_ticks; /* retransmission countdown */
	uint64_t rt_low; /* low mark at the last retransmission */
	uint64_t rt_exec; /* last_exec then */
	/* scratch */
	struct wbuf sb; /* signed bytes */
	struct wbuf enc; /* encodings for records */
	struct wbuf batch_auth; /* a pre-prepare's rebuilt authenticators */
	struct pbft_actions *out;
	uint8_t **bufs; /* bytes actions point to, this step */
	size_t nbufs, cap_bufs;
	struct pbft_request *exec_reqs;
	bool *exec_skip;
	uint8_t *arena_mem;
	size_t arena_len;
	struct pbft_status st; /* counters */
};

/* pbft_out.c */
int pbft_emit(struct pbft *p, const struct pbft_action *a);
struct pbft_msg *pbft_new_msg(struct pbft *p);
uint8_t *pbft_keep(struct pbft *p, const void *data, size_t len);
void pbft_send(struct pbft *p, uint32_t to, const struct pbft_msg *m);
void pbft_broadcast(struct pbft *p, const struct pbft_msg *m);
void pbft_broadcast_early(struct pbft *p, const struct pbft_msg *m);
bool pbft_mute(const struct pbft *p, uint64_t seq);
void pbft_bound_early(struct pbft *p, uint64_t seq);
void pbft_persist_msg(
    struct pbft *p, enum rec_kind kind, const struct pbft_msg *m);
void pbft_persist_raw(struct pbft *p, const uint8_t *rec, size_t len);
void pbft_persist_barrier(struct pbft *p, const uint8_t *rec, size_t len);
void pbft_reject(struct pbft *p, enum pbft_reject why);
void pbft_disconnect(struct pbft *p, uint32_t replica);
bool pbft_answer_ok(struct pbft *p, uint64_t *at);
bool pbft_verify_sig(struct pbft *p, uint32_t replica, const uint8_t *sig);
/* The same for a checkpoint's signature (kept apart in the cache). */
bool pbft_verify_ckpt_sig(struct pbft *p, uint32_t replica, const uint8_t *sig);
uint32_t pbft_primary(const struct pbft *p, uint64_t view);
uint32_t pbft_quorum(const struct pbft *p); /* 2f+1 */
uint32_t pbft_prep_quorum(const struct pbft *p); /* 2f */
bool pbft_digest_is_zero(const uint8_t d[PBFT_DIGEST_LEN]);

/* pbft.c */
struct slot *pbft_slot(struct pbft *p, uint64_t seq);
void pbft_slot_reset(struct pbft *p, struct slot *s, uint64_t seq);
void pbft_slot_new_view(struct pbft *p, struct slot *s);
void pbft_set_body(struct pbft *p, struct slot *s, const uint8_t *batch,
    uint32_t len, const uint8_t digest[PBFT_DIGEST_LEN]);
void pbft_accept_pp(struct pbft *p, struct slot *s, uint64_t view,
    const uint8_t digest[PBFT_DIGEST_LEN]);
void pbft_note_pp(
    struct slot *s, uint64_t view, const uint8_t digest[PBFT_DIGEST_LEN]);
void pbft_put_claim(struct wbuf *wb, enum rec_kind kind, uint64_t view,
    uint64_t seq, const uint8_t digest[PBFT_DIGEST_LEN]);
void pbft_try_progress(struct pbft *p, struct slot *s);
void pbft_try_execute(struct pbft *p);
void pbft_try_propose(struct pbft *p);
void pbft_enqueue(struct pbft *p, const struct pbft_request *r);
void pbft_view_timer_stop(struct pbft *p);
void pbft_send_fetch(struct pbft *p, struct slot *s);

/* pbft_ckpt.c */
void pbft_take_checkpoint(struct pbft *p, uint64_t seq);
void pbft_on_state_digest(struct pbft *p, const struct pbft_event *ev);
void pbft_on_checkpoint(
    struct pbft *p, uint32_t from, const struct pbft_checkpoint *m);
void pbft_make_stable(struct pbft *p, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], const struct pbft_sigpair *proof,
    uint32_t nproof);
void pbft_on_state_installed(struct pbft *p, const struct pbft_event *ev);
void pbft_resend_checkpoint(struct pbft *p);
void pbft_tell_stable(struct pbft *p, uint32_t to);
size_t pbft_client_table(struct pbft *p, struct wbuf *wb);
bool pbft_check_ckpt_proof(struct pbft *p, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], const struct pbft_sigpair *v,
    uint32_t n);
int pbft_recover_stable(struct pbft *p, struct rbuf *rb);

/* pbft_view.c */
void pbft_start_view_change(struct pbft *p, uint64_t view);
/* The NEW-VIEW that made our view, to one replica (none for view 0). */
void pbft_send_new_view(struct pbft *p, uint32_t to);
void pbft_on_view_change(struct pbft *p, uint32_t from, const uint8_t *frame,
    size_t len, const struct pbft_view_change *vc);
void pbft_on_new_view(struct pbft *p, uint32_t from, const uint8_t *frame,
    size_t len, const struct pbft_new_view *nv);
void pbft_view_tick(struct pbft *p);
void pbft_note_view(struct pbft *p, uint32_t from, uint64_t view);
void pbft_recover_vc(struct pbft *p, const uint8_t *frame, size_t len);

#endif
