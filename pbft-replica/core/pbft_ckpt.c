/*
 * pbft_ckpt.c - checkpoints, the stable checkpoint and garbage collection
 * (Castro and Liskov, OSDI '99 section 4.3), and the hand-over to state
 * transfer when a replica finds itself behind the stable checkpoint (TOCS
 * 2002 section 5.3).
 *
 * The agreed digest of a checkpoint covers the service state and the client
 * table (last executed timestamp per client), so that replicas that agree
 * on it also agree on which requests are duplicates.
 */
#include <stdlib.h>
#include <string.h>

#include "pbft_int.h"

void
pbft_state_digest(const struct pbft_crypto *c,
    const uint8_t service_digest[PBFT_DIGEST_LEN], const uint8_t *client_table,
    size_t client_table_len, uint8_t out[PBFT_DIGEST_LEN])
{
	uint8_t buf[2 * PBFT_DIGEST_LEN];

	memcpy(buf, service_digest, PBFT_DIGEST_LEN);
	c->digest(
	    c->ctx, client_table, client_table_len, buf + PBFT_DIGEST_LEN);
	c->digest(c->ctx, buf, sizeof(buf), out);
}

size_t
pbft_client_table(struct pbft *p, struct wbuf *wb)
{
	wbuf_reset(wb);
	wbuf_put_u32(wb, p->cfg.clients);
	for (uint32_t i = 0; i < p->cfg.clients; i++)
		wbuf_put_u64(wb, p->last_ts[i]);
	return wb->len;
}

/* After executing seq (a multiple of K): ask the driver for its digest. */
void
pbft_take_checkpoint(struct pbft *p, uint64_t seq)
{
	struct pbft_action a = {.type = PBFT_ACT_TAKE_CHECKPOINT, .seq = seq};
	struct own_ckpt *o = &p->own[0];

	for (int i = 0; i < OWN_CKPTS; i++)
		if (p->own[i].seq < o->seq)
			o = &p->own[i];
	memset(o, 0, sizeof(*o));
	o->seq = seq;
	pbft_client_table(p, &p->enc);
	a.client_table = pbft_keep(p, p->enc.p, p->enc.len);
	a.client_table_len = p->enc.len;
	p->c->digest(p->c->ctx, p->enc.p, p->enc.len, o->ct_digest);
	pbft_emit(p, &a);
}

static struct ckpt_entry *
ring_of(struct pbft *p, uint32_t replica)
{
	return &p->ckpts[(size_t)replica * CKPT_RING];
}

/*
 * Whether a CHECKPOINT of replica for seq would change what we remember,
 * decided before its signature is checked: not when we hold one of it for
 * seq already (the first word counts), nor when its ring is full of later
 * ones, nor, above our window, when we hold a later one of it there (TOCS
 * 2002 keeps only the last checkpoint per replica above the high mark).
 */
static bool
ckpt_news(struct pbft *p, uint32_t replica, uint64_t seq)
{
	const struct ckpt_entry *r = ring_of(p, replica);
	uint64_t high = p->low + p->cfg.window;
	bool room = false;

	for (int i = 0; i < CKPT_RING; i++) {
		if (r[i].seq == seq || (seq > high && r[i].seq > seq))
			return false;
		if (r[i].seq <= p->low || r[i].seq < seq)
			room = true;
	}
	return room;
}

/* Remembers replica's checkpoint for seq, replacing its oldest one; above
 * the high mark only the latest one is kept. */
static void
remember(struct pbft *p, uint32_t replica, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], const uint8_t sig[PBFT_SIG_LEN])
{
	struct ckpt_entry *r = ring_of(p, replica), *slot = &r[0];
	uint64_t high = p->low + p->cfg.window;

	for (int i = 0; i < CKPT_RING; i++) {
		if (r[i].seq == seq)
			return; /* first word counts */
		if (seq > high && r[i].seq > high)
			r[i].seq = 0; /* an older one beyond the window */
	}
	for (int i = 0; i < CKPT_RING; i++)
		if (r[i].seq < slot->seq)
			slot = &r[i];
	slot->seq = seq;
	memcpy(slot->digest, digest, PBFT_DIGEST_LEN);
	memcpy(slot->sig, sig, PBFT_SIG_LEN);
}

