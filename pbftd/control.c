/*
 * control.c - pbftd's control socket: one JSON request per line, one JSON
 * reply per line (common/ctl_proto.h).
 *
 * Local but untrusted input: lines are bounded, bad JSON and unknown commands
 * get an error reply, an idle client is dropped after 30 s, and nothing a
 * client does blocks pbftd or other clients. Requests that need the cluster
 * (submit, put, get, del) go through the client library and are answered
 * when f+1 replicas agree; status asks every local replica over its
 * supervisor link and waits at most one second.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "ctl_req.h"
#include "log.h"
#include "pbftd.h"
#include "svcop.h"
#include "sig.h"
#include "wbuf.h"

#define CTL_CLIENTS_MAX 64
#define CTL_IDLE_S 30.0
#define CTL_OUT_MAX (1u << 20)
#define STATUS_WAIT_S 1.0

struct ctl_client {
	struct ctl_server *s;
	int fd;
	uint64_t gen; /* bumped on close: late answers find a new gen */
	ev_io rd, wr;
	ev_timer idle;
	struct wbuf in, out;
	bool closing; /* close once out is flushed */
	bool status_busy; /* its status request is still running */
	uint32_t waiting; /* replies still being worked out */
};

/* A status request waiting for the replicas' next answers. */
struct status_job {
	struct ctl_server *s;
	struct status_job *next;
	ctl_done_cb done;
	void *arg;
	bool asked[PBFT_REPLICAS_MAX];
	uint64_t answers[PBFT_REPLICAS_MAX]; /* child's count when asked */
	ev_timer timeout;
};

/* A cluster request waiting for f+1 replies. */
struct op_job {
	ctl_done_cb done;
	void *arg;
	uint8_t code;
};

/* A control client's request being worked out by one of the above. */
struct ctl_wait {
	struct ctl_server *s;
	uint32_t slot;
	uint64_t gen;
	json_int_t id;
	bool status;
};

struct ctl_server {
	struct pbftd *d;
	int fd;
	ev_io accept;
	struct ctl_client clients[CTL_CLIENTS_MAX];
	uint64_t next_gen;
	struct status_job *status; /* waiting, of every requester */
	dev_t sock_dev; /* the socket file we made, to remove only it */
	ino_t sock_ino;
};

static void client_close(struct ctl_client *c);

static void
send_json(struct ctl_client *c, json_t *rep)
{
	char *line = json_dumps(rep, JSON_COMPACT);

	json_decref(rep);
	if (line == NULL)
		return;
	if (c->out.len + strlen(line) + 1 > CTL_OUT_MAX) {
		free(line);
		client_close(c); /* it does not read its replies */
		return;
	}
	wbuf_put_bytes(&c->out, line, strlen(line));
	wbuf_put_u8(&c->out, '\n');
	free(line);
	ev_io_start(c->s->d->loop, &c->wr);
}

static json_t *
reply_new(json_int_t id, bool ok)
{
	return json_pack(
	    "{s:i, s:I, s:b}", "v", CTL_PROTO_VERSION, "id", id, "ok", ok);
}

static void
send_error(struct ctl_client *c, json_int_t id, const char *msg)
{
	json_t *rep = reply_new(id, false);

	json_object_set_new(rep, "error", json_string(msg));
	send_json(c, rep);
}

/*
 * The client a finished job answers, if it is still the same connection;
 * it stops waiting for this job.
 */
static struct ctl_client *
job_client(struct ctl_server *s, uint32_t slot, uint64_t gen)
{
	struct ctl_client *c = &s->clients[slot];

	if (c->fd == -1 || c->gen != gen)
		return NULL;
	c->waiting--;
	return c;
}

/* A half-closed client is closed once every answer has gone out. */
static void
maybe_close(struct ctl_client *c)
{
	if (c->fd != -1 && c->closing && c->waiting == 0 && c->out.len == 0)
		client_close(c);
}

