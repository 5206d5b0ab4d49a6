/*
 * bench.c - `pbftctl bench`: closed-loop (or, with --rate, open-loop) load
 * generator that talks to the replicas directly through the client library,
 * not through pbftd. Every request it counts as done was confirmed by f+1
 * matching replies.
 *
 *     pbftctl bench -c cluster.ini [--clients N] [--outstanding K]
 *         [--duration S | --requests M] [--size B] [--rate R] [--json]
 *         [--log FILE]
 *
 * Every transaction is unique: its first 16 bytes after the operation code
 * are a per-run nonce and a counter. --log writes one line per finished
 * request (the client-side history a checker compares with the ledgers):
 *
 *     ok|timeout|error CLIENT INVOKED_US DONE_US SEQ INDEX TX_HEX
 *
 * with wall-clock microseconds, the sequence number and ledger index of an
 * ok result ("-" otherwise), and the transaction bytes in hex.
 *
 * Client identities are the [client.NAME] sections whose private key file is
 * readable here, used in file order; each runs K requests at once.
 */
#include "bench.h"

#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "client.h"
#include "log.h"
#include "svcop.h"

/* Log-linear latency histogram: 1 us .. ~2^40 us, 64 sub-buckets. */
#define H_SUB 64
#define H_EXP 40

struct hist {
	uint64_t b[H_EXP][H_SUB];
	uint64_t count;
};

static void
hist_add(struct hist *h, uint64_t us)
{
	int e = 0;

	if (us == 0)
		us = 1;
	while ((us >> e) >= 2 * H_SUB && e < H_EXP - 1)
		e++;
	{
		uint64_t sub = (us >> e) - (e ? H_SUB : 0);

		if (e == 0)
			sub = us < 2 * H_SUB ? us / 2 : H_SUB - 1;
		if (sub >= H_SUB)
			sub = H_SUB - 1;
		h->b[e][sub]++;
	}
	h->count++;
}

/* Upper edge of bucket (e, sub) in microseconds. */
static double
hist_edge(int e, int sub)
{
	if (e == 0)
		return (double)(2 * sub + 2);
	return (double)(((uint64_t)(sub + H_SUB) + 1) << e);
}

static double
hist_pct(const struct hist *h, double p)
{
	uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->count), seen = 0;

	if (h->count == 0)
		return 0;
	if (want == 0)
		want = 1;
	for (int e = 0; e < H_EXP; e++)
		for (int s = 0; s < H_SUB; s++)
			if ((seen += h->b[e][s]) >= want)
				return hist_edge(e, s);
	return hist_edge(H_EXP - 1, H_SUB - 1);
}

struct bench;

struct bclient;

/* One request in flight (a pool of `outstanding` per client). */
struct breq {
	struct bclient *bc;
	uint64_t counter;
	uint64_t invoked_us; /* wall clock */
	struct breq *next_free;
};

struct bclient {
	struct bench *b;
	struct pbft_client *pc;
	uint32_t id; /* [client.*] index */
	uint32_t inflight;
	struct breq *pool, *free;
};

struct bench {
	struct ev_loop *loop;
	struct cluster_cfg *cfg;
	struct bclient *clients;
	uint32_t nclients, outstanding, size;
	uint64_t requests; /* 0 = by duration */
	double duration, rate;
	bool json;
	const char *log_path;
	FILE *log;
	uint64_t nonce;
	uint8_t *op;
	uint64_t issued, done, errors, timeouts;
	uint64_t t0_us, last_us, last_done;
	struct hist all, sec;
	ev_timer progress, stop, pace;
	uint32_t rr; /* round robin for --rate */
	bool stopping;
};

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void issue(struct bclient *bc);

static uint64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The transaction of request `counter`: op code, nonce, counter, filler. */
static void
make_op(struct bench *b, uint64_t counter)
{
	uint8_t id[16];

	for (int i = 0; i < 8; i++) {
		id[i] = (uint8_t)(b->nonce >> (8 * i));
		id[8 + i] = (uint8_t)(counter >> (8 * i));
	}
	memcpy(b->op + 1, id, b->size - 1 < 16 ? b->size - 1 : 16);
}

