/*
 * check_client.c - the client library on its own: the signing interval
 * stays at its base while requests are quick, follows half the recent
 * latency when they are slow, and never exceeds 2.5 times the base; a
 * request nobody answers fails with PBFT_CLIENT_TIMEOUT at its deadline,
 * not before and not much after, oldest first, whether the requests were
 * sent at once or one after another; a request submitted before any
 * channel is up reaches a replica as soon as that replica's channel comes
 * up (the primary, or a backup while the primary is down), long before its
 * first retransmission; one replica naming a higher view in its replies
 * does not move the client to that view's primary, f+1 do; after a
 * request that only a retransmission to all got answered, the next 16 go
 * to all replicas at once, the 17th to the primary alone. (Replies,
 * retransmission and view changes run against real replicas in the
 * integration tests.)
 */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "client.h"
#include "sig.h"
#include "wire.h"

#define NODES 4
#define TIMEOUT_MS 300
#define REQS 3
#define RESET_REQS 64
#define RESET_OP_BYTES 32768 /* 64 of them: 2 MiB queued at once */

START_TEST(test_sign_interval_follows_latency)
{
	/* Quick answers (or none yet): the base. */
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 0), 2000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 900), 2000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 4000), 2000);
	/* Slower: half the latency. */
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 6000), 3000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 9998), 4999);
	/* Slow, or a latency that makes no sense: at most 2.5 times. */
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 10002), 5000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 1000000), 5000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, UINT64_MAX), 5000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(UINT32_MAX, UINT64_MAX),
	    (uint64_t)UINT32_MAX * 5 / 2);
}
END_TEST

/* A loopback port nothing listens on (bound, read, closed). */
static uint16_t
closed_port(void)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

struct outcome {
	int done;
	int order[REQS];
	struct pbft_result res[REQS];
	struct ev_loop *loop;
};

static struct outcome got;

static void
on_result(void *arg, const struct pbft_result *res)
{
	int i = (int)(intptr_t)arg;

	got.order[got.done++] = i;
	got.res[i] = *res;
	if (got.done == REQS)
		ev_break(got.loop, EVBREAK_ALL);
}

static void
watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* _i: 0 pipelined (all start at once), 1 serial (each starts when the one
 * before it has failed, from that callback). */
/* Node i's key (seed 40 + i); the client's is seed 50. */
static void *
test_key(int seed_byte)
{
	uint8_t seed[32];
	void *k;

	memset(seed, seed_byte, sizeof(seed));
	k = sig_keygen(seed);
	ck_assert_ptr_nonnull(k);
	return k;
}

/* A cluster of NODES on closed loopback ports, and one client, c0. */
static struct cluster_cfg *
test_cfg(struct pbft_client_opts *o)
{
	struct cluster_cfg *cfg = calloc(1, sizeof(*cfg));

	ck_assert_ptr_nonnull(cfg);
	snprintf(cfg->name, sizeof(cfg->name), "clienttest");
	cfg->n = NODES;
	cfg->f = 1;
	for (uint32_t i = 0; i < NODES; i++) {
		void *k = test_key(40 + (int)i);

		sig_public_raw(k, cfg->nodes[i].public_key);
		sig_key_free(k);
		cfg->nodes[i].id = i;
		snprintf(cfg->nodes[i].host, sizeof(cfg->nodes[i].host),
		    "127.0.0.1");
		cfg->nodes[i].port = closed_port();
		cfg->nodes[i].has_address = true;
	}
	cfg->bootstrap_id = UINT32_MAX;
	cfg->nclients = 1;
	cfg->clients = calloc(1, sizeof(*cfg->clients));
	ck_assert_ptr_nonnull(cfg->clients);
	*o = (struct pbft_client_opts){.cfg = cfg, .key = test_key(50)};
	sig_public_raw(o->key, cfg->clients[0].public_key);
	snprintf(cfg->clients[0].name, sizeof(cfg->clients[0].name), "c0");
	return cfg;
}

