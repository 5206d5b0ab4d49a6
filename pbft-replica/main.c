/*
 * main.c - pbft-replica: one replica of a pbft cluster.
 *
 *     pbft-replica -c cluster.ini -i ID [-l HOST:PORT] [-d]
 *     pbft-replica --dev -p PORT -i IDX -n N [-b HOST:PORT]... [-d]
 *
 * Normally started by pbftd, which passes its end of a socketpair as fd 3;
 * when fd 3 reaches end-of-file the supervisor is gone and the replica exits.
 * SIGTERM and SIGINT stop it cleanly.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "defaults.h"
#include "failstop.h"
#include "log.h"
#include "pbft_build.h"
#include "replica.h"
#include "sig.h"
#include "sup_proto.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbft-replica -c FILE -i ID [-l HOST:PORT] [-d]\n"
	    "       pbft-replica --dev -p PORT -i IDX -n N [-b HOST:PORT]... "
	    "[-d]\n"
	    "\n"
	    "Runs one replica of a pbft cluster (normally started by pbftd).\n"
	    "\n"
	    "  -c, --config FILE   cluster configuration (cluster.ini)\n"
	    "  -i, --id ID         this replica's node index\n"
	    "  -l, --listen H:P    this node's address, for a [node.N] that\n"
	    "                      gives none: it listens there and announces\n"
	    "                      it, signed, through the bootstrap peer\n"
	    "  -L, --log-file FILE append the log to FILE (SIGHUP reopens it)\n"
	    "  -d, --debug         log at debug level (also PBFT_LOG=debug)\n"
	    "      --dev           demo mode: keys derived from node indexes "
	    "(INSECURE)\n"
	    "  -p, --port PORT     --dev: this node's port on 127.0.0.1\n"
	    "  -n, --nodes N       --dev: number of nodes (node i listens on\n"
	    "                      PORT - IDX + i)\n"
	    "  -b, --bootstrap A   --dev: accepted for compatibility; ports "
	    "are\n"
	    "                      derived as above\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       print the version\n");
#if PBFT_FAULT_INJECTION
	fprintf(f,
	    "      --fault SPEC    misbehave on purpose, as PBFT_FAULTS "
	    "(see\n"
	    "                      pbft-replica/fault.h); this build "
	    "only\n");
#endif
}

static void
hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (log_file_reopen() == 0)
		log_info("SIGHUP: log file reopened");
}

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info("signal %d: stopping", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/*
 * The supervisor link (SUP_FD, sup_proto.h): each status request is
 * answered with one status line; end-of-file means pbftd is gone.
 */
static void
sup_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct replica *r = w->data;
	char buf[256], out[SUP_LINE_MAX];
	ssize_t n = read(w->fd, buf, sizeof(buf));
	size_t len;

	(void)revents;
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		log_info("supervisor went away: stopping");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	for (size_t k = sup_count_status_reqs(buf, n > 0 ? (size_t)n : 0);
	     k > 0; k--) {
		if (replica_status_json(r, out, sizeof(out)) == -1 ||
		    (len = sup_status_line(out, strlen(out), sizeof(out))) == 0)
			continue;
		if (write(w->fd, out, len) != (ssize_t)len)
			log_debug("supervisor link: short write");
	}
}

/*
 * The data directory of a --dev replica: a new one per start, made by
 * mkdtemp (mode 0700, a name nobody can guess), under $TMPDIR or /tmp. A
 * name fixed by the port would let another local user create it first and
 * own what the replica writes there.
 */
static void
dev_data_dir(struct cluster_cfg *c, uint16_t port)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	if ((size_t)snprintf(c->data_dir, sizeof(c->data_dir),
	        "%s/pbft-dev-%u-XXXXXX", tmp,
	        (unsigned)port) >= sizeof(c->data_dir) ||
	    mkdtemp(c->data_dir) == NULL)
		fatal("--dev: cannot make a data directory under %s", tmp);
	log_info("--dev: data in %s (remove it when done)", c->data_dir);
}

