/*
 * keys.c - `pbftctl keygen` writes one Ed25519 key; `pbftctl init` writes a
 * whole cluster: cluster.ini, one key per node and client keys.
 *
 * Keys are random unless --seed is given; a seed makes every key derivable by
 * anyone who knows it, which is meant for demos and tests only.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "msg.h"
#include "sig.h"

/* The passphrase on PFILE's first line, without its line end. */
static int
read_pass(const char *pfile, char *pass, size_t len)
{
	FILE *fp = fopen(pfile, "re");
	size_t n;

	if (fp == NULL || fgets(pass, (int)len, fp) == NULL) {
		fprintf(stderr, "pbftctl keygen: cannot read %s: %s\n", pfile,
		    fp != NULL ? "empty" : strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return -1;
	}
	fclose(fp);
	n = strcspn(pass, "\r\n");
	pass[n] = '\0';
	if (n == 0) {
		fprintf(
		    stderr, "pbftctl keygen: %s: an empty passphrase\n", pfile);
		return -1;
	}
	return 0;
}

static int
parse_seed(const char *hex, uint8_t seed[32])
{
	if (sig_hex_decode(hex, seed, 32) == -1) {
		fprintf(stderr, "pbftctl: --seed wants 64 hex digits\n");
		return -1;
	}
	return 0;
}

static void
keygen_usage(void)
{
	printf("usage: pbftctl keygen [-o FILE] [--seed HEX64] "
	       "[--force]\n"
	       "                      [--encrypt "
	       "--passphrase-file PFILE]\n"
	       "Writes an Ed25519 private key (PEM, mode 0600) "
	       "to FILE and prints\nthe public key in hex. "
	       "Without -o only the public key is printed.\n"
	       "--seed makes the key deterministic (demos and "
	       "tests only).\n"
	       "--encrypt writes it as PKCS#8 encrypted with "
	       "AES-256 under the passphrase\non the first "
	       "line of PFILE (never on the command line); "
	       "name PFILE as the\nnode's or client's "
	       "private_key_passphrase_file in cluster.ini.\n");
}

/* Writes k to out, encrypted under pass unless NULL; 0 or -1 (said). */
static int
keygen_write(void *k, const char *out, bool force, const char *pass)
{
	char err[512];
	int rc = pass != NULL
	    ? sig_write_private_pem_encrypted(
	          k, out, force, pass, err, sizeof(err))
	    : sig_write_private_pem(k, out, force, err, sizeof(err));

	if (rc == -1)
		fprintf(stderr, "pbftctl keygen: %s\n", err);
	return rc;
}

int
pbftctl_keygen(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"output", required_argument, 0, 'o'},
	    {"seed", required_argument, 0, 's'}, {"force", no_argument, 0, 'f'},
	    {"encrypt", no_argument, 0, 'e'},
	    {"passphrase-file", required_argument, 0, 'p'},
	    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	const char *out = NULL, *pfile = NULL;
	bool encrypt = false;
	char pass[1024];
	uint8_t seed[32], pub[PBFT_PUBKEY_LEN];
	bool have_seed = false, force = false;
	char hex[2 * PBFT_PUBKEY_LEN + 1];
	void *k;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "o:s:fep:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'e':
			encrypt = true;
			break;
		case 'p':
			pfile = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 's':
			if (parse_seed(optarg, seed) == -1)
				return 2;
			have_seed = true;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			keygen_usage();
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "pbftctl keygen: unexpected argument '%s'\n",
		    argv[optind]);
		return 2;
	}
	if (encrypt != (pfile != NULL) || (encrypt && out == NULL)) {
		fprintf(stderr,
		    "pbftctl keygen: --encrypt needs "
		    "--passphrase-file and -o, and the other way "
		    "round\n");
		return 2;
	}
	if (encrypt && read_pass(pfile, pass, sizeof(pass)) == -1)
		return 1;
	k = sig_keygen(have_seed ? seed : NULL);
	OPENSSL_cleanse(seed, sizeof(seed));
	if (k == NULL || sig_public_raw(k, pub) == -1) {
		fprintf(stderr, "pbftctl keygen: key generation failed\n");
		sig_key_free(k);
		return 1;
	}
	if (out != NULL &&
	    keygen_write(k, out, force, encrypt ? pass : NULL) == -1) {
		OPENSSL_cleanse(pass, sizeof(pass));
		sig_key_free(k);
		return 1;
	}
	OPENSSL_cleanse(pass, sizeof(pass));
	sig_key_free(k);
	sig_hex_encode(pub, sizeof(pub), hex);
	printf("%s\n", hex);
	return 0;
}

