/*
 * pbft_out.c - what the consensus core's other files share to act: the
 * quorum sizes and the primary of a view, rejections and their names,
 * signature checks through the cached verifier, and every action out
 * (send, broadcast, an early vote held behind its record, persist, the
 * early-vote bound, disconnect). pbft.c, pbft_ckpt.c and pbft_view.c call
 * these and none of them is called back from here. No I/O, clocks or
 * randomness: actions are handed to the driver through the action queue.
 */
#include <stdlib.h>
#include <string.h>

#include "pbft_int.h"
/* ---- small helpers ----------------------------------------------------- */

uint32_t
pbft_primary(const struct pbft *p, uint64_t view)
{
	return (uint32_t)(view % p->n);
}

uint32_t
pbft_quorum(const struct pbft *p)
{
	if (p->cfg.test_flags & PBFT_TEST_BROKEN_QUORUM)
		return 2 * p->f; /* deliberately one short */
	return 2 * p->f + 1;
}

uint32_t
pbft_prep_quorum(const struct pbft *p)
{
	if (p->cfg.test_flags & PBFT_TEST_BROKEN_QUORUM)
		return p->f ? 2 * p->f - 1 : 0;
	return 2 * p->f;
}

bool
pbft_digest_is_zero(const uint8_t d[PBFT_DIGEST_LEN])
{
	for (int i = 0; i < PBFT_DIGEST_LEN; i++)
		if (d[i] != 0)
			return false;
	return true;
}

void
pbft_reject(struct pbft *p, enum pbft_reject why)
{
	p->st.rejected[why]++;
}

const char *
pbft_reject_name(enum pbft_reject r)
{
	static const char *names[PBFT_REJ_COUNT] = {"bad_signature",
	    "wrong_view", "out_of_window", "bad_digest", "conflict",
	    "not_primary", "bad_sender", "bad_certificate", "bad_new_view",
	    "bad_request", "old_request", "queue_full", "queue_bytes",
	    "rate_limited"};

	return (unsigned)r < PBFT_REJ_COUNT ? names[r] : "unknown";
}

/*
 * Verifies sig over the bytes currently in p->sb. What was verified once is
 * not verified again: the signer's last SIG_SEEN valid signatures are
 * remembered by H(bytes || sig), so a message repeated, or a proof carried
 * again inside a later VIEW-CHANGE or NEW-VIEW, costs a digest, not a
 * signature check. Only valid signatures are remembered, checkpoints
 * (ckpt) apart from the rest, so that a replica's many VIEW-CHANGEs do not
 * push out the checkpoint signatures that every one of them carries.
 */
static bool
verify_sig(struct pbft *p, uint32_t replica, const uint8_t *sig, bool ckpt)
{
	size_t ring = (size_t)replica * 2 + (ckpt ? 1 : 0);
	uint8_t(*seen)[PBFT_DIGEST_LEN] = &p->sig_seen[ring * SIG_SEEN];
	uint8_t key[PBFT_DIGEST_LEN];
	size_t len = p->sb.len;

	wbuf_put_bytes(&p->sb, sig, PBFT_SIG_LEN);
	if (wbuf_failed(&p->sb)) { /* no room for the key: check only */
		p->sb.failed = false;
		p->st.sig_verifies++;
		return p->c->verify(p->c->ctx, replica, p->sb.p, len, sig);
	}
	p->c->digest(p->c->ctx, p->sb.p, p->sb.len, key);
	p->sb.len = len;
	for (int i = 0; i < SIG_SEEN; i++)
		if (memcmp(seen[i], key, PBFT_DIGEST_LEN) == 0) {
			p->st.sig_cached++;
			return true;
		}
	p->st.sig_verifies++;
	if (!p->c->verify(p->c->ctx, replica, p->sb.p, p->sb.len, sig))
		return false;
	memcpy(seen[p->sig_seen_next[ring]], key, PBFT_DIGEST_LEN);
	p->sig_seen_next[ring] = (p->sig_seen_next[ring] + 1) % SIG_SEEN;
	return true;
}

bool
pbft_verify_sig(struct pbft *p, uint32_t replica, const uint8_t *sig)
{
	if (replica >= p->n || wbuf_failed(&p->sb))
		return false;
	return verify_sig(p, replica, sig, false);
}

bool
pbft_verify_ckpt_sig(struct pbft *p, uint32_t replica, const uint8_t *sig)
{
	if (replica >= p->n || wbuf_failed(&p->sb))
		return false;
	return verify_sig(p, replica, sig, true);
}

/*
 * Replica sent what no correct replica sends (a signature or certificate
 * that does not verify): the driver closes its channel. Dialling opens a
 * new one, so a correct replica that sent it by accident loses only time.
 */
void
pbft_disconnect(struct pbft *p, uint32_t replica)
{
	struct pbft_action a = {.type = PBFT_ACT_DISCONNECT, .to = replica};

	if (replica >= p->n || replica == p->id)
		return;
	p->st.disconnects++;
	pbft_emit(p, &a);
}

/*
 * Answers to one replica's questions: at most one every half
 * retransmission period (a correct replica asks once a period). at holds
 * 1 + ticks of the last answer, 0 for never; true (and at updated) when
 * one may go now.
 */
bool
pbft_answer_ok(struct pbft *p, uint64_t *at)
{
	if (*at != 0 && 2 * (p->ticks + 1 - *at) < p->cfg.retransmit_ticks)
		return false;
	*at = p->ticks + 1;
	return true;
}

/* ---- action output ----------------------------------------------------- */

int
pbft_emit(struct pbft *p, const struct pbft_action *a)
{
	struct pbft_actions *o = p->out;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct pbft_action *v = realloc(o->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		o->v = v;
		o->cap = cap;
	}
	o->v[o->n++] = *a;
	return 0;
}

