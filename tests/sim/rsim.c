/*
 * rsim.c - the simulator of the real replica driver; see rsim.h.
 *
 * One event queue in virtual milliseconds: frames in flight, ticks of each
 * replica, client timers, faults. Every replica is the production driver
 * (replica_new without a loop), its network rsim_net.c, its crypto the
 * core's fake one (fake_crypto.c), its data directory its own on the
 * simulated disk (simfs.c); every client is the client library
 * (common/client.c) without a loop, its links rsim_client_link.c. It does
 * not fake the driver's decisions: what it checks is what the replicas send
 * and what the clients complete.
 */
#include "rsim.h"
#include "rsim_byz.h"

#include <sys/random.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "client.h"
#include "defaults.h"
#include "fake_crypto.h"
#include "log.h"
#include "net.h"
#include "pbft.h"
#include "replica.h"
#include "rsim_client_link.h"
#include "rsim_check.h"
#include "rsim_net.h"
#include "rsim_scen.h"
#include "simfs.h"
#include "store.h"
#include "svcop.h"
#include "vfs.h"
#include "wbuf.h"
#include "wire.h"

#define RSIM_CLIENTS_MAX 16
#define TICK_MS REPLICA_TICK_MS
#define DELAY_MS 8 /* a frame's usual delay is 1 .. DELAY_MS */
#define SLOW_MS 300 /* a reordered frame's, at most */
#define CLIENT_RETRY_MS 500
#define OP_BYTES_MAX 48

enum ev_kind {
	E_FRAME,
	E_REPLY,
	E_TICK,
	E_CLIENT,
	E_FAULT,
	E_RESTART,
	E_DISK,
};

struct ev {
	uint64_t t, order;
	enum ev_kind kind;
	/* E_FRAME: to, from (n + client: a client); E_REPLY: to, from;
	 * E_CLIENT: client, CLI_TIMER or CLI_THINK */
	uint32_t a, b;
	uint64_t gen;
	uint8_t *p;
	size_t len;
};

struct node {
	struct replica *r; /* NULL while down */
	bool byz;
	int mode; /* a Byzantine one's: enum rsim_byz */
	uint64_t gen; /* incarnation, for its ticks and disk jobs */
	bool disk_armed; /* an E_DISK is queued for a pending store job */
	uint64_t stalled_until; /* a stopped process: nothing runs before */
	struct fake_crypto fc;
	struct rsim_byz_node bz; /* a Byzantine one's (rsim_byz.h) */
};

/* A request submitted to a client library and not completed yet. */
struct sreq {
	struct cli *cli;
	uint8_t op[OP_BYTES_MAX];
	uint32_t oplen;
	uint64_t ts; /* the library's, once signed */
};

#define CLI_QUEUE 4 /* requests a client has submitted, unanswered */
#define CLI_TIMER 0 /* E_CLIENT: the library's next timer */
#define CLI_THINK 1 /* E_CLIENT: submit more */

struct cli {
	struct rs *s;
	struct pbft_client *c;
	uint32_t id;
	uint64_t due_ms, timer_gen; /* the E_CLIENT of the library's timer */
	uint32_t issued;
	bool thinking; /* a CLI_THINK is queued */
	/* submitted, oldest first (q[head]); the first nsigned signed */
	struct sreq q[CLI_QUEUE];
	uint32_t head, count, nsigned;
};

/* (a, b, c) -> 32 bytes: votes, checkpoint digests, reply results. */
struct entry {
	bool used;
	bool early; /* a vote: sent before its record was durable */
	uint64_t a, b, c;
	uint64_t gen; /* a vote: the sender's incarnation then */
	uint8_t v[PBFT_DIGEST_LEN];
};

struct rs {
	struct rsim_opts o;
	struct rsim_result *res;
	uint64_t rng, now, order;
	struct ev *heap;
	size_t nheap, capheap;
	struct node node[PBFT_REPLICAS_MAX];
	struct cli cli[RSIM_CLIENTS_MAX];
	struct cluster_cfg *cfg;
	char dir[256];
	bool faults; /* the fault phase is on */
	uint32_t down; /* correct replicas down */
	bool cut[PBFT_REPLICAS_MAX][PBFT_REPLICAS_MAX]; /* partitioned */
	struct entry *map;
	size_t nmap, capmap;
	uint8_t *arena;
	size_t arena_len;
	struct wbuf enc;
	struct rchk *chk; /* rsim_check.h */
};

/* ---- randomness, trace, violations ----------------------------------- */

