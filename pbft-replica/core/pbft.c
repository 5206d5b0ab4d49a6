/*
 * pbft.c - the consensus core: events in, actions out (see pbft.h).
 *
 * This file holds the event dispatch, client requests, batching, the normal
 * case (pre-prepare, prepare, commit; Castro and Liskov, OSDI '99 section
 * 4.2) and in-order execution. Checkpoints live in pbft_ckpt.c, view changes
 * in pbft_view.c, the quorum sizes, signature checks and every action out
 * in pbft_out.c. No I/O, clocks or randomness: time arrives as ticks.
 */
#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "pbft_int.h"

/* ---- the log ----------------------------------------------------------- */

struct slot *
pbft_slot(struct pbft *p, uint64_t seq)
{
	struct slot *s;

	if (seq <= p->low || seq > p->low + p->cfg.window)
		return NULL;
	s = &p->slots[seq % p->cfg.window];
	if (s->seq != seq)
		pbft_slot_reset(p, s, seq);
	return s;
}

/* Forgets everything about the slot's previous sequence number. */
void
pbft_slot_reset(struct pbft *p, struct slot *s, uint64_t seq)
{
	void *pd = s->prep_digest, *cd = s->commit_digest;
	void *lv = s->late_view, *ld = s->late_digest;

	free(s->body);
	memset(s, 0, sizeof(*s));
	s->prep_digest = pd;
	s->commit_digest = cd;
	s->late_view = lv;
	s->late_digest = ld;
	s->seq = seq;
	(void)p;
}

/* Clears the current view's votes; keeps the body, P and Q. */
void
pbft_slot_new_view(struct pbft *p, struct slot *s)
{
	(void)p;
	s->have_pp = false;
	s->prep_seen = s->commit_seen = 0;
	s->sent_prepare = s->sent_commit = false;
	s->prepared = false;
	if (!s->executed)
		s->committed = false;
}

void
pbft_set_body(struct pbft *p, struct slot *s, const uint8_t *batch,
    uint32_t len, const uint8_t digest[PBFT_DIGEST_LEN])
{
	(void)p;
	free(s->body);
	s->body = NULL;
	if (len > 0) {
		if ((s->body = malloc(len)) == NULL)
			abort();
		memcpy(s->body, batch, len);
	}
	s->body_len = len;
	s->body_known = true;
	memcpy(s->body_digest, digest, PBFT_DIGEST_LEN);
}

static bool
body_matches(const struct slot *s)
{
	return s->body_known &&
	    memcmp(s->body_digest, s->digest, PBFT_DIGEST_LEN) == 0;
}

/* ---- timers ------------------------------------------------------------ */

/*
 * The view-change timer (OSDI 4.4, 4.5.2) runs while this replica knows of
 * work that is not done: requests a backup is waiting for, requests the
 * primary has queued, or pre-prepared batches not yet executed. It
 * restarts once what it waited for when it started has executed (OSDI
 * 4.5.2: stopped when no longer waiting for the request, restarted if
 * then waiting for another), not at any execution: a primary that
 * executes some requests may not hold back others for ever, nor take
 * just under a timeout for each batch; when it expires the primary is
 * suspected.
 */
void
pbft_view_timer_stop(struct pbft *p)
{
	p->vt_running = false;
	p->vt_expired = false;
	p->vt_run_ticks = 0;
	p->vt_ticks = p->cfg.view_timeout_ticks;
}

static bool
work_waiting(const struct pbft *p)
{
	if (p->npending > 0 || p->qlen > 0)
		return true;
	for (uint64_t seq = p->last_exec + 1; seq <= p->low + p->cfg.window;
	     seq++) {
		const struct slot *s = &p->slots[seq % p->cfg.window];

		if (s->seq == seq && s->have_pp && s->pp_view == p->view)
			return true;
	}
	return false;
}

/* Whether 2f other replicas were heard from since `since` (1 + ticks):
 * with us, a quorum that could complete a view change. */
static bool
heard_quorum_since(const struct pbft *p, uint64_t since)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < p->n; i++)
		if (i != p->id && p->heard_at[i] >= since)
			k++;
	return k + 1 >= pbft_quorum(p);
}

static void
send_or_broadcast(struct pbft *p, uint32_t to, const struct pbft_msg *m)
{
	if (to == UINT32_MAX)
		pbft_broadcast(p, m);
	else
		pbft_send(p, to, m);
}

static void
send_status(struct pbft *p, uint32_t to, uint8_t flags)
{
	struct pbft_msg *m = pbft_new_msg(p);

	m->type = PBFT_MSG_STATUS;
	m->u.status = (struct pbft_status_msg){.view = p->view,
	    .low = p->low,
	    .last_exec = p->last_exec,
	    .replica = p->id,
	    .flags =
	        (uint8_t)(flags | (p->changing ? PBFT_STATUS_CHANGING : 0) |
	            (pbft_mute(p, p->last_exec + 1) ? PBFT_STATUS_MUTED : 0))};
	send_or_broadcast(p, to, m);
}

/*
 * Progress restarts the timer: this replica's own execution, or, for a
 * replica that lags behind (a batch it missed, awaiting retransmission or
 * the next checkpoint), f+1 commits for a later batch in this view, so at
 * least one correct replica saw the primary do its job. Without that a
 * lagging replica would suspect a working primary alone and sit in a view
 * change nobody joins. A censored request still times out at the replicas
 * that are not behind, and f+1 of their VIEW-CHANGEs pull the rest along.
 */
/*
 * Whether nobody can move this view forward: its primary, or f+1 replicas
 * (so that 2f+1 voters are not left), are mute after a crash, by our own
 * state or by what their STATUS said last (a replica says so when it
 * becomes mute or stops being so, on_tick). A whole cluster that crashed
 * at once comes back so. A lying replica gains nothing: a faulty primary
 * can stall its view anyway, and f liars need a correct mute replica.
 */
static bool
mute_stalls(const struct pbft *p)
{
	uint32_t k = 0, primary = pbft_primary(p, p->view);

	for (uint32_t i = 0; i < p->n; i++) {
		bool m = i == p->id ? pbft_mute(p, p->last_exec + 1)
		                    : p->muted_view1[i] == p->view + 1;

		if (m && i == primary)
			return true;
		k += m;
	}
	return k > p->f;
}

/* Whether what the running timer waited for has executed: the batches
 * pre-prepared when it started, and the requests pending then. */
static bool
watched_done(const struct pbft *p)
{
	uint32_t left = p->npending;

	if (p->last_exec < p->vt_seq)
		return false;
	for (uint32_t c = 0; c < p->cfg.clients && left > 0; c++) {
		if (p->pending[c].buf == NULL)
			continue;
		left--;
		if (p->pending[c].at <= p->vt_start)
			return false;
	}
	return true;
}

/* The highest seq pre-prepared in this view and not executed (0: none). */
static uint64_t
preprepared_top(const struct pbft *p)
{
	for (uint64_t seq = p->low + p->cfg.window; seq > p->last_exec; seq--) {
		const struct slot *s = &p->slots[seq % p->cfg.window];

		if (s->seq == seq && s->have_pp && s->pp_view == p->view)
			return seq;
	}
	return 0;
}

static void
view_timer_tick(struct pbft *p)
{
	bool lagging_progress = p->seen_commit > p->last_exec &&
	    p->seen_commit != p->vt_seen_commit;
	bool progress =
	    p->last_exec != p->vt_exec && (!p->vt_running || watched_done(p));

	p->vt_exec = p->last_exec;
	if (p->changing || p->waiting_state || !work_waiting(p) || progress ||
	    lagging_progress) {
		p->vt_seen_commit = p->seen_commit;
		pbft_view_timer_stop(p);
		return;
	}
	if (!p->vt_running) {
		p->vt_start = p->ticks;
		p->vt_seq = preprepared_top(p);
	}
	p->vt_running = true;
	/* Waiting out the timeout would gain nothing: a retransmission
	 * period without progress is enough to suspect the view. */
	if (!p->vt_expired && ++p->vt_run_ticks >= p->cfg.retransmit_ticks &&
	    mute_stalls(p)) {
		pbft_view_timer_stop(p);
		pbft_start_view_change(p, p->view + 1);
		return;
	}
	if (p->vt_expired) {
		/* Suspect the primary only while a quorum can be heard. A
		 * replica cut off from the others could not change views,
		 * and its VIEW-CHANGE, delivered once the links are back,
		 * would leave it alone in the next view while the others
		 * still follow a working primary. Once the network heals
		 * every correct replica answers, so no needed view change
		 * waits longer than a round trip. */
		if (heard_quorum_since(p, p->vt_expired_at)) {
			/* Back in touch after a cut: what they answer may
			 * show the primary at work, so give it a period. */
			if (p->vt_grace > 0 && --p->vt_grace > 0)
				return;
			pbft_view_timer_stop(p);
			pbft_start_view_change(p, p->view + 1);
		} else if (++p->vt_ask_ticks >= p->cfg.retransmit_ticks) {
			if (p->vt_grace == 0)
				p->st.view_changes_deferred++; /* once */
			p->vt_grace = p->cfg.retransmit_ticks;
			p->vt_ask_ticks = 0;
			send_status(p, UINT32_MAX, PBFT_STATUS_ASK);
		}
		return;
	}
	if (p->vt_ticks > 0 && --p->vt_ticks == 0) {
		if (p->cfg.test_flags & PBFT_TEST_BROKEN_ALONE) {
			pbft_view_timer_stop(p);
			pbft_start_view_change(p, p->view + 1);
			return;
		}
		p->vt_expired = true;
		p->vt_expired_at = p->ticks + 1;
		p->vt_ask_ticks = 0;
		p->vt_grace = 0;
		send_status(p, UINT32_MAX, PBFT_STATUS_ASK);
	}
}

/* ---- requests (section 4.1) -------------------------------------------- */

static int
hold(struct held_req *h, const struct pbft_request *r)
{
	uint8_t *buf = malloc((size_t)r->op_len + r->auth_len + 1);

	if (buf == NULL)
		return -1;
	free(h->buf);
	memcpy(buf, r->op, r->op_len);
	memcpy(buf + r->op_len, r->auth, r->auth_len);
	h->buf = buf;
	h->r = *r;
	h->r.op = buf;
	h->r.auth = buf + r->op_len;
	return 0;
}

