/*
 * child.c - starting, watching and restarting replica processes.
 *
 * Each replica gets one end of a socketpair as fd 3, the supervisor link
 * whose messages sup_proto.h declares; when pbftd dies the replica sees
 * end-of-file there and exits, and PR_SET_PDEATHSIG backs that up. A replica
 * that dies after running for a while is restarted at once (0.1 s: a whole
 * cluster killed together is back before the clients' first retransmission),
 * then after a backoff that doubles from 1 s to 60 s; more than 5 exits within
 * 60 s is a crash loop and the node is marked failed until an operator restarts
 * it. A replica that refused to start because it could not read its data (exit
 * status FAILSTOP_UNREADABLE, sup_proto.h) is marked failed at once: restarting
 * it cannot help until someone looks at the disk. The reason a replica
 * sends before such an exit is kept and shown by `pbftctl status`.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "pbftd.h"
#include "sup_proto.h"

#define BACKOFF_FIRST_S 0.1
#define BACKOFF_MIN_S 1.0
#define BACKOFF_MAX_S 60.0
#define CRASH_WINDOW_S 60.0
#define CRASH_LIMIT 5

const char *
child_state_name(enum child_state s)
{
	static const char *names[] = {
	    "stopped", "running", "restarting", "failed"};

	return names[s];
}

static void
child_exec(struct child *c, int fd)
{
	char id[16], listen[300];
	const char *argv[12];
	const struct cfg_node *node = &c->d->cfg->nodes[c->id];
	int i = 0;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (dup2(fd, SUP_FD) == -1)
		_exit(127);
	if (fd != SUP_FD)
		close(fd);
	snprintf(id, sizeof(id), "%u", c->id);
	argv[i++] = c->d->replica_bin;
	argv[i++] = "-c";
	argv[i++] = c->d->cfg->path;
	argv[i++] = "-i";
	argv[i++] = id;
	if (node->announce) {
		cfg_format_address(
		    node->host, node->port, listen, sizeof(listen));
		argv[i++] = "--listen";
		argv[i++] = listen;
	}
	if (c->d->log_file != NULL) {
		argv[i++] = "--log-file";
		argv[i++] = c->d->log_file;
	}
	if (c->d->debug)
		argv[i++] = "-d";
	argv[i] = NULL;
	execv(c->d->replica_bin, (char *const *)(uintptr_t)argv);
	fprintf(
	    stderr, "pbftd: exec %s: %s\n", c->d->replica_bin, strerror(errno));
	_exit(127);
}

static void child_exit_cb(struct ev_loop *loop, ev_child *w, int revents);

void
child_free_status(struct child *c)
{
	json_decref(c->status);
	c->status = NULL;
}

/* One line from the replica (sup_proto.h): SUP_MSG_STATUS, or its last
 * word, SUP_MSG_FAILED. */
static void
sup_line(struct child *c, const char *line)
{
	json_t *j = json_loads(line, 0, NULL);
	const char *failed;

	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		log_warnx("node %u: unreadable status line", c->id);
		return;
	}
	failed = json_string_value(json_object_get(j, SUP_FAILED_KEY));
	if (failed != NULL) {
		snprintf(c->reason, sizeof(c->reason), "%s", failed);
		json_decref(j);
		return;
	}
	child_free_status(c);
	c->status = j;
	c->status_at = ev_now(c->d->loop);
	c->answers++;
}

/* Reads what the replica sent; false at end-of-file or error. */
static bool
sup_drain(struct child *c)
{
	ssize_t r;
	char *nl;

	if (c->sup_len == sizeof(c->sup_buf) - 1)
		c->sup_len = 0; /* an overlong line: drop it */
	r = read(c->sup_fd, c->sup_buf + c->sup_len,
	    sizeof(c->sup_buf) - 1 - c->sup_len);
	if (r <= 0)
		return r == -1 && (errno == EAGAIN || errno == EINTR);
	c->sup_len += (size_t)r;
	c->sup_buf[c->sup_len] = '\0';
	while ((nl = strchr(c->sup_buf, '\n')) != NULL) {
		*nl = '\0';
		sup_line(c, c->sup_buf);
		c->sup_len -= (size_t)(nl + 1 - c->sup_buf);
		memmove(c->sup_buf, nl + 1, c->sup_len + 1);
	}
	return true;
}

/* Lines from the replica on the supervisor link. */
static void
sup_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct child *c = w->data;

	(void)revents;
	if (!sup_drain(c))
		ev_io_stop(loop, w); /* the exit callback cleans up */
	if (c->d->ctl != NULL)
		ctl_status_arrived(c->d->ctl);
}

void
child_ask_status(struct child *c)
{
	if (c->state != CHILD_RUNNING || c->sup_fd == -1)
		return;
	if (write(c->sup_fd, SUP_STATUS_REQ, strlen(SUP_STATUS_REQ)) !=
	    (ssize_t)strlen(SUP_STATUS_REQ))
		log_debug("node %u: supervisor link full", c->id);
}

int
child_start(struct child *c)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("node %u: socketpair", c->id);
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("node %u: fork", c->id);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		child_exec(c, sv[1]);
	}
	close(sv[1]);
	c->reason[0] = '\0';
	/* Never block on a replica: status reads are event-driven. */
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	c->sup_fd = sv[0];
	c->sup_len = 0;
	child_free_status(c);
	ev_io_set(&c->sup_rd, c->sup_fd, EV_READ);
	ev_io_start(c->d->loop, &c->sup_rd);
	c->pid = pid;
	c->state = CHILD_RUNNING;
	c->started_at = ev_now(c->d->loop);
	ev_child_set(&c->watcher, pid, 0);
	ev_child_start(c->d->loop, &c->watcher);
	log_info("node %u: started pbft-replica (pid %d)", c->id, (int)pid);
	return 0;
}

