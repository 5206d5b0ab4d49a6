/*
 * cfg.c - cluster.ini into a validated struct cluster_cfg; see cfg.h.
 *
 * inih does the lexing. Debian's libinih does not pass line numbers to the
 * handler, so the file is fed through our own line reader, which counts lines
 * and remembers where each section header stood; every error can then name
 * the line it is about.
 */
#include "cfg.h"
#include "defaults.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "sig.h"

#define CFG_LINE_MAX 4096

enum sect_kind { SECT_NONE, SECT_CLUSTER, SECT_NODE, SECT_CLIENT };

struct parse {
	struct cluster_cfg *cfg;
	const char *file; /* as the user named it, for messages */
	char dir[CFG_PATH_MAX - 64]; /* where relative paths start */
	FILE *fp;
	int line, header_line;
	char cur[128]; /* current section name */
	enum sect_kind kind;
	uint32_t idx; /* node id or client index of the section */
	uint64_t keys_seen; /* bit per key in the current section */
	bool failed;
	char *err;
	size_t errlen;
	/* bookkeeping for validation */
	bool node_seen[PBFT_REPLICAS_MAX];
	bool node_has_pub[PBFT_REPLICAS_MAX];
	int node_addr_line[PBFT_REPLICAS_MAX];
	int node_pub_line[PBFT_REPLICAS_MAX];
	bool f_set;
	int f_line, ckpt_line, window_line, cc_line, bootstrap_line;
	int dead_after_line;
	uint32_t clients_cap;
	char **sections; /* every section name seen, for duplicates */
	size_t nsections;
	bool *client_has_pub;
	int *client_key_line;
	bool line_too_long;
};

static int fail_at(struct parse *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail_at(struct parse *ps, int line, const char *fmt, ...)
{
	char msg[CFG_ERR_LEN];
	va_list ap;

	if (ps->failed)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(ps->err, ps->errlen, "%s:%d: %s", ps->file, line, msg);
	else
		snprintf(ps->err, ps->errlen, "%s: %s", ps->file, msg);
	ps->failed = true;
	return 0;
}

/* ---- value parsers ------------------------------------------------------ */

static int
parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (*v == '\0' || *v == '-' || *v == '+')
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

/* "10s", "500ms", "2m", or a plain number of milliseconds. */
static int
parse_duration_ms(const char *v, bool zero_ok, uint32_t *out)
{
	char *end;
	unsigned long long x;
	uint64_t mul = 1;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else
		return -1;
	if ((x == 0 && !zero_ok) || x > UINT32_MAX / mul)
		return -1;
	*out = (uint32_t)(x * mul);
	return 0;
}

/* "256MiB", "1GiB", "512KiB", "0", or a plain number of bytes (K, M, G, T
 * and their -iB forms are powers of 1024). */
static int
parse_size(const char *v, uint64_t *out)
{
	static const char *units[] = {"", "K", "M", "G", "T"};
	char *end;
	unsigned long long x;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0)
		return -1;
	for (int i = 0; i < 5; i++) {
		char iec[4];

		snprintf(iec, sizeof(iec), "%siB", units[i]);
		if (strcmp(end, units[i]) != 0 &&
		    (i == 0 || strcmp(end, iec) != 0))
			continue;
		if (x > (UINT64_MAX >> (10 * i)))
			return -1;
		*out = (uint64_t)x << (10 * i);
		return 0;
	}
	return -1;
}

void
cfg_format_address(const char *host, uint16_t port, char *buf, size_t len)
{
	bool v6 = strchr(host, ':') != NULL;

	snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
	    (unsigned)port);
}

int
cfg_parse_address(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *h = s;
	size_t hl;
	uint64_t p;

	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -1;
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || strchr(s, ':') != colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	for (size_t i = 0; i < hl; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		        c == ':' || c == '_'))
			return -1;
	}
	if (parse_u64(colon + 1, 1, 65535, &p) == -1)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int
resolve_path(struct parse *ps, const char *v, char *out, size_t outlen)
{
	int n;

	if (*v == '\0')
		return -1;
	if (v[0] == '/')
		n = snprintf(out, outlen, "%s", v);
	else
		n = snprintf(out, outlen, "%s/%s", ps->dir, v);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static bool
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= PBFT_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		        c == '-'))
			return false;
	}
	return true;
}

/* ---- sections ----------------------------------------------------------- */

/* [client.NAME]: a new client, the arrays beside it grown as needed. */
static int
enter_client(struct parse *ps, const char *section)
{
	struct cluster_cfg *c = ps->cfg;

	if (!valid_name(section + 7))
		return fail_at(ps, ps->header_line,
		    "bad client name in [%s]: use 1-63 of "
		    "A-Z a-z 0-9 _ . -",
		    section);
	if (c->nclients == PBFT_CLIENTS_MAX)
		return fail_at(ps, ps->header_line,
		    "too many clients (at most %d)", PBFT_CLIENTS_MAX);
	if (c->nclients == ps->clients_cap) {
		uint32_t cap = ps->clients_cap ? ps->clients_cap * 2 : 8;
		struct cfg_client *nc = realloc(c->clients, cap * sizeof(*nc));
		bool *hp = realloc(ps->client_has_pub, cap * sizeof(*hp));
		int *kl = realloc(ps->client_key_line, cap * sizeof(*kl));

		if (nc != NULL)
			c->clients = nc;
		if (hp != NULL)
			ps->client_has_pub = hp;
		if (kl != NULL)
			ps->client_key_line = kl;
		if (nc == NULL || hp == NULL || kl == NULL)
			return fail_at(ps, ps->header_line, "out of memory");
		ps->clients_cap = cap;
	}
	ps->kind = SECT_CLIENT;
	ps->idx = c->nclients++;
	memset(&c->clients[ps->idx], 0, sizeof(c->clients[0]));
	c->clients[ps->idx].id = ps->idx;
	c->clients[ps->idx].line = ps->header_line;
	snprintf(c->clients[ps->idx].name, sizeof(c->clients[ps->idx].name),
	    "%s", section + 7);
	ps->client_has_pub[ps->idx] = false;
	ps->client_key_line[ps->idx] = 0;
	return 1;
}