static void
release(struct held_req *h)
{
	free(h->buf);
	memset(h, 0, sizeof(*h));
}

/*
 * The bytes one client may hold in the primary's queue: a quarter of
 * queue_bytes_max, or PBFT_QUEUE_CLIENT_FLOOR if that is more, never more
 * than the whole. Four busy clients can fill the queue; one cannot keep
 * the others out of it.
 */
static uint64_t
client_share(const struct pbft *p)
{
	uint64_t share = p->cfg.queue_bytes_max / 4;

	if (share < PBFT_QUEUE_CLIENT_FLOOR)
		share = PBFT_QUEUE_CLIENT_FLOOR;
	return share < p->cfg.queue_bytes_max ? share : p->cfg.queue_bytes_max;
}

/* Section 4.2: the primary queues a request until a batch takes it. */
void
pbft_enqueue(struct pbft *p, const struct pbft_request *r)
{
	struct held_req *h;
	size_t bytes = wire_request_bytes(r);

	if (r->timestamp <= p->queued_ts[r->client] ||
	    r->timestamp <= p->last_ts[r->client])
		return; /* already queued or proposed */
	if (p->qlen == p->cfg.queue_reqs_max) {
		pbft_reject(p, PBFT_REJ_QUEUE_FULL);
		return;
	}
	if (p->qbytes + bytes > p->cfg.queue_bytes_max ||
	    p->client_qbytes[r->client] + bytes > client_share(p)) {
		pbft_reject(p, PBFT_REJ_QUEUE_BYTES);
		return; /* the client retransmits; it gets in as batches go */
	}
	h = &p->queue[(p->qhead + p->qlen) % p->cfg.queue_reqs_max];
	if (hold(h, r) == -1)
		return;
	p->qlen++;
	p->qbytes += bytes;
	p->client_qbytes[r->client] += bytes;
	p->queued_ts[r->client] = r->timestamp;
}

static bool
request_ok(struct pbft *p, const struct pbft_request *r, bool strict)
{
	if (r->client >= p->cfg.clients || r->op_len > PBFT_OP_BYTES_MAX ||
	    !p->c->verify_request(p->c->ctx, r, strict)) {
		pbft_reject(p, PBFT_REJ_BAD_REQUEST);
		return false;
	}
	return true;
}

/* Whoever sent a request that does not authenticate is faulty: a backup
 * forwards only requests it checked by their signature. */
static void
drop_sender(struct pbft *p, const struct pbft_request *r, uint32_t from)
{
	struct pbft_action a = {.type = PBFT_ACT_DROP_CLIENT};

	if (from != UINT32_MAX) {
		pbft_disconnect(p, from);
		return;
	}
	if (r->client >= p->cfg.clients)
		return;
	a.client = r->client;
	p->st.disconnects++;
	pbft_emit(p, &a);
}

/*
 * A client request, received directly (from == UINT32_MAX) or forwarded by
 * backup from.
 */
static void
on_request(struct pbft *p, const struct pbft_request *r, uint32_t from)
{
	bool forwarded = from != UINT32_MAX;

	/* Strict: the primary batches it, and a backup would start its view
	 * timer for it; a MAC alone would let a faulty client whose MACs
	 * differ from its signature stall batches or force view changes. */
	if (!request_ok(p, r, true)) {
		drop_sender(p, r, from);
		return;
	}
	if (r->timestamp <= p->last_ts[r->client]) {
		if (r->timestamp == p->last_ts[r->client] && !forwarded) {
			struct pbft_action a = {.type = PBFT_ACT_RESEND_REPLY,
			    .client = r->client,
			    .timestamp = r->timestamp};

			pbft_emit(p, &a);
		} else {
			pbft_reject(p, PBFT_REJ_OLD_REQUEST);
		}
		return;
	}
	if (pbft_primary(p, p->view) == p->id && !p->changing) {
		pbft_enqueue(p, r);
		pbft_try_propose(p);
		return;
	}
	if (forwarded)
		return; /* only the primary acts on forwarded requests */
	/* Backup: remember it, pass it on, and watch the primary. */
	if (p->pending[r->client].r.timestamp < r->timestamp) {
		if (p->pending[r->client].buf == NULL)
			p->npending++;
		if (hold(&p->pending[r->client], r) == -1)
			return;
		p->pending[r->client].at = p->ticks;
	}
	if (!p->changing) {
		struct pbft_msg *m = pbft_new_msg(p);

		m->type = PBFT_MSG_REQUEST;
		m->u.request = p->pending[r->client].r;
		pbft_send(p, pbft_primary(p, p->view), m);
	}
}

/* ---- batching and the primary (section 4.2) ---------------------------- */

static uint32_t
inflight(const struct pbft *p)
{
	return p->next_seq > p->last_exec + 1
	    ? (uint32_t)(p->next_seq - 1 - p->last_exec)
	    : 0;
}

static void
propose_one(struct pbft *p)
{
	struct pbft_request reqs[PBFT_BATCH_REQS_MAX];
	uint32_t k = 0;
	size_t bytes = 4;
	struct slot *s;
	struct pbft_msg *m;
	uint8_t digest[PBFT_DIGEST_LEN];

	while (p->qlen > 0 && k < p->cfg.batch_reqs_max) {
		struct held_req *h = &p->queue[p->qhead];
		size_t rb = wire_request_bytes(&h->r);

		if (k > 0 && bytes + rb > p->cfg.batch_bytes_max)
			break;
		reqs[k++] = h->r;
		bytes += rb;
		p->qhead = (p->qhead + 1) % p->cfg.queue_reqs_max;
		p->qlen--;
		p->qbytes -= rb;
		p->client_qbytes[h->r.client] -= rb;
	}
	s = pbft_slot(p, p->next_seq);
	wbuf_reset(&p->enc);
	if (wire_encode_batch(&p->enc, reqs, k) == -1)
		abort();
	p->c->digest(p->c->ctx, p->enc.p, p->enc.len, digest);
	pbft_set_body(p, s, p->enc.p, (uint32_t)p->enc.len, digest);
	/* The batch is copied: the queue's buffers can go. */
	for (uint32_t i = 0; i < k; i++) {
		struct held_req *h =
		    &p->queue[(p->qhead + p->cfg.queue_reqs_max - k + i) %
		        p->cfg.queue_reqs_max];

		release(h);
	}
	m = pbft_new_msg(p);
	m->type = PBFT_MSG_PREPREPARE;
	m->u.preprepare.view = p->view;
	m->u.preprepare.seq = p->next_seq;
	memcpy(m->u.preprepare.digest, digest, PBFT_DIGEST_LEN);
	m->u.preprepare.replica = p->id;
	m->u.preprepare.batch = s->body;
	m->u.preprepare.batch_len = s->body_len;
	pbft_accept_pp(p, s, p->view, digest);
	pbft_bound_early(p, p->next_seq);
	pbft_persist_msg(p, REC_PP, m);
	pbft_broadcast_early(p, m);
	p->next_seq++;
	pbft_try_progress(p, s);
}

/*
 * The primary proposes what its queue holds, as far as the window and the
 * in-flight limit allow. Back from a crash in its view it may have
 * forgotten pre-prepares up to its bound: it must never propose another
 * batch for such a seq, so it proposes again only once the cluster has
 * executed up to the bound (the backups had every pre-prepare it sent up
 * to there); a seq it never pre-prepared leaves a gap that only the next
 * view change fills.
 */
void
pbft_try_propose(struct pbft *p)
{
	if (pbft_primary(p, p->view) != p->id || p->changing ||
	    p->waiting_state)
		return;
	if (p->next_seq <= p->last_exec)
		p->next_seq = p->last_exec + 1;
	if (pbft_mute(p, p->next_seq))
		return;
	while (p->qlen > 0 && inflight(p) < p->cfg.inflight_max &&
	    p->next_seq <= p->low + p->cfg.window) {
		/* While batches are in flight, a new one waits until half a
		 * batch is queued, the in-flight ones execute, or
		 * batch_delay_ticks pass: fewer, fuller batches cost less
		 * (flushes, messages) than they would gain by overlapping. */
		if (inflight(p) > 0 && p->qlen < p->cfg.batch_reqs_max / 2 &&
		    p->hold_ticks < p->cfg.batch_delay_ticks)
			return;
		p->hold_ticks = 0;
		propose_one(p);
	}
}

/* ---- the normal case (section 4.2) ------------------------------------- */

/* Records the pre-prepare for (view, s->seq) as accepted. */
void
pbft_accept_pp(struct pbft *p, struct slot *s, uint64_t view,
    const uint8_t digest[PBFT_DIGEST_LEN])
{
	s->have_pp = true;
	s->pp_view = view;
	memcpy(s->digest, digest, PBFT_DIGEST_LEN);
	pbft_note_pp(s, view, digest);
	if (pbft_digest_is_zero(digest) && !body_matches(s))
		pbft_set_body(p, s, NULL, 0, digest); /* null request */
}

/*
 * Records in Q that the seq was pre-prepared with digest in view. Q keeps
 * the latest view per digest and nothing below the seq's P view: a new
 * primary needs f+1 claims of the digest it carries forward in the view it
 * prepared in or later (TOCS condition A2), and the digest to carry is the
 * highest one a correct replica prepared, so an entry older than our own P
 * is never the one asked for. When Q is full the oldest entry gives way,
 * never P's digest: a correct replica then fails to vouch only after
 * PBFT_Q_PER_SEQ views in a row pre-prepared other digests at this seq
 * without any of them preparing.
 */
void
pbft_note_pp(
    struct slot *s, uint64_t view, const uint8_t digest[PBFT_DIGEST_LEN])
{
	uint32_t i, k = 0, old = UINT32_MAX;