static void
log_result(struct bench *b, const struct breq *rq, const char *what,
    const struct pbft_result *res)
{
	uint64_t index = 0;
	bool have_index = res != NULL &&
	    ledger_result_index(res->result, res->result_len, &index) == 0;

	if (b->log == NULL)
		return;
	make_op(b, rq->counter);
	fprintf(b->log, "%s %s %llu %llu ", what,
	    b->cfg->clients[rq->bc->id].name,
	    (unsigned long long)rq->invoked_us, (unsigned long long)wall_us());
	if (have_index)
		fprintf(b->log, "%llu %llu ", (unsigned long long)res->seq,
		    (unsigned long long)index);
	else
		fputs("- - ", b->log);
	for (uint32_t i = 1; i < b->size; i++)
		fprintf(b->log, "%02x", b->op[i]);
	fputc('\n', b->log);
}

static bool
want_more(const struct bench *b)
{
	return !b->stopping && (b->requests == 0 || b->issued < b->requests);
}

static void
done_cb(void *arg, const struct pbft_result *res)
{
	struct breq *rq = arg;
	struct bclient *bc = rq->bc;
	struct bench *b = bc->b;

	bc->inflight--;
	if (res->status == PBFT_CLIENT_OK && res->svc_status == SVC_OK) {
		b->done++;
		hist_add(&b->all, res->latency_us);
		hist_add(&b->sec, res->latency_us);
		log_result(b, rq, "ok", res);
	} else if (res->status == PBFT_CLIENT_TIMEOUT) {
		b->timeouts++;
		log_result(b, rq, "timeout", NULL);
	} else if (res->status != PBFT_CLIENT_CANCELLED) {
		b->errors++;
		log_result(b, rq, "error", NULL);
	}
	rq->next_free = bc->free;
	bc->free = rq;
	if (b->requests != 0 &&
	    b->done + b->errors + b->timeouts >= b->requests) {
		ev_break(b->loop, EVBREAK_ALL);
		return;
	}
	if (b->rate == 0 && want_more(b))
		issue(bc);
}

static void
issue(struct bclient *bc)
{
	struct bench *b = bc->b;
	struct breq *rq = bc->free;

	if (rq == NULL)
		return;
	rq->counter = b->issued;
	rq->invoked_us = wall_us();
	make_op(b, rq->counter);
	if (pbft_client_submit(bc->pc, b->op, b->size, done_cb, rq) == -1) {
		b->errors++;
		return;
	}
	bc->free = rq->next_free;
	bc->inflight++;
	b->issued++;
}

static void
progress_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bench *b = w->data;
	uint64_t now = mono_us();
	double dt = (double)(now - b->last_us) / 1e6;

	(void)loop;
	(void)revents;
	if (!b->json)
		fprintf(stderr,
		    "%6.1fs  %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  "
		    "done %llu  timeouts %llu\n",
		    (double)(now - b->t0_us) / 1e6,
		    (double)(b->done - b->last_done) / dt,
		    hist_pct(&b->sec, 50) / 1000, hist_pct(&b->sec, 99) / 1000,
		    (unsigned long long)b->done,
		    (unsigned long long)b->timeouts);
	memset(&b->sec, 0, sizeof(b->sec));
	b->last_us = now;
	b->last_done = b->done;
}

static void
stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void
pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bench *b = w->data;
	uint64_t due =
	    (uint64_t)((double)(mono_us() - b->t0_us) / 1e6 * b->rate);

	(void)loop;
	(void)revents;
	/* Open loop: issue whatever the schedule says is due by now. */
	for (uint32_t tries = 0; b->issued < due && want_more(b) &&
	     tries < b->nclients * b->outstanding;
	     tries++) {
		struct bclient *bc = &b->clients[b->rr++ % b->nclients];

		if (bc->inflight < b->outstanding)
			issue(bc);
	}
}

