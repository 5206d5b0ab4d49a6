/*
 * pbft/client.h - a client of a pbft cluster: submit operations, get
 * results that f+1 replicas agree on.
 *
 * A client keeps an authenticated connection to every replica of the
 * cluster, signs each request with its private key (the private_key_file
 * of its [client.NAME] section, or a systemd credential, see cluster.ini(5)),
 * sends it to the replica it believes is the primary, and retransmits it
 * to all replicas with backoff until f+1 replicas send matching replies or
 * the request times out. A result is never the word of one, possibly
 * faulty, replica. Requests go out one at a time in submission order.
 *
 * Minimal use (error handling left out):
 *
 *     static void done(void *arg, const struct pbft_result *res)
 *     {
 *             if (res->status == PBFT_CLIENT_OK &&
 *                 res->svc_status == PBFT_SVC_OK)
 *                     ...res->result, res->result_len...
 *     }
 *
 *     struct ev_loop *loop = EV_DEFAULT;
 *     char err[PBFT_ERR_LEN];
 *     struct pbft_conf *conf = pbft_conf_load("cluster.ini", err,
 *         sizeof(err));
 *     struct pbft_client *c = pbft_client_open(loop, conf, "app", NULL,
 *         err, sizeof(err));
 *     pbft_client_submit(c, op, op_len, done, NULL);
 *     pbft_client_wait(loop, c);      (or ev_run(loop, 0) in a server)
 *
 * Threads: every function here, but for pbft_client_open, takes a client
 * and must be called on the thread that runs the client's loop (from a
 * callback, or while the loop is not running); callbacks run on that
 * thread. pbft_client_open may be called on any thread while that loop is
 * not running.
 */
#ifndef PBFT_PUBLIC_CLIENT_H
#define PBFT_PUBLIC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <pbft/api.h>

PBFT_BEGIN_DECLS

struct ev_loop;
struct pbft_conf;
struct pbft_client;

enum pbft_client_status {
	PBFT_CLIENT_OK = 0, /* f+1 matching replies */
	PBFT_CLIENT_TIMEOUT = 1, /* no quorum within the timeout */
	PBFT_CLIENT_CANCELLED = 2, /* client freed before completion */
};

struct pbft_result {
	enum pbft_client_status status;
	uint64_t seq; /* sequence number that executed the request */
	uint64_t view; /* view of the first matching reply */
	uint8_t svc_status; /* the service's status code (enum pbft_svc) */
	const uint8_t *result; /* valid during the callback only */
	uint32_t result_len;
	uint64_t latency_us;
};

/* Runs exactly once per submitted request, on the loop's thread. */
typedef void (*pbft_client_cb)(void *arg, const struct pbft_result *res);

/* Optional settings of pbft_client_open; 0 in a field: its default. */
struct pbft_client_params {
	uint32_t timeout_ms; /* per request; default 30 s */
	uint32_t retransmit_ms; /* first retransmission; default cfg's */
	uint32_t max_outstanding; /* submitted, unanswered; default 1024 */
};

/*
 * Connects as client [client.NAME] of conf (borrowed: it must outlive the
 * client) on loop, reading that client's private key now. params may be
 * NULL. Returns the client, connecting in the background (requests
 * submitted before the connections are up wait for them), or NULL with
 * err set.
 */
PBFT_API struct pbft_client *pbft_client_open(struct ev_loop *loop,
    const struct pbft_conf *conf, const char *name,
    const struct pbft_client_params *params, char *err, size_t errlen);
/* Fails every outstanding request with PBFT_CLIENT_CANCELLED (their
 * callbacks run before it returns), closes, frees. Safe on NULL; not from
 * one of this client's callbacks. */
PBFT_API void pbft_client_free(struct pbft_client *c);

/*
 * Submits an operation of the service (copied; at most 64 KiB). cb runs
 * exactly once, later, from the loop. Returns 0, or -1 if op is too large
 * or max_outstanding requests are unanswered.
 */
PBFT_API int pbft_client_submit(struct pbft_client *c, const uint8_t *op,
    size_t len, pbft_client_cb cb, void *arg);

/*
 * Runs loop (the one c was opened on) until none of c's requests is
 * unanswered: every callback has run. For programs that want an answer
 * before going on; the wait is bounded by the requests' timeout_ms.
 */
PBFT_API void pbft_client_wait(struct ev_loop *loop, struct pbft_client *c);

/* Status: replicas connected now (handshake done), requests unanswered. */
PBFT_API uint32_t pbft_client_connected(const struct pbft_client *c);
PBFT_API uint32_t pbft_client_outstanding(const struct pbft_client *c);

/*
 * The built-in service (ledger + key-value store), which pbftd's replicas
 * run. Its status codes, in struct pbft_result's svc_status:
 */
enum pbft_svc {
	PBFT_SVC_OK = 0,
	PBFT_SVC_NOT_FOUND = 1, /* get/del of a key that is not there */
	PBFT_SVC_BAD_OP = 2, /* the operation does not parse */
	PBFT_SVC_TOO_BIG = 3, /* a value that does not fit a reply */
	PBFT_SVC_DENIED = 4, /* put/del of a key this client may not write */
	PBFT_SVC_QUOTA = 5, /* past the owner's key or byte quota */
};

/*
 * Requests of the built-in service, as pbft_client_submit: 0, or -1 (also
 * for a key that is empty or longer than 1024 bytes). Results:
 * ledger_submit: the entry's ledger index, u64 little-endian; kv_get: the
 * value, or PBFT_SVC_NOT_FOUND; kv_put, kv_del: empty, or the status that
 * refused them (cluster.ini(5), KEY-VALUE ACCESS).
 */
PBFT_API int pbft_ledger_submit(struct pbft_client *c, const void *tx,
    size_t len, pbft_client_cb cb, void *arg);
PBFT_API int pbft_kv_put(struct pbft_client *c, const void *key, size_t klen,
    const void *val, size_t vlen, pbft_client_cb cb, void *arg);
PBFT_API int pbft_kv_get(struct pbft_client *c, const void *key, size_t klen,
    pbft_client_cb cb, void *arg);
PBFT_API int pbft_kv_del(struct pbft_client *c, const void *key, size_t klen,
    pbft_client_cb cb, void *arg);

PBFT_END_DECLS

#endif
