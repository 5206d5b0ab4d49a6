/*
 * pbft_view.c - view changes (Castro and Liskov, OSDI '99 section 4.4):
 * VIEW-CHANGE with the stable checkpoint's proof and the prepared
 * certificates above it, NEW-VIEW with the O set that every backup
 * recomputes, the doubling timeout, and joining a higher view on f+1
 * VIEW-CHANGE messages.
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
cert_ok(struct pbft *p, const struct pbft_view_change *vc,
    const struct pbft_prepared_cert *c)
{
	uint32_t primary = pbft_primary(p, c->view);
	uint64_t seen = 0;
	uint32_t k = 0;

	if (c->seq <= vc->stable_seq ||
	    c->seq > vc->stable_seq + p->cfg.window || c->view >= vc->view)
		return false;
	wbuf_reset(&p->sb);
	wire_signed_preprepare(&p->sb, c->view, c->seq, c->digest, primary);
	if (!pbft_verify_sig(p, primary, c->pp_sig))
		return false;
	for (uint32_t i = 0; i < c->nprepares; i++) {
		uint32_t r = c->prepares[i].replica;

		if (r >= p->n || r == primary || (seen >> r & 1))
			return false;
		seen |= 1ULL << r;
		wbuf_reset(&p->sb);
		wire_signed_vote(
		    &p->sb, PBFT_MSG_PREPARE, c->view, c->seq, c->digest, r);
		if (!pbft_verify_sig(p, r, c->prepares[i].sig))
			return false;
		k++;
	}
	return k >= pbft_prep_quorum(p);
}

/* Checks a VIEW-CHANGE completely: signature, proof, every certificate. */
static bool
vc_ok(struct pbft *p, const struct pbft_view_change *vc)
{
	struct pbft_msg m = {.type = PBFT_MSG_VIEW_CHANGE};

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
	for (uint32_t i = 0; i < vc->nprepared; i++) {
		/* strictly increasing seqs: one certificate per seq */
		if (i > 0 && vc->prepared[i].seq <= vc->prepared[i - 1].seq)
			return false;
		if (!cert_ok(p, vc, &vc->prepared[i]))
			return false;
	}
	return true;
}

/*
 * OSDI 4.4: min-s is the latest stable checkpoint in V, max-s the highest
 * prepared seq; O gets, for each seq between, the certificate of the
 * highest view, or a null request. Returns the number of entries (max-s -
 * min-s) and the index of the view change holding the min-s proof.
 */
static uint64_t
compute_o(struct pbft *p, const struct pbft_view_change *vcs, uint32_t nvc,
    uint64_t *min_s, uint32_t *proof_from, struct o_entry *o)
{
	uint64_t max_s;

	*min_s = 0;
	*proof_from = 0;
	for (uint32_t i = 0; i < nvc; i++)
		if (vcs[i].stable_seq > *min_s) {
			*min_s = vcs[i].stable_seq;
			*proof_from = i;
		}
	max_s = *min_s;
	memset(o, 0, p->cfg.window * sizeof(*o));
	for (uint32_t i = 0; i < nvc; i++)
		for (uint32_t j = 0; j < vcs[i].nprepared; j++) {
			const struct pbft_prepared_cert *c =
			    &vcs[i].prepared[j];
			struct o_entry *e;

			if (c->seq <= *min_s || c->seq > *min_s + p->cfg.window)
				continue;
			e = &o[c->seq - *min_s - 1];
			if (!e->has || c->view > e->view) {
				e->has = true;
				e->view = c->view;
				memcpy(e->digest, c->digest, PBFT_DIGEST_LEN);
			}
			if (c->seq > max_s)
				max_s = c->seq;
		}
	return max_s - *min_s;
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
		} else {
			free(h->buf);
		}
		memset(h, 0, sizeof(*h));
		p->qhead = (p->qhead + 1) % p->cfg.queue_reqs_max;
		p->qlen--;
	}
	p->qbytes = 0;
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
	struct pbft_prepared_cert *certs;
	uint32_t k = 0;

	certs = (struct pbft_prepared_cert *)(void *)pbft_keep(
	    p, NULL, p->cfg.window * sizeof(*certs));
	for (uint64_t seq = p->low + 1; seq <= p->low + p->cfg.window; seq++) {
		struct slot *s = &p->slots[seq % p->cfg.window];

		if (s->seq != seq || !s->has_cert)
			continue;
		certs[k] = (struct pbft_prepared_cert){.view = s->cert_view,
		    .seq = seq,
		    .nprepares = s->cert_n,
		    .prepares = s->cert_prepares};
		memcpy(certs[k].digest, s->cert_digest, PBFT_DIGEST_LEN);
		memcpy(certs[k].pp_sig, s->cert_pp_sig, PBFT_SIG_LEN);
		k++;
	}
	m->type = PBFT_MSG_VIEW_CHANGE;
	vc->view = view;
	vc->stable_seq = p->low;
	memcpy(vc->stable_digest, p->low_digest, PBFT_DIGEST_LEN);
	vc->nckpt = p->low_proof_n;
	vc->ckpt = p->low_proof;
	vc->nprepared = k;
	vc->prepared = certs;
	vc->replica = p->id;
	wbuf_reset(&p->sb);
	wire_signed_bytes(&p->sb, m);
	p->c->sign(p->c->ctx, p->sb.p, p->sb.len, vc->sig);
	return m;
}

