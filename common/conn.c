/*
 * conn.c - a TCP connection carrying a channel, on libev; see conn.h.
 */
#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rbuf.h"

#define READ_CHUNK 65536
#define RECORD_COALESCE (256 * 1024) /* frames per sealed record */
#define SEAL_SLACK 64 /* a record's length and tag, and some */

/* ---- the group: one flush before the loop waits, left-over input ------- */

/*
 * Runs after every other watcher of the iteration, just before the loop
 * waits: each connection with frames queued gets one record sealed and one
 * send(2) now. Only a socket that cannot take it all is left to its write
 * watcher, so the common case costs no epoll_ctl(2) and no extra wakeup.
 */
static void
flusher_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct conn_group *g = w->data;
	struct conn *next;

	(void)loop;
	(void)revents;
	if (!g->dirty)
		return;
	g->dirty = false;
	for (struct conn *c = g->all; c != NULL; c = next) {
		next = c->next; /* a flush may close c, never another */
		if (!ev_is_active(&c->wr) &&
		    (c->pt.len > 0 || c->out_off < c->out.len))
			conn_flush(c);
	}
}

static void conn_input(struct conn *c);

/* Once per loop iteration while some connection has input left: each
 * gets one more budget's worth, in turn with every other watcher. */
static void
work_check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
	struct conn_group *g = w->data;
	struct conn *c, *list = g->work;

	(void)revents;
	g->work = NULL;
	while (list != NULL) {
		c = list;
		list = c->next_work;
		if (c->fd == -1 || !c->in_work)
			continue; /* closed since */
		c->in_work = false;
		conn_input(c);
		if (c->fd != -1 && !c->in_work)
			ev_io_start(loop, &c->rd);
	}
	if (g->work == NULL) {
		ev_idle_stop(loop, &g->work_idle);
		ev_check_stop(loop, &g->work_check);
	}
}

static void
work_idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Leaves c's input for the next loop iteration (work_check_cb), and stops
 * reading it meanwhile. */
static void
work_add(struct conn *c)
{
	struct conn_group *g = c->g;

	if (c->in_work)
		return;
	c->in_work = true;
	c->next_work = g->work;
	g->work = c;
	g->budget_deferrals++;
	ev_io_stop(g->loop, &c->rd);
	ev_check_start(g->loop, &g->work_check);
	ev_idle_start(g->loop, &g->work_idle);
}

static void
work_remove(struct conn *c)
{
	if (!c->in_work)
		return;
	/* Not found: c is on the list work_check_cb is going through,
	 * which skips it. */
	for (struct conn **p = &c->g->work; *p != NULL; p = &(*p)->next_work)
		if (*p == c) {
			*p = c->next_work;
			break;
		}
	c->in_work = false;
}

void
conn_group_init(struct conn_group *g, struct ev_loop *loop)
{
	memset(g, 0, sizeof(*g));
	g->loop = loop;
	ev_prepare_init(&g->flusher, flusher_cb);
	g->flusher.data = g;
	ev_set_priority(&g->flusher, EV_MINPRI);
	ev_prepare_start(loop, &g->flusher);
	ev_check_init(&g->work_check, work_check_cb);
	g->work_check.data = g;
	ev_idle_init(&g->work_idle, work_idle_cb);
	g->work_idle.data = g;
}

void
conn_group_clear(struct conn_group *g)
{
	if (g->loop == NULL)
		return;
	ev_prepare_stop(g->loop, &g->flusher);
	ev_check_stop(g->loop, &g->work_check);
	ev_idle_stop(g->loop, &g->work_idle);
}

void
conn_group_mark(struct conn_group *g)
{
	for (struct conn *c = g->all; c != NULL; c = c->next)
		conn_mark(c);
}

void
conn_group_release(struct conn_group *g, bool all)
{
	struct conn *next;

	for (struct conn *c = g->all; c != NULL; c = next) {
		next = c->next; /* a release may close c, never another */
		conn_release(c, all);
	}
}

/* ---- lifetime ---------------------------------------------------------- */

static void read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void write_cb(struct ev_loop *loop, ev_io *w, int revents);

void
conn_init(
    struct conn *c, struct conn_group *g, const struct conn_ops *ops, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->g = g;
	c->ops = ops;
	c->arg = arg;
	c->fd = -1;
	wbuf_init_dynamic(&c->in, CHAN_RECORD_MAX + 4 + READ_CHUNK);
	wbuf_init_dynamic(&c->out, CONN_QUEUE_BYTES_MAX + PBFT_FRAME_BYTES_MAX);
	wbuf_init_dynamic(&c->pt, CONN_QUEUE_BYTES_MAX + PBFT_FRAME_BYTES_MAX);
	wbuf_init_dynamic(&c->hp, CONN_QUEUE_BYTES_MAX + PBFT_FRAME_BYTES_MAX);
	ev_io_init(&c->rd, read_cb, 0, EV_READ);
	ev_io_init(&c->wr, write_cb, 0, EV_WRITE);
	c->rd.data = c->wr.data = c;
}