/* Copies data into memory that lives until the next step. */
uint8_t *
pbft_keep(struct pbft *p, const void *data, size_t len)
{
	uint8_t *b;

	if (p->nbufs == p->cap_bufs) {
		size_t cap = p->cap_bufs ? p->cap_bufs * 2 : 64;
		uint8_t **v = realloc(p->bufs, cap * sizeof(*v));

		if (v == NULL)
			abort();
		p->bufs = v;
		p->cap_bufs = cap;
	}
	if ((b = malloc(len ? len : 1)) == NULL)
		abort();
	if (data != NULL && len > 0)
		memcpy(b, data, len);
	p->bufs[p->nbufs++] = b;
	return b;
}

struct pbft_msg *
pbft_new_msg(struct pbft *p)
{
	struct pbft_msg *m =
	    (struct pbft_msg *)(void *)pbft_keep(p, NULL, sizeof(*m));

	memset(m, 0, sizeof(*m));
	return m;
}

void
pbft_send(struct pbft *p, uint32_t to, const struct pbft_msg *m)
{
	struct pbft_action a = {.type = PBFT_ACT_SEND, .to = to, .msg = m};

	if (to != p->id)
		pbft_emit(p, &a);
}

void
pbft_broadcast(struct pbft *p, const struct pbft_msg *m)
{
	struct pbft_action a = {.type = PBFT_ACT_BROADCAST, .msg = m};

	pbft_emit(p, &a);
}

/*
 * A pre-prepare or prepare of the normal case: it may leave before its
 * records are durable (the driver contract in pbft.h), so that the disk is
 * off the path of agreement. A commit never is: it tells peers that this
 * replica's prepared certificate is durable, and that is what keeps a
 * committed batch alive across crashes of every replica.
 */
void
pbft_broadcast_early(struct pbft *p, const struct pbft_msg *m)
{
	struct pbft_action a = {
	    .type = PBFT_ACT_BROADCAST, .msg = m, .early = true};

	pbft_emit(p, &a);
}

/*
 * True while this replica may not send a pre-prepare or prepare for seq in
 * its view: back from a crash, in the views it may have sent early votes
 * in that the crash made it forget, up to the bound it had made durable in
 * the last of them (pbft_boot_record).
 */
bool
pbft_mute(const struct pbft *p, uint64_t seq)
{
	if (!p->muted || p->view > p->mute_view ||
	    (p->cfg.test_flags & PBFT_TEST_BROKEN_MUTE))
		return false;
	return p->view < p->mute_view || seq <= p->mute_seq;
}

/* Emits a PERSIST action for rec, which must already be kept (pbft_keep). */
static void
persist_kept(struct pbft *p, const uint8_t *rec, size_t len, bool barrier)
{
	struct pbft_action a = {.type = PBFT_ACT_PERSIST, .barrier = barrier};

	a.record = rec;
	a.record_len = len;
	pbft_emit(p, &a);
}

void
pbft_persist_raw(struct pbft *p, const uint8_t *rec, size_t len)
{
	persist_kept(p, pbft_keep(p, rec, len), len, false);
}

/* A record that early output must not overtake: the view's. */
void
pbft_persist_barrier(struct pbft *p, const uint8_t *rec, size_t len)
{
	persist_kept(p, pbft_keep(p, rec, len), len, true);
}

/*
 * Before an early vote (a pre-prepare or prepare) for seq in the current
 * view: unless the bound covers seq already, it is raised half a window
 * ahead (to the high mark at most) by a barrier record, which every early
 * output after it waits for (pbft.h). A crash can so make this replica
 * forget early votes of a view only up to the bound its log holds, and it
 * is mute only up to there when it is back: one record per half window of
 * votes, not one per batch.
 */
void
pbft_bound_early(struct pbft *p, uint64_t seq)
{
	uint64_t half = p->cfg.window >= 2 ? p->cfg.window / 2 : 1;
	uint64_t bound = seq + half - 1, high = p->low + p->cfg.window;
	uint8_t rec[PBFT_BOUND_RECORD_LEN];
	struct wbuf wb;

	if (p->bound_view == p->view && seq <= p->bound_seq)
		return;
	if (bound > high)
		bound = high > seq ? high : seq;
	p->bound_view = p->view;
	p->bound_seq = bound;
	wbuf_init_fixed(&wb, rec, sizeof(rec));
	wbuf_put_u8(&wb, REC_BOUND);
	wbuf_put_u64(&wb, p->bound_view);
	wbuf_put_u64(&wb, p->bound_seq);
	pbft_persist_barrier(p, rec, wb.len);
}

/* A pre-prepare's encoding beyond its batch: header, fields, signature. */
#define PP_RECORD_OVERHEAD 512

void
pbft_persist_msg(struct pbft *p, enum rec_kind kind, const struct pbft_msg *m)
{
	/* A pre-prepare carries a batch of up to megabytes: it is encoded
	 * straight into the record the action keeps, not copied there. */
	if (m->type == PBFT_MSG_PREPREPARE) {
		size_t cap = PP_RECORD_OVERHEAD + m->u.preprepare.batch_len;
		uint8_t *rec = pbft_keep(p, NULL, cap);
		struct wbuf wb;

		wbuf_init_fixed(&wb, rec, cap);
		wbuf_put_u8(&wb, (uint8_t)kind);
		if (wire_encode(&wb, m) == 0) {
			persist_kept(p, rec, wb.len, false);
			return;
		}
	}
	wbuf_reset(&p->enc);
	wbuf_put_u8(&p->enc, (uint8_t)kind);
	if (wire_encode(&p->enc, m) == -1)
		abort(); /* our own message must encode */
	pbft_persist_raw(p, p->enc.p, p->enc.len);
}
