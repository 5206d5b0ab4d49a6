/*
 * fuzz_http.c - libFuzzer target for pbftd's HTTP access checks
 * (pbftd/http_auth.c): the input's first line is a client's Host header,
 * its second an Origin header, its third an Authorization header; the rest
 * is written as a tokens file (mode 0600) and loaded. Nothing may crash;
 * an Origin that names another host than Host must never pass, and a
 * header can only match a token the file holds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

/* Line i (0-based) of the input, NUL-terminated in out; the offset after
 * it. */
static size_t
line_at(const uint8_t *data, size_t size, size_t off, char *out, size_t cap)
{
	size_t n = 0;

	while (off < size && data[off] != '\n') {
		if (n + 1 < cap && data[off] != '\0')
			out[n++] = (char)data[off];
		off++;
	}
	out[n] = '\0';
	return off < size ? off + 1 : off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[512], origin[512], auth[1200], err[256];
	struct http_tokens *t;
	size_t off = 0;
	FILE *f;

	off = line_at(data, size, off, host, sizeof(host));
	off = line_at(data, size, off, origin, sizeof(origin));
	off = line_at(data, size, off, auth, sizeof(auth));
	for (int lo = 0; lo < 2; lo++) {
		if (http_origin_ok(host, origin, lo == 1)) {
			const char *o = strstr(origin, "://");

			/* Passed: the origin is this very host. */
			if (o == NULL || strcasecmp(o + 3, host) != 0)
				abort();
		}
		(void)http_origin_ok(host, NULL, lo == 1);
	}
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/fuzz-http-%d.tokens",
		    (int)getpid());
	if ((f = fopen(path, "w")) == NULL)
		abort();
	if (size > off && fwrite(data + off, 1, size - off, f) != size - off)
		abort();
	fclose(f);
	if (chmod(path, 0600) == -1)
		abort();
	if ((t = http_tokens_load(path, err, sizeof(err))) != NULL) {
		const char *who = http_tokens_check(t, auth);

		/* A match names a token holder: a name from the file. */
		if (who != NULL &&
		    memmem(data + off, size - off, who, strlen(who)) == NULL)
			abort();
		http_tokens_free(t);
	}
	return 0;
}
