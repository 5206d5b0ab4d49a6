/*
 * pbftd.h - shared state of the supervisor daemon.
 *
 * pbftd validates cluster.ini, starts one pbft-replica per local node
 * (child.c), restarts the ones that die, and serves the control socket
 * (control.c). It takes no protocol decisions and never blocks on one
 * replica or one client.
 */
#ifndef PBFTD_H
#define PBFTD_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cfg.h"
#include "client.h"
#include "sup_proto.h"

struct json_t;

enum child_state {
	CHILD_STOPPED = 0, /* not running, not to be restarted */
	CHILD_RUNNING,
	CHILD_BACKOFF, /* died; restart scheduled */
	CHILD_FAILED, /* crash loop, or its data unreadable: given up until
	                 `restart NODE` */
};

struct child {
	struct pbftd *d;
	uint32_t id;
	bool local; /* this host runs it */
	enum child_state state;
	pid_t pid;
	int sup_fd; /* our end of the supervisor link */
	ev_child watcher;
	ev_timer restart;
	uint32_t restarts;
	double backoff_s;
	double started_at;
	double exits[8]; /* recent exit times, for crash-loop detection */
	uint32_t nexits;
	/* The replica's answers on the supervisor link ("S" -> one line). */
	ev_io sup_rd;
	char sup_buf[SUP_LINE_MAX + 1]; /* a line and its NUL */
	size_t sup_len;
	struct json_t *status; /* latest answer, NULL if none from this pid */
	double status_at; /* when it arrived */
	uint64_t answers; /* answers so far (all pids) */
	/* Why the last run ended, as the replica said ({"failed": ...});
	 * empty while it runs. */
	char reason[512];
};

struct pbftd {
	struct ev_loop *loop;
	struct cluster_cfg *cfg;
	const char *config_path;
	char replica_bin[CFG_PATH_MAX];
	bool debug;
	bool stopping;
	struct child children[PBFT_REPLICAS_MAX];
	ev_timer grace;
	struct pbft_client *client; /* pbftd's own identity in the cluster */
	struct ctl_server *ctl;
	struct metrics *metrics; /* metrics_listen without libmicrohttpd */
	struct http *http; /* http_listen and metrics_listen (http.c) */
	ev_timer poll; /* asks every replica for its status each second */
	const char *log_file; /* -L, reopened on SIGHUP; NULL: stderr */
	bool ready; /* told systemd READY=1 */
	bool serving; /* readiness at the last poll (ready.c) */
	double started;
};

/* child.c */
void child_init(struct pbftd *d, struct child *c, uint32_t id);
int child_start(struct child *c);
void child_stop(struct child *c, int sig);
void child_restart_now(struct child *c);
const char *child_state_name(enum child_state s);
bool children_all_exited(const struct pbftd *d);
/* Asks a running replica for its status; the answer lands in c->status
 * and ctl_status_arrived() is told. */
void child_ask_status(struct child *c);
void child_free_status(struct child *c);

/* control.c */
struct ctl_server *ctl_server_new(struct pbftd *d, char *err, size_t errlen);
void ctl_server_free(struct ctl_server *s);
void ctl_status_arrived(struct ctl_server *s);

/*
 * The requests the control socket and the HTTP API share. Each ends in
 * exactly one call of done, perhaps before the call returns, with the
 * control protocol's reply object ("ok", then the command's fields or
 * "error"; "id" is 0), which done owns, and what kind of failure it is.
 */
enum ctl_err {
	CTL_OK = 0,
	CTL_ERR_BAD, /* the service could not take the operation */
	CTL_ERR_NOT_FOUND, /* get or del of an absent key */
	CTL_ERR_DENIED, /* the service refused this client (owner, quota) */
	CTL_ERR_UNAVAILABLE, /* no client identity, too busy, stopping */
	CTL_ERR_TIMEOUT, /* no f+1 matching replies in time */
};
struct wbuf;
typedef void (*ctl_done_cb)(void *arg, struct json_t *rep, enum ctl_err err);
/* Status of every replica; -1 (done not called) when out of memory. */
int ctl_run_status(struct ctl_server *s, ctl_done_cb done, void *arg);
/* An encoded operation (submit, put, get, del) through pbftd's client. */
void ctl_run_op(
    struct ctl_server *s, const struct wbuf *op, ctl_done_cb done, void *arg);
/* The peers reply, at once. */
struct json_t *ctl_peers_reply(struct pbftd *d);

/* ready.c: whether the cluster can serve, as far as pbftd can see. */
struct ready {
	bool ok;
	uint32_t quorum; /* 2f+1 */
	uint32_t meshed; /* local replicas with channels to 2f peers */
	uint32_t meshed_needed; /* 2f+1 of them, or all when fewer run */
	uint32_t client_connected; /* replicas pbftd's client reaches */
	uint32_t client_needed; /* 2f+1; 0 without a client identity */
	char text[512]; /* "ready", or "waiting for ..." naming what */
};
void ready_judge(const struct pbftd *d, struct ready *r);
/* Adds "ready" (bool) and "readiness" (the text) to a status reply. */
void ready_status_json(const struct pbftd *d, struct json_t *rep);

/* metrics.c: Prometheus text format; served by http.c, or over HTTP on
 * metrics_listen by metrics.c itself in a build without libmicrohttpd. */
struct wbuf;
void metrics_render(struct pbftd *d, struct wbuf *w);
struct metrics *metrics_new(struct pbftd *d, char *err, size_t errlen);
void metrics_free(struct metrics *m);

void pbftd_shutdown(struct pbftd *d);

#endif
