/*
 * net.c - the replica's TCP layer; see net.h for the policies.
 */
#include "net.h"

#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "chan.h"
#include "conn.h"
#include "log.h"
#include "sig.h"
#include "wire.h"

#define ADDRS_MAX 4 /* addresses kept per replica host */

/* A connection (conn.h) and what the replica knows of it. */
struct net_conn {
	struct net *n;
	struct conn io;
	bool outbound;
	uint32_t want; /* outbound: the replica dialled */
	bool established;
	uint8_t role; /* peer's, once established */
	uint32_t peer;
	ev_timer deadline;
	struct net_conn *next_dead;
	/* Admission (accepted connections): source address, its admit.h
	 * slot, whether it is a replica's address, whether the handshake is
	 * in progress (then on net's list of those, oldest first), and why
	 * the HELLO was refused (NET_REFUSE_COUNT: not for a refuse reason). */
	struct admit_addr src;
	uint32_t slot;
	bool from_replica, pending;
	struct net_conn *next_hs, **prev_hs;
	enum net_refuse refused;
};

/* A replica's address learned from its signed ANNOUNCE (kept to relay). */
struct learned {
	bool known;
	uint64_t epoch;
	char host[PBFT_HOST_BYTES_MAX + 1];
	uint16_t port;
	uint8_t frame[WIRE_HDR_LEN + 4 + 8 + 1 + PBFT_HOST_BYTES_MAX + 2 +
	    PBFT_SIG_LEN];
	size_t frame_len;
};

struct net {
	struct ev_loop *loop;
	const struct cluster_cfg *cfg;
	uint32_t id;
	void *key;
	struct net_callbacks cb;
	int lfd;
	ev_io accept;
	ev_timer accept_pause; /* out of descriptors: stop accepting a while */
	ev_prepare reaper;
	struct conn_group grp; /* every open connection; one flush a turn */
	struct net_conn *peers[PBFT_REPLICAS_MAX]; /* established, by id */
	struct net_conn *dialing[PBFT_REPLICAS_MAX]; /* outbound in progress */
	ev_timer redial[PBFT_REPLICAS_MAX];
	uint32_t backoff_ms[PBFT_REPLICAS_MAX];
	struct net_conn **clients; /* [cfg->nclients] */
	uint32_t nconns;
	struct net_conn *dead;
	struct wbuf enc;
	/* Where frames are decoded (wire_decode's arrays), one at a time. */
	uint8_t *arena;
	size_t arena_len;
	bool hold; /* frames queued now wait for net_release_marked */
	struct net_stats st;
	struct log_ratelimit rl; /* warnings caused by peers */
	struct learned learned[PBFT_REPLICAS_MAX]; /* [id] also: our own */
	void *pub[PBFT_REPLICAS_MAX]; /* replicas' public keys */
	/* Replicas' configured hosts, resolved at start (none: no address
	 * in the file, or a wildcard one); accepted handshakes in progress,
	 * oldest first, and how many. */
	struct admit_addr raddr[PBFT_REPLICAS_MAX][ADDRS_MAX];
	uint8_t nraddr[PBFT_REPLICAS_MAX];
	struct net_conn *hs, **hs_tail;
	uint32_t nhs;
	struct admit adm;
	/* Link liveness (beat_cb): heartbeat interval and dead-after time,
	 * in seconds, and the timer that checks every peer link. */
	ev_timer beat;
	ev_tstamp hb_s, dead_s;
};

static void dial(struct net *n, uint32_t id);

/*
 * Whether this node keeps a connection to replica id by dialling it: the
 * lower id dials, and a node whose address the file does not give dials its
 * bootstrap peer too, which cannot know where to find it.
 */
static bool
dials(const struct net *n, uint32_t id)
{
	return id != n->id &&
	    (id > n->id ||
	        (n->cfg->nodes[n->id].announce && id == n->cfg->bootstrap_id));
}

/* ---- connection lifetime ----------------------------------------------- */

/* Whether replica id may be at address a: always, unless the file gives
 * its address and replica_source is match. */
static bool
source_matches(const struct net *n, uint32_t id, const struct admit_addr *a)
{
	if (n->cfg->replica_source == CFG_SOURCE_ANY || n->nraddr[id] == 0)
		return true;
	for (uint32_t k = 0; k < n->nraddr[id]; k++)
		if (admit_addr_eq(&n->raddr[id][k], a))
			return true;
	return false;
}

/* The channel's cheap check of a HELLO (before any key is made). */
static int
lookup(void *ctx, uint8_t role, uint32_t id, uint8_t pub[PBFT_PUBKEY_LEN])
{
	struct net_conn *c = ctx;
	const struct net *n = c->n;

	if (role == PBFT_ROLE_REPLICA) {
		if (id >= n->cfg->n || id == n->id)
			return -1;
		if (!c->outbound && !source_matches(n, id, &c->src)) {
			c->refused = NET_REFUSE_SOURCE;
			return -1;
		}
		memcpy(pub, n->cfg->nodes[id].public_key, PBFT_PUBKEY_LEN);
		return 0;
	}
	if (role != PBFT_ROLE_CLIENT || id >= n->cfg->nclients)
		return -1;
	memcpy(pub, n->cfg->clients[id].public_key, PBFT_PUBKEY_LEN);
	return 0;
}

