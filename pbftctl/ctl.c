/*
 * ctl.c - pbftctl's side of the control socket: one JSON request line out,
 * one JSON reply line back, with blocking I/O bounded by a timeout.
 */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl_proto.h"

struct ctl {
	char socket[CFG_PATH_MAX];
	bool json;
	int timeout_ms;
	int id;
};

static int
ctl_connect(const struct ctl *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(c->socket) >= sizeof(sa.sun_path)) {
		fprintf(
		    stderr, "pbftctl: socket path too long: %s\n", c->socket);
		return -1;
	}
	memcpy(sa.sun_path, c->socket, strlen(c->socket) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		fprintf(stderr, "pbftctl: cannot reach pbftd at %s: %s\n",
		    c->socket, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

static long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Sends req, reads one reply line; returns it (caller decrefs) or NULL. */
static json_t *
ctl_call(struct ctl *c, json_t *req, int *rc)
{
	char *line = json_dumps(req, JSON_COMPACT);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	long deadline = mono_ms() + c->timeout_ms;
	json_t *rep = NULL;
	json_error_t jerr;
	int fd;

	*rc = 3;
	if (line == NULL || (fd = ctl_connect(c)) == -1) {
		free(line);
		return NULL;
	}
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) ||
	    write(fd, "\n", 1) != 1) {
		fprintf(
		    stderr, "pbftctl: write to pbftd: %s\n", strerror(errno));
		goto out;
	}
	*rc = 1;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long left = deadline - mono_ms();
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			fprintf(stderr,
			    "pbftctl: no reply from pbftd within "
			    "%d ms\n",
			    c->timeout_ms);
			goto out;
		}
		if (len + 4096 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if (cap > CTL_LINE_MAX * 4 ||
			    (nb = realloc(buf, cap)) == NULL)
				goto out;
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r <= 0) {
			fprintf(
			    stderr, "pbftctl: pbftd closed the connection\n");
			*rc = 3;
			goto out;
		}
		len += (size_t)r;
		buf[len] = '\0';
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	rep = json_loads(buf, JSON_DISABLE_EOF_CHECK, &jerr);
	if (rep == NULL)
		fprintf(
		    stderr, "pbftctl: bad reply from pbftd: %s\n", jerr.text);
out:
	close(fd);
	free(line);
	free(buf);
	return rep;
}

/* A state digest, or "-" for none: all zeros before the first stable
 * checkpoint. */
static const char *
digest_text(const json_t *r)
{
	const char *d = json_string_value(json_object_get(r, "state_digest"));

	if (d == NULL || d[0] == '\0' || strspn(d, "0") == strlen(d))
		return "-";
	return d;
}

/* The readiness line: "ready: yes", or "ready: no, waiting for ...". */
static void
print_readiness(const json_t *rep)
{
	const json_t *ready = json_object_get(rep, "ready");
	const char *why = json_string_value(json_object_get(rep, "readiness"));

	if (ready == NULL)
		return; /* a pbftd that does not report it */
	if (json_is_true(ready))
		printf("ready: yes\n");
	else
		printf("ready: no, %s\n", why != NULL ? why : "waiting");
}

/* "node 0 links: 1 up 120ms, 2 down (3 redials), ...": each local
 * replica's links to the others, with bytes queued where there are any. */
static void
print_links(const json_t *r)
{
	const json_t *peers = json_object_get(r, "peers"), *p;
	size_t k;

	if (json_array_size(peers) == 0)
		return;
	printf(
	    "node %lld links:", json_integer_value(json_object_get(r, "id")));
	json_array_foreach(peers, k, p)
	{
		long long heard =
		    json_integer_value(json_object_get(p, "heard_ms"));
		long long q = json_integer_value(json_object_get(p, "queued"));

		printf("%s %lld ", k ? "," : "",
		    json_integer_value(json_object_get(p, "id")));
		if (json_is_true(json_object_get(p, "up")))
			printf("up %lldms", heard);
		else if (heard >= 0)
			printf("down (heard %lldms ago)", heard);
		else
			printf("down");
		if (q > 0)
			printf(" queued %lld", q);
		printf(" (%lld redials)",
		    json_integer_value(json_object_get(p, "redials")));
	}
	printf("\n");
}

