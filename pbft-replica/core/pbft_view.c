/*
 * pbft_view.c - view changes: VIEW-CHANGE with the stable checkpoint's proof
 * and the P and Q claims above it, NEW-VIEW with the O set that the new
 * primary decides by counting claims (Castro and Liskov, TOCS 2002, section
 * 4.5) and every backup recomputes, the doubling timeout, and joining a
 * higher view on f+1 VIEW-CHANGE messages (OSDI '99 section 4.4).
 *
 * Pre-prepares and prepares are not signed (the channel names their
 * sender), so a VIEW-CHANGE cannot prove what prepared; it claims it, and
 * the whole message is signed. Safety comes from counting: a request that
 * committed in view v prepared at f+1 correct replicas, so any 2f+1
 * VIEW-CHANGEs hold a correct claim of it (P, view >= v); a different
 * digest could win only with a P claim in a later view that f+1 replicas,
 * one of them correct, claim to have pre-prepared (Q) in that view or later,
 * which no correct replica does once every NEW-VIEW after v carries the
 * request.
 *
 * VIEW-CHANGE and NEW-VIEW carry nested arrays, so the core keeps them as
 * encoded frames and decodes them again when it needs them.
 */
#include <stdlib.h>
#include <string.h>

#include "pbft_int.h"

/* One entry of O: the pre-prepare the new view assigns to a seq. */
struct o_entry {
	bool has;
	uint64_t view; /* view of the certificate it came from */
	uint8_t digest[PBFT_DIGEST_LEN];
};

/* Decodes a kept frame into memory that lives until the next step. */
static int
decode_kept(
    struct pbft *p, const uint8_t *frame, size_t len, struct pbft_msg *m)
{
	size_t alen = wire_arena_bytes_for(len);
	struct wire_arena a;

	wire_arena_init(&a, pbft_keep(p, NULL, alen), alen);
	return wire_decode(frame, len, m, &a) == WIRE_OK ? 0 : -1;
}

static uint8_t *
copy_bytes(const uint8_t *src, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	if (b == NULL)
		abort();
	memcpy(b, src, len);
	return b;
}

/* ---- validation -------------------------------------------------------- */

static bool
entry_ok(struct pbft *p, const struct pbft_view_change *vc,
    const struct pbft_vc_entry *e)
{
	return e->seq > vc->stable_seq &&
	    e->seq <= vc->stable_seq + p->cfg.window && e->view < vc->view;
}

/*
 * Checks a VIEW-CHANGE: signature, checkpoint proof, and the shape of its
 * claims (P: one per seq, increasing; Q: grouped by increasing seq, at most
 * PBFT_Q_PER_SEQ distinct digests per seq). What the claims say cannot be
 * checked; the O rules count them.
 */
static bool
vc_ok(struct pbft *p, const struct pbft_view_change *vc)
{
	struct pbft_msg m = {.type = PBFT_MSG_VIEW_CHANGE};
	uint32_t run = 0;

	if (vc->replica >= p->n)
		return false;
	m.u.view_change = *vc;
	wbuf_reset(&p->sb);
	if (wire_signed_bytes(&p->sb, &m) == -1 ||
	    !pbft_verify_sig(p, vc->replica, vc->sig))
		return false;
	if (!pbft_check_ckpt_proof(
	        p, vc->stable_seq, vc->stable_digest, vc->ckpt, vc->nckpt))
		return false;
	for (uint32_t i = 0; i < vc->nprepared; i++)
		if (!entry_ok(p, vc, &vc->prepared[i]) ||
		    (i > 0 && vc->prepared[i].seq <= vc->prepared[i - 1].seq))
			return false;
	for (uint32_t i = 0; i < vc->npreprepared; i++) {
		const struct pbft_vc_entry *e = &vc->preprepared[i];

		if (!entry_ok(p, vc, e))
			return false;
		if (i == 0 || e->seq != e[-1].seq) {
			if (i > 0 && e->seq < e[-1].seq)
				return false;
			run = 0;
		}
		for (uint32_t j = 1; j <= run; j++)
			if (memcmp(e[-(int)j].digest, e->digest,
			        PBFT_DIGEST_LEN) == 0)
				return false;
		if (++run > PBFT_Q_PER_SEQ)
			return false;
	}
	return true;
}

