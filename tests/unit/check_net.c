/*
 * check_net.c - the replica TCP mesh on 127.0.0.1: three nodes connect and
 * exchange frames both ways, a restarted node is reconnected, and hostile
 * connections (garbage, an oversized length, a truncated or replayed
 * record, an unknown or lying key) are dropped while the mesh keeps
 * working; strangers are refused before any cryptography (rate, slots,
 * source address), announced names are ignored and one client's burst is
 * handed on a budget at a time; an idle link lives on heartbeats and a
 * link whose peer falls silent is closed within dead_after and redialled;
 * a peer of the code before heartbeats gets none and keeps its link.
 * Everything runs on one libev loop with bounded waits.
 */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "chan.h"
#include "net.h"
#include "sig.h"
#include "wire.h"

#define NODES 3
#define WAIT_MS 4000

static struct ev_loop *loop;
static struct cluster_cfg *cfg;
static void *rkey[NODES], *ckey, *stranger;
static struct net *nets[NODES];

struct rx {
	int from[NODES]; /* frames from each replica */
	int undecodable; /* of those, handed on as no message */
	uint64_t last_seq[NODES];
	int client_frames;
	uint64_t client_seq;
};
static struct rx rxs[NODES];

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A checkpoint's seq, or UINT64_MAX for anything else. */
static uint64_t
msg_seq(const struct pbft_msg *m)
{
	if (m == NULL || m->type != PBFT_MSG_CHECKPOINT)
		return UINT64_MAX;
	return m->u.checkpoint.seq;
}

/* What a replica does with its input: announcements go back to the net,
 * the rest is counted by sender. */
static void
on_msg(void *ctx, bool client, uint32_t from, const struct pbft_msg *m,
    const uint8_t *f, size_t len)
{
	struct rx *r = ctx;

	if (client) {
		ck_assert_uint_eq(from, 0);
		r->client_frames++;
		r->client_seq = msg_seq(m);
		return;
	}
	ck_assert_uint_lt(from, NODES);
	if (m != NULL && m->type == PBFT_MSG_ANNOUNCE) {
		net_announce(nets[r - rxs], from, m, f, len);
		return;
	}
	r->from[from]++;
	r->undecodable += m == NULL;
	r->last_seq[from] = msg_seq(m);
}

static void
checkpoint(struct pbft_msg *m, uint64_t seq, uint32_t replica)
{
	memset(m, 0, sizeof(*m));
	m->type = PBFT_MSG_CHECKPOINT;
	m->u.checkpoint.seq = seq;
	m->u.checkpoint.replica = replica;
}

/* Ports that were free a moment ago (all bound at once, so distinct). */
static void
pick_ports(uint16_t *ports, int k)
{
	int fds[NODES];

	for (int i = 0; i < k; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
		    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t sl = sizeof(sa);

		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_ge(fds[i], 0);
		ck_assert_int_eq(bind(fds[i], (struct sockaddr *)&sa, sl), 0);
		ck_assert_int_eq(
		    getsockname(fds[i], (struct sockaddr *)&sa, &sl), 0);
		ports[i] = ntohs(sa.sin_port);
	}
	for (int i = 0; i < k; i++)
		close(fds[i]);
}

static void
setup(void)
{
	uint8_t seed[32];
	uint16_t ports[NODES];

	loop = ev_loop_new(EVFLAG_AUTO);
	cfg = calloc(1, sizeof(*cfg));
	ck_assert_ptr_nonnull(cfg);
	snprintf(cfg->name, sizeof(cfg->name), "nettest");
	cfg->n = NODES;
	cfg->f = 0;
	pick_ports(ports, NODES);
	for (uint32_t i = 0; i < NODES; i++) {
		memset(seed, 20 + (int)i, 32);
		rkey[i] = sig_keygen(seed);
		cfg->nodes[i].id = i;
		snprintf(cfg->nodes[i].host, sizeof(cfg->nodes[i].host),
		    "127.0.0.1");
		cfg->nodes[i].port = ports[i];
		cfg->nodes[i].has_address = true;
		sig_public_raw(rkey[i], cfg->nodes[i].public_key);
	}
	cfg->bootstrap_id = UINT32_MAX;
	cfg->nclients = 1;
	cfg->clients = calloc(1, sizeof(*cfg->clients));
	ck_assert_ptr_nonnull(cfg->clients);
	memset(seed, 70, 32);
	ckey = sig_keygen(seed);
	sig_public_raw(ckey, cfg->clients[0].public_key);
	snprintf(cfg->clients[0].name, sizeof(cfg->clients[0].name), "c0");
	memset(seed, 71, 32);
	stranger = sig_keygen(seed);
	memset(rxs, 0, sizeof(rxs));
	memset(nets, 0, sizeof(nets));
}

static void
teardown(void)
{
	for (int i = 0; i < NODES; i++) {
		net_free(nets[i]);
		nets[i] = NULL;
		sig_key_free(rkey[i]);
	}
	sig_key_free(ckey);
	sig_key_free(stranger);
	free(cfg->clients);
	free(cfg);
	ev_loop_destroy(loop);
}

static void
start_node(uint32_t i)
{
	struct net_callbacks cb = {.ctx = &rxs[i], .on_msg = on_msg};
	char err[256] = "";

	nets[i] = net_new(loop, cfg, i, rkey[i], &cb, err, sizeof(err));
	ck_assert_msg(nets[i] != NULL, "net_new %u: %s", i, err);
}

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
}

/* Runs the loop until pred(arg) holds or WAIT_MS pass; returns pred. */
static bool
run_until(bool (*pred)(void *), void *arg)
{
	ev_timer tick;
	uint64_t end = now_ms() + WAIT_MS;
	bool ok = pred(arg);

	ev_timer_init(&tick, tick_cb, 0.01, 0.01);
	ev_timer_start(loop, &tick);
	for (int i = 0; i < 100000 && !ok && now_ms() < end; i++) {
		ev_run(loop, EVRUN_ONCE);
		ok = pred(arg);
	}
	ev_timer_stop(loop, &tick);
	return ok;
}

static uint32_t
peers_of(uint32_t i)
{
	struct net_stats st;

	if (nets[i] == NULL)
		return 0;
	net_get_stats(nets[i], &st);
	return st.peers_connected;
}

static bool
all_connected(void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < NODES; i++)
		if (peers_of(i) != NODES - 1)
			return false;
	return true;
}

struct want_frame {
	uint32_t to, from;
	int count;
};

static bool
got_frames(void *arg)
{
	const struct want_frame *w = arg;

	return rxs[w->to].from[w->from] >= w->count;
}

