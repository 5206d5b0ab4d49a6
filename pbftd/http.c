/*
 * http.c - pbftd's HTTP server on libmicrohttpd, run from pbftd's libev
 * loop: the JSON API (/v1/...), the status page (GET /) and /metrics on
 * http_listen, and /metrics alone on metrics_listen.
 *
 * libmicrohttpd runs without threads of its own (MHD_USE_EPOLL, no internal
 * polling): its epoll descriptor is one ev_io here, its next timeout one
 * ev_timer, and every MHD_run happens on pbftd's loop, so a handler may
 * call the rest of pbftd directly. A request that needs the cluster or the
 * replicas is started through the control server's shared requests
 * (control.c: ctl_run_op, ctl_run_status: the same client identity and the
 * same checks as pbftctl) and its connection is suspended until the answer
 * comes; nothing here blocks.
 *
 * Untrusted input: bodies are bounded (HTTP_BODY_MAX, 413 beyond), headers
 * by the connection's memory (HTTP_CONN_MEMORY), connections in number
 * (HTTP_CONNS_MAX) and by an idle timeout (HTTP_IDLE_S); bad JSON is a 400.
 * When http_tokens is set every request but GET / (a page without data)
 * needs "Authorization: Bearer TOKEN" (http_auth.c); on an address other
 * than loopback it must be set. Requests from a web page of another
 * origin, and without tokens a Host that is not loopback, are refused
 * (http_origin_ok). TLS is the library's, with http_cert and http_key. It
 * does no redirects, compression or anything a reverse proxy is better at.
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "http.h"
#include "http_tx.h"
#include "log.h"
#include "pbftd.h"
#include "svcop.h"
#include "wbuf.h"

#define HTTP_BODY_MAX (256u * 1024) /* a request body; 413 beyond */
#define HTTP_DISCARD_MAX (4u << 20) /* read and dropped to answer 413 */
#define HTTP_CONNS_MAX 256
#define HTTP_CONN_MEMORY (64u * 1024) /* per connection: bounds headers */
#define HTTP_IDLE_S 10u
#define HTTP_OUT_MAX (8u << 20)

extern const char http_page_html[]; /* status page (http_page.c) */

enum http_kind { HTTP_API, HTTP_METRICS_ONLY };

struct http_srv {
	struct http *h;
	enum http_kind kind;
	struct MHD_Daemon *mhd;
	int fd; /* listening socket; MHD closes it */
	ev_io io; /* MHD's epoll descriptor */
	ev_timer timer;
};

struct http {
	struct pbftd *d;
	struct http_srv srv[2];
	size_t nsrv;
	struct http_tokens *tokens;
	char *tls_cert, *tls_key; /* PEM, for http_listen; NULL: plain */
	uint64_t pending; /* requests waiting for the cluster */
};

/* One request: MHD's per-connection context while it lasts. */
struct http_req {
	struct http_srv *srv;
	struct MHD_Connection *conn;
	struct wbuf body;
	size_t received; /* body bytes, kept or not */
	bool too_big;
	bool queued; /* a reply went out before the body was read */
	bool waiting; /* a job of control.c will answer */
	bool suspended; /* the connection waits for that answer */
	bool answered; /* code and reply are set */
	unsigned code;
	char *reply; /* JSON text */
};

static void srv_run(struct http_srv *s);

/* ---- replies ----------------------------------------------------------- */