static void
schedule_redial(struct net *n, uint32_t id)
{
	double d = conn_backoff(&n->backoff_ms[id]);

	n->st.peer[id].redials++;
	ev_timer_stop(n->loop, &n->redial[id]);
	ev_timer_set(&n->redial[id], d, 0);
	ev_timer_start(n->loop, &n->redial[id]);
}

/* c's handshake is over (or c closed): off the list of those in progress. */
static void
hs_done(struct net_conn *c)
{
	struct net *n = c->n;

	if (!c->pending)
		return;
	c->pending = false;
	*c->prev_hs = c->next_hs;
	if (c->next_hs != NULL)
		c->next_hs->prev_hs = c->prev_hs;
	else
		n->hs_tail = c->prev_hs;
	n->nhs--;
}

/* Closes now; the memory goes at the next loop iteration (callers up the
 * stack may still hold the pointer): see on_closed. */
static void
nc_close(struct net_conn *c, const char *why)
{
	conn_close(&c->io, CONN_LOCAL, why);
}

static void
count_failure(struct net_conn *c)
{
	struct net *n = c->n;
	uint8_t role;
	uint32_t id;

	if (c->established) {
		n->st.auth_failures++;
		if (c->role == PBFT_ROLE_REPLICA)
			n->st.peer[c->peer].bad_frames++;
		return;
	}
	if (c->refused != NET_REFUSE_COUNT) {
		n->st.refused[c->refused]++;
		return;
	}
	n->st.handshake_failures++;
	chan_peer(&c->io.ch, &role, &id);
	if (c->outbound)
		n->st.peer[c->want].handshake_failures++;
	else if (role == PBFT_ROLE_REPLICA && id < n->cfg->n)
		n->st.peer[id].handshake_failures++;
}

/* Counts and logs (rate-limited) why c's channel failed. */
static void
input_failed(struct net_conn *c, const char *why)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	count_failure(c);
	if (!log_ratelimit(&c->n->rl,
	        (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, 20,
	        1000))
		return;
	if (c->established)
		log_warnx("%s %u: %s: disconnecting",
		    c->role == PBFT_ROLE_REPLICA ? "replica" : "client",
		    c->peer, why);
	else
		log_warnx("%s connection: handshake failed: %s: disconnecting",
		    c->outbound ? "outgoing" : "incoming", why);
}

/* Counts a connection dropped for its full write queue. */
static void
queue_full(struct net_conn *c)
{
	struct net *n = c->n;

	n->st.queue_drops++;
	if (c->role == PBFT_ROLE_REPLICA)
		n->st.peer[c->peer].queue_drops++;
	log_warnx("%s %u too slow: write queue full, disconnecting",
	    c->role == PBFT_ROLE_REPLICA ? "replica" : "client", c->peer);
}

/* Takes a closed connection out of the slots that name it, and dials again
 * the peer it reached if we dial that peer. */
static void
unslot(struct net_conn *c, const char *why)
{
	struct net *n = c->n;
	uint32_t p;

	if (c->established && c->role == PBFT_ROLE_REPLICA) {
		if (n->peers[c->peer] == c) {
			n->peers[c->peer] = NULL;
			n->st.peers_connected--;
			log_info("replica %u disconnected: %s", c->peer, why);
		}
	} else if (c->established && n->clients[c->peer] == c) {
		n->clients[c->peer] = NULL;
		n->st.clients_connected--;
		log_debug("client %u disconnected: %s", c->peer, why);
	} else {
		log_debug("connection closed before the handshake: %s", why);
	}
	if (c->outbound && n->dialing[c->want] == c)
		n->dialing[c->want] = NULL;
	/* Whatever the closed channel was, a peer we dial gets dialled
	 * again (an accepted channel may have replaced ours). */
	p = c->outbound                                      ? c->want
	    : c->established && c->role == PBFT_ROLE_REPLICA ? c->peer
	                                                     : UINT32_MAX;
	if (p != UINT32_MAX && dials(n, p) && n->peers[p] == NULL &&
	    n->dialing[p] == NULL && !ev_is_active(&n->redial[p]))
		schedule_redial(n, p);
}

/* conn.h's word that c closed: counted, unslotted, freed by reap. */
static void
on_closed(void *arg, enum conn_why why, const char *detail)
{
	struct net_conn *c = arg;
	struct net *n = c->n;

	if (why == CONN_CHAN)
		input_failed(c, detail);
	else if (why == CONN_QUEUE_FULL)
		queue_full(c);
	ev_timer_stop(n->loop, &c->deadline);
	unslot(c, detail);
	admit_close(&n->adm, c->slot);
	hs_done(c);
	n->nconns--;
	c->next_dead = n->dead;
	n->dead = c;
}

/* Frees the connections closed since the last loop iteration. */
static void
reap(struct net *n)
{
	while (n->dead != NULL) {
		struct net_conn *c = n->dead;

		n->dead = c->next_dead;
		conn_clear(&c->io);
		free(c);
	}
}

