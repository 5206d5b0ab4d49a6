/*
 * counter-replica.c - one replica of a counter cluster:
 *
 *     counter-replica -c cluster.ini -i ID
 *
 * Runs node ID of cluster.ini (its data in the configuration's data_dir)
 * with the counter service until SIGTERM or SIGINT; prints each executed
 * value to standard output.
 */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "counter.h"

static void
stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

int
main(int argc, char **argv)
{
	const char *config = NULL;
	long id = -1;
	char err[PBFT_ERR_LEN];
	struct ev_loop *loop = EV_DEFAULT;
	struct pbft_conf *conf;
	struct pbft_replica *r;
	ev_signal term, intr;
	int ch;

	while ((ch = getopt(argc, argv, "c:i:")) != -1) {
		if (ch == 'c')
			config = optarg;
		else if (ch == 'i')
			id = strtol(optarg, NULL, 10);
		else
			return 2;
	}
	if (config == NULL || id < 0) {
		fprintf(stderr, "usage: counter-replica -c FILE -i ID\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((conf = pbft_conf_load(config, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	r = pbft_replica_new(
	    loop, conf, (uint32_t)id, &counter_ops, stdout, err, sizeof(err));
	if (r == NULL) {
		fprintf(stderr, "counter-replica: %s\n", err);
		pbft_conf_free(conf);
		return 1;
	}
	ev_signal_init(&term, stop_cb, SIGTERM);
	ev_signal_start(loop, &term);
	ev_signal_init(&intr, stop_cb, SIGINT);
	ev_signal_start(loop, &intr);
	ev_run(loop, 0);
	pbft_replica_free(r);
	pbft_conf_free(conf);
	return 0;
}
