/*
 * sim.c - the deterministic simulator; see sim.h.
 *
 * Messages travel encoded (wire_encode at send, wire_decode at delivery), so
 * the codec is exercised and each queued message owns its bytes. Virtual
 * time is in milliseconds; every replica ticks every 10 ms.
 */
#include "sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_crypto.h"
#include "pbft.h"
#include "wire.h"

#define TICK_MS 10
#define FAULT_PHASE_MS 4000
#define LIVENESS_MS 90000
#define MAX_DELAY_MS 20
#define TRACE_LINES 256
#define TRACE_LEN 200
#define SNAPS 6
#define CLIENT_RETRY_MS 400
#define FLUSH_MAX_MS 4 /* a log write takes 1..FLUSH_MAX_MS */
/* The lag scenario's schedule (lag_step). */
#define LAG_CUT_AT_MS 200
#define LAG_CUT_MS 3000
#define LAG_SETTLE_MS 1500
#define LAG_SECOND_MS 1500
/* The rejoin scenario's schedule (rejoin_step). */
#define REJOIN_AT_MS 300
#define REJOIN_ROUNDS 3
#define REJOIN_DOWN_MS 200
#define REJOIN_SETTLE_MS 1000
#define REJOIN_TRIES 200 /* 1 ms apart: for early votes in flight */
/* The whole-cluster crash (crash_all_step). */
#define ALL_AT_MS 600
#define ALL_DOWN_MS 100
/* The stranded scenario (stranded_step). */
#define STRAND_AT_MS 200
#define STRAND_CUT_MS 2000
#define STRAND_LINK_MS 2000

/* ---- PRNG (xoshiro256**) ----------------------------------------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t
splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rnd(struct rng *r)
{
	uint64_t res = rotl(r->s[1] * 5, 7) * 9, t = r->s[1] << 17;

	r->s[2] ^= r->s[0];
	r->s[3] ^= r->s[1];
	r->s[1] ^= r->s[2];
	r->s[0] ^= r->s[3];
	r->s[2] ^= t;
	r->s[3] = rotl(r->s[3], 45);
	return res;
}

static uint64_t
rnd_below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool
chance(struct rng *r, double p)
{
	return (double)(rnd(r) >> 11) / 9007199254740992.0 < p;
}

/* ---- events ------------------------------------------------------------ */

enum ev_kind {
	E_DELIVER, /* frame to replica `to` from `from` (client: from = n+c) */
	E_REPLY, /* frame to client `to` */
	E_TICK,
	E_CLIENT, /* client timer: think time over or retransmit */
	E_INSTALL, /* state transfer completes at replica `to` */
	E_FAULT, /* fault schedule step */
	E_FLUSH, /* replica `to`'s log write of generation arg ends */
};

struct event {
	uint64_t t, order;
	enum ev_kind kind;
	uint32_t to, from;
	uint64_t arg;
	uint8_t *data;
	size_t len;
};

struct heap {
	struct event *v;
	size_t n, cap;
};