void
conn_clear(struct conn *c)
{
	wbuf_clear(&c->in);
	wbuf_clear(&c->out);
	wbuf_clear(&c->pt);
	wbuf_clear(&c->hp);
}

void
conn_open(struct conn *c, int fd, bool connecting)
{
	struct conn_group *g = c->g;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->connecting = connecting;
	c->up = false;
	c->why = CONN_LOCAL;
	c->bytes_in = c->bytes_out = 0;
	c->last_rx = c->last_tx = ev_now(g->loop);
	ev_io_set(&c->rd, fd, EV_READ);
	ev_io_set(&c->wr, fd, EV_WRITE);
	c->next = g->all;
	c->prev = &g->all;
	if (g->all != NULL)
		g->all->prev = &c->next;
	g->all = c;
}

int
conn_start(struct conn *c)
{
	if (chan_start(&c->ch, &c->out) == -1) {
		conn_close(c, CONN_LOCAL, "handshake start failed");
		return -1;
	}
	if (c->connecting) {
		ev_io_start(c->g->loop, &c->wr); /* writable = connected */
		return 0;
	}
	ev_io_start(c->g->loop, &c->rd);
	if (c->out_off < c->out.len)
		conn_flush(c);
	return c->fd == -1 ? -1 : 0;
}

void
conn_close(struct conn *c, enum conn_why why, const char *detail)
{
	struct ev_loop *loop = c->g->loop;

	if (c->fd == -1)
		return;
	ev_io_stop(loop, &c->rd);
	ev_io_stop(loop, &c->wr);
	close(c->fd);
	c->fd = -1;
	c->why = why;
	work_remove(c);
	*c->prev = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = NULL;
	c->prev = NULL;
	if (c->ops->closed != NULL)
		c->ops->closed(c->arg, why, detail);
	chan_clear(&c->ch);
	wbuf_reset(&c->in);
	wbuf_reset(&c->out);
	wbuf_reset(&c->pt);
	wbuf_reset(&c->hp);
	c->out_off = c->hmark = 0;
	c->up = c->connecting = false;
}

bool
conn_is_open(const struct conn *c)
{
	return c->fd != -1;
}

/* ---- input ------------------------------------------------------------- */

/* Tells the owner once that the channel is established. */
static void
check_up(struct conn *c)
{
	if (c->up || !chan_established(&c->ch))
		return;
	c->up = true;
	if (c->ops->up != NULL)
		c->ops->up(c->arg);
}

static void
frame_cb(void *arg, const uint8_t *frame, size_t len)
{
	struct conn *c = arg;

	if (c->fd == -1)
		return; /* closed by an earlier frame's callback */
	/* Records may follow the peer's AUTH in the same read. */
	check_up(c);
	if (c->fd != -1)
		c->ops->frame(c->arg, frame, len);
}

/* Hands what c->in holds to the channel, at most one budget's worth. */
static void
conn_input(struct conn *c)
{
	size_t used = 0;

	if (chan_input(&c->ch, c->in.p, c->in.len, &used, &c->out, frame_cb,
	        c) == -1) {
		if (c->fd != -1) /* else a frame callback closed it */
			conn_close(c, CONN_CHAN, chan_error(&c->ch));
		return;
	}
	if (c->fd == -1)
		return;
	memmove(c->in.p, c->in.p + used, c->in.len - used);
	c->in.len -= used;
	check_up(c);
	if (c->fd != -1 && c->out.len > c->out_off)
		conn_flush(c);
	if (c->fd != -1 && chan_budget_spent(&c->ch))
		work_add(c);
}

static void
tally(uint64_t *const count[2], uint64_t *own, uint64_t n)
{
	*own += n;
	for (int i = 0; i < 2; i++)
		if (count[i] != NULL)
			*count[i] += n;
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t r;

	(void)revents;
	if (wbuf_reserve(&c->in, READ_CHUNK) == -1) {
		conn_close(c, CONN_NOMEM, "read buffer limit");
		return;
	}
	r = read(c->fd, c->in.p + c->in.len, READ_CHUNK);
	if (r == 0) {
		conn_close(c, CONN_EOF, "closed by peer");
		return;
	}
	if (r == -1) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c, CONN_IO, strerror(errno));
		return;
	}
	c->in.len += (size_t)r;
	c->last_rx = ev_now(loop);
	tally(c->count_in, &c->bytes_in, (uint64_t)r);
	conn_input(c);
}

/* ---- output ------------------------------------------------------------ */

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)revents;
	if (c->connecting) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			conn_close(c, CONN_IO, strerror(err ? err : errno));
			return;
		}
		c->connecting = false;
		ev_io_start(loop, &c->rd);
	}
	conn_flush(c);
}

/*
 * Seals the queued frames into one record (one AEAD operation for all the
 * frames of a loop iteration). 0, or -1 with the connection closed.
 */