static int
enter_section(struct parse *ps, const char *section)
{
	uint64_t id;

	for (size_t i = 0; i < ps->nsections; i++)
		if (strcmp(ps->sections[i], section) == 0)
			return fail_at(ps, ps->header_line,
			    "duplicate section [%s]", section);
	{
		char **ns =
		    realloc(ps->sections, (ps->nsections + 1) * sizeof(*ns));

		if (ns == NULL || (ns[ps->nsections] = strdup(section)) == NULL)
			return fail_at(ps, ps->header_line, "out of memory");
		ps->sections = ns;
		ps->nsections++;
	}
	snprintf(ps->cur, sizeof(ps->cur), "%s", section);
	ps->keys_seen = 0;
	if (strcmp(section, "cluster") == 0) {
		ps->kind = SECT_CLUSTER;
	} else if (strncmp(section, "node.", 5) == 0) {
		const char *d = section + 5;

		if (parse_u64(d, 0, PBFT_REPLICAS_MAX - 1, &id) == -1 ||
		    (d[0] == '0' && d[1] != '\0'))
			return fail_at(ps, ps->header_line,
			    "bad node id in [%s]: want 0..%d without leading "
			    "zeros",
			    section, PBFT_REPLICAS_MAX - 1);
		ps->kind = SECT_NODE;
		ps->idx = (uint32_t)id;
		ps->node_seen[id] = true;
		ps->cfg->nodes[id].id = (uint32_t)id;
		ps->cfg->nodes[id].line = ps->header_line;
	} else if (strncmp(section, "client.", 7) == 0) {
		return enter_client(ps, section);
	} else {
		return fail_at(ps, ps->header_line,
		    "unknown section [%s] (want [cluster], [node.N] or "
		    "[client.NAME])",
		    section);
	}
	return 1;
}

/* Marks key number bit as seen; a second occurrence is an error. */
static int
key_once(struct parse *ps, int bit, const char *name)
{
	if (ps->keys_seen & (1ULL << bit))
		return fail_at(
		    ps, ps->line, "duplicate key '%s' in [%s]", name, ps->cur);
	ps->keys_seen |= 1ULL << bit;
	return 1;
}

/*
 * "a/, team-b/": up to CFG_PREFIXES_MAX prefixes of 1..255 bytes, printable
 * and without spaces or commas.
 */
static int
prefixes_value(struct parse *ps, const char *v, struct cfg_prefixes *out)
{
	const char *p = v;

	while (*p != '\0') {
		const char *start, *end;
		size_t len;

		while (*p == ' ' || *p == '\t')
			p++;
		for (start = p;
		     *p != '\0' && *p != ',' && *p != ' ' && *p != '\t'; p++)
			if (*p < 0x21 || *p > 0x7e)
				return fail_at(ps, ps->line,
				    "key prefixes: printable characters only");
		end = p;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0' && *p != ',')
			return fail_at(ps, ps->line,
			    "key prefixes: separate them with commas");
		if (*p == ',')
			p++;
		len = (size_t)(end - start);
		if (len == 0 || len > CFG_PREFIX_BYTES_MAX)
			return fail_at(ps, ps->line,
			    "key prefixes: each 1..%d bytes, comma-separated",
			    CFG_PREFIX_BYTES_MAX);
		if (out->n == CFG_PREFIXES_MAX)
			return fail_at(ps, ps->line, "key prefixes: at most %d",
			    CFG_PREFIXES_MAX);
		if ((out->p[out->n] = strndup(start, len)) == NULL)
			return fail_at(ps, ps->line, "out of memory");
		out->n++;
	}
	if (out->n == 0)
		return fail_at(ps, ps->line, "key prefixes: none given");
	return 1;
}

/*
 * [cluster] keys. Most are a number, size or duration stored at an offset
 * in struct cluster_cfg, checked against a range; the rest have a parser
 * of their own (KEY_FN). Adding a key is a row in cluster_keys, a field in
 * struct cluster_cfg with its default in set_defaults, and its entry in
 * doc/cluster.ini.5.
 */
struct cluster_key;
typedef int (*key_fn)(
    struct parse *ps, const struct cluster_key *k, const char *v);

enum key_kind {
	KEY_U32, /* a number in min..max */
	KEY_U64, /* a number in min..max */
	KEY_SIZE, /* a size (256MiB, 1GiB, plain bytes) in min..max */
	KEY_MS, /* a duration in ms, not 0, in min..max */
	KEY_MS0, /* a duration in ms, 0 allowed, in min..max */
	KEY_FN, /* fn parses it */
};

struct cluster_key {
	const char *name;
	enum key_kind kind;
	size_t off; /* of the field in struct cluster_cfg (not KEY_FN) */
	uint64_t min, max;
	/* What the error says after the key's name; NULL: " must be
	 * MIN..MAX" (numbers only). */
	const char *want;
	key_fn fn;
	size_t line_off; /* of an int in struct parse noting the line, or 0 */
};