static bool
ev_less(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static void
heap_push(struct heap *h, struct event e)
{
	size_t i;

	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 1024;
		h->v = realloc(h->v, h->cap * sizeof(*h->v));
		if (h->v == NULL)
			abort();
	}
	i = h->n++;
	h->v[i] = e;
	while (i > 0 && ev_less(&h->v[i], &h->v[(i - 1) / 2])) {
		struct event t = h->v[i];

		h->v[i] = h->v[(i - 1) / 2];
		h->v[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct event
heap_pop(struct heap *h)
{
	struct event top = h->v[0];
	size_t i = 0;

	h->v[0] = h->v[--h->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && ev_less(&h->v[l], &h->v[m]))
			m = l;
		if (r < h->n && ev_less(&h->v[r], &h->v[m]))
			m = r;
		if (m == i)
			break;
		{
			struct event t = h->v[i];

			h->v[i] = h->v[m];
			h->v[m] = t;
		}
		i = m;
	}
	return top;
}

/* ---- state ------------------------------------------------------------- */

struct blob {
	uint8_t *p;
	size_t len;
};

struct snap {
	uint64_t seq;
	uint8_t app[32];
	struct blob ct;
};

/* Output waiting for the log: to is UINT32_MAX for a broadcast. */
struct held_msg {
	uint32_t to;
	struct blob frame;
	/* An early vote of a correct replica, cast when it leaves. */
	bool cast;
	uint32_t type;
	uint64_t view, seq;
	uint8_t digest[32];
};

struct reply_cache {
	uint64_t ts, seq;
	uint8_t result[8];
};

struct replica {
	uint32_t id;
	struct pbft *core;
	struct fake_crypto fc;
	struct pbft_actions acts;
	bool byz;
	int mode;
	bool down;
	uint32_t group; /* partition group */
	uint8_t app[32]; /* service state: a hash chain */
	uint64_t last_exec;
	struct reply_cache *replies;
	struct snap snaps[SNAPS];
	struct blob *recs; /* durable records, in order */
	size_t nrecs, caprecs;
	/* Like the replica's group commit: records written but not durable
	 * yet (a crash loses them), the output that waits for them, whether
	 * a barrier record is among them, and the write in progress. */
	struct blob *pend;
	size_t npend, cappend;
	struct held_msg *held;
	size_t nheld, capheld;
	bool barrier;
	bool flush_due;
	uint64_t flush_gen;
	bool early_out; /* early votes left before the records pending */
	struct blob *old; /* byz replay: frames seen */
	size_t nold;
	bool fetching;
	bool compact; /* a checkpoint became stable: compact the log */
	uint64_t fetch_seq;
	uint8_t fetch_digest[32];
};

struct client {
	uint32_t id;
	uint32_t done, issued;
	bool outstanding;
	uint64_t ts;
	uint8_t op[16];
	uint32_t oplen;
	uint64_t rep_seq[PBFT_REPLICAS_MAX];
	uint8_t rep_res[PBFT_REPLICAS_MAX][8];
	bool rep_have[PBFT_REPLICAS_MAX];
	uint64_t view_guess;
	uint64_t timer_gen;
	uint32_t retry_ms;
};

/* What the agreed history says happened at a seq. */
struct agreed {
	bool have;
	uint8_t digest[32]; /* of the executed requests */
	uint32_t nreqs;
	uint64_t *ids; /* client << 48 | (ts & 0xffffffffffff) */
	bool have_ckpt;
	uint8_t ckpt[32];
};

struct confirmed {
	uint32_t client;
	uint64_t ts, seq;
};

struct vote_key {
	uint64_t view, seq;
	uint32_t replica, type;
	uint8_t digest[32];
	bool used;
	bool early; /* cast as early output (not a retransmission) */
};

struct sim {
	struct sim_opts o;
	struct sim_result *res;
	struct rng rng;
	struct heap q;
	uint64_t now, order;
	uint32_t n, f;
	struct replica *r;
	struct client *c;
	struct agreed *hist;
	uint64_t hist_cap;
	struct confirmed *conf;
	size_t nconf, capconf;
	struct vote_key *votes;
	size_t votes_cap, votes_n;
	bool faults_on;
	double drop, dup;
	uint64_t total;
	char trace[TRACE_LINES][TRACE_LEN];
	uint64_t ntrace;
	uint8_t *arena;
	size_t arena_len;
	struct wbuf wb;
	bool failed;
	uint64_t fault_end; /* virtual time the faults stop */
	bool lag_watch; /* lag scenario: view changes are violations */
	uint32_t lag_second; /* lag scenario: the replica cut off second */
	bool rejoin_watch; /* rejoin scenario: view changes are violations */
	uint32_t rejoin_b, rejoin_c; /* rejoin scenario: this round's backups */
	uint64_t back_at; /* whole-cluster crash: restarted at (0: not yet) */
	uint64_t back_ms; /* ... and back in service after */
	/* stranded scenario: the replica cut off, the link that stays dead
	 * after (both ways) while dead_link, and when every correct replica
	 * was first seen at one last_executed after the final heal (0: not
	 * yet) */
	uint32_t strand_x, dead_a, dead_b;
	bool dead_link;
	uint64_t converged_at;
};

static void trace(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
trace(struct sim *s, const char *fmt, ...)
{
	char *line = s->trace[s->ntrace++ % TRACE_LINES];
	int off =
	    snprintf(line, TRACE_LEN, "%7llu ms  ", (unsigned long long)s->now);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + off, TRACE_LEN - (size_t)off, fmt, ap);
	va_end(ap);
	if (s->o.trace)
		printf("%s\n", line);
}

static void violation(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
violation(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return;
	s->failed = true;
	va_start(ap, fmt);
	vsnprintf(s->res->violation, sizeof(s->res->violation), fmt, ap);
	va_end(ap);
}

static bool
correct(const struct sim *s, uint32_t i)
{
	return !s->r[i].byz;
}

static void
push(struct sim *s, uint64_t t, enum ev_kind k, uint32_t to, uint32_t from,
    uint64_t arg, const uint8_t *data, size_t len)
{
	struct event e = {.t = t,
	    .order = s->order++,
	    .kind = k,
	    .to = to,
	    .from = from,
	    .arg = arg,
	    .len = len};

	if (data != NULL) {
		e.data = malloc(len ? len : 1);
		if (e.data == NULL)
			abort();
		memcpy(e.data, data, len);
	}
	heap_push(&s->q, e);
}

/* ---- the network ------------------------------------------------------- */

static bool
cut(const struct sim *s, uint32_t a, uint32_t b)
{
	if (a >= s->n || b >= s->n)
		return false;
	if (s->dead_link &&
	    ((a == s->dead_a && b == s->dead_b) ||
	        (a == s->dead_b && b == s->dead_a)))
		return true;
	return s->r[a].group != s->r[b].group;
}

static void
net_send(
    struct sim *s, uint32_t from, uint32_t to, const uint8_t *frame, size_t len)
{
	int copies = 1;

	if (cut(s, from, to) || (s->faults_on && chance(&s->rng, s->drop)))
		return;
	if (s->faults_on && chance(&s->rng, s->dup))
		copies = 2;
	while (copies-- > 0)
		push(s, s->now + 1 + rnd_below(&s->rng, MAX_DELAY_MS),
		    E_DELIVER, to, from, 0, frame, len);
}

static void
encode(struct sim *s, const struct pbft_msg *m)
{
	wbuf_reset(&s->wb);
	if (wire_encode(&s->wb, m) == -1)
		abort();
}

/* ---- Byzantine behaviour ----------------------------------------------- */

static void
byz_keep(struct replica *r, const uint8_t *frame, size_t len)
{
	size_t i =
	    r->nold < 64 ? r->nold++ : (size_t)(len * 7 + r->nold++) % 64;

	if (r->old == NULL && (r->old = calloc(64, sizeof(*r->old))) == NULL)
		abort();
	free(r->old[i].p);
	r->old[i].p = malloc(len);
	memcpy(r->old[i].p, frame, len);
	r->old[i].len = len;
}

static bool
digest_zero(const uint8_t d[32])
{
	for (int i = 0; i < 32; i++)
		if (d[i] != 0)
			return false;
	return true;
}

/* An equivocating primary: a different batch for half of the backups. */
static void
byz_equivocate(struct sim *s, struct replica *r, const struct pbft_msg *m)
{
	struct pbft_request reqs[PBFT_BATCH_REQS_MAX];
	struct pbft_msg alt = *m;
	struct wbuf batch, auth;
	uint32_t k = 0;

	encode(s, m);
	for (uint32_t to = 0; to < s->n; to++)
		if (to != r->id && to % 2 == 0)
			net_send(s, r->id, to, s->wb.p, s->wb.len);
	wbuf_init_dynamic(&batch, PBFT_BATCH_BYTES_MAX);
	wbuf_init_dynamic(&auth, WIRE_BATCH_AUTH_BYTES_MAX);
	if (m->u.preprepare.batch_len > 0 &&
	    wire_decode_batch(m->u.preprepare.batch, m->u.preprepare.batch_len,
	        reqs, PBFT_BATCH_REQS_MAX, &k, &auth) == WIRE_OK &&
	    k > 0)
		k--; /* drop the last request */
	wire_encode_batch(&batch, reqs, k);
	alt.u.preprepare.batch = batch.p;
	alt.u.preprepare.batch_len = (uint32_t)batch.len;
	fake_digest(batch.p, batch.len, alt.u.preprepare.digest);
	encode(s, &alt);
	for (uint32_t to = 0; to < s->n; to++)
		if (to != r->id && to % 2 == 1)
			net_send(s, r->id, to, s->wb.p, s->wb.len);
	wbuf_clear(&batch);
	wbuf_clear(&auth);
}

/* A faulty new primary: alter O (swap an entry for null, or invent). */
static void
byz_bad_newview(struct sim *s, struct replica *r, const struct pbft_msg *m)
{
	struct pbft_msg alt = *m;
	struct pbft_nv_preprepare pps[PBFT_WINDOW_MAX + 1];
	struct wbuf wb;
	uint32_t npp = m->u.new_view.npp;

	memcpy(pps, m->u.new_view.pps, npp * sizeof(*pps));
	if (npp > 0) {
		uint32_t i = (uint32_t)rnd_below(&s->rng, npp);

		if (digest_zero(pps[i].digest))
			pps[i].digest[0] = 0x5a;
		else
			memset(pps[i].digest, 0, 32);
	} else {
		npp = 1;
		memset(&pps[0], 0, sizeof(pps[0]));
		pps[0].seq = m->u.new_view.vcs[0].stable_seq + 1;
		pps[0].digest[0] = 0x77;
	}
	wbuf_init_dynamic(&wb, PBFT_FRAME_BYTES_MAX);
	alt.u.new_view.pps = pps;
	alt.u.new_view.npp = npp;
	wire_signed_bytes(&wb, &alt);
	fake_sign_as(r->id, wb.p, wb.len, alt.u.new_view.sig);
	wbuf_clear(&wb);
	encode(s, &alt);
	trace(s, "r%u BYZ sends a forged NEW-VIEW v=%llu", r->id,
	    (unsigned long long)m->u.new_view.view);
	for (uint32_t to = 0; to < s->n; to++)
		if (to != r->id)
			net_send(s, r->id, to, s->wb.p, s->wb.len);
}

/*
 * A VIEW-CHANGE that lies in its claims: each prepared claim moved to the
 * latest view it may name with another digest, or dropped, and claims
 * invented above them, each backed by matching pre-prepared claims, so that
 * a new primary that trusted one replica would carry a batch that never
 * committed (or drop one that did).
 */
static void
byz_lying_vc(struct sim *s, struct replica *r, const struct pbft_msg *m)
{
	const struct pbft_view_change *vc = &m->u.view_change;
	struct pbft_vc_entry *pe, *qe;
	struct pbft_msg alt = *m;
	struct wbuf wb;
	uint32_t np = 0, nq = 0;
	uint64_t top = vc->stable_seq;

	pe = calloc(vc->nprepared + 4, sizeof(*pe));
	qe = calloc(vc->nprepared + 4, sizeof(*qe));
	if (pe == NULL || qe == NULL)
		abort();
	for (uint32_t i = 0; i < vc->nprepared + 4; i++) {
		struct pbft_vc_entry e;

		if (i < vc->nprepared) {
			e = vc->prepared[i];
			if (chance(&s->rng, 0.3))
				continue; /* hide it */
		} else {
			memset(&e, 0, sizeof(e));
			e.seq = top + 1 + rnd_below(&s->rng, 2);
			if (e.seq > vc->stable_seq + 8)
				break;
		}
		if (chance(&s->rng, 0.7)) {
			/* a null request needs no body: the likeliest lie to
			 * make correct replicas diverge if it were believed */
			e.view = vc->view - 1;
			if (chance(&s->rng, 0.5))
				memset(e.digest, 0, sizeof(e.digest));
			else
				e.digest[(uint32_t)rnd_below(&s->rng, 32)] ^=
				    (uint8_t)(1 + rnd_below(&s->rng, 255));
		}
		top = e.seq;
		pe[np++] = e;
		qe[nq++] = e;
	}
	alt.u.view_change.prepared = pe;
	alt.u.view_change.nprepared = np;
	alt.u.view_change.preprepared = qe;
	alt.u.view_change.npreprepared = nq;
	wbuf_init_dynamic(&wb, PBFT_FRAME_BYTES_MAX);
	wire_signed_bytes(&wb, &alt);
	fake_sign_as(r->id, wb.p, wb.len, alt.u.view_change.sig);
	wbuf_clear(&wb);
	encode(s, &alt);
	trace(s, "r%u BYZ sends a lying VIEW-CHANGE v=%llu (%u claims)", r->id,
	    (unsigned long long)vc->view, np);
	for (uint32_t to = 0; to < s->n; to++)
		if (to != r->id)
			net_send(s, r->id, to, s->wb.p, s->wb.len);
	free(pe);
	free(qe);
}

/* Byzantine output filter; returns true when it handled the message. */
static bool
byz_output(struct sim *s, struct replica *r, const struct pbft_msg *m)
{
	struct pbft_msg alt;

	switch (r->mode) {
	case SIM_BYZ_SILENT:
		return true;
	case SIM_BYZ_EQUIVOCATE:
		if (m->type != PBFT_MSG_PREPREPARE)
			return false;
		byz_equivocate(s, r, m);
		return true;
	case SIM_BYZ_WRONG_DIGEST:
		alt = *m;
		if (m->type == PBFT_MSG_PREPARE || m->type == PBFT_MSG_COMMIT) {
			alt.u.prepare.digest[0] ^= 0xff;
		} else if (m->type == PBFT_MSG_CHECKPOINT) {
			struct wbuf wb;

			alt.u.checkpoint.digest[1] ^= 0xff;
			wbuf_init_dynamic(&wb, 1 << 16);
			wire_signed_checkpoint(&wb, alt.u.checkpoint.seq,
			    alt.u.checkpoint.digest, r->id);
			fake_sign_as(r->id, wb.p, wb.len, alt.u.checkpoint.sig);
			wbuf_clear(&wb);
		} else {
			return false;
		}
		encode(s, &alt);
		for (uint32_t to = 0; to < s->n; to++)
			if (to != r->id)
				net_send(s, r->id, to, s->wb.p, s->wb.len);
		return true;
	case SIM_BYZ_BAD_NEWVIEW:
		if (m->type != PBFT_MSG_NEW_VIEW)
			return false;
		byz_bad_newview(s, r, m);
		return true;
	case SIM_BYZ_LYING_VC:
		if (m->type != PBFT_MSG_VIEW_CHANGE)
			return false;
		byz_lying_vc(s, r, m);
		return true;
	default:
		return false;
	}
}

/* Extra Byzantine traffic on ticks: replays, garbage, votes. */
static void
byz_tick(struct sim *s, struct replica *r)
{
	if (r->mode == SIM_BYZ_REPLAY && r->nold > 0 && chance(&s->rng, 0.3)) {
		struct blob *b =
		    &r->old[rnd_below(&s->rng, r->nold < 64 ? r->nold : 64)];
		uint32_t to = (uint32_t)rnd_below(&s->rng, s->n);

		if (to != r->id)
			net_send(s, r->id, to, b->p, b->len);
	}
	if (r->mode == SIM_BYZ_GARBAGE && r->nold > 0 && chance(&s->rng, 0.3)) {
		struct blob *b =
		    &r->old[rnd_below(&s->rng, r->nold < 64 ? r->nold : 64)];
		uint8_t *g = malloc(b->len);
		uint32_t to = (uint32_t)rnd_below(&s->rng, s->n);

		memcpy(g, b->p, b->len);
		for (int k = 0; k < 4; k++)
			g[rnd_below(&s->rng, b->len)] ^=
			    (uint8_t)(1 + rnd_below(&s->rng, 255));
		if (to != r->id)
			net_send(s, r->id, to, g, b->len);
		free(g);
	}
}

/* A replica that votes for everything it sees, and for random digests. */
static void
byz_vote_all(struct sim *s, struct replica *r, const struct pbft_msg *m)
{
	struct pbft_msg v = {.type = PBFT_MSG_PREPARE};

	if (m->type != PBFT_MSG_PREPREPARE)
		return;
	v.u.prepare = (struct pbft_vote){.view = m->u.preprepare.view,
	    .seq = m->u.preprepare.seq,
	    .replica = r->id};
	for (int round = 0; round < 2; round++) {
		memcpy(v.u.prepare.digest, m->u.preprepare.digest, 32);
		if (round == 1)
			v.u.prepare.digest[3] ^= (uint8_t)rnd(&s->rng);
		for (int t = 0; t < 2; t++) {
			v.type = t == 0 ? PBFT_MSG_PREPARE : PBFT_MSG_COMMIT;
			encode(s, &v);
			for (uint32_t to = 0; to < s->n; to++)
				if (to != r->id)
					net_send(
					    s, r->id, to, s->wb.p, s->wb.len);
		}
	}
}

/* ---- the service and checkers ------------------------------------------ */

static struct agreed *
hist_at(struct sim *s, uint64_t seq)
{
	if (seq >= s->hist_cap) {
		uint64_t cap = s->hist_cap ? s->hist_cap : 256;

		while (cap <= seq)
			cap *= 2;
		s->hist = realloc(s->hist, cap * sizeof(*s->hist));
		if (s->hist == NULL)
			abort();
		memset(s->hist + s->hist_cap, 0,
		    (cap - s->hist_cap) * sizeof(*s->hist));
		s->hist_cap = cap;
	}
	return &s->hist[seq];
}

static void
check_vote(struct sim *s, uint32_t replica, uint32_t type, uint64_t view,
    uint64_t seq, const uint8_t digest[32], bool early)
{
	uint64_t h = (view * 1000003u + seq) * 131 + replica * 7 + type;
	size_t i;

	if (s->votes_n * 2 >= s->votes_cap) {
		struct vote_key *old = s->votes;
		size_t oc = s->votes_cap;

		s->votes_cap = oc ? oc * 2 : 4096;
		s->votes = calloc(s->votes_cap, sizeof(*s->votes));
		s->votes_n = 0;
		for (size_t k = 0; k < oc; k++)
			if (old[k].used)
				check_vote(s, old[k].replica, old[k].type,
				    old[k].view, old[k].seq, old[k].digest,
				    old[k].early);
		free(old);
	}
	for (i = h % s->votes_cap;; i = (i + 1) % s->votes_cap) {
		struct vote_key *k = &s->votes[i];

		if (!k->used) {
			*k = (struct vote_key){.view = view,
			    .seq = seq,
			    .replica = replica,
			    .type = type,
			    .used = true,
			    .early = early};
			memcpy(k->digest, digest, 32);
			s->votes_n++;
			return;
		}
		if (k->view == view && k->seq == seq && k->replica == replica &&
		    k->type == type) {
			if (memcmp(k->digest, digest, 32) != 0)
				violation(s,
				    "correct replica %u signed two different "
				    "%s "
				    "for view %llu seq %llu",
				    replica, wire_type_name(type),
				    (unsigned long long)view,
				    (unsigned long long)seq);
			/* A core casts each early vote once (a resend is not
			 * early): twice, it had forgotten the first and might
			 * as well have cast another. */
			if (early && k->early)
				violation(s,
				    "correct replica %u cast its %s for view "
				    "%llu seq %llu again, having forgotten "
				    "the first",
				    replica, wire_type_name(type),
				    (unsigned long long)view,
				    (unsigned long long)seq);
			k->early |= early;
			return;
		}
	}
}

static void
execute(struct sim *s, struct replica *r, const struct pbft_action *a)
{
	struct agreed *h = hist_at(s, a->seq);
	uint8_t d[32];
	uint64_t ids[PBFT_BATCH_REQS_MAX];
	uint32_t k = 0;
	struct wbuf wb;

	if (correct(s, r->id) && a->seq != r->last_exec + 1)
		violation(s, "replica %u executed seq %llu after %llu", r->id,
		    (unsigned long long)a->seq,
		    (unsigned long long)r->last_exec);
	r->last_exec = a->seq;
	wbuf_init_dynamic(&wb, PBFT_BATCH_BYTES_MAX);
	for (uint32_t i = 0; i < a->nreqs; i++) {
		const struct pbft_request *q = &a->reqs[i];
		uint8_t buf[32 + 12 + 64];
		struct reply_cache *rc = &r->replies[q->client];

		if (a->skip[i])
			continue;
		ids[k++] = (uint64_t)q->client << 48 |
		    (q->timestamp & 0xffffffffffffULL);
		wbuf_put_u32(&wb, q->client);
		wbuf_put_u64(&wb, q->timestamp);
		memcpy(buf, r->app, 32);
		memcpy(buf + 32, &q->client, 4);
		memcpy(buf + 36, &q->timestamp, 8);
		memcpy(buf + 44, q->op, q->op_len < 64 ? q->op_len : 64);
		fake_digest(
		    buf, 44 + (q->op_len < 64 ? q->op_len : 64), r->app);
		rc->ts = q->timestamp;
		rc->seq = a->seq;
		memcpy(rc->result, r->app, 8);
		if (!r->down && !r->byz) {
			struct pbft_msg m = {.type = PBFT_MSG_REPLY};

			m.u.reply = (struct pbft_reply){.view = a->view,
			    .timestamp = q->timestamp,
			    .client = q->client,
			    .replica = r->id,
			    .seq = a->seq,
			    .result_len = 8,
			    .result = rc->result};
			encode(s, &m);
			push(s, s->now + 1 + rnd_below(&s->rng, MAX_DELAY_MS),
			    E_REPLY, q->client, r->id, 0, s->wb.p, s->wb.len);
		}
	}
	fake_digest(wb.p, wb.len, d);
	wbuf_clear(&wb);
	if (!correct(s, r->id))
		return;
	if (!h->have) {
		h->have = true;
		memcpy(h->digest, d, 32);
		h->nreqs = k;
		h->ids = malloc((k ? k : 1) * sizeof(uint64_t));
		memcpy(h->ids, ids, k * sizeof(uint64_t));
	} else if (memcmp(h->digest, d, 32) != 0) {
		violation(s,
		    "agreement: replica %u executed a different batch "
		    "at seq %llu",
		    r->id, (unsigned long long)a->seq);
	}
}

static void
take_checkpoint(struct sim *s, struct replica *r, const struct pbft_action *a)
{
	struct snap *sn = &r->snaps[0];

	for (int i = 0; i < SNAPS; i++)
		if (r->snaps[i].seq < sn->seq)
			sn = &r->snaps[i];
	sn->seq = a->seq;
	memcpy(sn->app, r->app, 32);
	free(sn->ct.p);
	sn->ct.p = malloc(a->client_table_len);
	memcpy(sn->ct.p, a->client_table, a->client_table_len);
	sn->ct.len = a->client_table_len;
	(void)s;
}

static void step(struct sim *s, struct replica *r, const struct pbft_event *ev);

static void
fetch_state(
    struct sim *s, struct replica *r, uint64_t seq, const uint8_t digest[32])
{
	r->fetching = true;
	r->fetch_seq = seq;
	memcpy(r->fetch_digest, digest, 32);
	s->res->state_transfers++;
	push(s, s->now + 50, E_INSTALL, r->id, 0, seq, NULL, 0);
}

/* Looks for a correct replica's snapshot that matches the certificate. */
static void
try_install(struct sim *s, struct replica *r)
{
	struct pbft_crypto *c = &r->fc.ops;

	if (!r->fetching)
		return;
	for (uint32_t i = 0; i < s->n; i++) {
		if (!correct(s, i) || i == r->id)
			continue;
		for (int k = 0; k < SNAPS; k++) {
			struct snap *sn = &s->r[i].snaps[k];
			uint8_t d[32];
			struct pbft_event ev = {
			    .type = PBFT_EV_STATE_INSTALLED};

			if (sn->seq != r->fetch_seq)
				continue;
			pbft_state_digest(c, sn->app, sn->ct.p, sn->ct.len, d);
			if (memcmp(d, r->fetch_digest, 32) != 0)
				continue;
			memcpy(r->app, sn->app, 32);
			r->last_exec = sn->seq;
			r->fetching = false;
			trace(s, "r%u installs state of seq %llu from r%u",
			    r->id, (unsigned long long)sn->seq, i);
			{
				struct snap *mine = &r->snaps[0];

				for (int j = 0; j < SNAPS; j++)
					if (r->snaps[j].seq < mine->seq)
						mine = &r->snaps[j];
				mine->seq = sn->seq;
				memcpy(mine->app, sn->app, 32);
				free(mine->ct.p);
				mine->ct.p = malloc(sn->ct.len);
				memcpy(mine->ct.p, sn->ct.p, sn->ct.len);
				mine->ct.len = sn->ct.len;
			}
			ev.seq = sn->seq;
			memcpy(ev.digest, sn->app, 32);
			ev.client_table = sn->ct.p;
			ev.client_table_len = sn->ct.len;
			step(s, r, &ev);
			return;
		}
	}
	push(s, s->now + 200, E_INSTALL, r->id, 0, r->fetch_seq, NULL, 0);
}

/* A new last element of the array v of *n (room for *cap). */
static struct blob *
blob_add(struct blob **v, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*v = realloc(*v, *cap * sizeof(**v));
		if (*v == NULL)
			abort();
	}
	return &(*v)[(*n)++];
}

static void
blob_push(struct blob **v, size_t *n, size_t *cap, const uint8_t *p, size_t len)
{
	struct blob *b = blob_add(v, n, cap);

	b->p = malloc(len ? len : 1);
	if (b->p == NULL)
		abort();
	memcpy(b->p, p, len);
	b->len = len;
}

static void
blobs_free(struct blob *v, size_t *n)
{
	for (size_t k = 0; k < *n; k++)
		free(v[k].p);
	*n = 0;
}

/* A record made durable at once (compaction, start, clean stop). */
static void
record(struct replica *r, const uint8_t *rec, size_t len)
{
	blob_push(&r->recs, &r->nrecs, &r->caprecs, rec, len);
}

/* A step's record: durable when the log write that takes it ends. */
static void
record_pending(struct sim *s, struct replica *r, const struct pbft_action *a)
{
	blob_push(&r->pend, &r->npend, &r->cappend, a->record, a->record_len);
	if (a->barrier)
		r->barrier = true;
	if (!r->flush_due) {
		r->flush_due = true;
		push(s, s->now + 1 + rnd_below(&s->rng, FLUSH_MAX_MS), E_FLUSH,
		    r->id, 0, r->flush_gen, NULL, 0);
	}
}

static void
send_frame(struct sim *s, struct replica *r, uint32_t to, const uint8_t *frame,
    size_t len)
{
	if (to != UINT32_MAX) {
		net_send(s, r->id, to, frame, len);
		return;
	}
	for (uint32_t i = 0; i < s->n; i++)
		if (i != r->id)
			net_send(s, r->id, i, frame, len);
}

/* Everything written is durable: the held output goes, in order. */
static void
log_settled(struct sim *s, struct replica *r)
{
	for (size_t k = 0; k < r->npend; k++) /* moved, not copied */
		*blob_add(&r->recs, &r->nrecs, &r->caprecs) = r->pend[k];
	r->npend = 0;
	r->barrier = false;
	r->early_out = false;
	for (size_t k = 0; k < r->nheld; k++) {
		struct held_msg *h = &r->held[k];

		if (h->cast)
			check_vote(s, r->id, h->type, h->view, h->seq,
			    h->digest, true);
		send_frame(s, r, h->to, h->frame.p, h->frame.len);
		free(h->frame.p);
	}
	r->nheld = 0;
}

/* A crash: what was not durable is gone, and so is what waited for it. */
static void
log_lost(struct replica *r)
{
	blobs_free(r->pend, &r->npend);
	for (size_t k = 0; k < r->nheld; k++)
		free(r->held[k].frame.p);
	r->nheld = 0;
	r->barrier = false;
	r->early_out = false;
	r->flush_due = false;
	r->flush_gen++;
}

/* Watches what correct replicas sign: votes and checkpoint digests. */
static void
observe(struct sim *s, struct replica *r, const struct pbft_msg *m, bool early)
{
	if (!correct(s, r->id))
		return;
	switch (m->type) {
	case PBFT_MSG_PREPREPARE:
		check_vote(s, r->id, m->type, m->u.preprepare.view,
		    m->u.preprepare.seq, m->u.preprepare.digest, early);
		break;
	case PBFT_MSG_PREPARE:
	case PBFT_MSG_COMMIT:
		check_vote(s, r->id, m->type, m->u.prepare.view,
		    m->u.prepare.seq, m->u.prepare.digest, early);
		break;
	case PBFT_MSG_CHECKPOINT: {
		struct agreed *h = hist_at(s, m->u.checkpoint.seq);

		if (!h->have_ckpt) {
			h->have_ckpt = true;
			memcpy(h->ckpt, m->u.checkpoint.digest, 32);
		} else if (memcmp(h->ckpt, m->u.checkpoint.digest, 32) != 0) {
			violation(s,
			    "replica %u's state digest at checkpoint "
			    "%llu differs from another correct "
			    "replica's",
			    r->id, (unsigned long long)m->u.checkpoint.seq);
		}
		break;
	}
	case PBFT_MSG_VIEW_CHANGE:
		if (s->lag_watch && m->u.view_change.view >= 2)
			violation(s,
			    "replica %u started a view change to view %llu "
			    "while the primary of view 1 was correct and "
			    "followed by a quorum",
			    r->id, (unsigned long long)m->u.view_change.view);
		if (s->rejoin_watch)
			violation(s,
			    "replica %u started a view change to view %llu "
			    "while the primary was correct and up and at "
			    "most one backup down: a backup back from a "
			    "crash stayed mute",
			    r->id, (unsigned long long)m->u.view_change.view);
		break;
	default:
		break;
	}
}

/* An early vote that waits for the log is cast when it leaves. */
static void
hold_cast(struct held_msg *h, const struct pbft_msg *m)
{
	const struct pbft_vote *v = &m->u.prepare;

	h->cast = true;
	h->type = m->type;
	if (m->type == PBFT_MSG_PREPREPARE) {
		h->view = m->u.preprepare.view;
		h->seq = m->u.preprepare.seq;
		memcpy(h->digest, m->u.preprepare.digest, 32);
	} else if (m->type == PBFT_MSG_PREPARE) {
		h->view = v->view;
		h->seq = v->seq;
		memcpy(h->digest, v->digest, 32);
	} else {
		h->cast = false;
	}
}

static void
emit_msg(struct sim *s, struct replica *r, const struct pbft_action *a)
{
	uint32_t to;
	/* The driver contract: output waits for the step's records and for
	 * everything written before them, early output only for a barrier. */
	bool hold = a->early ? r->barrier : r->npend > 0;

	/* An early vote held behind a barrier is watched when it leaves
	 * (log_settled): lost in a crash, nobody saw it, and the replica may
	 * cast another at that seq once back (its durable bound is below). */
	if (!(a->early && hold))
		observe(s, r, a->msg, a->early && !hold);
	if (r->byz && byz_output(s, r, a->msg))
		return;
	encode(s, a->msg);
	if (r->byz)
		byz_keep(r, s->wb.p, s->wb.len);
	to = a->type == PBFT_ACT_SEND ? a->to : UINT32_MAX;
	if (hold) {
		if (r->nheld == r->capheld) {
			r->capheld = r->capheld ? r->capheld * 2 : 64;
			r->held =
			    realloc(r->held, r->capheld * sizeof(*r->held));
			if (r->held == NULL)
				abort();
		}
		r->held[r->nheld].to = to;
		r->held[r->nheld].frame.p = malloc(s->wb.len);
		if (r->held[r->nheld].frame.p == NULL)
			abort();
		memcpy(r->held[r->nheld].frame.p, s->wb.p, s->wb.len);
		r->held[r->nheld].frame.len = s->wb.len;
		r->held[r->nheld].cast = false;
		if (a->early && correct(s, r->id))
			hold_cast(&r->held[r->nheld], a->msg);
		r->nheld++;
		return;
	}
	if (a->early && r->npend > 0)
		r->early_out = true;
	send_frame(s, r, to, s->wb.p, s->wb.len);
}

static void
run_actions(struct sim *s, struct replica *r, struct pbft_event *deferred,
    int *ndeferred)
{
	/* A step's records are written before any of its output. */
	for (size_t i = 0; i < r->acts.n; i++)
		if (r->acts.v[i].type == PBFT_ACT_PERSIST)
			record_pending(s, r, &r->acts.v[i]);
	for (size_t i = 0; i < r->acts.n; i++) {
		const struct pbft_action *a = &r->acts.v[i];

		switch (a->type) {
		case PBFT_ACT_PERSIST:
			break;
		case PBFT_ACT_SEND:
		case PBFT_ACT_BROADCAST:
			emit_msg(s, r, a);
			break;
		case PBFT_ACT_EXECUTE:
			execute(s, r, a);
			break;
		case PBFT_ACT_RESEND_REPLY: {
			struct reply_cache *rc = &r->replies[a->client];
			struct pbft_msg m = {.type = PBFT_MSG_REPLY};

			if (rc->ts != a->timestamp || r->byz)
				break;
			m.u.reply = (struct pbft_reply){.timestamp = rc->ts,
			    .client = a->client,
			    .replica = r->id,
			    .seq = rc->seq,
			    .result_len = 8,
			    .result = rc->result};
			encode(s, &m);
			push(s, s->now + 1 + rnd_below(&s->rng, MAX_DELAY_MS),
			    E_REPLY, a->client, r->id, 0, s->wb.p, s->wb.len);
			break;
		}
		case PBFT_ACT_TAKE_CHECKPOINT:
			take_checkpoint(s, r, a);
			deferred[*ndeferred] = (struct pbft_event){
			    .type = PBFT_EV_STATE_DIGEST, .seq = a->seq};
			memcpy(deferred[*ndeferred].digest, r->app, 32);
			(*ndeferred)++;
			break;
		case PBFT_ACT_FETCH_STATE:
			trace(s, "r%u fetches state of seq %llu", r->id,
			    (unsigned long long)a->seq);
			fetch_state(s, r, a->seq, a->digest);
			break;
		case PBFT_ACT_VIEW:
			trace(s, "r%u enters view %llu", r->id,
			    (unsigned long long)a->view);
			if (correct(s, r->id))
				s->res->view_changes++;
			break;
		case PBFT_ACT_STABLE:
			r->compact = true;
			break;
		case PBFT_ACT_DISCONNECT:
		case PBFT_ACT_DROP_CLIENT:
			/* No channels here: what is in flight still arrives,
			 * as it may on a real network. */
			trace(s, "r%u disconnects %s %u", r->id,
			    a->type == PBFT_ACT_DISCONNECT ? "replica"
			                                   : "client",
			    a->type == PBFT_ACT_DISCONNECT ? a->to : a->client);
			break;
		}
	}
}

static int
compact_emit(void *arg, const uint8_t *rec, size_t len)
{
	record(arg, rec, len);
	return 0;
}

/* Like the replica's store: after a stable checkpoint the log is
 * rewritten from the core's compacted state, so recovery is tested on it.
 * The new log holds what was still being written, so the held output
 * goes. */
static void
compact_log(struct sim *s, struct replica *r)
{
	blobs_free(r->recs, &r->nrecs);
	if (pbft_compact(r->core, compact_emit, r) != 0)
		abort();
	blobs_free(r->pend, &r->npend);
	log_settled(s, r);
	r->compact = false;
}

static void
step(struct sim *s, struct replica *r, const struct pbft_event *ev)
{
	struct pbft_event deferred[16];
	int nd = 0;

	r->acts.n = 0;
	if (pbft_step(r->core, ev, &r->acts) == -1)
		abort();
	run_actions(s, r, deferred, &nd);
	for (int i = 0; i < nd; i++) {
		r->acts.n = 0;
		pbft_step(r->core, &deferred[i], &r->acts);
		run_actions(s, r, deferred + nd, &(int){0});
	}
	if (r->compact)
		compact_log(s, r);
}

/* ---- replicas: start, crash, restart ----------------------------------- */

static void
replica_boot(struct sim *s, struct replica *r)
{
	struct pbft_config cfg;
	char err[128];

	pbft_config_default(&cfg, s->n, r->id, s->o.clients);
	cfg.f = s->f;
	cfg.checkpoint_interval = s->o.interval;
	cfg.window = 2 * cfg.checkpoint_interval;
	cfg.batch_reqs_max = 4;
	cfg.inflight_max = 2;
	cfg.queue_reqs_max = 256;
	cfg.view_timeout_ticks = 30;
	cfg.retransmit_ticks = 10;
	/* As in production, ten retransmission periods: coming back from a
	 * whole-cluster crash must not wait for it. */
	if (s->o.crash_all)
		cfg.view_timeout_ticks = 100;
	cfg.test_flags = r->byz ? 0 : s->o.test_flags;
	/* Stranded: the one cut off suspects the primary even so, as one
	 * does whose link lets a quorum's STATUS through but not its
	 * commits. */
	if (s->o.stranded && r->id == s->strand_x)
		cfg.test_flags |= PBFT_TEST_BROKEN_ALONE;
	fake_crypto_init(&r->fc, r->id);
	cfg.crypto = &r->fc.ops;
	r->core = pbft_new(&cfg, err, sizeof(err));
	if (r->core == NULL) {
		fprintf(stderr, "pbft-sim: %s\n", err);
		abort();
	}
}

/* The start's record, durable before the first step. */
static void
replica_started(struct replica *r)
{
	uint8_t rec[PBFT_BOOT_RECORD_LEN];

	record(r, rec, pbft_boot_record(r->core, rec));
}

static void
replica_crash(struct sim *s, struct replica *r)
{
	log_lost(r);
	r->down = true;
	pbft_free(r->core);
	r->core = NULL;
	trace(s, "r%u CRASHES", r->id);
}

static void
replica_restart(struct sim *s, struct replica *r)
{
	struct pbft_status st;

	replica_boot(s, r);
	for (size_t i = 0; i < r->nrecs; i++)
		if (pbft_recover(r->core, r->recs[i].p, r->recs[i].len) == -1)
			violation(s,
			    "replica %u cannot replay its own record "
			    "%zu",
			    r->id, i);
	pbft_get_status(r->core, &st);
	memset(r->app, 0, 32);
	r->last_exec = st.last_executed;
	memset(r->replies, 0, s->o.clients * sizeof(*r->replies));
	r->down = false;
	r->fetching = false;
	if (st.stable_checkpoint > 0) {
		bool found = false;

		for (int i = 0; i < SNAPS; i++)
			if (r->snaps[i].seq == st.stable_checkpoint) {
				memcpy(r->app, r->snaps[i].app, 32);
				found = true;
				if (pbft_recover_state(r->core, r->snaps[i].seq,
				        r->snaps[i].ct.p,
				        r->snaps[i].ct.len) == -1)
					violation(s,
					    "replica %u cannot restore its "
					    "client table at checkpoint %llu",
					    r->id,
					    (unsigned long long)r->snaps[i]
					        .seq);
			}
		if (!found) {
			/* It crashed while fetching that state: the
			 * replica process fetches it again. */
			uint8_t d[32];
			uint64_t seq = pbft_recover_awaiting_state(r->core, d);

			trace(s, "r%u lacks the snapshot of seq %llu", r->id,
			    (unsigned long long)seq);
			fetch_state(s, r, seq, d);
		}
	}
	replica_started(r);
	pbft_get_status(r->core, &st);
	trace(s, "r%u RESTARTS at view %llu%s, stable %llu", r->id,
	    (unsigned long long)st.view, st.muted ? " (mute)" : "",
	    (unsigned long long)st.stable_checkpoint);
}

/* ---- clients ----------------------------------------------------------- */

static void
client_send(struct sim *s, struct client *c, bool all)
{
	struct pbft_msg m = {.type = PBFT_MSG_REQUEST};
	uint8_t auth[FAKE_AUTH_LEN];
	uint32_t primary = (uint32_t)(c->view_guess % s->n);

	m.u.request = (struct pbft_request){.client = c->id,
	    .timestamp = c->ts,
	    .op_len = c->oplen,
	    .op = c->op};
	fake_request_auth(&m.u.request, auth);
	m.u.request.auth = auth;
	m.u.request.auth_len = FAKE_AUTH_LEN;
	encode(s, &m);
	for (uint32_t i = 0; i < s->n; i++)
		if (all || i == primary || s->o.lag || s->o.rejoin ||
		    s->o.crash_all || s->o.stranded)
			push(s, s->now + 1 + rnd_below(&s->rng, MAX_DELAY_MS),
			    E_DELIVER, i, s->n + c->id, 0, s->wb.p, s->wb.len);
}

static void
client_timer(struct sim *s, struct client *c, uint64_t gen)
{
	if (gen != c->timer_gen)
		return;
	if (!c->outstanding) {
		if (c->issued == s->o.requests)
			return;
		c->outstanding = true;
		c->issued++;
		c->ts++;
		c->oplen = 1 + (uint32_t)rnd_below(&s->rng, sizeof(c->op));
		for (uint32_t i = 0; i < c->oplen; i++)
			c->op[i] = (uint8_t)rnd(&s->rng);
		memset(c->rep_have, 0, sizeof(c->rep_have));
		c->retry_ms = CLIENT_RETRY_MS;
		client_send(s, c, false);
	} else {
		client_send(s, c, true);
		c->retry_ms = c->retry_ms * 2 > 5000 ? 5000 : c->retry_ms * 2;
	}
	push(s, s->now + c->retry_ms, E_CLIENT, c->id, 0, ++c->timer_gen, NULL,
	    0);
}

static void
client_reply(struct sim *s, struct client *c, uint32_t from,
    const struct pbft_reply *rep)
{
	uint32_t agree = 0;

	if (!c->outstanding || rep->timestamp != c->ts || from >= s->n ||
	    rep->result_len != 8)
		return;
	c->rep_have[from] = true;
	c->rep_seq[from] = rep->seq;
	memcpy(c->rep_res[from], rep->result, 8);
	for (uint32_t i = 0; i < s->n; i++)
		if (c->rep_have[i] && c->rep_seq[i] == rep->seq &&
		    memcmp(c->rep_res[i], rep->result, 8) == 0)
			agree++;
	if (agree < s->f + 1)
		return;
	if (s->nconf == s->capconf) {
		s->capconf = s->capconf ? s->capconf * 2 : 256;
		s->conf = realloc(s->conf, s->capconf * sizeof(*s->conf));
	}
	s->conf[s->nconf++] = (struct confirmed){c->id, c->ts, rep->seq};
	if (rep->view > c->view_guess)
		c->view_guess = rep->view;
	c->outstanding = false;
	c->done++;
	s->res->completed++;
	if (s->back_at != 0 && s->back_ms == 0)
		s->back_ms = s->now - s->back_at;
	trace(s, "client %u: request ts=%llu confirmed at seq %llu", c->id,
	    (unsigned long long)c->ts, (unsigned long long)rep->seq);
	push(s, s->now + rnd_below(&s->rng, 150), E_CLIENT, c->id, 0,
	    ++c->timer_gen, NULL, 0);
}

/* ---- faults ------------------------------------------------------------ */

static uint32_t
faulty_now(const struct sim *s)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < s->n; i++)
		k += s->r[i].byz || s->r[i].down;
	return k;
}