/* A cluster of n nodes on 127.0.0.1 with keys anyone can derive. */
static struct cluster_cfg *
dev_config(uint32_t n, uint16_t base_port, uint16_t port)
{
	struct cluster_cfg *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->clients = calloc(1, sizeof(*c->clients))) == NULL)
		fatalx("out of memory");
	cfg_defaults(c);
	snprintf(c->name, sizeof(c->name), "dev");
	c->n = n;
	c->f = (n - 1) / 3;
	c->window = PBFT_DEFAULT_WINDOW;
	c->view_change_timeout_ms = 2000;
	c->bootstrap_id = UINT32_MAX;
	dev_data_dir(c, port);
	for (uint32_t i = 0; i < n; i++) {
		void *k = sig_dev_key(i);

		c->nodes[i].id = i;
		snprintf(
		    c->nodes[i].host, sizeof(c->nodes[i].host), "127.0.0.1");
		c->nodes[i].port = (uint16_t)(base_port + i);
		c->nodes[i].has_address = true;
		if (k == NULL ||
		    sig_public_raw(k, c->nodes[i].public_key) == -1)
			fatalx("cannot derive the demo key of node %u", i);
		sig_key_free(k);
	}
	c->nclients = 1;
	snprintf(c->clients[0].name, sizeof(c->clients[0].name), "dev");
	{
		void *k = sig_dev_key(1000);

		if (k == NULL ||
		    sig_public_raw(k, c->clients[0].public_key) == -1)
			fatalx("cannot derive the demo client key");
		sig_key_free(k);
	}
	return c;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"id", required_argument, NULL, 'i'},
		{"debug", no_argument, NULL, 'd'},
		{"dev", no_argument, NULL, 'D'},
		{"port", required_argument, NULL, 'p'},
		{"nodes", required_argument, NULL, 'n'},
		{"bootstrap", required_argument, NULL, 'b'},
		{"listen", required_argument, NULL, 'l'},
		{"log-file", required_argument, NULL, 'L'},
#if PBFT_FAULT_INJECTION
		{"fault", required_argument, NULL, 'F'},