/* Where each VIEW-CHANGE's claims for the current seq start. */
struct cursor {
	uint32_t p, q;
};

/* The P claim of vc for seq, or NULL; moves the cursor past lower seqs. */
static const struct pbft_vc_entry *
p_claim(const struct pbft_view_change *vc, struct cursor *c, uint64_t seq)
{
	while (c->p < vc->nprepared && vc->prepared[c->p].seq < seq)
		c->p++;
	return c->p < vc->nprepared && vc->prepared[c->p].seq == seq
	    ? &vc->prepared[c->p]
	    : NULL;
}

/* Whether vc claims to have pre-prepared digest at seq in view >= v. */
static bool
q_claims(const struct pbft_view_change *vc, struct cursor *c, uint64_t seq,
    const uint8_t *digest, uint64_t v)
{
	while (c->q < vc->npreprepared && vc->preprepared[c->q].seq < seq)
		c->q++;
	for (uint32_t i = c->q;
	     i < vc->npreprepared && vc->preprepared[i].seq == seq; i++)
		if (vc->preprepared[i].view >= v &&
		    memcmp(vc->preprepared[i].digest, digest,
		        PBFT_DIGEST_LEN) == 0)
			return true;
	return false;
}

/*
 * TOCS 4.5's decision for one seq over the VIEW-CHANGEs vcs. A claim (v, d)
 * from P is chosen when 2f+1 messages claim nothing for seq that
 * contradicts it (no P claim, one in an earlier view, or (v, d) itself:
 * A1) and f+1 claim to have pre-prepared d in v or later (A2); of several,
 * the one of the highest view, then the lowest digest, so that every
 * backup recomputes the same O. Otherwise a null request when 2f+1 claim
 * nothing prepared (B). Returns 1 with *out set, 0 for null, -1 when
 * undecided (the new primary waits for more VIEW-CHANGEs).
 */
static int
decide(struct pbft *p, const struct pbft_view_change *vcs, uint32_t nvc,
    struct cursor *cur, uint64_t seq, struct o_entry *out)
{
	uint32_t none = 0;
	uint32_t need_q =
	    (p->cfg.test_flags & PBFT_TEST_BROKEN_CLAIMS) ? 1 : p->f + 1;
	bool have = false;

	for (uint32_t i = 0; i < nvc; i++) {
		const struct pbft_vc_entry *c = p_claim(&vcs[i], &cur[i], seq);
		uint32_t a1 = 0, a2 = 0;

		if (c == NULL) {
			none++;
			continue;
		}
		if (have &&
		    (c->view < out->view ||
		        (c->view == out->view &&
		            memcmp(c->digest, out->digest, PBFT_DIGEST_LEN) >=
		                0)))
			continue; /* no better than the one chosen */
		for (uint32_t j = 0; j < nvc; j++) {
			const struct pbft_vc_entry *o =
			    p_claim(&vcs[j], &cur[j], seq);

			if (o == NULL || o->view < c->view ||
			    (o->view == c->view &&
			        memcmp(o->digest, c->digest, PBFT_DIGEST_LEN) ==
			            0))
				a1++;
			if (q_claims(&vcs[j], &cur[j], seq, c->digest, c->view))
				a2++;
		}
		if (a1 >= pbft_quorum(p) && a2 >= need_q) {
			have = true;
			out->view = c->view;
			memcpy(out->digest, c->digest, PBFT_DIGEST_LEN);
		}
	}
	if (have)
		return 1;
	return none >= pbft_quorum(p) ? 0 : -1;
}

/*
 * min-s is the latest stable checkpoint in V, max-s the highest seq with a
 * P claim; O gets an entry for each seq between (decide). Returns the
 * number of entries (max-s - min-s), or -1 when some seq is undecided, and
 * the index of the view change holding the min-s proof.
 */