/* Stable once 2f+1 replicas (ourselves included) sent matching ones. */
static void
check_stable(
    struct pbft *p, uint64_t seq, const uint8_t digest[PBFT_DIGEST_LEN])
{
	struct pbft_sigpair proof[PBFT_REPLICAS_MAX];
	uint32_t k = 0;

	if (seq <= p->low)
		return;
	for (uint32_t i = 0; i < p->n; i++) {
		struct ckpt_entry *r = ring_of(p, i);

		for (int j = 0; j < CKPT_RING; j++)
			if (r[j].seq == seq &&
			    memcmp(r[j].digest, digest, PBFT_DIGEST_LEN) == 0) {
				proof[k].replica = i;
				memcpy(proof[k].sig, r[j].sig, PBFT_SIG_LEN);
				k++;
				break;
			}
	}
	if (k >= pbft_quorum(p))
		pbft_make_stable(p, seq, digest, proof, k);
}

void
pbft_on_state_digest(struct pbft *p, const struct pbft_event *ev)
{
	struct own_ckpt *o = NULL;
	uint8_t buf[2 * PBFT_DIGEST_LEN];
	struct pbft_msg *m;

	for (int i = 0; i < OWN_CKPTS; i++)
		if (p->own[i].seq == ev->seq && !p->own[i].have_digest)
			o = &p->own[i];
	if (o == NULL)
		return;
	memcpy(buf, ev->digest, PBFT_DIGEST_LEN);
	memcpy(buf + PBFT_DIGEST_LEN, o->ct_digest, PBFT_DIGEST_LEN);
	p->c->digest(p->c->ctx, buf, sizeof(buf), o->digest);
	o->have_digest = true;
	m = pbft_new_msg(p);
	m->type = PBFT_MSG_CHECKPOINT;
	m->u.checkpoint.seq = o->seq;
	memcpy(m->u.checkpoint.digest, o->digest, PBFT_DIGEST_LEN);
	m->u.checkpoint.replica = p->id;
	wbuf_reset(&p->sb);
	wire_signed_checkpoint(&p->sb, o->seq, o->digest, p->id);
	p->c->sign(p->c->ctx, p->sb.p, p->sb.len, m->u.checkpoint.sig);
	memcpy(o->sig, m->u.checkpoint.sig, PBFT_SIG_LEN);
	pbft_persist_msg(p, REC_CKPT, m);
	pbft_broadcast(p, m);
	remember(p, p->id, o->seq, o->digest, o->sig);
	check_stable(p, o->seq, o->digest);
}

/*
 * OSDI 4.3: a CHECKPOINT from another replica. The signature is checked
 * last, and only when the checkpoint is news (ckpt_news): a replica
 * repeating one, or walking ahead of our window, makes us verify at most
 * once per checkpoint it could count in. One with a bad signature gets its
 * sender disconnected.
 */
void
pbft_on_checkpoint(
    struct pbft *p, uint32_t from, const struct pbft_checkpoint *m)
{
	if (m->replica != from) {
		pbft_reject(p, PBFT_REJ_BAD_SENDER);
		return;
	}
	if (m->seq == 0 || m->seq % p->cfg.checkpoint_interval != 0 ||
	    m->seq <= p->low) {
		if (m->seq < p->low)
			pbft_tell_stable(p, from); /* it is behind */
		pbft_reject(p, PBFT_REJ_OUT_OF_WINDOW);
		return;
	}
	if (!ckpt_news(p, from, m->seq))
		return; /* known, or older than what it showed us */
	wbuf_reset(&p->sb);
	wire_signed_checkpoint(&p->sb, m->seq, m->digest, m->replica);
	if (!pbft_verify_ckpt_sig(p, from, m->sig)) {
		pbft_reject(p, PBFT_REJ_BAD_SIG);
		pbft_disconnect(p, from);
		return;
	}
	remember(p, from, m->seq, m->digest, m->sig);
	check_stable(p, m->seq, m->digest);
}

