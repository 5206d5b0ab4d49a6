/*
 * rsim_scen.c - the simulator's fixed fault scenarios; see rsim_scen.h.
 *
 * A scenario's steps are events of the run (rsim_at, rsim_scen_step) with
 * a phase in their argument; what the steps watch for lives here, one
 * scenario at a time (the simulator runs one seed at a time).
 */
#include "rsim_scen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "pbft.h"
#include "replica.h"
#include "rsim.h"

/* lag: the first primary cut off, healed, then another replica cut off */
#define LAG_AT_MS 200
#define LAG_CUT_MS 7000
#define LAG_SETTLE_MS 2000
#define LAG_SECOND_MS 2000
#define LAG_TAIL_MS 1000
/* rejoin: rounds of two backups crashing in turn */
#define REJOIN_AT_MS 300
#define REJOIN_ROUNDS 3
#define REJOIN_DOWN_MS 200
#define REJOIN_SETTLE_MS 2000
#define CRASH_WAIT_MS 200 /* for early votes to leave, at most */
/* crash-all */
#define ALL_AT_MS 600
#define ALL_DOWN_MS 100
/* stranded */
#define STRAND_AT_MS 200
#define STRAND_CUT_MS 2000
#define STRAND_LINK_MS 2000

#define FORCE (1ULL << 32) /* a crash step's deadline */
#define NONE UINT32_MAX

static struct {
	int kind; /* enum rsim_scen */
	bool watch; /* view changes are violations (lag: past view 1) */
	uint32_t second; /* lag: the replica cut off second */
	uint32_t b, c; /* rejoin: this round's backups */
	/* A crash waiting for early votes: of replica arm (all: n), at
	 * phase arm_phase; the replicas that sent one during this event. */
	uint32_t arm;
	uint64_t arm_phase;
	uint32_t voted; /* a bit each */
	uint64_t back_at; /* crash-all: restarted at */
	bool back; /* ... and a request completed since, back_ms after */
	uint64_t back_ms;
	bool fetched; /* ... a replica fetched state in between */
	uint32_t x, y; /* stranded: the one cut off; its dead link's end */
	uint64_t early[PBFT_REPLICAS_MAX][3]; /* see note_early */
	/* the last arrival on each link, to a replica or to a client */
	uint64_t last[PBFT_REPLICAS_MAX][PBFT_REPLICAS_MAX + 16];
} sc;

PBFT_PRINTF(2, 3)
static void
fail(struct rs *s, const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rsim_fail(s, buf);
}

PBFT_PRINTF(2, 3)
static void
trace(const struct rs *s, const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	if (!rsim_opts_of(s)->trace)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rsim_trace(s, buf);
}

void
rsim_scen_defaults(struct rsim_opts *o, bool byz_given, bool requests_given,
    bool interval_given, bool loss_given)
{
	if (o->scenario == RSIM_SCEN_NONE)
		return;
	o->crashes = o->partitions = false;
	if (!byz_given)
		o->byz = 0;
	if (!loss_given)
		o->drop = o->dup = 0;
	/* Load throughout the schedule; stranded's ends when the one cut off
	 * is back, so that none is left at the final heal. */
	if (!requests_given)
		o->requests = o->scenario == RSIM_SCEN_STRANDED ? 1 : 30;
	if (o->scenario == RSIM_SCEN_STRANDED && o->converge_max_ms == 0)
		o->converge_max_ms = 1000;
	if (!interval_given)
		o->interval = o->scenario == RSIM_SCEN_LAG ? 32
		    : o->scenario == RSIM_SCEN_STRANDED    ? 4
		                                           : 16;
}

static uint64_t
link_ms(const struct rsim_opts *o)
{
	return o->dead_link_ms ? o->dead_link_ms : STRAND_LINK_MS;
}