static enum MHD_Result
queue(struct MHD_Connection *conn, unsigned code, const char *ctype,
    const void *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	if (strncmp(ctype, "text/html", 9) == 0) /* the page: itself only */
		MHD_add_response_header(r, "Content-Security-Policy",
		    "default-src 'none'; script-src 'unsafe-inline'; "
		    "style-src 'unsafe-inline'; connect-src 'self'; "
		    "frame-ancestors 'none'");
	if (code == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
	rc = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rc;
}

/* The control protocol's reply, as an HTTP reply: no "v", no "id". */
static enum MHD_Result
queue_json(struct MHD_Connection *conn, unsigned code, json_t *rep)
{
	char *text;
	enum MHD_Result rc;

	json_object_del(rep, "v");
	json_object_del(rep, "id");
	text = json_dumps(rep, JSON_COMPACT);
	json_decref(rep);
	if (text == NULL)
		return MHD_NO;
	rc = queue(conn, code, "application/json", text, strlen(text));
	free(text);
	return rc;
}

static enum MHD_Result
queue_error(struct MHD_Connection *conn, unsigned code, const char *msg)
{
	return queue_json(
	    conn, code, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

/* ---- answers from control.c -------------------------------------------- */

static const unsigned err_code[] = {
    [CTL_OK] = MHD_HTTP_OK,
    [CTL_ERR_BAD] = MHD_HTTP_BAD_REQUEST,
    [CTL_ERR_NOT_FOUND] = MHD_HTTP_NOT_FOUND,
    [CTL_ERR_DENIED] = MHD_HTTP_FORBIDDEN,
    [CTL_ERR_UNAVAILABLE] = MHD_HTTP_SERVICE_UNAVAILABLE,
    [CTL_ERR_TIMEOUT] = MHD_HTTP_GATEWAY_TIMEOUT,
};

/* A job finished: keep the reply and wake the suspended connection. */
static void
req_done(void *arg, json_t *rep, enum ctl_err err)
{
	struct http_req *q = arg;

	json_object_del(rep, "v");
	json_object_del(rep, "id");
	q->code = err_code[err];
	q->reply = json_dumps(rep, JSON_COMPACT);
	json_decref(rep);
	q->answered = true;
	q->waiting = false;
	q->srv->h->pending--;
	/* Answered later, from the loop: wake the connection. (Answered at
	 * once, inside the handler, start_job queues the reply itself.) */
	if (q->suspended) {
		q->suspended = false;
		MHD_resume_connection(q->conn);
		srv_run(q->srv);
	}
}

/* The reply a job left. */
static enum MHD_Result
queue_answer(struct http_req *q)
{
	if (q->reply == NULL)
		return MHD_NO; /* out of memory: drop the connection */
	return queue(
	    q->conn, q->code, "application/json", q->reply, strlen(q->reply));
}

/* ---- routes ------------------------------------------------------------ */

/* The body as a JSON object, or NULL after queueing a 400. */
static json_t *
body_object(struct http_req *q, enum MHD_Result *rc)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)q->body.p, q->body.len,
	    JSON_REJECT_DUPLICATES, &jerr);

	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		*rc = queue_error(q->conn, MHD_HTTP_BAD_REQUEST,
		    "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* A string member without NUL bytes, or NULL. */
static const char *
str_member(const json_t *o, const char *key, size_t *len)
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);

	if (s == NULL)
		return NULL;
	*len = json_string_length(v);
	return strlen(s) == *len ? s : NULL;
}

/* Encodes the operation for method and url into op; 0, or -1 after
 * queueing the error reply. */
static int
build_op(struct http_req *q, const char *method, const char *url,
    struct wbuf *op, enum MHD_Result *rc)
{
	const char *key = strchr(url + 1, '/'), *s;
	size_t klen, len = 0;
	json_t *j = NULL;
	int r = -1;

	/* "/v1/kv/KEY": the key after the third slash. */
	key = key != NULL ? strchr(key + 1, '/') : NULL;
	key = key != NULL ? key + 1 : "";
	klen = strlen(key);
	if (strcmp(url, "/v1/submit") == 0) {
		if ((j = body_object(q, rc)) == NULL)
			return -1;
		if ((s = str_member(j, "data", &len)) != NULL)
			r = ledger_op_submit(op, s, len);
	} else if (strcmp(method, "PUT") == 0) {
		if ((j = body_object(q, rc)) == NULL)
			return -1;
		if ((s = str_member(j, "value", &len)) != NULL && klen > 0)
			r = ledger_op_put(op, key, klen, s, len);
	} else if (klen > 0) {
		r = strcmp(method, "GET") == 0 ? ledger_op_get(op, key, klen)
		                               : ledger_op_del(op, key, klen);
	}
	json_decref(j);
	if (r == -1 || wbuf_failed(op)) {
		*rc = queue_error(q->conn, MHD_HTTP_BAD_REQUEST,
		    strncmp(url, "/v1/kv/", 7) == 0
		        ? "want a key of 1 to 1024 bytes (and for PUT a "
		          "body {\"value\": STRING})"
		        : "want a body {\"data\": STRING} of at most 64 KiB");
		return -1;
	}
	return 0;
}

