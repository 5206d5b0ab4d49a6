/*
 * cfg.h - cluster.ini: parsed once with inih into one validated, immutable
 * struct cluster_cfg.
 *
 * Example (conf/cluster.ini is the commented one):
 *
 *     [cluster]
 *     name = demo
 *     ; f = 1                 ; default: largest f with n >= 3f+1
 *     checkpoint_interval = 100
 *     view_change_timeout = 10s
 *     data_dir = data
 *     control_socket = run/pbftd.sock
 *     control_client = admin
 *
 *     [node.0]
 *     address = 127.0.0.1:7000
 *     public_key = <64 hex digits>
 *     private_key_file = keys/node0.pem
 *
 *     [client.admin]
 *     public_key = <64 hex digits>
 *     private_key_file = keys/admin.pem
 *
 * Every error is reported as "FILE:LINE: what is wrong" (or "FILE: what is
 * wrong" when no line applies); callers print it and exit with status 2.
 * Relative paths are resolved against the directory of the config file.
 * Loading checks structure and values; private keys are only checked when a
 * caller asks for them (cfg_load_node_key, cfg_load_client_key), because a
 * host holds only the keys of the nodes it runs.
 */
#ifndef PBFT_CFG_H
#define PBFT_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "msg.h"

#define CFG_ERR_LEN 512
#define CFG_PATH_MAX 4096

/* Room for a window of full batches in the log and its compaction (200 x
 * 1 MiB with the defaults) and a checkpoint's snapshot. */
#define CFG_MIN_FREE_DEFAULT (256ULL << 20)

enum cfg_fsync {
	CFG_FSYNC_ALWAYS = 0, /* fsync every record */
	CFG_FSYNC_BATCH, /* one fsync per batch of records (default) */
	CFG_FSYNC_OFF, /* never: unsafe on power loss, for tests */
};

struct cfg_node {
	uint32_t id;
	char host[256]; /* empty when learned from bootstrap */
	uint16_t port;
	bool has_address;
	/* Address given at startup (pbft-replica --listen), not by the file:
	 * the node announces it to its peers, signed. */
	bool announce;
	uint8_t public_key[PBFT_PUBKEY_LEN];
	char private_key_file[CFG_PATH_MAX]; /* absolute; empty if not given */
	int line; /* line of the [node.N] header */
	int key_line; /* line of private_key_file, 0 if absent */
};

struct cfg_client {
	uint32_t id; /* index in file order, 0.. */
	char name[PBFT_NAME_BYTES_MAX];
	uint8_t public_key[PBFT_PUBKEY_LEN];
	char private_key_file[CFG_PATH_MAX];
	int line; /* line of the [client.NAME] header */
	int key_line; /* line of private_key_file, 0 if absent */
};

struct cluster_cfg {
	char path[CFG_PATH_MAX]; /* absolute path of the file loaded */
	char name[PBFT_NAME_BYTES_MAX];
	uint32_t n;
	uint32_t f;
	uint64_t checkpoint_interval; /* default 100 */
	uint64_t window; /* default 2 * checkpoint_interval */
	uint32_t view_change_timeout_ms; /* default 10000 */
	uint32_t batch_max; /* requests per batch, default 1024 */
	uint32_t batch_bytes_max; /* default 1 MiB */
	uint32_t batch_timeout_ms; /* default 10 */
	uint32_t inflight_max; /* batches in flight, default 2 */
	uint32_t request_timeout_ms; /* client retransmit, default 1000 */
	char data_dir[CFG_PATH_MAX]; /* default "data" next to the file */
	char control_socket[CFG_PATH_MAX]; /* default "pbftd.sock" next to it */
	char control_client[PBFT_NAME_BYTES_MAX]; /* client pbftd acts as */
	char metrics_listen[300]; /* host:port, empty = off */
	char bootstrap[300]; /* host:port of a known node, or "" */
	uint32_t bootstrap_id; /* the node at that address, or UINT32_MAX */
	enum cfg_fsync fsync;
	enum log_level log_level;
	/* Free space a replica keeps in its data directory: below it, it
	 * takes no new client requests. 0: no reserve. */
	uint64_t min_free_bytes;
	struct cfg_node nodes[PBFT_REPLICAS_MAX];
	uint32_t nclients;
	struct cfg_client *clients; /* nclients entries */
};

/*
 * Parses and validates path into a new config. Returns it, or NULL with
 * the first problem written to err ("FILE:LINE: ..."). Free with cfg_free.
 */
struct cluster_cfg *cfg_load(const char *path, char *err, size_t errlen);
void cfg_free(struct cluster_cfg *cfg); /* safe on NULL */

/* Finds a client by name; NULL if absent. */
const struct cfg_client *cfg_client_by_name(
    const struct cluster_cfg *cfg, const char *name);

/*
 * Loads node id's private key (checks: file given, readable, not readable by
 * group or others, a valid Ed25519 PEM key, matching public_key). *out is an
 * EVP_PKEY * owned by the caller. Returns 0, or -1 with err set.
 */
int cfg_load_node_key(const struct cluster_cfg *cfg, uint32_t id, void **out,
    char *err, size_t errlen);
int cfg_load_client_key(const struct cluster_cfg *cfg, uint32_t client,
    void **out, char *err, size_t errlen);

/* Writes "host:port" ("[host]:port" for an IPv6 address) into buf. */
void cfg_format_address(const char *host, uint16_t port, char *buf, size_t len);
/* Parses "host:port" (IPv4, [IPv6] or name) into host and port. */
int cfg_parse_address(
    const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
