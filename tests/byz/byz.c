/*
 * byz.c - a Byzantine peer for the bound tests of tests/byz/: it speaks the
 * real protocol (the channel handshake of common/chan.c, frames of
 * common/wire.c, request authenticators of common/reqauth.c) to real
 * replicas and does what a stranger, a replica with a valid key or a client
 * with a valid key could do to make them work for nothing:
 *
 *   stranger     connections that send a HELLO naming a replica and 64
 *                random bytes as its AUTH, as fast as the target takes them
 *   checkpoint   one signed CHECKPOINT for a future sequence number, sent
 *                again and again on an authenticated replica channel
 *   view-change  signed VIEW-CHANGEs for ever higher views
 *   fetch        FETCH_STATE and FETCH_BATCH for what the target holds,
 *                again and again, counting the bytes asked, the bytes
 *                answered and how often the same thing was answered
 *   serve        a lying state-transfer peer: it answers FETCH_STATE with
 *                a well-formed ledger head naming a long tail, then that
 *                tail of invented, well-formed entries
 *   flood        signed client requests as fast as the channel takes them,
 *                never waiting for a reply; --bad-sig: requests whose
 *                signature is wrong, then whether the replica hung up
 *
 * Each mode prints one JSON object of what it did and saw on stdout; the
 * scripts beside this file read the replicas' side (counters, CPU, memory)
 * and compare with their bounds. It does not judge, and it never waits
 * without a bound: every mode ends after --seconds or its count.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cfg.h"
#include "chan.h"
#include "reqauth.h"
#include "sig.h"
#include "wire.h"

#define CONNS_MAX 256
#define BATCHES_SEEN 256
#define RECORD_FRAMES_BYTES (256 * 1024)
#define ASKS_MAX 64
#define FETCH_QUIET_S 0.02
#define ENTRY_BYTES 65536 /* one invented ledger entry, header included */

struct opts {
	const char *config;
	const char *mode;
	const char *client;
	uint32_t as, target;
	uint32_t count;
	uint32_t conns;
	uint32_t rate; /* stranger: new attempts a second, 0 = no limit */
	uint32_t size;
	uint64_t seq;
	uint64_t view;
	double seconds;
	bool bad_sig;
	const char *what; /* fetch: "state", "batch" or NULL for both */
	uint64_t tail_mib; /* serve: the invented tail */
	uint32_t repeat; /* fetch: times each ask is sent per round */
};

/* An authenticated channel to one replica, driven by poll. */
struct sess {
	int fd;
	struct chan ch;
	struct wbuf in, out;
	size_t out_off;
	bool closed;
	uint64_t bytes_in, bytes_out, frames_in;
	uint64_t answer_bytes; /* STATE_CHUNK and BATCH frames received */
	double last_rx; /* when bytes last came */
	uint64_t replies;
	uint64_t ckpt_seq; /* newest checkpoint the target sent */
	uint32_t chunks; /* chunks of the target's state, once known */
	struct {
		uint64_t seq;
		uint8_t digest[PBFT_DIGEST_LEN];
	} seen[BATCHES_SEEN];
	uint32_t nseen;
	struct pbft_fetch_state asks[ASKS_MAX]; /* serve: not answered yet */
	uint32_t nasks;
};

