/*
 * metrics.c - Prometheus text exposition of the local replicas' counters,
 * served over HTTP on metrics_listen (GET /metrics).
 *
 * The numbers are the replicas' latest answers on the supervisor link,
 * which pbftd asks for every second, so a scrape never waits on a replica.
 * With libmicrohttpd (PBFT_HAVE_MHD) http.c serves the text; without it a
 * deliberately small server here does: one request per connection, the
 * request head bounded to 8 KiB and 5 seconds, at most 16 connections at
 * once, anything but GET /metrics answered 404 or 400.
 */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "pbft_build.h"
#include "pbftd.h"
#include "wbuf.h"

#define M_CONNS_MAX 16
#define M_HEAD_MAX 8192
#define M_TIMEOUT_S 5.0
#define M_STALE_S 3.0 /* a status older than this: replica not up */

PBFT_PRINTF(2, 3)
static void
put(struct wbuf *w, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		wbuf_put_bytes(w, line,
		    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static json_int_t
num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* One gauge or counter from a status field, for every replica with one. */
static void
family(struct pbftd *d, struct wbuf *w, const char *name, const char *type,
    const char *help, const char *key)
{
	put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		const json_t *st = d->children[i].status;

		if (st != NULL && json_object_get(st, key) != NULL)
			put(w, "%s{node=\"%u\"} %lld\n", name, i,
			    (long long)num(st, key));
	}
}

/* Families with one value per local replica, from its status field. */
static const struct {
	const char *name, *type, *help, *field;
} families[] = {
    {"pbft_last_executed", "gauge",
        "Sequence number of the last executed batch.", "last_executed"},
    {"pbft_stable_checkpoint", "gauge",
        "Sequence number of the last stable checkpoint.", "stable_checkpoint"},
    {"pbft_requests_executed_total", "counter", "Client requests executed.",
        "executed_requests"},
    {"pbft_batches_executed_total", "counter", "Batches executed.",
        "executed_batches"},
    {"pbft_view_changes_total", "counter", "View changes completed.",
        "view_changes"},
    {"pbft_view_changes_deferred_total", "counter",
        "View timer expiries that waited to hear a quorum (cut off).",
        "view_changes_deferred"},
    {"pbft_peers_connected", "gauge", "Replicas whose link is up.",
        "peers_connected"},
    {"pbft_clients_connected", "gauge",
        "Clients with an authenticated channel.", "clients_connected"},
    {"pbft_queued_requests", "gauge", "Requests waiting to be ordered.",
        "queued"},
    {"pbft_state_transfers_total", "counter", "State transfers completed.",
        "state_transfers"},
    {"pbft_state_transfer_bytes_total", "counter",
        "Ledger bytes fetched by state transfers.", "state_transfer_bytes"},
    {"pbft_write_queue_drops_total", "counter",
        "Connections dropped for a full write queue.", "queue_drops"},
    {"pbft_wal_bytes_total", "counter",
        "Bytes appended to the write-ahead log.", "wal_bytes"},
    {"pbft_wal_compactions_total", "counter",
        "Write-ahead log rewrites at stable checkpoints.", "wal_compactions"},
    {"pbft_wal_compactions_abandoned_total", "counter",
        "Compactions that failed (the old log was kept).",
        "wal_compactions_abandoned"},
    {"pbft_snapshots_total", "counter", "Checkpoint snapshots written.",
        "snapshots"},
    {"pbft_data_free_bytes", "gauge",
        "Free space of the data directory; below min_free the replica "
        "takes no new client requests.",
        "data_free_bytes"},
    {"pbft_replica_signature_checks_total", "counter",
        "Replica signatures verified (pre-prepares, prepares, "
        "checkpoints, view changes).",
        "replica_sig_checks"},
    {"pbft_request_signature_checks_total", "counter",
        "Client group signatures verified (not found in the cache).",
        "request_sig_checks"},
};

/* One gauge or counter per replica link, from the status "peers" array;
 * key "up" is a boolean. */
static void
peer_family(struct pbftd *d, struct wbuf *w, const char *name, const char *type,
    const char *help, const char *key)
{
	put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		json_t *peers = json_object_get(d->children[i].status, "peers");
		json_t *p, *v;
		size_t k;

		json_array_foreach(peers, k, p)
		{
			if ((v = json_object_get(p, key)) == NULL)
				continue;
			put(w, "%s{node=\"%u\",peer=\"%lld\"} %lld\n", name, i,
			    (long long)num(p, "id"),
			    json_is_boolean(v)
			        ? (long long)json_is_true(v)
			        : (long long)json_integer_value(v));
		}
	}
}

