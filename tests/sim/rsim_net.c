/*
 * rsim_net.c - pbft-replica/net.h for the simulator (see rsim_net.h).
 *
 * No sockets, channels or handshakes: a link is up when the simulator says
 * so, and a frame queued to a peer either leaves through the fabric at
 * once or, while held (net_hold) and not early, waits in that peer's held
 * queue until net_release_marked lets out what net_mark saw, or net_unhold
 * all of it. Early frames overtake held ones, as in net.c. Replies to
 * clients are never held. Addresses, announcements and admission control
 * are not simulated.
 */
#include "rsim_net.h"

#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "net.h"
#include "wbuf.h"
#include "wire.h"

struct held_frame {
	uint8_t *p;
	size_t len;
};

struct peer_q {
	bool up;
	struct held_frame *v;
	size_t n, cap;
	size_t mark; /* frames before it were queued before net_mark */
	uint64_t frames_out;
};

struct net {
	uint32_t id, n;
	struct net_callbacks cb;
	bool hold;
	struct wbuf enc;
	struct peer_q peer[PBFT_REPLICAS_MAX];
	uint64_t frames_in, frames_out;
	uint8_t *arena; /* where delivered frames are decoded, as in net.c */
	size_t arena_len;
};

static struct rsim_fabric fabric;
static struct net *nets[PBFT_REPLICAS_MAX];

void
rsim_net_fabric(const struct rsim_fabric *f)
{
	fabric = *f;
}

struct net *
rsim_net_of(uint32_t id)
{
	return id < PBFT_REPLICAS_MAX ? nets[id] : NULL;
}

const char *
net_refuse_name(enum net_refuse r)
{
	(void)r;
	return "simulated";
}

struct net *
net_new(struct ev_loop *loop, const struct cluster_cfg *cfg, uint32_t id,
    void *key, const struct net_callbacks *cb, char *err, size_t errlen)
{
	struct net *n = calloc(1, sizeof(*n));

	(void)loop;
	(void)key;
	(void)err;
	(void)errlen;
	if (n == NULL)
		fatalx("out of memory");
	n->id = id;
	n->n = cfg->n;
	n->cb = *cb;
	wbuf_init_dynamic(&n->enc, PBFT_FRAME_BYTES_MAX);
	n->arena_len = wire_arena_bytes_for(PBFT_FRAME_BYTES_MAX);
	if ((n->arena = malloc(n->arena_len)) == NULL)
		fatalx("out of memory");
	nets[id] = n;
	return n;
}

static void
q_drop(struct peer_q *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->v[i].p);
	q->n = q->mark = 0;
}

void
net_free(struct net *n)
{
	if (n == NULL)
		return;
	for (uint32_t i = 0; i < PBFT_REPLICAS_MAX; i++) {
		q_drop(&n->peer[i]);
		free(n->peer[i].v);
	}
	wbuf_clear(&n->enc);
	free(n->arena);
	if (nets[n->id] == n)
		nets[n->id] = NULL;
	free(n);
}

static void
emit(struct net *n, bool to_client, uint32_t to, const uint8_t *f, size_t len,
    bool early)
{
	n->frames_out++;
	if (fabric.out != NULL)
		fabric.out(fabric.ctx, n->id, to_client, to, f, len, early);
}

static void
queue(struct net *n, uint32_t to, const uint8_t *f, size_t len, bool early)
{
	struct peer_q *q = &n->peer[to];

	if (!q->up)
		return; /* no channel: dropped, the protocol retransmits */
	q->frames_out++;
	if (!n->hold || early) {
		emit(n, false, to, f, len, n->hold);
		return;
	}
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 16;
		if ((q->v = realloc(q->v, q->cap * sizeof(*q->v))) == NULL)
			fatalx("out of memory");
	}
	if ((q->v[q->n].p = malloc(len)) == NULL)
		fatalx("out of memory");
	memcpy(q->v[q->n].p, f, len);
	q->v[q->n++].len = len;
}

static int
encode(struct net *n, const struct pbft_msg *msg)
{
	wbuf_reset(&n->enc);
	return wire_encode(&n->enc, msg) == -1 || wbuf_failed(&n->enc) ? -1 : 0;
}

