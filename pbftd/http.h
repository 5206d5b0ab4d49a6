/*
 * http.h - pbftd's HTTP server (http.c): the JSON API, the status page and
 * /metrics on http_listen, and /metrics alone on metrics_listen.
 */
#ifndef PBFTD_HTTP_H
#define PBFTD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct pbftd;
struct http;

/*
 * Starts what the configuration asks for (http_listen, metrics_listen).
 * Returns the server, or NULL: with err empty when neither is set, with
 * err set when one cannot start (bad tokens file, address in use, ...).
 */
struct http *http_new(struct pbftd *d, char *err, size_t errlen);
/* What http_new would refuse, without binding: the tokens file, the TLS
 * files, a non-loopback http_listen without tokens (for pbftd -t). */
struct cluster_cfg;
int http_check(const struct cluster_cfg *cfg, char *err, size_t errlen);
/* Closes every connection; safe on NULL. Call after the client and the
 * control server are freed: their last answers resume connections here. */
void http_free(struct http *h);

/* Bearer tokens (exposed for the unit test). */
struct http_tokens;
/* Loads "NAME TOKEN" lines; refuses a file group or others may read. */
struct http_tokens *http_tokens_load(
    const char *path, char *err, size_t errlen);
/* The name of the token that matches hdr ("Bearer TOKEN"), or NULL; every
 * token is compared, in time independent of where they differ. */
const char *http_tokens_check(const struct http_tokens *t, const char *hdr);
void http_tokens_free(struct http_tokens *t);
/*
 * Whether a request may be served given its Host and Origin headers (NULL
 * if absent): a web page of another origin sends an Origin that is not
 * "scheme://Host", and is refused, so that a page the operator visits
 * cannot use the API through the operator's browser; with loopback_only
 * (no tokens: the API is open to whoever reaches loopback) Host must also
 * name loopback (localhost, 127.x, [::1]), which refuses a page that got
 * a name of its own resolved to 127.0.0.1 (DNS rebinding).
 */
bool http_origin_ok(const char *host, const char *origin, bool loopback_only);
/* A whole file (at most 1 MiB) as a string the caller frees; a private
 * one (a TLS key) is refused when group or others may read it. */
char *http_file_load(const char *path, bool private_file, const char *key,
    char *err, size_t errlen);

#endif