static void
reaper_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	reap(w->data);
}

static void queue_raw(
    struct net *n, struct net_conn *c, const uint8_t *frame, size_t len);

static void
on_established(void *arg)
{
	struct net_conn *c = arg;
	struct net *n = c->n;
	struct net_conn **slot;

	chan_peer(&c->io.ch, &c->role, &c->peer);
	c->established = true;
	c->io.last_rx = ev_now(n->loop);
	hs_done(c);
	ev_timer_stop(n->loop, &c->deadline);
	if (c->role == PBFT_ROLE_REPLICA) {
		slot = &n->peers[c->peer];
		c->io.count_in[1] = &n->st.peer[c->peer].bytes_in;
		c->io.count_out[1] = &n->st.peer[c->peer].bytes_out;
		if (c->outbound) {
			n->dialing[c->want] = NULL;
			n->backoff_ms[c->want] = 0;
		}
		log_info("replica %u connected (%s)", c->peer,
		    c->outbound ? "dialled" : "accepted");
	} else {
		slot = &n->clients[c->peer];
		log_debug("client %u connected", c->peer);
	}
	if (*slot != NULL) {
		struct net_conn *old = *slot;

		old->established = false; /* do not touch the slot on close */
		nc_close(old, "replaced by a newer connection");
		if (c->role == PBFT_ROLE_REPLICA)
			n->st.peers_connected--;
		else
			n->st.clients_connected--;
	}
	*slot = c;
	if (c->role == PBFT_ROLE_REPLICA) {
		n->st.peers_connected++;
		/* Tell the new peer every address we can vouch for. */
		for (uint32_t i = 0; i < n->cfg->n; i++)
			if (n->learned[i].known && i != c->peer)
				queue_raw(n, c, n->learned[i].frame,
				    n->learned[i].frame_len);
	} else {
		n->st.clients_connected++;
	}
}

/* ---- I/O --------------------------------------------------------------- */

/*
 * True when what c queues now waits for the replica's log (net_hold), unless
 * it is early. Only frames to peers do: a reply depends on no record of this
 * replica (the batch it answers committed on 2f+1 commits, each sent only
 * once its sender's prepared claim was durable), and handshakes depend on
 * nothing.
 */
static bool
held(const struct net_conn *c)
{
	return c->n->hold && c->established && c->role == PBFT_ROLE_REPLICA;
}

/* A frame from an established channel: decoded once, handed on. */
static void
on_frame(void *arg, const uint8_t *frame, size_t len)
{
	struct net_conn *c = arg;
	struct net *n = c->n;
	struct wire_arena a;
	struct pbft_msg m;
	bool client = c->role != PBFT_ROLE_REPLICA;

	n->st.frames_in++;
	if (!client)
		n->st.peer[c->peer].frames_in++;
	if (n->cb.on_msg == NULL)
		return;
	wire_arena_init(&a, n->arena, n->arena_len);
	n->cb.on_msg(n->cb.ctx, client, c->peer,
	    wire_decode(frame, len, &m, &a) == WIRE_OK ? &m : NULL, frame, len);
}

static const struct conn_ops net_conn_ops = {
    .frame = on_frame, .up = on_established, .closed = on_closed};

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct net_conn *c = w->data;

	(void)loop;
	(void)revents;
	count_failure(c);
	nc_close(c, "handshake timed out");
}

/*
 * The kernel's part of link liveness, on every peer link, including one to
 * a peer running code without heartbeats: unacknowledged data is given up
 * after dead_after (TCP_USER_TIMEOUT, which also bounds a connect and the
 * keepalive probes), and an idle connection is probed from half of
 * dead_after on, every heartbeat interval (whole seconds, at least 1). So a
 * link to a host that went away is closed within about dead_after plus a
 * second even when the peer sends no heartbeats. Best effort: a system
 * without these options still has the heartbeat. (conn_open sets
 * TCP_NODELAY.)
 */
static void
link_opts(const struct net *n, int fd)
{
	int one = 1, idle = (int)(n->dead_s / 2), intvl = (int)n->hb_s, cnt = 3;
	unsigned int user = (unsigned int)(n->dead_s * 1000);

	idle = idle < 1 ? 1 : idle;
	intvl = intvl < 1 ? 1 : intvl;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user));
}

/* A connection on fd (outbound: connecting to replica want), its
 * handshake started; NULL with fd closed. */