/* A field's offset, with a compile-time check that it has the size the
 * key's kind stores (4: KEY_U32, KEY_MS, KEY_MS0; 8: KEY_U64, KEY_SIZE;
 * an address: the char[300] of metrics_listen and bootstrap). */
#define CFG_FIELD(field, size)                                                 \
	(offsetof(struct cluster_cfg, field) +                                 \
	    0 *                                                                \
	        sizeof(char[sizeof(((struct cluster_cfg *)0)->field) == (size) \
	                ? 1                                                    \
	                : -1]))
#define CFG_U32(field) KEY_U32, CFG_FIELD(field, 4)
#define CFG_MS(field) KEY_MS, CFG_FIELD(field, 4)
#define CFG_MS0(field) KEY_MS0, CFG_FIELD(field, 4)
#define CFG_U64(field) KEY_U64, CFG_FIELD(field, 8)
#define CFG_SIZE(field) KEY_SIZE, CFG_FIELD(field, 8)
#define CFG_ADDR(field) KEY_FN, CFG_FIELD(field, 300)
#define CFG_PATH(field) KEY_FN, CFG_FIELD(field, CFG_PATH_MAX)
#define PARSE_AT(field) offsetof(struct parse, field)

static int
key_name(struct parse *ps, const struct cluster_key *k, const char *v)
{
	if (!valid_name(v))
		return fail_at(ps, ps->line,
		    "bad cluster name '%s': use 1-63 of A-Z a-z 0-9 _ . -", v);
	snprintf(ps->cfg->name, sizeof(ps->cfg->name), "%s", v);
	return 1;
}

static int
key_f(struct parse *ps, const struct cluster_key *k, const char *v)
{
	uint64_t x;

	if (parse_u64(v, 0, (PBFT_REPLICAS_MAX - 1) / 3, &x) == -1)
		return fail_at(ps, ps->line, "f must be a number from 0 to %d",
		    (PBFT_REPLICAS_MAX - 1) / 3);
	ps->cfg->f = (uint32_t)x;
	ps->f_set = true;
	return 1;
}

static int
key_data_dir(struct parse *ps, const struct cluster_key *k, const char *v)
{
	struct cluster_cfg *c = ps->cfg;

	if (resolve_path(ps, v, c->data_dir, sizeof(c->data_dir)) == -1)
		return fail_at(ps, ps->line, "bad data_dir");
	return 1;
}

static int
key_control_socket(struct parse *ps, const struct cluster_key *k, const char *v)
{
	struct cluster_cfg *c = ps->cfg;

	if (resolve_path(ps, v, c->control_socket, sizeof(c->control_socket)) ==
	        -1 ||
	    strlen(c->control_socket) >= 108)
		return fail_at(ps, ps->line,
		    "bad control_socket (a Unix socket path under 108 bytes)");
	return 1;
}

static int
key_control_client(struct parse *ps, const struct cluster_key *k, const char *v)
{
	if (!valid_name(v))
		return fail_at(ps, ps->line, "bad control_client name");
	snprintf(
	    ps->cfg->control_client, sizeof(ps->cfg->control_client), "%s", v);
	return 1;
}

/* host:port, kept as written in the char[300] field at k->off. */
static int
key_address(struct parse *ps, const struct cluster_key *k, const char *v)
{
	char host[256];
	uint16_t port;

	if (cfg_parse_address(v, host, sizeof(host), &port) == -1)
		return fail_at(
		    ps, ps->line, "%s: want host:port, got '%s'", k->name, v);
	snprintf((char *)ps->cfg + k->off, sizeof(ps->cfg->bootstrap), "%s", v);
	return 1;
}

static int
key_fsync(struct parse *ps, const struct cluster_key *k, const char *v)
{
	static const struct {
		const char *word;
		enum cfg_fsync mode;
	} modes[] = {{"always", CFG_FSYNC_ALWAYS}, {"batch", CFG_FSYNC_BATCH},
	    {"off", CFG_FSYNC_OFF}};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(v, modes[i].word) == 0) {
			ps->cfg->fsync = modes[i].mode;
			return 1;
		}
	return fail_at(ps, ps->line, "fsync must be always, batch or off");
}

static int
key_log_level(struct parse *ps, const struct cluster_key *k, const char *v)
{
	if (log_level_parse(v, &ps->cfg->log_level) == -1)
		return fail_at(ps, ps->line,
		    "log_level must be error, warn, info or debug");
	return 1;
}

static int
key_shared_prefixes(
    struct parse *ps, const struct cluster_key *k, const char *v)
{
	return prefixes_value(ps, v, &ps->cfg->shared_prefixes);
}

static int
key_accept_from(struct parse *ps, const struct cluster_key *k, const char *v)
{
	if (strcmp(v, "any") == 0)
		ps->cfg->accept_from = CFG_ACCEPT_ANY;
	else if (strcmp(v, "replicas") == 0)
		ps->cfg->accept_from = CFG_ACCEPT_REPLICAS;
	else
		return fail_at(
		    ps, ps->line, "accept_from must be any or replicas");
	return 1;
}

