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
 *     ; admin = yes          ; may put and delete any key
 *     ; write_prefixes = a/  ; may write keys under a/, whoever made them
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

/* Who may talk to a replica before any cryptography (see cluster.ini(5)). */
enum cfg_accept {
	CFG_ACCEPT_ANY = 0, /* connections from any address (default) */
	CFG_ACCEPT_REPLICAS, /* only from the replicas' configured addresses */
};
enum cfg_replica_source {
	CFG_SOURCE_MATCH =
	    0, /* a replica's HELLO from its own host (default) */
	CFG_SOURCE_ANY, /* from anywhere (hosts that dial from another IP) */
};
#define CFG_HANDSHAKE_RATE_DEFAULT 100 /* a second, per address */
#define CFG_HANDSHAKES_MAX_DEFAULT 64
#define CFG_CONNS_PER_ADDRESS_DEFAULT 128

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
	/* Its passphrase's file, when the key is encrypted; empty if not. */
	char passphrase_file[CFG_PATH_MAX];
	int line; /* line of the [node.N] header */
	int key_line; /* line of private_key_file, 0 if absent */
};

/* Key prefixes (write_prefixes, shared_prefixes): comma-separated. */
#define CFG_PREFIXES_MAX 16
#define CFG_PREFIX_BYTES_MAX 255

struct cfg_prefixes {
	uint32_t n;
	char *p[CFG_PREFIXES_MAX]; /* NUL-terminated, 1..255 bytes */
};

struct cfg_client {
	uint32_t id; /* index in file order, 0.. */
	char name[PBFT_NAME_BYTES_MAX];
	uint8_t public_key[PBFT_PUBKEY_LEN];
	char private_key_file[CFG_PATH_MAX];
	char passphrase_file[CFG_PATH_MAX]; /* as for a node */
	/* Key-value access (pbft-replica/service.c): an admin may put and
	 * delete any key; write_prefixes lets it write keys under them
	 * whoever created them. */
	bool admin;
	struct cfg_prefixes write_prefixes;
	int line; /* line of the [client.NAME] header */
	int key_line; /* line of private_key_file, 0 if absent */
};

#define CFG_HEARTBEAT_INTERVAL_DEFAULT 1000
#define CFG_DEAD_AFTER_DEFAULT 5000

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
	/* request bytes the primary queues, default 64 MiB; a client's share
	 * is a quarter of it, at least 1 MiB */
	uint64_t queue_bytes_max;
	uint32_t request_timeout_ms; /* client retransmit, default 1000 */
	char data_dir[CFG_PATH_MAX]; /* default "data" next to the file */
	char control_socket[CFG_PATH_MAX]; /* default "pbftd.sock" next to it */
	char control_client[PBFT_NAME_BYTES_MAX]; /* client pbftd acts as */
	char metrics_listen[300]; /* host:port, empty = off */
	/* HTTP API (pbftd): host:port, empty = off; bearer tokens file; TLS
	 * certificate and key files, both or neither. */
	char http_listen[300];
	char http_tokens[CFG_PATH_MAX];
	char http_cert[CFG_PATH_MAX];
	char http_key[CFG_PATH_MAX];
	char bootstrap[300]; /* host:port of a known node, or "" */
	uint32_t bootstrap_id; /* the node at that address, or UINT32_MAX */
	enum cfg_fsync fsync;
	enum log_level log_level;
	/* Key-value store: per-client quotas on the keys a client owns and
	 * their bytes (key + value), 0 = unlimited; keys under
	 * shared_prefixes any client may write. */
	uint64_t client_max_keys;
	uint64_t client_max_bytes;
	struct cfg_prefixes shared_prefixes;
	/* Admission of connections (0: the default). */
	uint32_t handshake_rate; /* new connections a second per address */
	uint32_t handshakes_max; /* unauthenticated ones at once */
	uint32_t conns_per_address; /* open connections per address */
	enum cfg_accept accept_from;
	enum cfg_replica_source replica_source;
	/* Free space a replica keeps in its data directory: below it, it
	 * takes no new client requests. 0: no reserve. */
	uint64_t min_free_bytes;
	/* Peer links: a heartbeat after heartbeat_interval_ms with nothing
	 * sent; a link with nothing heard for dead_after_ms is closed (and
	 * redialled). 0 (a config not made by cfg_load): the defaults. */
	uint32_t heartbeat_interval_ms; /* default 1000 */
	uint32_t dead_after_ms; /* default 5000, >= 2 heartbeat intervals */
	struct cfg_node nodes[PBFT_REPLICAS_MAX];
	uint32_t nclients;
	struct cfg_client *clients; /* nclients entries */
};

/*
 * Parses and validates path into a new config. Returns it, or NULL with
 * the first problem written to err ("FILE:LINE: ..."). Free with cfg_free.
 */
/* The defaults of every [cluster] key, as cfg_load starts from (no paths). */
void cfg_defaults(struct cluster_cfg *c);
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