	for (i = 0; i < s->nq; i++)
		if (memcmp(s->q[i].digest, digest, PBFT_DIGEST_LEN) == 0) {
			if (view > s->q[i].view)
				s->q[i].view = view;
			return;
		}
	for (i = 0; i < s->nq; i++) /* drop what P has overtaken */
		if (!s->has_cert || s->q[i].view >= s->cert_view)
			s->q[k++] = s->q[i];
	s->nq = k;
	if (s->nq == PBFT_Q_PER_SEQ) {
		for (i = 0; i < s->nq; i++)
			if ((!s->has_cert ||
			        memcmp(s->q[i].digest, s->cert_digest,
			            PBFT_DIGEST_LEN) != 0) &&
			    (old == UINT32_MAX ||
			        s->q[i].view < s->q[old].view))
				old = i;
		s->q[old] = s->q[--s->nq];
	}
	s->q[s->nq].view = view;
	memcpy(s->q[s->nq].digest, digest, PBFT_DIGEST_LEN);
	s->nq++;
}

static struct pbft_msg *
make_vote(struct pbft *p, enum pbft_msg_type type, const struct slot *s)
{
	struct pbft_msg *m = pbft_new_msg(p);

	m->type = type;
	m->u.prepare.view = p->view;
	m->u.prepare.seq = s->seq;
	memcpy(m->u.prepare.digest, s->digest, PBFT_DIGEST_LEN);
	m->u.prepare.replica = p->id;
	/* Unsigned: no vote is ever shown to a third party, so the
	 * authenticated channel that carries it is proof enough of its
	 * sender, as MACs are in Castro and Liskov's TOCS protocol. */
	return m;
}

/* Commits for digest. */
static uint32_t
count_commits(const struct pbft *p, const struct slot *s, const uint8_t *digest)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < p->n; i++)
		if ((s->commit_seen >> i & 1) &&
		    memcmp(s->commit_digest[i], digest, PBFT_DIGEST_LEN) == 0)
			k++;
	return k;
}

/* Encodes a REC_PREPARED or REC_PREPREPARED record into wb. */
void
pbft_put_claim(struct wbuf *wb, enum rec_kind kind, uint64_t view, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN])
{
	wbuf_reset(wb);
	wbuf_put_u8(wb, (uint8_t)kind);
	wbuf_put_u64(wb, view);
	wbuf_put_u64(wb, seq);
	wbuf_put_bytes(wb, digest, PBFT_DIGEST_LEN);
}

/*
 * Remembers that the slot prepared in this view (P), durably: a view change
 * may need the claim to carry a committed request into the next view.
 */
static void
keep_cert(struct pbft *p, struct slot *s)
{
	s->has_cert = true;
	s->cert_view = p->view;
	memcpy(s->cert_digest, s->digest, PBFT_DIGEST_LEN);
	pbft_put_claim(
	    &p->enc, REC_PREPARED, s->cert_view, s->seq, s->cert_digest);
	pbft_persist_raw(p, p->enc.p, p->enc.len);
}

/* Whether 2f prepares from backups match the pre-prepare. */
static bool
prepares_match(const struct pbft *p, const struct slot *s, uint32_t primary)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < p->n; i++)
		if ((s->prep_seen >> i & 1) && i != primary &&
		    memcmp(s->prep_digest[i], s->digest, PBFT_DIGEST_LEN) == 0)
			k++;
	return k >= pbft_prep_quorum(p);
}

/*
 * Moves a slot forward as far as its votes allow: prepared (pre-prepare and
 * 2f matching prepares from backups), then committed-local (2f+1 matching
 * commits). Votes count only once the body is known, so that a replica
 * never commits to a batch it could not execute.
 */
void
pbft_try_progress(struct pbft *p, struct slot *s)
{
	uint32_t primary = pbft_primary(p, p->view);

	if (!s->have_pp || s->pp_view != p->view || p->changing)
		return;
	if (!s->sent_prepare && p->id != primary && body_matches(s) &&
	    !pbft_mute(p, s->seq)) {
		struct pbft_msg *m = make_vote(p, PBFT_MSG_PREPARE, s);

		pbft_bound_early(p, s->seq);
		s->sent_prepare = true;
		s->prep_seen |= 1ULL << p->id;
		memcpy(s->prep_digest[p->id], s->digest, PBFT_DIGEST_LEN);
		pbft_persist_msg(p, REC_VOTE, m);
		pbft_broadcast_early(p, m);
	}
	if (!s->prepared && body_matches(s) && prepares_match(p, s, primary)) {
		s->prepared = true;
		keep_cert(p, s);
	}
	if (s->prepared && !s->sent_commit) {
		struct pbft_msg *m = make_vote(p, PBFT_MSG_COMMIT, s);

		s->sent_commit = true;
		s->commit_seen |= 1ULL << p->id;
		memcpy(s->commit_digest[p->id], s->digest, PBFT_DIGEST_LEN);
		pbft_persist_msg(p, REC_VOTE, m);
		pbft_broadcast(p, m);
	}
	if (s->prepared && !s->committed &&
	    count_commits(p, s, s->digest) >= pbft_quorum(p)) {
		s->committed = true;
		pbft_try_execute(p);
	}
}

static bool
check_vote_common(struct pbft *p, uint32_t from, uint64_t view, uint64_t seq,
    uint32_t replica)
{
	if (replica != from) {
		pbft_reject(p, PBFT_REJ_BAD_SENDER);
		return false;
	}
	if (view != p->view || p->changing) {
		if (view > p->view)
			pbft_note_view(p, from, view);
		pbft_reject(p, PBFT_REJ_WRONG_VIEW);
		return false;
	}
	if (seq <= p->low || seq > p->low + p->cfg.window) {
		pbft_reject(p, PBFT_REJ_OUT_OF_WINDOW);
		return false;
	}
	return true;
}

static void late_body(
    struct pbft *p, uint32_t from, const struct pbft_preprepare *m);

/* OSDI section 4.2: a backup accepts a pre-prepare... */
static void
on_preprepare(struct pbft *p, uint32_t from, const struct pbft_preprepare *m)
{
	struct pbft_request reqs[PBFT_BATCH_REQS_MAX];
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t k;
	struct slot *s;

	if (m->view < p->view && p->changing && m->replica == from &&
	    !(p->cfg.test_flags & PBFT_TEST_BROKEN_STRANDED)) {
		late_body(p, from, m);
		return;
	}
	if (!check_vote_common(p, from, m->view, m->seq, m->replica))
		return;
	if (from != pbft_primary(p, m->view)) {
		pbft_reject(p, PBFT_REJ_NOT_PRIMARY);
		return;
	}
	s = pbft_slot(p, m->seq);
	if (s->have_pp && s->pp_view == m->view) {
		if (memcmp(s->digest, m->digest, PBFT_DIGEST_LEN) != 0)
			pbft_reject(p, PBFT_REJ_CONFLICT);
		else if (!body_matches(s) && m->batch_len > 0)
			goto body; /* a retransmission brings the body */
		return;
	}
body:
	p->c->digest(p->c->ctx, m->batch, m->batch_len, digest);
	if (pbft_digest_is_zero(m->digest)
	        ? m->batch_len != 0
	        : memcmp(digest, m->digest, PBFT_DIGEST_LEN) != 0) {
		pbft_reject(p, PBFT_REJ_BAD_DIGEST);
		return;
	}
	if (m->batch_len > 0 &&
	    (wire_decode_batch(m->batch, m->batch_len, reqs,
	         PBFT_BATCH_REQS_MAX, &k, &p->batch_auth) != WIRE_OK)) {
		pbft_reject(p, PBFT_REJ_BAD_REQUEST);
		return;
	}
	/* By the signature, as the primary judged them: every correct backup
	 * decides alike (once per signed group: crypto.c caches roots). */
	for (uint32_t i = 0; m->batch_len > 0 && i < k; i++)
		if (!request_ok(p, &reqs[i], true))
			return; /* a faulty primary invented or altered it */
	if (!s->have_pp || s->pp_view != m->view) {
		struct pbft_msg pm = {.type = PBFT_MSG_PREPREPARE};

		pm.u.preprepare = *m;
		pbft_accept_pp(p, s, m->view, m->digest);
		pbft_persist_msg(p, REC_PP, &pm);
	}
	if (m->batch_len > 0 || pbft_digest_is_zero(m->digest))
		pbft_set_body(p, s, m->batch, m->batch_len, m->digest);
	pbft_try_progress(p, s);
}

/*
 * A commit beyond our window, in our view: we are more than a window
 * behind and cannot keep it, but f+1 replicas committing later batches
 * are the progress that holds off our view timer (view_timer_tick), as
 * commits inside the window are. Without it a replica that fell that far
 * behind would suspect a working primary and sit alone in a view change.
 */
static void
note_far_commit(struct pbft *p, uint32_t from, uint64_t seq)
{
	uint64_t top[PBFT_REPLICAS_MAX];
	uint32_t k = 0;

	if (p->far_view[from] == p->view && p->far_seq[from] >= seq)
		return;
	p->far_view[from] = p->view;
	p->far_seq[from] = seq;
	for (uint32_t i = 0; i < p->n; i++)
		if (i != p->id && p->far_view[i] == p->view)
			top[k++] = p->far_seq[i];
	if (k < p->f + 1)
		return;
	/* The (f+1)-th highest: f+1 replicas committed at least that. */
	for (uint32_t i = 0; i <= p->f; i++)
		for (uint32_t j = i + 1; j < k; j++)
			if (top[j] > top[i]) {
				uint64_t t = top[i];

				top[i] = top[j];
				top[j] = t;
			}
	if (top[p->f] > p->seen_commit)
		p->seen_commit = top[p->f];
}

static void late_commit(
    struct pbft *p, uint32_t from, const struct pbft_vote *v);