static int
key_replica_source(struct parse *ps, const struct cluster_key *k, const char *v)
{
	if (strcmp(v, "match") == 0)
		ps->cfg->replica_source = CFG_SOURCE_MATCH;
	else if (strcmp(v, "any") == 0)
		ps->cfg->replica_source = CFG_SOURCE_ANY;
	else
		return fail_at(
		    ps, ps->line, "replica_source must be match or any");
	return 1;
}

/* A path (relative to the file's directory) in the CFG_PATH_MAX field at
 * k->off. */
static int
key_path(struct parse *ps, const struct cluster_key *k, const char *v)
{
	if (resolve_path(ps, v, (char *)ps->cfg + k->off, CFG_PATH_MAX) == -1)
		return fail_at(ps, ps->line, "bad %s", k->name);
	return 1;
}

static const struct cluster_key cluster_keys[] = {
    {"name", KEY_FN, 0, 0, 0, NULL, key_name, 0},
    {"f", KEY_FN, 0, 0, 0, NULL, key_f, PARSE_AT(f_line)},
    {"checkpoint_interval", CFG_U64(checkpoint_interval), 1, 1000000, NULL,
        NULL, PARSE_AT(ckpt_line)},
    {"window", CFG_U64(window), 1, PBFT_WINDOW_MAX, NULL, NULL,
        PARSE_AT(window_line)},
    {"view_change_timeout", CFG_MS(view_change_timeout_ms), 1, UINT32_MAX,
        ": want a duration like 10s or 500ms", NULL, 0},
    {"batch_max", CFG_U32(batch_max), 1, PBFT_BATCH_REQS_MAX, NULL, NULL, 0},
    {"batch_bytes_max", CFG_U32(batch_bytes_max), 1024, PBFT_BATCH_BYTES_MAX,
        NULL, NULL, 0},
    {"batch_timeout", CFG_MS0(batch_timeout_ms), 0, UINT32_MAX,
        ": want a duration like 20ms or 0", NULL, 0},
    {"inflight_max", CFG_U32(inflight_max), 1, 64, NULL, NULL, 0},
    {"request_timeout", CFG_MS(request_timeout_ms), 1, UINT32_MAX,
        ": want a duration like 1s", NULL, 0},
    {"data_dir", KEY_FN, 0, 0, 0, NULL, key_data_dir, 0},
    {"control_socket", KEY_FN, 0, 0, 0, NULL, key_control_socket, 0},
    {"control_client", KEY_FN, 0, 0, 0, NULL, key_control_client,
        PARSE_AT(cc_line)},
    {"metrics_listen", CFG_ADDR(metrics_listen), 0, 0, NULL, key_address, 0},
    {"bootstrap", CFG_ADDR(bootstrap), 0, 0, NULL, key_address,
        PARSE_AT(bootstrap_line)},
    {"fsync", KEY_FN, 0, 0, 0, NULL, key_fsync, 0},
    {"log_level", KEY_FN, 0, 0, 0, NULL, key_log_level, 0},
    {"client_max_keys", CFG_U64(client_max_keys), 0, UINT64_MAX,
        ": want a number (0 = unlimited)", NULL, 0},
    {"client_max_bytes", CFG_U64(client_max_bytes), 0, UINT64_MAX,
        ": want a number (0 = unlimited)", NULL, 0},
    {"shared_prefixes", KEY_FN, 0, 0, 0, NULL, key_shared_prefixes, 0},
    {"queue_bytes_max", CFG_SIZE(queue_bytes_max), 1ULL << 20, 1ULL << 40,
        " must be a size from 1MiB to 1TiB, like 64MiB", NULL, 0},
    {"min_free", CFG_SIZE(min_free_bytes), 0, UINT64_MAX,
        ": want a size like 256MiB, 1GiB or 0", NULL, 0},
    {"handshake_rate", CFG_U32(handshake_rate), 1, 100000, NULL, NULL, 0},
    {"handshakes_max", CFG_U32(handshakes_max), 1, 100000, NULL, NULL, 0},
    {"connections_per_address", CFG_U32(conns_per_address), 1, 100000, NULL,
        NULL, 0},
    {"accept_from", KEY_FN, 0, 0, 0, NULL, key_accept_from, 0},
    {"replica_source", KEY_FN, 0, 0, 0, NULL, key_replica_source, 0},
    {"http_listen", CFG_ADDR(http_listen), 0, 0, NULL, key_address, 0},
    {"http_tokens", CFG_PATH(http_tokens), 0, 0, NULL, key_path, 0},
    {"http_cert", CFG_PATH(http_cert), 0, 0, NULL, key_path, 0},
    {"http_key", CFG_PATH(http_key), 0, 0, NULL, key_path, 0},
    /* validate() checks dead_after against heartbeat_interval. */
    {"heartbeat_interval", CFG_MS(heartbeat_interval_ms), 10, 600000,
        ": want a duration from 10ms to 10m, like 1s", NULL, 0},
    {"dead_after", CFG_MS(dead_after_ms), 10, 600000,
        ": want a duration from 10ms to 10m, like 5s", NULL,
        PARSE_AT(dead_after_line)},
};