static void
fault_step(struct sim *s)
{
	uint64_t r = rnd_below(&s->rng, 3);

	if (s->now >= s->fault_end) {
		s->faults_on = false;
		for (uint32_t i = 0; i < s->n; i++) {
			s->r[i].group = 0;
			if (s->r[i].down)
				replica_restart(s, &s->r[i]);
		}
		trace(s, "faults end: network healed, all replicas up");
		return;
	}
	if (r == 0 && s->o.partitions) {
		for (uint32_t i = 0; i < s->n; i++)
			s->r[i].group = (uint32_t)rnd_below(&s->rng, 2);
		trace(s, "partition");
	} else if (r == 1 && s->o.partitions) {
		for (uint32_t i = 0; i < s->n; i++)
			s->r[i].group = 0;
		trace(s, "heal");
	} else if (s->o.crashes) {
		uint32_t i = (uint32_t)rnd_below(&s->rng, s->n);
		struct replica *x = &s->r[i];

		if (x->down) {
			replica_restart(s, x);
		} else if (!x->byz && faulty_now(s) < s->f) {
			if (chance(&s->rng, 0.3)) {
				/* A stop on purpose: the log settles and
				 * says so last. */
				uint8_t rec[PBFT_CLEAN_RECORD_LEN];

				log_settled(s, x);
				record(x, rec, pbft_clean_record(rec));
				trace(s, "r%u STOPS", x->id);
			}
			replica_crash(s, x);
		}
	}
	push(s, s->now + 100 + rnd_below(&s->rng, 600), E_FAULT, 0, 0, 0, NULL,
	    0);
}

