/*
 * replica.h - one pbft replica: the glue between the consensus core, the
 * network, the durable store and the service.
 *
 * The glue takes no protocol decisions. It turns network frames, ticks and
 * state-digest answers into core events, and carries out the core's actions
 * in the order the core's contract demands: every PERSIST of a step is
 * written and synced before any message of that step leaves. It also runs
 * the parts of state transfer that move bytes (fetching and serving snapshot
 * chunks); whether a fetched state is trusted is decided by comparing its
 * digest with the one 2f+1 replicas certified.
 */
#ifndef PBFT_REPLICA_H
#define PBFT_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

#define REPLICA_TICK_MS 10

struct replica;
struct service;
struct store;
struct ev_loop;
struct pbft_crypto;

struct replica_opts {
	uint32_t id;
	bool insecure_dev; /* --dev: keys derived from the index */
	int sup_fd; /* supervisor link (fd 3), or -1 */
	const char *faults; /* PBFT_FAULTS (fault-injection builds only) */
	/*
	 * The service to replicate; NULL: the built-in ledger with its
	 * journal in the data directory. Called once by replica_new with the
	 * node's data directory; the replica frees what it returns. NULL
	 * with err set on failure.
	 */
	struct service *(*service_open)(
	    void *arg, const char *dir, char *err, size_t errlen);
	void *service_arg;
	/*
	 * For the simulator (tests/sim/rsim.c); production leaves them zero.
	 * now: the clock in seconds (NULL: the loop's, ev_now); random: the
	 * driver's random choices (NULL: getrandom); both get env_ctx.
	 * core_crypto:
	 * the core's signatures and digests instead of the real keys' (key
	 * may then be NULL). test_flags: REPLICA_TEST_*, planted driver bugs
	 * that the simulator must catch; core_test_flags: PBFT_TEST_*, the
	 * core's planted bugs (pbft-replica/core/pbft.h), passed to it.
	 */
	double (*now)(void *ctx);
	uint32_t (*random)(void *ctx);
	void *env_ctx;
	const struct pbft_crypto *core_crypto;
	uint32_t test_flags;
	uint32_t core_test_flags;
};

/* Planted bugs (test_flags), never set outside the simulator's tests. */
#define REPLICA_TEST_EARLY_COMMIT 0x1 /* a commit leaves before its record */
#define REPLICA_TEST_XFER_NO_DIGEST 0x2 /* install an uncertified state */
#define REPLICA_TEST_REPLY_MIX 0x4 /* resend another client's reply */

/*
 * Builds a replica for node opts->id of cfg on loop: opens and replays the
 * data directory, restores the latest snapshot, starts listening. key is
 * this node's private key (ownership passes to the replica). Returns NULL
 * with err set on failure. With loop NULL the replica installs no watchers:
 * its environment calls the entry points below instead.
 */
struct replica *replica_new(struct ev_loop *loop, struct cluster_cfg *cfg,
    void *key, const struct replica_opts *opts, char *err, size_t errlen);
void replica_free(struct replica *r); /* safe on NULL */
/*
 * For a simulator, after the disk under the replica crashed (simfs_crash):
 * frees r without any more disk work (no stop record, store jobs not yet
 * run dropped: store_abandon). Safe on NULL.
 */
void replica_abandon(struct replica *r);

/*
 * A replica without a loop is driven through these (with a loop, its own
 * watchers call them). replica_tick: every REPLICA_TICK_MS.
 * replica_before_wait: when nothing else is to be done now (starts the
 * group commit's flush). replica_disk_event: a store job (a flush, a
 * snapshot, a compaction) may have ended.
 */
void replica_tick(struct replica *r);
void replica_before_wait(struct replica *r);
void replica_disk_event(struct replica *r);
struct store *replica_store(struct replica *r);

/*
 * What the replica holds in memory beyond what it allocates at start, for
 * checks that it stays bounded (the simulator's): read-only.
 */
struct replica_mem {
	uint64_t core_queued_reqs, core_queued_bytes; /* primary's queue */
	uint64_t core_pending_reqs; /* backup: waiting to be executed */
	uint64_t window; /* high mark - last executed */
	uint64_t reply_slots; /* clients with a cached reply */
	uint64_t snaps, snap_bytes; /* checkpoint images held, their room */
	uint64_t xfer_bytes; /* room of a state transfer's image head */
	uint64_t actions; /* room of the core's action list */
};
void replica_mem_stats(const struct replica *r, struct replica_mem *m);

/* One line of JSON (no newline) describing the replica, for pbftd. */
int replica_status_json(struct replica *r, char *buf, size_t len);

#endif
