/*
 * rsim_main.c - pbft-sim: runs the simulator of the real replica driver
 * (rsim.h) for one seed or a range of seeds. Exit status 0 when every
 * check held, 1 on a violation (or, with --twice, a seed whose two runs
 * differ), 2 on a usage error.
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pbft.h"
#include "replica.h"
#include "rsim.h"
#include "rsim_byz.h"
#include "rsim_scen.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbft-sim [--seed S | --seeds A-B] [--n N] [--byz K]\n"
	    "                 [--byz-mode MODE] [--clients C]\n"
	    "                 [--requests R] [--no-crash] [--no-partition]\n"
	    "                 [--drop P] [--dup P] [--twice] [--trace] "
	    "[--quiet]\n"
	    "                 [--break-early-commit] [--break-xfer] "
	    "[--break-reply]\n"
	    "                 [--break-quorum] [--break-newview] "
	    "[--break-claims]\n"
	    "                 [--break-mute]\n"
	    "                 [--durable-every K] [--corrupt] "
	    "[--byz-modes M,M...]\n"
	    "                 [--long] [--stall-xfer]\n"
	    "MODE: silent, mutate (or garbage), lie-state, equivocate,\n"
	    "       wrong-digest, replay, vote-all, bad-newview, lying-vc, or\n"
	    "       random (the default: each Byzantine replica one of them)\n"
	    "       (deaf, rsim_byz.h, is never drawn at random)\n"
	    "--twice: run every seed twice and compare the traces' digests\n"
	    "--durable-every K: check that the records a frame waits for are\n"
	    "       durable on about one covered frame in K (0: never)\n"
	    "--corrupt: damage a byte of a restarting replica's disk\n"
	    "--byz-modes: the Byzantine replicas' modes, one each in turn\n"
	    "--long: 20 times the requests and the faults' time (4 times\n"
	    "       the time after them); what each replica holds must not\n"
	    "       grow with the run\n"
	    "--stall-xfer: a correct replica asked for state may stop then\n"
	    "--break-*: planted driver bugs (replica.h REPLICA_TEST_*) and\n"
	    "       core bugs (--break-quorum, -newview, -claims, -mute:\n"
	    "       pbft.h PBFT_TEST_BROKEN_*) the checks must catch\n"
	    "scenarios instead of random faults (tests/sim/rsim_scen.h):\n"
	    "       [--lag | --rejoin | --crash-all [--back-max MS] |\n"
	    "       --stranded [--converge-max MS] [--dead-link MS]]\n"
	    "       [--interval I]; planted core bugs (pbft.h PBFT_TEST_*):\n"
	    "       [--break-far] [--break-tell] [--break-alone] "
	    "[--break-bound]\n"
	    "       [--break-stranded] [--break-status]\n"
	    "--back-max: a request completes within MS of the whole-cluster\n"
	    "       restart; --converge-max: every replica at one "
	    "last_executed\n"
	    "       within MS of the final heal (default 1000)\n");
}

static int
parse_range(const char *s, uint64_t *a, uint64_t *b)
{
	char *end;

	*a = strtoull(s, &end, 10);
	*b = *a;
	if (*end == '-')
		*b = strtoull(end + 1, &end, 10);
	return *end != '\0' || *b < *a ? -1 : 0;
}

/* A count from the command line (UINT32_MAX when it is none). */
static uint32_t
num(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	return *end != '\0' || end == s || v >= UINT32_MAX ? UINT32_MAX
	                                                   : (uint32_t)v;
}

/* The scenarios' options (rsim_scen.h); -1: not one. */
static int
scen_opt(struct rsim_opts *o, int ch, bool *ival_given)
{
	if (ch >= 0x10000) {
		o->core_test_flags |= (uint32_t)ch & 0xffff;
		return 0;
	}
	switch (ch) {
	case 0x100:
	case 0x101:
	case 0x102:
	case 0x103:
		o->scenario = RSIM_SCEN_LAG + (ch - 0x100);
		break;
	case 0x104:
		o->back_max_ms = num(optarg);
		break;
	case 0x105:
		o->converge_max_ms = num(optarg);
		break;
	case 0x106:
		o->dead_link_ms = num(optarg);
		break;
	case 0x107:
		o->interval = num(optarg);
		*ival_given = true;
		break;
	default:
		return -1;
	}
	return 0;
}

/* --byz-modes a,b,...: no more than 16, none random. */
static int
byz_modes(struct rsim_opts *o, const char *arg)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", arg);
	o->nbyz_modes = 0;
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		int m = rsim_byz_parse(t);

		if (m < 0 || o->nbyz_modes == 16)
			return -1;
		o->byz_modes[o->nbyz_modes++] = m;
	}
	return o->nbyz_modes > 0 ? 0 : -1;
}

/* --corrupt: rsim_result.corrupt over every seed run. */
static uint64_t corrupt_total[4];
/* State transfers that asked a lying and a silent replica, in all. */
static uint64_t xfer_mixed_total;

/* The end times of the seeds that held, for the summary. */
static uint64_t ends_sum, ends_max, ends_n;