static int64_t
compute_o(struct pbft *p, const struct pbft_view_change *vcs, uint32_t nvc,
    uint64_t *min_s, uint32_t *proof_from, struct o_entry *o)
{
	struct cursor *cur =
	    (struct cursor *)(void *)pbft_keep(p, NULL, nvc * sizeof(*cur));
	uint64_t max_s;

	*min_s = 0;
	*proof_from = 0;
	for (uint32_t i = 0; i < nvc; i++)
		if (vcs[i].stable_seq > *min_s) {
			*min_s = vcs[i].stable_seq;
			*proof_from = i;
		}
	max_s = *min_s;
	for (uint32_t i = 0; i < nvc; i++)
		for (uint32_t j = 0; j < vcs[i].nprepared; j++) {
			uint64_t seq = vcs[i].prepared[j].seq;

			if (seq > max_s && seq <= *min_s + p->cfg.window)
				max_s = seq;
		}
	memset(cur, 0, nvc * sizeof(*cur));
	memset(o, 0, p->cfg.window * sizeof(*o));
	for (uint64_t seq = *min_s + 1; seq <= max_s; seq++) {
		struct o_entry *e = &o[seq - *min_s - 1];
		int r = decide(p, vcs, nvc, cur, seq, e);

		if (r == -1)
			return -1;
		e->has = r == 1;
	}
	return (int64_t)(max_s - *min_s);
}

/* ---- starting a view change ------------------------------------------- */

/* Requests a backup or stepping-down primary held move to pending. */
static void
queue_to_pending(struct pbft *p)
{
	while (p->qlen > 0) {
		struct held_req *h = &p->queue[p->qhead];
		struct held_req *pd = &p->pending[h->r.client];

		if (pd->r.timestamp < h->r.timestamp) {
			if (pd->buf == NULL)
				p->npending++;
			free(pd->buf);
			*pd = *h;
			pd->at = p->ticks;
		} else {
			free(h->buf);
		}
		memset(h, 0, sizeof(*h));
		p->qhead = (p->qhead + 1) % p->cfg.queue_reqs_max;
		p->qlen--;
	}
	p->qbytes = 0;
	memset(p->client_qbytes, 0, p->cfg.clients * sizeof(uint64_t));
	memcpy(p->queued_ts, p->last_ts, p->cfg.clients * sizeof(uint64_t));
}

static void
persist_view(struct pbft *p)
{
	uint8_t rec[10];

	rec[0] = REC_VIEW;
	for (int i = 0; i < 8; i++)
		rec[1 + i] = (uint8_t)(p->view >> (8 * i));
	rec[9] = p->changing ? 1 : 0;
	pbft_persist_barrier(p, rec, sizeof(rec));
}

static void
store_vc(struct pbft *p, uint32_t from, uint64_t view, const uint8_t *frame,
    size_t len)
{
	free(p->vc_frames[from]);
	p->vc_frames[from] = copy_bytes(frame, len);
	p->vc_lens[from] = len;
	p->vc_views[from] = view;
}

static struct pbft_msg *
build_vc(struct pbft *p, uint64_t view)
{
	struct pbft_msg *m = pbft_new_msg(p);
	struct pbft_view_change *vc = &m->u.view_change;
	struct pbft_vc_entry *pe, *qe;
	uint32_t np = 0, nq = 0;

	pe = (struct pbft_vc_entry *)(void *)pbft_keep(
	    p, NULL, p->cfg.window * sizeof(*pe));
	qe = (struct pbft_vc_entry *)(void *)pbft_keep(
	    p, NULL, p->cfg.window * PBFT_Q_PER_SEQ * sizeof(*qe));
	for (uint64_t seq = p->low + 1; seq <= p->low + p->cfg.window; seq++) {
		struct slot *s = &p->slots[seq % p->cfg.window];

		if (s->seq != seq)
			continue;
		if (s->has_cert) {
			pe[np] = (struct pbft_vc_entry){
			    .view = s->cert_view, .seq = seq};
			memcpy(
			    pe[np++].digest, s->cert_digest, PBFT_DIGEST_LEN);
		}
		for (uint32_t i = 0; i < s->nq; i++) {
			qe[nq] = (struct pbft_vc_entry){
			    .view = s->q[i].view, .seq = seq};
			memcpy(
			    qe[nq++].digest, s->q[i].digest, PBFT_DIGEST_LEN);
		}
	}
	m->type = PBFT_MSG_VIEW_CHANGE;
	vc->view = view;
	vc->stable_seq = p->low;
	memcpy(vc->stable_digest, p->low_digest, PBFT_DIGEST_LEN);
	vc->nckpt = p->low_proof_n;
	vc->ckpt = p->low_proof;
	vc->nprepared = np;
	vc->prepared = pe;
	vc->npreprepared = nq;
	vc->preprepared = qe;
	vc->replica = p->id;
	wbuf_reset(&p->sb);
	wire_signed_bytes(&p->sb, m);
	p->c->sign(p->c->ctx, p->sb.p, p->sb.len, vc->sig);
	return m;
}