START_TEST(test_unanswered_requests_time_out)
{
	struct pbft_client_opts o;
	struct cluster_cfg *cfg = test_cfg(&o);
	struct pbft_client *c;
	ev_timer watchdog;
	char err[256];

	o.timeout_ms = TIMEOUT_MS;
	o.retransmit_ms = 40;
	o.pipeline = _i == 0;

	memset(&got, 0, sizeof(got));
	got.loop = ev_loop_new(EVFLAG_AUTO);
	c = pbft_client_new(got.loop, &o, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	for (int i = 0; i < REQS; i++) {
		ck_assert_int_eq(pbft_client_submit(c, (const uint8_t *)"op", 2,
		                     on_result, (void *)(intptr_t)i),
		    0);
		/* Later requests start later: the order is observable. */
		usleep(20000);
		ev_run(got.loop, EVRUN_NOWAIT);
	}
	ev_timer_init(&watchdog, watchdog_cb, 5.0, 0);
	ev_timer_start(got.loop, &watchdog);
	ev_run(got.loop, 0);
	ev_timer_stop(got.loop, &watchdog);

	ck_assert_int_eq(got.done, REQS);
	for (int i = 0; i < REQS; i++) {
		ck_assert_int_eq(got.order[i], i);
		ck_assert_int_eq(got.res[i].status, PBFT_CLIENT_TIMEOUT);
		ck_assert_uint_ge(got.res[i].latency_us, TIMEOUT_MS * 1000);
		ck_assert_uint_lt(got.res[i].latency_us, 3 * TIMEOUT_MS * 1000);
	}
	ck_assert_uint_eq(pbft_client_outstanding(c), 0);
	pbft_client_free(c);
	ev_loop_destroy(got.loop);
	free(cfg->clients);
	free(cfg);
}
END_TEST

/*
 * A replica played by the test: it listens, and once the test accepts the
 * client's connection it answers the handshake (chan.h) and counts the
 * REQUEST frames it receives.
 */
struct fake_replica {
	struct cluster_cfg *cfg;
	uint32_t id;
	void *key;
	int lfd, fd;
	struct chan ch;
	ev_io rd;
	uint8_t *in; /* FAKE_IN_MAX */
	size_t inlen;
	int requests, want; /* counted; the loop stops at want (0: 1) */
	uint64_t ts; /* of the last request counted */
	uint32_t op_len; /* of the requests expected (0: "op") */
	bool failed;
};

#define FAKE_IN_MAX (CHAN_RECORD_MAX + 4 + 65536)

static int
fake_lookup(void *ctx, uint8_t role, uint32_t id, uint8_t pub[PBFT_PUBKEY_LEN])
{
	const struct fake_replica *f = ctx;

	if (role != PBFT_ROLE_CLIENT || id >= f->cfg->nclients)
		return -1;
	memcpy(pub, f->cfg->clients[id].public_key, PBFT_PUBKEY_LEN);
	return 0;
}

static void
fake_send(struct fake_replica *f, const struct wbuf *out)
{
	for (size_t off = 0; off < out->len;) {
		ssize_t w = write(f->fd, out->p + off, out->len - off);

		if (w == -1 && errno != EAGAIN && errno != EINTR) {
			f->failed = true;
			return;
		}
		if (w > 0)
			off += (size_t)w;
	}
}

static void
fake_frame(void *arg, const uint8_t *frame, size_t len)
{
	struct fake_replica *f = arg;
	size_t alen = wire_arena_bytes_for(len);
	uint8_t *mem = malloc(alen);
	struct wire_arena arena;
	struct pbft_msg m;

	ck_assert_ptr_nonnull(mem);
	wire_arena_init(&arena, mem, alen);
	if (wire_decode(frame, len, &m, &arena) == WIRE_OK &&
	    m.type == PBFT_MSG_REQUEST && m.u.request.client == 0 &&
	    (f->op_len ? m.u.request.op_len == f->op_len
	               : m.u.request.op_len == 2 &&
	                memcmp(m.u.request.op, "op", 2) == 0)) {
		f->requests++;
		f->ts = m.u.request.timestamp;
	} else
		f->failed = true;
	free(mem);
}

static void
fake_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fake_replica *f = w->data;
	struct wbuf out;
	size_t used = 0;
	ssize_t r;

	(void)revents;
	r = read(f->fd, f->in + f->inlen, FAKE_IN_MAX - f->inlen);
	if (r <= 0) {
		if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			f->failed = true;
			ev_break(loop, EVBREAK_ALL);
		}
		return;
	}
	f->inlen += (size_t)r;
	wbuf_init_dynamic(&out, 1 << 16);
	if (chan_input(&f->ch, f->in, f->inlen, &used, &out, fake_frame, f) ==
	    -1)
		f->failed = true;
	memmove(f->in, f->in + used, f->inlen - used);
	f->inlen -= used;
	fake_send(f, &out);
	wbuf_clear(&out);
	if (f->requests >= (f->want ? f->want : 1) || f->failed)
		ev_break(loop, EVBREAK_ALL);
}