/* Sends seq from `from` to `to` and waits for it to arrive. */
static void
exchange(uint32_t from, uint32_t to, uint64_t seq)
{
	struct pbft_msg m;
	struct want_frame w = {to, from, rxs[to].from[from] + 1};

	checkpoint(&m, seq, from);
	net_send(nets[from], to, &m, false);
	ck_assert_msg(
	    run_until(got_frames, &w), "frame %u -> %u lost", from, to);
	ck_assert_uint_eq(rxs[to].last_seq[from], seq);
}

START_TEST(test_mesh_connects_and_exchanges)
{
	struct pbft_msg m;
	struct net_stats st;

	for (uint32_t i = 0; i < NODES; i++)
		start_node(i);
	ck_assert(run_until(all_connected, NULL));
	exchange(0, 2, 7);
	exchange(2, 0, 8);
	exchange(1, 0, 9);
	exchange(2, 1, 10);
	checkpoint(&m, 11, 1);
	net_broadcast(nets[1], &m, false);
	{
		struct want_frame a = {0, 1, 2}, b = {2, 1, 1};

		ck_assert(run_until(got_frames, &a));
		ck_assert(run_until(got_frames, &b));
	}
	ck_assert_uint_eq(rxs[0].last_seq[1], 11);
	ck_assert_uint_eq(rxs[2].last_seq[1], 11);
	/* Sending to oneself or an unknown replica is a no-op. */
	net_send(nets[1], 1, &m, false);
	net_send(nets[1], 99, &m, false);
	net_get_stats(nets[1], &st);
	ck_assert_uint_eq(st.frames_out, 3);
	ck_assert_uint_eq(st.peer[0].frames_out, 2);
	ck_assert_uint_eq(st.peer[2].frames_out, 1);
	ck_assert_uint_eq(st.handshake_failures, 0);
	ck_assert_uint_eq(st.auth_failures, 0);
}
END_TEST

static bool
two_down(void *arg)
{
	(void)arg;
	return peers_of(0) == 1 && peers_of(1) == 1;
}

START_TEST(test_restart_reconnects)
{
	for (uint32_t i = 0; i < NODES; i++)
		start_node(i);
	ck_assert(run_until(all_connected, NULL));
	exchange(0, 2, 1);
	net_free(nets[2]);
	nets[2] = NULL;
	ck_assert(run_until(two_down, NULL));
	exchange(0, 1, 2); /* the rest still works */
	start_node(2);
	ck_assert(run_until(all_connected, NULL));
	exchange(0, 2, 3);
	exchange(2, 1, 4);
	/* And the lower id's restart: it dials again. */
	net_free(nets[0]);
	nets[0] = NULL;
	start_node(0);
	ck_assert(run_until(all_connected, NULL));
	exchange(1, 0, 5);
	exchange(0, 2, 6);
}
END_TEST

/* Held frames wait for release, in order; the mark splits generations. */
START_TEST(test_hold_until_released)
{
	struct pbft_msg m;
	struct want_frame one = {2, 0, 0}, two = {2, 0, 0};
	uint32_t base;

	for (uint32_t i = 0; i < NODES; i++)
		start_node(i);
	ck_assert(run_until(all_connected, NULL));
	base = (uint32_t)rxs[2].from[0];
	net_hold(nets[0]);
	checkpoint(&m, 21, 0);
	net_send(nets[0], 2, &m, false);
	net_mark(nets[0]); /* generation 1: seq 21 */
	checkpoint(&m, 22, 0);
	net_send(nets[0], 2, &m, false); /* generation 2: seq 22 */
	one.count = (int)base + 1;
	ck_assert(!run_until(got_frames, &one)); /* nothing leaves */
	net_release_marked(nets[0]);
	ck_assert(run_until(got_frames, &one));
	ck_assert_uint_eq(rxs[2].last_seq[0], 21);
	two.count = (int)base + 2;
	ck_assert(!run_until(got_frames, &two)); /* 22 still held */
	/* An early frame overtakes the held one. */
	checkpoint(&m, 30, 0);
	net_send(nets[0], 2, &m, true);
	ck_assert(run_until(got_frames, &two));
	ck_assert_uint_eq(rxs[2].last_seq[0], 30);
	two.count = (int)base + 3;
	ck_assert(!run_until(got_frames, &two)); /* 22 still held */
	net_unhold(nets[0]);
	ck_assert(run_until(got_frames, &two));
	ck_assert_uint_eq(rxs[2].last_seq[0], 22);
	/* Not holding: frames go right away. */
	exchange(0, 2, 23);
	/* Other nodes never held anything. */
	exchange(1, 2, 24);
}
END_TEST

/* ---- raw and hostile clients ------------------------------------------ */

/* A connection to node, from me if not NULL. */
static int
client_connect_unbound(uint32_t node, const struct sockaddr_in *me)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons(cfg->nodes[node].port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(fd, 0);
	if (me != NULL)
		ck_assert_int_eq(
		    bind(fd, (const struct sockaddr *)me, sizeof(*me)), 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		ck_assert_int_eq(errno, EINPROGRESS);
	return fd;
}

static int
client_connect(uint32_t node)
{
	return client_connect_unbound(node, NULL);
}

/* Sends everything, running the loop while the socket is full. */
static void
client_send(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t end = now_ms() + WAIT_MS;

	while (len > 0 && now_ms() < end) {
		ssize_t w = send(fd, b, len, MSG_NOSIGNAL);

		if (w > 0) {
			b += w;
			len -= (size_t)w;
		} else if (w == -1 && (errno == EAGAIN || errno == ENOTCONN)) {
			ev_run(loop, EVRUN_NOWAIT);
		} else {
			return; /* the server may already have hung up */
		}
	}
}

struct client {
	int fd;
	struct chan ch;
	uint8_t in[4096];
	size_t inlen;
	bool closed;
	int frames;
};

static void
client_frame(void *arg, const uint8_t *f, size_t len)
{
	struct client *c = arg;

	(void)f;
	(void)len;
	c->frames++;
}

/* Reads what is there; notes EOF or reset. */
static void
client_poll(struct client *c)
{
	for (int i = 0; i < 64 && !c->closed; i++) {
		ssize_t r =
		    recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);

		if (r == 0 ||
		    (r == -1 && errno != EAGAIN && errno != ENOTCONN &&
		        errno != EINTR)) {
			c->closed = true;
			return;
		}
		if (r < 0)
			return;
		c->inlen += (size_t)r;
		if (c->ch.state != CHAN_IDLE && c->ch.state != CHAN_FAILED) {
			struct wbuf out;
			size_t used = 0;

			wbuf_init_dynamic(&out, 1 << 20);
			if (chan_input(&c->ch, c->in, c->inlen, &used, &out,
			        client_frame, c) == 0) {
				memmove(c->in, c->in + used, c->inlen - used);
				c->inlen -= used;
			}
			if (out.len > 0)
				client_send(c->fd, out.p, out.len);
			wbuf_clear(&out);
		} else {
			c->inlen = 0;
		}
	}
}