/* The links of each local replica to the others. */
static void
render_peers(struct pbftd *d, struct wbuf *w)
{
	peer_family(d, w, "pbft_peer_up", "gauge",
	    "1 if the link to the peer is up (heard from within dead_after, if "
	    "it takes heartbeats).",
	    "up");
	peer_family(d, w, "pbft_peer_heard_ms", "gauge",
	    "Milliseconds since anything was read on the link (-1: none).",
	    "heard_ms");
	peer_family(d, w, "pbft_peer_queued_bytes", "gauge",
	    "Bytes queued to the peer, not yet taken by its socket.", "queued");
	peer_family(d, w, "pbft_peer_redials_total", "counter",
	    "Dials to the peer retried after a failure or a lost link.",
	    "redials");
	peer_family(d, w, "pbft_peer_links_dead_total", "counter",
	    "Links to the peer closed for nothing heard in dead_after.",
	    "dead");
}

/* What pbftd itself knows of each local replica: up, given up, restarts. */
static void
render_supervised(struct pbftd *d, struct wbuf *w)
{
	double now = ev_now(d->loop);

	put(w,
	    "# HELP pbft_replica_up 1 if the local replica runs and "
	    "answered within %.0f s.\n# TYPE pbft_replica_up gauge\n",
	    M_STALE_S);
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		const struct child *c = &d->children[i];

		if (c->local)
			put(w, "pbft_replica_up{node=\"%u\"} %d\n", i,
			    c->state == CHILD_RUNNING && c->status != NULL &&
			        now - c->status_at <= M_STALE_S);
	}
	put(w,
	    "# HELP pbft_replica_failed 1 if pbftd gave up on the replica "
	    "(it could not read its data, or a crash loop) until `pbftctl "
	    "restart`.\n# TYPE pbft_replica_failed gauge\n");
	for (uint32_t i = 0; i < d->cfg->n; i++)
		if (d->children[i].local)
			put(w, "pbft_replica_failed{node=\"%u\"} %d\n", i,
			    d->children[i].state == CHILD_FAILED);
	put(w,
	    "# HELP pbft_replica_restarts_total Restarts by pbftd.\n"
	    "# TYPE pbft_replica_restarts_total counter\n");
	for (uint32_t i = 0; i < d->cfg->n; i++)
		if (d->children[i].local)
			put(w, "pbft_replica_restarts_total{node=\"%u\"} %u\n",
			    i, d->children[i].restarts);
}

static void
render_muted(struct pbftd *d, struct wbuf *w)
{
	put(w,
	    "# HELP pbft_muted 1 while the replica sends no pre-prepare or "
	    "prepare for the next seq (it restarted after a crash; up to its "
	    "early-vote bound).\n"
	    "# TYPE pbft_muted gauge\n");
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		const json_t *st = d->children[i].status;
		const json_t *v =
		    st != NULL ? json_object_get(st, "muted") : NULL;

		if (v != NULL)
			put(w, "pbft_muted{node=\"%u\"} %d\n", i,
			    json_is_true(v) ? 1 : 0);
	}
}

static void
render_rejected(struct pbftd *d, struct wbuf *w)
{
	put(w,
	    "# HELP pbft_rejected_total Input rejected, by reason.\n"
	    "# TYPE pbft_rejected_total counter\n");
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		json_t *rej =
		    json_object_get(d->children[i].status, "rejected");
		const char *reason;
		json_t *v;

		json_object_foreach(rej, reason, v)
		{
			put(w,
			    "pbft_rejected_total{node=\"%u\",reason=\"%s\"} "
			    "%lld\n",
			    i, reason, (long long)json_integer_value(v));
		}
	}
}