/* Starts a job of control.c and suspends the connection until it ends. */
static enum MHD_Result
start_job(struct http_req *q, const char *method, const char *url)
{
	struct http *h = q->srv->h;
	const struct pbftd *d = h->d;
	struct wbuf op;
	enum MHD_Result rc = MHD_YES;

	/* No quorum within reach: say so now rather than time out later. */
	if (strcmp(url, "/v1/status") != 0 && d->client != NULL &&
	    pbft_client_connected(d->client) < 2 * d->cfg->f + 1)
		return queue_error(q->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "pbftd's client reaches fewer than 2f+1 replicas");
	h->pending++;
	q->waiting = true;
	if (strcmp(url, "/v1/status") == 0) {
		if (ctl_run_status(h->d->ctl, req_done, q) == -1) {
			h->pending--;
			q->waiting = false;
			return queue_error(q->conn,
			    MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
		}
	} else {
		wbuf_init_dynamic(&op, PBFT_OP_BYTES_MAX + 64);
		if (build_op(q, method, url, &op, &rc) == 0) {
			ctl_run_op(h->d->ctl, &op, req_done, q);
		} else {
			h->pending--;
			q->waiting = false;
		}
		wbuf_clear(&op);
	}
	if (q->waiting) {
		MHD_suspend_connection(q->conn);
		q->suspended = true;
	} else if (q->answered) {
		rc = queue_answer(q);
	}
	return rc;
}

static enum MHD_Result
serve_metrics(struct http_req *q)
{
	struct wbuf body;
	enum MHD_Result rc;

	wbuf_init_dynamic(&body, HTTP_OUT_MAX);
	metrics_render(q->srv->h->d, &body);
	if (wbuf_failed(&body))
		rc = queue_error(q->conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "metrics too large");
	else
		rc = queue(q->conn, MHD_HTTP_OK,
		    "text/plain; version=0.0.4; charset=utf-8", body.p,
		    body.len);
	wbuf_clear(&body);
	return rc;
}

/* GET /v1/tx/{index}: a local replica's copy of a ledger entry. */
static enum MHD_Result
serve_tx(struct http_req *q, const char *url)
{
	const char *p = url + strlen("/v1/tx/");
	uint8_t *data = NULL;
	uint32_t node = 0, len = 0;
	json_t *rep, *str;
	char *end;
	uint64_t idx;
	int rc;

	errno = 0;
	idx = strtoull(p, &end, 10);
	if (*p < '0' || *p > '9' || *end != '\0' || errno != 0)
		return queue_error(q->conn, MHD_HTTP_BAD_REQUEST,
		    "want /v1/tx/INDEX, a decimal number");
	rc = http_tx_read(q->srv->h->d, idx, &node, &data, &len);
	if (rc != 0)
		return queue_error(q->conn,
		    rc == 1        ? MHD_HTTP_NOT_FOUND
		        : rc == -2 ? MHD_HTTP_SERVICE_UNAVAILABLE
		                   : MHD_HTTP_INTERNAL_SERVER_ERROR,
		    rc == 1        ? "no such ledger entry"
		        : rc == -2 ? "no local replica runs"
		                   : "cannot read the ledger");
	rep = json_pack("{s:b, s:I, s:i, s:b}", "ok", 1, "index",
	    (json_int_t)idx, "node", (int)node, "confirmed", 0);
	/* Text as a string; anything else (not UTF-8, a NUL) in hex. */
	if (memchr(data, 0, len) == NULL &&
	    (str = json_stringn((const char *)data, len)) != NULL) {
		json_object_set_new(rep, "data", str);
	} else {
		char *hex = malloc(2 * (size_t)len + 1);

		for (uint32_t i = 0; hex != NULL && i < len; i++)
			snprintf(hex + 2 * i, 3, "%02x", data[i]);
		if (hex != NULL) {
			hex[2 * (size_t)len] = '\0';
			json_object_set_new(rep, "data_hex", json_string(hex));
		}
		free(hex);
	}
	free(data);
	return queue_json(q->conn, MHD_HTTP_OK, rep);
}

/* Which methods a path takes: 0 unknown path, else a bit per method. */
enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_DELETE = 8 };