/* ---- status ------------------------------------------------------------ */

static void
status_finish(struct status_job *j)
{
	struct ctl_server *s = j->s;
	struct pbftd *d = s->d;
	json_t *rep = reply_new(0, true), *arr = json_array();
	json_int_t view = -1;

	ev_timer_stop(d->loop, &j->timeout);
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		struct child *ch = &d->children[i];
		bool fresh = j->asked[i] && ch->status != NULL &&
		    ch->answers > j->answers[i];
		json_t *r = fresh ? json_deep_copy(ch->status) : json_object();
		char addr[300];
		const char *state = child_state_name(ch->state);

		if (!ch->local)
			state = "remote";
		else if (ch->state == CHILD_RUNNING && !fresh)
			state = "unresponsive";
		snprintf(addr, sizeof(addr), "%s:%u", d->cfg->nodes[i].host,
		    (unsigned)d->cfg->nodes[i].port);
		json_object_set_new(r, "id", json_integer(i));
		json_object_set_new(r, "address", json_string(addr));
		json_object_set_new(r, "pid", json_integer(ch->pid));
		json_object_set_new(r, "state", json_string(state));
		json_object_set_new(r, "restarts", json_integer(ch->restarts));
		if (ch->local && ch->state != CHILD_RUNNING &&
		    ch->reason[0] != '\0')
			json_object_set_new(
			    r, "reason", json_string(ch->reason));
		json_object_set_new(r, "uptime",
		    json_integer(ch->pid > 0
		            ? (json_int_t)(ev_now(d->loop) - ch->started_at)
		            : 0));
		if (json_integer_value(json_object_get(r, "view")) > view)
			view = json_integer_value(json_object_get(r, "view"));
		json_array_append_new(arr, r);
	}
	json_object_set_new(rep, "cluster", json_string(d->cfg->name));
	json_object_set_new(rep, "n", json_integer(d->cfg->n));
	json_object_set_new(rep, "f", json_integer(d->cfg->f));
	json_object_set_new(rep, "view", json_integer(view < 0 ? 0 : view));
	json_object_set_new(
	    rep, "primary", json_integer(view < 0 ? 0 : view % d->cfg->n));
	json_object_set_new(rep, "replicas", arr);
	ready_status_json(d, rep);
	for (struct status_job **p = &s->status; *p != NULL; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	j->done(j->arg, rep, CTL_OK);
	free(j);
}

/* Every asked replica answered (or stopped running): done. */
static bool
status_complete(const struct status_job *j)
{
	for (uint32_t i = 0; i < j->s->d->cfg->n; i++) {
		const struct child *ch = &j->s->d->children[i];

		if (j->asked[i] && ch->state == CHILD_RUNNING &&
		    ch->answers <= j->answers[i])
			return false;
	}
	return true;
}

void
ctl_status_arrived(struct ctl_server *s)
{
	struct status_job *j = s->status, *next;

	for (; j != NULL; j = next) {
		next = j->next;
		if (status_complete(j))
			status_finish(j);
	}
}

static void
status_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	status_finish(w->data);
}

/* An error reply in the control protocol's shape. */
static json_t *
error_reply(const char *msg)
{
	json_t *rep = reply_new(0, false);

	json_object_set_new(rep, "error", json_string(msg));
	return rep;
}

/* Whether a waiting job already asked replica i and has no answer yet:
 * its answer serves a new job too, so many requests ask once. */
static bool
status_asked(const struct ctl_server *s, uint32_t i)
{
	const struct child *ch = &s->d->children[i];

	for (const struct status_job *j = s->status; j != NULL; j = j->next)
		if (j->asked[i] && ch->answers == j->answers[i])
			return true;
	return false;
}

