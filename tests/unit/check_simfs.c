/*
 * check_simfs.c - the simulator's disk (tests/sim/simfs.c): what a crash
 * keeps (synced data and names, a torn prefix of the rest), dead fds; and
 * the real store and ledger service on it: after a crash the log replays
 * exactly what was made durable, a torn tail is cut, damage is refused as
 * on a real disk, and the service's state is the synced one.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "log.h"
#include "service.h"
#include "simfs.h"
#include "store.h"
#include "vfs.h"

static void
setup(void)
{
	log_set_level(LOG_LVL_ERROR);
	simfs_reset();
	vfs_set(simfs_ops());
	store_inline_workers(true);
	ck_assert_int_eq(vfs_mkdir("/d", 0700), 0);
}

static void
teardown(void)
{
	store_inline_workers(false);
	vfs_set(NULL);
	simfs_reset();
}

/* The whole content of path, NUL-terminated, into buf; its length. */
static ssize_t
slurp(const char *path, char *buf, size_t len)
{
	int fd = vfs_open(path, O_RDONLY, 0);
	ssize_t n;

	if (fd == -1)
		return -1;
	n = vfs_pread(fd, buf, len - 1, 0);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	ck_assert_int_eq(vfs_close(fd), 0);
	return n;
}

static int
create(const char *path, const char *text)
{
	int fd = vfs_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, SIMFS_FD_BASE);
	ck_assert_int_eq(
	    vfs_write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static void
dir_sync(const char *dir)
{
	int fd = vfs_open(dir, O_RDONLY | O_DIRECTORY, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vfs_fsync(fd), 0);
	ck_assert_int_eq(vfs_close(fd), 0);
}

START_TEST(test_unsynced_lost)
{
	char buf[64];
	int fd = create("/d/f", "abc");

	ck_assert_int_eq(vfs_fdatasync(fd), 0);
	dir_sync("/d");
	ck_assert_int_eq(vfs_write(fd, "def", 3), 3);
	ck_assert_int_eq(slurp("/d/f", buf, sizeof(buf)), 6);
	simfs_crash("/d", 0);
	ck_assert_int_eq(slurp("/d/f", buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "abc");
	/* The fd is dead; closing it works. */
	errno = 0;
	ck_assert_int_eq(vfs_write(fd, "x", 1), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(vfs_fsync(fd), -1);
	ck_assert_int_eq(vfs_close(fd), 0);
	/* A file synced but whose name never was is gone. */
	fd = create("/d/g", "ghost");
	ck_assert_int_eq(vfs_fsync(fd), 0);
	simfs_crash("/d", 0);
	ck_assert_int_eq(slurp("/d/g", buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(vfs_close(fd), 0);
	/* A truncation not synced is undone. */
	fd = vfs_open("/d/f", O_RDWR, 0);
	ck_assert_int_eq(vfs_ftruncate(fd, 1), 0);
	simfs_crash("/d", 0);
	ck_assert_int_eq(slurp("/d/f", buf, sizeof(buf)), 3);
	ck_assert_int_eq(vfs_close(fd), 0);
}
END_TEST

/* With rnd, a prefix of the bytes written since the sync survives; which
 * one depends on rnd alone. */
START_TEST(test_torn)
{
	char buf[64];
	bool seen[11] = {false};
	int kinds = 0;

	for (uint64_t rnd = 1; rnd <= 200; rnd++) {
		int fd;
		ssize_t n;

		simfs_reset();
		ck_assert_int_eq(vfs_mkdir("/d", 0700), 0);
		fd = create("/d/f", "abc");
		ck_assert_int_eq(vfs_fsync(fd), 0);
		dir_sync("/d");
		ck_assert_int_eq(vfs_pwrite(fd, "01234", 5, 3), 5);
		ck_assert_int_eq(vfs_pwrite(fd, "56789", 5, 8), 5);
		simfs_crash("/d", rnd);
		n = slurp("/d/f", buf, sizeof(buf));
		ck_assert_int_ge(n, 3);
		ck_assert_int_le(n, 13);
		ck_assert_int_eq(memcmp(buf, "abc0123456789", (size_t)n), 0);
		seen[n - 3] = true;
		ck_assert_int_eq(vfs_close(fd), 0);
	}
	for (int i = 0; i < 11; i++)
		kinds += seen[i];
	ck_assert_int_ge(kinds, 8);
	ck_assert(seen[0] && seen[10]);
}
END_TEST

/* A rename is durable once its directory is fsynced, not before. */
START_TEST(test_rename_durability)
{
	char buf[64];
	int fd = create("/d/a", "old");

	ck_assert_int_eq(vfs_fsync(fd), 0);
	ck_assert_int_eq(vfs_close(fd), 0);
	dir_sync("/d");
	fd = create("/d/tmp", "new");
	ck_assert_int_eq(vfs_fsync(fd), 0);
	ck_assert_int_eq(vfs_close(fd), 0);
	ck_assert_int_eq(vfs_rename("/d/tmp", "/d/a"), 0);
	ck_assert_int_eq(slurp("/d/a", buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "new");
	simfs_crash("/d", 0);
	ck_assert_int_eq(slurp("/d/a", buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "old");
	ck_assert_int_eq(slurp("/d/tmp", buf, sizeof(buf)), -1);
	/* Again, with the directory synced after the rename. */
	fd = create("/d/tmp", "new");
	ck_assert_int_eq(vfs_fsync(fd), 0);
	ck_assert_int_eq(vfs_close(fd), 0);
	ck_assert_int_eq(vfs_rename("/d/tmp", "/d/a"), 0);
	dir_sync("/d");
	simfs_crash("/d", 0);
	ck_assert_int_eq(slurp("/d/a", buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "new");
	ck_assert_int_eq(slurp("/d/tmp", buf, sizeof(buf)), -1);
	/* An unlink not made durable is undone. */
	ck_assert_int_eq(vfs_unlink("/d/a"), 0);
	ck_assert_int_eq(slurp("/d/a", buf, sizeof(buf)), -1);
	simfs_crash("/d", 0);
	ck_assert_int_eq(slurp("/d/a", buf, sizeof(buf)), 3);
}
END_TEST

static void
list_count(void *arg, const char *name)
{
	(*(int *)arg)++;
}

START_TEST(test_locks_list_digest)
{
	int a = create("/d/lock", ""), b = vfs_open("/d/lock", O_RDWR, 0);
	int n = 0;
	uint64_t d1, d2;

	ck_assert_int_eq(vfs_flock(a, LOCK_EX | LOCK_NB), 0);
	ck_assert_int_eq(vfs_flock(b, LOCK_EX | LOCK_NB), -1);
	ck_assert_int_eq(vfs_close(a), 0);
	ck_assert_int_eq(vfs_flock(b, LOCK_EX | LOCK_NB), 0);
	simfs_crash("/d", 0); /* the dead fd's lock goes */
	a = vfs_open("/d", O_RDONLY | O_DIRECTORY, 0);
	ck_assert_int_eq(vfs_list("/d", list_count, &n), 0);
	ck_assert_int_eq(n, 0); /* "lock" was never made durable */
	ck_assert_int_eq(vfs_close(a), 0);
	a = create("/d/lock", "");
	ck_assert_int_eq(vfs_flock(a, LOCK_EX | LOCK_NB), 0);
	ck_assert_int_eq(vfs_close(a), 0);
	ck_assert_int_eq(vfs_close(b), 0);
	/* The digest: the same operations give the same tree. */
	d1 = simfs_digest();
	simfs_reset();
	ck_assert_int_eq(vfs_mkdir("/d", 0700), 0);
	ck_assert_int_eq(vfs_close(create("/d/lock", "")), 0);
	d2 = simfs_digest();
	ck_assert_uint_eq(d1, d2);
	ck_assert_int_eq(vfs_close(create("/d/lock", "x")), 0);
	ck_assert_uint_ne(simfs_digest(), d2);
}
END_TEST

/* ---- the real store on simfs -------------------------------------------- */

struct seen {
	int n;
	uint8_t first[64];
	size_t lens[64];
};

static int
collect(void *arg, const uint8_t *rec, size_t len)
{
	struct seen *s = arg;

	if (s->n < 64) {
		s->first[s->n] = rec[0];
		s->lens[s->n] = len;
	}
	s->n++;
	return 0;
}

static struct store *
open_replayed(struct seen *sn, int expect)
{
	char err[256];
	struct store *st =
	    store_open("/d", 1, CFG_FSYNC_BATCH, err, sizeof(err));

	ck_assert_msg(st != NULL, "%s", err);
	memset(sn, 0, sizeof(*sn));
	ck_assert_int_eq(
	    store_replay(st, collect, sn, err, sizeof(err)), expect);
	return st;
}

/* Records first, first + 1, ... of length 40 + i. */
static void
append_n(struct store *st, int first, int n)
{
	uint8_t rec[128];

	for (int i = first; i < first + n; i++) {
		memset(rec, i, sizeof(rec));
		ck_assert_int_eq(store_append(st, rec, 40 + (size_t)i), 0);
	}
}

/* A flush through the log worker, run now. */
static void
flush(struct store *st)
{
	ck_assert_int_eq(store_sync_begin(st), 1);
	ck_assert_int_eq(store_work(st, 0), 1);
	ck_assert_int_eq(store_sync_poll(st, false), 0);
}

/* 10 records made durable, 5 more written and their flush handed over but
 * not run, then the crash. */
static void
crash_with_flush_in_flight(uint64_t rnd)
{
	struct seen sn;
	struct store *st = open_replayed(&sn, 0);

	append_n(st, 0, 4);
	flush(st);
	append_n(st, 4, 6);
	flush(st);
	append_n(st, 10, 5);
	ck_assert_int_eq(store_sync_begin(st), 1);
	ck_assert(store_work_pending(st));
	simfs_crash("/d", rnd);
	store_abandon(st); /* the process died with it */
}

START_TEST(test_store_crash_keeps_synced)
{
	struct seen sn;
	struct store *st;

	crash_with_flush_in_flight(0);
	st = open_replayed(&sn, 0);
	ck_assert_int_eq(sn.n, 10);
	for (int i = 0; i < 10; i++) {
		ck_assert_uint_eq(sn.first[i], (uint8_t)i);
		ck_assert_uint_eq(sn.lens[i], 40 + (size_t)i);
	}
	/* It goes on: one more, durable. */
	append_n(st, 20, 1);
	flush(st);
	simfs_crash("/d", 0);
	store_abandon(st);
	st = open_replayed(&sn, 0);
	ck_assert_int_eq(sn.n, 11);
	ck_assert_uint_eq(sn.first[10], 20);
	store_close(st);
}
END_TEST

/* The same operations and rnd leave the same tree, byte for byte. */
START_TEST(test_store_deterministic)
{
	uint64_t d[2];

	for (int i = 0; i < 2; i++) {
		struct seen sn;
		struct store *st;

		teardown();
		setup();
		crash_with_flush_in_flight(12345);
		st = open_replayed(&sn, 0);
		append_n(st, 40, 3);
		flush(st);
		store_close(st);
		d[i] = simfs_digest();
	}
	ck_assert_uint_eq(d[0], d[1]);
}
END_TEST

/* A torn flush: whole records of it may survive, the torn one is cut, and
 * the log goes on after them. */
START_TEST(test_store_torn_tail)
{
	bool seen[6] = {false};
	int kinds = 0;

	for (uint64_t rnd = 1; rnd <= 60; rnd++) {
		struct seen sn;
		struct store *st;
		int n;

		teardown();
		setup();
		crash_with_flush_in_flight(rnd);
		st = open_replayed(&sn, 0);
		n = sn.n;
		ck_assert_int_ge(n, 10);
		ck_assert_int_le(n, 15);
		for (int i = 0; i < n; i++)
			ck_assert_uint_eq(sn.first[i], (uint8_t)i);
		seen[n - 10] = true;
		append_n(st, 30, 1);
		flush(st);
		store_close(st);
		st = open_replayed(&sn, 0);
		ck_assert_int_eq(sn.n, n + 1);
		ck_assert_uint_eq(sn.first[n], 30);
		store_close(st);
	}
	for (int i = 0; i < 6; i++)
		kinds += seen[i];
	ck_assert_int_ge(kinds, 3);
}
END_TEST

/* Damage to a durable record: in the middle the store refuses to start;
 * the last one is indistinguishable from a tear and is dropped. */
START_TEST(test_store_corrupt)
{
	char err[256];
	struct seen sn;
	struct store *st;
	/* record i starts at 32 + sum over j < i of (24 + 40 + j) */
	uint64_t rec3 = 32 + 3 * 64 + 3, rec9 = 32 + 9 * 64 + 36;

	crash_with_flush_in_flight(0);
	ck_assert_int_eq(simfs_corrupt("/d/node-1/log.0", rec9 + 30), 0);
	st = open_replayed(&sn, 0);
	ck_assert_int_eq(sn.n, 9);
	store_close(st);
	ck_assert_int_eq(simfs_corrupt("/d/node-1/log.0", rec3 + 30), 0);
	st = store_open("/d", 1, CFG_FSYNC_BATCH, err, sizeof(err));
	ck_assert_ptr_nonnull(st);
	memset(&sn, 0, sizeof(sn));
	ck_assert_int_eq(store_replay(st, collect, &sn, err, sizeof(err)), -1);
	ck_assert_msg(
	    strstr(err, "corrupt record at offset 227") != NULL, "%s", err);
	store_close(st);
}
END_TEST

/* Snapshots: written by the background worker, kept across a crash only
 * once durable; a damaged one is refused on read. */
START_TEST(test_store_snapshot)
{
	char err[256];
	struct seen sn;
	struct wbuf out;
	struct store *st = open_replayed(&sn, 0);

	wbuf_init_dynamic(&out, 1 << 16);
	ck_assert_int_eq(
	    store_snapshot_begin(st, 16, (const uint8_t *)"state16", 7, -1), 1);
	ck_assert_int_eq(store_work(st, 1), 1);
	ck_assert_int_eq(store_bg_poll(st, false), 0);
	ck_assert(store_snapshot_durable(st, 16));
	ck_assert_int_eq(
	    store_snapshot_begin(st, 32, (const uint8_t *)"state32", 7, -1), 1);
	simfs_crash("/d", 0); /* before the worker ran */
	store_abandon(st);
	st = open_replayed(&sn, 0);
	ck_assert_int_eq(
	    store_snapshot_read(st, 16, &out, err, sizeof(err)), 0);
	ck_assert_int_eq(memcmp(out.p, "state16", 7), 0);
	ck_assert_int_eq(
	    store_snapshot_read(st, 32, &out, err, sizeof(err)), 1);
	ck_assert_int_eq(
	    simfs_corrupt("/d/node-1/snapshot-00000000000000000016", 18), 0);
	ck_assert_int_eq(
	    store_snapshot_read(st, 16, &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "corrupt snapshot"));
	store_close(st);
	wbuf_clear(&out);
}
END_TEST

/* ---- the ledger service on simfs ---------------------------------------- */

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
		ck_assert_int_eq(ledger_op_submit(&wb, buf, strlen(buf)), 0);
		ck_assert_int_eq(
		    s->ops->execute(s, 1, 0, wb.p, wb.len, res, &rlen), SVC_OK);
		wbuf_reset(&wb);
		ck_assert_int_eq(
		    ledger_op_put(&wb, buf, 5, buf, strlen(buf)), 0);
		ck_assert_int_eq(
		    s->ops->execute(s, 1, 0, wb.p, wb.len, res, &rlen), SVC_OK);
	}
	wbuf_clear(&wb);
}

START_TEST(test_service_crash)
{
	struct service *s = service_ledger_open("/d/journal");
	struct wbuf head;
	uint64_t tail, tail2;
	uint8_t d_ck[32], d[32];

	ck_assert_ptr_nonnull(s);
	dir_sync("/d"); /* as the store's snapshot does at a checkpoint */
	wbuf_init_dynamic(&head, 1 << 20);
	ck_assert_int_eq(s->ops->reopen(s, NULL, 0, &tail), 0);
	load(s, 200, 1);
	ck_assert_int_eq(s->ops->checkpoint(s, &head, &tail), 0);
	ck_assert_int_eq(s->ops->sync(s), 0);
	s->ops->digest(s, d_ck);
	load(s, 50, 2); /* not synced, partly written out */
	s->ops->flush(s);
	simfs_crash("/d", 7);
	s->ops->free(s);
	s = service_ledger_open("/d/journal");
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(s->ops->reopen(s, head.p, head.len, &tail2), 0);
	ck_assert_uint_eq(tail2, tail);
	ck_assert_uint_eq(service_ledger_count(s), 200);
	s->ops->digest(s, d);
	ck_assert_mem_eq(d, d_ck, 32);
	load(s, 5, 3);
	ck_assert_uint_eq(service_ledger_count(s), 205);
	s->ops->free(s);
	/* A journal whose synced bytes were damaged is refused (fetch). */
	ck_assert_int_eq(simfs_corrupt("/d/journal", 14), 0);
	s = service_ledger_open("/d/journal");
	ck_assert_int_eq(s->ops->reopen(s, head.p, head.len, &tail2), -1);
	s->ops->free(s);
	wbuf_clear(&head);
}
END_TEST

static Suite *
simfs_suite(void)
{
	Suite *s = suite_create("simfs");
	TCase *tc = tcase_create("fs");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unsynced_lost);
	tcase_add_test(tc, test_torn);
	tcase_add_test(tc, test_rename_durability);
	tcase_add_test(tc, test_locks_list_digest);
	suite_add_tcase(s, tc);
	tc = tcase_create("real");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_store_crash_keeps_synced);
	tcase_add_test(tc, test_store_torn_tail);
	tcase_add_test(tc, test_store_deterministic);
	tcase_add_test(tc, test_store_corrupt);
	tcase_add_test(tc, test_store_snapshot);
	tcase_add_test(tc, test_service_crash);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(simfs_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
