/*
 * main.c - pbftd: the pbft supervisor daemon.
 *
 *     pbftd -c cluster.ini [-t] [-d] [-D [-p PIDFILE]] [--nodes LIST]
 *           [--replica-bin PATH]
 *
 * Foreground by default (what systemd wants); -D daemonizes. SIGTERM and
 * SIGINT stop every replica (SIGTERM, then SIGKILL after 5 s) and exit 0;
 * SIGHUP reopens the log file (-L) and is passed on to the replicas, which
 * reopen theirs; without -L logs go to stderr and there is nothing to do.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "pbft_build.h"
#include "pbftd.h"
#include "sig.h"

#define GRACE_S 5.0

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbftd -c FILE [-t] [-d] [-D [-p PIDFILE]] [--nodes LIST]\n"
	    "             [-s SOCKET] [--client NAME] [--replica-bin PATH]\n"
	    "             [--listen ID=HOST:PORT]... [-L LOGFILE]\n"
	    "\n"
	    "Supervises the pbft replicas of this host: starts one "
	    "pbft-replica per\nnode, restarts crashed ones, serves the control "
	    "socket of cluster.ini.\n"
	    "\n"
	    "  -c, --config FILE      cluster configuration\n"
	    "  -t, --test             check the configuration and the keys of "
	    "the\n"
	    "                         local nodes, print 'configuration OK', "
	    "exit 0 or 2\n"
	    "  -n, --nodes LIST       run only these node ids (e.g. 0,2); "
	    "default all;\n"
	    "                         '' runs none: a client-only pbftd, "
	    "how an\n"
	    "                         application host reaches a cluster run "
	    "elsewhere\n"
	    "                         (its control socket submits through "
	    "--client)\n"
	    "  -s, --socket PATH      control socket (default: control_socket "
	    "of FILE);\n"
	    "                         lets two pbftd share one host\n"
	    "      --client NAME      the [client.NAME] identity pbftd uses "
	    "(default:\n"
	    "                         control_client); one per pbftd\n"
	    "  -l, --listen ID=H:P    address of local node ID when its "
	    "[node.ID]\n"
	    "                         gives none (it announces it, signed, "
	    "through\n"
	    "                         the bootstrap peer); repeatable\n"
	    "  -L, --log-file FILE    append pbftd's and the replicas' logs to "
	    "FILE\n"
	    "                         (mode 0640; SIGHUP reopens it); default "
	    "stderr\n"
	    "  -d, --debug            debug logging, also for the replicas\n"
	    "  -D, --daemon           detach from the terminal\n"
	    "  -p, --pidfile FILE     with -D: write the pid here\n"
	    "      --replica-bin PATH the pbft-replica program (default: next "
	    "to pbftd,\n"
	    "                         else $PBFT_REPLICA_BIN, else the "
	    "installed one)\n"
	    "  -h, --help             this text;  -V, --version\n");
}

/* --listen ID=HOST:PORT: the address of a node the file gives none. */
static int
set_listen(struct pbftd *d, const char *arg, char *err, size_t errlen)
{
	char *end;
	unsigned long id = strtoul(arg, &end, 10);
	struct cfg_node *node;

	if (end == arg || *end != '=' || id >= d->cfg->n) {
		snprintf(err, errlen,
		    "pbftd: --listen wants ID=HOST:PORT with a node id of "
		    "%s, got '%s'",
		    d->config_path, arg);
		return -1;
	}
	node = &d->cfg->nodes[id];
	if (node->has_address) {
		snprintf(err, errlen,
		    "pbftd: --listen %s: [node.%lu] already has an address",
		    arg, id);
		return -1;
	}
	if (cfg_parse_address(
	        end + 1, node->host, sizeof(node->host), &node->port) == -1) {
		snprintf(err, errlen, "pbftd: --listen %s: bad HOST:PORT", arg);
		return -1;
	}
	node->has_address = true;
	node->announce = true;
	return 0;
}