/* Key i of a seeded cluster: SHA-256(seed || label || i). */
static void *
derived_key(const uint8_t *seed, const char *label, uint32_t i)
{
	uint8_t buf[32 + 16 + 4], d[32];
	size_t ll = strlen(label);
	void *k;

	if (seed == NULL)
		return sig_keygen(NULL);
	memcpy(buf, seed, 32);
	memset(buf + 32, 0, 16);
	memcpy(buf + 32, label, ll < 16 ? ll : 16);
	memcpy(buf + 48, &i, 4);
	sig_sha256(buf, sizeof(buf), d);
	k = sig_keygen(d);
	OPENSSL_cleanse(d, sizeof(d));
	OPENSSL_cleanse(buf, sizeof(buf));
	return k;
}

static int
write_key(const char *dir, const char *name, void *k, bool force, char *pubhex)
{
	char path[4200], err[512];
	uint8_t pub[PBFT_PUBKEY_LEN];

	snprintf(path, sizeof(path), "%s/keys/%s.pem", dir, name);
	if (k == NULL || sig_public_raw(k, pub) == -1 ||
	    sig_write_private_pem(k, path, force, err, sizeof(err)) == -1) {
		fprintf(stderr, "pbftctl init: %s\n",
		    k == NULL ? "key generation failed" : err);
		return -1;
	}
	sig_hex_encode(pub, sizeof(pub), pubhex);
	return 0;
}

struct init_opts {
	unsigned long n, base_port, clients;
	const char *hosts, *dir, *data_dir, *socket;
	bool force, have_seed;
	uint8_t seed[32];
};

static void
init_usage(void)
{
	printf("usage: pbftctl init -n N -o DIR [--base-port P] "
	       "[--hosts h1,h2,...]\n"
	       "                    [--clients C] [--seed HEX64] "
	       "[--force]\n"
	       "                    [--data-dir PATH] "
	       "[--control-socket PATH]\n"
	       "Writes DIR/cluster.ini and DIR/keys/*.pem for an "
	       "N-node cluster: node i\nlistens on "
	       "hosts[i %% len(hosts)]:P+i (default 127.0.0.1, "
	       "P = 7000).\nClient keys: admin (used by pbftd) "
	       "plus C more named bench0.. (default 8).\n"
	       "DIR and DIR/keys must be ours and writable by "
	       "nobody else (made with mode\n0700 if absent). "
	       "An existing cluster.ini or key is an error; "
	       "--force\nreplaces them (regular files only, "
	       "never through a symlink).\n"
	       "data_dir and control_socket default to data and "
	       "pbftd.sock beside cluster.ini;\nfor the shipped "
	       "systemd unit use --data-dir /var/lib/pbft "
	       "--control-socket\n/run/pbft/pbftd.sock (the "
	       "unit keeps the configuration directory "
	       "read-only).\n");
}

/* A value cluster.ini can hold: one line, no comment character. */
static bool
one_line(const char *s)
{
	return *s != '\0' && strpbrk(s, "\n\r;#") == NULL;
}

