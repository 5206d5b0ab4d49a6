/*
 * check_client.c - the client library's pure rules: the signing interval
 * stays at its base while requests are quick, follows half the recent
 * latency when they are slow, and never exceeds 2.5 times the base.
 * (Requests, replies and retransmission run against real replicas in the
 * integration tests.)
 */
#include <check.h>
#include <stdlib.h>

#include "client.h"

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

static Suite *
client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("sign_interval");

	tcase_add_test(tc, test_sign_interval_follows_latency);
	suite_add_tcase(s, tc);
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
