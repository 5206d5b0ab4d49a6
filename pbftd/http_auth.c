/*
 * http_auth.c - the HTTP API's bearer tokens: loading http_tokens and
 * checking an Authorization header against it.
 *
 * The file holds one "NAME TOKEN" per line (blank lines and lines starting
 * with '#' are skipped); it is refused when group or others may read it,
 * as private keys are. Only SHA-256 digests of the tokens are kept, and a
 * presented token is compared with every one of them by CRYPTO_memcmp, so
 * that neither the time taken nor an early exit tells how much of a token
 * was right. The TLS key and certificate files are read here too, the key
 * with the same check of its mode. And the check of where a request comes
 * from that keeps web pages out (http_origin_ok). No HTTP here: http.c
 * calls it.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"

#define TOKENS_MAX 256
#define TOKEN_BYTES_MIN 16
#define TOKEN_LINE_MAX 1024

struct http_token {
	char name[64];
	unsigned char digest[SHA256_DIGEST_LENGTH];
};

struct http_tokens {
	size_t n;
	struct http_token t[TOKENS_MAX];
};

/* One "NAME TOKEN" line into t; 0, or -1 with err set. */
static int
token_line(
    struct http_tokens *t, char *line, int lineno, char *err, size_t errlen)
{
	char *name, *tok, *rest, *save = NULL;

	name = strtok_r(line, " \t\r\n", &save);
	if (name == NULL || name[0] == '#')
		return 0;
	tok = strtok_r(NULL, " \t\r\n", &save);
	rest = strtok_r(NULL, " \t\r\n", &save);
	if (tok == NULL || rest != NULL ||
	    strlen(name) >= sizeof(t->t[0].name)) {
		snprintf(err, errlen, "line %d: want NAME TOKEN", lineno);
		return -1;
	}
	if (strlen(tok) < TOKEN_BYTES_MIN) {
		snprintf(err, errlen, "line %d: token shorter than %d bytes",
		    lineno, TOKEN_BYTES_MIN);
		return -1;
	}
	if (t->n == TOKENS_MAX) {
		snprintf(err, errlen, "more than %d tokens", TOKENS_MAX);
		return -1;
	}
	snprintf(t->t[t->n].name, sizeof(t->t[0].name), "%s", name);
	SHA256((const unsigned char *)tok, strlen(tok), t->t[t->n].digest);
	OPENSSL_cleanse(tok, strlen(tok));
	t->n++;
	return 0;
}

struct http_tokens *
http_tokens_load(const char *path, char *err, size_t errlen)
{
	struct http_tokens *t = calloc(1, sizeof(*t));
	char line[TOKEN_LINE_MAX], why[160];
	struct stat sb;
	FILE *f = NULL;
	int fd, lineno = 0;

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		snprintf(
		    err, errlen, "http_tokens %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
		snprintf(err, errlen,
		    "http_tokens %s: mode %03o: group or others may read it "
		    "(chmod 600)",
		    path, (unsigned)(sb.st_mode & 0777));
		goto fail;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		snprintf(
		    err, errlen, "http_tokens %s: %s", path, strerror(errno));
		goto fail;
	}
	fd = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (token_line(t, line, lineno, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "http_tokens %s: %s", path, why);
			goto fail;
		}
	}
	OPENSSL_cleanse(line, sizeof(line));
	if (t->n == 0) {
		snprintf(err, errlen, "http_tokens %s: no tokens", path);
		goto fail;
	}
	fclose(f);
	return t;
fail:
	OPENSSL_cleanse(line, sizeof(line));
	if (f != NULL)
		fclose(f);
	if (fd != -1)
		close(fd);
	free(t);
	return NULL;
}

const char *
http_tokens_check(const struct http_tokens *t, const char *hdr)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	const char *found = NULL;

	if (t == NULL || hdr == NULL || strncasecmp(hdr, "Bearer ", 7) != 0)
		return NULL;
	hdr += 7;
	while (*hdr == ' ')
		hdr++;
	SHA256((const unsigned char *)hdr, strlen(hdr), d);
	for (size_t i = 0; i < t->n; i++)
		if (CRYPTO_memcmp(d, t->t[i].digest, sizeof(d)) == 0)
			found = t->t[i].name;
	return found;
}

void
http_tokens_free(struct http_tokens *t)
{
	if (t == NULL)
		return;
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

char *
http_file_load(const char *path, bool private_file, const char *key, char *err,
    size_t errlen)
{
	struct stat sb;
	char *buf = NULL;
	ssize_t n = -1;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s %s: %s", key, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > (1 << 20) ||
	    (private_file && (sb.st_mode & 077) != 0)) {
		snprintf(err, errlen,
		    "%s %s: not a regular file of at most 1 MiB%s", key, path,
		    private_file ? " that only its owner may read (chmod 600)"
		                 : "");
		goto out;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL ||
	    (n = read(fd, buf, (size_t)sb.st_size)) != sb.st_size) {
		snprintf(err, errlen, "%s %s: %s", key, path,
		    n == -1 ? strerror(errno) : "short read");
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
out:
	if (fd != -1)
		close(fd);
	return buf;
}

/* host ("name[:port]") names this machine's loopback: localhost, an
 * address 127.x.y.z, or [::1]. */
static bool
host_is_loopback(const char *host)
{
	size_t n = strcspn(host, ":");

	if (strncmp(host, "[::1]", 5) == 0)
		return host[5] == '\0' || host[5] == ':';
	if (host[n] != '\0' &&
	    strspn(host + n + 1, "0123456789") != strlen(host + n + 1))
		return false; /* a port that is not a number */
	if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
		return true;
	return n > 4 && strncmp(host, "127.", 4) == 0 &&
	    strspn(host, "0123456789.") == n;
}

bool
http_origin_ok(const char *host, const char *origin, bool loopback_only)
{
	const char *o = origin;

	if (host == NULL || host[0] == '\0')
		return false;
	if (loopback_only && !host_is_loopback(host))
		return false;
	if (origin == NULL)
		return true;
	if (strncasecmp(o, "http://", 7) == 0)
		o += 7;
	else if (strncasecmp(o, "https://", 8) == 0)
		o += 8;
	else
		return false; /* "null", or no scheme */
	return strcasecmp(o, host) == 0;
}