static int
parse_nodes(struct pbftd *d, const char *list, char *err, size_t errlen)
{
	char buf[512], *save = NULL, *end;

	snprintf(buf, sizeof(buf), "%s", list);
	for (uint32_t i = 0; i < d->cfg->n; i++)
		d->children[i].local = false;
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		unsigned long id = strtoul(t, &end, 10);

		if (*end || end == t || id >= d->cfg->n) {
			snprintf(err, errlen,
			    "--nodes: '%s' is not a node id of %s (0..%u)", t,
			    d->config_path, d->cfg->n - 1);
			return -1;
		}
		d->children[id].local = true;
	}
	return 0;
}

static void
find_replica_bin(struct pbftd *d, const char *opt)
{
	char self[PATH_MAX], *dir;
	ssize_t n;
	const char *env = getenv("PBFT_REPLICA_BIN");

	if (opt != NULL) {
		snprintf(d->replica_bin, sizeof(d->replica_bin), "%s", opt);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		dir = dirname(self);
		/* In a build tree pbftd sits in pbftd/, the replica in
		 * pbft-replica/; installed, both are in one directory. */
		snprintf(d->replica_bin, sizeof(d->replica_bin),
		    "%.2000s/../pbft-replica/pbft-replica", dir);
		if (access(d->replica_bin, X_OK) == 0)
			return;
		snprintf(d->replica_bin, sizeof(d->replica_bin),
		    "%.2000s/pbft-replica", dir);
		if (access(d->replica_bin, X_OK) == 0)
			return;
	}
	if (env != NULL) {
		snprintf(d->replica_bin, sizeof(d->replica_bin), "%s", env);
		return;
	}
	snprintf(d->replica_bin, sizeof(d->replica_bin), "%s/pbft-replica",
	    PBFT_BINDIR);
}

/* Checks the keys of every local node (and pbftd's own client key). */
static int
check_keys(struct pbftd *d, char *err, size_t errlen)
{
	void *k;

	for (uint32_t i = 0; i < d->cfg->n; i++) {
		if (!d->children[i].local)
			continue;
		if (cfg_load_node_key(d->cfg, i, &k, err, errlen) == -1)
			return -1;
		sig_key_free(k);
	}
	/* pbftd's own client identity, when it has a key here. */
	if (d->cfg->control_client[0] != '\0') {
		const struct cfg_client *cl =
		    cfg_client_by_name(d->cfg, d->cfg->control_client);

		if (cl != NULL && cl->private_key_file[0] != '\0') {
			if (cfg_load_client_key(
			        d->cfg, cl->id, &k, err, errlen) == -1)
				return -1;
			sig_key_free(k);
		}
	}
	return 0;
}

static void
start_client(struct pbftd *d)
{
	const struct cfg_client *cl;
	struct pbft_client_opts o = {.cfg = d->cfg};
	char err[CFG_ERR_LEN];

	if (d->cfg->control_client[0] == '\0' ||
	    (cl = cfg_client_by_name(d->cfg, d->cfg->control_client)) == NULL) {
		log_warnx("no control_client configured: submit, put, get and "
		          "del are unavailable");
		return;
	}
	o.client_id = cl->id;
	if (cfg_load_client_key(d->cfg, cl->id, &o.key, err, sizeof(err)) ==
	    -1) {
		log_warnx("%s: submit, put, get and del are unavailable", err);
		return;
	}
	if ((d->client = pbft_client_new(d->loop, &o, err, sizeof(err))) ==
	    NULL)
		log_warnx("cluster client: %s", err);
}

/* What the HTTP keys name (files, address), checked before the start. */
static int
check_http(const struct pbftd *d, char *err, size_t errlen)
{
#if PBFT_HAVE_MHD
	return http_check(d->cfg, err, errlen);
#else
	if (d->cfg->http_listen[0] == '\0')
		return 0;
	snprintf(
	    err, errlen, "http_listen: pbftd was built without libmicrohttpd");
	return -1;
#endif
}