static uint64_t
rnd(struct rs *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
below(struct rs *s, uint64_t n)
{
	return n == 0 ? 0 : rnd(s) % n;
}

static bool
chance(struct rs *s, double p)
{
	return p > 0 && (double)(rnd(s) >> 11) * 0x1.0p-53 < p;
}

static uint64_t
fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static void
trace_ev(struct rs *s, const struct ev *e)
{
	uint64_t h = s->res->trace_digest;

	h = fnv(h, &e->t, sizeof(e->t));
	h = fnv(h, &e->kind, sizeof(e->kind));
	h = fnv(h, &e->a, sizeof(e->a));
	h = fnv(h, &e->b, sizeof(e->b));
	h = fnv(h, e->p, e->len);
	s->res->trace_digest = h;
	s->res->events++;
	if (s->o.trace)
		printf("%llu ev %d %u %u %zu %016llx\n",
		    (unsigned long long)e->t, (int)e->kind, e->a, e->b, e->len,
		    (unsigned long long)h);
	if (s->o.trace && getenv("RSIM_HEX") != NULL) {
		for (size_t i = 0; i < e->len; i++)
			printf("%02x", e->p[i]);
		printf("\n");
	}
}

PBFT_PRINTF(2, 3)
static void
violation(struct rs *s, const char *fmt, ...)
{
	va_list ap;
	size_t off;

	if (!s->res->ok)
		return;
	s->res->ok = false;
	off = (size_t)snprintf(s->res->violation, sizeof(s->res->violation),
	    "t=%llu ms: ", (unsigned long long)s->now);
	va_start(ap, fmt);
	vsnprintf(
	    s->res->violation + off, sizeof(s->res->violation) - off, fmt, ap);
	va_end(ap);
}

/* ---- the event queue --------------------------------------------------- */

static bool
ev_before(const struct ev *x, const struct ev *y)
{
	return x->t != y->t ? x->t < y->t : x->order < y->order;
}

static void
push(struct rs *s, uint64_t t, enum ev_kind k, uint32_t a, uint32_t b,
    uint64_t gen, const uint8_t *p, size_t len)
{
	struct ev e = {.t = t,
	    .order = s->order++,
	    .kind = k,
	    .a = a,
	    .b = b,
	    .gen = gen,
	    .len = len};
	size_t i;

	if (len > 0) {
		if ((e.p = malloc(len)) == NULL)
			fatalx("out of memory");
		memcpy(e.p, p, len);
	}
	if (s->nheap == s->capheap) {
		s->capheap = s->capheap ? 2 * s->capheap : 1024;
		s->heap = realloc(s->heap, s->capheap * sizeof(*s->heap));
		if (s->heap == NULL)
			fatalx("out of memory");
	}
	for (i = s->nheap++; i > 0 && ev_before(&e, &s->heap[(i - 1) / 2]);
	     i = (i - 1) / 2)
		s->heap[i] = s->heap[(i - 1) / 2];
	s->heap[i] = e;
}

static struct ev
pop(struct rs *s)
{
	struct ev top = s->heap[0], last = s->heap[--s->nheap];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < s->nheap) {
		if (c + 1 < s->nheap && ev_before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_before(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	s->heap[i] = last;
	return top;
}

/* ---- the checkers' table ----------------------------------------------- */

static size_t
slot_of(const struct rs *s, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t h = fnv(fnv(fnv(0xcbf29ce484222325ULL, &a, 8), &b, 8), &c, 8);

	return (size_t)(h & (s->capmap - 1));
}

static void
map_grow(struct rs *s)
{
	struct entry *old = s->map;
	size_t oldcap = s->capmap;

	s->capmap = oldcap ? 2 * oldcap : 4096;
	if ((s->map = calloc(s->capmap, sizeof(*s->map))) == NULL)
		fatalx("out of memory");
	for (size_t i = 0; i < oldcap; i++) {
		size_t k;

		if (!old[i].used)
			continue;
		k = slot_of(s, old[i].a, old[i].b, old[i].c);
		while (s->map[k].used)
			k = (k + 1) & (s->capmap - 1);
		s->map[k] = old[i];
	}
	free(old);
}

/* The entry of (a, b, c); with v, made if missing (holding v). */
static struct entry *
lookup(struct rs *s, uint64_t a, uint64_t b, uint64_t c, const uint8_t *v)
{
	size_t k;

	if (s->capmap == 0 || 2 * (s->nmap + 1) > s->capmap)
		map_grow(s);
	for (k = slot_of(s, a, b, c); s->map[k].used;
	     k = (k + 1) & (s->capmap - 1))
		if (s->map[k].a == a && s->map[k].b == b && s->map[k].c == c)
			return &s->map[k];
	if (v == NULL)
		return NULL;
	s->map[k] = (struct entry){.used = true, .a = a, .b = b, .c = c};
	memcpy(s->map[k].v, v, PBFT_DIGEST_LEN);
	s->nmap++;
	return &s->map[k];
}

/* The value kept for (a, b, c): v, if it is the first; else the first. */
static const uint8_t *
remember(struct rs *s, uint64_t a, uint64_t b, uint64_t c, const uint8_t *v)
{
	return lookup(s, a, b, c, v)->v;
}

#define TAG_VOTE 0
#define TAG_CKPT (1ULL << 62)
#define TAG_REPLY (2ULL << 62)
#define TAG_COMMIT (3ULL << 62)

/* A correct replica's COMMIT for seq: the highest view it sent one in. */
static void
note_commit(struct rs *s, uint32_t from, const struct pbft_vote *v)
{
	uint8_t zero[PBFT_DIGEST_LEN] = {0};
	struct entry *e = lookup(s, TAG_COMMIT | from, v->seq, 0, zero);
	uint64_t had;

	memcpy(&had, e->v, sizeof(had));
	if (v->view + 1 > had) {
		had = v->view + 1;
		memcpy(e->v, &had, sizeof(had));
	}
}

/*
 * A replica that sent COMMIT(v, n, d) had prepared (v, n, d) and made that
 * durable first (pbft.h): every VIEW-CHANGE it sends to a later view names
 * n among its prepared (P) in view v or later, unless its stable checkpoint
 * passed n. A restart that lost the record shows here.
 */
static void
check_view_change(
    struct rs *s, uint32_t from, const struct pbft_view_change *vc)
{
	uint64_t lo = vc->stable_seq + 1, hi = lo + 2 * s->o.interval;

	for (uint64_t n = lo; n < hi; n++) {
		const struct entry *e =
		    lookup(s, TAG_COMMIT | from, n, 0, NULL);
		uint64_t v1;
		bool named = false;

		if (e == NULL)
			continue;
		memcpy(&v1, e->v, sizeof(v1));
		if (v1 - 1 >= vc->view)
			continue;
		for (uint32_t k = 0; k < vc->nprepared; k++)
			if (vc->prepared[k].seq == n &&
			    vc->prepared[k].view + 1 >= v1)
				named = true;
		if (!named)
			violation(s,
			    "replica %u sent COMMIT for seq %llu in view %llu "
			    "but its VIEW-CHANGE to view %llu does not name it "
			    "prepared",
			    from, (unsigned long long)n,
			    (unsigned long long)(v1 - 1),
			    (unsigned long long)vc->view);
	}
}

/*
 * One digest per correct replica, view and seq across its PRE-PREPAREs,
 * PREPAREs and COMMITs, restarts included, with one exception: a
 * PRE-PREPARE or PREPARE that left before its record was durable (early,
 * as pbft.h allows) and that a crash then erased binds the replica to
 * nothing but not voting again early for that slot (the core mutes it up
 * to its early-vote bound; the scenarios check that no early vote is cast
 * twice). Its COMMIT afterwards follows the others' prepared certificate,
 * which may be for another digest: no quorum can hold both, since the
 * forgotten vote is never matched by a second one of this replica.
 */
static void
check_vote(struct rs *s, uint32_t from, const char *what,
    const struct pbft_vote *v, bool early)
{
	uint64_t gen = s->node[from].gen;
	struct entry *e = lookup(s, TAG_VOTE | from, v->view, v->seq, NULL);

	if (e == NULL) {
		e = lookup(s, TAG_VOTE | from, v->view, v->seq, v->digest);
		e->early = early;
		e->gen = gen;
		return;
	}
	if (memcmp(e->v, v->digest, PBFT_DIGEST_LEN) == 0) {
		e->early = e->early && early;
		return;
	}
	if (strcmp(what, "commit") == 0 && e->early && e->gen != gen) {
		memcpy(e->v, v->digest, PBFT_DIGEST_LEN);
		e->early = false;
		e->gen = gen;
		return;
	}
	violation(s,
	    "replica %u signed two digests for view %llu seq %llu (%s)", from,
	    (unsigned long long)v->view, (unsigned long long)v->seq, what);
}

static void
check_reply(struct rs *s, uint32_t from, const struct pbft_reply *rep)
{
	uint8_t v[PBFT_DIGEST_LEN] = {0};
	uint64_t h = fnv(0xcbf29ce484222325ULL, &rep->status, 1);
	const uint8_t *had;

	h = fnv(h, rep->result, rep->result_len);
	memcpy(v, &h, sizeof(h));
	had = remember(s, TAG_REPLY | rep->client, rep->timestamp, 0, v);
	if (memcmp(had, v, PBFT_DIGEST_LEN) != 0)
		violation(s,
		    "replica %u answered client %u ts %llu with another "
		    "result than a correct replica did",
		    from, rep->client, (unsigned long long)rep->timestamp);
}

/* What a correct replica sends, decoded as its receivers would. */
static void
check_frame(
    struct rs *s, uint32_t from, const uint8_t *f, size_t len, bool early)
{
	struct wire_arena arena;
	struct pbft_msg m;
	const uint8_t *had;

	wire_arena_init(&arena, s->arena, s->arena_len);
	if (wire_decode(f, len, &m, &arena) != WIRE_OK) {
		violation(s, "replica %u sent an undecodable frame", from);
		return;
	}
	if (rchk_amnesiac(s->chk, from) && m.type != PBFT_MSG_CHECKPOINT &&
	    m.type != PBFT_MSG_REPLY)
		return; /* wiped: it forgot its votes (rsim_check.h) */
	switch (m.type) {
	case PBFT_MSG_PREPREPARE: {
		struct pbft_vote v = {
		    .view = m.u.preprepare.view, .seq = m.u.preprepare.seq};

		memcpy(v.digest, m.u.preprepare.digest, PBFT_DIGEST_LEN);
		check_vote(s, from, "pre-prepare", &v, early);
		break;
	}
	case PBFT_MSG_PREPARE:
		check_vote(s, from, "prepare", &m.u.prepare, early);
		break;
	case PBFT_MSG_COMMIT:
		check_vote(s, from, "commit", &m.u.commit, early);
		note_commit(s, from, &m.u.commit);
		break;
	case PBFT_MSG_VIEW_CHANGE:
		check_view_change(s, from, &m.u.view_change);
		break;
	case PBFT_MSG_CHECKPOINT:
		had = remember(
		    s, TAG_CKPT, m.u.checkpoint.seq, 0, m.u.checkpoint.digest);
		if (memcmp(had, m.u.checkpoint.digest, PBFT_DIGEST_LEN) != 0)
			violation(s,
			    "replica %u's checkpoint %llu differs from "
			    "another correct replica's",
			    from, (unsigned long long)m.u.checkpoint.seq);
		break;
	case PBFT_MSG_REPLY:
		check_reply(s, from, &m.u.reply);
		break;
	default:
		break;
	}
	rsim_scen_frame(s, from, &m, early);
}

/* ---- the network ------------------------------------------------------- */

static bool
link_ok(const struct rs *s, uint32_t i, uint32_t j)
{
	return s->node[i].r != NULL && s->node[j].r != NULL && !s->cut[i][j];
}

static void
links_update(struct rs *s)
{
	for (uint32_t i = 0; i < s->o.n; i++) {
		struct net *n = rsim_net_of(i);

		if (s->node[i].r == NULL || n == NULL)
			continue;
		for (uint32_t j = 0; j < s->o.n; j++)
			if (j != i && net_peer_up(n, j) != link_ok(s, i, j))
				rsim_net_link(n, j, link_ok(s, i, j));
	}
}

/* A Byzantine replica's frame, altered (RSIM_BYZ_MUTATE). */
static size_t
mutate(struct rs *s, uint8_t *f, size_t len)
{
	uint64_t what = below(s, 10);

	if (what < 4 || len == 0)
		return len; /* as it is */
	if (what < 8) {
		for (uint64_t k = 1 + below(s, 3); k > 0; k--)
			f[below(s, len)] ^= (uint8_t)(1 + below(s, 255));
		return len;
	}
	if (what == 8)
		return below(s, len); /* cut short */
	for (size_t i = 0; i < len; i++)
		f[i] = (uint8_t)rnd(s);
	return len;
}

/* RSIM_BYZ_LIE_STATE: a state chunk with one byte of its data altered,
 * re-encoded into s->enc; any other frame as it is. */
static size_t
lie_state(struct rs *s, uint8_t **f, size_t len)
{
	struct wire_arena arena;
	struct pbft_msg m;
	uint8_t *data;

	wire_arena_init(&arena, s->arena, s->arena_len);
	if (wire_decode(*f, len, &m, &arena) != WIRE_OK ||
	    m.type != PBFT_MSG_STATE_CHUNK || m.u.state_chunk.data_len == 0)
		return len;
	if ((data = malloc(m.u.state_chunk.data_len)) == NULL)
		fatalx("out of memory");
	memcpy(data, m.u.state_chunk.data, m.u.state_chunk.data_len);
	data[below(s, m.u.state_chunk.data_len)] ^=
	    (uint8_t)(1 + below(s, 255));
	m.u.state_chunk.data = data;
	wbuf_reset(&s->enc);
	if (wire_encode(&s->enc, &m) == -1 || wbuf_failed(&s->enc))
		fatalx("cannot encode a state chunk");
	free(data);
	free(*f);
	if ((*f = malloc(s->enc.len)) == NULL)
		fatalx("out of memory");
	memcpy(*f, s->enc.p, s->enc.len);
	return s->enc.len;
}

/*
 * --stall-xfer: a correct replica asked for a state chunk in the fault
 * phase stops, half the time, as stall_some stops one: the transfer
 * must go on elsewhere. Whether it is stalled now.
 */
static bool
stall_server(struct rs *s, uint32_t to, const uint8_t *f, size_t len)
{
	struct node *nd = &s->node[to];

	if (!s->o.stall_xfer || len < WIRE_HDR_LEN ||
	    f[5] != PBFT_MSG_FETCH_STATE || nd->r == NULL)
		return false;
	if (s->faults && nd->stalled_until <= s->now && chance(s, 0.5))
		nd->stalled_until = s->now + 200 + below(s, 1300);
	return nd->stalled_until > s->now;
}

/* Its records are on the disk as a crash would leave it, a reply goes
 * to the client it names, what a replica holds is sampled (--long), and
 * a state transfer's requests to Byzantine replicas and stalled ones are
 * counted (rsim_check.h). */
static void
check_durable(struct rs *s, uint32_t from, bool to_client, uint32_t to,
    const uint8_t *f, size_t len)
{
	char why[400];
	int to_mode = !to_client && s->node[to].byz ? s->node[to].mode : -1;

	if (!to_client && !s->node[to].byz && stall_server(s, to, f, len))
		to_mode = RSIM_BYZ_COUNT;
	if (to_client &&
	    rchk_reply_to(s->chk, from, to, f, len, why, sizeof(why)) == -1)
		violation(s, "%s", why);
	if (rchk_frame_out(s->chk, from, to_mode, f, len, why, sizeof(why)) ==
	    -1)
		violation(s, "%s", why);
	if (s->o.long_run && s->node[from].r != NULL &&
	    rchk_mem(s->chk, from, s->node[from].r,
	        rsim_net_held(rsim_net_of(from)), f, len, why,
	        sizeof(why)) == -1)
		violation(s, "%s", why);
}

static uint64_t
delay(struct rs *s)
{
	if (s->faults && !s->o.scenario && chance(s, 0.05))
		return 1 + below(s, SLOW_MS);
	return 1 + below(s, DELAY_MS);
}

/* A frame into the network: lost, duplicated, delayed. */
static void
fabric_send(struct rs *s, uint32_t from, bool to_client, uint32_t to,
    const uint8_t *f, size_t len)
{
	int copies = 1;

	if (s->faults && chance(s, s->o.drop))
		copies = 0;
	if (s->faults && chance(s, s->o.dup))
		copies = 2;
	for (int i = 0; i < copies; i++)
		push(s, rsim_scen_arrival(s, from, to_client, to, delay(s)),
		    to_client ? E_REPLY : E_FRAME, to, from, 0, f, len);
}

static uint64_t
byz_rnd(void *ctx)
{
	return rnd(ctx);
}

static void
byz_send(void *ctx, uint32_t from, uint32_t to, const uint8_t *f, size_t len)
{
	fabric_send(ctx, from, false, to, f, len);
}

static void
fabric_out(void *ctx, uint32_t from, bool to_client, uint32_t to,
    const uint8_t *frame, size_t len, bool early)
{
	struct rs *s = ctx;
	struct rsim_byz_io io = {.ctx = s,
	    .n = s->o.n,
	    .window = 2 * s->o.interval,
	    .rnd = byz_rnd,
	    .send = byz_send};
	uint8_t *f;

	if (!to_client && s->node[to].byz)
		rsim_byz_seen(&s->node[to].bz, &io, frame, len);
	if (!s->node[from].byz) /* rsim_check.h */
		check_durable(s, from, to_client, to, frame, len);
	if (!s->node[from].byz)
		check_frame(s, from, frame, len, early);
	else if (s->node[from].mode == RSIM_BYZ_SILENT)
		return;
	if (s->node[from].byz && !to_client &&
	    rsim_byz_handles(s->node[from].mode)) {
		rsim_byz_out(&s->node[from].bz, &io, to, frame, len);
		return;
	}
	if ((f = malloc(len ? len : 1)) == NULL)
		fatalx("out of memory");
	memcpy(f, frame, len);
	if (s->node[from].byz && s->node[from].mode == RSIM_BYZ_MUTATE)
		len = mutate(s, f, len);
	else if (s->node[from].byz && s->node[from].mode == RSIM_BYZ_LIE_STATE)
		len = lie_state(s, &f, len);
	else if (s->node[from].byz && to_client)
		len = rsim_byz_to_client(&s->node[from].bz, s->o.n, &f, len);
	fabric_send(s, from, to_client, to, f, len);
	free(f);
}

static void
deliver(struct rs *s, const struct ev *e)
{
	struct net *n = rsim_net_of(e->a);
	bool from_client = e->b >= s->o.n;

	if (s->node[e->a].r == NULL || n == NULL)
		return;
	if (!from_client && !link_ok(s, e->a, e->b))
		return; /* the link broke with the frame in it */
	if (from_client && s->node[e->a].byz &&
	    !rsim_byz_hears_client(&s->node[e->a].bz))
		return;
	rsim_net_deliver(
	    n, from_client, from_client ? e->b - s->o.n : e->b, e->p, e->len);
}

/* ---- replicas ---------------------------------------------------------- */

static double
clock_now(void *ctx)
{
	const struct rs *s = ctx;

	return (double)s->now / 1000.0;
}

/*
 * The process's randomness, from the seed too: this definition takes the
 * place of libc's for the code linked into the simulator (the service
 * seeds its hash table with getrandom, and the table's order reaches its
 * snapshots' bytes).
 */
static uint64_t getrandom_state = 1;

ssize_t
getrandom(void *buf, size_t len, unsigned int flags)
{
	uint8_t *b = buf;

	(void)flags;
	for (size_t i = 0; i < len; i++) {
		getrandom_state = getrandom_state * 6364136223846793005ULL +
		    1442695040888963407ULL;
		b[i] = (uint8_t)(getrandom_state >> 56);
	}
	return (ssize_t)len;
}

static uint32_t
env_random(void *ctx)
{
	return (uint32_t)rnd(ctx);
}

static void clients_link(struct rs *s, uint32_t i, bool up);

/*
 * replica_new refused to start i: over damage done to its disk
 * (rsim_check.h), the operator's answer is to wipe the data directory and
 * start it empty. True when wiped.
 */
static bool
start_refused(struct rs *s, uint32_t i, const char *err)
{
	char why[400], dir[300];
	int rc = rchk_refused(s->chk, i, err, why, sizeof(why));

	if (rc == -1)
		violation(s, "%s", why);
	if (rc != 1)
		return false;
	snprintf(dir, sizeof(dir), "%s/node-%u", s->dir, i);
	simfs_remove(dir);
	if (s->o.trace)
		printf("%llu r%u REFUSED (%s): WIPED\n",
		    (unsigned long long)s->now, i, err);
	return true;
}

static void
node_start(struct rs *s, uint32_t i)
{
	struct node *nd = &s->node[i];
	struct replica_opts opts = {.id = i,
	    .sup_fd = -1,
	    .now = clock_now,
	    .random = env_random,
	    .env_ctx = s,
	    .core_crypto = &nd->fc.ops,
	    .test_flags = nd->byz ? 0 : s->o.test_flags,
	    .core_test_flags = nd->byz
	        ? 0
	        : s->o.core_test_flags | rsim_scen_core_flags(s, i)};
	char err[256];

	fake_crypto_init(&nd->fc, i);
	nd->stalled_until = 0;
	nd->r = replica_new(NULL, s->cfg, NULL, &opts, err, sizeof(err));
	if (nd->r == NULL && start_refused(s, i, err))
		nd->r =
		    replica_new(NULL, s->cfg, NULL, &opts, err, sizeof(err));
	if (nd->r == NULL) {
		violation(s, "replica %u does not start: %s", i, err);
		return;
	}
	if (rchk_started(s->chk, i, err, sizeof(err)) == -1)
		violation(s, "%s", err);
	nd->gen++;
	push(s, s->now + 1 + below(s, TICK_MS), E_TICK, i, 0, nd->gen, NULL, 0);
	links_update(s);
	clients_link(s, i, true);
}

static void
node_crash(struct rs *s, uint32_t i)
{
	struct node *nd = &s->node[i];

	/* The disk first: what was not durable is lost, the last write may
	 * be torn; then the process, with no more disk work. */
	simfs_crash(store_dir(replica_store(nd->r)), rnd(s) | 1);
	replica_abandon(nd->r);
	nd->r = NULL;
	nd->gen++;
	nd->disk_armed = false;
	s->down++;
	s->res->crashes++;
	links_update(s);
	clients_link(s, i, false);
	if (s->o.trace)
		printf("%llu r%u CRASHES\n", (unsigned long long)s->now, i);
}

static void
node_tick(struct rs *s, const struct ev *e)
{
	struct node *nd = &s->node[e->a];

	if (nd->r == NULL || e->gen != nd->gen)
		return;
	replica_tick(nd->r);
	push(s, e->t + TICK_MS, E_TICK, e->a, 0, nd->gen, NULL, 0);
}

/*
 * The loop would wait now: the group commit may start a flush. A store job
 * handed over (a flush, a snapshot, a compaction) ends at a later event,
 * in any order against the frames in flight.
 */
static void
node_idle(struct rs *s, uint32_t i)
{
	struct node *nd = &s->node[i];
	uint64_t d = 1 + below(s, 4);

	if (nd->r == NULL)
		return;
	replica_before_wait(nd->r);
	if (nd->disk_armed || !store_work_pending(replica_store(nd->r)))
		return;
	if (s->faults && chance(s, 0.1))
		d = 1 + below(s, 60); /* a slow disk */
	nd->disk_armed = true;
	push(s, s->now + d, E_DISK, i, 0, nd->gen, NULL, 0);
}

static void
node_disk(struct rs *s, const struct ev *e)
{
	struct node *nd = &s->node[e->a];

	if (nd->r == NULL || e->gen != nd->gen)
		return;
	nd->disk_armed = false;
	if (store_work(replica_store(nd->r), (uint32_t)rnd(s)) == 1)
		replica_disk_event(nd->r);
}

/* ---- clients ----------------------------------------------------------- */

/*
 * Each client is the client library (common/client.c) without a loop, its
 * links those of rsim_client_link.c, its clock the simulator's, its
 * requests authenticated by the fake crypto's authenticator (the replicas
 * check it with fake_crypto's verify_request). It retransmits, counts
 * matching replies and orders its requests itself; what the simulator
 * checks is what it completes.
 */

static uint64_t
client_clock(void *ctx)
{
	const struct cli *c = ctx;

	return c->s->now * 1000;
}

/*
 * The library signs what was submitted in submission order: the next
 * request not signed yet must be the one it authenticates now.
 */
static size_t
client_auth(void *ctx, const struct pbft_request *req, uint8_t *auth)
{
	struct cli *c = ctx;
	struct sreq *q = &c->q[(c->head + c->nsigned) % CLI_QUEUE];

	if (c->nsigned == c->count || req->client != c->id ||
	    req->op_len != q->oplen || memcmp(req->op, q->op, q->oplen) != 0)
		violation(c->s,
		    "client %u signed a request it was not given next", c->id);
	else
		q->ts = req->timestamp;
	c->nsigned += c->nsigned < c->count;
	fake_request_auth(req, auth);
	return FAKE_AUTH_LEN;
}

/* A ledger submission or a put or get of one of a few keys. */
static void
client_op(struct rs *s, struct cli *c, struct sreq *q)
{
	struct wbuf wb;
	char key[16];
	uint8_t val[16];
	size_t vlen = 1 + below(s, sizeof(val));

	wbuf_init_fixed(&wb, q->op, sizeof(q->op));
	snprintf(key, sizeof(key), "k%u.%u", c->id, (unsigned)below(s, 4));
	for (size_t i = 0; i < vlen; i++)
		val[i] = (uint8_t)rnd(s);
	switch (below(s, 3)) {
	case 0:
		ledger_op_submit(&wb, val, vlen);
		break;
	case 1:
		ledger_op_put(&wb, key, strlen(key), val, vlen);
		break;
	default:
		ledger_op_get(&wb, key, strlen(key));
		break;
	}
	q->oplen = (uint32_t)wb.len;
}

/*
 * After every call into a client: its signing step, as a loop's before it
 * waits, and an event for its next timer if that moved.
 */
static void
client_settle(struct rs *s, struct cli *c)
{
	uint64_t due;

	pbft_client_before_wait(c->c);
	due = pbft_client_next_due(c->c);
	if (due == UINT64_MAX) {
		c->due_ms = UINT64_MAX;
		return;
	}
	due = (due + 999) / 1000;
	if (due < s->now)
		due = s->now;
	if (due == c->due_ms)
		return;
	c->due_ms = due;
	push(s, due, E_CLIENT, c->id, CLI_TIMER, ++c->timer_gen, NULL, 0);
}

/* The client thinks, then submits again in 1 .. 100 ms. */
static void
client_think(struct rs *s, struct cli *c, uint64_t max_ms)
{
	if (c->thinking)
		return;
	c->thinking = true;
	push(s, s->now + 1 + below(s, max_ms), E_CLIENT, c->id, CLI_THINK, 0,
	    NULL, 0);
}

/*
 * f+1 replicas agreed (the library says): the request must be the oldest
 * unanswered one (the library sends one at a time, in submission order),
 * its result the one the correct replicas sent for it (check_reply keeps
 * it).
 */
static void
client_done(void *arg, const struct pbft_result *res)
{
	struct sreq *q = arg;
	struct cli *c = q->cli;
	struct rs *s = c->s;
	uint8_t v[PBFT_DIGEST_LEN] = {0};
	uint64_t h = fnv(0xcbf29ce484222325ULL, &res->svc_status, 1);
	const struct entry *e;

	if (res->status == PBFT_CLIENT_CANCELLED)
		return; /* the run is over */
	if (q != &c->q[c->head] || c->nsigned == 0) {
		violation(s,
		    "client %u: a request completed out of submission order",
		    c->id);
		return;
	}
	if (res->status != PBFT_CLIENT_OK) {
		violation(s, "client %u: a request ended with status %d", c->id,
		    (int)res->status);
		return;
	}
	h = fnv(h, res->result, res->result_len);
	memcpy(v, &h, sizeof(h));
	e = lookup(s, TAG_REPLY | c->id, q->ts, 0, NULL);
	if (e == NULL || memcmp(e->v, v, PBFT_DIGEST_LEN) != 0)
		violation(s,
		    "client %u ts %llu completed with a result no correct "
		    "replica sent",
		    c->id, (unsigned long long)q->ts);
	c->head = (c->head + 1) % CLI_QUEUE;
	c->count--;
	c->nsigned--;
	s->res->completed++;
	rsim_scen_completed(s);
	if (c->count == 0)
		client_think(s, c, 100);
}

/*
 * Load throughout the fault phase, and at least requests: mostly one
 * request at a time, sometimes a burst (they wait in the library, signed
 * together), sometimes more while some are unanswered (signed once the
 * sign interval is over).
 */
static void
client_submit(struct rs *s, struct cli *c)
{
	uint32_t k = chance(s, 0.2) ? 2 + (uint32_t)below(s, 2) : 1;

	c->thinking = false;
	if (c->issued >= s->o.requests && s->now >= rsim_scen_load_ms(s))
		return;
	for (; k > 0 && c->count < CLI_QUEUE; k--) {
		struct sreq *q = &c->q[(c->head + c->count) % CLI_QUEUE];

		client_op(s, c, q);
		q->cli = c;
		if (pbft_client_submit(c->c, q->op, q->oplen, client_done, q) ==
		    -1) {
			violation(s, "client %u cannot submit", c->id);
			return;
		}
		c->count++;
		c->issued++;
	}
	if (c->count < CLI_QUEUE && chance(s, 0.1))
		client_think(s, c, 20);
}

static void
client_event(struct rs *s, const struct ev *e)
{
	struct cli *c = &s->cli[e->a];

	if (e->b == CLI_THINK) {
		client_submit(s, c);
	} else {
		if (e->gen != c->timer_gen)
			return;
		c->due_ms = UINT64_MAX;
		pbft_client_tick(c->c);
	}
	client_settle(s, c);
}

/* A replica's frame reaches its client (through their link, if up). */
static void
client_reply(struct rs *s, const struct ev *e)
{
	if (e->a >= s->o.clients)
		return;
	rsim_client_deliver(e->a, e->b, e->p, e->len);
	client_settle(s, &s->cli[e->a]);
}

/* A client's frame to a replica, lost or delayed as the replicas' are. */
static void
client_out(
    void *ctx, uint32_t client, uint32_t to, const uint8_t *frame, size_t len)
{
	struct rs *s = ctx;

	if (!(s->faults && chance(s, s->o.drop)))
		push(s, s->now + delay(s), E_FRAME, to, s->o.n + client, 0,
		    frame, len);
}

/* Replica i came up or went down: so do the clients' links to it. */
static void
clients_link(struct rs *s, uint32_t i, bool up)
{
	for (uint32_t k = 0; k < s->o.clients; k++) {
		if (s->cli[k].c == NULL)
			continue;
		rsim_client_link(k, i, up);
		client_settle(s, &s->cli[k]);
	}
}

/* For a liveness violation: the first client waiting for an answer. */
static void
clients_waiting(struct rs *s, char *buf, size_t len)
{
	buf[0] = '\0';
	for (uint32_t i = 0; i < s->o.clients; i++) {
		const struct cli *c = &s->cli[i];
		const struct sreq *q = &c->q[c->head];

		if (c->nsigned == 0)
			continue;
		snprintf(buf, len,
		    "; client %u waits for ts %llu, which correct replicas %s",
		    i, (unsigned long long)q->ts,
		    lookup(s, TAG_REPLY | i, q->ts, 0, NULL) != NULL
		        ? "answered"
		        : "never answered");
		return;
	}
}

static void
client_start(struct rs *s, uint32_t i)
{
	struct cli *c = &s->cli[i];
	struct pbft_client_opts opts = {.cfg = s->cfg,
	    .client_id = i,
	    .timeout_ms = s->o.fault_ms + s->o.live_ms + 1000,
	    .retransmit_ms = CLIENT_RETRY_MS,
	    .max_outstanding = CLI_QUEUE,
	    .now_us = client_clock,
	    .auth = client_auth,
	    .env_ctx = c};
	char err[256];

	c->id = i;
	c->s = s;
	c->due_ms = UINT64_MAX;
	if ((c->c = pbft_client_new(NULL, &opts, err, sizeof(err))) == NULL) {
		violation(s, "client %u does not start: %s", i, err);
		return;
	}
	for (uint32_t k = 0; k < s->o.n; k++)
		rsim_client_link(i, k, s->node[k].r != NULL);
	client_think(s, c, 50);
}

/* ---- faults ------------------------------------------------------------ */

static void
partition(struct rs *s)
{
	uint32_t side = (uint32_t)below(s, 1u << s->o.n);

	for (uint32_t i = 0; i < s->o.n; i++)
		for (uint32_t j = 0; j < s->o.n; j++)
			s->cut[i][j] = ((side >> i) & 1) != ((side >> j) & 1);
	links_update(s);
	if (s->o.trace)
		printf("%llu PARTITION %x\n", (unsigned long long)s->now, side);
}

static void
heal(struct rs *s)
{
	memset(s->cut, 0, sizeof(s->cut));
	links_update(s);
}

static void
crash_some(struct rs *s)
{
	uint32_t i = (uint32_t)below(s, s->o.n);
	uint64_t back = 100 + below(s, 2000);

	/* At most f replicas faulty at once, but one correct replica may
	 * crash beside f Byzantine ones: no quorum while it is down, and
	 * safety must hold regardless. */
	if (s->node[i].byz || s->node[i].r == NULL ||
	    (s->down > 0 && s->down + s->o.byz >= s->o.f))
		return;
	node_crash(s, i);
	if (s->now + back > s->o.fault_ms)
		back = s->o.fault_ms > s->now ? s->o.fault_ms - s->now : 1;
	push(s, s->now + back, E_RESTART, i, 0, 0, NULL, 0);
}

/*
 * A replica stops for a while (a stopped or swapped-out process): what
 * reaches it waits, in order; it sends nothing; its ticks and disk
 * completions come late. Correct replicas too: it only delays.
 */
static void
stall_some(struct rs *s)
{
	struct node *nd = &s->node[below(s, s->o.n)];

	if (nd->r != NULL)
		nd->stalled_until = s->now + 50 + below(s, 1500);
}

/* An event for a stalled replica: again when it runs. */
static bool
stalled(struct rs *s, const struct ev *e)
{
	const struct node *nd = &s->node[e->a];

	if ((e->kind != E_FRAME && e->kind != E_TICK && e->kind != E_DISK) ||
	    nd->stalled_until <= s->now)
		return false;
	push(s, nd->stalled_until, e->kind, e->a, e->b, e->gen, e->p, e->len);
	return true;
}

static void
fault(struct rs *s)
{
	if (s->now >= s->o.fault_ms) {
		s->faults = false;
		heal(s);
		return;
	}
	if (chance(s, 0.5))
		heal(s);
	switch (below(s, 3)) {
	case 0:
		if (s->o.partitions)
			partition(s);
		break;
	case 1:
		stall_some(s);
		break;
	default:
		if (s->o.crashes)
			crash_some(s);
		break;
	}
	push(s, s->now + 200 + below(s, 1500), E_FAULT, 0, 0, 0, NULL, 0);
}

/*
 * --corrupt: before a crashed correct replica starts again, half the time
 * a byte of its disk is damaged (rsim_check.h), when a replica that then
 * refuses to start and is wiped (one that forgot its votes: faulty) keeps
 * the faulty and down replicas within f.
 */
static void
maybe_corrupt(struct rs *s, uint32_t i)
{
	char why[400];

	if (!s->o.corrupt ||
	    s->o.byz + rchk_amnesiacs(s->chk) + 1 + s->down > s->o.f ||
	    !chance(s, 0.5))
		return;
	if (rchk_corrupt(s->chk, i, rnd(s), why, sizeof(why)) == -1)
		violation(s, "%s", why);
	if (s->o.trace)
		printf(
		    "%llu r%u DISK DAMAGED\n", (unsigned long long)s->now, i);
}

/* ---- the run ----------------------------------------------------------- */

static void
run_event(struct rs *s, const struct ev *e)
{
	if (stalled(s, e))
		return;
	switch (e->kind) {
	case E_FRAME:
		deliver(s, e);
		break;
	case E_REPLY:
		client_reply(s, e);
		break;
	case E_TICK:
		node_tick(s, e);
		break;
	case E_CLIENT:
		client_event(s, e);
		break;
	case E_FAULT:
		if (s->o.scenario)
			rsim_scen_step(s, e->gen);
		else
			fault(s);
		break;
	case E_RESTART:
		if (s->node[e->a].r == NULL) {
			s->down--;
			maybe_corrupt(s, e->a);
			node_start(s, e->a);
		}
		break;
	case E_DISK:
		node_disk(s, e);
		break;
	}
	if (e->kind != E_REPLY && e->kind != E_CLIENT && e->kind != E_FAULT)
		node_idle(s, e->a);
	rsim_scen_after(s);
}

static bool
all_done(const struct rs *s)
{
	for (uint32_t i = 0; i < s->o.clients; i++)
		if (s->cli[i].issued < s->o.requests ||
		    (s->cli[i].c != NULL &&
		        pbft_client_outstanding(s->cli[i].c) > 0) ||
		    s->now < s->o.fault_ms)
			return false;
	return true;
}

static struct cluster_cfg *
make_cfg(const struct rs *s)
{
	struct cluster_cfg *c = calloc(1, sizeof(*c));

	if (c == NULL ||
	    (c->clients = calloc(s->o.clients, sizeof(*c->clients))) == NULL)
		fatalx("out of memory");
	snprintf(c->name, sizeof(c->name), "rsim");
	c->n = s->o.n;
	c->f = s->o.f;
	c->checkpoint_interval = s->o.interval;
	c->window = 2 * s->o.interval;
	c->view_change_timeout_ms = 1000;
	c->batch_max = PBFT_DEFAULT_BATCH_REQS;
	c->batch_bytes_max = PBFT_DEFAULT_BATCH_BYTES;
	c->batch_timeout_ms = 10;
	c->inflight_max = PBFT_DEFAULT_INFLIGHT;
	c->request_timeout_ms = 1000;
	c->fsync = CFG_FSYNC_BATCH;
	c->queue_bytes_max = PBFT_DEFAULT_QUEUE_BYTES;
	c->bootstrap_id = UINT32_MAX;
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", s->dir);
	for (uint32_t i = 0; i < s->o.n; i++) {
		c->nodes[i].id = i;
		c->nodes[i].has_address = true;
	}
	c->nclients = s->o.clients;
	for (uint32_t i = 0; i < s->o.clients; i++)
		snprintf(
		    c->clients[i].name, sizeof(c->clients[i].name), "c%u", i);
	return c;
}

static void
setup(struct rs *s, const struct rsim_opts *o, struct rsim_result *res)
{
	struct rsim_fabric fab = {.ctx = s, .out = fabric_out};
	struct rsim_client_fabric cfab = {.ctx = s, .out = client_out};

	memset(s, 0, sizeof(*s));
	memset(res, 0, sizeof(*res));
	res->ok = true;
	res->trace_digest = 0xcbf29ce484222325ULL;
	s->o = *o;
	s->o.fault_ms = (uint32_t)rsim_scen_fault_ms(o);
	s->res = res;
	s->rng = o->seed * 0x2545f4914f6cdd1dULL + 1;
	getrandom_state = o->seed;
	simfs_reset();
	vfs_set(simfs_ops());
	snprintf(s->dir, sizeof(s->dir), "/rsim");
	if (vfs_mkdir(s->dir, 0700) == -1)
		fatal("cannot make a data directory");
	s->cfg = make_cfg(s);
	s->arena_len = wire_arena_bytes_for(PBFT_FRAME_BYTES_MAX);
	if ((s->arena = malloc(s->arena_len)) == NULL)
		fatalx("out of memory");
	wbuf_init_dynamic(&s->enc, PBFT_FRAME_BYTES_MAX);
	rsim_net_fabric(&fab);
	rsim_client_fabric(&cfab);
	store_inline_workers(true);
	s->chk = rchk_new(o->n, o->clients, s->dir, o->seed, o->durable_every);
	s->faults = true;
	/* Random mode: each Byzantine replica its own (at n = 7, a liar and
	 * a silent one may serve state side by side). */
	for (uint32_t i = 0; i < o->byz; i++) {
		struct node *nd = &s->node[(o->seed + i) % o->n];

		nd->byz = true;
		nd->mode = o->byz_mode == RSIM_BYZ_RANDOM
		    ? (int)below(s, RSIM_BYZ_COUNT)
		    : o->byz_mode;
		if (o->nbyz_modes > 0) /* --byz-modes */
			nd->mode = o->byz_modes[i % o->nbyz_modes];
		nd->bz = (struct rsim_byz_node){.id = (uint32_t)(nd - s->node),
		    .mode = nd->mode,
		    .fc = &nd->fc};
		if (o->trace)
			printf("r%u is Byzantine: %s\n", nd->bz.id,
			    rsim_byz_name(nd->mode));
	}
}

static void
teardown(struct rs *s)
{
	for (uint32_t i = 0; i < s->o.clients; i++)
		pbft_client_free(s->cli[i].c);
	for (uint32_t i = 0; i < s->o.n; i++) {
		replica_free(s->node[i].r);
		rsim_byz_free(&s->node[i].bz);
	}
	while (s->nheap > 0) {
		struct ev e = pop(s);

		free(e.p);
	}
	free(s->heap);
	free(s->map);
	free(s->arena);
	rchk_corrupt_counts(s->chk, s->res->corrupt);
	s->res->xfer_mixed = rchk_xfer_mixed(s->chk);
	rchk_free(s->chk);
	wbuf_clear(&s->enc);
	free(s->cfg->clients);
	free(s->cfg);
	s->res->trace_digest ^= simfs_digest();
	simfs_reset();
}

/* --long: what the replicas held must not grow with the run. */
static void
mem_end(struct rs *s)
{
	char why[400];

	if (s->res->ok && rchk_mem_end(s->chk, why, sizeof(why)) == -1)
		violation(s, "%s", why);
	if (!s->o.quiet)
		rchk_mem_print(s->chk);
}

/* --trace: each replica's status at the end, as pbftd would see it. */
static void
dump_status(struct rs *s)
{
	static char buf[16384];

	for (uint32_t i = 0; i < s->o.n; i++)
		if (s->node[i].r != NULL &&
		    replica_status_json(s->node[i].r, buf, sizeof(buf)) == 0)
			printf("r%u%s held %zu, store job pending %d: %s\n", i,
			    s->node[i].byz ? " (byz)" : "",
			    rsim_net_held(rsim_net_of(i)),
			    (int)store_work_pending(
			        replica_store(s->node[i].r)),
			    buf);
}

int
rsim_run(const struct rsim_opts *o, struct rsim_result *res)
{
	struct rs s;
	uint64_t end = rsim_scen_fault_ms(o) + o->live_ms;

	setup(&s, o, res);
	for (uint32_t i = 0; i < o->n && res->ok; i++)
		node_start(&s, i);
	for (uint32_t i = 0; i < o->clients && res->ok; i++)
		client_start(&s, i);
	rsim_scen_start(&s);
	if (!o->scenario) {
		push(&s, 100 + below(&s, 500), E_FAULT, 0, 0, 0, NULL, 0);
		push(&s, o->fault_ms, E_FAULT, 0, 0, 0, NULL, 0);
	}
	while (res->ok && s.nheap > 0 &&
	    !(all_done(&s) && rsim_scen_may_end(&s))) {
		struct ev e = pop(&s);

		if (e.t > end)
			break;
		s.now = e.t;
		trace_ev(&s, &e);
		run_event(&s, &e);
		free(e.p);
	}
	if (res->ok && !all_done(&s)) {
		char why[160];

		clients_waiting(&s, why, sizeof(why));
		violation(&s,
		    "liveness: requests not done %u ms after the faults "
		    "stopped (%llu completed%s)",
		    o->live_ms, (unsigned long long)res->completed, why);
	} else if (res->ok && !rsim_scen_may_end(&s)) {
		violation(&s, "the scenario's end not reached");
	}
	rsim_scen_finish(&s);
	res->end_ms = s.now;
	if (o->trace)
		dump_status(&s);
	if (o->long_run)
		mem_end(&s);
	teardown(&s);
	return res->ok ? 0 : 1;
}

void
rsim_opts_default(struct rsim_opts *o)
{
	*o = (struct rsim_opts){.seed = 1,
	    .n = 4,
	    .f = 1,
	    .byz = 1,
	    .byz_mode = RSIM_BYZ_RANDOM,
	    .clients = 3,
	    .requests = 30,
	    .interval = 8,
	    .crashes = true,
	    .partitions = true,
	    .drop = 0.02,
	    .dup = 0.02,
	    .fault_ms = 8000,
	    .live_ms = 30000,
	    .durable_every = 24};
}

/* ---- for the scenarios (rsim_scen.c) ---------------------------------- */

const struct rsim_opts *
rsim_opts_of(const struct rs *s)
{
	return &s->o;
}

uint64_t
rsim_now(const struct rs *s)
{
	return s->now;
}

uint64_t
rsim_below(struct rs *s, uint64_t n)
{
	return below(s, n);
}

void
rsim_fail(struct rs *s, const char *what)
{
	violation(s, "%s", what);
}

void
rsim_trace(const struct rs *s, const char *what)
{
	printf("%llu %s\n", (unsigned long long)s->now, what);
}

void
rsim_cut(struct rs *s, uint32_t i, uint32_t j, bool cut)
{
	s->cut[i][j] = s->cut[j][i] = cut;
	links_update(s);
}

void
rsim_crash(struct rs *s, uint32_t i)
{
	node_crash(s, i);
}

void
rsim_restart(struct rs *s, uint32_t i)
{
	if (s->node[i].r != NULL)
		return;
	s->down--;
	node_start(s, i);
}

void
rsim_at(struct rs *s, uint64_t t, uint64_t arg)
{
	push(s, t, E_FAULT, 0, 0, arg, NULL, 0);
}

void
rsim_faults_end(struct rs *s)
{
	s->faults = false;
}

struct replica *
rsim_replica(const struct rs *s, uint32_t i)
{
	return s->node[i].r;
}

bool
rsim_byz(const struct rs *s, uint32_t i)
{
	return s->node[i].byz;
}

void
rsim_set_back_ms(struct rs *s, uint64_t ms)
{
	s->res->back_ms = ms;
}

void
rsim_set_converge_ms(struct rs *s, uint64_t ms)
{
	s->res->converge_ms = ms;
}