static void
on_vote(struct pbft *p, uint32_t from, enum pbft_msg_type type,
    const struct pbft_vote *v)
{
	struct slot *s;

	if (type == PBFT_MSG_COMMIT && v->replica == from &&
	    v->view < p->view &&
	    !(p->cfg.test_flags & PBFT_TEST_BROKEN_STRANDED)) {
		late_commit(p, from, v);
		return;
	}

	if (type == PBFT_MSG_COMMIT && v->replica == from && from < p->n &&
	    v->view == p->view && !p->changing &&
	    v->seq > p->low + p->cfg.window &&
	    !(p->cfg.test_flags & PBFT_TEST_BROKEN_FAR))
		note_far_commit(p, from, v->seq);
	if (!check_vote_common(p, from, v->view, v->seq, v->replica))
		return;
	if (type == PBFT_MSG_PREPARE && from == pbft_primary(p, v->view))
		return; /* the primary's pre-prepare stands for its prepare */
	s = pbft_slot(p, v->seq);
	if (type == PBFT_MSG_PREPARE) {
		/* A replica's first vote in a view counts; later ones
		 * don't, and once the slot prepared no further prepare adds
		 * to it. The channel names the sender (make_vote). */
		if ((s->prep_seen >> from & 1) || s->prepared)
			return;
		s->prep_seen |= 1ULL << from;
		memcpy(s->prep_digest[from], v->digest, PBFT_DIGEST_LEN);
	} else {
		if (s->commit_seen >> from & 1)
			return;
		s->commit_seen |= 1ULL << from;
		memcpy(s->commit_digest[from], v->digest, PBFT_DIGEST_LEN);
		if (v->seq > p->seen_commit &&
		    count_commits(p, s, v->digest) >= p->f + 1)
			p->seen_commit = v->seq;
	}
	pbft_try_progress(p, s);
}

/* ---- batches fetched by digest ----------------------------------------- */

static void
send_fetch_digest(
    struct pbft *p, uint64_t seq, const uint8_t digest[PBFT_DIGEST_LEN])
{
	struct pbft_msg *m = pbft_new_msg(p);

	m->type = PBFT_MSG_FETCH_BATCH;
	m->u.fetch_batch.seq = seq;
	memcpy(m->u.fetch_batch.digest, digest, PBFT_DIGEST_LEN);
	m->u.fetch_batch.replica = p->id;
	pbft_broadcast(p, m);
}

void
pbft_send_fetch(struct pbft *p, struct slot *s)
{
	s->fetch_ticks = 0;
	send_fetch_digest(p, s->seq, s->digest);
}

/*
 * Whether a batch of len bytes may still go to replica to in this
 * retransmission period: fetch_bytes_max a period, at least one batch. A
 * correct replica asks for a missing batch once a period; a faulty one
 * asking again and again gets no more.
 */
static bool
fetch_budget_ok(struct pbft *p, uint32_t to, size_t len)
{
	if (p->fetch_at[to] == 0 ||
	    p->ticks + 1 - p->fetch_at[to] >= p->cfg.retransmit_ticks) {
		p->fetch_at[to] = p->ticks + 1;
		p->fetch_bytes[to] = 0;
	}
	if (p->fetch_bytes[to] > 0 &&
	    p->fetch_bytes[to] + len > p->cfg.fetch_bytes_max) {
		pbft_reject(p, PBFT_REJ_RATE_LIMITED);
		return false;
	}
	p->fetch_bytes[to] += len;
	return true;
}

/*
 * Whether this slot's body may go to replica to again: once a
 * retransmission period per replica, as often as a correct replica asks.
 */
static bool
fetch_once_ok(struct pbft *p, struct slot *s, uint32_t to)
{
	if (s->served_at == 0 ||
	    p->ticks + 1 - s->served_at >= p->cfg.retransmit_ticks) {
		s->served_at = p->ticks + 1;
		s->served = 0;
	}
	if (s->served & (1ULL << to)) {
		pbft_reject(p, PBFT_REJ_RATE_LIMITED);
		return false;
	}
	return true;
}

static void
on_fetch_batch(struct pbft *p, uint32_t from, const struct pbft_fetch_batch *f)
{
	struct slot *s;
	struct pbft_msg *m;

	if (f->replica != from) {
		pbft_reject(p, PBFT_REJ_BAD_SENDER);
		return;
	}
	if (f->seq <= p->low || f->seq > p->low + p->cfg.window)
		return;
	s = pbft_slot(p, f->seq);
	if (!s->body_known ||
	    memcmp(s->body_digest, f->digest, PBFT_DIGEST_LEN) != 0 ||
	    !fetch_once_ok(p, s, from) ||
	    !fetch_budget_ok(p, from, s->body_len))
		return;
	s->served |= 1ULL << from;
	m = pbft_new_msg(p);
	m->type = PBFT_MSG_BATCH;
	m->u.batch.seq = f->seq;
	memcpy(m->u.batch.digest, f->digest, PBFT_DIGEST_LEN);
	m->u.batch.replica = p->id;
	m->u.batch.batch = s->body;
	m->u.batch.batch_len = s->body_len;
	pbft_send(p, from, m);
}

static bool
late_body_matches(const struct slot *s)
{
	return s->body_known &&
	    memcmp(s->body_digest, s->late_cdigest, PBFT_DIGEST_LEN) == 0;
}

/* Whether the slot waits for the batch with this digest: its pre-prepare's,
 * or the one 2f+1 replicas committed in a view below ours (late_commit). */
static bool
batch_wanted(const struct slot *s, const uint8_t digest[PBFT_DIGEST_LEN])
{
	if (s->have_pp && !body_matches(s) &&
	    memcmp(s->digest, digest, PBFT_DIGEST_LEN) == 0)
		return true;
	return s->late_committed && !late_body_matches(s) &&
	    memcmp(s->late_cdigest, digest, PBFT_DIGEST_LEN) == 0;
}

static void
on_batch(struct pbft *p, const struct pbft_batch *b)
{
	uint8_t digest[PBFT_DIGEST_LEN];
	struct pbft_request reqs[PBFT_BATCH_REQS_MAX];
	uint32_t k;
	struct slot *s;

	if (b->seq <= p->low || b->seq > p->low + p->cfg.window)
		return;
	s = pbft_slot(p, b->seq);
	if (!batch_wanted(s, b->digest))
		return;
	p->c->digest(p->c->ctx, b->batch, b->batch_len, digest);
	if (memcmp(digest, b->digest, PBFT_DIGEST_LEN) != 0 ||
	    wire_decode_batch(b->batch, b->batch_len, reqs, PBFT_BATCH_REQS_MAX,
	        &k, NULL) != WIRE_OK) {
		pbft_reject(p, PBFT_REJ_BAD_DIGEST);
		return;
	}
	pbft_set_body(p, s, b->batch, b->batch_len, b->digest);
	pbft_try_progress(p, s);
	if (s->late_committed)
		pbft_try_execute(p);
}

/* ---- following a view we did not follow -------------------------------- */

/*
 * A replica whose VIEW-CHANGE the others did not follow (it was cut off
 * long enough for its view timer to fire, say) sits in a view above
 * theirs, changing, while they go on executing in their view. It takes
 * no part in their view: check_vote_common refuses their pre-prepares
 * and votes, and it votes in no view below one it sent a VIEW-CHANGE for.
 * But it may execute what they commit. A batch with 2f+1 matching COMMITs
 * for one view and seq, from distinct replicas, committed there: at least
 * f+1 correct replicas prepared it in that view, so any 2f+1 VIEW-CHANGEs
 * for a later view hold a P claim of it, and every later view assigns the
 * same digest to that seq (TOCS 4.5, the invariant that makes
 * committed-local imply committed). Executing it is therefore safe
 * whatever our own view, as installing a stable checkpoint proved by
 * 2f+1 CHECKPOINTs is. Each replica's latest such COMMIT is kept per
 * seq, so a faulty replica only ever moves its own entry; the batch body
 * comes with the pre-prepare we had, or by FETCH_BATCH, checked against
 * the digest. It follows their view so, without voting, until a view
 * change brings them up to ours (or our NEW-VIEW carries these seqs,
 * which by the same argument names the same digests).
 *
 * The COMMITs come as the others' votes do when they resend them: the
 * STATUS we send every period while changing and stuck says CHANGING to a
 * view above theirs, and answer_status answers it with their COMMITs
 * above our last executed (at most once a half period per replica).
 */
static void
late_certified(struct pbft *p, struct slot *s, const struct pbft_vote *v)
{
	s->late_committed = true;
	s->late_cview = v->view;
	memcpy(s->late_cdigest, v->digest, PBFT_DIGEST_LEN);
	if (pbft_digest_is_zero(v->digest) && !late_body_matches(s))
		pbft_set_body(p, s, NULL, 0, v->digest); /* null request */
	else if (!late_body_matches(s))
		send_fetch_digest(p, s->seq, v->digest);
	pbft_try_execute(p);
}

static void
late_commit(struct pbft *p, uint32_t from, const struct pbft_vote *v)
{
	struct slot *s;
	uint32_t k = 0;

	pbft_reject(p, PBFT_REJ_WRONG_VIEW); /* no vote in our view */
	if (v->seq <= p->last_exec || v->seq <= p->low ||
	    v->seq > p->low + p->cfg.window)
		return;
	s = pbft_slot(p, v->seq);
	if (s->late_committed ||
	    ((s->late_seen >> from & 1) && s->late_view[from] >= v->view))
		return;
	s->late_seen |= 1ULL << from;
	s->late_view[from] = v->view;
	memcpy(s->late_digest[from], v->digest, PBFT_DIGEST_LEN);
	for (uint32_t i = 0; i < p->n; i++)
		if ((s->late_seen >> i & 1) && s->late_view[i] == v->view &&
		    memcmp(s->late_digest[i], v->digest, PBFT_DIGEST_LEN) == 0)
			k++;
	/* Our own COMMIT, if we sent it in that view before we left it. */
	if (s->sent_commit && s->have_pp && s->pp_view == v->view &&
	    memcmp(s->digest, v->digest, PBFT_DIGEST_LEN) == 0)
		k++;
	if (k >= pbft_quorum(p))
		late_certified(p, s, v);
}

/*
 * While changing views, a pre-prepare of a view below ours, from its
 * primary: no vote, but its body, for a slot that has none, is what
 * late_commit will want if that view commits it (checked against the
 * digest 2f+1 COMMITs name before it executes). At most one body per seq
 * of the window, as pre-prepares of our view keep; a body that does not
 * match its digest costs one hash and is dropped.
 */