/* One seed (twice with twice); 0 when it held. */
static int
one_seed(struct rsim_opts *o, bool twice, bool quiet, uint64_t ms[4])
{
	struct rsim_result r, r2;
	int rc = rsim_run(o, &r);

	/* Scenarios: sum and maximum of back_ms, then of converge_ms */
	ms[0] += r.back_ms;
	ms[1] = r.back_ms > ms[1] ? r.back_ms : ms[1];
	ms[2] += r.converge_ms;
	ms[3] = r.converge_ms > ms[3] ? r.converge_ms : ms[3];

	if (twice && rsim_run(o, &r2) == rc &&
	    r2.trace_digest != r.trace_digest) {
		printf("seed %llu: not deterministic (trace %016llx, then "
		       "%016llx)\n",
		    (unsigned long long)o->seed,
		    (unsigned long long)r.trace_digest,
		    (unsigned long long)r2.trace_digest);
		return 1;
	}
	for (int i = 0; i < 4; i++)
		corrupt_total[i] += r.corrupt[i];
	xfer_mixed_total += r.xfer_mixed;
	if (rc != 0)
		printf("seed %llu: VIOLATION %s\n", (unsigned long long)o->seed,
		    r.violation);
	else if (!quiet)
		printf("seed %llu: ok, %llu requests, %llu crashes, %llu "
		       "events, %llu ms, trace %016llx\n",
		    (unsigned long long)o->seed,
		    (unsigned long long)r.completed,
		    (unsigned long long)r.crashes, (unsigned long long)r.events,
		    (unsigned long long)r.end_ms,
		    (unsigned long long)r.trace_digest);
	if (!quiet && o->corrupt)
		printf(
		    "seed %llu: disk damaged %llu times: %llu starts refused "
		    "(wiped), %llu harmless, %llu journals cut\n",
		    (unsigned long long)o->seed,
		    (unsigned long long)r.corrupt[0],
		    (unsigned long long)r.corrupt[1],
		    (unsigned long long)r.corrupt[2],
		    (unsigned long long)r.corrupt[3]);
	if (rc == 0) {
		ends_sum += r.end_ms;
		ends_max = r.end_ms > ends_max ? r.end_ms : ends_max;
		ends_n++;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {{"seed", required_argument, 0, 's'},
	    {"seeds", required_argument, 0, 's'},
	    {"n", required_argument, 0, 'n'},
	    {"byz", required_argument, 0, 'b'},
	    {"byz-mode", required_argument, 0, 'm'},
	    {"clients", required_argument, 0, 'c'},
	    {"requests", required_argument, 0, 'r'},
	    {"no-crash", no_argument, 0, 'C'},
	    {"no-partition", no_argument, 0, 'P'},
	    {"drop", required_argument, 0, 'd'},
	    {"dup", required_argument, 0, 'u'}, {"twice", no_argument, 0, 'T'},
	    {"trace", no_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
	    {"break-early-commit", no_argument, 0, 'E'},
	    {"break-xfer", no_argument, 0, 'X'},
	    {"break-quorum", no_argument, 0, 'Q'},
	    {"break-newview", no_argument, 0, 'N'},
	    {"break-claims", no_argument, 0, 'K'},
	    {"break-mute", no_argument, 0, 'M'},
	    {"break-reply", no_argument, 0, 'R'}, {"help", no_argument, 0, 'h'},
	    /* scenarios and planted core bugs */
	    {"lag", no_argument, 0, 0x100}, {"rejoin", no_argument, 0, 0x101},
	    {"crash-all", no_argument, 0, 0x102},
	    {"stranded", no_argument, 0, 0x103},
	    {"back-max", required_argument, 0, 0x104},
	    {"converge-max", required_argument, 0, 0x105},
	    {"dead-link", required_argument, 0, 0x106},
	    {"interval", required_argument, 0, 0x107},
	    {"break-far", no_argument, 0, 0x10000 | PBFT_TEST_BROKEN_FAR},
	    {"break-tell", no_argument, 0, 0x10000 | PBFT_TEST_BROKEN_TELL},
	    {"break-alone", no_argument, 0, 0x10000 | PBFT_TEST_BROKEN_ALONE},
	    {"break-bound", no_argument, 0, 0x10000 | PBFT_TEST_BROKEN_BOUND},
	    {"break-stranded", no_argument, 0,
	        0x10000 | PBFT_TEST_BROKEN_STRANDED},
	    {"break-status", no_argument, 0, 0x10000 | PBFT_TEST_BROKEN_STATUS},
	    /* checks (rsim_check.h) */
	    {"durable-every", required_argument, 0, 1000},
	    {"corrupt", no_argument, 0, 1001},
	    {"byz-modes", required_argument, 0, 1002},
	    {"long", no_argument, 0, 1003},
	    {"stall-xfer", no_argument, 0, 1004}, {0, 0, 0, 0}};
	struct rsim_opts o;
	uint64_t a = 1, b = 1, failed = 0, ms[4] = {0, 0, 0, 0};
	bool twice = false, quiet = false, byz_given = false;
	bool req_given = false, ival_given = false, loss_given = false;
	struct timespec t0, t1;
	double secs;
	int ch;

	rsim_opts_default(&o);
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (parse_range(optarg, &a, &b) == -1)
				goto bad;
			break;
		case 'n':
			o.n = num(optarg);
			break;
		case 'b':
			o.byz = num(optarg);
			byz_given = true;
			break;
		case 'm':
			if ((o.byz_mode = rsim_byz_parse(optarg)) == -2)
				goto bad;
			break;
		case 'c':
			o.clients = num(optarg);
			break;
		case 'r':
			o.requests = num(optarg);
			req_given = true;
			break;
		case 'C':
			o.crashes = false;
			break;
		case 'P':
			o.partitions = false;
			break;
		case 'd':
			o.drop = atof(optarg);
			loss_given = true;
			break;
		case 'u':
			o.dup = atof(optarg);
			loss_given = true;
			break;
		case 'T':
			twice = true;
			break;
		case 't':
			o.trace = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'E':
			o.test_flags |= REPLICA_TEST_EARLY_COMMIT;
			break;
		case 'X':
			o.test_flags |= REPLICA_TEST_XFER_NO_DIGEST;
			break;
		case 'R':
			o.test_flags |= REPLICA_TEST_REPLY_MIX;
			break;
		case 'Q':
			o.core_test_flags |= PBFT_TEST_BROKEN_QUORUM;
			break;
		case 'N':
			o.core_test_flags |= PBFT_TEST_BROKEN_NEWVIEW;
			break;
		case 'K':
			o.core_test_flags |= PBFT_TEST_BROKEN_CLAIMS;
			break;
		case 'M':
			o.core_test_flags |= PBFT_TEST_BROKEN_MUTE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 1000:
			if ((o.durable_every = num(optarg)) == UINT32_MAX)
				goto bad;
			break;
		case 1001:
			o.corrupt = true;
			break;
		case 1002:
			if (byz_modes(&o, optarg) == -1)
				goto bad;
			break;
		case 1003:
			o.long_run = true;
			break;
		case 1004:
			o.stall_xfer = true;
			break;
		default:
			if (scen_opt(&o, ch, &ival_given) == -1)
				goto bad;
			break;
		}
	}
	o.f = (o.n - 1) / 3;
	o.quiet = quiet;
	if (o.long_run && o.requests < UINT32_MAX / 20) {
		/* Faults throughout, 20 times as long; most requests come
		 * after them (a few a second get through the faults), at
		 * about 40 a second: time enough for them. */
		o.requests *= 20;
		o.fault_ms *= 20;
		o.live_ms *= 4;
	}
	if (!byz_given)
		o.byz = o.f;
	rsim_scen_defaults(&o, byz_given, req_given, ival_given, loss_given);
	if (optind != argc || o.n < 4 || o.n > 16 || o.requests == UINT32_MAX ||
	    o.interval == 0 || o.interval > 1024 || o.byz > o.f ||
	    o.clients < 1 || o.clients > 16)
		goto bad;
	log_init("rsim", o.trace ? LOG_LVL_INFO : LOG_LVL_ERROR);
	/* Every replica start allocates buffers of a frame's maximum size:
	 * from the heap, reused, instead of fresh pages mapped each time
	 * (which cost more than the protocol runs). */
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t s = a; s <= b; s++) {
		o.seed = s;
		failed += (uint64_t)one_seed(&o, twice, quiet, ms);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("seeds %llu-%llu (n = %u, byz %u): %llu failed, %.1f s, %.2f "
	       "seeds/s\n",
	    (unsigned long long)a, (unsigned long long)b, o.n, o.byz,
	    (unsigned long long)failed, secs, (double)(b - a + 1) / secs);
	if (o.scenario == RSIM_SCEN_CRASH_ALL)
		printf("back in service after the crash: mean %llu ms, max "
		       "%llu ms\n",
		    (unsigned long long)(ms[0] / (b - a + 1)),
		    (unsigned long long)ms[1]);
	if (o.scenario == RSIM_SCEN_STRANDED)
		printf("final heal to one last_executed: mean %llu ms, max "
		       "%llu ms\n",
		    (unsigned long long)(ms[2] / (b - a + 1)),
		    (unsigned long long)ms[3]);
	if ((o.nbyz_modes > 0 || o.stall_xfer) && !quiet)
		printf("state transfers that asked a lying and a silent or "
		       "stalled replica: %llu\n",
		    (unsigned long long)xfer_mixed_total);
	if (o.corrupt && !quiet)
		printf("disk damaged %llu times: %llu starts refused (wiped), "
		       "%llu harmless, %llu journals cut\n",
		    (unsigned long long)corrupt_total[0],
		    (unsigned long long)corrupt_total[1],
		    (unsigned long long)corrupt_total[2],
		    (unsigned long long)corrupt_total[3]);
	if (!quiet && ends_n > 0)
		printf("seeds that held ended at %.0f ms on average, %llu ms "
		       "at most\n",
		    (double)ends_sum / (double)ends_n,
		    (unsigned long long)ends_max);
	return failed ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