/*
 * The lag scenario: no random faults, no drops, clients send every request
 * to every replica. The first primary is cut off for LAG_CUT_MS under load:
 * the others move to view 1 and run many windows ahead of it. Once healed
 * it must catch up and work in view 1 (a replica more than a window behind
 * must not suspect a primary that f+1 replicas are following), which the
 * second cut needs: with another replica cut off, every quorum needs it.
 * From the heal on, a correct replica sending a VIEW-CHANGE for a later view
 * is a violation: the primary of view 1 is correct and followed by a quorum
 * throughout, and the replica cut off second, which cannot tell, must not
 * try to change views alone (it would be left alone in view 2 once back).
 */
static void
lag_step(struct sim *s, uint64_t phase)
{
	switch (phase) {
	case 0:
		s->r[0].group = 1;
		trace(s, "lag: r0 cut off");
		push(s, s->now + LAG_CUT_MS, E_FAULT, 0, 0, 1, NULL, 0);
		break;
	case 1:
		s->r[0].group = 0;
		s->lag_watch = true;
		trace(s, "lag: r0 back");
		push(s, s->now + LAG_SETTLE_MS, E_FAULT, 0, 0, 2, NULL, 0);
		break;
	case 2:
		s->lag_second = 2 + (uint32_t)rnd_below(&s->rng, s->n - 2);
		s->r[s->lag_second].group = 1;
		trace(s, "lag: r%u cut off", s->lag_second);
		push(s, s->now + LAG_SECOND_MS, E_FAULT, 0, 0, 3, NULL, 0);
		break;
	default:
		s->r[s->lag_second].group = 0;
		s->faults_on = false;
		trace(s, "lag: r%u back; faults end", s->lag_second);
		break;
	}
}