static unsigned
route_methods(const struct http_srv *s, const char *url)
{
	if (strcmp(url, "/metrics") == 0)
		return M_GET;
	if (s->kind == HTTP_METRICS_ONLY)
		return 0;
	if (strcmp(url, "/") == 0 || strcmp(url, "/v1/status") == 0 ||
	    strcmp(url, "/v1/peers") == 0)
		return M_GET;
	if (strcmp(url, "/v1/submit") == 0)
		return M_POST;
	if (strncmp(url, "/v1/tx/", 7) == 0)
		return M_GET;
	if (strncmp(url, "/v1/kv/", 7) == 0)
		return M_GET | M_PUT | M_DELETE;
	return 0;
}

static unsigned
method_bit(const char *m)
{
	return strcmp(m, "GET") == 0   ? M_GET
	    : strcmp(m, "HEAD") == 0   ? M_GET
	    : strcmp(m, "POST") == 0   ? M_POST
	    : strcmp(m, "PUT") == 0    ? M_PUT
	    : strcmp(m, "DELETE") == 0 ? M_DELETE
	                               : 0;
}

/*
 * First sight of a request (headers only): the checks that need no body.
 * Returns true when it queued a reply.
 */
static bool
precheck(struct http_req *q, const char *method, const char *url,
    enum MHD_Result *rc)
{
	struct http *h = q->srv->h;
	unsigned allowed = route_methods(q->srv, url);
	const char *cl, *auth;

	if (allowed == 0) {
		*rc = queue_error(q->conn, MHD_HTTP_NOT_FOUND, "no such path");
		return true;
	}
	if ((allowed & method_bit(method)) == 0) {
		*rc = queue_error(q->conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed here");
		return true;
	}
	if (q->srv->kind == HTTP_API &&
	    !http_origin_ok(MHD_lookup_connection_value(
	                        q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
	        MHD_lookup_connection_value(
	            q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN),
	        h->tokens == NULL)) {
		*rc = queue_error(q->conn, MHD_HTTP_FORBIDDEN,
		    "cross-origin request, or a Host that is not this "
		    "machine's loopback");
		return true;
	}
	if (h->tokens != NULL && q->srv->kind == HTTP_API &&
	    strcmp(url, "/") != 0) {
		auth = MHD_lookup_connection_value(
		    q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (auth == NULL) {
			*rc = queue_error(q->conn, MHD_HTTP_UNAUTHORIZED,
			    "a bearer token is required");
			return true;
		}
		if (http_tokens_check(h->tokens, auth) == NULL) {
			*rc = queue_error(
			    q->conn, MHD_HTTP_FORBIDDEN, "unknown token");
			return true;
		}
	}
	cl = MHD_lookup_connection_value(
	    q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl == NULL || strtoull(cl, NULL, 10) <= HTTP_BODY_MAX)
		return false;
	/*
	 * Too large. A client that waits for "100 Continue", or one that
	 * would send more than HTTP_DISCARD_MAX, is answered now; one already
	 * sending a body is answered once it is sent (read and dropped):
	 * closing on unread data would reset the connection and lose the 413.
	 */
	if (MHD_lookup_connection_value(
	        q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT) != NULL ||
	    strtoull(cl, NULL, 10) > HTTP_DISCARD_MAX) {
		*rc = queue_error(q->conn, MHD_HTTP_CONTENT_TOO_LARGE,
		    "request body too large");
		return true;
	}
	q->too_big = true;
	return false;
}

/* The whole request is in: answer it, or start its job. */
static enum MHD_Result
dispatch(struct http_req *q, const char *method, const char *url)
{
	if (q->answered)
		return queue_answer(q);
	if (q->too_big)
		return queue_error(q->conn, MHD_HTTP_CONTENT_TOO_LARGE,
		    "request body too large");
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(q);
	if (strcmp(url, "/") == 0)
		return queue(q->conn, MHD_HTTP_OK, "text/html; charset=utf-8",
		    http_page_html, strlen(http_page_html));
	if (strcmp(url, "/v1/peers") == 0)
		return queue_json(
		    q->conn, MHD_HTTP_OK, ctl_peers_reply(q->srv->h->d));
	if (strncmp(url, "/v1/tx/", 7) == 0)
		return serve_tx(q, url);
	return start_job(q, method, url);
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http_req *q = *con_cls;
	enum MHD_Result rc = MHD_YES;

	(void)version;
	if (q == NULL) {
		if ((q = calloc(1, sizeof(*q))) == NULL)
			return MHD_NO;
		q->srv = cls;
		q->conn = conn;
		wbuf_init_dynamic(&q->body, HTTP_BODY_MAX);
		*con_cls = q;
		q->queued = precheck(q, method, url, &rc);
		return rc;
	}
	if (*upload_data_size > 0) {
		q->received += *upload_data_size;
		if (!q->too_big && !q->queued) {
			wbuf_put_bytes(
			    &q->body, upload_data, *upload_data_size);
			q->too_big = wbuf_failed(&q->body);
		}
		*upload_data_size = 0;
		/* Past what is worth reading to answer 413: close. */
		return q->received > HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
	}
	return q->queued ? MHD_YES : dispatch(q, method, url);
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_req *q = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (q == NULL)
		return;
	/* A job still running holds q; it ends before http_free. */
	if (q->waiting)
		return;
	wbuf_clear(&q->body);
	free(q->reply);
	free(q);
	*con_cls = NULL;
}

/* ---- the loop ---------------------------------------------------------- */

static void
srv_run(struct http_srv *s)
{
	struct ev_loop *loop = s->h->d->loop;
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(s->mhd);
	ev_timer_stop(loop, &s->timer);
	if (MHD_get_timeout(s->mhd, &ms) == MHD_YES) {
		ev_timer_set(&s->timer, (double)ms / 1000.0, 0);
		ev_timer_start(loop, &s->timer);
	}
}

static void
srv_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	srv_run(w->data);
}

static void
srv_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	srv_run(w->data);
}

/* ---- start and stop ---------------------------------------------------- */

PBFT_PRINTF(2, 0)
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("http: %s", line);
}

