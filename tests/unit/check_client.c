/*
 * check_client.c - the client library on its own: the signing interval
 * stays at its base while requests are quick, follows half the recent
 * latency when they are slow, and never exceeds 2.5 times the base; a
 * request nobody answers fails with PBFT_CLIENT_TIMEOUT at its deadline,
 * not before and not much after, oldest first, whether the requests were
 * sent at once or one after another. (Replies, retransmission
 * and view changes run against real replicas in the integration tests.)
 */
#include <check.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "sig.h"

#define NODES 4
#define TIMEOUT_MS 300
#define REQS 3

START_TEST(test_sign_interval_follows_latency)
{
	/* Quick answers (or none yet): the base. */
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 0), 2000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 900), 2000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 4000), 2000);
	/* Slower: half the latency. */
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 6000), 3000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 9998), 4999);
	/* Slow, or a latency that makes no sense: at most 2.5 times. */
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 10002), 5000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, 1000000), 5000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(2000, UINT64_MAX), 5000);
	ck_assert_uint_eq(pbft_client_sign_interval_us(UINT32_MAX, UINT64_MAX),
	    (uint64_t)UINT32_MAX * 5 / 2);
}
END_TEST

/* A loopback port nothing listens on (bound, read, closed). */
static uint16_t
closed_port(void)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

struct outcome {
	int done;
	int order[REQS];
	struct pbft_result res[REQS];
	struct ev_loop *loop;
};

static struct outcome got;

static void
on_result(void *arg, const struct pbft_result *res)
{
	int i = (int)(intptr_t)arg;

	got.order[got.done++] = i;
	got.res[i] = *res;
	if (got.done == REQS)
		ev_break(got.loop, EVBREAK_ALL);
}

static void
watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* _i: 0 pipelined (all start at once), 1 serial (each starts when the one
 * before it has failed, from that callback). */
START_TEST(test_unanswered_requests_time_out)
{
	struct cluster_cfg *cfg = calloc(1, sizeof(*cfg));
	struct pbft_client_opts o = {0};
	struct pbft_client *c;
	ev_timer watchdog;
	uint8_t seed[32];
	char err[256];

	ck_assert_ptr_nonnull(cfg);
	snprintf(cfg->name, sizeof(cfg->name), "clienttest");
	cfg->n = NODES;
	cfg->f = 1;
	for (uint32_t i = 0; i < NODES; i++) {
		void *k;

		memset(seed, 40 + (int)i, sizeof(seed));
		k = sig_keygen(seed);
		ck_assert_ptr_nonnull(k);
		sig_public_raw(k, cfg->nodes[i].public_key);
		sig_key_free(k);
		cfg->nodes[i].id = i;
		snprintf(cfg->nodes[i].host, sizeof(cfg->nodes[i].host),
		    "127.0.0.1");
		cfg->nodes[i].port = closed_port();
		cfg->nodes[i].has_address = true;
	}
	cfg->bootstrap_id = UINT32_MAX;
	cfg->nclients = 1;
	cfg->clients = calloc(1, sizeof(*cfg->clients));
	ck_assert_ptr_nonnull(cfg->clients);
	memset(seed, 50, sizeof(seed));
	o.key = sig_keygen(seed);
	ck_assert_ptr_nonnull(o.key);
	sig_public_raw(o.key, cfg->clients[0].public_key);
	snprintf(cfg->clients[0].name, sizeof(cfg->clients[0].name), "c0");
	o.cfg = cfg;
	o.timeout_ms = TIMEOUT_MS;
	o.retransmit_ms = 40;
	o.pipeline = _i == 0;

	memset(&got, 0, sizeof(got));
	got.loop = ev_loop_new(EVFLAG_AUTO);
	c = pbft_client_new(got.loop, &o, err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	for (int i = 0; i < REQS; i++) {
		ck_assert_int_eq(pbft_client_submit(c, (const uint8_t *)"op", 2,
		                     on_result, (void *)(intptr_t)i),
		    0);
		/* Later requests start later: the order is observable. */
		usleep(20000);
		ev_run(got.loop, EVRUN_NOWAIT);
	}
	ev_timer_init(&watchdog, watchdog_cb, 5.0, 0);
	ev_timer_start(got.loop, &watchdog);
	ev_run(got.loop, 0);
	ev_timer_stop(got.loop, &watchdog);

	ck_assert_int_eq(got.done, REQS);
	for (int i = 0; i < REQS; i++) {
		ck_assert_int_eq(got.order[i], i);
		ck_assert_int_eq(got.res[i].status, PBFT_CLIENT_TIMEOUT);
		ck_assert_uint_ge(got.res[i].latency_us, TIMEOUT_MS * 1000);
		ck_assert_uint_lt(got.res[i].latency_us, 3 * TIMEOUT_MS * 1000);
	}
	ck_assert_uint_eq(pbft_client_outstanding(c), 0);
	pbft_client_free(c);
	ev_loop_destroy(got.loop);
	free(cfg->clients);
	free(cfg);
}
END_TEST

static Suite *
client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("sign_interval");
	TCase *tt = tcase_create("timeouts");

	tcase_add_test(tc, test_sign_interval_follows_latency);
	suite_add_tcase(s, tc);
	tcase_add_loop_test(tt, test_unanswered_requests_time_out, 0, 2);
	tcase_set_timeout(tt, 30);
	suite_add_tcase(s, tt);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(client_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
