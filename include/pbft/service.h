/*
 * pbft/service.h - running a replica of a pbft cluster with a service of
 * your own.
 *
 * A service is a deterministic state machine: given the same operations in
 * the same order, every correct replica must reach the same state, return
 * the same results and compute the same digest. So execute may depend only
 * on the state and its arguments: no clock, no randomness, no file or
 * network input, no iteration over a hash table seeded per process. The
 * library orders the operations (PBFT), keeps a write-ahead log, and takes a
 * snapshot of the state at every checkpoint; a replica that restarts or
 * falls behind gets the state back from its snapshot or from the other
 * replicas (checked against the digest 2f+1 of them certified) and then
 * executes what follows. Duplicates are filtered before execute.
 *
 * Minimal service (a counter; examples/counter/ has the whole program):
 *
 *     static void *create(void *arg) { return calloc(1, 8); }
 *     static void destroy(void *st) { free(st); }
 *     static uint8_t execute(void *st, uint64_t seq, uint32_t client,
 *         const uint8_t *op, size_t len, uint8_t *res, size_t *res_len)
 *     {
 *             uint64_t *v = st;
 *             *v += 1;
 *             memcpy(res, v, 8);
 *             *res_len = 8;
 *             return 0;
 *     }
 *     ... digest, snapshot, restore ...
 *     static const struct pbft_service_ops ops = {create, destroy,
 *         execute, digest, snapshot, restore};
 *
 *     struct pbft_replica *r = pbft_replica_new(loop, conf, node, &ops,
 *         NULL, err, sizeof(err));
 *     ev_run(loop, 0);
 *
 * Failures: a replica whose disk fails while it runs (a write or sync of
 * its log, snapshots or data directory that fails) stops the whole
 * process at once, with a line on standard error naming the file and the
 * error, rather than go on from a state it cannot make durable; so do a
 * failed snapshot of the service, a lack of memory and a broken internal
 * invariant. Run a replica in a process of its own
 * (restarted by a supervisor, as pbftd does) unless that suits the
 * program. pbft_replica_new reports what it finds wrong at the start
 * through err instead.
 *
 * Threads: pbft_replica_new, pbft_replica_free and
 * pbft_replica_status_json on the thread that runs the replica's loop
 * (pbft_replica_new while it is not running); every service callback runs
 * on that thread too, one at a time.
 */
#ifndef PBFT_PUBLIC_SERVICE_H
#define PBFT_PUBLIC_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <pbft/api.h>

PBFT_BEGIN_DECLS

struct ev_loop;
struct pbft_conf;
struct pbft_replica;

#define PBFT_DIGEST_BYTES 32
#define PBFT_SERVICE_RESULT_MAX 4096 /* bytes of one result */

struct pbft_service_ops {
	/* A new, empty state; NULL if out of memory. arg is the one given
	 * to pbft_replica_new. Called at the start and to check a state
	 * fetched from other replicas before it replaces the current one. */
	void *(*create)(void *arg);
	void (*destroy)(void *state);
	/*
	 * Executes one operation of client (its id, pbft_conf_client_id) at
	 * sequence number seq. Writes at most PBFT_SERVICE_RESULT_MAX bytes
	 * to result and their count to *result_len; returns the status the
	 * client sees (0 for success, else a code of the service's own).
	 * Must not fail in a way that could differ between replicas (abort
	 * on lack of memory instead).
	 */
	uint8_t (*execute)(void *state, uint64_t seq, uint32_t client,
	    const uint8_t *op, size_t op_len, uint8_t *result,
	    size_t *result_len);
	/* A digest of the whole state: equal states, equal digests; and
	 * different states should not share one (e.g. SHA-256 of an image
	 * that is canonical). */
	void (*digest)(void *state, uint8_t out[PBFT_DIGEST_BYTES]);
	/* An image of the whole state, in *image (allocated with malloc;
	 * the library frees it) of *len bytes; 0, or -1, which stops the
	 * process as a failed disk does (a checkpoint cannot be skipped).
	 * Equal states must give equal images. */
	int (*snapshot)(void *state, uint8_t **image, size_t *len);
	/* Sets a state (just made by create) from an image snapshot made;
	 * 0, or -1 if the image is malformed. */
	int (*restore)(void *state, const uint8_t *image, size_t len);
};

/*
 * Starts node `node` of conf on loop: opens its data directory (the
 * configuration's data_dir), replays its log, restores the service from
 * its latest snapshot, reads the node's private key and starts listening.
 * ops NULL runs the built-in ledger + key-value service (as pbft-replica
 * does); arg goes to ops->create. conf is borrowed: it must outlive the
 * replica. Returns the replica, or NULL with err set.
 */
PBFT_API struct pbft_replica *pbft_replica_new(struct ev_loop *loop,
    struct pbft_conf *conf, uint32_t node, const struct pbft_service_ops *ops,
    void *arg, char *err, size_t errlen);
/* Stops (recording a clean stop in the log), closes, frees; safe on
 * NULL. */
PBFT_API void pbft_replica_free(struct pbft_replica *r);
/* One line of JSON (view, primary, last executed, ...) into buf; 0, or -1
 * if it does not fit. */
PBFT_API int pbft_replica_status_json(
    struct pbft_replica *r, char *buf, size_t len);

PBFT_END_DECLS

#endif
