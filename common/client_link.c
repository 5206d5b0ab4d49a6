/*
 * client_link.c - the client library's links in production (client_link.h):
 * to each replica a connection of conn.h carrying an authenticated channel,
 * dialled again with jittered, doubling backoff when it fails or closes,
 * and closed when its handshake takes longer than HANDSHAKE_MS. Frames are
 * sealed and written once per loop iteration (conn_group's flusher).
 */
#include "client_link.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "conn.h"
#include "log.h"

#define HANDSHAKE_MS 5000

/* The link to one replica: a connection (conn.h), redialled with backoff. */
struct client_conn {
	struct client_links *l;
	uint32_t replica;
	struct conn io;
	ev_timer retry; /* the next dial, or the handshake's deadline */
	uint32_t backoff_ms; /* conn_backoff */
};

struct client_links {
	struct pbft_client *c;
	struct ev_loop *loop;
	const struct cluster_cfg *cfg;
	uint32_t client_id;
	void *key;
	bool closing; /* client_links_free: tell the client nothing */
	struct conn_group group; /* one write per connection per iteration */
	struct client_conn conns[PBFT_REPLICAS_MAX];
};

static void link_schedule(struct client_conn *cc);

/* What was queued there is gone with it; dial again after a while. */
static void
link_closed(void *arg, enum conn_why why, const char *detail)
{
	struct client_conn *cc = arg;

	(void)why;
	log_debug("client: replica %u: %s", cc->replica, detail);
	if (cc->l->closing)
		return;
	client_link_down(cc->l->c, cc->replica);
	link_schedule(cc);
}

static void
link_up(void *arg)
{
	struct client_conn *cc = arg;

	cc->backoff_ms = 0;
	ev_timer_stop(cc->l->loop, &cc->retry);
	log_debug("client: connected to replica %u", cc->replica);
	client_link_up(cc->l->c, cc->replica);
}

static void
link_frame(void *arg, const uint8_t *frame, size_t len)
{
	struct client_conn *cc = arg;

	client_link_frame(cc->l->c, cc->replica, frame, len);
}

static const struct conn_ops link_ops = {
    .frame = link_frame, .up = link_up, .closed = link_closed};

/*
 * Queues a frame on an established channel: true if it was taken. What a
 * channel not up yet misses, the client sends when it comes up.
 */
bool
client_link_queue(
    struct client_links *l, uint32_t i, const uint8_t *frame, size_t len)
{
	return conn_queue(&l->conns[i].io, frame, len, false) == 0;
}

bool
client_link_is_up(const struct client_links *l, uint32_t i)
{
	return l->conns[i].io.up;
}

const uint8_t *
client_link_request_key(const struct client_links *l, uint32_t i)
{
	const struct conn *io = &l->conns[i].io;

	return io->up ? chan_request_key(&io->ch) : NULL;
}

static int
link_lookup(void *ctx, uint8_t role, uint32_t id, uint8_t pub[PBFT_PUBKEY_LEN])
{
	const struct client_links *l = ctx;

	if (role != PBFT_ROLE_REPLICA || id >= l->cfg->n)
		return -1;
	memcpy(pub, l->cfg->nodes[id].public_key, PBFT_PUBKEY_LEN);
	return 0;
}

static void
link_dial(struct client_conn *cc)
{
	struct client_links *l = cc->l;
	const struct cfg_node *node = &l->cfg->nodes[cc->replica];
	int fd = node->has_address ? conn_connect(node->host, node->port, false)
	                           : -1;

	if (fd == -1) {
		link_schedule(cc);
		return;
	}
	conn_open(&cc->io, fd, true);
	chan_init(&cc->io.ch, PBFT_ROLE_CLIENT, l->client_id, l->key,
	    link_lookup, l, l->cfg->name, true, PBFT_ROLE_REPLICA, cc->replica);
	if (conn_start(&cc->io) == -1)
		return; /* closed, and scheduled again */
	/* The retry timer doubles as the handshake deadline. */
	ev_timer_set(&cc->retry, HANDSHAKE_MS / 1000.0, 0);
	ev_timer_start(l->loop, &cc->retry);
}

static void
link_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct client_conn *cc = w->data;

	(void)loop;
	(void)revents;
	if (conn_is_open(&cc->io)) {
		if (!cc->io.up)
			conn_close(&cc->io, CONN_LOCAL, "handshake timed out");
		return;
	}
	link_dial(cc);
}

/* Dial again after a jittered, doubling delay. */
static void
link_schedule(struct client_conn *cc)
{
	ev_timer_stop(cc->l->loop, &cc->retry);
	ev_timer_set(&cc->retry, conn_backoff(&cc->backoff_ms), 0);
	ev_timer_start(cc->l->loop, &cc->retry);
}

struct client_links *
client_links_new(struct pbft_client *c, struct ev_loop *loop,
    const struct pbft_client_opts *opts, char *err, size_t errlen)
{
	struct client_links *l = calloc(1, sizeof(*l));

	if (l == NULL || loop == NULL) {
		snprintf(err, errlen,
		    l == NULL ? "out of memory" : "no loop to connect on");
		free(l);
		return NULL;
	}
	l->c = c;
	l->loop = loop;
	l->cfg = opts->cfg;
	l->client_id = opts->client_id;
	l->key = opts->key;
	conn_group_init(&l->group, loop);
	for (uint32_t i = 0; i < l->cfg->n; i++) {
		struct client_conn *cc = &l->conns[i];

		cc->l = l;
		cc->replica = i;
		conn_init(&cc->io, &l->group, &link_ops, cc);
		ev_init(&cc->retry, link_retry_cb);
		cc->retry.data = cc;
		link_dial(cc);
	}
	return l;
}

void
client_links_free(struct client_links *l)
{
	if (l == NULL)
		return;
	l->closing = true;
	for (uint32_t i = 0; i < l->cfg->n; i++) {
		struct client_conn *cc = &l->conns[i];

		conn_close(&cc->io, CONN_LOCAL, "client closed");
		ev_timer_stop(l->loop, &cc->retry);
		conn_clear(&cc->io);
	}
	conn_group_clear(&l->group);
	free(l);
}