static void try_new_view(struct pbft *p);

/*
 * Our VIEW-CHANGE for the view we are changing to, from what we hold now:
 * kept (resent by pbft_view_tick), persisted, sent to all.
 */
static void
send_own_vc(struct pbft *p)
{
	struct pbft_msg *m = build_vc(p, p->view);

	wbuf_reset(&p->enc);
	if (wire_encode(&p->enc, m) == -1)
		abort();
	free(p->my_vc);
	p->my_vc = copy_bytes(p->enc.p, p->enc.len);
	p->my_vc_len = p->enc.len;
	store_vc(p, p->id, p->view, p->enc.p, p->enc.len);
	pbft_persist_msg(p, REC_VC, m);
	pbft_broadcast(p, m);
}

void
pbft_start_view_change(struct pbft *p, uint64_t view)
{
	if (view <= p->view && (p->changing || view < p->view))
		return;
	if (p->changing)
		p->vc_attempt++;
	else
		p->vc_attempt = 0;
	p->view = view;
	p->changing = true;
	/* What the others said before is no sign of where they work now
	 * (pbft_get_status's following): only STATUS from here on. */
	memset(p->steady_view1, 0, sizeof(p->steady_view1));
	p->vc_ticks = p->cfg.view_timeout_ticks
	    << (p->vc_attempt < 10 ? p->vc_attempt : 10);
	pbft_view_timer_stop(p);
	queue_to_pending(p);
	persist_view(p);
	send_own_vc(p);
	try_new_view(p);
}

/* ---- entering a view --------------------------------------------------- */

static void
requests_to_new_primary(struct pbft *p)
{
	uint32_t primary = pbft_primary(p, p->view);

	for (uint32_t c = 0; c < p->cfg.clients && p->npending > 0; c++) {
		struct held_req *h = &p->pending[c];

		if (h->buf == NULL)
			continue;
		if (h->r.timestamp <= p->last_ts[c]) {
			free(h->buf);
			memset(h, 0, sizeof(*h));
			p->npending--;
			continue;
		}
		if (primary == p->id) {
			pbft_enqueue(p, &h->r);
			free(h->buf);
			memset(h, 0, sizeof(*h));
			p->npending--;
		} else {
			struct pbft_msg *m = pbft_new_msg(p);

			m->type = PBFT_MSG_REQUEST;
			m->u.request = h->r;
			pbft_send(p, primary, m);
		}
	}
}

static void
adopt_o_entry(struct pbft *p, uint64_t seq, const uint8_t *digest)
{
	struct slot *s = pbft_slot(p, seq);
	struct pbft_msg pm = {.type = PBFT_MSG_PREPREPARE};

	if (s == NULL)
		return;
	pbft_accept_pp(p, s, p->view, digest);
	pm.u.preprepare = (struct pbft_preprepare){
	    .view = p->view, .seq = seq, .replica = pbft_primary(p, p->view)};
	memcpy(pm.u.preprepare.digest, digest, PBFT_DIGEST_LEN);
	if (s->body_known &&
	    memcmp(s->body_digest, digest, PBFT_DIGEST_LEN) == 0) {
		pm.u.preprepare.batch = s->body;
		pm.u.preprepare.batch_len = s->body_len;
	}
	pbft_persist_msg(p, REC_PP, &pm);
	if (!s->body_known ||
	    memcmp(s->body_digest, digest, PBFT_DIGEST_LEN) != 0)
		pbft_send_fetch(p, s);
	pbft_try_progress(p, s);
}