static void
late_body(struct pbft *p, uint32_t from, const struct pbft_preprepare *m)
{
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t k;
	struct slot *s;

	pbft_reject(p, PBFT_REJ_WRONG_VIEW);
	if (from != pbft_primary(p, m->view) || m->seq <= p->last_exec ||
	    m->seq <= p->low || m->seq > p->low + p->cfg.window ||
	    m->batch_len == 0)
		return;
	s = pbft_slot(p, m->seq);
	if (s->body_known)
		return;
	p->c->digest(p->c->ctx, m->batch, m->batch_len, digest);
	if (memcmp(digest, m->digest, PBFT_DIGEST_LEN) != 0 ||
	    wire_decode_batch(m->batch, m->batch_len, p->exec_reqs,
	        PBFT_BATCH_REQS_MAX, &k, NULL) != WIRE_OK)
		return;
	pbft_set_body(p, s, m->batch, m->batch_len, m->digest);
	if (s->late_committed)
		pbft_try_execute(p);
}

/* Asks again for the bodies of batches committed below our view. */
static void
late_refetch(struct pbft *p)
{
	for (uint64_t seq = p->last_exec + 1; seq <= p->low + p->cfg.window;
	     seq++) {
		struct slot *s = &p->slots[seq % p->cfg.window];

		if (s->seq == seq && s->late_committed && !late_body_matches(s))
			send_fetch_digest(p, seq, s->late_cdigest);
	}
}

/*
 * Our COMMITs of this view from seq on, to a replica in a view above ours
 * (late_commit). Votes only: it fetches a body it lacks by digest.
 */
static void
resend_commits(struct pbft *p, uint32_t to, uint64_t from_seq)
{
	if (from_seq <= p->low)
		from_seq = p->low + 1;
	for (uint64_t seq = from_seq; seq <= p->low + p->cfg.window; seq++) {
		struct slot *s = &p->slots[seq % p->cfg.window];

		if (s->seq == seq && s->have_pp && s->pp_view == p->view &&
		    s->sent_commit)
			pbft_send(p, to, make_vote(p, PBFT_MSG_COMMIT, s));
	}
}

/* ---- execution --------------------------------------------------------- */

static void
execute_slot(struct pbft *p, struct slot *s)
{
	struct pbft_action a = {.type = PBFT_ACT_EXECUTE};
	uint32_t k = 0;

	if (s->body_len > 0 &&
	    wire_decode_batch(s->body, s->body_len, p->exec_reqs,
	        PBFT_BATCH_REQS_MAX, &k, NULL) != WIRE_OK)
		abort(); /* checked when accepted */
	for (uint32_t i = 0; i < k; i++) {
		const struct pbft_request *r = &p->exec_reqs[i];

		/* Castro and Liskov 4.1: only newer timestamps execute. */
		p->exec_skip[i] = r->timestamp <= p->last_ts[r->client];
		if (p->exec_skip[i])
			continue;
		p->last_ts[r->client] = r->timestamp;
		if (p->pending[r->client].buf != NULL &&
		    p->pending[r->client].r.timestamp <= r->timestamp) {
			release(&p->pending[r->client]);
			p->npending--;
		}
		p->st.executed_reqs++;
	}
	s->executed = true;
	p->last_exec = s->seq;
	p->st.executed_batches++;
	a.seq = s->seq;
	a.view = p->view;
	if (!(s->committed && body_matches(s))) {
		a.view = s->late_cview; /* committed there (late_commit) */
		p->st.executed_late++;
	}
	a.reqs = p->exec_reqs;
	a.skip = p->exec_skip;
	a.nreqs = k;
	pbft_emit(p, &a);
	/* exec_reqs point into s->body, which lives until GC; but the next
	 * execution in this step reuses the arrays, so keep a copy. */
	if (k > 0) {
		p->out->v[p->out->n - 1].reqs =
		    (const struct pbft_request *)(void *)pbft_keep(
		        p, p->exec_reqs, k * sizeof(*p->exec_reqs));
		p->out->v[p->out->n - 1].skip = (const bool *)(void *)pbft_keep(
		    p, p->exec_skip, k * sizeof(bool));
	}
}

void
pbft_try_execute(struct pbft *p)
{
	struct slot *s;

	while (!p->waiting_state &&
	    (s = pbft_slot(p, p->last_exec + 1)) != NULL &&
	    ((s->committed && body_matches(s)) ||
	        (s->late_committed && late_body_matches(s)))) {
		execute_slot(p, s);
		if (s->seq % p->cfg.checkpoint_interval == 0)
			pbft_take_checkpoint(p, s->seq);
	}
	pbft_try_propose(p);
}

/* ---- ticks ------------------------------------------------------------- */

/* Batch bytes the primary resends per round: the rest waits a round. */
#define RETRANSMIT_BYTES_MAX (8u << 20)

/*
 * Our messages for the batches of this view from seq on, to one replica
 * (to == UINT32_MAX: to all): the primary's PRE-PREPAREs (at most
 * RETRANSMIT_BYTES_MAX of bodies), our PREPAREs and COMMITs.
 */
static void
resend_slots(struct pbft *p, uint32_t to, uint64_t from_seq)
{
	uint32_t primary = pbft_primary(p, p->view);
	size_t bodies = 0; /* batch bytes resent this round */

	if (from_seq <= p->low)
		from_seq = p->low + 1;
	for (uint64_t seq = from_seq; seq <= p->low + p->cfg.window; seq++) {
		struct slot *s = &p->slots[seq % p->cfg.window];
		struct pbft_msg *m;

		if (s->seq != seq || !s->have_pp || s->pp_view != p->view)
			continue;
		if (s->have_pp && !body_matches(s)) {
			pbft_send_fetch(p, s);
			continue;
		}
		if (p->id == primary && bodies < RETRANSMIT_BYTES_MAX) {
			bodies += s->body_len;
			m = pbft_new_msg(p);
			m->type = PBFT_MSG_PREPREPARE;
			m->u.preprepare =
			    (struct pbft_preprepare){.view = p->view,
			        .seq = seq,
			        .replica = p->id,
			        .batch = s->body,
			        .batch_len = s->body_len};
			memcpy(
			    m->u.preprepare.digest, s->digest, PBFT_DIGEST_LEN);
			send_or_broadcast(p, to, m);
		}
		if (s->sent_prepare) {
			m = pbft_new_msg(p);
			m->type = PBFT_MSG_PREPARE;
			m->u.prepare = (struct pbft_vote){
			    .view = p->view, .seq = seq, .replica = p->id};
			memcpy(m->u.prepare.digest, s->digest, PBFT_DIGEST_LEN);
			send_or_broadcast(p, to, m);
		}
		if (s->sent_commit) {
			m = pbft_new_msg(p);
			m->type = PBFT_MSG_COMMIT;
			m->u.commit = (struct pbft_vote){
			    .view = p->view, .seq = seq, .replica = p->id};
			memcpy(m->u.commit.digest, s->digest, PBFT_DIGEST_LEN);
			send_or_broadcast(p, to, m);
		}
	}
}

/*
 * The channel to replica `from` came up: after our start or its restart,
 * or after the link broke. What either side sent while it was down is
 * lost, so say where we are (STATUS: it answers with what we lack) and
 * resend our part of the window's batches, as a retransmission would a
 * period later. After a clean restart of every replica this is what lets
 * the batches their logs hold execute at once. At most once a half period
 * per replica, however often a peer reconnects.
 */
static void
on_peer_up(struct pbft *p, uint32_t from)
{
	if (from >= p->n || from == p->id)
		return;
	if (!pbft_answer_ok(p, &p->up_at[from]))
		return;
	send_status(p, from, 0);
	if (!p->changing)
		resend_slots(p, from, p->low + 1);
}

/*
 * No progress for a retransmission period: say where we are (STATUS, so
 * that replicas ahead of us resend what we missed) and resend our own part
 * of every batch in the window and of the newest checkpoint.
 */
static void
retransmit(struct pbft *p)
{
	if (p->changing) {
		/* pbft_view_tick resends the VIEW-CHANGE. Say where we are
		 * too: replicas that stayed in a lower view answer with what
		 * they committed there (late_commit). */
		if (!(p->cfg.test_flags & PBFT_TEST_BROKEN_STRANDED)) {
			send_status(p, UINT32_MAX, 0);
			late_refetch(p);
		}
		return;
	}
	send_status(p, UINT32_MAX, 0);
	resend_slots(p, UINT32_MAX, p->low + 1);
	pbft_resend_checkpoint(p);
}

/*
 * A replica that made no progress for a retransmission period says where
 * it is; we answer with what it lacks and we have, at most once every half
 * retransmission period per replica (on_status). Behind our stable
 * checkpoint: our part of its proof (it fetches the state). In an older
 * view, or still changing to ours: the NEW-VIEW of ours. In our view and
 * behind us: our messages for the batches after the last one it executed,
 * which it dropped as beyond its window while it was behind, or never
 * got; nobody resends those otherwise while the cluster makes progress
 * without it. Changing to a view above ours, which we did not follow: our
 * COMMITs above the last one it executed (late_commit).
 */
static void
answer_status(struct pbft *p, uint32_t from, const struct pbft_status_msg *st)
{
	if (st->low < p->low)
		pbft_tell_stable(p, from);
	if (p->changing)
		return;
	if (st->view > p->view) {
		/* Changing to a view we did not follow: what we committed. */
		if ((st->flags & PBFT_STATUS_CHANGING) &&
		    !(p->cfg.test_flags & PBFT_TEST_BROKEN_STRANDED))
			resend_commits(p, from, st->last_exec + 1);
		return;
	}
	if (st->view < p->view || (st->flags & PBFT_STATUS_CHANGING) != 0)
		pbft_send_new_view(p, from);
	else if (st->last_exec < p->last_exec)
		resend_slots(p, from, st->last_exec + 1);
}

static void
on_status(struct pbft *p, uint32_t from, const struct pbft_status_msg *st)
{
	if (st->replica != from) {
		pbft_reject(p, PBFT_REJ_BAD_SENDER);
		return;
	}
	p->steady_view1[from] =
	    (st->flags & PBFT_STATUS_CHANGING) ? 0 : st->view + 1;
	/* Mute in a view it has left since is still mute there. */
	if (st->flags & PBFT_STATUS_MUTED)
		p->muted_view1[from] = st->view + 1;
	else if (p->muted_view1[from] == st->view + 1 &&
	    !(st->flags & PBFT_STATUS_CHANGING))
		p->muted_view1[from] = 0;
	/* At most one answer every half period: a replica sends one STATUS
	 * a period (and one asking, while its view timer has expired). */
	if (!(p->cfg.test_flags & PBFT_TEST_BROKEN_STATUS) &&
	    pbft_answer_ok(p, &p->status_at[from]))
		answer_status(p, from, st);
	/* Asked: our own STATUS too, after what it lacks. */
	if ((st->flags & PBFT_STATUS_ASK) &&
	    p->asked_at[from] != p->ticks + 1) {
		p->asked_at[from] = p->ticks + 1; /* one a tick */
		send_status(p, from, 0);
	}
}