static bool
client_done(void *arg)
{
	struct client *c = arg;

	client_poll(c);
	return c->closed || chan_established(&c->ch) ||
	    c->ch.state == CHAN_FAILED;
}

static bool
client_closed(void *arg)
{
	struct client *c = arg;

	client_poll(c);
	return c->closed;
}

static int
client_lookup(void *ctx, uint8_t role, uint32_t id, uint8_t pub[32])
{
	(void)ctx;
	if (role != PBFT_ROLE_REPLICA || id >= cfg->n)
		return -1;
	memcpy(pub, cfg->nodes[id].public_key, 32);
	return 0;
}

#define STRANGER_IP 0x7f000002 /* 127.0.0.2: no replica's address */

/* A connection to node from the loopback address src (host order). */
static int
connect_from(uint32_t node, uint32_t src)
{
	struct sockaddr_in me = {
	    .sin_family = AF_INET, .sin_addr.s_addr = htonl(src)};
	int fd = client_connect_unbound(node, &me);

	return fd;
}

/* Opens a channel to node from src as (role, id), signing with key and
 * announcing caps (chan.h; 0: as the code before capabilities). */
static void
open_as_caps(struct client *c, uint32_t node, uint8_t role, uint32_t id,
    void *key, uint32_t src, uint8_t caps)
{
	struct wbuf out;

	memset(c, 0, sizeof(*c));
	c->fd = connect_from(node, src);
	chan_init(&c->ch, role, id, key, client_lookup, NULL, cfg->name, true,
	    PBFT_ROLE_REPLICA, node);
	c->ch.caps = caps;
	wbuf_init_dynamic(&out, 4096);
	ck_assert_int_eq(chan_start(&c->ch, &out), 0);
	client_send(c->fd, out.p, out.len);
	wbuf_clear(&out);
	run_until(client_done, c);
}

static void
open_as(struct client *c, uint32_t node, uint8_t role, uint32_t id, void *key,
    uint32_t src)
{
	open_as_caps(c, node, role, id, key, src, CHAN_CAPS_ALL);
}

/* Opens a channel to node as client id, signing with key. */
static void
client_open(struct client *c, uint32_t node, uint32_t id, void *key)
{
	open_as(c, node, PBFT_ROLE_CLIENT, id, key, INADDR_LOOPBACK);
}

static void
client_close(struct client *c)
{
	chan_clear(&c->ch);
	close(c->fd);
}

static void
sealed(struct client *c, uint64_t seq, struct wbuf *out)
{
	struct pbft_msg m;
	struct wbuf f;

	checkpoint(&m, seq, 0);
	wbuf_init_dynamic(&f, 4096);
	ck_assert_int_eq(wire_encode(&f, &m), 0);
	ck_assert_int_eq(chan_seal(&c->ch, f.p, f.len, out), 0);
	wbuf_clear(&f);
}

static void
mesh_up(void)
{
	start_node(0);
	start_node(1);
	start_node(2);
	ck_assert(run_until(all_connected, NULL));
}

static struct net_stats
stats(uint32_t i)
{
	struct net_stats st;

	net_get_stats(nets[i], &st);
	return st;
}

static bool
client_frame_seen(void *arg)
{
	return rxs[1].client_frames >= *(int *)arg;
}

START_TEST(test_client_ok_then_replay)
{
	struct client c;
	struct wbuf rec;
	struct pbft_msg m;
	int want = 1;

	mesh_up();
	client_open(&c, 1, 0, ckey);
	ck_assert(chan_established(&c.ch));
	ck_assert(!c.closed);
	wbuf_init_dynamic(&rec, 1 << 20);
	sealed(&c, 42, &rec);
	client_send(c.fd, rec.p, rec.len);
	ck_assert(run_until(client_frame_seen, &want));
	ck_assert_uint_eq(rxs[1].client_seq, 42);
	/* The node answers on the client's connection. */
	checkpoint(&m, 43, 1);
	net_send_client(nets[1], 0, &m);
	{
		uint64_t end = now_ms() + WAIT_MS;

		while (c.frames == 0 && !c.closed && now_ms() < end) {
			ev_run(loop, EVRUN_NOWAIT);
			client_poll(&c);
		}
	}
	ck_assert_int_eq(c.frames, 1);
	/* The same record again is a replay: dropped. */
	client_send(c.fd, rec.p, rec.len);
	ck_assert(run_until(client_closed, &c));
	ck_assert_int_eq(rxs[1].client_frames, 1);
	ck_assert_uint_eq(stats(1).auth_failures, 1);
	ck_assert_uint_eq(stats(1).clients_connected, 0);
	wbuf_clear(&rec);
	client_close(&c);
	exchange(0, 1, 100);
	exchange(1, 2, 101);
}
END_TEST

START_TEST(test_garbage_dropped)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct client c;

	mesh_up();
	memset(&c, 0, sizeof(c));
	c.fd = client_connect(1);
	client_send(c.fd, junk, sizeof(junk) - 1);
	ck_assert(run_until(client_closed, &c));
	close(c.fd);
	ck_assert_uint_eq(stats(1).handshake_failures, 1);
	exchange(0, 1, 200);
	exchange(1, 0, 201);
}
END_TEST

/*
 * The net decodes each frame once: an authenticated frame that does not
 * decode (an unknown type) reaches the receiver as no message, the next
 * one as its message, and the channel stays up.
 */
START_TEST(test_frames_decoded_once)
{
	static const uint8_t unknown[] = {
	    4, 0, 0, 0, PBFT_WIRE_VERSION, 0xee, 1, 2};
	struct pbft_msg m;
	struct want_frame w = {1, 0, 0};

	mesh_up();
	w.count = rxs[1].from[0] + 2;
	net_send_raw(nets[0], 1, unknown, sizeof(unknown));
	checkpoint(&m, 300, 0);
	net_send(nets[0], 1, &m, false);
	ck_assert(run_until(got_frames, &w));
	ck_assert_int_eq(rxs[1].undecodable, 1);
	ck_assert_uint_eq(rxs[1].last_seq[0], 300);
	ck_assert(net_peer_up(nets[1], 0));
	exchange(1, 0, 301);
}
END_TEST