static struct net_conn *
nc_new(struct net *n, int fd, bool outbound, uint32_t want)
{
	struct net_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	link_opts(n, fd);
	c->n = n;
	c->outbound = outbound;
	c->want = want;
	c->slot = ADMIT_NONE;
	c->refused = NET_REFUSE_COUNT;
	conn_init(&c->io, &n->grp, &net_conn_ops, c);
	conn_open(&c->io, fd, outbound);
	c->io.count_in[0] = &n->st.bytes_in;
	c->io.count_out[0] = &n->st.bytes_out;
	chan_init(&c->io.ch, PBFT_ROLE_REPLICA, n->id, n->key, lookup, c,
	    n->cfg->name, outbound, outbound ? PBFT_ROLE_REPLICA : 0, want);
	chan_set_budget(&c->io.ch, NET_BUDGET_FRAMES, NET_BUDGET_BYTES);
	ev_timer_init(&c->deadline, deadline_cb, NET_HANDSHAKE_MS / 1000.0, 0);
	c->deadline.data = c;
	ev_timer_start(n->loop, &c->deadline);
	n->nconns++;
	if (conn_start(&c->io) == -1)
		return NULL; /* closed: on the dead list */
	return c;
}

static void
dial(struct net *n, uint32_t id)
{
	const struct cfg_node *node = &n->cfg->nodes[id];
	const struct learned *l = &n->learned[id];
	struct net_conn *c;
	int fd = -1;

	if (n->peers[id] != NULL || n->dialing[id] != NULL)
		return;
	if (node->has_address)
		fd = conn_connect(node->host, node->port, false);
	else if (l->known) /* numeric (on_announce) */
		fd = conn_connect(l->host, l->port, true);
	if (fd == -1 || (c = nc_new(n, fd, true, id)) == NULL) {
		schedule_redial(n, id);
		return;
	}
	n->dialing[id] = c;
}

static void
redial_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct net *n = w->data;
	uint32_t id = (uint32_t)(w - n->redial);

	(void)loop;
	(void)revents;
	dial(n, id);
}

/* Whether c's peer announced that it takes heartbeats (chan.h). */
static bool
beats(const struct net_conn *c)
{
	return (chan_peer_caps(&c->io.ch) & CHAN_CAP_HEARTBEAT) != 0;
}

/*
 * Link liveness, a few times a heartbeat interval, on the links to peers
 * that take heartbeats: one with nothing read for dead_after is closed
 * (and, if we dial it, redialled with backoff: unslot), unless bytes
 * wait in the socket (the loop was late, not the peer); one with nothing
 * written for a heartbeat interval and nothing queued gets a heartbeat. A
 * peer running code without heartbeats gets none (it would drop the link
 * on one) and is not expected to send any: its link is left to the
 * kernel's timeouts (link_opts). What a dead socket held is not replayed:
 * the replica's PBFT_EV_PEER_UP on the new channel sends what the peer
 * needs (STATUS and our votes).
 */
static void
beat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct net *n = w->data;
	ev_tstamp now = ev_now(loop);

	(void)revents;
	for (uint32_t id = 0; id < n->cfg->n; id++) {
		struct net_conn *c = n->peers[id];
		int avail = 0;

		if (c == NULL || !conn_is_open(&c->io) || !c->established ||
		    !beats(c))
			continue;
		if (now - c->io.last_rx >= n->dead_s) {
			if (ioctl(c->io.fd, FIONREAD, &avail) == 0 &&
			    avail > 0) {
				c->io.last_rx = now;
				continue;
			}
			n->st.peer[id].links_dead++;
			log_info("replica %u: nothing heard for %.0f ms", id,
			    (now - c->io.last_rx) * 1000);
			nc_close(c, "nothing heard for dead_after");
		} else if (now - c->io.last_tx >= n->hb_s &&
		    c->io.out_off == c->io.out.len && c->io.pt.len == 0) {
			conn_heartbeat(&c->io);
		}
	}
}

/* Whether a is the configured address of some replica. */
static bool
replica_address(const struct net *n, const struct admit_addr *a)
{
	for (uint32_t i = 0; i < n->cfg->n; i++)
		for (uint32_t k = 0; k < n->nraddr[i]; k++)
			if (admit_addr_eq(&n->raddr[i][k], a))
				return true;
	return false;
}

static uint32_t
handshakes_max(const struct net *n)
{
	return n->cfg->handshakes_max ? n->cfg->handshakes_max
	                              : CFG_HANDSHAKES_MAX_DEFAULT;
}

/* Closes a connection refused on accept, before any cryptography. */
static int
refuse(struct net *n, int fd, enum net_refuse why)
{
	close(fd);
	n->st.refused[why]++;
	return -1;
}

/*
 * The handshake a newcomer from src replaces when every slot is taken: the
 * oldest from its own address, else the oldest from an address that is
 * not a replica's (a replica's newcomer: from any address). NULL: none.
 */
static struct net_conn *
hs_victim(struct net *n, const struct admit_addr *src, bool rep)
{
	struct net_conn *other = NULL;

	for (struct net_conn *c = n->hs; c != NULL; c = c->next_hs) {
		if (admit_addr_eq(&c->src, src))
			return c;
		if (other == NULL && (rep || !c->from_replica))
			other = c;
	}
	return other;
}

/*
 * The checks of a new connection from src (net.h, "Strangers"): 0 and its
 * admit.h slot, or -1 with fd closed and counted. A replica's address has
 * 2n connection and handshake slots that others cannot take. When the
 * handshake slots are full, a newcomer replaces the oldest handshake of
 * its own address, or else the oldest of another (hs_victim): whoever
 * holds slots with connections that say nothing loses them to the next
 * connection, and one address flooding replaces mostly its own.
 */