static void
print_status(const json_t *rep)
{
	const json_t *reps = json_object_get(rep, "replicas");
	size_t i;
	const json_t *r;

	printf("cluster %s: n=%lld f=%lld view=%lld primary=%lld\n",
	    json_string_value(json_object_get(rep, "cluster")),
	    json_integer_value(json_object_get(rep, "n")),
	    json_integer_value(json_object_get(rep, "f")),
	    json_integer_value(json_object_get(rep, "view")),
	    json_integer_value(json_object_get(rep, "primary")));
	print_readiness(rep);
	printf("%-3s %-22s %-8s %-13s %-5s %-9s %-9s %-10s %-5s %-8s %s\n",
	    "id", "address", "pid", "state", "view", "executed", "stable",
	    "digest", "peers", "restarts", "uptime");
	json_array_foreach(reps, i, r)
	{
		const char *st = json_string_value(json_object_get(r, "state"));
		char state[48], vc[32] = "";

		/* Alone in a view change, it executes what the others commit
		 * in the view it follows, without voting. */
		if (json_is_true(json_object_get(r, "following")))
			snprintf(vc, sizeof(vc), ",following %lld",
			    json_integer_value(
			        json_object_get(r, "following_view")));
		else if (json_is_true(json_object_get(r, "view_changing")))
			snprintf(vc, sizeof(vc), ",changing");
		/* A replica back from a crash votes again after a view change.
		 */
		snprintf(state, sizeof(state), "%s%s%s", st != NULL ? st : "-",
		    json_is_true(json_object_get(r, "muted")) ? ",muted" : "",
		    vc);
		printf("%-3lld %-22s %-8lld %-13s %-5lld %-9lld %-9lld "
		       "%-10.8s %-5lld %-8lld %llds\n",
		    json_integer_value(json_object_get(r, "id")),
		    json_string_value(json_object_get(r, "address"))
		        ? json_string_value(json_object_get(r, "address"))
		        : "-",
		    json_integer_value(json_object_get(r, "pid")), state,
		    json_integer_value(json_object_get(r, "view")),
		    json_integer_value(json_object_get(r, "last_executed")),
		    json_integer_value(json_object_get(r, "stable_checkpoint")),
		    digest_text(r),
		    json_integer_value(json_object_get(r, "peers_connected")),
		    json_integer_value(json_object_get(r, "restarts")),
		    json_integer_value(json_object_get(r, "uptime")));
	}
	/* Why a node is down or refusing requests, in its own words. */
	json_array_foreach(reps, i, r)
	{
		const char *why =
		    json_string_value(json_object_get(r, "reason"));
		const char *disk =
		    json_string_value(json_object_get(r, "disk"));

		if (why != NULL)
			printf("node %lld %s: %s\n",
			    json_integer_value(json_object_get(r, "id")),
			    json_string_value(json_object_get(r, "state")),
			    why);
		if (disk != NULL && strcmp(disk, "ok") != 0)
			printf("node %lld: %s\n",
			    json_integer_value(json_object_get(r, "id")), disk);
		print_links(r);
	}
}

/*
 * One line per replica: id, address, local or remote, whether pbftd's
 * client has a channel to it ("-" if pbftd has no client identity), and
 * the first 16 hex digits of its public key.
 */
static void
print_peers(const json_t *rep)
{
	const json_t *peers = json_object_get(rep, "peers"), *p;
	size_t i;

	printf("%-3s %-22s %-7s %-10s %s\n", "id", "address", "where",
	    "connected", "public key");
	json_array_foreach(peers, i, p)
	{
		const json_t *conn = json_object_get(p, "connected");
		const char *addr =
		    json_string_value(json_object_get(p, "address"));
		const char *pub =
		    json_string_value(json_object_get(p, "public_key"));

		printf("%-3lld %-22s %-7s %-10s %.16s\n",
		    json_integer_value(json_object_get(p, "id")),
		    addr != NULL ? addr : "-",
		    json_is_true(json_object_get(p, "local")) ? "local"
		                                              : "remote",
		    json_is_boolean(conn) ? (json_is_true(conn) ? "yes" : "no")
		                          : "-",
		    pub != NULL ? pub : "-");
	}
}