START_TEST(test_oversized_lengths_dropped)
{
	static const uint8_t huge_frame[] = {0xff, 0xff, 0xff, 0x7f, 1, 1};
	static const uint8_t huge_record[] = {0xff, 0xff, 0xff, 0xff, 0, 0};
	struct client c;

	mesh_up();
	/* Before the handshake: a frame header claiming ~2 GiB. */
	memset(&c, 0, sizeof(c));
	c.fd = client_connect(1);
	client_send(c.fd, huge_frame, sizeof(huge_frame));
	ck_assert(run_until(client_closed, &c));
	close(c.fd);
	ck_assert_uint_eq(stats(1).handshake_failures, 1);
	/* After it: a record header claiming 4 GiB. */
	client_open(&c, 1, 0, ckey);
	ck_assert(chan_established(&c.ch));
	client_send(c.fd, huge_record, sizeof(huge_record));
	ck_assert(run_until(client_closed, &c));
	client_close(&c);
	ck_assert_uint_eq(stats(1).auth_failures, 1);
	exchange(0, 1, 300);
}
END_TEST

START_TEST(test_truncated_record_dropped)
{
	struct client c;
	struct wbuf a, b;

	mesh_up();
	client_open(&c, 1, 0, ckey);
	ck_assert(chan_established(&c.ch));
	wbuf_init_dynamic(&a, 1 << 20);
	wbuf_init_dynamic(&b, 1 << 20);
	sealed(&c, 1, &a);
	sealed(&c, 2, &b);
	/* The first record loses its last bytes; the second follows. At
	 * least one byte, and as many as it takes for the second record's
	 * first bytes, which the receiver reads in their place, to differ
	 * from the lost ones (when they matched, 1 run in 256 with one byte,
	 * the first record still authenticated). */
	{
		size_t cut = 1;

		while (memcmp(a.p + a.len - cut, b.p, cut) == 0)
			cut++;
		client_send(c.fd, a.p, a.len - cut);
	}
	client_send(c.fd, b.p, b.len);
	ck_assert(run_until(client_closed, &c));
	ck_assert_int_eq(rxs[1].client_frames, 0);
	ck_assert_uint_eq(stats(1).auth_failures, 1);
	wbuf_clear(&a);
	wbuf_clear(&b);
	client_close(&c);
	/* A truncated hello followed by EOF is dropped too. */
	memset(&c, 0, sizeof(c));
	c.fd = client_connect(1);
	{
		static const uint8_t partial[] = {60, 0, 0, 0, 1, 1, 2};

		client_send(c.fd, partial, sizeof(partial));
	}
	shutdown(c.fd, SHUT_WR);
	ck_assert(run_until(client_closed, &c));
	close(c.fd);
	exchange(2, 1, 400);
}
END_TEST

START_TEST(test_unknown_and_lying_keys_refused)
{
	struct client c;

	mesh_up();
	/* A client id that cluster.ini does not list. */
	client_open(&c, 1, 5, ckey);
	ck_assert(!chan_established(&c.ch));
	ck_assert(run_until(client_closed, &c));
	client_close(&c);
	/* Client 0's id, but signed with a key that is not its own. */
	client_open(&c, 1, 0, stranger);
	ck_assert(run_until(client_closed, &c));
	client_close(&c);
	ck_assert_uint_eq(stats(1).handshake_failures, 2);
	ck_assert_uint_eq(stats(1).clients_connected, 0);
	ck_assert_int_eq(rxs[1].client_frames, 0);
	/* Client 0 signing with a replica's key: refused as well. */
	client_open(&c, 1, 0, rkey[2]);
	ck_assert(run_until(client_closed, &c));
	client_close(&c);
	ck_assert_uint_eq(stats(1).handshake_failures, 3);
	exchange(0, 1, 500);
}
END_TEST

/* ---- address announcements ------------------------------------------- */

/* An ANNOUNCE for replica `who` at port, signed with key. */
static void
announce_host(uint32_t who, uint64_t epoch, const char *host, uint16_t port,
    void *key, struct wbuf *out)
{
	struct pbft_msg m = {.type = PBFT_MSG_ANNOUNCE};
	struct wbuf sb;

	m.u.announce.replica = who;
	m.u.announce.epoch = epoch;
	m.u.announce.host = (const uint8_t *)host;
	m.u.announce.host_len = (uint8_t)strlen(host);
	m.u.announce.port = port;
	wbuf_init_dynamic(&sb, 1024);
	ck_assert_int_eq(wire_signed_bytes(&sb, &m), 0);
	ck_assert_int_eq(sig_sign(key, sb.p, sb.len, m.u.announce.sig), 0);
	wbuf_clear(&sb);
	ck_assert_int_eq(wire_encode(out, &m), 0);
}

static void
announce_frame(
    uint32_t who, uint64_t epoch, uint16_t port, void *key, struct wbuf *out)
{
	announce_host(who, epoch, "127.0.0.1", port, key, out);
}

static bool
rejected_one(void *arg)
{
	(void)arg;
	return stats(0).announce_rejected >= 1;
}

/*
 * Node 2's section gives no address: it is started with one, dials the
 * bootstrap peer (node 0) and announces itself; node 1 learns the address
 * through node 0's relay and dials it. Then a cluster member (replica 1's
 * key) sends node 0 an announcement for replica 2 that replica 2 did not
 * sign: node 0 drops that channel, counts it and keeps the real address;
 * an old announcement that replica 2 did sign changes nothing either.
 */
