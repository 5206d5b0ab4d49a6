/*
 * rsim_scen.h - fixed fault scenarios for the simulator of the real
 * replica driver (tests/sim/rsim.c): each replaces the random fault phase
 * with a schedule and adds the checks that schedule makes possible. No
 * Byzantine replica, no loss unless asked for; clients send every request
 * to every replica. The checks are about timing (no view change while a
 * quorum follows a correct primary, bounds in ms), so a link behaves as a
 * TCP channel between hosts that keep up: frames arrive in order, within
 * a few ms, never one held back for hundreds (the random runs' slow
 * frames, which reorder: a STATUS overtaken by an older one left a
 * replica counted mute after it was not; in order, they stall a link).
 *
 * lag: the first primary is cut off for several windows under load and
 * healed, then another replica is cut off, so that every quorum needs the
 * one that lagged. From the heal on, a correct replica sending a
 * VIEW-CHANGE for a view past 1 is a violation: the primary of view 1 is
 * correct and followed by a quorum throughout.
 *
 * rejoin: three rounds of a backup crashing right after early votes of its
 * left (their records not durable yet), coming back, and another backup
 * crashing likewise, so that every quorum needs the first. The primary
 * stays up: a correct replica sending a VIEW-CHANGE is a violation, and so
 * is one casting an early vote it had cast already (it forgot the first).
 *
 * crash-all: every replica crashes at once under load, right after early
 * votes of one left, and all come back; back_max_ms > 0: a request must
 * complete within that after the restart (rsim_result.back_ms), unless a
 * replica had to fetch a state first (a checkpoint's snapshot not durable
 * at the crash): a transfer waits up to a second for a peer that does not
 * have it before it asks the next (pbft-replica/xfer.c).
 *
 * stranded: a backup cut off under load moves to view 1 alone (its core
 * suspects the primary even cut off: PBFT_TEST_BROKEN_ALONE for it alone);
 * it comes back with its link to one other replica dead for dead_link_ms
 * more. Once that heals, with no request left, every correct replica must
 * reach one last_executed within converge_max_ms (rsim_result.converge_ms).
 */
#ifndef PBFT_RSIM_SCEN_H
#define PBFT_RSIM_SCEN_H

#include <stdbool.h>
#include <stdint.h>

struct pbft_msg;
struct replica;
struct rs;
struct rsim_opts;

enum rsim_scen {
	RSIM_SCEN_NONE = 0,
	RSIM_SCEN_LAG,
	RSIM_SCEN_REJOIN,
	RSIM_SCEN_CRASH_ALL,
	RSIM_SCEN_STRANDED,
};

/* The options a scenario implies, where the command line left them. */
void rsim_scen_defaults(struct rsim_opts *o, bool byz_given,
    bool requests_given, bool interval_given, bool loss_given);
/* When its faults end at the latest (the run's fault_ms). */
uint64_t rsim_scen_fault_ms(const struct rsim_opts *o);

/* The hooks rsim.c calls; each does nothing without a scenario. */
void rsim_scen_start(struct rs *s); /* schedules the first step */
void rsim_scen_step(struct rs *s, uint64_t arg); /* a scheduled step */
/* A correct replica's frame left; early: before its records were durable
 * (rsim_net.h). */
void rsim_scen_frame(
    struct rs *s, uint32_t from, const struct pbft_msg *m, bool early);
void rsim_scen_after(struct rs *s); /* after each event */
void rsim_scen_completed(struct rs *s); /* a client request completed */
/* PBFT_TEST_* for replica i beside the run's core_test_flags. */
uint32_t rsim_scen_core_flags(const struct rs *s, uint32_t i);
/* Clients issue new requests until then (the run's fault_ms otherwise). */
uint64_t rsim_scen_load_ms(const struct rs *s);
/* When a frame leaving now after delay d arrives: in a scenario, not
 * before the link's previous one (a link keeps its frames' order). */
uint64_t rsim_scen_arrival(
    struct rs *s, uint32_t from, bool to_client, uint32_t to, uint64_t d);
/* Every request is done: whether the run may end (it checks). */
bool rsim_scen_may_end(struct rs *s);
/* The run ended: the scenario's final checks. */
void rsim_scen_finish(struct rs *s);

/* What rsim.c lends the scenarios. */
const struct rsim_opts *rsim_opts_of(const struct rs *s);
uint64_t rsim_now(const struct rs *s);
uint64_t rsim_below(struct rs *s, uint64_t n);
void rsim_fail(struct rs *s, const char *what);
void rsim_trace(const struct rs *s, const char *what);
/* Cuts (or mends) the link between replicas i and j, both ways. */
void rsim_cut(struct rs *s, uint32_t i, uint32_t j, bool cut);
void rsim_crash(struct rs *s, uint32_t i);
void rsim_restart(struct rs *s, uint32_t i);
/* rsim_scen_step(s, arg) at time t. */
void rsim_at(struct rs *s, uint64_t t, uint64_t arg);
void rsim_faults_end(struct rs *s);
struct replica *rsim_replica(const struct rs *s, uint32_t i); /* or NULL */
bool rsim_byz(const struct rs *s, uint32_t i);
void rsim_set_back_ms(struct rs *s, uint64_t ms);
void rsim_set_converge_ms(struct rs *s, uint64_t ms);

#endif