static int
admit_fd(struct net *n, int fd, const struct admit_addr *src, bool rep,
    uint32_t *slot)
{
	uint32_t extra = rep ? 2 * n->cfg->n : 0;
	struct net_conn *old = NULL;

	if (!rep && n->cfg->accept_from == CFG_ACCEPT_REPLICAS)
		return refuse(n, fd, NET_REFUSE_SOURCE);
	if (n->nconns >= NET_CLIENTS_MAX + extra)
		return refuse(n, fd, NET_REFUSE_CONNS);
	if (n->nhs >= handshakes_max(n) + extra &&
	    (old = hs_victim(n, src, rep)) == NULL)
		return refuse(n, fd, NET_REFUSE_HANDSHAKES);
	switch (admit_open(
	    &n->adm, src, rep, (uint64_t)(ev_now(n->loop) * 1e3), slot)) {
	case ADMIT_OK:
		break;
	case ADMIT_RATE:
		return refuse(n, fd, NET_REFUSE_RATE);
	default:
		return refuse(n, fd, NET_REFUSE_CONNS);
	}
	if (old != NULL) {
		n->st.refused[NET_REFUSE_HANDSHAKES]++;
		nc_close(old, "replaced by a newer handshake");
	}
	return 0;
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct net *n = w->data;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct admit_addr src;
	uint32_t slot;
	struct net_conn *c;
	bool rep;
	int fd;

	(void)loop;
	(void)revents;
	while ((fd = accept4(n->lfd, (struct sockaddr *)&ss, &sl,
	            SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		if (admit_addr_from((struct sockaddr *)&ss, sl, &src) == -1)
			memset(&src, 0, sizeof(src));
		sl = sizeof(ss);
		rep = replica_address(n, &src);
		if (admit_fd(n, fd, &src, rep, &slot) == -1)
			continue;
		if ((c = nc_new(n, fd, false, 0)) == NULL) {
			admit_close(&n->adm, slot);
			continue;
		}
		c->src = src;
		c->slot = slot;
		c->from_replica = rep;
		c->pending = true;
		c->next_hs = NULL;
		c->prev_hs = n->hs_tail;
		*n->hs_tail = c;
		n->hs_tail = &c->next_hs;
		n->nhs++;
	}
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
	    errno == ENOMEM) {
		/* The pending connection stays queued and the listening
		 * socket stays readable: pause instead of spinning. */
		n->st.accept_pauses++;
		log_warnx("accept: %s: pausing new connections for 100 ms",
		    strerror(errno));
		ev_io_stop(n->loop, &n->accept);
		ev_timer_start(n->loop, &n->accept_pause);
	}
}

static void
accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct net *n = w->data;

	(void)revents;
	ev_io_start(loop, &n->accept);
}

/* ---- sending ----------------------------------------------------------- */

static int
encode(struct net *n, const struct pbft_msg *msg)
{
	wbuf_reset(&n->enc);
	if (wire_encode(&n->enc, msg) == -1) {
		log_warnx(
		    "cannot encode a %s message", wire_type_name(msg->type));
		return -1;
	}
	return 0;
}

/* Queues a frame to c, held (net_hold) unless early; a full queue drops
 * the connection (on_closed counts it). */
static void
queue_raw_early(struct net *n, struct net_conn *c, const uint8_t *frame,
    size_t len, bool early)
{
	if (c == NULL || !conn_is_open(&c->io) || !c->established ||
	    conn_queue(&c->io, frame, len, held(c) && !early) == -1)
		return;
	n->st.frames_out++;
	if (c->role == PBFT_ROLE_REPLICA)
		n->st.peer[c->peer].frames_out++;
}

static void
queue_raw(struct net *n, struct net_conn *c, const uint8_t *frame, size_t len)
{
	queue_raw_early(n, c, frame, len, false);
}

static void
queue_frame(struct net *n, struct net_conn *c, bool early)
{
	queue_raw_early(n, c, n->enc.p, n->enc.len, early);
}

void
net_hold(struct net *n)
{
	n->hold = true;
}

void
net_mark(struct net *n)
{
	conn_group_mark(&n->grp);
}

void
net_release_marked(struct net *n)
{
	conn_group_release(&n->grp, false);
}

void
net_unhold(struct net *n)
{
	n->hold = false;
	conn_group_release(&n->grp, true);
}

/* ---- address announcements --------------------------------------------- */

/* Whether host is a numeric IPv4 or IPv6 address (no lookup: a name's
 * could block the loop). */
static bool
numeric_host(const uint8_t *host, size_t len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char h[PBFT_HOST_BYTES_MAX + 1];
	bool ok;

	if (len == 0 || len > PBFT_HOST_BYTES_MAX || memchr(host, 0, len))
		return false;
	memcpy(h, host, len);
	h[len] = '\0';
	ok = getaddrinfo(h, "1", &hints, &ai) == 0 && ai != NULL;
	if (ai != NULL)
		freeaddrinfo(ai);
	return ok;
}