START_TEST(test_bootstrap_announcements)
{
	struct cluster_cfg *own = malloc(sizeof(*own));
	struct net_callbacks cb = {.ctx = &rxs[2], .on_msg = on_msg};
	char err[256] = "", addr[64];
	uint16_t port2 = cfg->nodes[2].port;
	struct client c;
	struct wbuf f, out;

	ck_assert_ptr_nonnull(own);
	cfg->bootstrap_id = 0;
	cfg->nodes[2].has_address = false;
	cfg->nodes[2].host[0] = '\0';
	cfg->nodes[2].port = 0;
	*own = *cfg; /* node 2's own view: the address from --listen */
	snprintf(own->nodes[2].host, sizeof(own->nodes[2].host), "127.0.0.1");
	own->nodes[2].port = port2;
	own->nodes[2].has_address = true;
	own->nodes[2].announce = true;
	start_node(0);
	start_node(1);
	ck_assert_int_eq(net_peer_address(nets[1], 2, addr, sizeof(addr)), -1);
	nets[2] = net_new(loop, own, 2, rkey[2], &cb, err, sizeof(err));
	ck_assert_msg(nets[2] != NULL, "net_new: %s", err);
	ck_assert(run_until(all_connected, NULL));
	ck_assert_uint_eq(stats(0).announce_accepted, 1);
	ck_assert_uint_eq(stats(1).announce_accepted, 1);
	ck_assert_int_eq(net_peer_address(nets[1], 2, addr, sizeof(addr)), 0);
	ck_assert_uint_eq(strtoul(strchr(addr, ':') + 1, NULL, 10), port2);
	exchange(1, 2, 700);
	exchange(2, 1, 701);

	/* Forged: replica 1's channel, an announcement "by" replica 2. */
	memset(&c, 0, sizeof(c));
	c.fd = client_connect(0);
	chan_init(&c.ch, PBFT_ROLE_REPLICA, 1, rkey[1], client_lookup, NULL,
	    cfg->name, true, PBFT_ROLE_REPLICA, 0);
	wbuf_init_dynamic(&out, 1 << 16);
	ck_assert_int_eq(chan_start(&c.ch, &out), 0);
	client_send(c.fd, out.p, out.len);
	wbuf_reset(&out);
	run_until(client_done, &c);
	ck_assert(chan_established(&c.ch));
	wbuf_init_dynamic(&f, 4096);
	announce_frame(2, UINT64_MAX, 1, rkey[1], &f);
	ck_assert_int_eq(chan_seal(&c.ch, f.p, f.len, &out), 0);
	client_send(c.fd, out.p, out.len);
	ck_assert(run_until(rejected_one, NULL));
	ck_assert(run_until(client_closed, &c));
	client_close(&c);
	ck_assert_int_eq(net_peer_address(nets[0], 2, addr, sizeof(addr)), 0);
	ck_assert_uint_eq(strtoul(strchr(addr, ':') + 1, NULL, 10), port2);

	/* Replayed: genuinely signed by replica 2, but older. */
	wbuf_reset(&f);
	announce_frame(2, 1, 1, rkey[2], &f);
	memset(&c, 0, sizeof(c));
	c.fd = client_connect(0);
	chan_init(&c.ch, PBFT_ROLE_REPLICA, 1, rkey[1], client_lookup, NULL,
	    cfg->name, true, PBFT_ROLE_REPLICA, 0);
	wbuf_reset(&out);
	ck_assert_int_eq(chan_start(&c.ch, &out), 0);
	client_send(c.fd, out.p, out.len);
	wbuf_reset(&out);
	run_until(client_done, &c);
	ck_assert(chan_established(&c.ch));
	ck_assert_int_eq(chan_seal(&c.ch, f.p, f.len, &out), 0);
	client_send(c.fd, out.p, out.len);
	for (int i = 0; i < 20; i++)
		ev_run(loop, EVRUN_NOWAIT);
	client_close(&c);
	ck_assert_uint_eq(stats(0).announce_rejected, 1);
	ck_assert_uint_eq(stats(0).announce_accepted, 1);
	ck_assert_int_eq(net_peer_address(nets[0], 2, addr, sizeof(addr)), 0);
	ck_assert_uint_eq(strtoul(strchr(addr, ':') + 1, NULL, 10), port2);
	wbuf_clear(&f);
	wbuf_clear(&out);

	/* Replica 1's own channel to node 0 was replaced by the fake one;
	 * node 0 dials it again and the mesh heals. */
	ck_assert(run_until(all_connected, NULL));
	exchange(0, 1, 702);
	exchange(0, 2, 703);
	net_free(nets[2]);
	nets[2] = NULL;
	free(own);
}
END_TEST