void
net_send(
    struct net *n, uint32_t replica, const struct pbft_msg *msg, bool early)
{
	if (replica >= n->n || replica == n->id || encode(n, msg) == -1)
		return;
	queue(n, replica, n->enc.p, n->enc.len, early);
}

void
net_broadcast(struct net *n, const struct pbft_msg *msg, bool early)
{
	if (encode(n, msg) == -1)
		return;
	for (uint32_t i = 0; i < n->n; i++)
		if (i != n->id)
			queue(n, i, n->enc.p, n->enc.len, early);
}

void
net_send_raw(struct net *n, uint32_t replica, const uint8_t *frame, size_t len)
{
	if (replica >= n->n || replica == n->id || len > PBFT_FRAME_BYTES_MAX)
		return;
	queue(n, replica, frame, len, false);
}

void
net_send_client(struct net *n, uint32_t client, const struct pbft_msg *msg)
{
	if (encode(n, msg) == -1)
		return;
	emit(n, true, client, n->enc.p, n->enc.len, false);
}

void
net_get_stats(const struct net *n, struct net_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->frames_in = n->frames_in;
	st->frames_out = n->frames_out;
	for (uint32_t i = 0; i < n->n; i++)
		if (i != n->id && n->peer[i].up)
			st->peers_connected++;
}

void
net_hold(struct net *n)
{
	n->hold = true;
}

void
net_mark(struct net *n)
{
	for (uint32_t i = 0; i < n->n; i++)
		n->peer[i].mark = n->peer[i].n;
}

/* Lets each peer's held frames go, up to its mark or all. */
static void
release_to(struct net *n, bool all)
{
	for (uint32_t i = 0; i < n->n; i++) {
		struct peer_q *q = &n->peer[i];
		size_t to = all ? q->n : q->mark;

		if (to == 0)
			continue;
		for (size_t k = 0; k < to; k++) {
			emit(n, false, i, q->v[k].p, q->v[k].len, false);
			free(q->v[k].p);
		}
		memmove(q->v, q->v + to, (q->n - to) * sizeof(*q->v));
		q->n -= to;
		q->mark = 0;
	}
}

void
net_release_marked(struct net *n)
{
	release_to(n, false);
}

void
net_unhold(struct net *n)
{
	n->hold = false;
	release_to(n, true);
}

const uint8_t *
net_client_request_key(const struct net *n, uint32_t client)
{
	(void)n;
	(void)client;
	return NULL;
}

void
net_disconnect(struct net *n, bool client, uint32_t id, const char *why)
{
	(void)why;
	if (!client && id < n->n)
		q_drop(&n->peer[id]); /* the link comes back by itself */
}

bool
net_peer_up(const struct net *n, uint32_t id)
{
	return id < n->n && n->peer[id].up;
}

size_t
net_peer_queued(const struct net *n, uint32_t id)
{
	(void)n;
	(void)id;
	return 0; /* the simulated link takes everything at once */
}

void
net_peer_link(const struct net *n, uint32_t id, struct net_link *l)
{
	memset(l, 0, sizeof(*l));
	l->up = net_peer_up(n, id);
	l->heard_ms = l->up ? 0 : -1;
}

int
net_peer_address(const struct net *n, uint32_t id, char *buf, size_t len)
{
	(void)n;
	(void)id;
	(void)buf;
	(void)len;
	return -1;
}

void
net_announce(struct net *n, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	(void)n;
	(void)from;
	(void)m;
	(void)frame;
	(void)len; /* addresses are not simulated */
}

/* Decoded once, as net.c does, and handed on. */
void
rsim_net_deliver(struct net *n, bool from_client, uint32_t from,
    const uint8_t *frame, size_t len)
{
	struct wire_arena a;
	struct pbft_msg m;

	n->frames_in++;
	wire_arena_init(&a, n->arena, n->arena_len);
	n->cb.on_msg(n->cb.ctx, from_client, from,
	    wire_decode(frame, len, &m, &a) == WIRE_OK ? &m : NULL, frame, len);
}

void
rsim_net_link(struct net *n, uint32_t peer, bool up)
{
	if (peer >= n->n || peer == n->id)
		return;
	if (!up)
		q_drop(&n->peer[peer]);
	n->peer[peer].up = up;
}

size_t
rsim_net_held(const struct net *n)
{
	size_t k = 0;

	for (uint32_t i = 0; i < n->n; i++)
		k += n->peer[i].n;
	return k;
}