/*
 * Installs view nv->view from a checked NEW-VIEW: the stable checkpoint
 * min-s (fetching state if we are behind it) and the pre-prepares of O.
 */
static void
enter_view(struct pbft *p, const struct pbft_new_view *nv, const uint8_t *frame,
    size_t len, uint64_t min_s, uint32_t proof_from)
{
	const struct pbft_view_change *pv = &nv->vcs[proof_from];
	struct pbft_action a = {.type = PBFT_ACT_VIEW, .view = nv->view};
	uint64_t max_s = min_s;

	p->view = nv->view;
	p->changing = false;
	p->vc_attempt = 0;
	free(p->nv_frame);
	p->nv_frame = copy_bytes(frame, len);
	p->nv_len = len;
	persist_view(p);
	for (uint64_t i = 0; i < p->cfg.window; i++)
		pbft_slot_new_view(p, &p->slots[i]);
	if (min_s > p->low)
		pbft_make_stable(
		    p, min_s, pv->stable_digest, pv->ckpt, pv->nckpt);
	for (uint32_t i = 0; i < nv->npp; i++) {
		adopt_o_entry(p, nv->pps[i].seq, nv->pps[i].digest);
		if (nv->pps[i].seq > max_s)
			max_s = nv->pps[i].seq;
	}
	p->next_seq = max_s + 1;
	if (p->next_seq <= p->last_exec)
		p->next_seq = p->last_exec + 1;
	p->st.view_changes++;
	pbft_emit(p, &a);
	requests_to_new_primary(p);
	pbft_try_execute(p);
}

/* Collects what a NEW-VIEW needs; false if the quorum is not there. */
static bool
gather_vcs(
    struct pbft *p, uint64_t view, struct pbft_view_change *vcs, uint32_t *nvc)
{
	struct pbft_msg m;

	*nvc = 0;
	for (uint32_t i = 0; i < p->n; i++) {
		if (p->vc_frames[i] == NULL || p->vc_views[i] != view)
			continue;
		if (decode_kept(p, p->vc_frames[i], p->vc_lens[i], &m) == -1)
			continue;
		vcs[(*nvc)++] = m.u.view_change;
	}
	return *nvc >= pbft_quorum(p);
}

/*
 * The new primary: 2f+1 VIEW-CHANGEs (its own included) or more -> NEW-VIEW,
 * once they decide every seq of O (each later one may).
 */
static void
try_new_view(struct pbft *p)
{
	struct pbft_view_change *vcs;
	struct o_entry *o;
	struct pbft_nv_preprepare *pps;
	struct pbft_msg *m;
	uint64_t min_s;
	int64_t count;
	uint32_t nvc, proof_from, k = 0;

	if (!p->changing || pbft_primary(p, p->view) != p->id)
		return;
	vcs = (struct pbft_view_change *)(void *)pbft_keep(
	    p, NULL, p->n * sizeof(*vcs));
	if (!gather_vcs(p, p->view, vcs, &nvc))
		return;
	o = (struct o_entry *)(void *)pbft_keep(
	    p, NULL, p->cfg.window * sizeof(*o));
	if ((count = compute_o(p, vcs, nvc, &min_s, &proof_from, o)) == -1)
		return;
	pps = (struct pbft_nv_preprepare *)(void *)pbft_keep(
	    p, NULL, (count ? (size_t)count : 1) * sizeof(*pps));
	for (int64_t i = 0; i < count; i++, k++) {
		pps[k].seq = min_s + 1 + (uint64_t)i;
		if (o[i].has)
			memcpy(pps[k].digest, o[i].digest, PBFT_DIGEST_LEN);
		else
			memset(pps[k].digest, 0, PBFT_DIGEST_LEN);
	}
	m = pbft_new_msg(p);
	m->type = PBFT_MSG_NEW_VIEW;
	m->u.new_view = (struct pbft_new_view){.view = p->view,
	    .nvc = nvc,
	    .vcs = vcs,
	    .npp = k,
	    .pps = pps,
	    .replica = p->id};
	wbuf_reset(&p->sb);
	wire_signed_bytes(&p->sb, m);
	p->c->sign(p->c->ctx, p->sb.p, p->sb.len, m->u.new_view.sig);
	wbuf_reset(&p->enc);
	if (wire_encode(&p->enc, m) == -1)
		abort();
	pbft_broadcast(p, m);
	{
		uint8_t *frame = pbft_keep(p, p->enc.p, p->enc.len);

		enter_view(
		    p, &m->u.new_view, frame, p->enc.len, min_s, proof_from);
	}
}

