/* check_service.c - the built-in ledger + key-value service. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

static uint8_t
run(struct service *s, struct wbuf *op, uint8_t *res, size_t *rlen)
{
	return s->ops->execute(s, 1, 0, op->p, op->len, res, rlen);
}

START_TEST(test_submit_indexes)
{
	struct service *s = service_ledger_new();
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;

	wbuf_init_dynamic(&wb, 1 << 20);
	for (uint64_t i = 0; i < 100; i++) {
		uint64_t idx = 0;

		wbuf_reset(&wb);
		ck_assert_int_eq(ledger_op_submit(&wb, "tx", 2), 0);
		ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
		ck_assert_uint_eq(rlen, 8);
		for (int b = 0; b < 8; b++)
			idx |= (uint64_t)res[b] << (8 * b);
		ck_assert_uint_eq(idx, i);
	}
	ck_assert_uint_eq(service_ledger_count(s), 100);
	wbuf_clear(&wb);
	s->ops->free(s);
}
END_TEST

START_TEST(test_kv)
{
	struct service *s = service_ledger_new();
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;

	wbuf_init_dynamic(&wb, 1 << 20);
	ck_assert_int_eq(ledger_op_put(&wb, "k", 1, "v1", 2), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	wbuf_reset(&wb);
	ck_assert_int_eq(ledger_op_put(&wb, "k", 1, "v22", 3), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	wbuf_reset(&wb);
	ck_assert_int_eq(ledger_op_get(&wb, "k", 1), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	ck_assert_uint_eq(rlen, 3);
	ck_assert_int_eq(memcmp(res, "v22", 3), 0);
	wbuf_reset(&wb);
	ck_assert_int_eq(ledger_op_del(&wb, "k", 1), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_NOT_FOUND);
	wbuf_reset(&wb);
	ck_assert_int_eq(ledger_op_get(&wb, "k", 1), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_NOT_FOUND);
	wbuf_clear(&wb);
	s->ops->free(s);
}
END_TEST

START_TEST(test_bad_ops)
{
	struct service *s = service_ledger_new();
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	static const uint8_t ops[][4] = {
	    {0}, {9}, {LEDGER_OP_PUT, 5, 0, 'a'}, {LEDGER_OP_GET, 0, 0, 0}};

	ck_assert_int_eq(
	    s->ops->execute(s, 1, 0, ops[0], 0, res, &rlen), SVC_BAD_OP);
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(
		    s->ops->execute(s, 1, 0, ops[i], 4, res, &rlen),
		    SVC_BAD_OP);
	s->ops->free(s);
}
END_TEST

/* Digests depend on content, not on the order keys were inserted. */
START_TEST(test_digest_and_snapshot)
{
	struct service *a = service_ledger_new(), *b = service_ledger_new();
	uint8_t res[PBFT_RESULT_BYTES_MAX], da[32], db[32];
	size_t rlen;
	struct wbuf wb, snap;
	char key[16];

	wbuf_init_dynamic(&wb, 1 << 20);
	wbuf_init_dynamic(&snap, 1 << 26);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		wbuf_reset(&wb);
		ledger_op_put(&wb, key, strlen(key), "x", 1);
		run(a, &wb, res, &rlen);
		snprintf(key, sizeof(key), "key%d", 199 - i);
		wbuf_reset(&wb);
		ledger_op_put(&wb, key, strlen(key), "x", 1);
		run(b, &wb, res, &rlen);
	}
	a->ops->digest(a, da);
	b->ops->digest(b, db);
	ck_assert_mem_eq(da, db, 32);

	wbuf_reset(&wb);
	ledger_op_submit(&wb, "only-a", 6);
	run(a, &wb, res, &rlen);
	a->ops->digest(a, da);
	ck_assert_int_ne(memcmp(da, db, 32), 0);

	ck_assert_int_eq(a->ops->snapshot(a, &snap), 0);
	ck_assert_int_eq(b->ops->restore(b, snap.p, snap.len), 0);
	b->ops->digest(b, db);
	ck_assert_mem_eq(da, db, 32);
	ck_assert_uint_eq(service_ledger_count(b), 1);

	/* A truncated image is refused and leaves the state as it was. */
	ck_assert_int_eq(b->ops->restore(b, snap.p, snap.len - 1), -1);
	b->ops->digest(b, db);
	ck_assert_mem_eq(da, db, 32);
	wbuf_clear(&wb);
	wbuf_clear(&snap);
	a->ops->free(a);
	b->ops->free(b);
}
END_TEST

static Suite *
service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("valid");

	tcase_add_test(tc, test_submit_indexes);
	tcase_add_test(tc, test_kv);
	tcase_add_test(tc, test_digest_and_snapshot);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_test(tc, test_bad_ops);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(service_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