/*
 * A signed ANNOUNCE from peer `from` (its own or relayed). A bad signature
 * means the sending peer forged or altered it: -1, and the caller drops the
 * peer. A valid one newer than what we know is kept, relayed to every other
 * peer, and dialled if we dial that replica. Addresses the file gives win.
 */
static int
on_announce(struct net *n, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	struct wbuf sb;
	uint8_t sbuf[sizeof(((struct learned *)0)->frame)];
	const struct pbft_announce *an = &m->u.announce;
	struct learned *l;
	bool ok;

	if (an->replica >= n->cfg->n || len > sizeof(l->frame)) {
		n->st.announce_rejected++;
		return -1;
	}
	if (!numeric_host(an->host, an->host_len)) {
		/* Whoever signed it, the relaying peer may be honest (it
		 * cannot resolve the name either): ignored, not fatal. */
		n->st.refused[NET_REFUSE_ANNOUNCE_NAME]++;
		return 0;
	}
	wbuf_init_fixed(&sb, sbuf, sizeof(sbuf));
	ok = wire_signed_bytes(&sb, m) == 0 &&
	    sig_verify(n->pub[an->replica], sb.p, sb.len, an->sig);
	if (!ok) {
		n->st.announce_rejected++;
		log_warnx("replica %u sent an address announcement for replica "
		          "%u that replica %u did not sign: disconnecting",
		    from, an->replica, an->replica);
		return -1;
	}
	l = &n->learned[an->replica];
	if (an->replica == n->id || n->cfg->nodes[an->replica].has_address ||
	    (l->known && an->epoch <= l->epoch))
		return 0; /* ours, configured, or not news */
	l->known = true;
	l->epoch = an->epoch;
	memcpy(l->host, an->host, an->host_len);
	l->host[an->host_len] = '\0';
	l->port = an->port;
	memcpy(l->frame, frame, len);
	l->frame_len = len;
	n->st.announce_accepted++;
	log_info("replica %u is at %s:%u (announced, via replica %u)",
	    an->replica, l->host, (unsigned)l->port, from);
	for (uint32_t i = 0; i < n->cfg->n; i++)
		if (i != an->replica && i != from && n->peers[i] != NULL)
			queue_raw(n, n->peers[i], frame, len);
	if (dials(n, an->replica) && n->peers[an->replica] == NULL &&
	    n->dialing[an->replica] == NULL) {
		ev_timer_stop(n->loop, &n->redial[an->replica]);
		n->backoff_ms[an->replica] = 0;
		dial(n, an->replica);
	}
	return 0;
}

/* The frame that carried it came from the channel that is n->peers[from]:
 * a replaced channel is closed, and a closed one delivers nothing more. */
void
net_announce(struct net *n, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	if (from >= n->cfg->n || m->type != PBFT_MSG_ANNOUNCE)
		return;
	if (on_announce(n, from, m, frame, len) == -1 && n->peers[from] != NULL)
		nc_close(n->peers[from], "bad address announcement");
}

/* Signs our own announcement; epoch from the wall clock, so a restarted
 * node's announcement replaces the one its peers remember. */