/*
 * Whether replica's sig over checkpoint (seq, digest) is one we hold
 * already, so verified: in its ring, or in the stable checkpoint's proof.
 * A VIEW-CHANGE carries the same proof view after view; checking it again
 * would cost 2f+1 verifications each time.
 */
static bool
ckpt_sig_known(struct pbft *p, uint32_t replica, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], const uint8_t sig[PBFT_SIG_LEN])
{
	const struct ckpt_entry *r = ring_of(p, replica);

	if (seq == p->low &&
	    memcmp(digest, p->low_digest, PBFT_DIGEST_LEN) == 0)
		for (uint32_t i = 0; i < p->low_proof_n; i++)
			if (p->low_proof[i].replica == replica &&
			    memcmp(p->low_proof[i].sig, sig, PBFT_SIG_LEN) == 0)
				return true;
	for (int i = 0; i < CKPT_RING; i++)
		if (r[i].seq == seq &&
		    memcmp(r[i].digest, digest, PBFT_DIGEST_LEN) == 0 &&
		    memcmp(r[i].sig, sig, PBFT_SIG_LEN) == 0)
			return true;
	return false;
}

bool
pbft_check_ckpt_proof(struct pbft *p, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], const struct pbft_sigpair *v,
    uint32_t n)
{
	uint64_t seen = 0;
	uint32_t k = 0;

	if (seq == 0)
		return n == 0 && pbft_digest_is_zero(digest);
	if (seq % p->cfg.checkpoint_interval != 0)
		return false;
	for (uint32_t i = 0; i < n; i++) {
		if (v[i].replica >= p->n || (seen >> v[i].replica & 1))
			return false;
		seen |= 1ULL << v[i].replica;
		if (ckpt_sig_known(p, v[i].replica, seq, digest, v[i].sig)) {
			p->st.sig_cached++;
			k++;
			continue;
		}
		wbuf_reset(&p->sb);
		wire_signed_checkpoint(&p->sb, seq, digest, v[i].replica);
		if (!pbft_verify_ckpt_sig(p, v[i].replica, v[i].sig))
			return false;
		k++;
	}
	return k >= pbft_quorum(p);
}

static void
persist_stable(struct pbft *p)
{
	wbuf_reset(&p->enc);
	wbuf_put_u8(&p->enc, REC_STABLE);
	wbuf_put_u64(&p->enc, p->low);
	wbuf_put_bytes(&p->enc, p->low_digest, PBFT_DIGEST_LEN);
	wbuf_put_u32(&p->enc, p->low_proof_n);
	for (uint32_t i = 0; i < p->low_proof_n; i++) {
		wbuf_put_u32(&p->enc, p->low_proof[i].replica);
		wbuf_put_bytes(&p->enc, p->low_proof[i].sig, PBFT_SIG_LEN);
	}
	pbft_persist_raw(p, p->enc.p, p->enc.len);
}

/* Moves the low mark to seq and discards everything at or below it. */
static void
set_low(struct pbft *p, uint64_t seq, const uint8_t digest[PBFT_DIGEST_LEN],
    const struct pbft_sigpair *proof, uint32_t nproof)
{
	p->low = seq;
	memcpy(p->low_digest, digest, PBFT_DIGEST_LEN);
	p->low_proof_n = nproof > p->n ? p->n : nproof;
	memcpy(p->low_proof, proof, p->low_proof_n * sizeof(*proof));
	for (uint64_t i = 0; i < p->cfg.window; i++) {
		struct slot *s = &p->slots[i];

		if (s->seq != 0 && s->seq <= seq)
			pbft_slot_reset(p, s, 0);
	}
	for (int i = 0; i < OWN_CKPTS; i++)
		if (p->own[i].seq <= seq)
			memset(&p->own[i], 0, sizeof(p->own[i]));
	if (p->next_seq <= seq)
		p->next_seq = seq + 1;
}