/* A port already taken: net_new fails with a reason, and cleans up. */
START_TEST(test_port_taken)
{
	struct net_callbacks cb = {.ctx = &rxs[0]};
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons(cfg->nodes[0].port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char err[256] = "";

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_ptr_null(
	    net_new(loop, cfg, 0, rkey[0], &cb, err, sizeof(err)));
	ck_assert_msg(strstr(err, "cannot listen") != NULL, "%s", err);
	close(fd);
}
END_TEST

/*
 * A client that never reads: its write queue fills to NET_WQ_BYTES_MAX,
 * the net drops that connection (counted) rather than grow, and keeps
 * serving its replicas.
 */
START_TEST(test_slow_reader_dropped)
{
	static uint8_t blob[PBFT_CHUNK_BYTES_MAX];
	struct pbft_msg m = {.type = PBFT_MSG_STATE_CHUNK};
	struct client c;
	int sent = 0;

	mesh_up();
	client_open(&c, 1, 0, ckey);
	ck_assert(chan_established(&c.ch));
	for (int i = 0; i < 50 && stats(1).clients_connected == 0; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ck_assert_uint_eq(stats(1).clients_connected, 1);
	m.u.state_chunk.data = blob;
	m.u.state_chunk.data_len = sizeof(blob);
	/* Never read c.fd; push twice the queue limit at it. */
	while (stats(1).queue_drops == 0 &&
	    sent < 2 * (int)(NET_WQ_BYTES_MAX / sizeof(blob))) {
		net_send_client(nets[1], 0, &m);
		ev_run(loop, EVRUN_NOWAIT);
		sent++;
	}
	ck_assert_uint_eq(stats(1).queue_drops, 1);
	ck_assert_uint_eq(stats(1).clients_connected, 0);
	ck_assert_int_ge(sent, (int)(NET_WQ_BYTES_MAX / sizeof(blob)) - 8);
	client_close(&c);
	exchange(0, 1, 900);
	exchange(1, 2, 901);
}
END_TEST

/*
 * Out of descriptors: accept() fails with EMFILE while the connection
 * stays queued. The net pauses accepting instead of spinning, and takes
 * the connection once descriptors are free again.
 */
START_TEST(test_emfile_pauses_accept)
{
	struct rlimit old, low;
	int fds[64], nfd = 0, probe;
	struct client c;

	mesh_up();
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* Use up every descriptor but one under a lowered limit. */
	probe = dup(0);
	ck_assert_int_ge(probe, 0);
	low = old;
	low.rlim_cur = (rlim_t)probe + 2;
	close(probe);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nfd < 64 && (fds[nfd] = dup(0)) != -1)
		nfd++;
	ck_assert_int_eq(errno, EMFILE);
	close(fds[--nfd]); /* room for our client socket only */
	memset(&c, 0, sizeof(c));
	c.fd = client_connect(1);
	for (int i = 0; i < 50; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ck_assert_uint_ge(stats(1).accept_pauses, 1);
	ck_assert_uint_le(stats(1).accept_pauses, 5); /* paused, not spinning */
	while (nfd > 0)
		close(fds[--nfd]);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	close(c.fd);
	client_open(&c, 1, 0, ckey);
	ck_assert(chan_established(&c.ch));
	client_close(&c);
	exchange(0, 1, 800);
}
END_TEST

/* ---- admission and work budgets ---------------------------------------- */

/* admit.c alone: the bucket refuses past its burst and refills at the
 * rate; open connections are counted per address, more for a replica's. */
START_TEST(test_admit_bucket_and_counts)
{
	static struct admit a;
	struct admit_limits lim = {.rate = 3, .conns = 2, .replica_conns = 1};
	struct admit_addr x = {.b = {[15] = 1}}, y = {.b = {[15] = 2}};
	uint32_t s[8];

	admit_init(&a, &lim);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(
		    admit_open(&a, &x, false, 1000, &s[i]), ADMIT_OK);
		admit_close(&a, s[i]);
	}
	ck_assert_int_eq(admit_open(&a, &x, false, 1000, &s[3]), ADMIT_RATE);
	ck_assert_uint_eq(s[3], ADMIT_NONE);
	ck_assert_int_eq(admit_open(&a, &y, false, 1000, &s[4]), ADMIT_OK);
	/* 3 a second: one more token a third of a second later. */
	ck_assert_int_eq(admit_open(&a, &x, false, 1333, &s[3]), ADMIT_RATE);
	ck_assert_int_eq(admit_open(&a, &x, false, 1334, &s[3]), ADMIT_OK);
	ck_assert_int_eq(admit_open(&a, &x, false, 1334, &s[5]), ADMIT_RATE);
	/* Later the bucket is full again (3); x holds s[3]. */
	ck_assert_int_eq(admit_open(&a, &x, false, 9000, &s[5]), ADMIT_OK);
	ck_assert_int_eq(admit_open(&a, &x, false, 9000, &s[6]), ADMIT_CONNS);
	ck_assert_int_eq(admit_open(&a, &x, true, 9000, &s[6]), ADMIT_OK);
	ck_assert_int_eq(admit_open(&a, &x, true, 9000, &s[7]), ADMIT_CONNS);
	admit_close(&a, s[6]);
	ck_assert_int_eq(admit_open(&a, &x, true, 9000, &s[7]), ADMIT_OK);
	admit_close(&a, s[7]);
	ck_assert_int_eq(admit_open(&a, &x, true, 9000, &s[7]), ADMIT_RATE);
}
END_TEST

/* Handshake work in this thread since w0. */
static struct chan_work
work_since(const struct chan_work *w0)
{
	struct chan_work w;

	chan_work_get(&w);
	return (struct chan_work){w.keygens - w0->keygens, w.signs - w0->signs,
	    w.verifies - w0->verifies};
}

/*
 * A stranger (client 0's id, another key) from 127.0.0.2 past a rate of 3
 * a second: the connections over the rate are closed on accept and cost
 * node 1 no key and no verification; the ones admitted cost one of each
 * and never a signature.
 */
START_TEST(test_rate_refused_before_crypto)
{
	struct chan_work w0, w;
	struct client c;
	uint64_t refused, admitted;

	cfg->handshake_rate = 3;
	mesh_up();
	chan_work_get(&w0);
	for (int i = 0; i < 10; i++) {
		open_as(&c, 1, PBFT_ROLE_CLIENT, 0, stranger, STRANGER_IP);
		ck_assert(run_until(client_closed, &c));
		ck_assert(!chan_established(&c.ch));
		client_close(&c);
	}
	refused = stats(1).refused[NET_REFUSE_RATE];
	admitted = 10 - refused;
	ck_assert_uint_ge(refused, 5);
	ck_assert_uint_eq(stats(1).handshake_failures, admitted);
	w = work_since(&w0);
	/* Ours: a key each, a signature for each HELLO answered. Node 1's:
	 * a key and a verification per admitted one, no signature. */
	ck_assert_uint_eq(w.keygens, 10 + admitted);
	ck_assert_uint_eq(w.signs, admitted);
	ck_assert_uint_eq(w.verifies, admitted);
	exchange(0, 1, 900);
}
END_TEST

/*
 * A stranger at 127.0.0.2 holds every handshake slot (handshakes_max = 3)
 * with connections that say nothing; its fourth replaces its own oldest.
 * A client from 127.0.0.3 still gets through (it replaces the stranger's
 * oldest), and so does replica 0, restarted, on the slots kept for
 * replicas' addresses (replacing nobody).
 */
START_TEST(test_handshake_slots_reserved)
{
	int idle[5];
	struct client c;

	cfg->handshakes_max = 3;
	mesh_up();
	for (int i = 0; i < 4; i++) {
		idle[i] = connect_from(1, STRANGER_IP);
		for (int k = 0; k < 20; k++)
			ev_run(loop, EVRUN_NOWAIT);
	}
	ck_assert_uint_eq(stats(1).refused[NET_REFUSE_HANDSHAKES], 1);
	open_as(&c, 1, PBFT_ROLE_CLIENT, 0, ckey, STRANGER_IP + 1);
	ck_assert(chan_established(&c.ch));
	client_close(&c);
	ck_assert_uint_eq(stats(1).refused[NET_REFUSE_HANDSHAKES], 2);
	/* The stranger takes the freed slot back: all three held again. */
	idle[4] = connect_from(1, STRANGER_IP);
	for (int k = 0; k < 20; k++)
		ev_run(loop, EVRUN_NOWAIT);
	ck_assert_uint_eq(stats(1).refused[NET_REFUSE_HANDSHAKES], 2);
	net_free(nets[0]);
	nets[0] = NULL;
	start_node(0);
	ck_assert(run_until(all_connected, NULL));
	/* On a kept slot: it replaced nobody. */
	ck_assert_uint_eq(stats(1).refused[NET_REFUSE_HANDSHAKES], 2);
	exchange(0, 1, 910);
	for (int i = 0; i < 5; i++)
		close(idle[i]);
}
END_TEST

/*
 * accept_from = replicas: a client from 127.0.0.2 is closed on accept,
 * one from 127.0.0.1 (a replica's address) is served. Then, with any
 * address accepted, a HELLO naming replica 2 from 127.0.0.2 is refused
 * before node 1 makes a key (replica_source = match).
 */
START_TEST(test_source_addresses)
{
	struct chan_work w0, w;
	struct client c;

	cfg->accept_from = CFG_ACCEPT_REPLICAS;
	mesh_up();
	open_as(&c, 1, PBFT_ROLE_CLIENT, 0, ckey, STRANGER_IP);
	ck_assert(run_until(client_closed, &c));
	client_close(&c);
	ck_assert_uint_eq(stats(1).refused[NET_REFUSE_SOURCE], 1);
	client_open(&c, 1, 0, ckey);
	ck_assert(chan_established(&c.ch));
	client_close(&c);
	cfg->accept_from = CFG_ACCEPT_ANY;
	chan_work_get(&w0);
	open_as(&c, 1, PBFT_ROLE_REPLICA, 2, rkey[2], STRANGER_IP);
	ck_assert(run_until(client_closed, &c));
	ck_assert(!chan_established(&c.ch));
	client_close(&c);
	w = work_since(&w0);
	ck_assert_uint_eq(stats(1).refused[NET_REFUSE_SOURCE], 2);
	ck_assert_uint_eq(w.keygens, 1); /* ours */
	ck_assert_uint_eq(w.signs + w.verifies, 0);
	ck_assert_uint_eq(stats(1).handshake_failures, 0);
	exchange(0, 1, 920);
}
END_TEST

/* An announcement that replica 2 did sign but that names a host rather
 * than an address: ignored and counted, the channel that relayed it kept,
 * nothing learned. */
START_TEST(test_announced_name_ignored)
{
	struct client c;
	struct wbuf f, out;

	mesh_up();
	memset(&c, 0, sizeof(c));
	c.fd = client_connect(0);
	chan_init(&c.ch, PBFT_ROLE_REPLICA, 1, rkey[1], client_lookup, NULL,
	    cfg->name, true, PBFT_ROLE_REPLICA, 0);
	wbuf_init_dynamic(&out, 1 << 16);
	ck_assert_int_eq(chan_start(&c.ch, &out), 0);
	client_send(c.fd, out.p, out.len);
	wbuf_reset(&out);
	run_until(client_done, &c);
	ck_assert(chan_established(&c.ch));
	wbuf_init_dynamic(&f, 4096);
	announce_host(2, UINT64_MAX, "localhost", 1, rkey[2], &f);
	ck_assert_int_eq(chan_seal(&c.ch, f.p, f.len, &out), 0);
	client_send(c.fd, out.p, out.len);
	for (int i = 0;
	     i < 50 && stats(0).refused[NET_REFUSE_ANNOUNCE_NAME] == 0; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ck_assert_uint_eq(stats(0).refused[NET_REFUSE_ANNOUNCE_NAME], 1);
	ck_assert_uint_eq(stats(0).announce_rejected, 0);
	ck_assert_uint_eq(stats(0).announce_accepted, 0);
	client_poll(&c);
	ck_assert(!c.closed);
	client_close(&c);
	wbuf_clear(&f);
	wbuf_clear(&out);
}
END_TEST

/* Frames node 1 handed on per loop iteration, at most (a prepare watcher
 * looks at the count before each wait). */
static int frames_seen, frames_iter_max;

static void
iter_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	int d = rxs[1].client_frames - frames_seen;

	(void)l;
	(void)w;
	(void)revents;
	if (d > frames_iter_max)
		frames_iter_max = d;
	frames_seen = rxs[1].client_frames;
}

static bool
frames_all_seen(void *arg)
{
	return rxs[1].client_frames >= *(int *)arg;
}

/* One record of 3,000 frames from a client is handed on in pieces of at
 * most NET_BUDGET_FRAMES, one piece per loop iteration; all arrive. */
START_TEST(test_budget_spreads_a_burst)
{
	struct client c;
	struct wbuf f, rec;
	struct pbft_msg m;
	ev_prepare iter;
	int want = 3000;

	mesh_up();
	client_open(&c, 1, 0, ckey);
	ck_assert(chan_established(&c.ch));
	wbuf_init_dynamic(&f, 1 << 22);
	wbuf_init_dynamic(&rec, 1 << 22);
	for (int i = 0; i < want; i++) {
		checkpoint(&m, (uint64_t)i + 1, 0);
		ck_assert_int_eq(wire_encode(&f, &m), 0);
	}
	ck_assert_int_eq(chan_seal(&c.ch, f.p, f.len, &rec), 0);
	ev_prepare_init(&iter, iter_cb);
	ev_prepare_start(loop, &iter);
	client_send(c.fd, rec.p, rec.len);
	ck_assert(run_until(frames_all_seen, &want));
	iter_cb(loop, &iter, 0); /* the last iteration's share */
	ev_prepare_stop(loop, &iter);
	ck_assert_int_eq(rxs[1].client_frames, want);
	ck_assert_uint_eq(rxs[1].client_seq, (uint64_t)want);
	ck_assert_int_le(frames_iter_max, NET_BUDGET_FRAMES);
	ck_assert_uint_ge(stats(1).budget_deferrals, 2);
	wbuf_clear(&f);
	wbuf_clear(&rec);
	client_close(&c);
	exchange(0, 1, 930);
}
END_TEST

/* ---- link liveness ------------------------------------------------------ */

#define HB_MS 100
#define DEAD_MS 1000

static void
liveness_fast(void)
{
	cfg->heartbeat_interval_ms = HB_MS;
	cfg->dead_after_ms = DEAD_MS;
}

static bool
never(void *arg)
{
	(void)arg;
	return false;
}

/* Runs the loop for about ms milliseconds (at most WAIT_MS). */
static void
run_for(uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		run_until(never, NULL);
}

struct dead_want {
	uint32_t node, peer;
};

static bool
link_dead(void *arg)
{
	const struct dead_want *d = arg;

	return stats(d->node).peer[d->peer].links_dead >= 1;
}

/* An idle mesh stays up on heartbeats alone: for 4 dead_after times
 * nothing but heartbeats crosses it, and no link is closed. */
START_TEST(test_heartbeat_keeps_idle_link)
{
	liveness_fast();
	mesh_up();
	run_for(4 * DEAD_MS);
	for (uint32_t i = 0; i < NODES; i++) {
		struct net_stats st = stats(i);

		ck_assert_uint_eq(st.peers_connected, NODES - 1);
		for (uint32_t p = 0; p < NODES; p++)
			ck_assert_uint_eq(st.peer[p].links_dead, 0);
	}
	exchange(0, 2, 941);
	exchange(2, 1, 942);
}
END_TEST

/*
 * The accepting side: a replica that completes the handshake and then
 * neither reads nor sends is dropped within dead_after (plus a check
 * interval and slack), and peers_connected no longer counts it.
 */
START_TEST(test_silent_peer_dropped)
{
	struct client c;
	struct dead_want d = {1, 0};
	struct net_link l;
	uint64_t t0;

	liveness_fast();
	start_node(1);
	open_as(&c, 1, PBFT_ROLE_REPLICA, 0, rkey[0], INADDR_LOOPBACK);
	ck_assert(chan_established(&c.ch));
	t0 = now_ms();
	net_peer_link(nets[1], 0, &l);
	ck_assert(l.up);
	ck_assert_int_ge(l.heard_ms, 0);
	ck_assert(run_until(link_dead, &d));
	ck_assert_uint_ge(now_ms() - t0, DEAD_MS - HB_MS);
	ck_assert_uint_le(now_ms() - t0, 4 * DEAD_MS);
	net_peer_link(nets[1], 0, &l);
	ck_assert(!l.up);
	ck_assert_int_eq(l.heard_ms, -1);
	ck_assert_uint_eq(stats(1).peers_connected, 0);
	ck_assert(run_until(client_closed, &c));
	client_close(&c);
}
END_TEST

struct old_watch {
	struct client *c;
	uint64_t end_ms;
};

/* Polls the old peer's socket: true once its channel failed (as the code
 * before heartbeats fails on an empty record), it was closed, or time is
 * up. */
static bool
old_peer_broke(void *arg)
{
	struct old_watch *o = arg;

	client_poll(o->c);
	return o->c->closed || o->c->ch.state == CHAN_FAILED ||
	    now_ms() >= o->end_ms;
}

static bool
old_peer_got_frame(void *arg)
{
	struct client *c = arg;

	client_poll(c);
	return c->frames > 0 || c->closed || c->ch.state == CHAN_FAILED;
}

/*
 * Rolling upgrades: a replica running the code before heartbeats announces
 * no capability, fails on an empty record and sends nothing when idle.
 * Linked to such a peer for 4 dead_after times, node 1 sends it no
 * heartbeat and does not close the link for silence; status shows the link
 * up, without heartbeats; frames still cross both ways.
 */
START_TEST(test_old_peer_gets_no_heartbeat)
{
	struct client c;
	struct old_watch o = {&c, 0};
	struct want_frame w = {1, 0, 1};
	struct net_link l;
	struct pbft_msg m;
	struct wbuf out;

	liveness_fast();
	start_node(1);
	open_as_caps(&c, 1, PBFT_ROLE_REPLICA, 0, rkey[0], INADDR_LOOPBACK, 0);
	ck_assert(chan_established(&c.ch));
	o.end_ms = now_ms() + 4 * DEAD_MS;
	while (!old_peer_broke(&o))
		run_until(old_peer_broke, &o);
	ck_assert_msg(c.ch.state == CHAN_ESTABLISHED, "old peer's channel: %s",
	    chan_error(&c.ch));
	ck_assert(!c.closed);
	ck_assert_uint_eq(stats(1).peer[0].links_dead, 0);
	ck_assert_uint_eq(stats(1).peers_connected, 1);
	net_peer_link(nets[1], 0, &l);
	ck_assert(l.up);
	ck_assert(!l.heartbeats);
	ck_assert_int_ge(l.heard_ms, 3 * DEAD_MS);
	checkpoint(&m, 952, 1);
	net_send(nets[1], 0, &m, false);
	ck_assert(run_until(old_peer_got_frame, &c));
	ck_assert_int_eq(c.frames, 1);
	wbuf_init_dynamic(&out, 4096);
	sealed(&c, 953, &out);
	client_send(c.fd, out.p, out.len);
	wbuf_clear(&out);
	ck_assert(run_until(got_frames, &w));
	ck_assert_uint_eq(rxs[1].last_seq[0], 953);
	client_close(&c);
}
END_TEST

static int fake_lfd = -1;

static bool
fake_accepted(void *arg)
{
	int *fd = arg;

	*fd = accept4(fake_lfd, NULL, NULL, SOCK_NONBLOCK);
	return *fd != -1;
}

/* Accepts node 0's dial at replica 1's address and answers the handshake
 * as replica 1. */
static void
fake_accept(struct client *c)
{
	struct wbuf out;

	memset(c, 0, sizeof(*c));
	ck_assert(run_until(fake_accepted, &c->fd));
	chan_init(&c->ch, PBFT_ROLE_REPLICA, 1, rkey[1], client_lookup, NULL,
	    cfg->name, false, 0, 0);
	wbuf_init_dynamic(&out, 4096);
	ck_assert_int_eq(chan_start(&c->ch, &out), 0);
	ck_assert_uint_eq(out.len, 0);
	wbuf_clear(&out);
	ck_assert(run_until(client_done, c));
	ck_assert(chan_established(&c->ch));
}

static bool
node0_has_1(void *arg)
{
	(void)arg;
	return net_peer_up(nets[0], 1);
}

/*
 * The dialling side: replica 1's address answers the handshake and then
 * falls silent (reads nothing, sends nothing, keeps the socket open, as a
 * host behind a partition). Node 0 closes the link within dead_after and
 * dials again, and the new channel is established.
 */
START_TEST(test_silent_peer_redialled)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons(cfg->nodes[1].port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct client a, b;
	struct dead_want d = {0, 1};
	uint64_t t0;
	int one = 1;

	liveness_fast();
	fake_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(fake_lfd, 0);
	setsockopt(fake_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_int_eq(bind(fake_lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fake_lfd, 8), 0);
	start_node(0);
	fake_accept(&a);
	ck_assert(run_until(node0_has_1, NULL));
	t0 = now_ms();
	ck_assert(run_until(link_dead, &d));
	ck_assert_uint_ge(now_ms() - t0, DEAD_MS - HB_MS);
	ck_assert_uint_le(now_ms() - t0, 4 * DEAD_MS);
	fake_accept(&b);
	ck_assert_uint_ge(stats(0).peer[1].redials, 1);
	ck_assert(run_until(client_closed, &a));
	client_close(&a);
	client_close(&b);
	close(fake_lfd);
	fake_lfd = -1;
}
END_TEST

static Suite *
net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("mesh");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_mesh_connects_and_exchanges);
	tcase_add_test(tc, test_restart_reconnects);
	tcase_add_test(tc, test_hold_until_released);
	tcase_add_test(tc, test_client_ok_then_replay);
	tcase_add_test(tc, test_garbage_dropped);
	tcase_add_test(tc, test_frames_decoded_once);
	tcase_add_test(tc, test_oversized_lengths_dropped);
	tcase_add_test(tc, test_truncated_record_dropped);
	tcase_add_test(tc, test_unknown_and_lying_keys_refused);
	tcase_add_test(tc, test_bootstrap_announcements);
	tcase_add_test(tc, test_port_taken);
	tcase_add_test(tc, test_emfile_pauses_accept);
	tcase_add_test(tc, test_slow_reader_dropped);
	suite_add_tcase(s, tc);
	tc = tcase_create("admission");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_admit_bucket_and_counts);
	tcase_add_test(tc, test_rate_refused_before_crypto);
	tcase_add_test(tc, test_handshake_slots_reserved);
	tcase_add_test(tc, test_source_addresses);
	tcase_add_test(tc, test_announced_name_ignored);
	tcase_add_test(tc, test_budget_spreads_a_burst);
	suite_add_tcase(s, tc);
	tc = tcase_create("liveness");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_heartbeat_keeps_idle_link);
	tcase_add_test(tc, test_silent_peer_dropped);
	tcase_add_test(tc, test_silent_peer_redialled);
	tcase_add_test(tc, test_old_peer_gets_no_heartbeat);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(net_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