static void
report(struct bench *b)
{
	double secs = (double)(mono_us() - b->t0_us) / 1e6;
	double tput = secs > 0 ? (double)b->done / secs : 0;

	if (b->json) {
		printf("{\"n\":%u,\"f\":%u,\"clients\":%u,\"outstanding\":%u,"
		       "\"size\":%u,\"rate\":%.0f,\"seconds\":%.3f,"
		       "\"completed\":%llu,\"errors\":%llu,\"timeouts\":%llu,"
		       "\"throughput\":%.1f,\"latency_ms\":{\"p50\":%.3f,"
		       "\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f}}\n",
		    b->cfg->n, b->cfg->f, b->nclients, b->outstanding, b->size,
		    b->rate, secs, (unsigned long long)b->done,
		    (unsigned long long)b->errors,
		    (unsigned long long)b->timeouts, tput,
		    hist_pct(&b->all, 50) / 1000, hist_pct(&b->all, 90) / 1000,
		    hist_pct(&b->all, 99) / 1000,
		    hist_pct(&b->all, 99.9) / 1000);
		fflush(stdout); /* out before the teardown, whatever it does */
		return;
	}
	printf("completed   %llu requests in %.2f s (%u clients x %u "
	       "outstanding, %u-byte requests)\n",
	    (unsigned long long)b->done, secs, b->nclients, b->outstanding,
	    b->size);
	printf("throughput  %.0f requests/s\n", tput);
	printf("latency     p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  "
	       "p99.9 %.3f ms\n",
	    hist_pct(&b->all, 50) / 1000, hist_pct(&b->all, 90) / 1000,
	    hist_pct(&b->all, 99) / 1000, hist_pct(&b->all, 99.9) / 1000);
	printf("errors      %llu  timeouts %llu\n",
	    (unsigned long long)b->errors, (unsigned long long)b->timeouts);
	fflush(stdout);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbftctl bench -c FILE [--clients N] [--outstanding K]\n"
	    "           [--duration S | --requests M] [--size B] [--rate R] "
	    "[--json]\n"
	    "\n"
	    "  -c, --config FILE    cluster.ini; client identities are its\n"
	    "                       [client.*] sections with a readable key\n"
	    "  --clients N          client identities to use (default 1)\n"
	    "  --outstanding K      requests in flight per client (default 1)\n"
	    "  --duration S         run S seconds (default 10)\n"
	    "  --requests M         stop after M requests instead\n"
	    "  --size B             request size in bytes (default 64)\n"
	    "  --rate R             open loop: R requests/s in total\n"
	    "  --json               one JSON object with the results\n"
	    "  --log FILE           one line per finished request (status,\n"
	    "                       client, times, seq, ledger index, tx "
	    "hex)\n");
}

static int
parse_args(struct bench *b, int argc, char **argv, const char **config)
{
	static const struct option lo[] = {
	    {"config", required_argument, 0, 'c'},
	    {"clients", required_argument, 0, 'C'},
	    {"outstanding", required_argument, 0, 'k'},
	    {"duration", required_argument, 0, 'd'},
	    {"requests", required_argument, 0, 'r'},
	    {"size", required_argument, 0, 's'},
	    {"rate", required_argument, 0, 'R'}, {"json", no_argument, 0, 'j'},
	    {"log", required_argument, 0, 'L'}, {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0}};
	int ch;
	char *end;
	double v;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:jh", lo, NULL)) != -1) {
		if (ch == 'c') {
			*config = optarg;
			continue;
		}
		if (ch == 'j') {
			b->json = true;
			continue;
		}
		if (ch == 'L') {
			b->log_path = optarg;
			continue;
		}
		if (ch == 'h') {
			usage(stdout);
			exit(0);
		}
		if (ch == '?')
			return -1;
		errno = 0;
		v = strtod(optarg, &end);
		if (errno || *end || v < 0 || v > 1e9) {
			fprintf(
			    stderr, "pbftctl bench: bad number '%s'\n", optarg);
			return -1;
		}
		switch (ch) {
		case 'C':
			b->nclients = (uint32_t)v;
			break;
		case 'k':
			b->outstanding = (uint32_t)v;
			break;
		case 'd':
			b->duration = v;
			break;
		case 'r':
			b->requests = (uint64_t)v;
			break;
		case 's':
			b->size = (uint32_t)v;
			break;
		case 'R':
			b->rate = v;
			break;
		}
	}
	if (optind != argc || *config == NULL || b->nclients == 0 ||
	    b->outstanding == 0 || b->size < 2 || b->size > PBFT_OP_BYTES_MAX) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int