uint64_t
rsim_scen_fault_ms(const struct rsim_opts *o)
{
	switch (o->scenario) {
	case RSIM_SCEN_LAG:
		return LAG_AT_MS + LAG_CUT_MS + LAG_SETTLE_MS + LAG_SECOND_MS;
	case RSIM_SCEN_REJOIN:
		return REJOIN_AT_MS +
		    REJOIN_ROUNDS * 2 *
		    (CRASH_WAIT_MS + REJOIN_DOWN_MS + REJOIN_SETTLE_MS);
	case RSIM_SCEN_CRASH_ALL:
		return ALL_AT_MS + CRASH_WAIT_MS + ALL_DOWN_MS;
	case RSIM_SCEN_STRANDED:
		return STRAND_AT_MS + STRAND_CUT_MS + link_ms(o);
	default:
		return o->fault_ms;
	}
}

void
rsim_scen_start(struct rs *s)
{
	const struct rsim_opts *o = rsim_opts_of(s);

	memset(&sc, 0, sizeof(sc));
	sc.kind = o->scenario;
	sc.arm = sc.second = sc.x = sc.y = NONE;
	switch (sc.kind) {
	case RSIM_SCEN_LAG:
		rsim_at(s, LAG_AT_MS, 0);
		break;
	case RSIM_SCEN_REJOIN:
		rsim_at(s, REJOIN_AT_MS, 0);
		break;
	case RSIM_SCEN_CRASH_ALL:
		rsim_at(s, ALL_AT_MS, 0);
		break;
	case RSIM_SCEN_STRANDED:
		sc.x = 1 + (uint32_t)rsim_below(s, o->n - 1);
		rsim_at(s, STRAND_AT_MS, 0);
		break;
	default:
		break;
	}
}

/* Replica i cut off from every other one, or back. */
static void
isolate(struct rs *s, uint32_t i, bool cut)
{
	for (uint32_t j = 0; j < rsim_opts_of(s)->n; j++)
		if (j != i)
			rsim_cut(s, i, j, cut);
}

/*
 * The lag scenario. Phases: 0 the first primary cut off; 1 it is back
 * (from now on no view change past view 1); 2 another replica (not the
 * primary of view 1) cut off; 3 it is back, the faults end.
 */
static void
lag_step(struct rs *s, uint64_t phase)
{
	uint32_t n = rsim_opts_of(s)->n;

	switch (phase) {
	case 0:
		isolate(s, 0, true);
		trace(s, "lag: r0 cut off");
		rsim_at(s, rsim_now(s) + LAG_CUT_MS, 1);
		break;
	case 1:
		isolate(s, 0, false);
		sc.watch = true;
		trace(s, "lag: r0 back");
		rsim_at(s, rsim_now(s) + LAG_SETTLE_MS, 2);
		break;
	case 2:
		sc.second = 2 + (uint32_t)rsim_below(s, n - 2);
		isolate(s, sc.second, true);
		trace(s, "lag: r%u cut off", sc.second);
		rsim_at(s, rsim_now(s) + LAG_SECOND_MS, 3);
		break;
	default:
		isolate(s, sc.second, false);
		rsim_faults_end(s);
		trace(s, "lag: r%u back; faults end", sc.second);
		break;
	}
}

/* A crash once early votes leave (or at the deadline): of replica i, or
 * of all with i = n. */
static void
arm_crash(struct rs *s, uint32_t i, uint64_t phase)
{
	sc.arm = i;
	sc.arm_phase = phase;
	rsim_at(s, rsim_now(s) + CRASH_WAIT_MS, phase | FORCE);
}

static void
crash_armed(struct rs *s)
{
	uint32_t n = rsim_opts_of(s)->n;
	uint64_t phase = sc.arm_phase;

	trace(s, "r%s%u crash%s with%s early votes out",
	    sc.arm == n ? "0-" : "", sc.arm == n ? n - 1 : sc.arm,
	    sc.arm == n ? "" : "es", sc.voted ? "" : " no");
	for (uint32_t i = 0; i < n; i++)
		if ((sc.arm == n || i == sc.arm) &&
		    rsim_replica(s, i) != NULL) {
			rsim_crash(s, i);
			memset(sc.early[i], 0, sizeof(sc.early[i]));
		}
	sc.arm = NONE;
	rsim_at(s,
	    rsim_now(s) +
	        (sc.kind == RSIM_SCEN_CRASH_ALL ? ALL_DOWN_MS : REJOIN_DOWN_MS),
	    phase + 1);
}