void
pbft_make_stable(struct pbft *p, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], const struct pbft_sigpair *proof,
    uint32_t nproof)
{
	struct pbft_action a = {.type = PBFT_ACT_STABLE, .seq = seq};

	if (seq <= p->low)
		return;
	set_low(p, seq, digest, proof, nproof);
	persist_stable(p);
	pbft_emit(p, &a);
	if (p->last_exec < seq) {
		/* Behind: the log below seq is gone everywhere. Fetch the
		 * certified state instead (TOCS 5.3). */
		struct pbft_action fa = {
		    .type = PBFT_ACT_FETCH_STATE, .seq = seq};

		memcpy(fa.digest, digest, PBFT_DIGEST_LEN);
		p->waiting_state = true;
		p->waiting_seq = seq;
		pbft_emit(p, &fa);
		return;
	}
	pbft_try_propose(p);
}

void
pbft_on_state_installed(struct pbft *p, const struct pbft_event *ev)
{
	struct rbuf rb;
	uint32_t n;

	if (!p->waiting_state || ev->seq != p->waiting_seq)
		return;
	rbuf_init(&rb, ev->client_table, ev->client_table_len);
	if (rbuf_get_u32(&rb, &n) == -1 || n != p->cfg.clients ||
	    rbuf_left(&rb) != (size_t)n * 8)
		return; /* the driver checked the digest; this cannot be */
	for (uint32_t i = 0; i < n; i++) {
		(void)rbuf_get_u64(&rb, &p->last_ts[i]);
		if (p->pending[i].buf != NULL &&
		    p->pending[i].r.timestamp <= p->last_ts[i]) {
			free(p->pending[i].buf);
			memset(&p->pending[i], 0, sizeof(p->pending[i]));
			p->npending--;
		}
	}
	p->last_exec = ev->seq;
	p->waiting_state = false;
	if (p->next_seq <= ev->seq)
		p->next_seq = ev->seq + 1;
	pbft_try_execute(p);
}

/*
 * Our CHECKPOINT for the stable checkpoint, from its proof; NULL when the
 * proof does not hold our signature (we got there by state transfer or by
 * others' messages alone).
 */
static struct pbft_msg *
stable_part(struct pbft *p)
{
	for (uint32_t i = 0; i < p->low_proof_n; i++)
		if (p->low_proof[i].replica == p->id) {
			struct pbft_msg *m = pbft_new_msg(p);

			m->type = PBFT_MSG_CHECKPOINT;
			m->u.checkpoint.seq = p->low;
			memcpy(m->u.checkpoint.digest, p->low_digest,
			    PBFT_DIGEST_LEN);
			m->u.checkpoint.replica = p->id;
			memcpy(m->u.checkpoint.sig, p->low_proof[i].sig,
			    PBFT_SIG_LEN);
			return m;
		}
	return NULL;
}

void
pbft_resend_checkpoint(struct pbft *p)
{
	struct own_ckpt *best = NULL;
	struct pbft_msg *m;

	for (int i = 0; i < OWN_CKPTS; i++)
		if (p->own[i].have_digest && p->own[i].seq > p->low &&
		    (best == NULL || p->own[i].seq > best->seq))
			best = &p->own[i];
	if (best == NULL) {
		/* Nothing newer: repeat our part of the stable checkpoint's
		 * proof, so a replica that missed it learns it moved on. */
		if ((m = stable_part(p)) != NULL)
			pbft_broadcast(p, m);
		return;
	}
	m = pbft_new_msg(p);
	m->type = PBFT_MSG_CHECKPOINT;
	m->u.checkpoint.seq = best->seq;
	memcpy(m->u.checkpoint.digest, best->digest, PBFT_DIGEST_LEN);
	m->u.checkpoint.replica = p->id;
	memcpy(m->u.checkpoint.sig, best->sig, PBFT_SIG_LEN);
	pbft_broadcast(p, m);
}

/*
 * Our part of the stable checkpoint's proof, to one replica that showed it
 * is behind it (an older CHECKPOINT, or a VIEW-CHANGE for the view whose
 * NEW-VIEW it missed). With 2f+1 up-to-date replicas answering, the
 * checkpoint becomes stable there and its state transfer starts at once,
 * instead of when the next checkpoint is taken, which under light load or
 * a long interval can be long after the view timer fired. At most once a
 * retransmission period per replica and stable checkpoint.
 */
