/*
 * service.h - the replicated application behind the consensus core.
 *
 * A service is any deterministic state machine: given the same requests in the
 * same order, every correct replica must produce the same results and the same
 * state digest. Embedders implement struct service_ops; pbft ships one built-in
 * service (service_ledger_new): an ordered transaction ledger plus a key-value
 * store, which is what pbftctl's submit, put, get and del talk to.
 *
 * The service knows nothing of clients' identities beyond the id it is handed,
 * nor of duplicates: the core filters those before execution.
 */
#ifndef PBFT_SERVICE_H
#define PBFT_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "svcop.h" /* status codes, the built-in operations' encoding */
#include "wbuf.h"

struct service;

struct service_ops {
	/*
	 * Executes one request at sequence number seq. Writes at most
	 * PBFT_RESULT_BYTES_MAX bytes to result and their count to *result_len,
	 * and returns an enum service_status (or an embedder's own code < 256).
	 * Must be deterministic and must not fail for lack of memory in a way
	 * that differs between replicas (abort instead).
	 */
	uint8_t (*execute)(struct service *s, uint64_t seq, uint32_t client,
	    const uint8_t *op, size_t op_len, uint8_t *result,
	    size_t *result_len);
	/* Digest of the whole state (deterministic across replicas). */
	void (*digest)(struct service *s, uint8_t out[PBFT_DIGEST_LEN]);
	/* Appends a self-contained image of the state to out; 0 or -1. */
	int (*snapshot)(struct service *s, struct wbuf *out);
	/* Replaces the state with an image from snapshot; 0 or -1 (bad image,
	 * state unchanged). */
	int (*restore)(struct service *s, const uint8_t *img, size_t len);
	/* Pushes buffered output (e.g. a journal) to the kernel; may be NULL.
	 */
	void (*flush)(struct service *s);
	/*
	 * Incremental checkpoints, for a service that keeps most of its state
	 * in a durable file of its own. All four NULL: the replica takes
	 * whole snapshot images instead.
	 * checkpoint: appends a head such that the snapshot image is exactly
	 *   head || the file's first *tail_len bytes, and those bytes never
	 *   change afterwards (the file only grows until a restore). 0 or -1.
	 * tail_read: len bytes of the file at off. 0 or -1.
	 * sync: makes the file durable up to its end. 0 or -1.
	 * file_fd: the file's descriptor, for fdatasync on another thread after
	 *   flush (which pushes what sync would make durable); may be NULL.
	 * reopen: after a restart, the state of a head and the file (img NULL:
	 *   the empty state); sets *tail_len. -1 if the file does not hold
	 *   what the head names (state unchanged: fetch it instead).
	 */
	int (*checkpoint)(
	    struct service *s, struct wbuf *out, uint64_t *tail_len);
	int (*tail_read)(
	    struct service *s, uint64_t off, uint8_t *buf, size_t len);
	int (*sync)(struct service *s);
	int (*file_fd)(struct service *s);
	int (*reopen)(struct service *s, const uint8_t *img, size_t len,
	    uint64_t *tail_len);
	/*
	 * State transfer (replica.c). A fetched state is a head, as checkpoint
	 * writes it, then its tail. The head must name everything the digest
	 * covers, the tail's length too, so that a fetched head is checked
	 * against the certified digest before any of its tail is fetched, and
	 * the tail it names is then the only one taken. A correct replica's
	 * tail only grows, so the tail this service holds is the start of any
	 * later checkpoint's tail: only the rest is fetched, checked as it
	 * comes and staged past the service's own (in its file), not in
	 * memory; the state itself does not change until stage_install. What
	 * is staged stays across a change of the checkpoint fetched, since a
	 * later checkpoint's tail extends an earlier one's; it is forgotten
	 * when the state changes.
	 * head_tail: the tail length named by a head of which len bytes are
	 *   known: 0 and *tail_len, 1 if more bytes are needed, -1 malformed.
	 * stage_have: the tail bytes held: the service's own and those staged.
	 * stage_check: takes a whole fetched head, before its tail: 0 with the
	 *   digest the state will have once the tail it names is staged, -1 if
	 *   it is malformed or cannot extend what the service holds. What is
	 *   staged stays if it can be the start of that tail.
	 * stage_put: stages fetched tail bytes after those held; -1 if no head
	 *   was checked, if they go one byte past the tail it names, or if
	 *   they cannot be part of it (drop them, and fetch from elsewhere).
	 *   Never writes past that tail.
	 * stage_install: adopts the head last checked with the staged tail,
	 *   if that is exactly the tail it names (durable when it returns); 0,
	 *   or -1 (none checked, or the tail not complete).
	 * stage_drop: forgets what was staged, and the head checked.
	 */
	int (*head_tail)(const uint8_t *head, size_t len, uint64_t *tail_len);
	uint64_t (*stage_have)(struct service *s);
	int (*stage_put)(struct service *s, const uint8_t *p, size_t len);
	int (*stage_check)(struct service *s, const uint8_t *head, size_t len,
	    uint8_t digest[PBFT_DIGEST_LEN]);
	int (*stage_install)(struct service *s);
	void (*stage_drop)(struct service *s);
	void (*free)(struct service *s);
};

struct service {
	const struct service_ops *ops;
};

#define LEDGER_OWNER_NONE UINT32_MAX /* keys from an image without owners */

/*
 * Key-value access. Each key belongs to the client that created it (its
 * id: its position among cluster.ini's [client.NAME] sections). Anyone may
 * get a key; a put to an existing key or a del is allowed to its owner, to
 * an admin client, to a client with a write_prefixes entry the key starts
 * with, and to anyone for a key under shared_prefixes; otherwise
 * SVC_DENIED. Keys read from an image that predates owners have
 * LEDGER_OWNER_NONE: only an admin or a prefix grant may change them. A put
 * that would take the owner past client_max_keys keys or client_max_bytes
 * bytes (keys plus values; 0 = unlimited) is SVC_QUOTA. Without
 * service_ledger_access: owners only, no admin, no prefixes, no quotas.
 */

/* The built-in ledger + key-value service; NULL on allocation failure. */
struct service *service_ledger_new(void);
struct cluster_cfg;
/* Takes the rules above from cfg (copied; cfg may go). Every replica must
 * be given the same configuration. 0 or -1 (out of memory). */
int service_ledger_access(struct service *s, const struct cluster_cfg *cfg);

/*
 * The same, keeping the ledger in a journal in the file at path instead of
 * memory: one record per transaction, u64 index | u32 length | bytes,
 * little-endian, rewritten whole when an image is restored. Replicas that
 * agree have byte-identical journals. The file is not truncated: call
 * reopen before executing anything. NULL with errno set on failure.
 */
struct service *service_ledger_open(const char *journal_path);

/* Number of ledger entries. */
uint64_t service_ledger_count(struct service *s);

#endif