/*
 * The rejoin scenario. Phases: round * 4 + (0 b crashes, 1 b restarts,
 * 2 c crashes, 3 c restarts); a crash waits for early votes of its
 * replica (FORCE: no longer). Throughout, no view change.
 */
static void
rejoin_step(struct rs *s, uint64_t arg)
{
	uint64_t phase = arg & ~FORCE;
	uint32_t backups = rsim_opts_of(s)->n - 1;

	if (arg & FORCE) {
		if (sc.arm != NONE && sc.arm_phase == phase)
			crash_armed(s);
		return;
	}
	sc.watch = true;
	switch (phase % 4) {
	case 0:
		sc.b = 1 + (uint32_t)rsim_below(s, backups);
		sc.c =
		    1 + (sc.b + (uint32_t)rsim_below(s, backups - 1)) % backups;
		arm_crash(s, sc.b, phase);
		return;
	case 2:
		arm_crash(s, sc.c, phase);
		return;
	default:
		rsim_restart(s, phase % 4 == 1 ? sc.b : sc.c);
		break;
	}
	if (phase + 1 < 4 * REJOIN_ROUNDS) {
		rsim_at(s, rsim_now(s) + REJOIN_SETTLE_MS, phase + 1);
		return;
	}
	sc.watch = false;
	rsim_faults_end(s);
	trace(s, "rejoin: faults end");
}

/* The whole-cluster crash. Phases: 0 all crash once early votes of one
 * left; 1 all come back. */
