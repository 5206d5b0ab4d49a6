/*
 * rsim.h - a deterministic simulator that runs the real replica driver
 * (pbft-replica/replica.c, xfer.c, store*.c, service.c) n times in one
 * process, over a simulated network (tests/sim/rsim_net.c) and virtual
 * time, with one seed deciding every delay, drop, duplicate, partition,
 * crash and Byzantine action.
 *
 * The replicas' data directories live on the simulated disk
 * (tests/sim/simfs.h), whose store jobs run when the simulator says
 * (store_inline_workers): a flush, a snapshot or a compaction ends in any
 * order against the frames in flight, and a crash (simfs_crash, then
 * replica_abandon) loses what was not durable and may tear the last write.
 *
 * Unlike sim.c, which drives the core with a driver of its own, it checks
 * the real group commit, state transfer, reply cache and recovery, from
 * what crosses the simulated network: checkpoint digests agree per seq;
 * no correct replica signs two digests for one (view, seq) in its
 * PRE-PREPAREs, PREPAREs or COMMITs, across restarts; a correct replica
 * that sent a COMMIT names the slot prepared in every later VIEW-CHANGE
 * (its prepared record was durable before the COMMIT left, as
 * pbft-replica/core/pbft.h demands, and survived any crash); correct
 * replicas answer a (client, timestamp) with one result, retransmissions
 * included; the clients, which are the client library (common/client.c),
 * complete each request with that result, in submission order; once the
 * faults stop, every request completes within a bound. A fixed scenario
 * (tests/sim/rsim_scen.h) takes the place of the random faults with checks
 * of its own.
 * tests/sim/rsim_check.h reads the replicas' disks and memory: a frame's
 * records durable when it leaves (on the disk as a crash would leave
 * it), damage to a restarting replica's disk refused or harmless
 * (--corrupt), what a replica retains bounded (--long).
 */
#ifndef PBFT_RSIM_H
#define PBFT_RSIM_H

#include <stdbool.h>
#include <stdint.h>

enum rsim_byz {
	RSIM_BYZ_RANDOM = -1,
	RSIM_BYZ_SILENT = 0, /* sends nothing */
	RSIM_BYZ_MUTATE, /* flips bytes of frames, sends garbage */
	/* correct but for the state it serves: a byte of every chunk
	 * altered, the frame otherwise well-formed */
	RSIM_BYZ_LIE_STATE,
	/* tests/sim/rsim_byz.h: the old simulator's behaviours, as
	 * transforms of what the real driver sends */
	RSIM_BYZ_EQUIVOCATE,
	RSIM_BYZ_WRONG_DIGEST,
	RSIM_BYZ_REPLAY,
	RSIM_BYZ_VOTE_ALL,
	RSIM_BYZ_BAD_NEWVIEW,
	RSIM_BYZ_LYING_VC,
	RSIM_BYZ_COUNT,
};

struct rsim_opts {
	uint64_t seed;
	uint32_t n, f;
	uint32_t byz; /* Byzantine replicas (<= f) */
	int byz_mode; /* enum rsim_byz */
	uint32_t clients, requests; /* requests per client */
	uint32_t interval; /* checkpoint interval; the window is twice it */
	bool crashes, partitions;
	double drop, dup; /* during the fault phase */
	uint32_t fault_ms; /* faults stop then */
	uint32_t live_ms; /* every request done within this after */
	uint32_t test_flags; /* REPLICA_TEST_* for the correct replicas */
	bool trace, quiet;
	/* a fixed scenario (tests/sim/rsim_scen.h, enum rsim_scen)
	 * instead of the random faults; its bounds (0: none) and how long
	 * the stranded scenario's link stays dead (0: its default) */
	int scenario;
	uint32_t back_max_ms, converge_max_ms, dead_link_ms;
	/* PBFT_TEST_* (pbft-replica/core/pbft.h), planted core bugs, for the
	 * correct replicas */
	uint32_t core_test_flags;
	/* tests/sim/rsim_check.h */
	uint32_t durable_every; /* a covered frame in about every: durable? */
	bool corrupt; /* damage a byte of a restarting replica's disk */
	/* the i-th Byzantine replica's mode: byz_modes[i % nbyz_modes]
	 * (none: byz_mode) */
	int byz_modes[16];
	uint32_t nbyz_modes;
	/* --long: the run's length, not the window, must not size what a
	 * replica holds (sampled at its checkpoints) */
	bool long_run;
	/* a correct replica asked for state may stop then (stall_some) */
	bool stall_xfer;
};

struct rsim_result {
	bool ok;
	char violation[512];
	uint64_t end_ms, events, completed, crashes;
	uint64_t trace_digest; /* of the whole run's event trace */
	/* whole-cluster crash: restart to the first completion;
	 * stranded: final heal to one last_executed */
	uint64_t back_ms, converge_ms;
	/* disk damage done, starts refused for it (the disk then
	 * wiped), starts it did not matter to, journals cut back */
	uint64_t corrupt[4];
	/* state transfers that asked a lying and a silent or stalled
	 * replica */
	uint64_t xfer_mixed;
};

void rsim_opts_default(struct rsim_opts *o);
/* Runs one seed. 0 when every check held, 1 otherwise. */
int rsim_run(const struct rsim_opts *o, struct rsim_result *res);

#endif