static int
announce_self(struct net *n)
{
	const struct cfg_node *self = &n->cfg->nodes[n->id];
	struct learned *l = &n->learned[n->id];
	struct pbft_msg m = {.type = PBFT_MSG_ANNOUNCE};
	struct wbuf wb;
	uint8_t sbuf[sizeof(l->frame)];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	m.u.announce.replica = n->id;
	m.u.announce.epoch =
	    (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	m.u.announce.host_len = (uint8_t)strlen(self->host);
	m.u.announce.host = (const uint8_t *)self->host;
	m.u.announce.port = self->port;
	wbuf_init_fixed(&wb, sbuf, sizeof(sbuf));
	if (strlen(self->host) > PBFT_HOST_BYTES_MAX ||
	    !numeric_host((const uint8_t *)self->host, strlen(self->host)) ||
	    wire_signed_bytes(&wb, &m) == -1 ||
	    sig_sign(n->key, wb.p, wb.len, m.u.announce.sig) == -1)
		return -1;
	wbuf_init_fixed(&wb, l->frame, sizeof(l->frame));
	if (wire_encode(&wb, &m) == -1)
		return -1;
	l->frame_len = wb.len;
	l->known = true;
	l->epoch = m.u.announce.epoch;
	snprintf(l->host, sizeof(l->host), "%s", self->host);
	l->port = self->port;
	return 0;
}

void
net_disconnect(struct net *n, bool client, uint32_t id, const char *why)
{
	struct net_conn *c = NULL;

	if (client && id < n->cfg->nclients)
		c = n->clients[id];
	else if (!client && id < n->cfg->n && id != n->id)
		c = n->peers[id];
	if (c != NULL)
		nc_close(c, why);
}

bool
net_peer_up(const struct net *n, uint32_t id)
{
	const struct net_conn *c = id < n->cfg->n ? n->peers[id] : NULL;

	return c != NULL && conn_is_open(&c->io) && c->established;
}

size_t
net_peer_queued(const struct net *n, uint32_t id)
{
	const struct net_conn *c = id < n->cfg->n ? n->peers[id] : NULL;

	if (c == NULL || !conn_is_open(&c->io) || !c->established)
		return 0;
	return conn_queued(&c->io);
}

int
net_peer_address(const struct net *n, uint32_t id, char *buf, size_t len)
{
	const struct cfg_node *node;

	if (id >= n->cfg->n)
		return -1;
	node = &n->cfg->nodes[id];
	if (node->has_address)
		cfg_format_address(node->host, node->port, buf, len);
	else if (n->learned[id].known)
		cfg_format_address(
		    n->learned[id].host, n->learned[id].port, buf, len);
	else
		return -1;
	return 0;
}

void
net_send(
    struct net *n, uint32_t replica, const struct pbft_msg *msg, bool early)
{
	if (replica >= n->cfg->n || replica == n->id || encode(n, msg) == -1)
		return;
	queue_frame(n, n->peers[replica], early);
}

void
net_send_raw(struct net *n, uint32_t replica, const uint8_t *frame, size_t len)
{
	if (replica >= n->cfg->n || replica == n->id ||
	    len > PBFT_FRAME_BYTES_MAX)
		return;
	queue_raw(n, n->peers[replica], frame, len);
}

void
net_broadcast(struct net *n, const struct pbft_msg *msg, bool early)
{
	if (encode(n, msg) == -1)
		return;
	for (uint32_t i = 0; i < n->cfg->n; i++)
		if (i != n->id)
			queue_frame(n, n->peers[i], early);
}

void
net_send_client(struct net *n, uint32_t client, const struct pbft_msg *msg)
{
	if (client >= n->cfg->nclients || n->clients[client] == NULL ||
	    encode(n, msg) == -1)
		return;
	queue_frame(n, n->clients[client], false);
}

const uint8_t *
net_client_request_key(const struct net *n, uint32_t client)
{
	const struct net_conn *c;

	if (client >= n->cfg->nclients || (c = n->clients[client]) == NULL ||
	    !conn_is_open(&c->io))
		return NULL;
	return chan_request_key(&c->io.ch);
}

/* Milliseconds since c last read anything, or -1 for no channel. */
static int64_t
heard_ms(const struct net *n, const struct net_conn *c)
{
	if (c == NULL || !conn_is_open(&c->io) || !c->established)
		return -1;
	return (int64_t)((ev_now(n->loop) - c->io.last_rx) * 1000);
}

void
net_peer_link(const struct net *n, uint32_t id, struct net_link *l)
{
	const struct net_conn *c = id < n->cfg->n ? n->peers[id] : NULL;

	l->heard_ms = heard_ms(n, c);
	l->heartbeats = l->heard_ms >= 0 && beats(c);
	/* A peer without heartbeats may be idle and well: its channel is up
	 * until the kernel gives it up (link_opts). */
	l->up = l->heard_ms >= 0 &&
	    (!l->heartbeats || l->heard_ms < (int64_t)(n->dead_s * 1000));
	l->queued = net_peer_queued(n, id);
	l->redials = n->st.peer[id < PBFT_REPLICAS_MAX ? id : 0].redials;
}

/* peers_connected: links up (net_peer_link). */
void
net_get_stats(const struct net *n, struct net_stats *st)
{
	struct net_link l;

	*st = n->st;
	st->budget_deferrals = n->grp.budget_deferrals;
	st->peers_connected = 0;
	for (uint32_t id = 0; id < n->cfg->n; id++) {
		net_peer_link(n, id, &l);
		st->peers_connected += l.up;
	}
}

const char *
net_refuse_name(enum net_refuse r)
{
	static const char *names[NET_REFUSE_COUNT] = {"handshake_rate",
	    "conn_limit", "handshake_limit", "source_address",
	    "announce_not_numeric"};

	return r < NET_REFUSE_COUNT ? names[r] : "unknown";
}

/* ---- setup ------------------------------------------------------------- */

/*
 * Resolves the hosts the file gives the replicas (before the loop runs) to
 * the addresses their connections may come from. A wildcard address, or
 * one that does not resolve now, leaves that replica unchecked.
 */
static void
resolve_replicas(struct net *n)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *p;

	for (uint32_t i = 0; i < n->cfg->n; i++) {
		const struct cfg_node *node = &n->cfg->nodes[i];
		bool any = false;

		if (!node->has_address ||
		    getaddrinfo(node->host, NULL, &hints, &ai) != 0)
			continue;
		for (p = ai; p != NULL && n->nraddr[i] < ADDRS_MAX;
		     p = p->ai_next) {
			struct admit_addr *a = &n->raddr[i][n->nraddr[i]];

			if (admit_addr_from(p->ai_addr, p->ai_addrlen, a) ==
			    0) {
				any = any || admit_addr_any(a);
				n->nraddr[i]++;
			}
		}
		freeaddrinfo(ai);
		if (any)
			n->nraddr[i] = 0;
	}
}