static void
on_tick(struct pbft *p)
{
	p->ticks++;
	/* Back from a crash: say at once when it is mute and when it stops
	 * being so, for the others to tell whether anybody can move the
	 * view (mute_stalls). */
	if (!p->changing &&
	    pbft_mute(p, p->last_exec + 1) != (p->mute_told == p->view + 1)) {
		p->mute_told = p->mute_told == p->view + 1 ? 0 : p->view + 1;
		send_status(p, UINT32_MAX, 0);
	}
	if (p->qlen > 0) {
		p->hold_ticks++;
		pbft_try_propose(p);
	}
	view_timer_tick(p);
	pbft_view_tick(p);
	if (++p->rt_ticks >= p->cfg.retransmit_ticks) {
		p->rt_ticks = 0;
		/* Only when stuck: neither the stable checkpoint nor execution
		 * moved. Under load a lagging replica catches up at the next
		 * checkpoint; resending a window of large batches to everyone
		 * would only fill the queues. */
		if (p->rt_low == p->low && p->rt_exec == p->last_exec)
			retransmit(p);
		p->rt_low = p->low;
		p->rt_exec = p->last_exec;
	}
}

/* ---- dispatch ---------------------------------------------------------- */

/* A view change or new view is kept as a frame: re-encoded, so that the
 * core owns the bytes. NULL if it breaks a bound. */
static const uint8_t *
own_frame(struct pbft *p, const struct pbft_msg *m, size_t *len)
{
	wbuf_reset(&p->enc);
	if (wire_encode(&p->enc, m) == -1)
		return NULL;
	*len = p->enc.len;
	return pbft_keep(p, p->enc.p, p->enc.len);
}

/* A protocol message from replica `from`, to its handler by type. */
static void
on_msg(struct pbft *p, uint32_t from, const struct pbft_msg *m)
{
	const uint8_t *frame;
	size_t len;

	if (from >= p->n || from == p->id) {
		pbft_reject(p, PBFT_REJ_BAD_SENDER);
		return;
	}
	p->heard_at[from] = p->ticks + 1;
	switch (m->type) {
	case PBFT_MSG_REQUEST:
		on_request(p, &m->u.request, from);
		break;
	case PBFT_MSG_PREPREPARE:
		on_preprepare(p, from, &m->u.preprepare);
		break;
	case PBFT_MSG_PREPARE:
		on_vote(p, from, PBFT_MSG_PREPARE, &m->u.prepare);
		break;
	case PBFT_MSG_COMMIT:
		on_vote(p, from, PBFT_MSG_COMMIT, &m->u.commit);
		break;
	case PBFT_MSG_CHECKPOINT:
		pbft_on_checkpoint(p, from, &m->u.checkpoint);
		break;
	case PBFT_MSG_VIEW_CHANGE:
		if ((frame = own_frame(p, m, &len)) != NULL)
			pbft_on_view_change(
			    p, from, frame, len, &m->u.view_change);
		break;
	case PBFT_MSG_NEW_VIEW:
		if ((frame = own_frame(p, m, &len)) != NULL)
			pbft_on_new_view(p, from, frame, len, &m->u.new_view);
		break;
	case PBFT_MSG_FETCH_BATCH:
		on_fetch_batch(p, from, &m->u.fetch_batch);
		break;
	case PBFT_MSG_BATCH:
		on_batch(p, &m->u.batch);
		break;
	case PBFT_MSG_STATUS:
		on_status(p, from, &m->u.status);
		break;
	default:
		pbft_reject(p, PBFT_REJ_BAD_SENDER);
		break;
	}
}

int
pbft_step(struct pbft *p, const struct pbft_event *ev, struct pbft_actions *out)
{
	for (size_t i = 0; i < p->nbufs; i++)
		free(p->bufs[i]);
	p->nbufs = 0;
	p->out = out;
	switch (ev->type) {
	case PBFT_EV_MSG:
		on_msg(p, ev->from, ev->msg);
		break;
	case PBFT_EV_REQUEST:
		if (ev->msg->type == PBFT_MSG_REQUEST)
			on_request(p, &ev->msg->u.request, UINT32_MAX);
		break;
	case PBFT_EV_TICK:
		on_tick(p);
		break;
	case PBFT_EV_STATE_DIGEST:
		pbft_on_state_digest(p, ev);
		break;
	case PBFT_EV_STATE_INSTALLED:
		pbft_on_state_installed(p, ev);
		break;
	case PBFT_EV_PEER_UP:
		on_peer_up(p, ev->from);
		break;
	}
	return 0;
}

/* ---- creation ---------------------------------------------------------- */

void
pbft_config_default(
    struct pbft_config *cfg, uint32_t n, uint32_t id, uint32_t clients)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->n = n;
	cfg->f = n > 0 ? (n - 1) / 3 : 0;
	cfg->id = id;
	cfg->clients = clients;
	cfg->checkpoint_interval = PBFT_DEFAULT_CHECKPOINT_INTERVAL;
	cfg->window = PBFT_DEFAULT_WINDOW;
	cfg->batch_reqs_max = PBFT_DEFAULT_BATCH_REQS;
	cfg->batch_bytes_max = PBFT_DEFAULT_BATCH_BYTES;
	cfg->inflight_max = PBFT_DEFAULT_INFLIGHT;
	cfg->queue_reqs_max = 65536;
	cfg->queue_bytes_max = PBFT_DEFAULT_QUEUE_BYTES;
	cfg->fetch_bytes_max = 4ULL * 1024 * 1024;
	cfg->batch_delay_ticks = 0;
	cfg->view_timeout_ticks = 1000;
	cfg->retransmit_ticks = 100;
}

static const char *
config_error(const struct pbft_config *c)
{
	if (c->n == 0 || c->n > PBFT_REPLICAS_MAX)
		return "n must be 1..64";
	if (c->n < 3 * c->f + 1)
		return "n must be at least 3f+1";
	if (c->id >= c->n)
		return "id must be below n";
	if (c->clients > PBFT_CLIENTS_MAX)
		return "too many clients";
	if (c->checkpoint_interval == 0 || c->window == 0 ||
	    c->window % c->checkpoint_interval != 0 ||
	    c->window > PBFT_WINDOW_MAX)
		return "window must be a multiple of checkpoint_interval";
	if (c->batch_reqs_max == 0 || c->batch_reqs_max > PBFT_BATCH_REQS_MAX ||
	    c->batch_bytes_max > PBFT_BATCH_BYTES_MAX)
		return "bad batch limits";
	if (c->inflight_max == 0 || c->queue_reqs_max == 0 ||
	    c->queue_bytes_max == 0)
		return "inflight_max and the queue limits must be positive";
	if (c->fetch_bytes_max == 0)
		return "fetch_bytes_max must be positive";
	if (c->view_timeout_ticks == 0 || c->retransmit_ticks == 0)
		return "timeouts must be positive";
	if (c->crypto == NULL)
		return "no crypto";
	return NULL;
}

static void
set_err(char *err, size_t errlen, const char *why)
{
	static const char prefix[] = "consensus core: ";
	size_t i = 0;

	if (err == NULL || errlen == 0)
		return;
	for (const char *q = prefix; *q && i + 1 < errlen; q++)
		err[i++] = *q;
	for (const char *q = why; *q && i + 1 < errlen; q++)
		err[i++] = *q;
	err[i] = '\0';
}

static void *
zalloc(size_t n, size_t size, bool *ok)
{
	void *v = calloc(n ? n : 1, size);

	if (v == NULL)
		*ok = false;
	return v;
}

