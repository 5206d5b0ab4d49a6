/*
 * rsim_byz.c - the Byzantine replicas of the simulator of the real replica
 * driver; see rsim_byz.h.
 */
#include "rsim_byz.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg.h"
#include "rsim.h"
#include "wbuf.h"
#include "wire.h"

/* Scratch space, made on first use (the simulator runs one thread). */
static struct {
	bool ready;
	uint8_t *arena;
	size_t arena_len;
	struct wbuf enc, sb, batch, auth;
	struct pbft_request reqs[PBFT_BATCH_REQS_MAX];
} g;

static const char *const names[RSIM_BYZ_COUNT] = {"silent", "mutate",
    "lie-state", "equivocate", "wrong-digest", "replay", "vote-all",
    "bad-newview", "lying-vc"};

const char *
rsim_byz_name(int mode)
{
	if (mode == RSIM_BYZ_DEAF)
		return "deaf";
	return mode >= 0 && mode < RSIM_BYZ_COUNT ? names[mode] : "random";
}

int
rsim_byz_parse(const char *s)
{
	for (int i = 0; i < RSIM_BYZ_COUNT; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	if (strcmp(s, "garbage") == 0)
		return RSIM_BYZ_MUTATE;
	if (strcmp(s, "deaf") == 0)
		return RSIM_BYZ_DEAF;
	return strcmp(s, "random") == 0 ? RSIM_BYZ_RANDOM : -2;
}

bool
rsim_byz_handles(int mode)
{
	return mode >= RSIM_BYZ_EQUIVOCATE && mode < RSIM_BYZ_COUNT;
}

static void
scratch(void)
{
	if (g.ready)
		return;
	g.arena_len = wire_arena_bytes_for(PBFT_FRAME_BYTES_MAX);
	if ((g.arena = malloc(g.arena_len)) == NULL)
		fatalx("out of memory");
	wbuf_init_dynamic(&g.enc, PBFT_FRAME_BYTES_MAX);
	wbuf_init_dynamic(&g.sb, PBFT_FRAME_BYTES_MAX);
	wbuf_init_dynamic(&g.batch, PBFT_BATCH_BYTES_MAX);
	wbuf_init_dynamic(&g.auth, WIRE_BATCH_AUTH_BYTES_MAX);
	g.ready = true;
}

static bool
decode(const uint8_t *f, size_t len, struct pbft_msg *m)
{
	struct wire_arena arena;

	scratch();
	wire_arena_init(&arena, g.arena, g.arena_len);
	return wire_decode(f, len, m, &arena) == WIRE_OK;
}

static uint64_t
below(const struct rsim_byz_io *io, uint64_t n)
{
	return n == 0 ? 0 : io->rnd(io->ctx) % n;
}

static bool
chance(const struct rsim_byz_io *io, uint32_t percent)
{
	return below(io, 100) < percent;
}

/* Sends m, encoded, from b to to. */
static void
emit(const struct rsim_byz_node *b, const struct rsim_byz_io *io, uint32_t to,
    const struct pbft_msg *m)
{
	wbuf_reset(&g.enc);
	if (wire_encode(&g.enc, m) == -1 || wbuf_failed(&g.enc))
		fatalx("cannot encode a Byzantine %s", wire_type_name(m->type));
	io->send(io->ctx, b->id, to, g.enc.p, g.enc.len);
}

static void
emit_all(const struct rsim_byz_node *b, const struct rsim_byz_io *io,
    const struct pbft_msg *m)
{
	for (uint32_t to = 0; to < io->n; to++)
		if (to != b->id)
			emit(b, io, to, m);
}

/* Signs m (a VIEW-CHANGE or NEW-VIEW) with b's own key into sig. */
static void
sign(const struct rsim_byz_node *b, const struct pbft_msg *m,
    uint8_t sig[PBFT_SIG_LEN])
{
	wbuf_reset(&g.sb);
	if (wire_signed_bytes(&g.sb, m) == -1)
		fatalx("cannot encode what a signature covers");
	b->fc->ops.sign(b->fc->ops.ctx, g.sb.p, g.sb.len, sig);
}

static void
keep(struct rsim_byz_node *b, const struct rsim_byz_io *io, const uint8_t *f,
    size_t len)
{
	uint64_t i = b->nold < RSIM_BYZ_OLD ? b->nold : below(io, RSIM_BYZ_OLD);
	struct rsim_byz_frame *o = &b->old[i];

	b->nold++;
	free(o->p);
	if ((o->p = malloc(len ? len : 1)) == NULL)
		fatalx("out of memory");
	memcpy(o->p, f, len);
	o->len = len;
}

/* A PRE-PREPARE whose batch lacks its last request, with its digest. */
static void
equivocate(const struct rsim_byz_node *b, const struct rsim_byz_io *io,
    uint32_t to, struct pbft_msg *m)
{
	struct pbft_preprepare *pp = &m->u.preprepare;
	uint32_t k = 0;

	if (pp->batch_len > 0 &&
	    wire_decode_batch(pp->batch, pp->batch_len, g.reqs,
	        PBFT_BATCH_REQS_MAX, &k, &g.auth) == WIRE_OK &&
	    k > 0)
		k--;
	wbuf_reset(&g.batch);
	if (wire_encode_batch(&g.batch, g.reqs, k) == -1)
		fatalx("cannot encode a batch");
	pp->batch = g.batch.p;
	pp->batch_len = (uint32_t)g.batch.len;
	b->fc->ops.digest(b->fc->ops.ctx, g.batch.p, g.batch.len, pp->digest);
	emit(b, io, to, m);
}

static void
wrong_digest(const struct rsim_byz_node *b, const struct rsim_byz_io *io,
    uint32_t to, struct pbft_msg *m)
{
	struct pbft_checkpoint *c = &m->u.checkpoint;

	if (m->type == PBFT_MSG_PREPARE)
		m->u.prepare.digest[0] ^= 0xff;
	else if (m->type == PBFT_MSG_COMMIT)
		m->u.commit.digest[0] ^= 0xff;
	if (m->type == PBFT_MSG_CHECKPOINT) {
		c->digest[1] ^= 0xff;
		wbuf_reset(&g.sb);
		if (wire_signed_checkpoint(
		        &g.sb, c->seq, c->digest, c->replica) == -1)
			fatalx("cannot encode a checkpoint");
		b->fc->ops.sign(b->fc->ops.ctx, g.sb.p, g.sb.len, c->sig);
	}
	emit(b, io, to, m);
}

/* O altered: an entry made null (or a null one not), or one invented. */
static void
bad_newview(const struct rsim_byz_node *b, const struct rsim_byz_io *io,
    uint32_t to, struct pbft_msg *m)
{
	struct pbft_new_view *nv = &m->u.new_view;
	struct pbft_nv_preprepare *pps = calloc(nv->npp + 1, sizeof(*pps));
	uint32_t npp = nv->npp;

	if (pps == NULL)
		fatalx("out of memory");
	if (npp > 0)
		memcpy(pps, nv->pps, npp * sizeof(*pps));
	if (npp > 0) {
		struct pbft_nv_preprepare *e = &pps[below(io, npp)];
		bool null = true;

		for (int i = 0; i < PBFT_DIGEST_LEN; i++)
			null &= e->digest[i] == 0;
		if (null)
			e->digest[0] = 0x5a;
		else
			memset(e->digest, 0, PBFT_DIGEST_LEN);
	} else {
		npp = 1;
		pps[0].seq = (nv->nvc > 0 ? nv->vcs[0].stable_seq : 0) + 1;
		pps[0].digest[0] = 0x77;
	}
	nv->pps = pps;
	nv->npp = npp;
	sign(b, m, nv->sig);
	emit(b, io, to, m);
	free(pps);
}

/* Most claims of a lying VIEW-CHANGE: e moved to the latest view it may
 * name, with another digest. */
static void
lie(const struct rsim_byz_io *io, const struct pbft_view_change *vc,
    struct pbft_vc_entry *e)
{
	if (!chance(io, 70))
		return;
	/* a null request needs no body: the likeliest lie to make correct
	 * replicas diverge if it were believed */
	e->view = vc->view > 0 ? vc->view - 1 : 0;
	if (chance(io, 50))
		memset(e->digest, 0, PBFT_DIGEST_LEN);
	else
		e->digest[below(io, PBFT_DIGEST_LEN)] ^=
		    (uint8_t)(1 + below(io, 255));
}

/*
 * A VIEW-CHANGE that lies in its claims: each prepared claim hidden, or
 * moved to the latest view it may name with another digest, and claims
 * invented above them, each backed by a matching pre-prepared claim, so
 * that a new primary that trusted one replica would carry a batch that
 * never committed (or drop one that did).
 */
static void
lying_vc(const struct rsim_byz_node *b, const struct rsim_byz_io *io,
    uint32_t to, struct pbft_msg *m, uint32_t window)
{
	struct pbft_view_change *vc = &m->u.view_change;
	uint32_t max = vc->nprepared + 4, np = 0;
	struct pbft_vc_entry *pe = calloc(max, sizeof(*pe));
	uint64_t top = vc->stable_seq;

	if (pe == NULL)
		fatalx("out of memory");
	for (uint32_t i = 0; i < max; i++) {
		struct pbft_vc_entry e;

		if (i < vc->nprepared) {
			e = vc->prepared[i];
			if (chance(io, 30))
				continue; /* hidden */
		} else {
			memset(&e, 0, sizeof(e));
			e.seq = top + 1 + below(io, 2);
			if (e.seq > vc->stable_seq + window)
				break;
		}
		lie(io, vc, &e);
		top = e.seq;
		pe[np++] = e;
	}
	vc->prepared = pe;
	vc->nprepared = np;
	vc->preprepared = pe;
	vc->npreprepared = np;
	sign(b, m, vc->sig);
	emit(b, io, to, m);
	free(pe);
}

/* A PREPARE and a COMMIT for pp's digest, and for another, to all. */
static void
vote_all(const struct rsim_byz_node *b, const struct rsim_byz_io *io,
    const struct pbft_preprepare *pp)
{
	struct pbft_msg v = {.type = PBFT_MSG_PREPARE};

	v.u.prepare = (struct pbft_vote){
	    .view = pp->view, .seq = pp->seq, .replica = b->id};
	for (int round = 0; round < 2; round++) {
		memcpy(v.u.prepare.digest, pp->digest, PBFT_DIGEST_LEN);
		if (round == 1)
			v.u.prepare.digest[3] ^= (uint8_t)(1 + below(io, 255));
		v.type = PBFT_MSG_PREPARE;
		emit_all(b, io, &v);
		v.u.commit = v.u.prepare;
		v.type = PBFT_MSG_COMMIT;
		emit_all(b, io, &v);
	}
}

void
rsim_byz_seen(struct rsim_byz_node *b, const struct rsim_byz_io *io,
    const uint8_t *f, size_t len)
{
	struct pbft_msg m;

	if (b->mode == RSIM_BYZ_REPLAY)
		keep(b, io, f, len);
	else if (b->mode == RSIM_BYZ_VOTE_ALL && decode(f, len, &m) &&
	    m.type == PBFT_MSG_PREPREPARE)
		vote_all(b, io, &m.u.preprepare);
}

/* An old frame to a random peer, now and then. */
static void
replay(struct rsim_byz_node *b, const struct rsim_byz_io *io)
{
	const struct rsim_byz_frame *o;
	uint32_t to;

	if (b->nold == 0 || !chance(io, 30))
		return;
	o = &b->old[below(io, b->nold < RSIM_BYZ_OLD ? b->nold : RSIM_BYZ_OLD)];
	to = (uint32_t)below(io, io->n);
	if (to != b->id)
		io->send(io->ctx, b->id, to, o->p, o->len);
}

void
rsim_byz_out(struct rsim_byz_node *b, const struct rsim_byz_io *io, uint32_t to,
    const uint8_t *f, size_t len)
{
	struct pbft_msg m;
	int t;

	if (b->mode == RSIM_BYZ_REPLAY) {
		io->send(io->ctx, b->id, to, f, len);
		replay(b, io);
		keep(b, io, f, len);
		return;
	}
	if (!decode(f, len, &m)) {
		io->send(io->ctx, b->id, to, f, len);
		return;
	}
	t = (int)m.type;
	if (b->mode == RSIM_BYZ_EQUIVOCATE && t == PBFT_MSG_PREPREPARE &&
	    chance(io, 50))
		equivocate(b, io, to, &m);
	else if (b->mode == RSIM_BYZ_WRONG_DIGEST &&
	    (t == PBFT_MSG_PREPARE || t == PBFT_MSG_COMMIT ||
	        t == PBFT_MSG_CHECKPOINT))
		wrong_digest(b, io, to, &m);
	else if (b->mode == RSIM_BYZ_BAD_NEWVIEW && t == PBFT_MSG_NEW_VIEW)
		bad_newview(b, io, to, &m);
	else if (b->mode == RSIM_BYZ_LYING_VC && t == PBFT_MSG_VIEW_CHANGE)
		lying_vc(b, io, to, &m, io->window);
	else
		io->send(io->ctx, b->id, to, f, len);
}

void
rsim_byz_free(struct rsim_byz_node *b)
{
	for (uint32_t i = 0; i < RSIM_BYZ_OLD; i++)
		free(b->old[i].p);
	memset(b->old, 0, sizeof(b->old));
	b->nold = 0;
}

/* ---- deaf: against the client library --------------------------------- */

bool
rsim_byz_hears_client(const struct rsim_byz_node *b)
{
	return b->mode != RSIM_BYZ_DEAF;
}

size_t
rsim_byz_to_client(
    const struct rsim_byz_node *b, uint32_t n, uint8_t **f, size_t len)
{
	struct pbft_msg m;
	uint8_t *p;

	if (b->mode != RSIM_BYZ_DEAF || !decode(*f, len, &m) ||
	    m.type != PBFT_MSG_REPLY)
		return len;
	m.u.reply.view += (b->id + n - m.u.reply.view % n) % n;
	wbuf_reset(&g.enc);
	if (wire_encode(&g.enc, &m) == -1 || wbuf_failed(&g.enc) ||
	    (p = realloc(*f, g.enc.len)) == NULL)
		fatalx("cannot encode a Byzantine REPLY");
	memcpy(p, g.enc.p, g.enc.len);
	*f = p;
	return g.enc.len;
}
