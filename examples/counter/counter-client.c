/*
 * counter-client.c - adds to a replicated counter:
 *
 *     counter-client -c cluster.ini -C CLIENT [-n COUNT]
 *
 * Sends COUNT (default 1) increments as client [client.CLIENT], each
 * confirmed by f+1 replicas, then reads the value and prints it. Exits 0,
 * or 1 if a request failed or timed out.
 */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "counter.h"

struct run {
	struct pbft_client *client;
	long left; /* requests submitted and not yet answered */
	int failed;
	uint64_t value;
};

static void
done_cb(void *arg, const struct pbft_result *res)
{
	struct run *run = arg;

	if (res->status != PBFT_CLIENT_OK || res->svc_status != PBFT_SVC_OK ||
	    counter_value(res->result, res->result_len, &run->value) == -1) {
		fprintf(stderr,
		    "counter-client: request failed (status %d, "
		    "service status %u)\n",
		    (int)res->status, (unsigned)res->svc_status);
		run->failed = 1;
	}
	run->left--;
}

int
main(int argc, char **argv)
{
	static const uint8_t inc = COUNTER_OP_INC, get = COUNTER_OP_GET;
	const char *config = NULL, *name = NULL;
	long count = 1;
	char err[PBFT_ERR_LEN];
	struct ev_loop *loop = EV_DEFAULT;
	struct pbft_conf *conf;
	struct run run = {0};
	int ch;

	while ((ch = getopt(argc, argv, "c:C:n:")) != -1) {
		if (ch == 'c')
			config = optarg;
		else if (ch == 'C')
			name = optarg;
		else if (ch == 'n')
			count = strtol(optarg, NULL, 10);
		else
			return 2;
	}
	if (config == NULL || name == NULL || count < 0) {
		fprintf(stderr,
		    "usage: counter-client -c FILE -C CLIENT [-n COUNT]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((conf = pbft_conf_load(config, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	run.client = pbft_client_open(loop, conf, name, NULL, err, sizeof(err));
	if (run.client == NULL) {
		fprintf(stderr, "counter-client: %s\n", err);
		pbft_conf_free(conf);
		return 2;
	}
	/* Requests go out one at a time, in this order; the read comes
	 * last, so it sees every increment. */
	for (long i = 0; i < count; i++)
		if (pbft_client_submit(run.client, &inc, 1, done_cb, &run) == 0)
			run.left++;
	if (pbft_client_submit(run.client, &get, 1, done_cb, &run) == 0)
		run.left++;
	if (run.left != count + 1)
		run.failed = 1;
	pbft_client_wait(loop, run.client);
	printf("%llu\n", (unsigned long long)run.value);
	pbft_client_free(run.client);
	pbft_conf_free(conf);
	return run.failed;
}
