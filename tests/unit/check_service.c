/* check_service.c - the built-in ledger + key-value service. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

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

/* Runs k submits and k puts on s. */
static void
load(struct service *s, int k, int tag)
{
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;
	char buf[32];

	wbuf_init_dynamic(&wb, 1 << 20);
	for (int i = 0; i < k; i++) {
		snprintf(buf, sizeof(buf), "tx-%d-%d", tag, i);
		wbuf_reset(&wb);
		ledger_op_submit(&wb, buf, strlen(buf));
		ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
		wbuf_reset(&wb);
		ledger_op_put(&wb, buf, 4 + (size_t)(i % 3), buf, strlen(buf));
		ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	}
	wbuf_clear(&wb);
}

static off_t
file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/*
 * Incremental checkpoints: the head plus the journal's first tail_len
 * bytes are the whole image; after a restart the head and the journal give
 * back the state of the checkpoint, later entries cut; a journal that lost
 * what the head names is refused.
 */
START_TEST(test_checkpoint_head_and_journal)
{
	char dir[] = "/tmp/pbft-svc-XXXXXX", path[64];
	struct service *s, *t, *m = service_ledger_new();
	struct wbuf head, full;
	uint64_t tail, tail2;
	uint8_t d_ck[32], d[32];
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ledger", dir);
	wbuf_init_dynamic(&head, 1 << 20);
	wbuf_init_dynamic(&full, 1 << 24);
	s = service_ledger_open(path);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(s->ops->reopen(s, NULL, 0, &tail), 0);
	load(s, 300, 1);
	ck_assert_int_eq(s->ops->checkpoint(s, &head, &tail), 0);
	ck_assert_uint_gt(tail, head.len); /* the head is the small part */
	s->ops->digest(s, d_ck);
	ck_assert_int_eq(s->ops->sync(s), 0);
	load(s, 50, 2); /* after the checkpoint */
	/* head || tail bytes == the full image, which restores elsewhere. */
	wbuf_put_bytes(&full, head.p, head.len);
	ck_assert_int_eq(wbuf_reserve(&full, tail), 0);
	ck_assert_int_eq(s->ops->tail_read(s, 0, full.p + full.len, tail), 0);
	full.len += tail;
	ck_assert_int_eq(m->ops->restore(m, full.p, full.len), 0);
	m->ops->digest(m, d);
	ck_assert_mem_eq(d, d_ck, 32);
	ck_assert_int_eq(s->ops->tail_read(s, tail * 100, full.p, 1), -1);
	s->ops->free(s);

	/* Restart: the checkpoint's state, the later entries cut. */
	t = service_ledger_open(path);
	ck_assert_int_eq(t->ops->reopen(t, head.p, head.len, &tail2), 0);
	ck_assert_uint_eq(tail2, tail);
	ck_assert_uint_eq(service_ledger_count(t), 300);
	t->ops->digest(t, d);
	ck_assert_mem_eq(d, d_ck, 32);
	ck_assert_int_eq(file_size(path), (off_t)tail);
	load(t, 10, 3); /* and it goes on from there */
	ck_assert_uint_eq(service_ledger_count(t), 310);
	t->ops->free(t);

	/* A flipped byte in an entry's transaction (the first entry's
	 * bytes start after its 12-byte header): refused by the chain, state
	 * unchanged. */
	f = fopen(path, "r+");
	ck_assert_ptr_nonnull(f);
	fseek(f, 14, SEEK_SET);
	fputc('#', f);
	fclose(f);
	t = service_ledger_open(path);
	ck_assert_int_eq(t->ops->reopen(t, head.p, head.len, &tail2), -1);
	ck_assert_uint_eq(service_ledger_count(t), 0);
	/* A truncated journal: refused too; the empty state still works. */
	ck_assert_int_eq(truncate(path, (off_t)tail / 2), 0);
	ck_assert_int_eq(t->ops->reopen(t, head.p, head.len, &tail2), -1);
	ck_assert_int_eq(t->ops->reopen(t, NULL, 0, &tail2), 0);
	ck_assert_int_eq(file_size(path), 0);
	/* A head with trailing bytes is not a head. */
	ck_assert_int_eq(t->ops->reopen(t, full.p, full.len, &tail2), -1);
	/* The full image restores into the journaled service too. */
	ck_assert_int_eq(t->ops->restore(t, full.p, full.len), 0);
	ck_assert_int_eq(file_size(path), (off_t)tail);
	t->ops->digest(t, d);
	ck_assert_mem_eq(d, d_ck, 32);
	t->ops->free(t);
	m->ops->free(m);
	wbuf_clear(&head);
	wbuf_clear(&full);
	unlink(path);
	rmdir(dir);
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
	tcase_add_test(tc, test_checkpoint_head_and_journal);
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