/*
 * The rejoin scenario: no random faults, no drops, no Byzantine replica,
 * steady load; the primary of view 0 stays up. Each round, a backup
 * crashes while early votes of its are out whose records are not durable
 * yet (they are lost), comes back REJOIN_DOWN_MS later, and after
 * REJOIN_SETTLE_MS another backup crashes likewise: every quorum then
 * needs the first one's prepares. It must vote again in its view by then,
 * above its durable bound, and never cast again an early vote it sent and
 * forgot (check_vote); a correct replica sending a VIEW-CHANGE is a
 * violation throughout. Phases: round * 4 + (0 crash b, 1 restart b,
 * 2 crash c, 3 restart c); arg's high half counts the tries of a crash.
 */
static void
rejoin_crash(struct sim *s, uint32_t i, uint64_t arg)
{
	struct replica *x = &s->r[i];

	if (!x->early_out && (arg >> 32) < REJOIN_TRIES) {
		push(s, s->now + 1, E_FAULT, 0, 0, arg + (1ULL << 32), NULL, 0);
		return;
	}
	trace(s, "rejoin: r%u crashes with%s early votes out", i,
	    x->early_out ? "" : " no");
	replica_crash(s, x);
	push(s, s->now + REJOIN_DOWN_MS, E_FAULT, 0, 0, (arg & 0xffffffff) + 1,
	    NULL, 0);
}