start_clients(struct bench *b, char *err, size_t errlen)
{
	uint32_t have = 0;

	b->clients = calloc(b->nclients, sizeof(*b->clients));
	if (b->clients == NULL)
		return -1;
	/* pbftd acts as control_client: take that identity last, since two
	 * processes sharing one identity overtake each other's timestamps. */
	const struct cfg_client *cc =
	    cfg_client_by_name(b->cfg, b->cfg->control_client);
	uint32_t last = cc != NULL ? cc->id : b->cfg->nclients;

	for (uint32_t i = 0; cc == NULL && i < b->cfg->nclients; i++)
		if (b->cfg->clients[i].private_key_file[0] != '\0') {
			last = i; /* pbftd's default: the first with a key */
			break;
		}
	for (uint32_t k = 0; k < b->cfg->nclients + 1 && have < b->nclients;
	     k++) {
		uint32_t i = k < b->cfg->nclients ? k : last;
		struct pbft_client_opts o = {.cfg = b->cfg, .client_id = i};
		char kerr[CFG_ERR_LEN];

		if (i >= b->cfg->nclients ||
		    (k < b->cfg->nclients && i == last))
			continue;
		if (b->cfg->clients[i].private_key_file[0] == '\0' ||
		    cfg_load_client_key(
		        b->cfg, i, &o.key, kerr, sizeof(kerr)) == -1)
			continue;
		o.max_outstanding = b->outstanding;
		o.pipeline = b->outstanding > 1;
		o.timeout_ms = 10000;
		b->clients[have].b = b;
		b->clients[have].id = i;
		b->clients[have].pool =
		    calloc(b->outstanding, sizeof(struct breq));
		if (b->clients[have].pool == NULL)
			return -1;
		for (uint32_t j = 0; j < b->outstanding; j++) {
			struct breq *rq = &b->clients[have].pool[j];

			rq->bc = &b->clients[have];
			rq->next_free = b->clients[have].free;
			b->clients[have].free = rq;
		}
		b->clients[have].pc = pbft_client_new(b->loop, &o, err, errlen);
		if (b->clients[have].pc == NULL)
			return -1;
		have++;
	}
	if (have < b->nclients) {
		snprintf(err, errlen,
		    "%.200s: only %u client identities with a readable private "
		    "key (wanted %u); add [client.NAME] sections",
		    b->cfg->path, have, b->nclients);
		return -1;
	}
	return 0;
}

/*
 * Waits until every client reaches every replica (at most 5 s; after that
 * 2f+1 will do): a pipelined request that misses the primary could be
 * overtaken by a later one and then never execute.
 */
static void
wait_connected(struct bench *b)
{
	uint64_t until = mono_us() + 5000000;

	while (mono_us() < until) {
		bool all = true;

		for (uint32_t i = 0; i < b->nclients; i++)
			if (pbft_client_connected(b->clients[i].pc) < b->cfg->n)
				all = false;
		if (all)
			return;
		ev_run(b->loop, EVRUN_ONCE);
	}
}

int
pbftctl_bench(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b));
	const char *config = NULL;
	char err[CFG_ERR_LEN];
	int rc = 2;

	if (b == NULL)
		return 1;
	b->nclients = 1;
	b->outstanding = 1;
	b->duration = 10;
	b->size = 64;
	if (parse_args(b, argc, argv, &config) == -1)
		goto out;
	if ((b->cfg = cfg_load(config, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	b->loop = ev_loop_new(EVFLAG_AUTO);
	b->op = calloc(1, b->size);
	if (b->loop == NULL || b->op == NULL) {
		rc = 1;
		goto out;
	}
	b->op[0] = LEDGER_OP_SUBMIT;
	b->nonce = wall_us() ^ ((uint64_t)getpid() << 40);
	if (b->log_path != NULL && (b->log = fopen(b->log_path, "w")) == NULL) {
		fprintf(stderr, "pbftctl bench: %s: %s\n", b->log_path,
		    strerror(errno));
		goto out;
	}
	if (start_clients(b, err, sizeof(err)) == -1) {
		fprintf(stderr, "pbftctl bench: %s\n", err);
		goto out;
	}
	wait_connected(b);
	b->t0_us = b->last_us = mono_us();
	ev_timer_init(&b->progress, progress_cb, 1, 1);
	b->progress.data = b;
	ev_timer_start(b->loop, &b->progress);
	if (b->requests == 0) {
		ev_timer_init(&b->stop, stop_cb, b->duration, 0);
		ev_timer_start(b->loop, &b->stop);
	}
	if (b->rate > 0) {
		ev_timer_init(&b->pace, pace_cb, 0.001, 0.001);
		b->pace.data = b;
		ev_timer_start(b->loop, &b->pace);
	} else {
		for (uint32_t i = 0; i < b->nclients; i++)
			for (uint32_t k = 0; k < b->outstanding && want_more(b);
			     k++)
				issue(&b->clients[i]);
	}
	ev_run(b->loop, 0);
	b->stopping = true;
	report(b);
	rc = b->done > 0 && b->errors == 0 ? 0 : 1;
out:
	if (b->clients != NULL)
		for (uint32_t i = 0; i < b->nclients; i++) {
			pbft_client_free(b->clients[i].pc);
			free(b->clients[i].pool);
		}
	free(b->clients);
	if (b->log != NULL && fclose(b->log) != 0) {
		fprintf(
		    stderr, "pbftctl bench: %s: write failed\n", b->log_path);
		rc = 1;
	}
	if (b->loop != NULL)
		ev_loop_destroy(b->loop);
	cfg_free(b->cfg);
	free(b->op);
	free(b);
	return rc;
}