/* ---- receiving --------------------------------------------------------- */

void
pbft_send_new_view(struct pbft *p, uint32_t to)
{
	struct pbft_msg *m = pbft_new_msg(p);

	if (p->nv_frame == NULL ||
	    decode_kept(p, p->nv_frame, p->nv_len, m) == -1)
		return;
	pbft_send(p, to, m);
}

/* f+1 replicas ask for views above ours: join the smallest (OSDI 4.4). */
static void
maybe_join(struct pbft *p)
{
	uint64_t target = UINT64_MAX;
	uint32_t k = 0;

	for (uint32_t i = 0; i < p->n; i++)
		if (i != p->id && p->vc_frames[i] != NULL &&
		    p->vc_views[i] > p->view) {
			k++;
			if (p->vc_views[i] < target)
				target = p->vc_views[i];
		}
	if (k >= p->f + 1 && target != UINT64_MAX)
		pbft_start_view_change(p, target);
}

/*
 * A VIEW-CHANGE for the view we are in: its sender missed the NEW-VIEW, and
 * likely the stable checkpoints since. The NEW-VIEW is large, so the
 * question must be a real one (checked) and is answered at most once every
 * half retransmission period, as a correct replica asks once a period.
 */
/*
 * Whether from's VIEW-CHANGE may be verified now (at most once a half
 * period, *at keeping when) and verifies; one that does not closes its
 * sender's channel.
 */
static bool
vc_checked(struct pbft *p, uint32_t from, const struct pbft_view_change *vc,
    uint64_t *at)
{
	if (!pbft_answer_ok(p, at)) {
		pbft_reject(p, PBFT_REJ_RATE_LIMITED);
		return false;
	}
	if (!vc_ok(p, vc)) {
		pbft_reject(p, PBFT_REJ_BAD_CERT);
		pbft_disconnect(p, from);
		return false;
	}
	return true;
}

static void
answer_late_vc(struct pbft *p, uint32_t from, const struct pbft_view_change *vc)
{
	if (!vc_checked(p, from, vc, &p->nv_at[from]))
		return;
	pbft_send_new_view(p, from);
	pbft_tell_stable(p, from);
}

/*
 * TOCS 4.5.2: a VIEW-CHANGE. One per sender is kept, the highest view, and
 * one no newer than what the sender already proved is dropped unverified,
 * as is a newer one within half a period of the last one verified;
 * verifying a newer one costs its own signature, its checkpoint proof
 * being known already in the common case (pbft_check_ckpt_proof). One
 * that does not verify closes its sender's channel.
 */
