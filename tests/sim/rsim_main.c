/*
 * rsim_main.c - pbft-rsim: runs the simulator of the real replica driver
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

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbft-rsim [--seed S | --seeds A-B] [--n N] [--byz K]\n"
	    "                 [--byz-mode MODE] [--clients C]\n"
	    "                 [--requests R] [--no-crash] [--no-partition]\n"
	    "                 [--drop P] [--dup P] [--twice] [--trace] "
	    "[--quiet]\n"
	    "                 [--break-early-commit] [--break-xfer] "
	    "[--break-reply]\n"
	    "                 [--break-quorum] [--break-newview] "
	    "[--break-claims]\n"
	    "                 [--break-mute]\n"
	    "MODE: silent, mutate (or garbage), lie-state, equivocate,\n"
	    "       wrong-digest, replay, vote-all, bad-newview, lying-vc, or\n"
	    "       random (the default: each Byzantine replica one of them)\n"
	    "       (deaf, rsim_byz.h, is never drawn at random)\n"
	    "--twice: run every seed twice and compare the traces' digests\n"
	    "--break-*: planted driver bugs (replica.h REPLICA_TEST_*) and\n"
	    "       core bugs (--break-quorum, -newview, -claims, -mute:\n"
	    "       pbft.h PBFT_TEST_BROKEN_*) the checks must catch\n");
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

/* clientfix: the end times of the seeds that held, for the summary. */
static uint64_t ends_sum, ends_max, ends_n;

/* One seed (twice with twice); 0 when it held. */
static int
one_seed(struct rsim_opts *o, bool twice, bool quiet)
{
	struct rsim_result r, r2;
	int rc = rsim_run(o, &r);

	if (twice && rsim_run(o, &r2) == rc &&
	    r2.trace_digest != r.trace_digest) {
		printf("seed %llu: not deterministic (trace %016llx, then "
		       "%016llx)\n",
		    (unsigned long long)o->seed,
		    (unsigned long long)r.trace_digest,
		    (unsigned long long)r2.trace_digest);
		return 1;
	}
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
	    {0, 0, 0, 0}};
	struct rsim_opts o;
	uint64_t a = 1, b = 1, failed = 0;
	bool twice = false, quiet = false, byz_given = false;
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
			break;
		case 'C':
			o.crashes = false;
			break;
		case 'P':
			o.partitions = false;
			break;
		case 'd':
			o.drop = atof(optarg);
			break;
		case 'u':
			o.dup = atof(optarg);
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
		default:
			goto bad;
		}
	}
	o.f = (o.n - 1) / 3;
	if (!byz_given)
		o.byz = o.f;
	if (optind != argc || o.n < 4 || o.n > 16 || o.requests == UINT32_MAX ||
	    o.byz > o.f || o.clients < 1 || o.clients > 16)
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
		failed += (uint64_t)one_seed(&o, twice, quiet);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("seeds %llu-%llu (n = %u, byz %u): %llu failed, %.1f s, %.2f "
	       "seeds/s\n",
	    (unsigned long long)a, (unsigned long long)b, o.n, o.byz,
	    (unsigned long long)failed, secs, (double)(b - a + 1) / secs);
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