static void
restart_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct child *c = w->data;

	(void)loop;
	(void)revents;
	if (c->state != CHILD_BACKOFF || c->d->stopping)
		return;
	c->restarts++;
	if (child_start(c) == -1) {
		c->state = CHILD_BACKOFF;
		ev_timer_set(&c->restart, c->backoff_s, 0);
		ev_timer_start(c->d->loop, &c->restart);
	}
}

static bool
crash_loop(struct child *c, double now)
{
	uint32_t recent = 0;

	c->exits[c->nexits++ % 8] = now;
	for (uint32_t i = 0; i < 8 && i < c->nexits; i++)
		if (now - c->exits[i] <= CRASH_WINDOW_S)
			recent++;
	return recent > CRASH_LIMIT;
}

static void
child_exit_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct child *c = w->data;
	int st = w->rstatus;
	double now = ev_now(loop);

	(void)revents;
	ev_child_stop(loop, w);
	ev_io_stop(loop, &c->sup_rd);
	if (c->sup_fd != -1) {
		/* Its last word may still be unread. */
		for (int i = 0; i < 4 && sup_drain(c); i++)
			;
		close(c->sup_fd);
	}
	c->sup_fd = -1;
	child_free_status(c);
	if (WIFSIGNALED(st))
		log_warnx("node %u: pbft-replica (pid %d) killed by signal %d",
		    c->id, (int)c->pid, WTERMSIG(st));
	else
		log_info("node %u: pbft-replica (pid %d) exited with status %d",
		    c->id, (int)c->pid, WEXITSTATUS(st));
	c->pid = 0;
	if (c->d->stopping || c->state == CHILD_STOPPED) {
		c->state = CHILD_STOPPED;
		if (c->d->stopping && children_all_exited(c->d))
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (now - c->started_at > BACKOFF_MAX_S)
		c->backoff_s = BACKOFF_FIRST_S; /* it was healthy for a while */
	if (WIFEXITED(st) && WEXITSTATUS(st) == FAILSTOP_UNREADABLE) {
		c->state = CHILD_FAILED;
		if (c->reason[0] == '\0')
			snprintf(c->reason, sizeof(c->reason),
			    "its data could not be read (exit status %d)",
			    FAILSTOP_UNREADABLE);
		log_error("node %u: refused to start: %s; not restarting; "
		          "`pbftctl restart %u` retries",
		    c->id, c->reason, c->id);
		return;
	}
	if (crash_loop(c, now)) {
		c->state = CHILD_FAILED;
		if (c->reason[0] == '\0')
			snprintf(c->reason, sizeof(c->reason),
			    "crash loop: more than %d exits in %.0f s",
			    CRASH_LIMIT, CRASH_WINDOW_S);
		log_error("node %u: crash loop (more than %d exits in %.0f s): "
		          "not restarting; `pbftctl restart %u` retries",
		    c->id, CRASH_LIMIT, CRASH_WINDOW_S, c->id);
		return;
	}
	c->state = CHILD_BACKOFF;
	log_info("node %u: restarting in %.1f s", c->id, c->backoff_s);
	ev_timer_set(&c->restart, c->backoff_s, 0);
	ev_timer_start(loop, &c->restart);
	c->backoff_s = c->backoff_s < BACKOFF_MIN_S ? BACKOFF_MIN_S
	    : c->backoff_s * 2 > BACKOFF_MAX_S      ? BACKOFF_MAX_S
	                                            : c->backoff_s * 2;
}

void
child_init(struct pbftd *d, struct child *c, uint32_t id)
{
	memset(c, 0, sizeof(*c));
	c->d = d;
	c->id = id;
	c->sup_fd = -1;
	c->backoff_s = BACKOFF_FIRST_S;
	ev_init(&c->watcher, child_exit_cb);
	c->watcher.data = c;
	ev_init(&c->restart, restart_cb);
	c->restart.data = c;
	ev_init(&c->sup_rd, sup_read_cb);
	c->sup_rd.data = c;
}

void
child_stop(struct child *c, int sig)
{
	ev_timer_stop(c->d->loop, &c->restart);
	if (c->pid > 0) {
		kill(c->pid, sig);
		if (!c->d->stopping)
			c->state = CHILD_STOPPED;
	} else if (c->state != CHILD_STOPPED) {
		c->state = CHILD_STOPPED;
	}
}

void
child_restart_now(struct child *c)
{
	c->nexits = 0;
	c->backoff_s = BACKOFF_FIRST_S;
	if (c->pid > 0) {
		/* The exit callback schedules the restart. */
		c->state = CHILD_RUNNING;
		kill(c->pid, SIGTERM);
		return;
	}
	ev_timer_stop(c->d->loop, &c->restart);
	c->state = CHILD_BACKOFF;
	ev_timer_set(&c->restart, 0.01, 0);
	ev_timer_start(c->d->loop, &c->restart);
}

bool
children_all_exited(const struct pbftd *d)
{
	for (uint32_t i = 0; i < d->cfg->n; i++)
		if (d->children[i].pid > 0)
			return false;
	return true;
}