static void
crash_all_step(struct rs *s, uint64_t arg)
{
	uint32_t n = rsim_opts_of(s)->n;

	if (arg == (0 | FORCE)) {
		if (sc.arm != NONE)
			crash_armed(s);
		return;
	}
	if (arg == 0) {
		arm_crash(s, n, 0);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		rsim_restart(s, i);
	sc.back_at = rsim_now(s);
	rsim_faults_end(s);
	trace(s, "all replicas back; faults end");
}

/* The stranded scenario. Phases: 0 x cut off; 1 x back, its link to y
 * dead; 2 that link back, the faults end. */
static void
stranded_step(struct rs *s, uint64_t phase)
{
	const struct rsim_opts *o = rsim_opts_of(s);

	switch (phase) {
	case 0:
		isolate(s, sc.x, true);
		trace(s, "stranded: r%u cut off", sc.x);
		rsim_at(s, rsim_now(s) + STRAND_CUT_MS, 1);
		break;
	case 1:
		isolate(s, sc.x, false);
		sc.y = (sc.x + 1 + (uint32_t)rsim_below(s, o->n - 1)) % o->n;
		rsim_cut(s, sc.x, sc.y, true);
		trace(
		    s, "stranded: r%u back, its link to r%u dead", sc.x, sc.y);
		rsim_at(s, rsim_now(s) + link_ms(o), 2);
		break;
	default:
		rsim_cut(s, sc.x, sc.y, false);
		rsim_faults_end(s);
		trace(s, "stranded: link r%u-r%u back; faults end", sc.x, sc.y);
		break;
	}
}

void
rsim_scen_step(struct rs *s, uint64_t arg)
{
	switch (sc.kind) {
	case RSIM_SCEN_LAG:
		lag_step(s, arg);
		break;
	case RSIM_SCEN_REJOIN:
		rejoin_step(s, arg);
		break;
	case RSIM_SCEN_CRASH_ALL:
		crash_all_step(s, arg);
		break;
	case RSIM_SCEN_STRANDED:
		stranded_step(s, arg);
		break;
	default:
		break;
	}
}

/*
 * A core casts each early vote once (a resend waits for the log): an
 * early vote cast twice was forgotten in between, and might as well have
 * been another. Kept per (replica, type, view, seq) in a small open table.
 */
struct early_key {
	uint64_t view, seq;
	uint32_t replica, type;
};

static struct early_key *etab;
static size_t ecap, en;

static size_t
ekey_slot(const struct early_key *k, size_t cap)
{
	uint64_t h =
	    (k->view * 1000003u + k->seq) * 131 + k->replica * 7 + k->type;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

/* Whether k was there; adds it. */
static bool
ekey_seen(const struct early_key *k)
{
	size_t i;

	if (2 * (en + 1) > ecap) {
		struct early_key *old = etab;
		size_t oc = ecap;

		ecap = ecap ? 2 * ecap : 1024;
		if ((etab = calloc(ecap, sizeof(*etab))) == NULL)
			abort();
		for (size_t j = 0; j < oc; j++) {
			if (old[j].type == 0)
				continue;
			for (i = ekey_slot(&old[j], ecap); etab[i].type != 0;
			     i = (i + 1) & (ecap - 1))
				;
			etab[i] = old[j];
		}
		free(old);
	}
	for (i = ekey_slot(k, ecap); etab[i].type != 0;
	     i = (i + 1) & (ecap - 1))
		if (etab[i].view == k->view && etab[i].seq == k->seq &&
		    etab[i].replica == k->replica && etab[i].type == k->type)
			return true;
	etab[i] = *k;
	en++;
	return false;
}

static void
note_early(struct rs *s, uint32_t from, const struct pbft_msg *m)
{
	struct early_key k = {.replica = from, .type = m->type};

	if (m->type == PBFT_MSG_PREPREPARE) {
		k.view = m->u.preprepare.view;
		k.seq = m->u.preprepare.seq;
	} else {
		k.view = m->u.prepare.view;
		k.seq = m->u.prepare.seq;
	}
	/* A broadcast leaves once per peer: the same cast. */
	if (sc.early[from][0] == k.view && sc.early[from][1] == k.seq + 1 &&
	    sc.early[from][2] == k.type)
		return;
	if (ekey_seen(&k))
		fail(s,
		    "replica %u cast its %s for view %llu seq %llu again, "
		    "having forgotten the first",
		    from,
		    m->type == PBFT_MSG_PREPREPARE ? "PRE-PREPARE" : "PREPARE",
		    (unsigned long long)k.view, (unsigned long long)k.seq);
	sc.early[from][0] = k.view;
	sc.early[from][1] = k.seq + 1;
	sc.early[from][2] = k.type;
}

void
rsim_scen_frame(
    struct rs *s, uint32_t from, const struct pbft_msg *m, bool early)
{
	if (sc.kind == RSIM_SCEN_NONE)
		return;
	if (m->type == PBFT_MSG_FETCH_STATE && sc.back_at != 0 && !sc.back)
		sc.fetched = true;
	if (m->type == PBFT_MSG_VIEW_CHANGE && sc.watch &&
	    (sc.kind != RSIM_SCEN_LAG || m->u.view_change.view >= 2))
		fail(s,
		    "replica %u started a view change to view %llu while "
		    "the primary%s was correct and followed by a quorum",
		    from, (unsigned long long)m->u.view_change.view,
		    sc.kind == RSIM_SCEN_LAG ? " of view 1" : "");
	if (!early ||
	    (m->type != PBFT_MSG_PREPARE && m->type != PBFT_MSG_PREPREPARE))
		return;
	sc.voted |= 1u << from;
	note_early(s, from, m);
}

void
rsim_scen_after(struct rs *s)
{
	uint32_t n = rsim_opts_of(s)->n;

	if (sc.arm != NONE &&
	    (sc.arm == n ? sc.voted != 0 : (sc.voted >> sc.arm & 1) != 0))
		crash_armed(s);
	sc.voted = 0;
}

void
rsim_scen_completed(struct rs *s)
{
	if (sc.kind != RSIM_SCEN_CRASH_ALL || sc.back_at == 0 || sc.back)
		return;
	sc.back = true;
	sc.back_ms = rsim_now(s) - sc.back_at;
	rsim_set_back_ms(s, sc.back_ms);
}

uint32_t
rsim_scen_core_flags(const struct rs *s, uint32_t i)
{
	(void)s;
	return sc.kind == RSIM_SCEN_STRANDED && i == sc.x
	    ? PBFT_TEST_BROKEN_ALONE
	    : 0;
}

uint64_t
rsim_scen_arrival(
    struct rs *s, uint32_t from, bool to_client, uint32_t to, uint64_t d)
{
	uint64_t t = rsim_now(s) + d;
	uint32_t k = to_client ? PBFT_REPLICAS_MAX + to % 16 : to;

	if (sc.kind == RSIM_SCEN_NONE)
		return t;
	if (t < sc.last[from][k])
		t = sc.last[from][k];
	sc.last[from][k] = t;
	return t;
}

uint64_t
rsim_scen_load_ms(const struct rs *s)
{
	if (sc.kind == RSIM_SCEN_STRANDED)
		return STRAND_AT_MS + STRAND_CUT_MS;
	return rsim_opts_of(s)->fault_ms;
}

/* A replica's last_executed, from its status. */
static uint64_t
last_executed(struct replica *r)
{
	static char buf[16384];
	const char *p;

	if (replica_status_json(r, buf, sizeof(buf)) != 0 ||
	    (p = strstr(buf, "\"last_executed\":")) == NULL)
		return UINT64_MAX;
	return strtoull(p + strlen("\"last_executed\":"), NULL, 10);
}

/* Whether every correct replica that is up executed up to one seq. */
static bool
converged(const struct rs *s)
{
	uint64_t e = UINT64_MAX;

	for (uint32_t i = 0; i < rsim_opts_of(s)->n; i++) {
		struct replica *r = rsim_replica(s, i);
		uint64_t le;

		if (r == NULL || rsim_byz(s, i))
			continue;
		le = last_executed(r);
		if (e != UINT64_MAX && le != e)
			return false;
		e = le;
	}
	return true;
}

bool
rsim_scen_may_end(struct rs *s)
{
	const struct rsim_opts *o = rsim_opts_of(s);
	uint64_t fault_ms = rsim_scen_fault_ms(o);

	/* lag: a second more with every link up, so that what the one cut
	 * off second sent into its dead links is sent again and seen */
	if (sc.kind == RSIM_SCEN_LAG)
		return rsim_now(s) >= fault_ms + LAG_TAIL_MS;
	if (sc.kind != RSIM_SCEN_STRANDED)
		return true;
	if (converged(s)) {
		rsim_set_converge_ms(s, rsim_now(s) - fault_ms);
		return true;
	}
	if (o->converge_max_ms > 0 &&
	    rsim_now(s) > fault_ms + o->converge_max_ms) {
		fail(s,
		    "stranded: replicas not at one last_executed %u ms after "
		    "the final heal",
		    o->converge_max_ms);
		return true;
	}
	return false;
}

void
rsim_scen_finish(struct rs *s)
{
	const struct rsim_opts *o = rsim_opts_of(s);

	if (sc.kind == RSIM_SCEN_CRASH_ALL && o->back_max_ms > 0 &&
	    !sc.fetched && (!sc.back || sc.back_ms > o->back_max_ms))
		fail(s,
		    "whole-cluster crash: back in service after %llu ms, not "
		    "within %u ms",
		    sc.back ? (unsigned long long)sc.back_ms : 0ULL,
		    o->back_max_ms);
	free(etab);
	etab = NULL;
	ecap = en = 0;
}