static struct cluster_cfg *cfg;
static struct wbuf enc;
/* fetch: the distinct things answered (a chunk of a checkpoint, a batch) */
#define ITEMS_MAX 4096
static struct item {
	uint8_t type;
	uint64_t seq;
	uint32_t index;
} items[ITEMS_MAX];
static uint32_t nitems;
static uint64_t answers;
static volatile sig_atomic_t stopping; /* SIGTERM: report and end */

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
die(const char *what)
{
	fprintf(stderr, "byz: %s\n", what);
	exit(2);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
lookup(void *ctx, uint8_t role, uint32_t id, uint8_t pub[PBFT_PUBKEY_LEN])
{
	(void)ctx;
	if (role == PBFT_ROLE_REPLICA && id < cfg->n) {
		memcpy(pub, cfg->nodes[id].public_key, PBFT_PUBKEY_LEN);
		return 0;
	}
	if (role == PBFT_ROLE_CLIENT && id < cfg->nclients) {
		memcpy(pub, cfg->clients[id].public_key, PBFT_PUBKEY_LEN);
		return 0;
	}
	return -1;
}

/* A TCP connection to replica id (blocking connect, non-blocking after). */
static int
tcp_dial(uint32_t id, bool nonblock)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char port[8];
	int fd, one = 1;

	snprintf(port, sizeof(port), "%u", (unsigned)cfg->nodes[id].port);
	if (getaddrinfo(cfg->nodes[id].host, port, &hints, &ai) != 0)
		die("cannot resolve the target's address");
	fd = socket(ai->ai_family,
	    SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd == -1)
		die("socket");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* ---- a session: handshake, records, pumping --------------------------- */

static void
remember_batch(struct sess *s, uint64_t seq, const uint8_t *digest)
{
	static const uint8_t zero[PBFT_DIGEST_LEN];

	if (memcmp(digest, zero, PBFT_DIGEST_LEN) == 0)
		return;
	for (uint32_t i = 0; i < s->nseen && i < BATCHES_SEEN; i++)
		if (s->seen[i].seq == seq)
			return;
	s->seen[s->nseen % BATCHES_SEEN].seq = seq;
	memcpy(
	    s->seen[s->nseen % BATCHES_SEEN].digest, digest, PBFT_DIGEST_LEN);
	s->nseen++;
}

static void
count_item(uint8_t type, uint64_t seq, uint32_t index)
{
	for (uint32_t i = 0; i < nitems; i++)
		if (items[i].type == type && items[i].seq == seq &&
		    items[i].index == index)
			return;
	if (nitems < ITEMS_MAX)
		items[nitems++] = (struct item){type, seq, index};
}

/* What the target sends us: we learn from it what to ask for. */
static void
on_frame(void *arg, const uint8_t *frame, size_t len)
{
	static uint8_t arena_mem[64 * 1024];
	struct sess *s = arg;
	struct wire_arena a;
	struct pbft_msg m;
	uint8_t type = len > 5 ? frame[5] : 0;

	s->frames_in++;
	if (type == PBFT_MSG_STATE_CHUNK || type == PBFT_MSG_BATCH) {
		s->answer_bytes += len;
		answers++;
	}
	if (type == PBFT_MSG_REPLY)
		s->replies++;
	if (type == PBFT_MSG_REPLY || type == PBFT_MSG_NEW_VIEW ||
	    type == PBFT_MSG_VIEW_CHANGE)
		return;
	wire_arena_init(&a, arena_mem, sizeof(arena_mem));
	if (wire_decode(frame, len, &m, &a) != WIRE_OK)
		return;
	if (m.type == PBFT_MSG_CHECKPOINT && m.u.checkpoint.seq > s->ckpt_seq)
		s->ckpt_seq = m.u.checkpoint.seq;
	else if (m.type == PBFT_MSG_STATE_CHUNK) {
		s->chunks = m.u.state_chunk.count;
		count_item(m.type, m.u.state_chunk.seq, m.u.state_chunk.index);
	} else if (m.type == PBFT_MSG_BATCH)
		count_item(m.type, m.u.batch.seq, 0);
	else if (m.type == PBFT_MSG_PREPREPARE)
		remember_batch(s, m.u.preprepare.seq, m.u.preprepare.digest);
	else if (m.type == PBFT_MSG_PREPARE)
		remember_batch(s, m.u.prepare.seq, m.u.prepare.digest);
	else if (m.type == PBFT_MSG_FETCH_STATE && s->nasks < ASKS_MAX)
		s->asks[s->nasks++] = m.u.fetch_state;
}

/* Reads what is there (up to wait_ms for the first byte), writes what is
 * queued. Sets s->closed when the peer hung up or the channel failed. */
static void
sess_pump(struct sess *s, int wait_ms)
{
	struct pollfd p = {.fd = s->fd, .events = POLLIN};
	size_t used = 0;
	ssize_t r;

	if (s->closed)
		return;
	if (s->out_off < s->out.len)
		p.events |= POLLOUT;
	if (poll(&p, 1, wait_ms) <= 0)
		return;
	if (p.revents & POLLOUT) {
		r = send(s->fd, s->out.p + s->out_off, s->out.len - s->out_off,
		    MSG_NOSIGNAL);
		if (r > 0) {
			s->out_off += (size_t)r;
			s->bytes_out += (uint64_t)r;
		}
		if (s->out_off == s->out.len) {
			wbuf_reset(&s->out);
			s->out_off = 0;
		}
	}
	if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	if (wbuf_reserve(&s->in, 65536) == -1)
		die("read buffer");
	r = read(s->fd, s->in.p + s->in.len, 65536);
	if (r == 0 || (r == -1 && errno != EAGAIN && errno != EINTR)) {
		s->closed = true;
		return;
	}
	if (r < 0)
		return;
	s->in.len += (size_t)r;
	s->bytes_in += (uint64_t)r;
	s->last_rx = now_s();
	if (chan_input(&s->ch, s->in.p, s->in.len, &used, &s->out, on_frame,
	        s) == -1) {
		s->closed = true;
		return;
	}
	memmove(s->in.p, s->in.p + used, s->in.len - used);
	s->in.len -= used;
}

/* Dials replica target as (role, id) and completes the handshake. */
static int
sess_open(struct sess *s, uint8_t role, uint32_t id, void *key, uint32_t target)
{
	double until = now_s() + 5;

	memset(s, 0, sizeof(*s));
	wbuf_init_dynamic(&s->in, CHAN_RECORD_MAX + 65536);
	wbuf_init_dynamic(&s->out, (size_t)1 << 30);
	if ((s->fd = tcp_dial(target, false)) == -1)
		return -1;
	fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
	chan_init(&s->ch, role, id, key, lookup, NULL, cfg->name, true,
	    PBFT_ROLE_REPLICA, target);
	if (chan_start(&s->ch, &s->out) == -1)
		return -1;
	while (!chan_established(&s->ch) && !s->closed && now_s() < until)
		sess_pump(s, 50);
	/* our AUTH may still be queued */
	while (s->out_off < s->out.len && !s->closed && now_s() < until)
		sess_pump(s, 50);
	return chan_established(&s->ch) ? 0 : -1;
}

static void
sess_close(struct sess *s)
{
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
	chan_clear(&s->ch);
	wbuf_clear(&s->in);
	wbuf_clear(&s->out);
}

/* Seals the frames in buf as one record onto s's output. */
static void
sess_seal(struct sess *s, struct wbuf *frames)
{
	if (frames->len == 0)
		return;
	if (chan_seal(&s->ch, frames->p, frames->len, &s->out) == -1)
		die("cannot seal a record");
	wbuf_reset(frames);
}

/* Pumps until everything queued is written (or seconds pass). */
static void
sess_drain(struct sess *s, double seconds)
{
	double until = now_s() + seconds;

	while (s->out_off < s->out.len && !s->closed && now_s() < until)
		sess_pump(s, 20);
}

static void
encode(const struct pbft_msg *m)
{
	wbuf_reset(&enc);
	if (wire_encode(&enc, m) == -1)
		die("cannot encode");
}

/* ---- stranger ----------------------------------------------------------- */

/*
 * One connection attempt: HELLO on connect; AUTH (64 random bytes) once the
 * replica answered with its own AUTH, a signature it made for us, or after
 * AUTH_WAIT_S without one; then wait for the replica to hang up.
 */
#define AUTH_WAIT_S 0.1
struct attempt {
	int fd;
	int state; /* 0 connecting, 1 HELLO sent, 2 AUTH sent */
	double started, hello_at;
	size_t got;
};

struct stranger_stats {
	uint64_t attempts, completed, signed_back, timeouts, refused;
};

struct stranger {
	uint8_t hello[256], auth[256];
	size_t hello_len, auth_len;
	struct stranger_stats st;
};

static void
attempt_end(struct attempt *a)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(a->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(a->fd);
	a->fd = -1;
}

static void
attempt_send(
    struct attempt *a, struct stranger *x, const uint8_t *buf, size_t len)
{
	if (send(a->fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		x->st.refused++;
		attempt_end(a);
		return;
	}
	a->state++;
	a->hello_at = now_s();
	if (a->state == 1)
		x->st.attempts++;
}

static void
attempt_step(struct attempt *a, const struct pollfd *p, struct stranger *x)
{
	uint8_t buf[4096];
	ssize_t r;
	bool had_auth = a->got >= x->hello_len + x->auth_len;

	if (a->state == 0) {
		if (p->revents & (POLLOUT | POLLERR | POLLHUP))
			attempt_send(a, x, x->hello, x->hello_len);
		return;
	}
	if (p->revents & (POLLIN | POLLERR | POLLHUP)) {
		while ((r = read(a->fd, buf, sizeof(buf))) > 0)
			a->got += (size_t)r;
		if (!had_auth && a->got >= x->hello_len + x->auth_len)
			x->st.signed_back++;
		if (r == 0 || (r == -1 && errno != EAGAIN)) {
			x->st.completed++;
			attempt_end(a);
			return;
		}
	}
	if (a->state == 1 &&
	    (a->got >= x->hello_len + x->auth_len ||
	        now_s() - a->hello_at > AUTH_WAIT_S))
		attempt_send(a, x, x->auth, x->auth_len);
}

/* The frames a stranger sends: HELLO naming a replica, then a false AUTH.
 * The replica's HELLO and AUTH have the same lengths. */
static void
stranger_frames(const struct opts *o, struct stranger *x)
{
	struct pbft_msg m = {.type = PBFT_MSG_HELLO};
	struct wbuf wb;

	m.u.hello.role = PBFT_ROLE_REPLICA;
	m.u.hello.id = (o->target + 1) % cfg->n;
	RAND_bytes(m.u.hello.eph_pub, 32);
	RAND_bytes(m.u.hello.nonce, 32);
	wbuf_init_fixed(&wb, x->hello, sizeof(x->hello));
	wire_encode(&wb, &m);
	x->hello_len = wb.len;
	m = (struct pbft_msg){.type = PBFT_MSG_AUTH};
	RAND_bytes(m.u.auth.sig, PBFT_SIG_LEN);
	wbuf_init_fixed(&wb, x->auth, sizeof(x->auth));
	wire_encode(&wb, &m);
	x->auth_len = wb.len;
	if (wbuf_failed(&wb))
		die("cannot encode the handshake");
}

static void
stranger_report(const struct stranger_stats *st, double seconds)
{
	printf("{\"mode\":\"stranger\",\"seconds\":%.3f,\"attempts\":%llu,"
	       "\"completed\":%llu,\"signed\":%llu,\"timeouts\":%llu,"
	       "\"refused\":%llu}\n",
	    seconds, (unsigned long long)st->attempts,
	    (unsigned long long)st->completed,
	    (unsigned long long)st->signed_back,
	    (unsigned long long)st->timeouts, (unsigned long long)st->refused);
}

static int
run_stranger(const struct opts *o)
{
	struct attempt a[CONNS_MAX];
	struct pollfd p[CONNS_MAX];
	struct stranger x = {0};
	uint32_t k = o->conns < CONNS_MAX ? o->conns : CONNS_MAX;
	double t0 = now_s(), t;

	stranger_frames(o, &x);
	for (uint32_t i = 0; i < k; i++)
		a[i].fd = -1;
	while ((t = now_s()) < t0 + o->seconds) {
		for (uint32_t i = 0; i < k; i++) {
			if (a[i].fd != -1 && t - a[i].started > 2) {
				x.st.timeouts++;
				attempt_end(&a[i]);
			}
			if (a[i].fd == -1 && o->rate != 0 &&
			    (double)x.st.attempts >= (t - t0) * o->rate)
				continue; /* ahead of --rate */
			if (a[i].fd == -1) {
				a[i] = (struct attempt){
				    .fd = tcp_dial(o->target, true),
				    .started = t};
				if (a[i].fd == -1)
					x.st.refused++;
			}
			p[i] = (struct pollfd){.fd = a[i].fd,
			    .events = a[i].state == 0 ? POLLOUT : POLLIN};
		}
		poll(p, k, 10);
		for (uint32_t i = 0; i < k; i++)
			if (a[i].fd != -1)
				attempt_step(&a[i], &p[i], &x);
	}
	for (uint32_t i = 0; i < k; i++)
		if (a[i].fd != -1)
			close(a[i].fd);
	stranger_report(&x.st, now_s() - t0);
	return 0;
}

/* ---- a replica with a valid key ----------------------------------------- */

static void *
node_key(uint32_t id)
{
	char err[CFG_ERR_LEN];
	void *key = NULL;

	if (cfg_load_node_key(cfg, id, &key, err, sizeof(err)) == -1)
		die(err);
	return key;
}

static void
sess_report(
    const char *mode, const struct sess *s, uint64_t sent, double seconds)
{
	printf("{\"mode\":\"%s\",\"sent\":%llu,\"seconds\":%.3f,"
	       "\"bytes_out\":%llu,\"bytes_in\":%llu,\"frames_in\":%llu,"
	       "\"closed\":%s}\n",
	    mode, (unsigned long long)sent, seconds,
	    (unsigned long long)s->bytes_out, (unsigned long long)s->bytes_in,
	    (unsigned long long)s->frames_in, s->closed ? "true" : "false");
}

/* Queues count copies of the frame in enc, as records of many frames. */
static void
send_copies(struct sess *s, uint32_t count)
{
	struct wbuf frames;

	wbuf_init_dynamic(&frames, PBFT_FRAME_BYTES_MAX);
	for (uint32_t i = 0; i < count && !s->closed; i++) {
		if (frames.len + enc.len > RECORD_FRAMES_BYTES) {
			sess_seal(s, &frames);
			sess_drain(s, 5);
		}
		wbuf_put_bytes(&frames, enc.p, enc.len);
	}
	sess_seal(s, &frames);
	sess_drain(s, 10);
	wbuf_clear(&frames);
}

static int
run_checkpoint(const struct opts *o)
{
	void *key = node_key(o->as);
	struct pbft_msg m = {.type = PBFT_MSG_CHECKPOINT};
	struct sess s;
	double t0;

	if (sess_open(&s, PBFT_ROLE_REPLICA, o->as, key, o->target) == -1)
		die("cannot open a channel to the target");
	m.u.checkpoint.seq = o->seq;
	RAND_bytes(m.u.checkpoint.digest, PBFT_DIGEST_LEN);
	m.u.checkpoint.replica = o->as;
	wbuf_reset(&enc);
	wire_signed_checkpoint(&enc, o->seq, m.u.checkpoint.digest, o->as);
	if (sig_sign(key, enc.p, enc.len, m.u.checkpoint.sig) == -1)
		die("cannot sign");
	encode(&m);
	t0 = now_s();
	send_copies(&s, o->count);
	sess_report("checkpoint", &s, o->count, now_s() - t0);
	sess_close(&s);
	sig_key_free(key);
	return 0;
}

/* One VIEW-CHANGE to view v: no checkpoint (seq 0), no claims; signed. */
static void
encode_view_change(void *key, uint32_t as, uint64_t v)
{
	struct pbft_msg m = {.type = PBFT_MSG_VIEW_CHANGE};

	m.u.view_change.view = v;
	m.u.view_change.replica = as;
	wbuf_reset(&enc);
	if (wire_signed_bytes(&enc, &m) == -1 ||
	    sig_sign(key, enc.p, enc.len, m.u.view_change.sig) == -1)
		die("cannot sign a view change");
	encode(&m);
}

static int
run_view_change(const struct opts *o)
{
	void *key = node_key(o->as);
	struct wbuf frames;
	struct sess s;
	double t0;

	if (sess_open(&s, PBFT_ROLE_REPLICA, o->as, key, o->target) == -1)
		die("cannot open a channel to the target");
	wbuf_init_dynamic(&frames, PBFT_FRAME_BYTES_MAX);
	t0 = now_s();
	for (uint32_t i = 1; i <= o->count && !s.closed; i++) {
		encode_view_change(key, o->as, o->view + i);
		if (frames.len + enc.len > RECORD_FRAMES_BYTES) {
			sess_seal(&s, &frames);
			sess_drain(&s, 5);
		}
		wbuf_put_bytes(&frames, enc.p, enc.len);
	}
	sess_seal(&s, &frames);
	sess_drain(&s, 10);
	sess_report("view-change", &s, o->count, now_s() - t0);
	wbuf_clear(&frames);
	sess_close(&s);
	sig_key_free(key);
	return 0;
}

/* One round of asks: every chunk of the newest checkpoint the target has,
 * and every batch it told us of, each asked o->repeat times (an attacker
 * asks again for what it was given). */
static uint64_t
fetch_round(struct sess *s, const struct opts *o, struct wbuf *frames)
{
	uint32_t chunks = s->chunks ? s->chunks : 1, as = o->as;
	bool state = o->what == NULL || strcmp(o->what, "state") == 0;
	bool batch = o->what == NULL || strcmp(o->what, "batch") == 0;
	uint64_t asks = 0;

	for (uint32_t i = 0; state && i < chunks && i < 64 && s->ckpt_seq;
	     i++) {
		struct pbft_msg m = {.type = PBFT_MSG_FETCH_STATE};

		m.u.fetch_state.seq = s->ckpt_seq;
		m.u.fetch_state.index = i;
		m.u.fetch_state.replica = as;
		encode(&m);
		for (uint32_t k = 0; k < o->repeat; k++, asks++)
			wbuf_put_bytes(frames, enc.p, enc.len);
	}
	for (uint32_t i = 0; batch && i < s->nseen && i < BATCHES_SEEN; i++) {
		struct pbft_msg m = {.type = PBFT_MSG_FETCH_BATCH};

		m.u.fetch_batch.seq = s->seen[i].seq;
		memcpy(
		    m.u.fetch_batch.digest, s->seen[i].digest, PBFT_DIGEST_LEN);
		m.u.fetch_batch.replica = as;
		encode(&m);
		for (uint32_t k = 0; k < o->repeat; k++, asks++)
			wbuf_put_bytes(frames, enc.p, enc.len);
	}
	return asks;
}

static int
run_fetch(const struct opts *o)
{
	void *key = node_key(o->as);
	struct wbuf frames;
	struct sess s;
	uint64_t asks = 0, out = 0, in = 0, abytes = 0, drops = 0;
	double t0 = now_s(), next = 0, t;

	wbuf_init_dynamic(&frames, PBFT_FRAME_BYTES_MAX);
	if (sess_open(&s, PBFT_ROLE_REPLICA, o->as, key, o->target) == -1)
		die("cannot open a channel to the target");
	s.ckpt_seq = o->seq;
	while ((t = now_s()) < t0 + o->seconds) {
		if (s.closed) { /* dropped: come back, as an attacker would */
			uint64_t ck = s.ckpt_seq;

			drops++;
			out += s.bytes_out, in += s.bytes_in;
			abytes += s.answer_bytes;
			sess_close(&s);
			if (sess_open(&s, PBFT_ROLE_REPLICA, o->as, key,
			        o->target) == -1)
				break;
			s.ckpt_seq = ck;
		}
		/* The next round once the answers to the last one stopped
		 * coming: as fast as the target answers, no faster. */
		if (t >= next && t - s.last_rx > FETCH_QUIET_S &&
		    s.out_off == s.out.len) {
			asks += fetch_round(&s, o, &frames);
			sess_seal(&s, &frames);
			next = t + FETCH_QUIET_S;
		}
		sess_pump(&s, 10);
	}
	out += s.bytes_out, in += s.bytes_in, abytes += s.answer_bytes;
	printf("{\"mode\":\"fetch\",\"seconds\":%.3f,\"asks\":%llu,"
	       "\"bytes_out\":%llu,\"bytes_in\":%llu,\"answer_bytes\":%llu,"
	       "\"answers\":%llu,\"distinct_answers\":%u,"
	       "\"drops\":%llu,\"batches_seen\":%u,\"checkpoint\":%llu}\n",
	    now_s() - t0, (unsigned long long)asks, (unsigned long long)out,
	    (unsigned long long)in, (unsigned long long)abytes,
	    (unsigned long long)answers, nitems, (unsigned long long)drops,
	    s.nseen, (unsigned long long)s.ckpt_seq);
	wbuf_clear(&frames);
	sess_close(&s);
	sig_key_free(key);
	return 0;
}

/* ---- a client with a valid key ------------------------------------------ */

/* A lone request (a group of one) with its own signature, no MACs. */
static void
encode_request(void *key, uint32_t client, uint64_t ts, const uint8_t *op,
    uint32_t op_len, bool bad_sig)
{
	struct pbft_msg m = {.type = PBFT_MSG_REQUEST};
	struct pbft_request *r = &m.u.request;
	uint8_t auth[REQAUTH_HEAD_LEN], leaf[32], msg[REQAUTH_ROOT_MSG_LEN];

	*r = (struct pbft_request){
	    .client = client, .timestamp = ts, .op_len = op_len, .op = op};
	wbuf_reset(&enc);
	if (wire_signed_request(&enc, r) == -1)
		die("cannot encode a request");
	reqauth_leaf(enc.p, enc.len, leaf);
	reqauth_root_msg(leaf, msg);
	if (sig_sign(key, msg, sizeof(msg), auth) == -1)
		die("cannot sign a request");
	if (bad_sig)
		auth[0] ^= 1;
	memset(auth + PBFT_SIG_LEN, 0, 3); /* depth 0, index 0 */
	r->auth = auth;
	r->auth_len = sizeof(auth);
	encode(&m);
}

static int
run_flood(const struct opts *o)
{
	const struct cfg_client *c = cfg_client_by_name(cfg, o->client);
	char err[CFG_ERR_LEN];
	void *key = NULL;
	uint8_t *op = malloc(o->size ? o->size : 1);
	struct wbuf frames;
	struct sess s;
	struct timespec ts;
	uint64_t sent = 0, t_ns;
	double t0;

	if (c == NULL || op == NULL ||
	    cfg_load_client_key(cfg, c->id, &key, err, sizeof(err)) == -1)
		die("no such client, or its key cannot be read");
	if (sess_open(&s, PBFT_ROLE_CLIENT, c->id, key, o->target) == -1)
		die("cannot open a channel to the target");
	wbuf_init_dynamic(&frames, PBFT_FRAME_BYTES_MAX);
	clock_gettime(CLOCK_REALTIME, &ts);
	t_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	t0 = now_s();
	while (now_s() < t0 + o->seconds && !s.closed &&
	    (o->count == 0 || sent < o->count)) {
		RAND_bytes(op, (int)o->size);
		encode_request(
		    key, c->id, t_ns + sent, op, o->size, o->bad_sig);
		wbuf_put_bytes(&frames, enc.p, enc.len);
		sent++;
		if (frames.len + enc.len > RECORD_FRAMES_BYTES) {
			sess_seal(&s, &frames);
			/* as fast as the channel takes it, no faster */
			while (s.out_off < s.out.len && !s.closed &&
			    now_s() < t0 + o->seconds)
				sess_pump(&s, 10);
		}
		sess_pump(&s, 0);
	}
	sess_seal(&s, &frames);
	sess_drain(&s, 2);
	/* Then listen: does the replica hang up on us? */
	for (double until = now_s() + (o->bad_sig ? 3 : 0.5);
	     !s.closed && now_s() < until;)
		sess_pump(&s, 50);
	printf("{\"mode\":\"flood\",\"sent\":%llu,\"seconds\":%.3f,"
	       "\"bytes_out\":%llu,\"replies\":%llu,\"closed\":%s}\n",
	    (unsigned long long)sent, now_s() - t0,
	    (unsigned long long)s.bytes_out, (unsigned long long)s.replies,
	    s.closed ? "true" : "false");
	wbuf_clear(&frames);
	sess_close(&s);
	sig_key_free(key);
	free(op);
	return 0;
}

/* ---- a lying state-transfer peer ----------------------------------------- */

/*
 * The image served: u32 0 (no client table) | the ledger's head
 * ("PBFTSVC2" | u64 count | chain | u64 jlen | u64 nkeys = 0) | count
 * entries of ENTRY_BYTES each (u64 index | u32 len | zeros). Every entry is
 * well formed and in order; only the chain, compared at the end, is wrong.
 */
#define LIE_HEAD_BYTES (4 + 8 + 8 + 32 + 8 + 8)

static uint8_t
lie_byte(uint64_t off, uint64_t entries)
{
	uint8_t head[LIE_HEAD_BYTES] = {0};
	uint64_t t, k, pos, jlen = entries * ENTRY_BYTES;

	if (off < LIE_HEAD_BYTES) {
		memcpy(head + 4, "PBFTSVC2", 8);
		for (int i = 0; i < 8; i++) {
			head[12 + i] = (uint8_t)(entries >> (8 * i));
			head[52 + i] = (uint8_t)(jlen >> (8 * i));
		}
		memset(head + 20, 0x5a, 32); /* a chain nobody made */
		return head[off];
	}
	t = off - LIE_HEAD_BYTES;
	k = t / ENTRY_BYTES;
	pos = t % ENTRY_BYTES;
	if (pos < 8)
		return (uint8_t)(k >> (8 * pos));
	if (pos < 12)
		return (
		    uint8_t)((uint64_t)(ENTRY_BYTES - 12) >> (8 * (pos - 8)));
	return 0;
}

/* Answers one FETCH_STATE with the chunk of the invented image. */
static uint64_t
lie_answer(struct sess *s, uint32_t as, const struct pbft_fetch_state *f,
    uint64_t entries, uint8_t *chunk)
{
	struct pbft_msg m = {.type = PBFT_MSG_STATE_CHUNK};
	struct pbft_state_chunk *c = &m.u.state_chunk;
	uint64_t total = LIE_HEAD_BYTES + entries * ENTRY_BYTES;
	uint64_t off = (uint64_t)f->index * PBFT_CHUNK_BYTES_MAX;

	c->seq = f->seq;
	memcpy(c->digest, f->digest, PBFT_DIGEST_LEN);
	c->index = f->index;
	c->count = (uint32_t)((total + PBFT_CHUNK_BYTES_MAX - 1) /
	    PBFT_CHUNK_BYTES_MAX);
	c->total_len = total;
	c->replica = as;
	if (f->index >= c->count)
		return 0;
	c->data_len = (uint32_t)(total - off < PBFT_CHUNK_BYTES_MAX
	        ? total - off
	        : PBFT_CHUNK_BYTES_MAX);
	for (uint32_t i = 0; i < c->data_len; i++)
		chunk[i] = lie_byte(off + i, entries);
	c->data = chunk;
	encode(&m);
	if (chan_seal(&s->ch, enc.p, enc.len, &s->out) == -1)
		die("cannot seal a record");
	return c->data_len;
}

static int
run_serve(const struct opts *o)
{
	void *key = node_key(o->as);
	uint8_t *chunk = malloc(PBFT_CHUNK_BYTES_MAX);
	uint64_t entries = o->tail_mib * (1024 * 1024 / ENTRY_BYTES);
	uint64_t asks = 0, served = 0, conns = 0;
	double t0 = now_s();
	struct sess s = {.fd = -1, .closed = true};

	if (chunk == NULL)
		die("out of memory");
	while (now_s() < t0 + o->seconds && !stopping) {
		if (s.closed) { /* (re)connect: the target restarts */
			sess_close(&s);
			if (sess_open(&s, PBFT_ROLE_REPLICA, o->as, key,
			        o->target) == -1) {
				s.closed = true;
				usleep(100 * 1000);
				continue;
			}
			conns++;
		}
		sess_pump(&s, 10);
		/* the oldest ask first, while the output has room */
		while (s.nasks > 0 &&
		    s.out.len - s.out_off < 8 * PBFT_CHUNK_BYTES_MAX) {
			served +=
			    lie_answer(&s, o->as, &s.asks[0], entries, chunk);
			asks++;
			s.nasks--;
			memmove(&s.asks[0], &s.asks[1],
			    s.nasks * sizeof(s.asks[0]));
		}
	}
	printf("{\"mode\":\"serve\",\"seconds\":%.3f,\"connections\":%llu,"
	       "\"asks\":%llu,\"served\":%llu,\"bytes_out\":%llu}\n",
	    now_s() - t0, (unsigned long long)conns, (unsigned long long)asks,
	    (unsigned long long)served, (unsigned long long)s.bytes_out);
	sess_close(&s);
	sig_key_free(key);
	free(chunk);
	return 0;
}

/* ---- main -----------------------------------------------------------------
 */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: byz -c CLUSTER.INI MODE --target ID [options]\n"
	    "  stranger     [--seconds S] [--conns K] [--rate R]\n"
	    "  checkpoint   --as ID --seq N [--count C]\n"
	    "  view-change  --as ID [--view V] [--count C]\n"
	    "  fetch        --as ID [--seq N] [--seconds S] "
	    "[--what state|batch] [--repeat R]\n"
	    "  serve        --as ID [--tail-mib M] [--seconds S]\n"
	    "  flood        --client NAME [--size B] [--seconds S] "
	    "[--count C] [--bad-sig]\n");
	exit(2);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {{"as", 1, NULL, 'a'},
	    {"target", 1, NULL, 't'}, {"count", 1, NULL, 'n'},
	    {"conns", 1, NULL, 'k'}, {"size", 1, NULL, 'b'},
	    {"seq", 1, NULL, 'q'}, {"view", 1, NULL, 'v'},
	    {"seconds", 1, NULL, 's'}, {"client", 1, NULL, 'C'},
	    {"bad-sig", 0, NULL, 'B'}, {"what", 1, NULL, 'w'},
	    {"tail-mib", 1, NULL, 'T'}, {"repeat", 1, NULL, 'R'},
	    {"rate", 1, NULL, 'r'}, {NULL, 0, NULL, 0}};
	int ch;

	*o = (struct opts){.count = 20000,
	    .conns = 32,
	    .seconds = 5,
	    .tail_mib = 64,
	    .repeat = 1};
	while ((ch = getopt_long(argc, argv, "c:", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'a':
			o->as = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o->target = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o->count = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			o->conns = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o->rate = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o->size = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'q':
			o->seq = strtoull(optarg, NULL, 10);
			break;
		case 'v':
			o->view = strtoull(optarg, NULL, 10);
			break;
		case 's':
			o->seconds = strtod(optarg, NULL);
			break;
		case 'C':
			o->client = optarg;
			break;
		case 'B':
			o->bad_sig = true;
			break;
		case 'w':
			o->what = optarg;
			break;
		case 'T':
			o->tail_mib = strtoull(optarg, NULL, 10);
			break;
		case 'R':
			o->repeat = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (o->config == NULL || optind + 1 != argc)
		usage();
	o->mode = argv[optind];
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(const struct opts *);
	} modes[] = {{"stranger", run_stranger}, {"checkpoint", run_checkpoint},
	    {"view-change", run_view_change}, {"fetch", run_fetch},
	    {"flood", run_flood}, {"serve", run_serve}};
	char err[CFG_ERR_LEN];
	struct opts o;

	parse(argc, argv, &o);
	if ((cfg = cfg_load(o.config, err, sizeof(err))) == NULL)
		die(err);
	if (o.target >= cfg->n || o.as >= cfg->n || o.size > PBFT_OP_BYTES_MAX)
		usage();
	if (strcmp(o.mode, "flood") == 0 && o.client == NULL)
		usage();
	wbuf_init_dynamic(&enc, PBFT_FRAME_BYTES_MAX);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_term);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(o.mode, modes[i].name) == 0)
			return modes[i].run(&o);
	usage();
	return 2;
}