void
pbft_tell_stable(struct pbft *p, uint32_t to)
{
	struct pbft_msg *m;

	if (p->low == 0 || to >= p->n || to == p->id ||
	    (p->cfg.test_flags & PBFT_TEST_BROKEN_TELL) ||
	    (p->told_low[to] == p->low &&
	        p->ticks - p->told_at[to] < p->cfg.retransmit_ticks))
		return;
	if ((m = stable_part(p)) != NULL) {
		pbft_send(p, to, m);
		p->told_low[to] = p->low;
		p->told_at[to] = p->ticks;
	}
}

/* The client table of the state restored at a restart. 0 or -1. */
static int
recover_table(struct pbft *p, const uint8_t *ct, size_t ct_len)
{
	struct rbuf rb;
	uint32_t n;

	rbuf_init(&rb, ct, ct_len);
	if (rbuf_get_u32(&rb, &n) == -1 || n != p->cfg.clients ||
	    rbuf_left(&rb) != (size_t)n * 8)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		(void)rbuf_get_u64(&rb, &p->last_ts[i]);
	memcpy(p->queued_ts, p->last_ts, n * sizeof(uint64_t));
	p->rt_ticks = p->cfg.retransmit_ticks; /* resend at the next tick */
	p->rt_low = p->low;
	return 0;
}

int
pbft_recover_state(
    struct pbft *p, uint64_t seq, const uint8_t *ct, size_t ct_len)
{
	if (seq != p->low)
		return -1;
	return recover_table(p, ct, ct_len);
}

size_t
pbft_recover_own_checkpoints(const struct pbft *p, uint64_t *seqs, size_t max)
{
	size_t n = 0;

	for (int i = 0; i < OWN_CKPTS; i++) {
		const struct own_ckpt *o = &p->own[i];
		size_t k = n;

		if (!o->have_digest || o->seq <= p->low || n == max)
			continue;
		for (; k > 0 && seqs[k - 1] < o->seq; k--)
			seqs[k] = seqs[k - 1];
		seqs[k] = o->seq;
		n++;
	}
	return n;
}

int
pbft_recover_own_state(struct pbft *p, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], const uint8_t *ct, size_t ct_len)
{
	uint8_t want[PBFT_DIGEST_LEN];

	for (int i = 0; i < OWN_CKPTS; i++) {
		const struct own_ckpt *o = &p->own[i];

		if (!o->have_digest || o->seq != seq || seq <= p->low)
			continue;
		pbft_state_digest(p->c, digest, ct, ct_len, want);
		if (memcmp(want, o->digest, PBFT_DIGEST_LEN) != 0 ||
		    recover_table(p, ct, ct_len) == -1)
			return -1;
		p->last_exec = seq;
		if (p->next_seq <= seq)
			p->next_seq = seq + 1;
		return 0;
	}
	return -1;
}

uint64_t
pbft_recover_awaiting_state(struct pbft *p, uint8_t digest[PBFT_DIGEST_LEN])
{
	if (p->low == 0)
		return 0;
	p->waiting_state = true;
	p->waiting_seq = p->low;
	memcpy(digest, p->low_digest, PBFT_DIGEST_LEN);
	return p->low;
}

int
pbft_recover_stable(struct pbft *p, struct rbuf *rb)
{
	struct pbft_sigpair proof[PBFT_REPLICAS_MAX];
	uint8_t digest[PBFT_DIGEST_LEN];
	uint64_t seq;
	uint32_t n;

	if (rbuf_get_u64(rb, &seq) == -1 ||
	    rbuf_get_bytes(rb, digest, PBFT_DIGEST_LEN) == -1 ||
	    rbuf_get_u32(rb, &n) == -1 || n > p->n)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (rbuf_get_u32(rb, &proof[i].replica) == -1 ||
		    rbuf_get_bytes(rb, proof[i].sig, PBFT_SIG_LEN) == -1)
			return -1;
	if (seq > p->low) {
		set_low(p, seq, digest, proof, n);
		p->last_exec = seq;
	}
	return 0;
}