#endif
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	const char *config = NULL, *listen = NULL, *log_file = NULL;
	char err[CFG_ERR_LEN], tag[32], *end;
	unsigned long id = ULONG_MAX, port = 0, nodes = 4;
	bool dev = false, debug = false;
	struct cluster_cfg *cfg;
	struct replica_opts opts = {.sup_fd = -1};
	struct replica *r;
	struct ev_loop *loop;
	ev_signal sigterm, sigint, sighup;
	ev_io sup;
	void *key;
	struct stat sb;
	int ch;

	/* Before anything else opens a file: is fd 3 pbftd's socketpair? */
	if (fstat(SUP_FD, &sb) == 0 && S_ISSOCK(sb.st_mode))
		opts.sup_fd = SUP_FD;

	while ((ch = getopt_long(
	            argc, argv, "c:i:l:L:dp:n:b:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'i':
			errno = 0;
			id = strtoul(optarg, &end, 10);
			if (errno || *end || id >= PBFT_REPLICAS_MAX) {
				fprintf(stderr, "pbft-replica: bad id '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 'l':
			listen = optarg;
			break;
		case 'L':
			log_file = optarg;
			break;
#if PBFT_FAULT_INJECTION
		case 'F':
			opts.faults = optarg;
			break;
#endif
		case 'd':
			debug = true;
			break;
		case 'D':
			dev = true;
			break;
		case 'p':
			port = strtoul(optarg, &end, 10);
			if (*end || port == 0 || port > 65535) {
				fprintf(stderr, "pbft-replica: bad port '%s'\n",
				    optarg);
				return 2;
			}
			break;
		case 'n':
			nodes = strtoul(optarg, &end, 10);
			if (*end || nodes < 4 || nodes > PBFT_REPLICAS_MAX) {
				fprintf(stderr,
				    "pbft-replica: -n wants 4..%d nodes\n",
				    PBFT_REPLICAS_MAX);
				return 2;
			}
			break;
		case 'b':
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("pbft-replica %s\n", PBFT_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || id == ULONG_MAX || (!dev && config == NULL) ||
	    (dev && (port == 0 || id >= nodes || port < id))) {
		usage(stderr);
		return 2;
	}
	if (log_file != NULL &&
	    log_file_open(log_file, err, sizeof(err)) == -1) {
		fprintf(stderr, "pbft-replica: --log-file %s\n", err);
		return 2;
	}
	snprintf(tag, sizeof(tag), "replica %lu", id);
	log_init(tag, debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	log_level_from_env();
	if (dev) {
		cfg = dev_config(
		    (uint32_t)nodes, (uint16_t)(port - id), (uint16_t)port);
		key = sig_dev_key((uint32_t)id);
		log_warnx(
		    "--dev: INSECURE demo keys derived from node indexes; "
		    "never use this for anything real");
	} else {
		if ((cfg = cfg_load(config, err, sizeof(err))) == NULL) {
			fprintf(stderr, "%s\n", err);
			return 2;
		}
		if (id >= cfg->n) {
			fprintf(stderr, "%s: no node %lu (n = %u)\n", config,
			    id, cfg->n);
			cfg_free(cfg);
			return 2;
		}
		if (listen != NULL || !cfg->nodes[id].has_address) {
			struct cfg_node *self = &cfg->nodes[id];

			if (listen == NULL) {
				fprintf(stderr,
				    "%s: [node.%lu] has no address: start it "
				    "with --listen HOST:PORT\n",
				    config, id);
				cfg_free(cfg);
				return 2;
			}
			if (self->has_address) {
				fprintf(stderr,
				    "%s: [node.%lu] has an address; --listen "
				    "is for nodes without one\n",
				    config, id);
				cfg_free(cfg);
				return 2;
			}
			if (cfg_parse_address(listen, self->host,
			        sizeof(self->host), &self->port) == -1) {
				fprintf(stderr,
				    "pbft-replica: --listen: want HOST:PORT, "
				    "got '%s'\n",
				    listen);
				cfg_free(cfg);
				return 2;
			}
			self->has_address = true;
			self->announce = true;
		}
		if (!debug)
			log_set_level(cfg->log_level);
		log_level_from_env();
		if (cfg_load_node_key(
		        cfg, (uint32_t)id, &key, err, sizeof(err)) == -1) {
			if (failstop_noted_unreadable()) { /* an I/O error */
				failstop_set_link(opts.sup_fd);
				failstop(FAILSTOP_UNREADABLE, "%s", err);
			}
			fprintf(stderr, "%s\n", err);
			cfg_free(cfg);
			return 2;
		}
	}
#if PBFT_FAULT_INJECTION
	if (opts.faults == NULL)
		opts.faults = getenv("PBFT_FAULTS");
#endif
	signal(SIGPIPE, SIG_IGN);
	loop = ev_default_loop(EVFLAG_AUTO);
	opts.id = (uint32_t)id;
	opts.insecure_dev = dev;
	failstop_set_link(opts.sup_fd);
	if ((r = replica_new(loop, cfg, key, &opts, err, sizeof(err))) ==
	    NULL) {
		/* An unreadable disk is not a new replica: refuse, in words
		 * pbftd shows, with a status it does not restart on. */
		failstop(failstop_noted_unreadable() ? FAILSTOP_UNREADABLE
		                                     : FAILSTOP_START,
		    "%s", err);
	}
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_signal_init(&sighup, hup_cb, SIGHUP);
	ev_signal_start(loop, &sighup);
	if (opts.sup_fd != -1) {
		fcntl(opts.sup_fd, F_SETFL, O_NONBLOCK);
		ev_io_init(&sup, sup_cb, opts.sup_fd, EV_READ);
		sup.data = r;
		ev_io_start(loop, &sup);
	}
	log_info("node %lu of %u (f = %u) listening on %s:%u", id, cfg->n,
	    cfg->f, cfg->nodes[id].host, (unsigned)cfg->nodes[id].port);
	ev_run(loop, 0);
	replica_free(r);
	cfg_free(cfg);
	log_info("stopped");
	return 0;
}