/* A number, size or duration key: parsed, range-checked and stored. */
static int
key_value(struct parse *ps, const struct cluster_key *k, const char *v)
{
	void *field = (char *)ps->cfg + k->off;
	uint64_t x = 0;
	uint32_t ms;
	int rc;

	switch (k->kind) {
	case KEY_MS:
	case KEY_MS0:
		rc = parse_duration_ms(v, k->kind == KEY_MS0, &ms);
		if (rc == 0 && (ms < k->min || ms > k->max))
			rc = -1;
		else if (rc == 0)
			memcpy(field, &ms, sizeof(ms));
		break;
	case KEY_SIZE:
		rc = parse_size(v, &x);
		if (rc == 0 && (x < k->min || x > k->max))
			rc = -1;
		break;
	default:
		rc = parse_u64(v, k->min, k->max, &x);
		break;
	}
	if (rc == -1) {
		if (k->want != NULL)
			return fail_at(ps, ps->line, "%s%s", k->name, k->want);
		return fail_at(ps, ps->line, "%s must be %llu..%llu", k->name,
		    (unsigned long long)k->min, (unsigned long long)k->max);
	}
	if (k->kind == KEY_U32) {
		uint32_t x32 = (uint32_t)x; /* max fits: the table says so */

		memcpy(field, &x32, sizeof(x32));
	} else if (k->kind == KEY_U64 || k->kind == KEY_SIZE) {
		memcpy(field, &x, sizeof(x));
	}
	return 1;
}

static int
cluster_key(struct parse *ps, const char *name, const char *v)
{
	const size_t nkeys = sizeof(cluster_keys) / sizeof(cluster_keys[0]);
	const struct cluster_key *k = NULL;
	int rc;

	for (size_t i = 0; i < nkeys && k == NULL; i++)
		if (strcmp(name, cluster_keys[i].name) == 0)
			k = &cluster_keys[i];
	if (k == NULL)
		return fail_at(
		    ps, ps->line, "unknown key '%s' in [cluster]", name);
	if (!key_once(ps, (int)(k - cluster_keys), name))
		return 0;
	rc = k->kind == KEY_FN ? k->fn(ps, k, v) : key_value(ps, k, v);
	if (rc == 1 && k->line_off != 0)
		*(int *)(void *)((char *)ps + k->line_off) = ps->line;
	return rc;
}

static int
pubkey_value(struct parse *ps, const char *v, uint8_t out[PBFT_PUBKEY_LEN])
{
	void *k;

	if (sig_hex_decode(v, out, PBFT_PUBKEY_LEN) == -1)
		return fail_at(ps, ps->line,
		    "public_key must be 64 hex digits (an Ed25519 key)");
	if ((k = sig_public_from_raw(out)) == NULL)
		return fail_at(
		    ps, ps->line, "public_key is not a valid Ed25519 key");
	sig_key_free(k);
	return 1;
}

static int
node_key(struct parse *ps, const char *name, const char *v)
{
	struct cfg_node *n = &ps->cfg->nodes[ps->idx];

	if (strcmp(name, "address") == 0) {
		if (!key_once(ps, 0, name))
			return 0;
		if (cfg_parse_address(v, n->host, sizeof(n->host), &n->port) ==
		    -1)
			return fail_at(ps, ps->line,
			    "bad address '%s': want host:port", v);
		n->has_address = true;
		ps->node_addr_line[ps->idx] = ps->line;
		return 1;
	}
	if (strcmp(name, "public_key") == 0) {
		if (!key_once(ps, 1, name))
			return 0;
		ps->node_has_pub[ps->idx] = true;
		ps->node_pub_line[ps->idx] = ps->line;
		return pubkey_value(ps, v, n->public_key);
	}
	if (strcmp(name, "private_key_file") == 0) {
		if (!key_once(ps, 2, name))
			return 0;
		n->key_line = ps->line;
		if (resolve_path(ps, v, n->private_key_file,
		        sizeof(n->private_key_file)) == -1)
			return fail_at(ps, ps->line, "bad private_key_file");
		return 1;
	}
	if (strcmp(name, "private_key_passphrase_file") == 0) {
		if (!key_once(ps, 3, name))
			return 0;
		if (resolve_path(ps, v, n->passphrase_file,
		        sizeof(n->passphrase_file)) == -1)
			return fail_at(
			    ps, ps->line, "bad private_key_passphrase_file");
		return 1;
	}
	return fail_at(ps, ps->line, "unknown key '%s' in [%s]", name, ps->cur);
}

static int
client_key(struct parse *ps, const char *name, const char *v)
{
	struct cfg_client *cl = &ps->cfg->clients[ps->idx];

	if (strcmp(name, "public_key") == 0) {
		if (!key_once(ps, 0, name))
			return 0;
		ps->client_has_pub[ps->idx] = true;
		return pubkey_value(ps, v, cl->public_key);
	}
	if (strcmp(name, "private_key_file") == 0) {
		if (!key_once(ps, 1, name))
			return 0;
		cl->key_line = ps->line;
		if (resolve_path(ps, v, cl->private_key_file,
		        sizeof(cl->private_key_file)) == -1)
			return fail_at(ps, ps->line, "bad private_key_file");
		return 1;
	}
	if (strcmp(name, "private_key_passphrase_file") == 0) {
		if (!key_once(ps, 4, name))
			return 0;
		if (resolve_path(ps, v, cl->passphrase_file,
		        sizeof(cl->passphrase_file)) == -1)
			return fail_at(
			    ps, ps->line, "bad private_key_passphrase_file");
		return 1;
	}
	if (strcmp(name, "admin") == 0) {
		if (!key_once(ps, 2, name))
			return 0;
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
			return fail_at(ps, ps->line, "admin must be yes or no");
		cl->admin = strcmp(v, "yes") == 0;
		return 1;
	}
	if (strcmp(name, "write_prefixes") == 0) {
		if (!key_once(ps, 3, name))
			return 0;
		return prefixes_value(ps, v, &cl->write_prefixes);
	}
	return fail_at(ps, ps->line, "unknown key '%s' in [%s]", name, ps->cur);
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;

	if (ps->failed)
		return 0;
	if (ps->line_too_long)
		return fail_at(
		    ps, ps->line, "line longer than %d bytes", CFG_LINE_MAX);
	if (section[0] == '\0')
		return fail_at(
		    ps, ps->line, "key '%s' outside of any section", name);
	if (strcmp(section, ps->cur) != 0 && !enter_section(ps, section))
		return 0;
	if (name == NULL)
		return 1; /* a section header (INI_CALL_HANDLER_ON_NEW_SECTION)
		           */
	switch (ps->kind) {
	case SECT_CLUSTER:
		return cluster_key(ps, name, value);
	case SECT_NODE:
		return node_key(ps, name, value);
	case SECT_CLIENT:
		return client_key(ps, name, value);
	default:
		return fail_at(ps, ps->line, "internal: no section");
	}
}

