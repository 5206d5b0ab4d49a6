/*
 * sim.h - a deterministic simulator for the consensus core.
 *
 * n real cores run against a simulated network and clock; one seed decides
 * every delay, drop, duplicate, partition, crash and Byzantine action, so a
 * run reproduces exactly. After every event the checkers look for a safety
 * violation; after the faults stop, every client request must complete
 * within a bound (liveness).
 */
#ifndef PBFT_SIM_H
#define PBFT_SIM_H

#include <stdbool.h>
#include <stdint.h>

enum sim_byz {
	SIM_BYZ_RANDOM = -1,
	SIM_BYZ_SILENT = 0,
	SIM_BYZ_EQUIVOCATE,
	SIM_BYZ_WRONG_DIGEST,
	SIM_BYZ_REPLAY,
	SIM_BYZ_VOTE_ALL,
	SIM_BYZ_BAD_NEWVIEW,
	SIM_BYZ_GARBAGE,
	SIM_BYZ_LYING_VC,
	SIM_BYZ_COUNT,
};

struct sim_opts {
	uint64_t seed;
	uint32_t n, f;
	uint32_t byz; /* Byzantine replicas (<= f) */
	int byz_mode; /* enum sim_byz */
	uint32_t clients, requests;
	uint32_t interval; /* checkpoint interval; the window is twice it */
	bool crashes, partitions;
	double drop, dup; /* during the fault phase */
	uint32_t test_flags; /* PBFT_TEST_* for the correct replicas */
	bool trace; /* print every trace line as it happens */
	bool quiet; /* no violation report on stdout */
	/* The lag scenario instead of random faults: the first primary is cut
	 * off for several windows under load and healed, then another replica
	 * is cut off; the primary of view 1 is correct and reachable
	 * throughout, so no correct replica may start a view change past it
	 * (see lag_step in sim.c). */
	bool lag;
	/* The rejoin scenario instead of random faults: under load, a backup
	 * crashes while early votes of its are out and not durable, comes
	 * back, and then another backup crashes, so every quorum needs the
	 * first; three rounds. The primary stays up, so no correct replica
	 * may start a view change (see rejoin_step in sim.c). */
	bool rejoin;
	/* The whole-cluster crash instead of random faults: under load,
	 * every replica crashes at once, losing what was not durable, and
	 * all come back (see crash_all_step in sim.c); back_max_ms > 0: a
	 * client request must complete within that long after. */
	bool crash_all;
	uint32_t back_max_ms;
	/* The stranded scenario instead of random faults: under load a
	 * backup is cut off and its view timer fires (it alone suspects the
	 * primary: the others, who keep it, do not follow); it comes back,
	 * but its link to one other replica drops everything for a while
	 * longer. Once that link is back, with no requests left, every
	 * correct replica must reach one last_executed within
	 * converge_max_ms (see stranded_step in sim.c). */
	bool stranded;
	uint32_t converge_max_ms;
	/* How long that link stays dead (0: STRAND_LINK_MS of sim.c). */
	uint32_t dead_link_ms;
};

struct sim_result {
	bool ok;
	char violation[512];
	uint64_t end_ms;
	uint64_t events;
	uint64_t completed; /* client requests confirmed */
	uint64_t view_changes;
	uint64_t state_transfers;
	uint64_t back_ms; /* whole-cluster crash: restart to a completion */
	uint64_t converge_ms; /* stranded: final heal to one last_executed */
};

void sim_opts_default(struct sim_opts *o);
const char *sim_byz_name(int mode);
int sim_byz_parse(const char *s);
/* Runs one seed. Returns 0 when every check held, 1 otherwise. */
int sim_run(const struct sim_opts *o, struct sim_result *r);

#endif