static void
rejoin_step(struct sim *s, uint64_t arg)
{
	uint64_t phase = arg & 0xffffffff;
	uint32_t backups = s->n - 1;

	if (phase == 0)
		s->rejoin_watch = true;
	switch (phase % 4) {
	case 0:
		if (arg >> 32 == 0) {
			s->rejoin_b = 1 + (uint32_t)rnd_below(&s->rng, backups);
			s->rejoin_c = 1 +
			    (s->rejoin_b +
			        (uint32_t)rnd_below(&s->rng, backups - 1)) %
			        backups;
		}
		rejoin_crash(s, s->rejoin_b, arg);
		return;
	case 2:
		rejoin_crash(s, s->rejoin_c, arg);
		return;
	default:
		replica_restart(
		    s, &s->r[phase % 4 == 1 ? s->rejoin_b : s->rejoin_c]);
		break;
	}
	if (phase + 1 < 4 * REJOIN_ROUNDS) {
		push(s, s->now + REJOIN_SETTLE_MS, E_FAULT, 0, 0, phase + 1,
		    NULL, 0);
		return;
	}
	s->faults_on = false;
	s->rejoin_watch = false;
	trace(s, "rejoin: faults end");
}

/*
 * The whole-cluster crash: under load, every replica crashes at once
 * (once early votes of one are out and not durable: they are lost) and
 * all come back ALL_DOWN_MS later, each mute where it may have forgotten
 * votes. Safety must hold, and the run reports how long it took until a
 * client request completed again (sim_result.back_ms).
 */