/* Accepts the client's connection (it dialled already) and starts the
 * handshake. */
static void
fake_accept(struct fake_replica *f, struct ev_loop *loop)
{
	struct pollfd p = {.fd = f->lfd, .events = POLLIN};
	struct wbuf out;

	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	f->fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK);
	ck_assert_int_ne(f->fd, -1);
	chan_init(&f->ch, PBFT_ROLE_REPLICA, f->id, f->key, fake_lookup, f,
	    f->cfg->name, false, 0, 0);
	wbuf_init_dynamic(&out, 4096);
	ck_assert_int_eq(chan_start(&f->ch, &out), 0);
	fake_send(f, &out);
	wbuf_clear(&out);
	ev_io_init(&f->rd, fake_read_cb, f->fd, EV_READ);
	f->rd.data = f;
	ev_io_start(loop, &f->rd);
}

/* Listens on a loopback port for node id, which cfg then names. */
static void
fake_listen(struct fake_replica *f, struct cluster_cfg *cfg, uint32_t id)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(f, 0, sizeof(*f));
	f->in = malloc(FAKE_IN_MAX);
	ck_assert_ptr_nonnull(f->in);
	f->cfg = cfg;
	f->id = id;
	f->key = test_key(40 + (int)id);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(f->lfd, -1);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
	cfg->nodes[id].port = ntohs(a.sin_port);
}

static void
on_cancelled(void *arg, const struct pbft_result *res)
{
	*(enum pbft_client_status *)arg = res->status;
}

/*
 * _i: the replica that comes up, 0 (the primary of view 0) or 1 (a backup,
 * the primary staying down). The request is signed and started while no
 * channel is up; it must arrive within 3 s although the first
 * retransmission is 60 s away.
 */