/* Reads one line for inih, counting lines and noting section headers. */
static char *
reader(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	int c, i = 0;
	const char *p;

	if (num <= 1)
		return NULL;
	while ((c = fgetc(ps->fp)) != EOF) {
		if (i < num - 1)
			str[i++] = (char)c;
		else if (c != '\n')
			ps->line_too_long = true;
		if (c == '\n')
			break;
	}
	if (i == 0 && c == EOF)
		return NULL;
	str[i] = '\0';
	ps->line++;
	for (p = str; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '[')
		ps->header_line = ps->line;
	return str;
}

/* ---- validation --------------------------------------------------------- */

static int
validate_nodes(struct parse *ps)
{
	struct cluster_cfg *c = ps->cfg;
	uint32_t n = 0;

	for (uint32_t i = 0; i < PBFT_REPLICAS_MAX; i++)
		if (ps->node_seen[i])
			n = i + 1;
	if (n == 0)
		return fail_at(ps, 0, "no [node.N] sections");
	for (uint32_t i = 0; i < n; i++)
		if (!ps->node_seen[i])
			return fail_at(ps, 0,
			    "node ids must be exactly 0..%u: [node.%u] is "
			    "missing",
			    n - 1, i);
	c->n = n;
	for (uint32_t i = 0; i < n; i++) {
		struct cfg_node *a = &c->nodes[i];

		if (!ps->node_has_pub[i])
			return fail_at(
			    ps, a->line, "[node.%u] has no public_key", i);
		if (!a->has_address && c->bootstrap[0] == '\0')
			return fail_at(ps, a->line,
			    "[node.%u] has no address (and [cluster] names no "
			    "bootstrap peer)",
			    i);
		for (uint32_t j = 0; j < i; j++) {
			const struct cfg_node *b = &c->nodes[j];

			if (a->has_address && b->has_address &&
			    a->port == b->port && strcmp(a->host, b->host) == 0)
				return fail_at(ps, ps->node_addr_line[i],
				    "address %s:%u is already used by node %u",
				    a->host, (unsigned)a->port, j);
			if (memcmp(a->public_key, b->public_key,
			        PBFT_PUBKEY_LEN) == 0)
				return fail_at(ps, ps->node_pub_line[i],
				    "public_key is the same as node %u's", j);
		}
	}
	return 1;
}

static int
validate(struct parse *ps)
{
	struct cluster_cfg *c = ps->cfg;

	if (!validate_nodes(ps))
		return 0;
	c->bootstrap_id = UINT32_MAX;
	if (c->bootstrap[0] != '\0') {
		char host[256];
		uint16_t port;

		(void)cfg_parse_address(
		    c->bootstrap, host, sizeof(host), &port);
		for (uint32_t i = 0; i < c->n; i++)
			if (c->nodes[i].has_address &&
			    c->nodes[i].port == port &&
			    strcmp(c->nodes[i].host, host) == 0)
				c->bootstrap_id = i;
		if (c->bootstrap_id == UINT32_MAX)
			return fail_at(ps, ps->bootstrap_line,
			    "bootstrap %s is not the address of any [node.N]",
			    c->bootstrap);
	}
	if (!ps->f_set)
		c->f = (c->n - 1) / 3;
	else if (c->n < 3 * c->f + 1)
		return fail_at(ps, ps->f_line,
		    "f = %u needs at least %u nodes (n >= 3f+1), have %u", c->f,
		    3 * c->f + 1, c->n);
	if (c->window == 0)
		c->window = 2 * c->checkpoint_interval;
	if (c->window % c->checkpoint_interval != 0 ||
	    c->window < c->checkpoint_interval || c->window > PBFT_WINDOW_MAX)
		return fail_at(ps,
		    ps->window_line ? ps->window_line : ps->ckpt_line,
		    "window (%llu) must be a multiple of checkpoint_interval "
		    "(%llu), at most %d",
		    (unsigned long long)c->window,
		    (unsigned long long)c->checkpoint_interval,
		    PBFT_WINDOW_MAX);
	if (c->dead_after_ms < 2 * c->heartbeat_interval_ms)
		return fail_at(ps, ps->dead_after_line,
		    "dead_after (%ums) must be at least twice "
		    "heartbeat_interval (%ums)",
		    c->dead_after_ms, c->heartbeat_interval_ms);
	for (uint32_t i = 0; i < c->nclients; i++) {
		if (!ps->client_has_pub[i])
			return fail_at(ps, c->clients[i].line,
			    "[client.%s] has no public_key",
			    c->clients[i].name);
	}
	if (c->control_client[0] != '\0' &&
	    cfg_client_by_name(c, c->control_client) == NULL)
		return fail_at(ps, ps->cc_line,
		    "control_client '%s' has no [client.%s] section",
		    c->control_client, c->control_client);
	if (c->control_client[0] == '\0')
		for (uint32_t i = 0; i < c->nclients; i++)
			if (c->clients[i].private_key_file[0] != '\0') {
				snprintf(c->control_client,
				    sizeof(c->control_client), "%s",
				    c->clients[i].name);
				break;
			}
	return 1;
}