/* The HTTP API and /metrics: http.c, or metrics.c's own small server. */
static int
start_http(struct pbftd *d, char *err, size_t errlen)
{
#if PBFT_HAVE_MHD
	d->http = http_new(d, err, errlen);
	return d->http == NULL && err[0] != '\0' ? -1 : 0;
#else
	d->metrics = metrics_new(d, err, errlen);
	return d->metrics == NULL && d->cfg->metrics_listen[0] != '\0' ? -1 : 0;
#endif
}

static void
grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pbftd *d = w->data;

	(void)revents;
	for (uint32_t i = 0; i < d->cfg->n; i++)
		if (d->children[i].pid > 0) {
			log_warnx("node %u: still running after %.0f s: "
			          "SIGKILL",
			    i, GRACE_S);
			kill(d->children[i].pid, SIGKILL);
		}
	(void)loop;
}

void
pbftd_shutdown(struct pbftd *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("stopping the replicas");
	for (uint32_t i = 0; i < d->cfg->n; i++)
		child_stop(&d->children[i], SIGTERM);
	if (children_all_exited(d)) {
		ev_break(d->loop, EVBREAK_ALL);
		return;
	}
	ev_timer_init(&d->grace, grace_cb, GRACE_S, 0);
	d->grace.data = d;
	ev_timer_start(d->loop, &d->grace);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct pbftd *d = w->data;

	(void)loop;
	(void)revents;
	if (w->signum == SIGHUP) {
		if (d->log_file == NULL) {
			log_info(
			    "SIGHUP: logs go to stderr; nothing to reopen");
			return;
		}
		if (log_file_reopen() == 0)
			log_info("SIGHUP: reopened %s", d->log_file);
		for (uint32_t i = 0; i < d->cfg->n; i++)
			if (d->children[i].pid > 0)
				kill(d->children[i].pid, SIGHUP);
		return;
	}
	log_info("signal %d", w->signum);
	pbftd_shutdown(d);
}

static int
daemonize(const char *pidfile)
{
	pid_t pid = fork();
	FILE *f;
	int fd;

	if (pid == -1)
		return -1;
	if (pid > 0)
		_exit(0);
	setsid();
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > 2)
			close(fd);
	}
	if (pidfile != NULL) {
		if ((f = fopen(pidfile, "w")) == NULL)
			return -1;
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	return 0;
}

/* Tells systemd (if it started us) how we are doing; no library needed. */
static void
notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (path == NULL || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	(void)sendto(
	    fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
}

/*
 * Tells systemd whether the cluster can serve (ready.c): READY=1 the first
 * time it can, STATUS= every poll. Until READY=1 it also extends the start
 * timeout by a few polls, so that a host waiting for the others is not
 * killed as failing to start while a pbftd that stops polling still is.
 */
static void
tell_readiness(struct pbftd *d, const struct ready *r, const char *progress)
{
	char msg[sizeof(r->text) + 200];

	if (r->ok != d->serving)
		log_info(
		    "%s", r->ok ? "ready: the cluster can serve" : r->text);
	d->serving = r->ok;
	if (r->ok && !d->ready) {
		d->ready = true;
		snprintf(
		    msg, sizeof(msg), "READY=1\nSTATUS=ready; %s", progress);
	} else if (r->ok) {
		snprintf(msg, sizeof(msg), "STATUS=ready; %s", progress);
	} else {
		snprintf(msg, sizeof(msg), "STATUS=%s%s", r->text,
		    d->ready ? "" : "\nEXTEND_TIMEOUT_USEC=5000000");
	}
	notify(msg);
}

/*
 * Keeps every local replica's status fresh for metrics, status and
 * readiness: every 0.2 s until the cluster can serve, then every second.
 */
static void
poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pbftd *d = w->data;
	uint32_t local = 0, up = 0;
	long long view = -1, exec = -1;
	char progress[160];
	struct ready r;

	(void)revents;
	for (uint32_t i = 0; i < d->cfg->n; i++) {
		struct child *c = &d->children[i];

		child_ask_status(c);
		if (!c->local)
			continue;
		local++;
		if (c->state == CHILD_RUNNING && c->status != NULL &&
		    ev_now(loop) - c->status_at < 3.0) {
			up++;
			view = json_integer_value(
			    json_object_get(c->status, "view"));
			exec = json_integer_value(
			    json_object_get(c->status, "last_executed"));
		}
	}
	ready_judge(d, &r);
	snprintf(progress, sizeof(progress),
	    "%u of %u replicas up; view %lld, last executed %lld", up, local,
	    view, exec);
	tell_readiness(d, &r, progress);
	w->repeat = r.ok ? 1.0 : 0.2;
	ev_timer_again(loop, w);
}