static int
seal_pending(struct conn *c)
{
	if (c->pt.len == 0)
		return 0;
	if (c->out_off > 0 &&
	    c->out.len + c->pt.len + SEAL_SLACK > CONN_QUEUE_BYTES_MAX) {
		/* Reclaim what the socket already took. */
		memmove(
		    c->out.p, c->out.p + c->out_off, c->out.len - c->out_off);
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
	if (chan_seal(&c->ch, c->pt.p, c->pt.len, &c->out) == -1) {
		conn_close(c, CONN_LOCAL, "cannot seal");
		return -1;
	}
	wbuf_reset(&c->pt);
	return 0;
}

/*
 * Sends with MSG_NOSIGNAL: a peer that reset the connection makes send(2)
 * fail with EPIPE, and the connection closes; write(2) would raise SIGPIPE
 * and kill a process that did not ignore it.
 */
void
conn_flush(struct conn *c)
{
	if (c->fd == -1 || (c->pt.len > 0 && seal_pending(c) == -1))
		return;
	while (c->out_off < c->out.len) {
		ssize_t w = send(c->fd, c->out.p + c->out_off,
		    c->out.len - c->out_off, MSG_NOSIGNAL);

		if (w == -1) {
			if (errno == EAGAIN || errno == EINTR) {
				ev_io_start(c->g->loop, &c->wr);
				return;
			}
			conn_close(c, CONN_IO, strerror(errno));
			return;
		}
		c->out_off += (size_t)w;
		c->last_tx = ev_now(c->g->loop);
		tally(c->count_out, &c->bytes_out, (uint64_t)w);
	}
	wbuf_reset(&c->out);
	c->out_off = 0;
	if (!c->connecting)
		ev_io_stop(c->g->loop, &c->wr);
}

/* Appends a frame to what the next write seals; -1 with c closed. */
static int
put_plain(struct conn *c, const uint8_t *frame, size_t len)
{
	if (c->pt.len > 0 && c->pt.len + len > RECORD_COALESCE &&
	    seal_pending(c) == -1)
		return -1;
	wbuf_put_bytes(&c->pt, frame, len);
	if (wbuf_failed(&c->pt)) {
		conn_close(c, CONN_NOMEM, "out of memory");
		return -1;
	}
	return 0;
}

size_t
conn_queued(const struct conn *c)
{
	return c->out.len - c->out_off + c->pt.len + c->hp.len;
}

int
conn_queue(struct conn *c, const uint8_t *frame, size_t len, bool hold)
{
	if (c->fd == -1 || !c->up)
		return -1;
	if (conn_queued(c) + len + SEAL_SLACK > CONN_QUEUE_BYTES_MAX) {
		conn_close(c, CONN_QUEUE_FULL, "write queue full");
		return -1;
	}
	if (hold) {
		wbuf_put_u32(&c->hp, (uint32_t)len);
		wbuf_put_bytes(&c->hp, frame, len);
		if (wbuf_failed(&c->hp)) {
			conn_close(c, CONN_NOMEM, "out of memory");
			return -1;
		}
	} else if (put_plain(c, frame, len) == -1) {
		return -1;
	}
	/* Coalesce: one record and one send per loop iteration. */
	if (c->pt.len > 0)
		c->g->dirty = true;
	return 0;
}

void
conn_mark(struct conn *c)
{
	c->hmark = c->hp.len;
}

void
conn_release(struct conn *c, bool all)
{
	size_t to = all ? c->hp.len : c->hmark;
	struct rbuf rb;
	const uint8_t *frame;
	uint32_t len;

	if (c->fd == -1 || to == 0)
		return;
	rbuf_init(&rb, c->hp.p, to);
	while (
	    rbuf_get_u32(&rb, &len) == 0 && rbuf_get_ref(&rb, &frame, len) == 0)
		if (put_plain(c, frame, len) == -1)
			return;
	memmove(c->hp.p, c->hp.p + to, c->hp.len - to);
	c->hp.len -= to;
	c->hmark = 0;
	c->g->dirty = true;
}

void
conn_heartbeat(struct conn *c)
{
	if (chan_seal(&c->ch, (const uint8_t *)"", 0, &c->out) == -1) {
		conn_close(c, CONN_LOCAL, "cannot seal");
		return;
	}
	conn_flush(c);
}

/* ---- dialling ---------------------------------------------------------- */

int
conn_connect(const char *host, uint16_t port, bool numeric)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char service[8];
	int fd;

	if (numeric)
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (getaddrinfo(host, service, &hints, &ai) != 0 || ai == NULL)
		return -1;
	fd = socket(
	    ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd != -1 && connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

double
conn_backoff(uint32_t *backoff_ms)
{
	uint32_t b = *backoff_ms ? *backoff_ms : CONN_BACKOFF_MIN_MS;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	*backoff_ms = b * 2 > CONN_BACKOFF_MAX_MS ? CONN_BACKOFF_MAX_MS : b * 2;
	return b * (0.5 + (double)(ts.tv_nsec % 1000) / 1000.0) / 1000.0;
}