START_TEST(test_request_sent_when_channel_comes_up)
{
	struct pbft_client_opts o;
	struct cluster_cfg *cfg = test_cfg(&o);
	struct fake_replica f;
	struct pbft_client *c;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	enum pbft_client_status st = PBFT_CLIENT_OK;
	ev_timer watchdog;
	char err[256];

	fake_listen(&f, cfg, (uint32_t)_i);
	o.timeout_ms = 120000;
	o.retransmit_ms = 60000;
	c = pbft_client_new(loop, &o, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(
	    pbft_client_submit(c, (const uint8_t *)"op", 2, on_cancelled, &st),
	    0);
	/* Signed and started, with no channel up to take it. */
	for (int i = 0; i < 5; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ck_assert_uint_eq(pbft_client_connected(c), 0);
	fake_accept(&f, loop);
	ev_timer_init(&watchdog, watchdog_cb, 3.0, 0);
	ev_timer_start(loop, &watchdog);
	ev_run(loop, 0);
	ev_timer_stop(loop, &watchdog);

	ck_assert(!f.failed);
	ck_assert(pbft_client_replica_connected(c, (uint32_t)_i));
	ck_assert(!pbft_client_replica_connected(c, (uint32_t)_i ^ 1));
	ck_assert_int_eq(f.requests, 1);
	pbft_client_free(c);
	ck_assert_int_eq(st, PBFT_CLIENT_CANCELLED);
	ev_io_stop(loop, &f.rd);
	chan_clear(&f.ch);
	close(f.fd);
	close(f.lfd);
	free(f.in);
	sig_key_free(f.key);
	ev_loop_destroy(loop);
	free(cfg->clients);
	free(cfg);
}
END_TEST

/*
 * Resets f's connection as a replica that dies does: a FIN, then an RST
 * (SO_LINGER 0), whatever the client queued left unread. The client's
 * socket, half-closed when the RST comes, then fails every send with
 * EPIPE, which raises SIGPIPE unless the send says MSG_NOSIGNAL.
 */
static void
fake_reset(struct fake_replica *f, struct ev_loop *loop)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	ev_io_stop(loop, &f->rd);
	ck_assert_int_eq(shutdown(f->fd, SHUT_WR), 0);
	ck_assert_int_eq(
	    setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(f->fd);
	f->fd = -1;
	chan_clear(&f->ch);
	f->inlen = 0;
	usleep(20000); /* the FIN and the RST reach the client's socket */
}

static void
run_until(struct ev_loop *loop, double s)
{
	ev_timer watchdog;

	ev_timer_init(&watchdog, watchdog_cb, s, 0);
	ev_timer_start(loop, &watchdog);
	ev_run(loop, 0);
	ev_timer_stop(loop, &watchdog);
}

static void
submit_big(struct pbft_client *c, const uint8_t *op, int count,
    enum pbft_client_status *st)
{
	for (int i = 0; i < count; i++)
		ck_assert_int_eq(pbft_client_submit(c, op, RESET_OP_BYTES,
		                     on_cancelled, &st[i]),
		    0);
}

/*
 * A program embedding the client library survives the primary resetting
 * the connection while the client writes a large queue to it (this test
 * does not ignore SIGPIPE: the library must not raise it), sees the link
 * down, dials again, and sends every unanswered request on the new
 * connection without waiting for a retransmission (60 s away).
 */
START_TEST(test_survives_reset_while_writing)
{
	struct pbft_client_opts o;
	struct cluster_cfg *cfg = test_cfg(&o);
	struct fake_replica f;
	struct pbft_client *c;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	static enum pbft_client_status st[RESET_REQS + 1];
	uint8_t *op = malloc(RESET_OP_BYTES);
	char err[256];

	ck_assert_ptr_nonnull(op);
	memset(op, 0x5a, RESET_OP_BYTES);
	fake_listen(&f, cfg, 0);
	f.op_len = RESET_OP_BYTES;
	o.timeout_ms = 120000;
	o.retransmit_ms = 60000;
	o.pipeline = true;
	c = pbft_client_new(loop, &o, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	/* The primary takes the first request, reading a little. */
	fake_accept(&f, loop);
	submit_big(c, op, 1, st);
	run_until(loop, 3.0);
	ck_assert(!f.failed);
	ck_assert_int_eq(f.requests, 1);
	ck_assert(pbft_client_replica_connected(c, 0));
	/* It dies; the client writes 2 MiB more into the reset socket. */
	fake_reset(&f, loop);
	submit_big(c, op, RESET_REQS, st + 1);
	ev_run(loop, EVRUN_NOWAIT);
	ck_assert(!pbft_client_replica_connected(c, 0));
	/* It comes back: everything unanswered arrives again. */
	f.requests = 0;
	f.want = RESET_REQS + 1;
	run_until(loop, 0.5); /* dials again after 50 to 150 ms */
	fake_accept(&f, loop);
	run_until(loop, 5.0);
	ck_assert(!f.failed);
	ck_assert(pbft_client_replica_connected(c, 0));
	ck_assert_int_eq(f.requests, RESET_REQS + 1);
	ck_assert_uint_eq(pbft_client_outstanding(c), RESET_REQS + 1);
	pbft_client_free(c);
	for (int i = 0; i <= RESET_REQS; i++)
		ck_assert_int_eq(st[i], PBFT_CLIENT_CANCELLED);
	ev_io_stop(loop, &f.rd);
	chan_clear(&f.ch);
	close(f.fd);
	close(f.lfd);
	free(f.in);
	free(op);
	sig_key_free(f.key);
	ev_loop_destroy(loop);
	free(cfg->clients);
	free(cfg);
}
END_TEST

/*
 * Four replicas played by the test, connected to a client whose
 * retransmissions come every retransmit_ms (deadlines far away). The
 * replicas count what reaches them and answer only when told to.
 */
struct quad {
	struct cluster_cfg *cfg;
	struct fake_replica r[NODES];
	struct pbft_client *c;
	struct ev_loop *loop;
	int done;
	enum pbft_client_status st;
	uint64_t view; /* of the last result */
};

static void
quad_result(void *arg, const struct pbft_result *res)
{
	struct quad *q = arg;

	q->done++;
	q->st = res->status;
	q->view = res->view;
}

static void
quad_start(struct quad *q, uint32_t retransmit_ms)
{
	struct pbft_client_opts o;
	char err[256];

	memset(q, 0, sizeof(*q));
	q->cfg = test_cfg(&o);
	q->loop = ev_loop_new(EVFLAG_AUTO);
	for (uint32_t i = 0; i < NODES; i++) {
		fake_listen(&q->r[i], q->cfg, i);
		q->r[i].want = 1 << 30; /* never stops the loop */
	}
	o.timeout_ms = 120000;
	o.retransmit_ms = retransmit_ms;
	q->c = pbft_client_new(q->loop, &o, err, sizeof(err));
	ck_assert_msg(q->c != NULL, "%s", err);
	for (uint32_t i = 0; i < NODES; i++)
		fake_accept(&q->r[i], q->loop);
	run_until(q->loop, 0.3);
	ck_assert_uint_eq(pbft_client_connected(q->c), NODES);
}

static void
quad_stop(struct quad *q)
{
	pbft_client_free(q->c);
	for (uint32_t i = 0; i < NODES; i++) {
		struct fake_replica *f = &q->r[i];

		ck_assert(!f->failed);
		ev_io_stop(q->loop, &f->rd);
		chan_clear(&f->ch);
		close(f->fd);
		close(f->lfd);
		free(f->in);
		sig_key_free(f->key);
	}
	ev_loop_destroy(q->loop);
	free(q->cfg->clients);
	free(q->cfg);
}

/* Replica i answers request ts (executed at seq 1, result "ok"), naming
 * view. */
static void
quad_reply(struct quad *q, uint32_t i, uint64_t ts, uint64_t view)
{
	struct pbft_msg m = {.type = PBFT_MSG_REPLY};
	struct wbuf frame, out;

	m.u.reply = (struct pbft_reply){.view = view,
	    .timestamp = ts,
	    .client = 0,
	    .replica = i,
	    .seq = 1,
	    .result_len = 2,
	    .result = (const uint8_t *)"ok"};
	wbuf_init_dynamic(&frame, 4096);
	wbuf_init_dynamic(&out, 4096);
	ck_assert_int_eq(wire_encode(&frame, &m), 0);
	ck_assert_int_eq(chan_seal(&q->r[i].ch, frame.p, frame.len, &out), 0);
	fake_send(&q->r[i], &out);
	wbuf_clear(&frame);
	wbuf_clear(&out);
	run_until(q->loop, 0.05);
}

static void
quad_submit(struct quad *q)
{
	ck_assert_int_eq(
	    pbft_client_submit(q->c, (const uint8_t *)"op", 2, quad_result, q),
	    0);
}

/* How many requests replicas 0 to 3 have had. */
#define ck_counts(q, a, b, c, d)                                               \
	do {                                                                   \
		ck_assert_int_eq((q)->r[0].requests, a);                       \
		ck_assert_int_eq((q)->r[1].requests, b);                       \
		ck_assert_int_eq((q)->r[2].requests, c);                       \
		ck_assert_int_eq((q)->r[3].requests, d);                       \
	} while (0)

/*
 * One faulty replica naming a view whose primary is itself does not move
 * the client there, though its reply completes the f+1 matching ones: the
 * next request goes to the primary of view 0 alone. Two replicas naming
 * view 1 do move it.
 */
START_TEST(test_view_needs_f_plus_1_replicas)
{
	struct quad q;
	uint64_t ts;

	quad_start(&q, 60000);
	quad_submit(&q);
	run_until(q.loop, 0.2);
	ck_counts(&q, 1, 0, 0, 0);
	ts = q.r[0].ts;
	quad_reply(&q, 0, ts, 0);
	quad_reply(&q, 3, ts, 3); /* completes the quorum, and lies */
	ck_assert_int_eq(q.done, 1);
	ck_assert_int_eq(q.st, PBFT_CLIENT_OK);

	quad_submit(&q);
	run_until(q.loop, 0.2);
	ck_counts(&q, 2, 0, 0, 0); /* not to replica 3 */
	ts = q.r[0].ts;
	quad_reply(&q, 1, ts, 1);
	quad_reply(&q, 2, ts, 1);
	ck_assert_int_eq(q.done, 2);

	quad_submit(&q);
	run_until(q.loop, 0.2);
	ck_counts(&q, 2, 1, 0, 0); /* the primary of view 1 */
	quad_stop(&q);
}
END_TEST

/*
 * A primary that ignores what the client sends it directly: the request
 * is answered after its retransmission to all (the backups would forward
 * it), so the next 16 go to all replicas at once, and the 17th to the
 * primary alone again.
 */
START_TEST(test_ignored_by_primary_then_sent_to_all)
{
	struct quad q;

	quad_start(&q, 400);
	quad_submit(&q);
	run_until(q.loop, 0.2);
	ck_counts(&q, 1, 0, 0, 0);
	run_until(q.loop, 0.4); /* retransmitted to all */
	ck_counts(&q, 2, 1, 1, 1);
	quad_reply(&q, 1, q.r[1].ts, 0);
	quad_reply(&q, 2, q.r[1].ts, 0);
	ck_assert_int_eq(q.done, 1);

	for (int i = 1; i <= 16; i++) {
		quad_submit(&q);
		run_until(q.loop, 0.1); /* well before a retransmission */
		ck_counts(&q, 2 + i, 1 + i, 1 + i, 1 + i);
		quad_reply(&q, 1, q.r[1].ts, 0);
		quad_reply(&q, 2, q.r[1].ts, 0);
		ck_assert_int_eq(q.done, 1 + i);
	}
	quad_submit(&q);
	run_until(q.loop, 0.1);
	ck_counts(&q, 19, 17, 17, 17);
	quad_stop(&q);
}
END_TEST

static Suite *
client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("sign_interval");
	TCase *tt = tcase_create("timeouts");
	TCase *tu = tcase_create("channel_up");
	TCase *tr = tcase_create("reset");
	TCase *tv = tcase_create("routing");

	tcase_add_test(tc, test_sign_interval_follows_latency);
	suite_add_tcase(s, tc);
	tcase_add_loop_test(tt, test_unanswered_requests_time_out, 0, 2);
	tcase_set_timeout(tt, 30);
	suite_add_tcase(s, tt);
	tcase_add_loop_test(tu, test_request_sent_when_channel_comes_up, 0, 2);
	tcase_set_timeout(tu, 30);
	suite_add_tcase(s, tu);
	tcase_add_test(tr, test_survives_reset_while_writing);
	tcase_set_timeout(tr, 30);
	suite_add_tcase(s, tr);
	tcase_add_test(tv, test_view_needs_f_plus_1_replicas);
	tcase_add_test(tv, test_ignored_by_primary_then_sent_to_all);
	tcase_set_timeout(tv, 30);
	suite_add_tcase(s, tv);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(client_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
