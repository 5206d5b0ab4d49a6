/*
 * main.c - pbft-sim: run the deterministic simulator for one seed or a
 * range of seeds. Exit status 0 when every check held, 1 on a violation,
 * 2 on a usage error.
 */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pbft.h"
#include "sim.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbft-sim [--seed S | --seeds A-B] [--n N] [--f F] "
	    "[--byz K]\n"
	    "                [--byz-mode MODE] [--clients C] [--requests R]\n"
	    "                [--no-crash] [--no-partition] [--drop P]\n"
	    "                [--break-quorum] [--break-newview] "
	    "[--break-mute]\n"
	    "                [--break-claims] [--break-far] [--break-tell]\n"
	    "                [--break-status] [--break-alone] "
	    "[--break-bound] [--lag] [--rejoin]\n"
	    "                [--crash-all [--back-max MS]]\n"
	    "                [--stranded [--converge-max MS] [--dead-link MS]] "
	    "[--break-stranded]\n"
	    "                [--interval K] [--trace] [--quiet]\n"
	    "MODE: silent, equivocate, wrong-digest, replay, vote-all,\n"
	    "      bad-newview, garbage, lying-vc, random (default)\n"
	    "--lag: the first primary cut off for several windows, healed, "
	    "then\n"
	    "       another replica cut off; no random faults, no drops, no "
	    "Byzantine\n"
	    "       replica, 100 requests per client, interval 32 (unless "
	    "given)\n"
	    "--rejoin: a backup crashes with early votes out, comes back, "
	    "then\n"
	    "       another crashes; three rounds, no view change allowed; "
	    "no\n"
	    "       random faults, no drops, no Byzantine replica, 100 "
	    "requests\n"
	    "       per client, interval 16 (unless given)\n"
	    "--crash-all: every replica crashes at once under load and "
	    "comes\n"
	    "       back; --back-max: a request must complete within MS "
	    "after\n"
	    "--stranded: a backup cut off moves to view 1 alone, comes back "
	    "with\n"
	    "       its link to another dead for a while; after that heals, "
	    "with no\n"
	    "       requests left, every replica must reach one "
	    "last_executed within\n"
	    "       --converge-max MS (default 1000); no random faults, 30 "
	    "requests\n"
	    "       per client; --dead-link: how long the link stays dead "
	    "(default\n"
	    "       2000 ms)\n"
	    "--interval: checkpoint interval (default 4; the window is "
	    "twice it)\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {{"seed", required_argument, 0, 's'},
	    {"seeds", required_argument, 0, 'S'},
	    {"n", required_argument, 0, 'n'}, {"f", required_argument, 0, 'f'},
	    {"byz", required_argument, 0, 'b'},
	    {"byz-mode", required_argument, 0, 'm'},
	    {"clients", required_argument, 0, 'c'},
	    {"requests", required_argument, 0, 'r'},
	    {"no-crash", no_argument, 0, 'C'},
	    {"no-partition", no_argument, 0, 'P'},
	    {"drop", required_argument, 0, 'd'},
	    {"break-quorum", no_argument, 0, 'Q'},
	    {"break-newview", no_argument, 0, 'N'},
	    {"break-mute", no_argument, 0, 'M'},
	    {"break-claims", no_argument, 0, 'K'},
	    {"break-far", no_argument, 0, 'F'}, {"lag", no_argument, 0, 'L'},
	    {"break-tell", no_argument, 0, 'T'},
	    {"break-status", no_argument, 0, 'U'},
	    {"break-alone", no_argument, 0, 'A'},
	    {"break-bound", no_argument, 0, 'B'},
	    {"rejoin", no_argument, 0, 'J'}, {"crash-all", no_argument, 0, 'X'},
	    {"back-max", required_argument, 0, 'Y'},
	    {"stranded", no_argument, 0, 'G'},
	    {"converge-max", required_argument, 0, 'V'},
	    {"dead-link", required_argument, 0, 'Z'},
	    {"break-stranded", no_argument, 0, 'W'},
	    {"interval", required_argument, 0, 'i'},
	    {"trace", no_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
	    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	struct sim_opts o;
	struct sim_result r;
	unsigned long long a = 0, b = 0;
	bool range = false, fset = false, rset = false, bset = false;
	bool dset = false, iset = false;
	uint64_t failed = 0, first_bad = 0, completed = 0, vcs = 0, xfers = 0;
	uint64_t back_max = 0, back_sum = 0, conv_max = 0, conv_sum = 0;
	clock_t t0 = clock();
	int ch;

#ifdef M_TRIM_THRESHOLD
	/* Every seed makes and frees whole clusters of cores: keep the heap
	 * instead of handing it back and faulting it in again each time. */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
	sim_opts_default(&o);
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			o.seed = strtoull(optarg, NULL, 10);
			break;
		case 'S':
			if (sscanf(optarg, "%llu-%llu", &a, &b) != 2 || b < a) {
				usage(stderr);
				return 2;
			}
			range = true;
			break;
		case 'n':
			o.n = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			o.f = (uint32_t)strtoul(optarg, NULL, 10);
			fset = true;
			break;
		case 'b':
			o.byz = (uint32_t)strtoul(optarg, NULL, 10);
			bset = true;
			break;
		case 'm':
			o.byz_mode = sim_byz_parse(optarg);
			if (o.byz_mode == -2) {
				usage(stderr);
				return 2;
			}
			break;
		case 'c':
			o.clients = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.requests = (uint32_t)strtoul(optarg, NULL, 10);
			rset = true;
			break;
		case 'C':
			o.crashes = false;
			break;
		case 'P':
			o.partitions = false;
			break;
		case 'd':
			o.drop = strtod(optarg, NULL);
			dset = true;
			break;
		case 'Q':
			o.test_flags |= PBFT_TEST_BROKEN_QUORUM;
			break;
		case 'N':
			o.test_flags |= PBFT_TEST_BROKEN_NEWVIEW;
			break;
		case 'M':
			o.test_flags |= PBFT_TEST_BROKEN_MUTE;
			break;
		case 'K':
			o.test_flags |= PBFT_TEST_BROKEN_CLAIMS;
			break;
		case 'F':
			o.test_flags |= PBFT_TEST_BROKEN_FAR;
			break;
		case 'L':
			o.lag = true;
			break;
		case 'T':
			o.test_flags |= PBFT_TEST_BROKEN_TELL;
			break;
		case 'U':
			o.test_flags |= PBFT_TEST_BROKEN_STATUS;
			break;
		case 'A':
			o.test_flags |= PBFT_TEST_BROKEN_ALONE;
			break;
		case 'B':
			o.test_flags |= PBFT_TEST_BROKEN_BOUND;
			break;
		case 'J':
			o.rejoin = true;
			break;
		case 'X':
			o.crash_all = true;
			break;
		case 'Y':
			o.back_max_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'G':
			o.stranded = true;
			break;
		case 'V':
			o.converge_max_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'W':
			o.test_flags |= PBFT_TEST_BROKEN_STRANDED;
			break;
		case 'Z':
			o.dead_link_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			o.interval = (uint32_t)strtoul(optarg, NULL, 10);
			iset = true;
			break;
		case 't':
			o.trace = true;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!fset)
		o.f = (o.n - 1) / 3;
	/* A scenario's faults are its schedule: no random crashes or
	 * partitions, and unless asked for, no loss or Byzantine replica. */
	if (o.rejoin || o.crash_all || o.stranded || o.lag) {
		o.crashes = o.partitions = false;
		if (!dset)
			o.drop = o.dup = 0;
		if (!bset)
			o.byz = 0;
		if (!rset)
			o.requests = o.stranded ? 30 : 100;
		if (!iset && !o.stranded) /* lag's load spans its schedule */
			o.interval = o.lag ? 32 : 16;
		if (o.stranded && o.converge_max_ms == 0)
			o.converge_max_ms = 1000;
	}
	if (o.n < 1 || o.n > 64 || o.n < 3 * o.f + 1 || o.byz > o.f ||
	    o.clients == 0 || o.clients > 64 || o.interval == 0 ||
	    o.interval > 1024) {
		fprintf(stderr,
		    "pbft-sim: need n >= 3f+1, byz <= f, "
		    "1..64 clients, an interval of 1..1024\n");
		return 2;
	}
	if (!range)
		a = b = o.seed;
	for (unsigned long long seed = a; seed <= b; seed++) {
		o.seed = seed;
		if (sim_run(&o, &r) != 0 && failed++ == 0)
			first_bad = seed;
		completed += r.completed;
		vcs += r.view_changes;
		xfers += r.state_transfers;
		back_sum += r.back_ms;
		if (r.back_ms > back_max)
			back_max = r.back_ms;
		conv_sum += r.converge_ms;
		if (r.converge_ms > conv_max)
			conv_max = r.converge_ms;
	}
	printf("pbft-sim: n=%u f=%u byz=%u mode=%s%s%s%s%s%s%s%s%s%s%s%s%s%s: "
	       "%llu "
	       "seeds, %llu violations",
	    o.n, o.f, o.byz, sim_byz_name(o.byz_mode), o.lag ? " LAG" : "",
	    o.rejoin ? " REJOIN" : "", o.crash_all ? " CRASH-ALL" : "",
	    o.stranded ? " STRANDED" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_QUORUM) ? " BROKEN-QUORUM" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_NEWVIEW) ? " BROKEN-NEWVIEW" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_CLAIMS) ? " BROKEN-CLAIMS" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_FAR) ? " BROKEN-FAR" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_TELL) ? " BROKEN-TELL" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_STATUS) ? " BROKEN-STATUS" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_ALONE) ? " BROKEN-ALONE" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_BOUND) ? " BROKEN-BOUND" : "",
	    (o.test_flags & PBFT_TEST_BROKEN_STRANDED) ? " BROKEN-STRANDED"
	                                               : "",
	    b - a + 1, (unsigned long long)failed);
	if (failed)
		printf(" (first: seed %llu)", (unsigned long long)first_bad);
	printf("; %llu requests confirmed, %llu view changes, %llu state "
	       "transfers; %.1f s\n",
	    (unsigned long long)completed, (unsigned long long)vcs,
	    (unsigned long long)xfers, (double)(clock() - t0) / CLOCKS_PER_SEC);
	if (o.crash_all)
		printf("pbft-sim: back in service after the crash: mean %llu "
		       "ms, max %llu ms\n",
		    (unsigned long long)(back_sum / (b - a + 1)),
		    (unsigned long long)back_max);
	if (o.stranded)
		printf("pbft-sim: final heal to one last_executed: mean %llu "
		       "ms, max %llu ms\n",
		    (unsigned long long)(conv_sum / (b - a + 1)),
		    (unsigned long long)conv_max);
	return failed ? 1 : 0;
}