int
ctl_run_status(struct ctl_server *s, ctl_done_cb done, void *arg)
{
	struct pbftd *d = s->d;
	struct status_job *j;
	uint32_t pending = 0;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->s = s;
	j->done = done;
	j->arg = arg;
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		struct child *ch = &d->children[i];

		if (ch->state != CHILD_RUNNING || ch->sup_fd == -1)
			continue;
		j->asked[i] = true;
		j->answers[i] = ch->answers;
		if (!status_asked(s, i))
			child_ask_status(ch);
		pending++;
	}
	j->next = s->status;
	s->status = j;
	ev_timer_init(&j->timeout, status_timeout_cb, STATUS_WAIT_S, 0);
	j->timeout.data = j;
	if (pending == 0)
		status_finish(j);
	else
		ev_timer_start(d->loop, &j->timeout);
	return 0;
}

/* A finished request of a control client: answer it if still connected. */
static void
wait_done(void *arg, json_t *rep, enum ctl_err err)
{
	struct ctl_wait *w = arg;
	struct ctl_client *c = job_client(w->s, w->slot, w->gen);

	(void)err;
	if (c == NULL) {
		json_decref(rep);
		free(w);
		return;
	}
	if (w->status)
		c->status_busy = false;
	json_object_set_new(rep, "id", json_integer(w->id));
	send_json(c, rep);
	maybe_close(c);
	free(w);
}

static struct ctl_wait *
wait_new(struct ctl_client *c, json_int_t id, bool status)
{
	struct ctl_wait *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		send_error(c, id, "out of memory");
		return NULL;
	}
	w->s = c->s;
	w->slot = (uint32_t)(c - c->s->clients);
	w->gen = c->gen;
	w->id = id;
	w->status = status;
	c->waiting++;
	return w;
}

static void
cmd_status(struct ctl_client *c, json_int_t id)
{
	struct ctl_wait *w;

	if (c->status_busy) {
		send_error(c, id,
		    "busy: this connection's status request is "
		    "still running");
		return;
	}
	if ((w = wait_new(c, id, true)) == NULL)
		return;
	c->status_busy = true;
	if (ctl_run_status(c->s, wait_done, w) == -1) {
		c->status_busy = false;
		c->waiting--;
		free(w);
		send_error(c, id, "out of memory");
	}
}

/* ---- cluster requests -------------------------------------------------- */

static const char *
svc_status_text(uint8_t status)
{
	switch (status) {
	case SVC_NOT_FOUND:
		return "not found";
	case SVC_DENIED:
		return "denied: the key belongs to another client (see "
		       "admin and write_prefixes in cluster.ini(5))";
	case SVC_QUOTA:
		return "refused: the key's owner is at its quota "
		       "(client_max_keys, client_max_bytes)";
	default:
		return "rejected by the service";
	}
}

static void
op_done(void *arg, const struct pbft_result *res)
{
	struct op_job *j = arg;
	json_t *rep;
	uint64_t idx;

	if (res->status != PBFT_CLIENT_OK) {
		j->done(j->arg,
		    error_reply(res->status == PBFT_CLIENT_TIMEOUT
		            ? "timed out waiting for f+1 matching replies"
		            : "cancelled"),
		    res->status == PBFT_CLIENT_TIMEOUT ? CTL_ERR_TIMEOUT
		                                       : CTL_ERR_UNAVAILABLE);
		goto out;
	}
	if (res->svc_status != SVC_OK) {
		j->done(j->arg, error_reply(svc_status_text(res->svc_status)),
		    res->svc_status == SVC_NOT_FOUND ? CTL_ERR_NOT_FOUND
		        : res->svc_status == SVC_DENIED ||
		            res->svc_status == SVC_QUOTA
		        ? CTL_ERR_DENIED
		        : CTL_ERR_BAD);
		goto out;
	}
	rep = reply_new(0, true);
	json_object_set_new(rep, "seq", json_integer((json_int_t)res->seq));
	json_object_set_new(rep, "view", json_integer((json_int_t)res->view));
	if (j->code == LEDGER_OP_SUBMIT &&
	    ledger_result_index(res->result, res->result_len, &idx) == 0)
		json_object_set_new(
		    rep, "index", json_integer((json_int_t)idx));
	if (j->code == LEDGER_OP_GET)
		json_object_set_new(rep, "value",
		    json_stringn((const char *)res->result, res->result_len));
	j->done(j->arg, rep, CTL_OK);
out:
	free(j);
}