/* The WAL fdatasync latency histogram, from each replica's buckets. */
static void
render_fsync(struct pbftd *d, struct wbuf *w)
{
	put(w,
	    "# HELP pbft_wal_fsync_seconds Write-ahead log fdatasync "
	    "latency.\n# TYPE pbft_wal_fsync_seconds histogram\n");
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		const json_t *st = d->children[i].status;
		json_t *le = json_object_get(st, "wal_sync_le_us");
		json_t *b = json_object_get(st, "wal_sync_buckets");
		long long cum = 0;
		size_t k;

		if (!json_is_array(le) || !json_is_array(b) ||
		    json_array_size(b) != json_array_size(le) + 1)
			continue;
		for (k = 0; k < json_array_size(le); k++) {
			cum +=
			    (long long)json_integer_value(json_array_get(b, k));
			put(w,
			    "pbft_wal_fsync_seconds_bucket{node=\"%u\",le=\"%"
			    "g\"} "
			    "%lld\n",
			    i,
			    (double)json_integer_value(json_array_get(le, k)) /
			        1e6,
			    cum);
		}
		cum += (long long)json_integer_value(json_array_get(b, k));
		put(w,
		    "pbft_wal_fsync_seconds_bucket{node=\"%u\",le=\"+Inf\"} "
		    "%lld\n",
		    i, cum);
		put(w, "pbft_wal_fsync_seconds_sum{node=\"%u\"} %.6f\n", i,
		    (double)num(st, "wal_sync_sum_us") / 1e6);
		put(w, "pbft_wal_fsync_seconds_count{node=\"%u\"} %lld\n", i,
		    cum);
	}
}

void
metrics_render(struct pbftd *d, struct wbuf *w)
{
	static uint64_t scrapes;

	render_supervised(d, w);
	family(d, w, "pbft_view", "gauge", "Current view.", "view");
	render_muted(d, w);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		family(d, w, families[i].name, families[i].type,
		    families[i].help, families[i].field);
	render_peers(d, w);
	render_rejected(d, w);
	render_fsync(d, w);
	put(w,
	    "# HELP pbft_metrics_scrapes_total Scrapes served.\n"
	    "# TYPE pbft_metrics_scrapes_total counter\n"
	    "pbft_metrics_scrapes_total %llu\n",
	    (unsigned long long)++scrapes);
}

#if !PBFT_HAVE_MHD
struct mconn {
	struct metrics *m;
	int fd;
	ev_io rd, wr;
	ev_timer deadline;
	char head[M_HEAD_MAX + 1];
	size_t head_len;
	struct wbuf out;
	size_t out_off;
};

struct metrics {
	struct pbftd *d;
	int fd;
	ev_io accept;
	struct mconn conns[M_CONNS_MAX];
};

static void
conn_close(struct mconn *c)
{
	struct ev_loop *loop = c->m->d->loop;

	if (c->fd == -1)
		return;
	ev_io_stop(loop, &c->rd);
	ev_io_stop(loop, &c->wr);
	ev_timer_stop(loop, &c->deadline);
	close(c->fd);
	c->fd = -1;
	wbuf_clear(&c->out);
}

static void
respond(struct mconn *c, int code, const char *reason, struct wbuf *body)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr),
	    "HTTP/1.0 %d %s\r\n"
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	    code, reason, body != NULL ? body->len : strlen(reason) + 1);

	wbuf_put_bytes(&c->out, hdr, (size_t)n);
	if (body != NULL) {
		wbuf_put_bytes(&c->out, body->p, body->len);
	} else {
		wbuf_put_bytes(&c->out, reason, strlen(reason));
		wbuf_put_bytes(&c->out, "\n", 1);
	}
	ev_io_stop(c->m->d->loop, &c->rd);
	ev_io_start(c->m->d->loop, &c->wr);
}