static bool
addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)
		                  ->sin_addr.s_addr) >>
		           24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		    (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* A listening socket on addr (host:port); -1 with err set. */
static int
listen_on(
    const char *key, const char *addr, bool *loopback, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                    .ai_flags = AI_PASSIVE},
	                *ai = NULL;
	char host[256], port[8];
	uint16_t p;
	int fd = -1, one = 1;

	if (cfg_parse_address(addr, host, sizeof(host), &p) == -1) {
		snprintf(err, errlen, "%s: bad address", key);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)p);
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		snprintf(err, errlen, "%s %s: cannot resolve", key, addr);
		return -1;
	}
	*loopback = addr_is_loopback(ai->ai_addr);
	if ((fd = socket(ai->ai_family,
	         SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, 64) == -1) {
		snprintf(err, errlen, "%s %s: %s", key, addr, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int
srv_start(struct http *h, enum http_kind kind, const char *key,
    const char *addr, char *err, size_t errlen)
{
	struct http_srv *s = &h->srv[h->nsrv];
	const union MHD_DaemonInfo *info;
	struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL},
	    {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
	bool loopback = false, tls;

	if ((s->fd = listen_on(key, addr, &loopback, err, errlen)) == -1)
		return -1;
	if (kind == HTTP_API && !loopback && h->tokens == NULL) {
		snprintf(err, errlen,
		    "http_listen %s is not a loopback address: set "
		    "http_tokens",
		    addr);
		close(s->fd);
		return -1;
	}
	s->h = h;
	s->kind = kind;
	tls = kind == HTTP_API && h->tls_key != NULL;
	if (tls) {
		tls_opts[0] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key};
		tls_opts[1] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert};
	}
	s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	        MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0),
	    0, NULL, NULL, access_cb, s, MHD_OPTION_LISTEN_SOCKET, s->fd,
	    MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	    NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNS_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s, MHD_OPTION_END);
	if (s->mhd == NULL ||
	    (info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD)) ==
	        NULL) {
		snprintf(err, errlen, "%s %s: the HTTP server did not start",
		    key, addr);
		if (s->mhd != NULL)
			MHD_stop_daemon(s->mhd);
		close(s->fd);
		return -1;
	}
	ev_io_init(&s->io, srv_io_cb, info->epoll_fd, EV_READ);
	ev_init(&s->timer, srv_timer_cb);
	s->io.data = s->timer.data = s;
	ev_io_start(h->d->loop, &s->io);
	h->nsrv++;
	log_info("%s on http%s://%s/%s%s", key, tls ? "s" : "", addr,
	    kind == HTTP_API ? "" : "metrics",
	    kind == HTTP_API && h->tokens != NULL ? " (bearer tokens)" : "");
	return 0;
}