void
pbft_on_view_change(struct pbft *p, uint32_t from, const uint8_t *frame,
    size_t len, const struct pbft_view_change *vc)
{
	if (vc->replica != from) {
		pbft_reject(p, PBFT_REJ_BAD_SENDER);
		return;
	}
	if (vc->view == p->view && !p->changing) {
		answer_late_vc(p, from, vc);
		return;
	}
	if (vc->view < p->view || vc->view <= p->vc_views[from])
		return; /* stale or already known */
	/* A correct replica moves to a higher view once its view timer
	 * expires (at least a period) or it joins f+1 others; it resends its
	 * VIEW-CHANGE every period. So one verified a half period per sender
	 * delays a correct one by a period at most, and bounds what one that
	 * climbs views as fast as it can send costs us. */
	if (!vc_checked(p, from, vc, &p->vc_at[from]))
		return;
	store_vc(p, from, vc->view, frame, len);
	maybe_join(p);
	if (p->changing && vc->view == p->view)
		try_new_view(p);
}

static bool
o_matches(struct pbft *p, const struct pbft_new_view *nv)
{
	struct o_entry *o = (struct o_entry *)(void *)pbft_keep(
	    p, NULL, p->cfg.window * sizeof(*o));
	uint64_t min_s;
	uint32_t proof_from;
	int64_t count = compute_o(p, nv->vcs, nv->nvc, &min_s, &proof_from, o);

	if (count == -1 || nv->npp != (uint64_t)count)
		return false;
	for (uint32_t i = 0; i < nv->npp; i++) {
		const uint8_t *want = o[i].has ? o[i].digest : NULL;

		if (nv->pps[i].seq != min_s + 1 + i)
			return false;
		if (want == NULL
		        ? !pbft_digest_is_zero(nv->pps[i].digest)
		        : memcmp(want, nv->pps[i].digest, PBFT_DIGEST_LEN) != 0)
			return false;
	}
	return true;
}

/*
 * The shape of a NEW-VIEW, before any signature: 2f+1 VIEW-CHANGEs or more
 * for its view from distinct replicas, and O inside the window above the
 * highest stable checkpoint among them (written to min_s, and the index of
 * the VIEW-CHANGE with it to proof_from).
 */
static enum pbft_reject
nv_shape(struct pbft *p, const struct pbft_new_view *nv, uint64_t *min_s,
    uint32_t *proof_from)
{
	uint64_t seen = 0;

	*min_s = 0;
	*proof_from = 0;
	if (nv->nvc < pbft_quorum(p))
		return PBFT_REJ_BAD_NEW_VIEW;
	for (uint32_t i = 0; i < nv->nvc; i++) {
		const struct pbft_view_change *vc = &nv->vcs[i];

		if (vc->view != nv->view || vc->replica >= p->n ||
		    (seen >> vc->replica & 1))
			return PBFT_REJ_BAD_CERT;
		seen |= 1ULL << vc->replica;
		if (vc->stable_seq > *min_s) {
			*min_s = vc->stable_seq;
			*proof_from = i;
		}
	}
	for (uint32_t i = 0; i < nv->npp; i++)
		if (nv->pps[i].seq <= *min_s ||
		    nv->pps[i].seq > *min_s + p->cfg.window)
			return PBFT_REJ_BAD_NEW_VIEW;
	return PBFT_REJ_COUNT;
}

/* Signatures, certificates and O of a NEW-VIEW of the right shape. */
static enum pbft_reject
nv_check(struct pbft *p, const struct pbft_new_view *nv)
{
	struct pbft_msg m = {.type = PBFT_MSG_NEW_VIEW};

	m.u.new_view = *nv;
	wbuf_reset(&p->sb);
	if (wire_signed_bytes(&p->sb, &m) == -1 ||
	    !pbft_verify_sig(p, nv->replica, nv->sig))
		return PBFT_REJ_BAD_SIG;
	for (uint32_t i = 0; i < nv->nvc; i++)
		if (!vc_ok(p, &nv->vcs[i]))
			return PBFT_REJ_BAD_CERT;
	if (!(p->cfg.test_flags & PBFT_TEST_BROKEN_NEWVIEW) &&
	    !o_matches(p, nv))
		return PBFT_REJ_BAD_NEW_VIEW;
	return PBFT_REJ_COUNT;
}

/*
 * A backup checks NEW-VIEW by recomputing O from V (compute_o), the cheap
 * checks first. Any replica may relay it (to one that missed it); the
 * signature says who made it, and a relay of one that does not hold is
 * faulty (a correct replica relays only the NEW-VIEW it entered its view
 * by).
 */