void
ctl_run_op(
    struct ctl_server *s, const struct wbuf *op, ctl_done_cb done, void *arg)
{
	struct op_job *j;

	if (s->d->client == NULL) {
		done(arg,
		    error_reply("pbftd has no client identity (set "
		                "control_client and its private_key_file)"),
		    CTL_ERR_UNAVAILABLE);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		done(arg, error_reply("out of memory"), CTL_ERR_UNAVAILABLE);
		return;
	}
	j->done = done;
	j->arg = arg;
	j->code = op->p[0];
	if (pbft_client_submit(s->d->client, op->p, op->len, op_done, j) ==
	    -1) {
		free(j);
		done(arg, error_reply("too many requests in flight"),
		    CTL_ERR_UNAVAILABLE);
	}
}

static void
cmd_op(struct ctl_client *c, json_int_t id, const struct wbuf *op)
{
	struct ctl_wait *w = wait_new(c, id, false);

	if (w != NULL)
		ctl_run_op(c->s, op, wait_done, w);
}

static void
cmd_node(struct ctl_client *c, json_int_t id, enum ctl_cmd cmd, int64_t node)
{
	struct pbftd *d = c->s->d;

	if (node < 0 || node >= d->cfg->n || !d->children[node].local) {
		send_error(c, id, "no such local node");
		return;
	}
	if (cmd == CTL_CMD_RESTART)
		child_restart_now(&d->children[node]);
	else
		child_stop(&d->children[node], SIGTERM);
	send_json(c, reply_new(id, true));
}

json_t *
ctl_peers_reply(struct pbftd *d)
{
	json_t *rep = reply_new(0, true), *arr = json_array();

	for (uint32_t i = 0; i < d->cfg->n; i++) {
		char addr[300], pub[65];

		snprintf(addr, sizeof(addr), "%s:%u", d->cfg->nodes[i].host,
		    (unsigned)d->cfg->nodes[i].port);
		sig_hex_encode(d->cfg->nodes[i].public_key, 32, pub);
		json_array_append_new(arr,
		    json_pack("{s:i, s:s, s:s, s:b, s:o}", "id", (int)i,
		        "address", addr, "public_key", pub, "local",
		        d->children[i].local, "connected",
		        d->client != NULL
		            ? json_boolean(
		                  pbft_client_replica_connected(d->client, i))
		            : json_null()));
	}
	json_object_set_new(rep, "peers", arr);
	return rep;
}

static void
cmd_peers(struct ctl_client *c, json_int_t id)
{
	json_t *rep = ctl_peers_reply(c->s->d);

	json_object_set_new(rep, "id", json_integer(id));
	send_json(c, rep);
}

static void
handle_line(struct ctl_client *c, const char *line, size_t len)
{
	struct ctl_req req;
	char err[160];

	wbuf_init_dynamic(&req.op, PBFT_OP_BYTES_MAX + 64);
	if (ctl_req_parse(line, len, &req, err, sizeof(err)) == -1) {
		send_error(c, (json_int_t)req.id, err);
		wbuf_clear(&req.op);
		return;
	}
	switch (req.cmd) {
	case CTL_CMD_STATUS:
		cmd_status(c, (json_int_t)req.id);
		break;
	case CTL_CMD_PEERS:
		cmd_peers(c, (json_int_t)req.id);
		break;
	case CTL_CMD_OP:
		cmd_op(c, (json_int_t)req.id, &req.op);
		break;
	case CTL_CMD_RESTART:
	case CTL_CMD_STOP:
		cmd_node(c, (json_int_t)req.id, req.cmd, req.node);
		break;
	case CTL_CMD_SHUTDOWN:
		send_json(c, reply_new((json_int_t)req.id, true));
		pbftd_shutdown(c->s->d);
		break;
	}
	wbuf_clear(&req.op);
}