static void
admission_init(struct net *n)
{
	const struct cluster_cfg *cfg = n->cfg;
	struct admit_limits lim = {.rate = cfg->handshake_rate
	        ? cfg->handshake_rate
	        : CFG_HANDSHAKE_RATE_DEFAULT,
	    .conns = cfg->conns_per_address ? cfg->conns_per_address
	                                    : CFG_CONNS_PER_ADDRESS_DEFAULT,
	    .replica_conns = 2 * cfg->n};

	admit_init(&n->adm, &lim);
	n->hs_tail = &n->hs;
	resolve_replicas(n);
}

static int
listen_on(struct net *n, char *err, size_t errlen)
{
	const struct cfg_node *node = &n->cfg->nodes[n->id];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                    .ai_flags = AI_PASSIVE},
	                *ai = NULL;
	char port[8];
	int one = 1;

	snprintf(port, sizeof(port), "%u", (unsigned)node->port);
	if (getaddrinfo(node->host, port, &hints, &ai) != 0 || ai == NULL) {
		snprintf(err, errlen, "cannot resolve %s", node->host);
		return -1;
	}
	n->lfd = socket(
	    ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->lfd == -1 ||
	    setsockopt(n->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ==
	        -1 ||
	    bind(n->lfd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(n->lfd, 128) == -1) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", node->host,
		    (unsigned)node->port, strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return 0;
}

struct net *
net_new(struct ev_loop *loop, const struct cluster_cfg *cfg, uint32_t id,
    void *key, const struct net_callbacks *cb, char *err, size_t errlen)
{
	struct net *n = calloc(1, sizeof(*n));

	if (n == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n->loop = loop;
	conn_group_init(&n->grp, loop);
	n->cfg = cfg;
	n->id = id;
	n->key = key;
	n->cb = *cb;
	n->lfd = -1;
	n->clients =
	    calloc(cfg->nclients ? cfg->nclients : 1, sizeof(*n->clients));
	wbuf_init_dynamic(&n->enc, PBFT_FRAME_BYTES_MAX);
	n->arena_len = wire_arena_bytes_for(PBFT_FRAME_BYTES_MAX);
	n->arena = malloc(n->arena_len);
	admission_init(n);
	if (n->clients == NULL || n->arena == NULL) {
		snprintf(err, errlen, "out of memory");
		net_free(n);
		return NULL;
	}
	if (listen_on(n, err, errlen) == -1) {
		net_free(n);
		return NULL;
	}
	ev_io_init(&n->accept, accept_cb, n->lfd, EV_READ);
	n->accept.data = n;
	ev_io_start(loop, &n->accept);
	ev_timer_init(&n->accept_pause, accept_resume_cb, 0.1, 0);
	n->accept_pause.data = n;
	n->hb_s =
	    (cfg->heartbeat_interval_ms ? cfg->heartbeat_interval_ms
	                                : CFG_HEARTBEAT_INTERVAL_DEFAULT) /
	    1000.0;
	n->dead_s =
	    (cfg->dead_after_ms ? cfg->dead_after_ms : CFG_DEAD_AFTER_DEFAULT) /
	    1000.0;
	ev_timer_init(&n->beat, beat_cb, n->hb_s / 4, n->hb_s / 4);
	n->beat.data = n;
	ev_timer_start(loop, &n->beat);
	ev_prepare_init(&n->reaper, reaper_cb);
	n->reaper.data = n;
	ev_prepare_start(loop, &n->reaper);
	for (uint32_t i = 0; i < cfg->n; i++) {
		if ((n->pub[i] = sig_public_from_raw(
		         cfg->nodes[i].public_key)) == NULL) {
			snprintf(err, errlen, "bad public key for node %u", i);
			net_free(n);
			return NULL;
		}
	}
	if (cfg->nodes[id].announce && announce_self(n) == -1) {
		snprintf(err, errlen,
		    "cannot announce our address (it must be numeric, "
		    "e.g. 192.0.2.1:7000)");
		net_free(n);
		return NULL;
	}
	for (uint32_t i = 0; i < cfg->n; i++) {
		ev_init(&n->redial[i], redial_cb);
		n->redial[i].data = n;
		if (dials(n, i))
			dial(n, i);
	}
	return n;
}

void
net_free(struct net *n)
{
	if (n == NULL)
		return;
	ev_timer_stop(n->loop, &n->beat);
	while (n->grp.all != NULL)
		conn_close(n->grp.all, CONN_LOCAL, "shutting down");
	for (uint32_t i = 0; i < n->cfg->n; i++)
		ev_timer_stop(n->loop, &n->redial[i]);
	if (n->lfd != -1) {
		ev_io_stop(n->loop, &n->accept);
		ev_timer_stop(n->loop, &n->accept_pause);
		close(n->lfd);
	}
	/* Not through the watcher: net_new may have failed before setting
	 * it up (e.g. the port was taken). */
	reap(n);
	ev_prepare_stop(n->loop, &n->reaper);
	conn_group_clear(&n->grp);
	for (uint32_t i = 0; i < n->cfg->n; i++)
		sig_key_free(n->pub[i]);
	free(n->clients);
	free(n->arena);
	wbuf_clear(&n->enc);
	free(n);
}