static void
watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	notify("WATCHDOG=1");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"config", required_argument, 0, 'c'},
	    {"test", no_argument, 0, 't'}, {"nodes", required_argument, 0, 'n'},
	    {"debug", no_argument, 0, 'd'}, {"daemon", no_argument, 0, 'D'},
	    {"pidfile", required_argument, 0, 'p'},
	    {"replica-bin", required_argument, 0, 'R'},
	    {"socket", required_argument, 0, 's'},
	    {"client", required_argument, 0, 'C'},
	    {"listen", required_argument, 0, 'l'},
	    {"log-file", required_argument, 0, 'L'},
	    {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'},
	    {0, 0, 0, 0}};
	static struct pbftd d;
	const char *nodes = NULL, *pidfile = NULL, *bin = NULL, *wd;
	const char *sock = NULL, *client = NULL, *listens[PBFT_REPLICAS_MAX];
	int nlistens = 0;
	bool test = false, daemon = false;
	char err[CFG_ERR_LEN], status[128];
	ev_signal sigs[4];
	ev_timer watchdog;
	int ch, nsig = 0;
	static const int signums[] = {SIGTERM, SIGINT, SIGHUP};

	while ((ch = getopt_long(argc, argv, "c:tn:dDp:s:l:L:hV", lo, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			d.config_path = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'n':
			nodes = optarg;
			break;
		case 'd':
			d.debug = true;
			break;
		case 'D':
			daemon = true;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 'R':
			bin = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'C':
			client = optarg;
			break;
		case 'L':
			d.log_file = optarg;
			break;
		case 'l':
			if (nlistens == PBFT_REPLICAS_MAX) {
				fprintf(stderr, "pbftd: too many --listen\n");
				return 2;
			}
			listens[nlistens++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("pbftd %s\n", PBFT_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (d.config_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("pbftd", d.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	log_level_from_env();
	if ((d.cfg = cfg_load(d.config_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (sock != NULL) {
		if (strlen(sock) >= 108) {
			fprintf(stderr, "pbftd: --socket path too long\n");
			return 2;
		}
		snprintf(d.cfg->control_socket, sizeof(d.cfg->control_socket),
		    "%s", sock);
	}
	if (client != NULL) {
		if (cfg_client_by_name(d.cfg, client) == NULL) {
			fprintf(stderr,
			    "pbftd: --client: %s has no [client.%s]\n",
			    d.config_path, client);
			return 2;
		}
		snprintf(d.cfg->control_client, sizeof(d.cfg->control_client),
		    "%s", client);
	}
	for (int i = 0; i < nlistens; i++)
		if (set_listen(&d, listens[i], err, sizeof(err)) == -1) {
			fprintf(stderr, "%s\n", err);
			cfg_free(d.cfg);
			return 2;
		}
	if (!d.debug)
		log_set_level(d.cfg->log_level);
	log_level_from_env();
	for (uint32_t i = 0; i < d.cfg->n; i++) {
		child_init(&d, &d.children[i], i);
		d.children[i].local = true;
	}
	if ((nodes != NULL && parse_nodes(&d, nodes, err, sizeof(err)) == -1) ||
	    check_keys(&d, err, sizeof(err)) == -1 ||
	    check_http(&d, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		cfg_free(d.cfg);
		return 2;
	}
	for (uint32_t i = 0; i < d.cfg->n; i++)
		if (d.children[i].local && !d.cfg->nodes[i].has_address) {
			fprintf(stderr,
			    "%s: [node.%u] has no address: give it with "
			    "--listen %u=HOST:PORT, or leave it to another "
			    "host with --nodes\n",
			    d.config_path, i, i);
			cfg_free(d.cfg);
			return 2;
		}
	if (test) {
		printf("configuration OK\n");
		cfg_free(d.cfg);
		return 0;
	}
	find_replica_bin(&d, bin);
	if (access(d.replica_bin, X_OK) == -1) {
		fprintf(stderr,
		    "pbftd: cannot run %s: %s (see --replica-bin)\n",
		    d.replica_bin, strerror(errno));
		return 2;
	}
	if (d.log_file != NULL) {
		static char abs_log[CFG_PATH_MAX];

		/* Absolute, so replicas and reopens find it after a chdir. */
		if (d.log_file[0] != '/' &&
		    getcwd(abs_log, sizeof(abs_log) - strlen(d.log_file) - 2) !=
		        NULL) {
			size_t l = strlen(abs_log);

			snprintf(abs_log + l, sizeof(abs_log) - l, "/%s",
			    d.log_file);
			d.log_file = abs_log;
		}
		if (log_file_open(d.log_file, err, sizeof(err)) == -1) {
			fprintf(stderr, "pbftd: --log-file %s\n", err);
			return 2;
		}
	}
	if (daemon && daemonize(pidfile) == -1)
		fatal("daemonize");
	signal(SIGPIPE, SIG_IGN);
	d.loop = ev_default_loop(EVFLAG_AUTO);
	if ((d.ctl = ctl_server_new(&d, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (start_http(&d, err, sizeof(err)) == -1)
		fatalx("%s", err);
	d.started = ev_now(d.loop);
	ev_timer_init(&d.poll, poll_cb, 0.2, 1.0);
	d.poll.data = &d;
	ev_timer_start(d.loop, &d.poll);
	for (size_t i = 0; i < sizeof(signums) / sizeof(signums[0]); i++) {
		ev_signal_init(&sigs[nsig], signal_cb, signums[i]);
		sigs[nsig].data = &d;
		ev_signal_start(d.loop, &sigs[nsig++]);
	}
	for (uint32_t i = 0; i < d.cfg->n; i++)
		if (d.children[i].local && child_start(&d.children[i]) == -1)
			fatalx("cannot start node %u", i);
	start_client(&d);
	log_info("cluster %s: n = %u, f = %u; control socket %s", d.cfg->name,
	    d.cfg->n, d.cfg->f, d.cfg->control_socket);
	snprintf(
	    status, sizeof(status), "STATUS=starting %u replicas", d.cfg->n);
	notify(status);
	if ((wd = getenv("WATCHDOG_USEC")) != NULL &&
	    strtol(wd, NULL, 10) > 0) {
		ev_timer_init(&watchdog, watchdog_cb, 0,
		    (double)strtol(wd, NULL, 10) / 2e6);
		ev_timer_again(d.loop, &watchdog);
	}
	ev_run(d.loop, 0);
	notify("STOPPING=1");
	pbft_client_free(d.client);
	ev_timer_stop(d.loop, &d.poll);
	ctl_server_free(d.ctl);
#if PBFT_HAVE_MHD
	http_free(d.http); /* after the jobs the two above ended */
#else
	metrics_free(d.metrics);
#endif
	for (uint32_t i = 0; i < d.cfg->n; i++)
		child_free_status(&d.children[i]);
	cfg_free(d.cfg);
	log_info("stopped");
	return 0;
}