/* ---- connections ------------------------------------------------------- */

static void
client_close(struct ctl_client *c)
{
	struct ev_loop *loop = c->s->d->loop;

	if (c->fd == -1)
		return;
	ev_io_stop(loop, &c->rd);
	ev_io_stop(loop, &c->wr);
	ev_timer_stop(loop, &c->idle);
	close(c->fd);
	c->fd = -1;
	c->gen = ++c->s->next_gen;
	wbuf_clear(&c->in);
	wbuf_clear(&c->out);
}

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	char *nl;
	ssize_t r;

	(void)revents;
	if (wbuf_reserve(&c->in, 4096) == -1) {
		send_error(c, 0, "request line too long");
		c->closing = true;
		ev_io_stop(loop, &c->rd);
		return;
	}
	r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
	if (r == 0 || (r == -1 && errno != EAGAIN && errno != EINTR)) {
		/* Half-closed: answer what is pending, then close. */
		c->closing = true;
		ev_io_stop(loop, &c->rd);
		maybe_close(c);
		return;
	}
	if (r < 0)
		return;
	c->in.len += (size_t)r;
	ev_timer_again(loop, &c->idle);
	while (c->fd != -1 && (nl = memchr(c->in.p, '\n', c->in.len)) != NULL) {
		size_t n = (size_t)(nl - (char *)c->in.p);

		handle_line(c, (const char *)c->in.p, n);
		if (c->fd == -1)
			return;
		memmove(c->in.p, nl + 1, c->in.len - n - 1);
		c->in.len -= n + 1;
	}
}

static void
client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	ssize_t r;

	(void)revents;
	r = write(c->fd, c->out.p, c->out.len);
	if (r == -1) {
		if (errno != EAGAIN && errno != EINTR)
			client_close(c);
		return;
	}
	memmove(c->out.p, c->out.p + r, c->out.len - (size_t)r);
	c->out.len -= (size_t)r;
	if (c->out.len == 0) {
		ev_io_stop(loop, w);
		maybe_close(c);
	}
}

/* Idle: nothing read for CTL_IDLE_S and no answer owed. A client waiting
 * for a request in flight (its own deadline bounds that) is not idle. */
static void
client_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_client *c = w->data;

	(void)revents;
	if (c->waiting > 0) {
		ev_timer_again(loop, w);
		return;
	}
	client_close(c);
}

static bool
peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return false;
	/* Root, our own user, and anyone the socket's mode (0660) lets in
	 * through its group. */
	return cred.uid == 0 || cred.uid == getuid() || cred.gid == getgid();
}

static void
accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_server *s = w->data;
	struct ctl_client *c = NULL;
	int fd;

	(void)revents;
	fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1)
		return;
	for (int i = 0; i < CTL_CLIENTS_MAX && c == NULL; i++)
		if (s->clients[i].fd == -1)
			c = &s->clients[i];
	if (c == NULL || !peer_allowed(fd)) {
		const char *msg = c == NULL
		    ? "{\"v\":1,\"id\":0,\"ok\":false,\"error\":\"too many "
		      "control clients\"}\n"
		    : "{\"v\":1,\"id\":0,\"ok\":false,\"error\":\"permission "
		      "denied\"}\n";

		if (write(fd, msg, strlen(msg)) < 0)
			log_debug("control: could not send refusal");
		close(fd);
		return;
	}
	c->fd = fd;
	c->closing = false;
	c->status_busy = false;
	c->waiting = 0;
	wbuf_init_dynamic(&c->in, CTL_LINE_MAX + 4096);
	wbuf_init_dynamic(&c->out, CTL_OUT_MAX + CTL_LINE_MAX);
	ev_io_init(&c->rd, client_read_cb, fd, EV_READ);
	ev_io_init(&c->wr, client_write_cb, fd, EV_WRITE);
	ev_init(&c->idle, client_idle_cb);
	c->idle.repeat = CTL_IDLE_S;
	c->rd.data = c->wr.data = c->idle.data = c;
	ev_io_start(loop, &c->rd);
	ev_timer_again(loop, &c->idle);
}