struct pbft *
pbft_new(const struct pbft_config *cfg, char *err, size_t errlen)
{
	struct pbft *p;
	const char *why = config_error(cfg);
	bool ok = true;

	if (why != NULL) {
		set_err(err, errlen, why);
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto nomem;
	p->cfg = *cfg;
	p->c = cfg->crypto;
	p->rec_clean = true; /* no records yet: nothing was ever sent */
	p->bound_view = UINT64_MAX;
	p->n = cfg->n;
	p->f = cfg->f;
	p->id = cfg->id;
	p->next_seq = 1;
	p->vt_ticks = cfg->view_timeout_ticks;
	p->slots = zalloc(cfg->window, sizeof(*p->slots), &ok);
	for (uint64_t i = 0; ok && i < cfg->window; i++) {
		struct slot *s = &p->slots[i];

		s->prep_digest = zalloc(p->n, PBFT_DIGEST_LEN, &ok);
		s->commit_digest = zalloc(p->n, PBFT_DIGEST_LEN, &ok);
		s->late_view = zalloc(p->n, sizeof(uint64_t), &ok);
		s->late_digest = zalloc(p->n, PBFT_DIGEST_LEN, &ok);
	}
	p->low_proof = zalloc(p->n, sizeof(*p->low_proof), &ok);
	p->vc_frames = zalloc(p->n, sizeof(*p->vc_frames), &ok);
	p->vc_lens = zalloc(p->n, sizeof(*p->vc_lens), &ok);
	p->vc_views = zalloc(p->n, sizeof(*p->vc_views), &ok);
	p->seen_view = zalloc(p->n, sizeof(*p->seen_view), &ok);
	p->ckpts = zalloc((size_t)p->n * CKPT_RING, sizeof(*p->ckpts), &ok);
	p->last_ts = zalloc(cfg->clients, sizeof(uint64_t), &ok);
	p->queued_ts = zalloc(cfg->clients, sizeof(uint64_t), &ok);
	p->client_qbytes = zalloc(cfg->clients, sizeof(uint64_t), &ok);
	p->sig_seen =
	    zalloc((size_t)p->n * 2 * SIG_SEEN, sizeof(*p->sig_seen), &ok);
	p->sig_seen_next =
	    zalloc((size_t)p->n * 2, sizeof(*p->sig_seen_next), &ok);
	p->pending = zalloc(cfg->clients, sizeof(*p->pending), &ok);
	p->queue = zalloc(cfg->queue_reqs_max, sizeof(*p->queue), &ok);
	p->exec_reqs = zalloc(PBFT_BATCH_REQS_MAX, sizeof(*p->exec_reqs), &ok);
	p->exec_skip = zalloc(PBFT_BATCH_REQS_MAX, sizeof(bool), &ok);
	p->arena_len = wire_arena_bytes_for(PBFT_FRAME_BYTES_MAX);
	p->arena_mem = zalloc(1, p->arena_len, &ok);
	wbuf_init_dynamic(&p->sb, PBFT_FRAME_BYTES_MAX);
	wbuf_init_dynamic(&p->enc, PBFT_FRAME_BYTES_MAX + 16);
	wbuf_init_dynamic(&p->batch_auth, WIRE_BATCH_AUTH_BYTES_MAX);
	if (!ok)
		goto nomem;
	return p;
nomem:
	set_err(err, errlen, "out of memory");
	pbft_free(p);
	return NULL;
}

void
pbft_free(struct pbft *p)
{
	if (p == NULL)
		return;
	for (uint64_t i = 0; p->slots != NULL && i < p->cfg.window; i++) {
		free(p->slots[i].body);
		free(p->slots[i].prep_digest);
		free(p->slots[i].commit_digest);
		free(p->slots[i].late_view);
		free(p->slots[i].late_digest);
	}
	for (uint32_t i = 0; p->vc_frames != NULL && i < p->n; i++)
		free(p->vc_frames[i]);
	for (uint32_t i = 0; p->pending != NULL && i < p->cfg.clients; i++)
		free(p->pending[i].buf);
	for (uint32_t i = 0; p->queue != NULL && i < p->cfg.queue_reqs_max; i++)
		free(p->queue[i].buf);
	for (size_t i = 0; i < p->nbufs; i++)
		free(p->bufs[i]);
	free(p->bufs);
	free(p->slots);
	free(p->low_proof);
	free(p->vc_frames);
	free(p->vc_lens);
	free(p->vc_views);
	free(p->seen_view);
	free(p->my_vc);
	free(p->nv_frame);
	free(p->ckpts);
	free(p->last_ts);
	free(p->queued_ts);
	free(p->client_qbytes);
	free(p->sig_seen);
	free(p->sig_seen_next);
	free(p->pending);
	free(p->queue);
	free(p->exec_reqs);
	free(p->exec_skip);
	free(p->arena_mem);
	wbuf_clear(&p->sb);
	wbuf_clear(&p->enc);
	wbuf_clear(&p->batch_auth);
	free(p);
}

/* ---- recovery from persisted records ---------------------------------- */

static int
recover_pp(struct pbft *p, const struct pbft_preprepare *m)
{
	struct slot *s = pbft_slot(p, m->seq);

	if (s == NULL)
		return 0; /* below the stable checkpoint by now */
	if (!s->have_pp || s->pp_view != m->view ||
	    memcmp(s->digest, m->digest, PBFT_DIGEST_LEN) != 0) {
		pbft_slot_new_view(p, s);
		pbft_accept_pp(p, s, m->view, m->digest);
	}
	if (m->batch_len > 0)
		pbft_set_body(p, s, m->batch, m->batch_len, m->digest);
	if (m->replica == p->id && m->seq >= p->next_seq)
		p->next_seq = m->seq + 1;
	return 0;
}

static int
recover_vote(struct pbft *p, enum pbft_msg_type type, const struct pbft_vote *v)
{
	struct slot *s = pbft_slot(p, v->seq);

	if (s == NULL || !s->have_pp || s->pp_view != v->view)
		return 0;
	if (type == PBFT_MSG_PREPARE) {
		s->sent_prepare = true;
		s->prep_seen |= 1ULL << p->id;
		memcpy(s->prep_digest[p->id], v->digest, PBFT_DIGEST_LEN);
	} else {
		s->sent_commit = true;
		s->prepared = true;
		s->commit_seen |= 1ULL << p->id;
		memcpy(s->commit_digest[p->id], v->digest, PBFT_DIGEST_LEN);
	}
	return 0;
}

/*
 * REC_PREPARED (P) and REC_PREPREPARED (Q), and REC_CERT as written before
 * wire version 2 (its signatures are no longer needed: read as P).
 */
static int
recover_claim(struct pbft *p, uint8_t kind, struct rbuf *rb)
{
	uint64_t view, seq;
	uint32_t n, replica;
	struct slot *s;
	uint8_t digest[PBFT_DIGEST_LEN], sig[PBFT_SIG_LEN];

	if (rbuf_get_u64(rb, &view) == -1 || rbuf_get_u64(rb, &seq) == -1 ||
	    rbuf_get_bytes(rb, digest, PBFT_DIGEST_LEN) == -1)
		return -1;
	if (kind == REC_CERT) {
		if (rbuf_get_bytes(rb, sig, PBFT_SIG_LEN) == -1 ||
		    rbuf_get_u32(rb, &n) == -1 || n > p->n)
			return -1;
		for (uint32_t i = 0; i < n; i++)
			if (rbuf_get_u32(rb, &replica) == -1 ||
			    rbuf_get_bytes(rb, sig, PBFT_SIG_LEN) == -1)
				return -1;
		kind = REC_PREPARED;
	}
	if (rbuf_left(rb) != 0)
		return -1;
	if ((s = pbft_slot(p, seq)) == NULL)
		return 0;
	if (kind == REC_PREPREPARED) {
		pbft_note_pp(s, view, digest);
	} else if (!s->has_cert || view >= s->cert_view) {
		s->has_cert = true;
		s->cert_view = view;
		memcpy(s->cert_digest, digest, PBFT_DIGEST_LEN);
	}
	return 0;
}

static int
recover_view(struct pbft *p, struct rbuf *rb)
{
	uint64_t view;
	uint8_t changing;

	if (rbuf_get_u64(rb, &view) == -1 || rbuf_get_u8(rb, &changing) == -1)
		return -1;
	if (view != p->view)
		for (uint64_t i = 0; i < p->cfg.window; i++)
			pbft_slot_new_view(p, &p->slots[i]);
	p->view = view;
	p->changing = changing != 0;
	p->vc_ticks = p->cfg.view_timeout_ticks;
	return 0;
}

/* Mute in view up to seq, and in every view below it. */
static void
mute_up_to(struct pbft *p, uint64_t view, uint64_t seq)
{
	if (!p->muted || view > p->mute_view) {
		p->muted = true;
		p->mute_view = view;
		p->mute_seq = seq;
	} else if (view == p->mute_view && seq > p->mute_seq) {
		p->mute_seq = seq;
	}
}

/* REC_BOOT; the form without mute_seq predates the early-vote bound. */
static int
recover_boot(struct pbft *p, struct rbuf *rb)
{
	uint8_t muted;
	uint64_t view, seq = UINT64_MAX;
	bool bounded = rbuf_left(rb) > PBFT_BOOT_RECORD_V1_LEN - 1;

	if (rbuf_get_u8(rb, &muted) == -1 || rbuf_get_u64(rb, &view) == -1 ||
	    (bounded && rbuf_get_u64(rb, &seq) == -1) || rbuf_left(rb) != 0 ||
	    muted > 1)
		return -1;
	if (muted)
		mute_up_to(p, view, seq);
	p->rec_bounded = bounded;
	return 0;
}

static int
recover_bound(struct pbft *p, struct rbuf *rb)
{
	uint64_t view, seq;

	if (rbuf_get_u64(rb, &view) == -1 || rbuf_get_u64(rb, &seq) == -1 ||
	    rbuf_left(rb) != 0 || view == UINT64_MAX)
		return -1;
	if (p->bound_view == UINT64_MAX || view > p->bound_view ||
	    (view == p->bound_view && seq > p->bound_seq)) {
		p->bound_view = view;
		p->bound_seq = seq;
	}
	return 0;
}

static size_t
boot_record(const struct pbft *p, uint8_t rec[PBFT_BOOT_RECORD_LEN])
{
	struct wbuf wb;

	wbuf_init_fixed(&wb, rec, PBFT_BOOT_RECORD_LEN);
	wbuf_put_u8(&wb, REC_BOOT);
	wbuf_put_u8(&wb, p->muted ? 1 : 0);
	wbuf_put_u64(&wb, p->mute_view);
	wbuf_put_u64(&wb, p->mute_seq);
	return wb.len;
}

/*
 * The highest seq this replica may have sent an early vote for in view
 * and forgotten: its durable bound there (pbft_bound_early), none when it
 * bounded its votes and wrote no bound in that view, every seq when its
 * log predates the bound or lost frames to an upgrade.
 */
static uint64_t
forgotten_up_to(const struct pbft *p, uint64_t view)
{
	uint64_t seq = 0;

	if (p->cfg.test_flags & PBFT_TEST_BROKEN_BOUND) {
		/* Planted bug: trusts the votes the log remembers. */
		for (uint64_t i = 0; i < p->cfg.window; i++) {
			const struct slot *s = &p->slots[i];

			if (s->seq > seq && s->have_pp && s->pp_view == view &&
			    (s->sent_prepare || pbft_primary(p, view) == p->id))
				seq = s->seq;
		}
		return seq;
	}
	if (!p->rec_bounded || p->rec_old)
		return UINT64_MAX;
	return p->bound_view == view ? p->bound_seq : 0;
}

size_t
pbft_boot_record(struct pbft *p, uint8_t rec[PBFT_BOOT_RECORD_LEN])
{
	/* Early votes go out in a view only once its entry is durable (the
	 * barrier): a view still being changed to saw none of ours. */
	uint64_t last = p->changing && p->view > 0 ? p->view - 1 : p->view;

	if (!p->rec_clean || p->rec_old)
		mute_up_to(p, last, forgotten_up_to(p, last));
	p->rec_clean = p->rec_old = false;
	p->rec_bounded = true;
	return boot_record(p, rec);
}

size_t
pbft_clean_record(uint8_t rec[PBFT_CLEAN_RECORD_LEN])
{
	rec[0] = REC_CLEAN;
	return PBFT_CLEAN_RECORD_LEN;
}

static int
recover_frame(struct pbft *p, uint8_t kind, const uint8_t *f, size_t len)
{
	struct wire_arena a;
	struct pbft_msg m;
	enum wire_err e;

	if (kind == REC_VC) {
		pbft_recover_vc(p, f, len);
		return 0;
	}
	wire_arena_init(&a, p->arena_mem, p->arena_len);
	if ((e = wire_decode(f, len, &m, &a)) == WIRE_E_VERSION && len > 4 &&
	    f[4] < PBFT_WIRE_VERSION) {
		/* Written before an upgrade (wire version 1 signed votes and
		 * proved certificates): the frame is lost to us, as if a
		 * crash had taken it, so the replica starts muted. */
		p->rec_old = true;
		return 0;
	}
	if (e != WIRE_OK)
		return -1;
	switch (m.type) {
	case PBFT_MSG_PREPREPARE:
		return recover_pp(p, &m.u.preprepare);
	case PBFT_MSG_PREPARE:
	case PBFT_MSG_COMMIT:
		return recover_vote(p, m.type, &m.u.prepare);
	case PBFT_MSG_CHECKPOINT:
		for (int i = 0; i < OWN_CKPTS; i++)
			if (p->own[i].seq == 0 || i == OWN_CKPTS - 1) {
				p->own[i].seq = m.u.checkpoint.seq;
				p->own[i].have_digest = true;
				memcpy(p->own[i].digest, m.u.checkpoint.digest,
				    PBFT_DIGEST_LEN);
				memcpy(p->own[i].sig, m.u.checkpoint.sig,
				    PBFT_SIG_LEN);
				break;
			}
		return 0;
	default:
		return -1;
	}
}

int
pbft_recover(struct pbft *p, const uint8_t *record, size_t len)
{
	struct rbuf rb;
	uint8_t kind;

	rbuf_init(&rb, record, len);
	if (rbuf_get_u8(&rb, &kind) == -1)
		return -1;
	p->rec_clean = kind == REC_CLEAN;
	switch (kind) {
	case REC_CLEAN:
		return len == PBFT_CLEAN_RECORD_LEN ? 0 : -1;
	case REC_BOOT:
		return recover_boot(p, &rb);
	case REC_BOUND:
		return recover_bound(p, &rb);
	case REC_VIEW:
		return recover_view(p, &rb);
	case REC_STABLE:
		return pbft_recover_stable(p, &rb);
	case REC_CERT:
	case REC_PREPARED:
	case REC_PREPREPARED:
		return recover_claim(p, kind, &rb);
	case REC_PP:
	case REC_VOTE:
	case REC_CKPT:
	case REC_VC:
		return recover_frame(p, kind, record + 1, len - 1);
	default:
		return -1;
	}
}

/* ---- log compaction ---------------------------------------------------- */

struct compact {
	struct pbft *p;
	int (*emit)(void *arg, const uint8_t *rec, size_t len);
	void *arg;
	int rc;
};

static void
compact_msg(struct compact *c, uint8_t kind, const struct pbft_msg *m)
{
	struct wbuf *wb = &c->p->enc;

	if (c->rc != 0)
		return;
	wbuf_reset(wb);
	wbuf_put_u8(wb, kind);
	if (wire_encode(wb, m) == -1)
		abort();
	c->rc = c->emit(c->arg, wb->p, wb->len);
}

static void
compact_vote(struct compact *c, const struct slot *s, enum pbft_msg_type t)
{
	struct pbft_msg m = {.type = t};

	m.u.prepare = (struct pbft_vote){
	    .view = s->pp_view, .seq = s->seq, .replica = c->p->id};
	memcpy(m.u.prepare.digest, s->digest, PBFT_DIGEST_LEN);
	compact_msg(c, REC_VOTE, &m);
}

static void
compact_slot(struct compact *c, const struct slot *s)
{
	struct pbft *p = c->p;
	struct pbft_msg m = {.type = PBFT_MSG_PREPREPARE};
	struct wbuf *wb = &p->enc;

	for (uint32_t i = 0; i < s->nq && c->rc == 0; i++) {
		pbft_put_claim(
		    wb, REC_PREPREPARED, s->q[i].view, s->seq, s->q[i].digest);
		c->rc = c->emit(c->arg, wb->p, wb->len);
	}
	if (s->has_cert && c->rc == 0) {
		pbft_put_claim(
		    wb, REC_PREPARED, s->cert_view, s->seq, s->cert_digest);
		c->rc = c->emit(c->arg, wb->p, wb->len);
	}
	if (!s->have_pp)
		return;
	m.u.preprepare = (struct pbft_preprepare){.view = s->pp_view,
	    .seq = s->seq,
	    .replica = pbft_primary(p, s->pp_view)};
	memcpy(m.u.preprepare.digest, s->digest, PBFT_DIGEST_LEN);
	if (body_matches(s)) {
		m.u.preprepare.batch = s->body;
		m.u.preprepare.batch_len = s->body_len;
	}
	compact_msg(c, REC_PP, &m);
	if (s->sent_prepare)
		compact_vote(c, s, PBFT_MSG_PREPARE);
	if (s->sent_commit)
		compact_vote(c, s, PBFT_MSG_COMMIT);
}

int
pbft_compact(struct pbft *p,
    int (*emit)(void *arg, const uint8_t *rec, size_t len), void *arg)
{
	struct compact c = {.p = p, .emit = emit, .arg = arg};
	uint8_t rec[10];

	if (p->low > 0) {
		struct wbuf *wb = &p->enc;

		wbuf_reset(wb);
		wbuf_put_u8(wb, REC_STABLE);
		wbuf_put_u64(wb, p->low);
		wbuf_put_bytes(wb, p->low_digest, PBFT_DIGEST_LEN);
		wbuf_put_u32(wb, p->low_proof_n);
		for (uint32_t i = 0; i < p->low_proof_n; i++) {
			wbuf_put_u32(wb, p->low_proof[i].replica);
			wbuf_put_bytes(wb, p->low_proof[i].sig, PBFT_SIG_LEN);
		}
		c.rc = emit(arg, wb->p, wb->len);
	}
	rec[0] = REC_VIEW;
	for (int i = 0; i < 8; i++)
		rec[1 + i] = (uint8_t)(p->view >> (8 * i));
	rec[9] = p->changing ? 1 : 0;
	if (c.rc == 0)
		c.rc = emit(arg, rec, sizeof(rec));
	/* Always: it also says that this log bounds its early votes. */
	if (c.rc == 0) {
		uint8_t boot[PBFT_BOOT_RECORD_LEN];

		c.rc = emit(arg, boot, boot_record(p, boot));
	}
	if (p->bound_view != UINT64_MAX && c.rc == 0) {
		struct wbuf *wb = &p->enc;

		wbuf_reset(wb);
		wbuf_put_u8(wb, REC_BOUND);
		wbuf_put_u64(wb, p->bound_view);
		wbuf_put_u64(wb, p->bound_seq);
		c.rc = emit(arg, wb->p, wb->len);
	}
	for (uint64_t seq = p->low + 1; seq <= p->low + p->cfg.window; seq++) {
		const struct slot *s = &p->slots[seq % p->cfg.window];

		if (s->seq == seq)
			compact_slot(&c, s);
	}
	for (int i = 0; i < OWN_CKPTS; i++)
		if (p->own[i].have_digest && p->own[i].seq > p->low) {
			struct pbft_msg m = {.type = PBFT_MSG_CHECKPOINT};

			m.u.checkpoint.seq = p->own[i].seq;
			memcpy(m.u.checkpoint.digest, p->own[i].digest,
			    PBFT_DIGEST_LEN);
			m.u.checkpoint.replica = p->id;
			memcpy(m.u.checkpoint.sig, p->own[i].sig, PBFT_SIG_LEN);
			compact_msg(&c, REC_CKPT, &m);
		}
	if (p->changing && p->my_vc != NULL && c.rc == 0) {
		struct wbuf *wb = &p->enc;

		wbuf_reset(wb);
		wbuf_put_u8(wb, REC_VC);
		wbuf_put_bytes(wb, p->my_vc, p->my_vc_len);
		c.rc = emit(arg, wb->p, wb->len);
	}
	return c.rc;
}

/*
 * While we change views alone: the view below ours that f+1 replicas, one
 * of them correct at least, last said they work in (STATUS, not changing),
 * if any. Its COMMITs are what we execute meanwhile (late_commit), without
 * voting, until the next view change takes us along; status reports it so
 * that such a replica is not mistaken for one stuck in a view change.
 */
static bool
following_view(const struct pbft *p, uint64_t *view)
{
	if (!p->changing)
		return false;
	for (uint32_t i = 0; i < p->n; i++) {
		uint64_t v1 = p->steady_view1[i];
		uint32_t k = 0;

		if (i == p->id || v1 == 0 || v1 > p->view)
			continue;
		for (uint32_t j = 0; j < p->n; j++)
			k += j != p->id && p->steady_view1[j] == v1;
		if (k >= p->f + 1) {
			*view = v1 - 1;
			return true;
		}
	}
	return false;
}

void
pbft_get_status(const struct pbft *p, struct pbft_status *st)
{
	*st = p->st;
	st->view = p->view;
	st->primary = pbft_primary(p, p->view);
	st->view_changing = p->changing;
	st->last_executed = p->last_exec;
	st->stable_checkpoint = p->low;
	st->low_mark = p->low;
	st->high_mark = p->low + p->cfg.window;
	st->next_seq = p->next_seq;
	st->queued_reqs = p->qlen;
	st->queued_bytes = p->qbytes;
	st->pending_reqs = p->npending;
	st->view_timer_running = p->vt_running;
	/* Mute for the next seq to execute: it cannot help agree on it. */
	st->muted = pbft_mute(p, p->last_exec + 1);
	st->mute_seq = st->muted ? p->mute_seq : 0;
	st->following_view = 0;
	st->following = following_view(p, &st->following_view);
	memcpy(st->stable_digest, p->low_digest, PBFT_DIGEST_LEN);
}