static int
init_args(struct init_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {{"nodes", required_argument, 0, 'n'},
	    {"base-port", required_argument, 0, 'p'},
	    {"hosts", required_argument, 0, 'H'},
	    {"output", required_argument, 0, 'o'},
	    {"clients", required_argument, 0, 'c'},
	    {"seed", required_argument, 0, 's'}, {"force", no_argument, 0, 'f'},
	    {"data-dir", required_argument, 0, 'D'},
	    {"control-socket", required_argument, 0, 'S'},
	    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	char *end;
	int ch;

	optind = 1;
	while (
	    (ch = getopt_long(argc, argv, "n:p:H:o:c:s:fh", lo, NULL)) != -1) {
		switch (ch) {
		case 'n':
			o->n = strtoul(optarg, &end, 10);
			if (*end || o->n < 1 || o->n > PBFT_REPLICAS_MAX)
				goto bad;
			break;
		case 'p':
			o->base_port = strtoul(optarg, &end, 10);
			if (*end || o->base_port < 1 || o->base_port > 65535)
				goto bad;
			break;
		case 'c':
			o->clients = strtoul(optarg, &end, 10);
			if (*end || o->clients > 1024)
				goto bad;
			break;
		case 'H':
			o->hosts = optarg;
			break;
		case 'o':
			o->dir = optarg;
			break;
		case 's':
			if (parse_seed(optarg, o->seed) == -1)
				return -1;
			o->have_seed = true;
			break;
		case 'f':
			o->force = true;
			break;
		case 'D':
			o->data_dir = optarg;
			break;
		case 'S':
			o->socket = optarg;
			break;
		case 'h':
			init_usage();
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc || o->n == 0 || o->dir == NULL ||
	    o->base_port + o->n - 1 > 65535 ||
	    (o->data_dir != NULL && !one_line(o->data_dir)) ||
	    (o->socket != NULL && !one_line(o->socket)))
		goto bad;
	return 0;
bad:
	fprintf(stderr,
	    "pbftctl init: usage: pbftctl init -n N -o DIR "
	    "[--base-port P] [--hosts LIST] [--clients C] "
	    "[--seed HEX64] [--force] [--data-dir PATH] "
	    "[--control-socket PATH]\n");
	return -1;
}

static const char *
host_of(const char *hosts, unsigned long i, char *buf, size_t len)
{
	unsigned long count = 1, k = 0;
	const char *p, *start;

	if (hosts == NULL)
		return "127.0.0.1";
	for (p = hosts; *p; p++)
		count += *p == ',';
	i %= count;
	for (start = p = hosts;; p++) {
		if (*p == ',' || *p == '\0') {
			if (k++ == i) {
				size_t n = (size_t)(p - start);

				if (n >= len)
					n = len - 1;
				memcpy(buf, start, n);
				buf[n] = '\0';
				return buf;
			}
			start = p + 1;
		}
		if (*p == '\0')
			break;
	}
	return "127.0.0.1";
}

static int
init_write(struct init_opts *o, FILE *f)
{
	const uint8_t *seed = o->have_seed ? o->seed : NULL;
	char pub[2 * PBFT_PUBKEY_LEN + 1], name[32], hb[256];

	fprintf(f,
	    "; pbft cluster configuration written by `pbftctl init -n %lu`.\n"
	    "; Every host of the cluster uses this same file; a host needs "
	    "only the\n; private keys of the nodes it runs. See cluster.ini(5)."
	    "\n\n[cluster]\nname = pbft\n; f is derived from the node count "
	    "(largest f with n >= 3f+1)\ncheckpoint_interval = 100\n"
	    "view_change_timeout = 10s\nbatch_max = 1024\nfsync = batch\n"
	    "data_dir = %s\ncontrol_socket = %s\n"
	    "control_client = admin\nlog_level = info\n",
	    o->n, o->data_dir != NULL ? o->data_dir : "data",
	    o->socket != NULL ? o->socket : "pbftd.sock");
	for (unsigned long i = 0; i < o->n; i++) {
		void *k = derived_key(seed, "node", (uint32_t)i);

		snprintf(name, sizeof(name), "node%lu", i);
		if (write_key(o->dir, name, k, o->force, pub) == -1) {
			sig_key_free(k);
			return -1;
		}
		sig_key_free(k);
		fprintf(f,
		    "\n[node.%lu]\naddress = %s:%lu\npublic_key = %s\n"
		    "private_key_file = keys/%s.pem\n",
		    i, host_of(o->hosts, i, hb, sizeof(hb)), o->base_port + i,
		    pub, name);
	}
	for (unsigned long i = 0; i <= o->clients; i++) {
		void *k = derived_key(seed, "client", (uint32_t)i);

		if (i == 0)
			snprintf(name, sizeof(name), "admin");
		else
			snprintf(name, sizeof(name), "bench%lu", i - 1);
		if (write_key(o->dir, name, k, o->force, pub) == -1) {
			sig_key_free(k);
			return -1;
		}
		sig_key_free(k);
		fprintf(f,
		    "\n[client.%s]\npublic_key = %s\nprivate_key_file = "
		    "keys/%s.pem\n",
		    name, pub, name);
	}
	return 0;
}

/*
 * DIR and DIR/keys receive private keys, so they must be ours alone: made
 * here with mode 0700, or already a directory (not a symlink) owned by us
 * and writable by nobody else. Another local user could otherwise have
 * planted them, and swap or read what we write inside.
 */
static int
own_dir(const char *path)
{
	struct stat sb;
	int fd;

	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		goto fail;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &sb) == -1) {
		if (fd != -1)
			close(fd);
		goto fail;
	}
	close(fd);
	if (sb.st_uid != geteuid()) {
		fprintf(stderr,
		    "pbftctl init: %s belongs to uid %lu, not to us: "
		    "refusing to write keys into it\n",
		    path, (unsigned long)sb.st_uid);
		return -1;
	}
	if ((sb.st_mode & 022) != 0) {
		fprintf(stderr,
		    "pbftctl init: %s is writable by group or others (mode "
		    "%03o): refusing to write keys into it (chmod go-w)\n",
		    path, (unsigned)(sb.st_mode & 0777));
		return -1;
	}
	return 0;
fail:
	fprintf(stderr, "pbftctl init: %s: %s%s\n", path, strerror(errno),
	    errno == ELOOP || errno == ENOTDIR ? " (not a directory, or a "
	                                         "symlink)"
	                                       : "");
	return -1;
}