static void
handle(struct mconn *c)
{
	struct wbuf body;

	if (strncmp(c->head, "GET ", 4) != 0) {
		respond(c, 405, "Method Not Allowed", NULL);
		return;
	}
	if (strncmp(c->head + 4, "/metrics ", 9) != 0 &&
	    strncmp(c->head + 4, "/metrics?", 9) != 0) {
		respond(c, 404, "Not Found", NULL);
		return;
	}
	wbuf_init_dynamic(&body, 4u << 20);
	metrics_render(c->m->d, &body);
	if (wbuf_failed(&body))
		respond(c, 500, "Internal Server Error", NULL);
	else
		respond(c, 200, "OK", &body);
	wbuf_clear(&body);
}

static void
read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mconn *c = w->data;
	ssize_t r;

	(void)loop;
	(void)revents;
	r = read(c->fd, c->head + c->head_len, M_HEAD_MAX - c->head_len);
	if (r == 0 || (r == -1 && errno != EAGAIN && errno != EINTR)) {
		conn_close(c);
		return;
	}
	if (r < 0)
		return;
	c->head_len += (size_t)r;
	c->head[c->head_len] = '\0';
	if (strstr(c->head, "\r\n\r\n") != NULL ||
	    strstr(c->head, "\n\n") != NULL)
		handle(c);
	else if (c->head_len == M_HEAD_MAX)
		respond(c, 431, "Request Header Fields Too Large", NULL);
}

static void
write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct mconn *c = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
	    MSG_NOSIGNAL);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->out_off += (size_t)n;
	if (c->out_off == c->out.len)
		conn_close(c);
}

static void
deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_close(w->data);
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics *m = w->data;
	int fd;

	(void)revents;
	while ((fd = accept4(
	            m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		struct mconn *c = NULL;

		for (int i = 0; i < M_CONNS_MAX && c == NULL; i++)
			if (m->conns[i].fd == -1)
				c = &m->conns[i];
		if (c == NULL) {
			close(fd); /* full: the scraper retries */
			continue;
		}
		c->fd = fd;
		c->head_len = 0;
		c->out_off = 0;
		wbuf_init_dynamic(&c->out, 8u << 20);
		ev_io_set(&c->rd, fd, EV_READ);
		ev_io_set(&c->wr, fd, EV_WRITE);
		ev_io_start(loop, &c->rd);
		ev_timer_set(&c->deadline, M_TIMEOUT_S, 0);
		ev_timer_start(loop, &c->deadline);
	}
}

struct metrics *
metrics_new(struct pbftd *d, char *err, size_t errlen)
{
	struct metrics *m;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                    .ai_flags = AI_PASSIVE},
	                *ai = NULL;
	char host[256], port[8];
	uint16_t p;
	int one = 1;

	if (d->cfg->metrics_listen[0] == '\0')
		return NULL;
	if (cfg_parse_address(d->cfg->metrics_listen, host, sizeof(host), &p) ==
	    -1) {
		snprintf(err, errlen, "metrics_listen: bad address");
		return NULL;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)p);
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->d = d;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL ||
	    (m->fd = socket(ai->ai_family,
	         SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ==
	        -1 ||
	    bind(m->fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(m->fd, 16) == -1) {
		snprintf(err, errlen, "metrics_listen %s: %s",
		    d->cfg->metrics_listen, strerror(errno));
		if (ai != NULL)
			freeaddrinfo(ai);
		if (m->fd > 0)
			close(m->fd);
		free(m);
		return NULL;
	}
	freeaddrinfo(ai);
	for (int i = 0; i < M_CONNS_MAX; i++) {
		struct mconn *c = &m->conns[i];

		c->m = m;
		c->fd = -1;
		ev_init(&c->rd, read_cb);
		ev_init(&c->wr, write_cb);
		ev_init(&c->deadline, deadline_cb);
		c->rd.data = c->wr.data = c->deadline.data = c;
	}
	ev_io_init(&m->accept, accept_cb, m->fd, EV_READ);
	m->accept.data = m;
	ev_io_start(d->loop, &m->accept);
	log_info("metrics on http://%s/metrics", d->cfg->metrics_listen);
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	for (int i = 0; i < M_CONNS_MAX; i++)
		conn_close(&m->conns[i]);
	ev_io_stop(m->d->loop, &m->accept);
	close(m->fd);
	free(m);
}
#endif /* !PBFT_HAVE_MHD */