/* Whether addr (host:port) resolves to a loopback address; -1 with err. */
static int
addr_loopback(const char *addr, bool *loopback, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char host[256];
	uint16_t p;

	if (cfg_parse_address(addr, host, sizeof(host), &p) == -1 ||
	    getaddrinfo(host, NULL, &hints, &ai) != 0 || ai == NULL) {
		snprintf(err, errlen, "http_listen %s: cannot resolve", addr);
		return -1;
	}
	*loopback = addr_is_loopback(ai->ai_addr);
	freeaddrinfo(ai);
	return 0;
}

/* TLS files into h; 0, or -1 with err set. */
static int
tls_load(
    struct http *h, const struct cluster_cfg *cfg, char *err, size_t errlen)
{
	if ((cfg->http_cert[0] != '\0') != (cfg->http_key[0] != '\0')) {
		snprintf(err, errlen, "http_cert and http_key go together");
		return -1;
	}
	if (cfg->http_key[0] == '\0')
		return 0;
	if ((h->tls_key = http_file_load(
	         cfg->http_key, true, "http_key", err, errlen)) == NULL ||
	    (h->tls_cert = http_file_load(
	         cfg->http_cert, false, "http_cert", err, errlen)) == NULL)
		return -1;
	return 0;
}

int
http_check(const struct cluster_cfg *cfg, char *err, size_t errlen)
{
	struct http h = {.tokens = NULL};
	bool loopback = true;
	int rc = -1;

	if (cfg->http_tokens[0] != '\0' &&
	    (h.tokens = http_tokens_load(cfg->http_tokens, err, errlen)) ==
	        NULL)
		goto out;
	if (tls_load(&h, cfg, err, errlen) == -1)
		goto out;
	if (cfg->http_listen[0] != '\0' && h.tokens == NULL &&
	    (addr_loopback(cfg->http_listen, &loopback, err, errlen) == -1 ||
	        !loopback)) {
		if (!loopback)
			snprintf(err, errlen,
			    "http_listen %s is not a loopback address: set "
			    "http_tokens",
			    cfg->http_listen);
		goto out;
	}
	rc = 0;
out:
	http_tokens_free(h.tokens);
	if (h.tls_key != NULL)
		OPENSSL_cleanse(h.tls_key, strlen(h.tls_key));
	free(h.tls_key);
	free(h.tls_cert);
	return rc;
}

struct http *
http_new(struct pbftd *d, char *err, size_t errlen)
{
	const struct cluster_cfg *cfg = d->cfg;
	struct http *h;

	err[0] = '\0';
	if (cfg->http_listen[0] == '\0' && cfg->metrics_listen[0] == '\0')
		return NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->d = d;
	if (cfg->http_tokens[0] != '\0' &&
	    (h->tokens = http_tokens_load(cfg->http_tokens, err, errlen)) ==
	        NULL)
		goto fail;
	if (tls_load(h, cfg, err, errlen) == -1)
		goto fail;
	if (cfg->http_listen[0] != '\0' &&
	    srv_start(h, HTTP_API, "http_listen", cfg->http_listen, err,
	        errlen) == -1)
		goto fail;
	if (cfg->metrics_listen[0] != '\0' &&
	    srv_start(h, HTTP_METRICS_ONLY, "metrics_listen",
	        cfg->metrics_listen, err, errlen) == -1)
		goto fail;
	return h;
fail:
	http_free(h);
	return NULL;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->nsrv; i++) {
		ev_io_stop(h->d->loop, &h->srv[i].io);
		ev_timer_stop(h->d->loop, &h->srv[i].timer);
		MHD_stop_daemon(h->srv[i].mhd);
	}
	http_tokens_free(h->tokens);
	if (h->tls_key != NULL)
		OPENSSL_cleanse(h->tls_key, strlen(h->tls_key));
	free(h->tls_key);
	free(h->tls_cert);
	http_tx_free();
	free(h);
}