/* cluster.ini through a file of a random name renamed over it. */
static int
init_config(struct init_opts *o, const char *path)
{
	char tmp[4300];
	FILE *f;
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1 ||
	    (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "pbftctl init: %s: %s\n", tmp, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(tmp);
		}
		return -1;
	}
	if (init_write(o, f) == -1) { /* it said why */
		fclose(f);
		unlink(tmp);
		return -1;
	}
	rc = fchmod(fd, 0644); /* no secret in it */
	if (fclose(f) != 0 || rc == -1 || rename(tmp, path) == -1) {
		fprintf(stderr, "pbftctl init: cannot write %s: %s\n", path,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
pbftctl_init(int argc, char **argv)
{
	struct init_opts o = {.base_port = 7000, .clients = 8};
	char path[4200];
	struct stat sb;

	if (init_args(&o, argc, argv) == -1)
		return 2;
	snprintf(path, sizeof(path), "%s/keys", o.dir);
	if (own_dir(o.dir) == -1 || own_dir(path) == -1)
		return 1;
	snprintf(path, sizeof(path), "%s/cluster.ini", o.dir);
	if (lstat(path, &sb) == 0 && (!o.force || !S_ISREG(sb.st_mode))) {
		fprintf(stderr, "pbftctl init: %s exists%s\n", path,
		    S_ISREG(sb.st_mode) ? " (use --force to overwrite)"
		                        : " and is not a regular file");
		return 1;
	}
	if (init_config(&o, path) == -1)
		return 1;
	printf("wrote %s: %lu nodes (f = %lu), %lu client keys in %s/keys\n",
	    path, o.n, (o.n - 1) / 3, o.clients + 1, o.dir);
	printf("start it with: pbftd -c %s\n", path);
	return 0;
}