/*
 * A stale socket file from an earlier pbftd is removed; anything else at the
 * path (a regular file, a symlink, a directory, another user's socket) may
 * have been planted by someone who wants us to delete or chmod a file of
 * their choosing, so it is left alone and the start fails.
 */
static int
ctl_remove_stale(const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (lstat(path, &sb) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "control socket %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(sb.st_mode) || sb.st_uid != geteuid()) {
		snprintf(err, errlen,
		    "control socket %s: exists and is not a socket of ours "
		    "(uid %lu, mode %06o): not removing it",
		    path, (unsigned long)sb.st_uid, (unsigned)sb.st_mode);
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "control socket %s: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The socket file gets mode 0660 from the umask at bind, atomically: an
 * fchmod on the socket descriptor changes the socket's own inode, not the
 * file bind creates, and a chmod(path) after bind would follow a symlink
 * that someone able to write the directory swapped in meanwhile.
 */
static int
ctl_listen(struct ctl_server *s, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat sb;
	mode_t old;
	int rc;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd == -1)
		goto fail;
	old = umask(0117);
	rc = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc == -1 || lstat(path, &sb) == -1 || listen(s->fd, 16) == -1)
		goto fail;
	s->sock_dev = sb.st_dev;
	s->sock_ino = sb.st_ino;
	return 0;
fail:
	snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
	if (s->fd != -1)
		close(s->fd);
	return -1;
}

struct ctl_server *
ctl_server_new(struct pbftd *d, char *err, size_t errlen)
{
	struct ctl_server *s = calloc(1, sizeof(*s));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = d->cfg->control_socket;
	int probe;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->d = d;
	for (int i = 0; i < CTL_CLIENTS_MAX; i++) {
		s->clients[i].fd = -1;
		s->clients[i].s = s;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* A socket that answers belongs to a running pbftd: refuse. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe != -1 &&
	    connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		snprintf(err, errlen,
		    "%s: another pbftd is already serving this socket", path);
		free(s);
		return NULL;
	}
	if (probe != -1)
		close(probe);
	if (ctl_remove_stale(path, err, errlen) == -1 ||
	    ctl_listen(s, path, err, errlen) == -1) {
		free(s);
		return NULL;
	}
	ev_io_init(&s->accept, accept_cb, s->fd, EV_READ);
	s->accept.data = s;
	ev_io_start(d->loop, &s->accept);
	return s;
}

void
ctl_server_free(struct ctl_server *s)
{
	struct stat sb;

	if (s == NULL)
		return;
	while (s->status != NULL) {
		struct status_job *j = s->status;

		s->status = j->next;
		ev_timer_stop(s->d->loop, &j->timeout);
		j->done(j->arg, error_reply("pbftd is stopping"),
		    CTL_ERR_UNAVAILABLE);
		free(j);
	}
	for (int i = 0; i < CTL_CLIENTS_MAX; i++)
		client_close(&s->clients[i]);
	ev_io_stop(s->d->loop, &s->accept);
	close(s->fd);
	/* Only the socket we made: not what another user put in its place. */
	if (lstat(s->d->cfg->control_socket, &sb) == 0 &&
	    S_ISSOCK(sb.st_mode) && sb.st_dev == s->sock_dev &&
	    sb.st_ino == s->sock_ino)
		unlink(s->d->cfg->control_socket);
	free(s);
}