static void
crash_all_step(struct sim *s, uint64_t arg)
{
	bool out = false;

	if (arg == 1) {
		for (uint32_t i = 0; i < s->n; i++)
			replica_restart(s, &s->r[i]);
		s->back_at = s->now;
		s->faults_on = false;
		trace(s, "all replicas back; faults end");
		return;
	}
	for (uint32_t i = 0; i < s->n; i++)
		out |= s->r[i].early_out;
	if (!out && (arg >> 32) < REJOIN_TRIES) {
		push(s, s->now + 1, E_FAULT, 0, 0, arg + (1ULL << 32), NULL, 0);
		return;
	}
	for (uint32_t i = 0; i < s->n; i++)
		replica_crash(s, &s->r[i]);
	push(s, s->now + ALL_DOWN_MS, E_FAULT, 0, 0, 1, NULL, 0);
}

/*
 * The stranded scenario: no random faults, no drops, no Byzantine replica,
 * clients send every request to every replica. A backup x is cut off
 * under load; its view timer fires and it moves to view 1 alone (the
 * others keep a working primary and never follow). It comes back, but
 * its link to one other replica y stays dead (STRAND_LINK_MS, or
 * --dead-link MS): x hears only 2f replicas until that link is back too. From
 * then on no request is left, so nothing new commits and no checkpoint comes to
 * its rescue: x must get in step from what the others committed in view 0
 * (their COMMITs, and the bodies by digest) within converge_max_ms.
 */
static uint64_t
strand_link_ms(const struct sim *s)
{
	return s->o.dead_link_ms ? s->o.dead_link_ms : STRAND_LINK_MS;
}

static void
stranded_step(struct sim *s, uint64_t phase)
{
	switch (phase) {
	case 0:
		s->r[s->strand_x].group = 1;
		trace(s, "stranded: r%u cut off", s->strand_x);
		push(s, s->now + STRAND_CUT_MS, E_FAULT, 0, 0, 1, NULL, 0);
		break;
	case 1:
		s->r[s->strand_x].group = 0;
		s->dead_a = s->strand_x;
		s->dead_b =
		    (s->strand_x + 1 + (uint32_t)rnd_below(&s->rng, s->n - 1)) %
		    s->n;
		s->dead_link = true;
		trace(s, "stranded: r%u back, its link to r%u dead",
		    s->strand_x, s->dead_b);
		push(s, s->now + strand_link_ms(s), E_FAULT, 0, 0, 2, NULL, 0);
		break;
	default:
		s->dead_link = false;
		s->faults_on = false;
		trace(s, "stranded: link r%u-r%u back; faults end", s->dead_a,
		    s->dead_b);
		break;
	}
}

/* Whether every correct replica that is up executed up to the same seq. */
static bool
converged(const struct sim *s)
{
	uint64_t e = UINT64_MAX;

	for (uint32_t i = 0; i < s->n; i++) {
		struct pbft_status st;

		if (s->r[i].byz || s->r[i].down)
			continue;
		pbft_get_status(s->r[i].core, &st);
		if (e != UINT64_MAX && st.last_executed != e)
			return false;
		e = st.last_executed;
	}
	return true;
}

/* ---- delivery ---------------------------------------------------------- */

static void
deliver(struct sim *s, struct event *e)
{
	struct replica *r = &s->r[e->to];
	struct wire_arena a;
	struct pbft_msg m;
	struct pbft_event ev = {.msg = &m};

	if (r->down)
		return;
	wire_arena_init(&a, s->arena, s->arena_len);
	if (wire_decode(e->data, e->len, &m, &a) != WIRE_OK)
		return; /* garbage is dropped at the channel */
	if (e->from >= s->n) {
		ev.type = PBFT_EV_REQUEST;
		if (m.type != PBFT_MSG_REQUEST ||
		    m.u.request.client != e->from - s->n)
			return;
	} else {
		if (cut(s, e->from, e->to))
			return;
		ev.type = PBFT_EV_MSG;
		ev.from = e->from;
		if (m.type == PBFT_MSG_VIEW_CHANGE ||
		    m.type == PBFT_MSG_NEW_VIEW)
			trace(s, "r%u <- r%u %s v=%llu", e->to, e->from,
			    wire_type_name(m.type),
			    (unsigned long long)(m.type == PBFT_MSG_NEW_VIEW
			            ? m.u.new_view.view
			            : m.u.view_change.view));
		if (r->byz) {
			byz_keep(r, e->data, e->len);
			if (r->mode == SIM_BYZ_VOTE_ALL)
				byz_vote_all(s, r, &m);
		}
	}
	step(s, r, &ev);
}

static void
check_confirmed(struct sim *s)
{
	for (size_t i = 0; i < s->nconf; i++) {
		struct confirmed *c = &s->conf[i];
		struct agreed *h = hist_at(s, c->seq);
		uint64_t id =
		    (uint64_t)c->client << 48 | (c->ts & 0xffffffffffffULL);
		bool found = false;

		if (!h->have)
			continue; /* only known via state transfer */
		for (uint32_t k = 0; k < h->nreqs; k++)
			found |= h->ids[k] == id;
		if (!found)
			violation(s,
			    "client %u's confirmed request ts=%llu is "
			    "not in the batch executed at seq %llu",
			    c->client, (unsigned long long)c->ts,
			    (unsigned long long)c->seq);
	}
}

static bool
all_done(const struct sim *s)
{
	for (uint32_t i = 0; i < s->o.clients; i++)
		if (s->c[i].done < s->o.requests)
			return false;
	return true;
}

/* ---- the run ----------------------------------------------------------- */

void
sim_opts_default(struct sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->n = 4;
	o->f = 1;
	o->byz = 1;
	o->byz_mode = SIM_BYZ_RANDOM;
	o->clients = 3;
	o->requests = 15;
	o->interval = 4;
	o->crashes = true;
	o->partitions = true;
	o->drop = 0.05;
	o->dup = 0.02;
}

const char *
sim_byz_name(int mode)
{
	static const char *names[] = {"silent", "equivocate", "wrong-digest",
	    "replay", "vote-all", "bad-newview", "garbage", "lying-vc"};

	return mode >= 0 && mode < SIM_BYZ_COUNT ? names[mode] : "random";
}

int
sim_byz_parse(const char *str)
{
	for (int i = 0; i < SIM_BYZ_COUNT; i++)
		if (strcmp(str, sim_byz_name(i)) == 0)
			return i;
	return strcmp(str, "random") == 0 ? SIM_BYZ_RANDOM : -2;
}