void
cfg_defaults(struct cluster_cfg *c)
{
	snprintf(c->name, sizeof(c->name), "pbft");
	c->checkpoint_interval = PBFT_DEFAULT_CHECKPOINT_INTERVAL;
	c->view_change_timeout_ms = 10000;
	c->batch_max = PBFT_DEFAULT_BATCH_REQS;
	c->batch_bytes_max = PBFT_DEFAULT_BATCH_BYTES;
	c->batch_timeout_ms = 10;
	c->inflight_max = PBFT_DEFAULT_INFLIGHT;
	c->queue_bytes_max = PBFT_DEFAULT_QUEUE_BYTES;
	c->request_timeout_ms = 1000;
	c->heartbeat_interval_ms = CFG_HEARTBEAT_INTERVAL_DEFAULT;
	c->dead_after_ms = CFG_DEAD_AFTER_DEFAULT;
	c->fsync = CFG_FSYNC_BATCH;
	c->log_level = LOG_LVL_INFO;
	c->handshake_rate = CFG_HANDSHAKE_RATE_DEFAULT;
	c->handshakes_max = CFG_HANDSHAKES_MAX_DEFAULT;
	c->conns_per_address = CFG_CONNS_PER_ADDRESS_DEFAULT;
	c->min_free_bytes = CFG_MIN_FREE_DEFAULT;
}

static void
set_defaults(struct parse *ps)
{
	struct cluster_cfg *c = ps->cfg;

	cfg_defaults(c);
	snprintf(c->data_dir, sizeof(c->data_dir), "%s/data", ps->dir);
	snprintf(c->control_socket, sizeof(c->control_socket), "%s/pbftd.sock",
	    ps->dir);
}

static void
parse_clear(struct parse *ps)
{
	for (size_t i = 0; i < ps->nsections; i++)
		free(ps->sections[i]);
	free(ps->sections);
	free(ps->client_has_pub);
	free(ps->client_key_line);
	if (ps->fp != NULL)
		fclose(ps->fp);
}

static int
set_paths(struct parse *ps, const char *path)
{
	char *slash;

	if (realpath(path, ps->cfg->path) == NULL) {
		fail_at(ps, 0, "cannot read: %s", strerror(errno));
		return -1;
	}
	if (strlen(ps->cfg->path) >= sizeof(ps->dir)) {
		fail_at(ps, 0, "path too long");
		return -1;
	}
	memcpy(ps->dir, ps->cfg->path, strlen(ps->cfg->path) + 1);
	if ((slash = strrchr(ps->dir, '/')) != NULL)
		*(slash == ps->dir ? slash + 1 : slash) = '\0';
	return 0;
}