void
pbft_on_new_view(struct pbft *p, uint32_t from, const uint8_t *frame,
    size_t len, const struct pbft_new_view *nv)
{
	uint64_t min_s;
	uint32_t proof_from;
	enum pbft_reject why;

	if (nv->view < p->view || (nv->view == p->view && !p->changing))
		return;
	if (nv->replica != pbft_primary(p, nv->view)) {
		pbft_reject(p, PBFT_REJ_NOT_PRIMARY);
		return;
	}
	if ((why = nv_shape(p, nv, &min_s, &proof_from)) != PBFT_REJ_COUNT ||
	    (why = nv_check(p, nv)) != PBFT_REJ_COUNT) {
		pbft_reject(p, why);
		pbft_disconnect(p, from);
		return;
	}
	if (nv->view > p->view || !p->changing) {
		/* Moving straight to a later view: we were not in it yet,
		 * and what our view timer measured was the old primary. */
		p->view = nv->view;
		p->changing = true;
		pbft_view_timer_stop(p);
		queue_to_pending(p);
	}
	enter_view(p, nv, frame, len, min_s, proof_from);
}

/* ---- time -------------------------------------------------------------- */

/*
 * While changing views: resend our VIEW-CHANGE now and then, and count the
 * timeout down only once 2f+1 replicas want this view or a later one (OSDI
 * 4.5.2), so that a replica cut off from the others does not run ahead
 * alone.
 */
void
pbft_view_tick(struct pbft *p)
{
	uint32_t k = 0;

	if (!p->changing)
		return;
	if (p->my_vc == NULL || p->vc_views[p->id] != p->view) {
		/* Back from a crash whose log kept the entry of this view
		 * change (its REC_VIEW) but lost the REC_VC after it: that
		 * VIEW-CHANGE never left (it waited for both records), and
		 * without one of ours nothing moves, the timer below counts
		 * it among the 2f+1. Send it now. */
		send_own_vc(p);
		try_new_view(p);
		return;
	}
	if (++p->rt_vc >= p->cfg.retransmit_ticks) {
		struct pbft_msg *m = pbft_new_msg(p);

		p->rt_vc = 0;
		if (decode_kept(p, p->my_vc, p->my_vc_len, m) == 0)
			pbft_broadcast(p, m);
	}
	for (uint32_t i = 0; i < p->n; i++)
		if (p->vc_frames[i] != NULL && p->vc_views[i] >= p->view)
			k++; /* it wants this view or a later one */
	if (k < pbft_quorum(p))
		return;
	if (p->vc_ticks > 0 && --p->vc_ticks == 0)
		pbft_start_view_change(p, p->view + 1); /* timeout doubles */
}

/* Normal-case traffic from a higher view: f+1 such replicas -> join. */
void
pbft_note_view(struct pbft *p, uint32_t from, uint64_t view)
{
	uint64_t target = UINT64_MAX;
	uint32_t k = 0;

	if (view <= p->seen_view[from])
		return;
	p->seen_view[from] = view;
	for (uint32_t i = 0; i < p->n; i++)
		if (p->seen_view[i] > p->view) {
			k++;
			if (p->seen_view[i] < target)
				target = p->seen_view[i];
		}
	if (k >= p->f + 1 && target > p->view)
		pbft_start_view_change(p, target);
}

void
pbft_recover_vc(struct pbft *p, const uint8_t *frame, size_t len)
{
	struct pbft_msg m;
	size_t alen = wire_arena_bytes_for(len);
	struct wire_arena a;

	wire_arena_init(
	    &a, p->arena_mem, alen < p->arena_len ? alen : p->arena_len);
	if (wire_decode(frame, len, &m, &a) != WIRE_OK ||
	    m.type != PBFT_MSG_VIEW_CHANGE)
		return;
	free(p->my_vc);
	p->my_vc = copy_bytes(frame, len);
	p->my_vc_len = len;
	store_vc(p, p->id, m.u.view_change.view, frame, len);
}