static void
setup(struct sim *s)
{
	uint64_t x = s->o.seed;

	for (int i = 0; i < 4; i++)
		s->rng.s[i] = splitmix(&x);
	s->n = s->o.n;
	s->f = s->o.f;
	s->drop = s->o.drop;
	s->dup = s->o.dup;
	s->faults_on = true;
	s->arena_len = wire_arena_bytes_for(PBFT_FRAME_BYTES_MAX);
	s->arena = malloc(s->arena_len);
	wbuf_init_dynamic(&s->wb, PBFT_FRAME_BYTES_MAX);
	s->r = calloc(s->n, sizeof(*s->r));
	s->c = calloc(s->o.clients, sizeof(*s->c));
	for (uint32_t i = 0; i < s->n; i++) {
		struct replica *r = &s->r[i];

		r->id = i;
		r->replies = calloc(s->o.clients, sizeof(*r->replies));
	}
	/* Byzantine replicas: chosen by the seed; often the first primary. */
	for (uint32_t k = 0; k < s->o.byz; k++) {
		uint32_t i = k == 0 && chance(&s->rng, 0.5)
		    ? 0
		    : (uint32_t)rnd_below(&s->rng, s->n);

		while (s->r[i].byz)
			i = (i + 1) % s->n;
		s->r[i].byz = true;
		s->r[i].mode = s->o.byz_mode >= 0
		    ? s->o.byz_mode
		    : (int)rnd_below(&s->rng, SIM_BYZ_COUNT);
	}
	if (s->o.stranded)
		s->strand_x = 1 + (uint32_t)rnd_below(&s->rng, s->n - 1);
	for (uint32_t i = 0; i < s->n; i++) {
		replica_boot(s, &s->r[i]);
		replica_started(&s->r[i]);
		if (s->r[i].byz)
			trace(s, "r%u is Byzantine: %s", i,
			    sim_byz_name(s->r[i].mode));
		push(s, rnd_below(&s->rng, TICK_MS), E_TICK, i, 0, 0, NULL, 0);
	}
	for (uint32_t i = 0; i < s->o.clients; i++) {
		s->c[i].id = i;
		s->c[i].ts = (uint64_t)(i + 1) << 32;
		push(s, rnd_below(&s->rng, 100), E_CLIENT, i, 0, 0, NULL, 0);
	}
	s->fault_end = FAULT_PHASE_MS;
	s->lag_second = UINT32_MAX;
	if (s->o.lag) {
		s->fault_end =
		    LAG_CUT_AT_MS + LAG_CUT_MS + LAG_SETTLE_MS + LAG_SECOND_MS;
		push(s, LAG_CUT_AT_MS, E_FAULT, 0, 0, 0, NULL, 0);
	} else if (s->o.rejoin) {
		s->fault_end = REJOIN_AT_MS +
		    REJOIN_ROUNDS * 2 *
		        (REJOIN_TRIES + REJOIN_DOWN_MS + REJOIN_SETTLE_MS);
		push(s, REJOIN_AT_MS, E_FAULT, 0, 0, 0, NULL, 0);
	} else if (s->o.crash_all) {
		s->fault_end = ALL_AT_MS + REJOIN_TRIES + ALL_DOWN_MS;
		push(s, ALL_AT_MS, E_FAULT, 0, 0, 0, NULL, 0);
	} else if (s->o.stranded) {
		s->fault_end = STRAND_AT_MS + STRAND_CUT_MS + strand_link_ms(s);
		push(s, STRAND_AT_MS, E_FAULT, 0, 0, 0, NULL, 0);
	} else {
		push(s, 100, E_FAULT, 0, 0, 0, NULL, 0);
	}
}

static void
teardown(struct sim *s)
{
	while (s->q.n > 0) {
		struct event e = heap_pop(&s->q);

		free(e.data);
	}
	free(s->q.v);
	for (uint32_t i = 0; i < s->n; i++) {
		struct replica *r = &s->r[i];

		pbft_free(r->core);
		free(r->acts.v);
		free(r->replies);
		blobs_free(r->recs, &r->nrecs);
		free(r->recs);
		log_lost(r);
		free(r->pend);
		free(r->held);
		for (int k = 0; k < SNAPS; k++)
			free(r->snaps[k].ct.p);
		for (size_t k = 0; r->old != NULL && k < 64; k++)
			free(r->old[k].p);
		free(r->old);
	}
	for (uint64_t i = 0; i < s->hist_cap; i++)
		free(s->hist[i].ids);
	free(s->hist);
	free(s->conf);
	free(s->votes);
	free(s->r);
	free(s->c);
	free(s->arena);
	wbuf_clear(&s->wb);
}

static void
dispatch(struct sim *s, struct event *e)
{
	switch (e->kind) {
	case E_DELIVER:
		deliver(s, e);
		break;
	case E_REPLY: {
		struct wire_arena a;
		struct pbft_msg m;

		wire_arena_init(&a, s->arena, s->arena_len);
		if (wire_decode(e->data, e->len, &m, &a) == WIRE_OK &&
		    m.type == PBFT_MSG_REPLY && e->to < s->o.clients)
			client_reply(s, &s->c[e->to], e->from, &m.u.reply);
		break;
	}
	case E_TICK: {
		struct replica *r = &s->r[e->to];
		struct pbft_event ev = {.type = PBFT_EV_TICK};

		if (!r->down) {
			step(s, r, &ev);
			if (r->byz)
				byz_tick(s, r);
		}
		push(s, s->now + TICK_MS, E_TICK, e->to, 0, 0, NULL, 0);
		break;
	}
	case E_CLIENT:
		client_timer(s, &s->c[e->to], e->arg);
		break;
	case E_INSTALL:
		if (!s->r[e->to].down && s->r[e->to].fetch_seq == e->arg)
			try_install(s, &s->r[e->to]);
		break;
	case E_FAULT:
		if (s->o.lag)
			lag_step(s, e->arg);
		else if (s->o.rejoin)
			rejoin_step(s, e->arg);
		else if (s->o.crash_all)
			crash_all_step(s, e->arg);
		else if (s->o.stranded)
			stranded_step(s, e->arg);
		else
			fault_step(s);
		break;
	case E_FLUSH: {
		struct replica *r = &s->r[e->to];

		if (r->down || e->arg != r->flush_gen)
			break;
		r->flush_due = false;
		log_settled(s, r);
		break;
	}
	}
}

/*
 * Stranded: after the final heal, with every request done, whether all
 * correct replicas are at one last_executed (true: the run may end); a
 * violation once converge_max_ms passed without that.
 */
static bool
stranded_check(struct sim *s)
{
	if (s->now < s->fault_end || s->faults_on || !all_done(s))
		return false;
	if (converged(s)) {
		s->converged_at = s->now;
		s->res->converge_ms = s->now - s->fault_end;
		return true;
	}
	if (s->o.converge_max_ms > 0 &&
	    s->now > s->fault_end + s->o.converge_max_ms) {
		violation(s,
		    "stranded: replicas not at one last_executed %u ms "
		    "after the final heal",
		    s->o.converge_max_ms);
		return true;
	}
	return false;
}

int
sim_run(const struct sim_opts *o, struct sim_result *res)
{
	struct sim *s = calloc(1, sizeof(*s));

	memset(res, 0, sizeof(*res));
	s->o = *o;
	s->res = res;
	setup(s);
	while (s->q.n > 0 && !s->failed) {
		struct event e = heap_pop(&s->q);

		s->now = e.t;
		res->events++;
		dispatch(s, &e);
		free(e.data);
		if (o->stranded && stranded_check(s))
			break;
		if (all_done(s) && s->now > s->fault_end && !o->stranded)
			break;
		if (s->now > s->fault_end + LIVENESS_MS) {
			violation(s,
			    "liveness: %llu of %u requests confirmed "
			    "%u s after the faults ended",
			    (unsigned long long)res->completed,
			    o->clients * o->requests, LIVENESS_MS / 1000);
			break;
		}
	}
	check_confirmed(s);
	res->end_ms = s->now;
	res->back_ms = s->back_ms;
	if (o->crash_all && o->back_max_ms > 0 && !s->failed &&
	    (s->back_ms == 0 || s->back_ms > o->back_max_ms))
		violation(s,
		    "whole-cluster crash: back in service after %llu ms, not "
		    "within %u ms",
		    (unsigned long long)s->back_ms, o->back_max_ms);
	res->ok = !s->failed;
	if (s->failed && !o->quiet) {
		uint64_t first =
		    s->ntrace > TRACE_LINES ? s->ntrace - TRACE_LINES : 0;

		printf("pbft-sim: seed %llu: VIOLATION: %s\n",
		    (unsigned long long)o->seed, res->violation);
		printf("--- last %llu trace lines ---\n",
		    (unsigned long long)(s->ntrace - first));
		for (uint64_t i = first; i < s->ntrace; i++)
			printf("%s\n", s->trace[i % TRACE_LINES]);
		for (uint32_t i = 0; i < s->n; i++) {
			struct pbft_status st;

			if (s->r[i].core == NULL)
				continue;
			pbft_get_status(s->r[i].core, &st);
			printf("r%u%s: view %llu%s exec %llu stable %llu next "
			       "%llu queued %u pending %u%s rejected:",
			    i, s->r[i].byz ? " (byz)" : "",
			    (unsigned long long)st.view,
			    st.view_changing ? " (changing)" : "",
			    (unsigned long long)st.last_executed,
			    (unsigned long long)st.stable_checkpoint,
			    (unsigned long long)st.next_seq, st.queued_reqs,
			    st.pending_reqs,
			    st.view_timer_running ? " (timer)" : "");
			for (int k = 0; k < PBFT_REJ_COUNT; k++)
				if (st.rejected[k])
					printf(" %s=%llu", pbft_reject_name(k),
					    (unsigned long long)st.rejected[k]);
			printf("\n");
		}
	}
	teardown(s);
	free(s);
	return res->ok ? 0 : 1;
}