static void
print_reply(const struct ctl *c, const char *cmd, const json_t *rep)
{
	char *s;

	if (c->json) {
		s = json_dumps(rep, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (s != NULL)
			printf("%s\n", s);
		free(s);
		return;
	}
	if (strcmp(cmd, "status") == 0) {
		print_status(rep);
	} else if (strcmp(cmd, "peers") == 0) {
		print_peers(rep);
	} else if (strcmp(cmd, "submit") == 0) {
		printf("index %lld seq %lld view %lld\n",
		    json_integer_value(json_object_get(rep, "index")),
		    json_integer_value(json_object_get(rep, "seq")),
		    json_integer_value(json_object_get(rep, "view")));
	} else if (strcmp(cmd, "get") == 0) {
		printf(
		    "%s\n", json_string_value(json_object_get(rep, "value")));
	} else {
		printf("ok\n");
	}
}

/* Builds the request for argv (argv[0] = command); NULL on usage error. */
static json_t *
build_request(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	json_t *args = json_object();
	json_t *req;

	if (strcmp(cmd, "submit") == 0 && argc >= 2) {
		/* The words are joined with spaces, like the original. */
		size_t len = 0;
		char *data;

		for (int i = 1; i < argc; i++)
			len += strlen(argv[i]) + 1;
		if ((data = calloc(1, len)) == NULL)
			return NULL;
		for (int i = 1; i < argc; i++) {
			strcat(data, argv[i]);
			if (i + 1 < argc)
				strcat(data, " ");
		}
		json_object_set_new(args, "data", json_string(data));
		free(data);
	} else if (strcmp(cmd, "put") == 0 && argc == 3) {
		json_object_set_new(args, "key", json_string(argv[1]));
		json_object_set_new(args, "value", json_string(argv[2]));
	} else if ((strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0) &&
	    argc == 2) {
		json_object_set_new(args, "key", json_string(argv[1]));
	} else if ((strcmp(cmd, "restart") == 0 || strcmp(cmd, "stop") == 0) &&
	    argc == 2) {
		char *end;
		long node = strtol(argv[1], &end, 10);

		if (*end || node < 0 || node >= PBFT_REPLICAS_MAX) {
			json_decref(args);
			return NULL;
		}
		json_object_set_new(args, "node", json_integer(node));
	} else if (!((strcmp(cmd, "status") == 0 || strcmp(cmd, "peers") == 0 ||
	                 strcmp(cmd, "shutdown") == 0) &&
	               argc == 1)) {
		json_decref(args);
		return NULL;
	}
	req = json_pack("{s:i, s:i, s:s, s:o}", "v", CTL_PROTO_VERSION, "id",
	    ++c->id, "cmd", cmd, "args", args);
	return req;
}

static int
run_command(struct ctl *c, int argc, char **argv)
{
	json_t *req, *rep;
	int rc;

	if (argc >= 2 &&
	    (strcmp(argv[0], "status") == 0 || strcmp(argv[0], "peers") == 0) &&
	    strcmp(argv[argc - 1], "--json") == 0) {
		c->json = true;
		argc--;
	}
	if ((req = build_request(c, argc, argv)) == NULL) {
		fprintf(stderr,
		    "pbftctl: bad arguments for '%s' (see pbftctl "
		    "--help)\n",
		    argv[0]);
		return 2;
	}
	rep = ctl_call(c, req, &rc);
	json_decref(req);
	if (rep == NULL)
		return rc;
	if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *e =
		    json_string_value(json_object_get(rep, "error"));

		fprintf(stderr, "pbftctl: %s: %s\n", argv[0],
		    e ? e : "request failed");
		json_decref(rep);
		return 1;
	}
	print_reply(c, argv[0], rep);
	json_decref(rep);
	return 0;
}

/* The original's interactive prompt. */
static int
prompt(struct ctl *c)
{
	static const struct {
		const char *abbr, *cmd;
	} aliases[] = {{"s", "submit"}, {"st", "status"}, {"p", "peers"}};
	char line[4096];
	char *argv[64];

	printf("pbft> ");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin) != NULL) {
		int argc = 0;
		char *save = NULL;

		for (char *w = strtok_r(line, " \t\n", &save);
		     w != NULL && argc < 63; w = strtok_r(NULL, " \t\n", &save))
			argv[argc++] = w;
		if (argc > 0) {
			if (strcmp(argv[0], "q") == 0 ||
			    strcmp(argv[0], "quit") == 0)
				return 0;
			if (strcmp(argv[0], "h") == 0 ||
			    strcmp(argv[0], "help") == 0) {
				printf("submit/s DATA, status/st, peers/p, "
				       "put K V, get K, del K, help/h, "
				       "quit/q\n");
			} else {
				for (size_t i = 0; i < 3; i++)
					if (strcmp(argv[0], aliases[i].abbr) ==
					    0)
						argv[0] = (char *)(uintptr_t)
						              aliases[i]
						                  .cmd;
				run_command(c, argc, argv);
			}
		}
		printf("pbft> ");
		fflush(stdout);
	}
	return 0;
}

static int
socket_from_config(struct ctl *c, const char *file)
{
	char err[CFG_ERR_LEN];
	struct cluster_cfg *cfg = cfg_load(file, err, sizeof(err));

	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	snprintf(c->socket, sizeof(c->socket), "%s", cfg->control_socket);
	cfg_free(cfg);
	return 0;
}

int
ctl_main(int argc, char **argv, void (*usage)(FILE *))
{
	static const struct option lo[] = {
	    {"socket", required_argument, 0, 's'},
	    {"config", required_argument, 0, 'c'},
	    {"json", no_argument, 0, 'j'},
	    {"timeout", required_argument, 0, 't'}, {0, 0, 0, 0}};
	struct ctl c = {.timeout_ms = 30000};
	const char *config = NULL, *sock = NULL, *env;
	char *end;
	int ch;

	while ((ch = getopt_long(argc, argv, "+s:c:jt:", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 't':
			c.timeout_ms = (int)(strtod(optarg, &end) * 1000);
			if (*end || c.timeout_ms <= 0) {
				usage(stderr);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sock != NULL)
		snprintf(c.socket, sizeof(c.socket), "%s", sock);
	else if (config != NULL) {
		if (socket_from_config(&c, config) == -1)
			return 2;
	} else if ((env = getenv("PBFT_SOCKET")) != NULL)
		snprintf(c.socket, sizeof(c.socket), "%s", env);
	else if (access("cluster.ini", R_OK) == 0) {
		if (socket_from_config(&c, "cluster.ini") == -1)
			return 2;
	} else
		snprintf(c.socket, sizeof(c.socket), "/run/pbft/pbftd.sock");
	if (optind == argc) {
		if (isatty(STDIN_FILENO))
			return prompt(&c);
		usage(stderr);
		return 2;
	}
	return run_command(&c, argc - optind, argv + optind);
}