static void try_new_view(struct pbft *p);

void
pbft_start_view_change(struct pbft *p, uint64_t view)
{
	struct pbft_msg *m;

	if (view <= p->view && (p->changing || view < p->view))
		return;
	if (p->changing)
		p->vc_attempt++;
	else
		p->vc_attempt = 0;
	p->view = view;
	p->changing = true;
	p->vc_ticks = p->cfg.view_timeout_ticks
	    << (p->vc_attempt < 10 ? p->vc_attempt : 10);
	pbft_view_timer_stop(p);
	queue_to_pending(p);
	m = build_vc(p, view);
	wbuf_reset(&p->enc);
	if (wire_encode(&p->enc, m) == -1)
		abort();
	free(p->my_vc);
	p->my_vc = copy_bytes(p->enc.p, p->enc.len);
	p->my_vc_len = p->enc.len;
	store_vc(p, p->id, view, p->enc.p, p->enc.len);
	persist_view(p);
	pbft_persist_msg(p, REC_VC, m);
	pbft_broadcast(p, m);
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
adopt_o_entry(
    struct pbft *p, uint64_t seq, const uint8_t *digest, const uint8_t *sig)
{
	struct slot *s = pbft_slot(p, seq);
	struct pbft_msg pm = {.type = PBFT_MSG_PREPREPARE};

	if (s == NULL)
		return;
	pbft_accept_pp(p, s, p->view, digest, sig);
	pm.u.preprepare = (struct pbft_preprepare){
	    .view = p->view, .seq = seq, .replica = pbft_primary(p, p->view)};
	memcpy(pm.u.preprepare.digest, digest, PBFT_DIGEST_LEN);
	memcpy(pm.u.preprepare.sig, sig, PBFT_SIG_LEN);
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
		adopt_o_entry(
		    p, nv->pps[i].seq, nv->pps[i].digest, nv->pps[i].sig);
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

/* The new primary: 2f+1 VIEW-CHANGEs (its own included) -> NEW-VIEW. */
static void
try_new_view(struct pbft *p)
{
	struct pbft_view_change *vcs;
	struct o_entry *o;
	struct pbft_nv_preprepare *pps;
	struct pbft_msg *m;
	uint64_t min_s, count;
	uint32_t nvc, proof_from, k = 0;

	if (!p->changing || pbft_primary(p, p->view) != p->id)
		return;
	vcs = (struct pbft_view_change *)(void *)pbft_keep(
	    p, NULL, p->n * sizeof(*vcs));
	if (!gather_vcs(p, p->view, vcs, &nvc))
		return;
	o = (struct o_entry *)(void *)pbft_keep(
	    p, NULL, p->cfg.window * sizeof(*o));
	count = compute_o(p, vcs, nvc, &min_s, &proof_from, o);
	pps = (struct pbft_nv_preprepare *)(void *)pbft_keep(
	    p, NULL, (count ? count : 1) * sizeof(*pps));
	for (uint64_t i = 0; i < count; i++, k++) {
		pps[k].seq = min_s + 1 + i;
		if (o[i].has)
			memcpy(pps[k].digest, o[i].digest, PBFT_DIGEST_LEN);
		else
			memset(pps[k].digest, 0, PBFT_DIGEST_LEN);
		wbuf_reset(&p->sb);
		wire_signed_preprepare(
		    &p->sb, p->view, pps[k].seq, pps[k].digest, p->id);
		p->c->sign(p->c->ctx, p->sb.p, p->sb.len, pps[k].sig);
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

static void
send_stored_new_view(struct pbft *p, uint32_t to)
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

void
pbft_on_view_change(struct pbft *p, uint32_t from, const uint8_t *frame,
    size_t len, const struct pbft_view_change *vc)
{
	if (vc->replica != from) {
		pbft_reject(p, PBFT_REJ_BAD_SENDER);
		return;
	}
	if (vc->view == p->view && !p->changing) {
		/* A replica that missed the NEW-VIEW of our view. */
		send_stored_new_view(p, from);
		return;
	}
	if (vc->view < p->view || vc->view <= p->vc_views[from])
		return; /* stale or already known */
	if (!vc_ok(p, vc)) {
		pbft_reject(p, PBFT_REJ_BAD_CERT);
		return;
	}
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
	uint64_t min_s, count;
	uint32_t proof_from;

	count = compute_o(p, nv->vcs, nv->nvc, &min_s, &proof_from, o);
	if (nv->npp != count)
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

/* OSDI 4.4: a backup checks NEW-VIEW by recomputing O from V. */
void
pbft_on_new_view(struct pbft *p, uint32_t from, const uint8_t *frame,
    size_t len, const struct pbft_new_view *nv)
{
	struct pbft_msg m = {.type = PBFT_MSG_NEW_VIEW};
	uint64_t seen = 0, min_s = 0;
	uint32_t proof_from = 0, primary = pbft_primary(p, nv->view);

	(void)from;
	if (nv->view < p->view || (nv->view == p->view && !p->changing))
		return;
	/* Any replica may relay it (to one that missed it); the signature
	 * says who made it. */
	if (nv->replica != primary) {
		pbft_reject(p, PBFT_REJ_NOT_PRIMARY);
		return;
	}
	m.u.new_view = *nv;
	wbuf_reset(&p->sb);
	if (wire_signed_bytes(&p->sb, &m) == -1 ||
	    !pbft_verify_sig(p, primary, nv->sig)) {
		pbft_reject(p, PBFT_REJ_BAD_SIG);
		return;
	}
	for (uint32_t i = 0; i < nv->nvc; i++) {
		const struct pbft_view_change *vc = &nv->vcs[i];

		if (vc->view != nv->view || vc->replica >= p->n ||
		    (seen >> vc->replica & 1) || !vc_ok(p, vc)) {
			pbft_reject(p, PBFT_REJ_BAD_CERT);
			return;
		}
		seen |= 1ULL << vc->replica;
		if (vc->stable_seq > min_s) {
			min_s = vc->stable_seq;
			proof_from = i;
		}
	}
	if (nv->nvc < pbft_quorum(p) ||
	    (!(p->cfg.test_flags & PBFT_TEST_BROKEN_NEWVIEW) &&
	        !o_matches(p, nv))) {
		pbft_reject(p, PBFT_REJ_BAD_NEW_VIEW);
		return;
	}
	for (uint32_t i = 0; i < nv->npp; i++) {
		wbuf_reset(&p->sb);
		wire_signed_preprepare(&p->sb, nv->view, nv->pps[i].seq,
		    nv->pps[i].digest, primary);
		if (!pbft_verify_sig(p, primary, nv->pps[i].sig) ||
		    nv->pps[i].seq <= min_s ||
		    nv->pps[i].seq > min_s + p->cfg.window) {
			pbft_reject(p, PBFT_REJ_BAD_NEW_VIEW);
			return;
		}
	}
	if (nv->view > p->view || !p->changing) {
		/* Moving straight to a later view: we were not in it yet. */
		p->view = nv->view;
		p->changing = true;
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
	if (p->my_vc != NULL && ++p->rt_vc >= p->cfg.retransmit_ticks) {
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