struct cluster_cfg *
cfg_load(const char *path, char *err, size_t errlen)
{
	struct parse ps = {.file = path, .err = err, .errlen = errlen};
	int rc;

	if ((ps.cfg = calloc(1, sizeof(*ps.cfg))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (set_paths(&ps, path) == -1)
		goto fail;
	if ((ps.fp = fopen(path, "r")) == NULL) {
		fail_at(&ps, 0, "cannot read: %s", strerror(errno));
		goto fail;
	}
	set_defaults(&ps);
	rc = ini_parse_stream(reader, &ps, handler, &ps);
	if (ps.failed)
		goto fail;
	if (rc != 0) {
		/* inih reports syntax errors (e.g. a line without '=') */
		fail_at(&ps, rc > 0 ? rc : 0,
		    "syntax error (want key = value "
		    "or [section])");
		goto fail;
	}
	if (ps.line_too_long) {
		fail_at(&ps, 0, "a line is longer than %d bytes", CFG_LINE_MAX);
		goto fail;
	}
	if (!validate(&ps))
		goto fail;
	parse_clear(&ps);
	return ps.cfg;
fail:
	parse_clear(&ps);
	cfg_free(ps.cfg);
	return NULL;
}

static void
prefixes_free(struct cfg_prefixes *px)
{
	for (uint32_t i = 0; i < px->n; i++)
		free(px->p[i]);
	px->n = 0;
}

void
cfg_free(struct cluster_cfg *cfg)
{
	if (cfg == NULL)
		return;
	for (uint32_t i = 0; i < cfg->nclients; i++)
		prefixes_free(&cfg->clients[i].write_prefixes);
	prefixes_free(&cfg->shared_prefixes);
	free(cfg->clients);
	free(cfg);
}

const struct cfg_client *
cfg_client_by_name(const struct cluster_cfg *cfg, const char *name)
{
	for (uint32_t i = 0; i < cfg->nclients; i++)
		if (strcmp(cfg->clients[i].name, name) == 0)
			return &cfg->clients[i];
	return NULL;
}

/*
 * Where a private key is read from: a systemd credential (LoadCredential=,
 * LoadCredentialEncrypted=) named as the file's last component when the
 * service has one ($CREDENTIALS_DIRECTORY/node0.pem for keys/node0.pem),
 * else the file itself.
 */
static const char *
key_source(const char *file, char *buf, size_t len)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *base = strrchr(file, '/');
	struct stat sb;

	base = base != NULL ? base + 1 : file;
	if (dir == NULL || dir[0] != '/' || base[0] == '\0' ||
	    (size_t)snprintf(buf, len, "%s/%s", dir, base) >= len ||
	    lstat(buf, &sb) == -1)
		return file;
	return buf;
}

/*
 * Loads a private key file (or its credential): it must exist, be
 * readable, not be readable by group or others, hold an Ed25519 key, and
 * match the configured public key.
 */
/* A secret file (a key or its passphrase, or their credential) that
 * group or others may read is refused: 0 or -1 with err set. */
static int
secret_file_ok(const struct cluster_cfg *cfg, int line, const char *what,
    const char *file, char *err, size_t errlen)
{
	struct stat sb;

	if (stat(file, &sb) == -1) {
		snprintf(err, errlen, "%s:%d: cannot read %s %s: %s", cfg->path,
		    line, what, file, strerror(errno));
		return -1;
	}
	if ((sb.st_mode & 077) != 0) {
		snprintf(err, errlen,
		    "%s:%d: %s %s is readable by group or others (mode %04o; "
		    "chmod 600 %s)",
		    cfg->path, line, what, file, (unsigned)(sb.st_mode & 07777),
		    file);
		return -1;
	}
	return 0;
}

/*
 * The passphrase in file (or its credential): its first line, without the
 * line end; 0 or -1 with err set (unreadable, readable by others, empty).
 */
static int
read_passphrase(const struct cluster_cfg *cfg, int line, const char *file,
    char *pass, size_t len, char *err, size_t errlen)
{
	char cred[CFG_PATH_MAX];
	FILE *fp;
	size_t n;

	file = key_source(file, cred, sizeof(cred));
	if (secret_file_ok(cfg, line, "passphrase file", file, err, errlen) ==
	    -1)
		return -1;
	if ((fp = fopen(file, "re")) == NULL ||
	    fgets(pass, (int)len, fp) == NULL) {
		snprintf(err, errlen,
		    "%s:%d: cannot read passphrase file %s: %s", cfg->path,
		    line, file, fp != NULL ? "empty" : strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return -1;
	}
	fclose(fp);
	n = strcspn(pass, "\r\n");
	pass[n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "%s:%d: passphrase file %s is empty",
		    cfg->path, line, file);
		return -1;
	}
	return 0;
}

static int
load_key(const struct cluster_cfg *cfg, const char *file, const char *pfile,
    int line, const char *who, const uint8_t pub[PBFT_PUBKEY_LEN], void **out,
    char *err, size_t errlen)
{
	char kerr[CFG_ERR_LEN], cred[CFG_PATH_MAX], pass[1024];
	uint8_t have[PBFT_PUBKEY_LEN];
	void *k;

	if (file[0] == '\0') {
		snprintf(err, errlen, "%s:%d: %s has no private_key_file",
		    cfg->path, line, who);
		return -1;
	}
	file = key_source(file, cred, sizeof(cred));
	if (secret_file_ok(cfg, line, "private key file", file, err, errlen) ==
	    -1)
		return -1;
	if (pfile[0] != '\0' &&
	    read_passphrase(
	        cfg, line, pfile, pass, sizeof(pass), err, errlen) == -1)
		return -1;
	k = sig_read_private_pem(
	    file, pfile[0] != '\0' ? pass : NULL, kerr, sizeof(kerr));
	OPENSSL_cleanse(pass, sizeof(pass));
	if (k == NULL) {
		snprintf(err, errlen, "%s:%d: %s", cfg->path, line, kerr);
		return -1;
	}
	if (sig_public_raw(k, have) == -1 ||
	    memcmp(have, pub, PBFT_PUBKEY_LEN) != 0) {
		snprintf(err, errlen,
		    "%s:%d: private key in %s does not match the public_key "
		    "of %s",
		    cfg->path, line, file, who);
		sig_key_free(k);
		return -1;
	}
	*out = k;
	return 0;
}

int
cfg_load_node_key(const struct cluster_cfg *cfg, uint32_t id, void **out,
    char *err, size_t errlen)
{
	char who[32];

	if (id >= cfg->n) {
		snprintf(err, errlen, "%s: no node %u", cfg->path, id);
		return -1;
	}
	snprintf(who, sizeof(who), "[node.%u]", id);
	return load_key(cfg, cfg->nodes[id].private_key_file,
	    cfg->nodes[id].passphrase_file,
	    cfg->nodes[id].key_line ? cfg->nodes[id].key_line
	                            : cfg->nodes[id].line,
	    who, cfg->nodes[id].public_key, out, err, errlen);
}

int
cfg_load_client_key(const struct cluster_cfg *cfg, uint32_t client, void **out,
    char *err, size_t errlen)
{
	char who[PBFT_NAME_BYTES_MAX + 16];
	const struct cfg_client *cl;

	if (client >= cfg->nclients) {
		snprintf(err, errlen, "%s: no client %u", cfg->path, client);
		return -1;
	}
	cl = &cfg->clients[client];
	snprintf(who, sizeof(who), "[client.%s]", cl->name);
	return load_key(cfg, cl->private_key_file, cl->passphrase_file,
	    cl->key_line ? cl->key_line : cl->line, who, cl->public_key, out,
	    err, errlen);
}
