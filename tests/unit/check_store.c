/*
 * check_store.c - the replica's write-ahead log and snapshots: records
 * survive reopen, a torn tail is truncated at any offset, a damaged record
 * in the middle is refused, snapshots replace each other atomically, and the
 * data directory cannot be opened twice.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/pbft-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	log_set_level(LOG_LVL_ERROR);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

struct seen {
	int n;
	size_t lens[256];
	uint8_t first[256];
};

static int
collect(void *arg, const uint8_t *rec, size_t len)
{
	struct seen *s = arg;

	if (s->n < 256) {
		s->lens[s->n] = len;
		s->first[s->n] = len ? rec[0] : 0;
	}
	s->n++;
	return 0;
}

/* Writes 50 records of growing size; returns the WAL's path. */
static void
write_records(char *wal, size_t wallen)
{
	char err[256];
	struct store *st =
	    store_open(dir, 1, CFG_FSYNC_BATCH, err, sizeof(err));
	uint8_t rec[600];

	ck_assert_msg(st != NULL, "%s", err);
	for (int i = 0; i < 50; i++) {
		memset(rec, i, sizeof(rec));
		ck_assert_int_eq(
		    store_append(st, rec, (size_t)(i * 10 + 1)), 0);
		if (i % 7 == 0)
			ck_assert_int_eq(store_sync(st), 0);
	}
	ck_assert_int_eq(store_sync(st), 0);
	store_close(st);
	snprintf(wal, wallen, "%s/node-1/log.0", dir);
}

static int
replay(struct seen *s, char *err, size_t errlen)
{
	struct store *st = store_open(dir, 1, CFG_FSYNC_BATCH, err, errlen);
	int rc;

	ck_assert_msg(st != NULL, "%s", err);
	memset(s, 0, sizeof(*s));
	rc = store_replay(st, collect, s, err, errlen);
	store_close(st);
	return rc;
}

/* Opens node 1's store (fsync = batch) and replays its log into sn. */
static struct store *
open_replayed(struct seen *sn)
{
	char err[256];
	struct store *st =
	    store_open(dir, 1, CFG_FSYNC_BATCH, err, sizeof(err));

	ck_assert_msg(st != NULL, "%s", err);
	memset(sn, 0, sizeof(*sn));
	ck_assert_int_eq(store_replay(st, collect, sn, err, sizeof(err)), 0);
	return st;
}

/* A restart that replays the log, then appends one record and syncs. */
static void
restart_and_append(const uint8_t *rec, size_t len)
{
	struct seen s;
	struct store *st = open_replayed(&s);

	ck_assert_int_eq(store_append(st, rec, len), 0);
	ck_assert_int_eq(store_sync(st), 0);
	store_close(st);
}

START_TEST(test_roundtrip)
{
	char wal[128], err[256];
	struct seen s;

	write_records(wal, sizeof(wal));
	ck_assert_int_eq(replay(&s, err, sizeof(err)), 0);
	ck_assert_int_eq(s.n, 50);
	for (int i = 0; i < 50; i++) {
		ck_assert_uint_eq(s.lens[i], (size_t)(i * 10 + 1));
		ck_assert_uint_eq(s.first[i], (uint8_t)i);
	}
}
END_TEST

/* Power loss mid-write: every prefix of the log replays what is whole. */
START_TEST(test_torn_tail_every_offset)
{
	char wal[128], err[256];
	struct seen s;
	struct stat sb;
	off_t size;
	unsigned seed = 12345;

	write_records(wal, sizeof(wal));
	ck_assert_int_eq(stat(wal, &sb), 0);
	size = sb.st_size;
	/* 20 random cut points, plus the boundaries. */
	for (int k = 0; k < 22; k++) {
		off_t cut = k == 0 ? 0
		    : k == 1       ? size - 1
		                   : (off_t)(rand_r(&seed) % (unsigned)size);
		int whole = 0;
		off_t off;

		ck_assert_int_eq(truncate(wal, 0), 0); /* a fresh log */
		write_records(wal, sizeof(wal));
		ck_assert_int_eq(truncate(wal, cut), 0);
		off = 32; /* the file's header */
		for (int i = 0; i < 50; i++) {
			off += 24 + i * 10 + 1;
			if (off <= cut)
				whole++;
		}
		ck_assert_int_eq(replay(&s, err, sizeof(err)), 0);
		ck_assert_int_eq(s.n, whole);
		/* The tail was cut off the file: a second replay agrees. */
		ck_assert_int_eq(replay(&s, err, sizeof(err)), 0);
		ck_assert_int_eq(s.n, whole);
		ck_assert_int_eq(truncate(wal, 0), 0);
	}
}
END_TEST

static void
flip_bit(const char *path, off_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, off), 1);
	b ^= mask;
	ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

START_TEST(test_corrupt_middle_refused)
{
	char wal[128], err[256];
	struct seen s;

	write_records(wal, sizeof(wal));
	flip_bit(wal, 1000, 0x40); /* inside record 10's payload */
	ck_assert_int_eq(replay(&s, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "corrupt record"));
}
END_TEST

START_TEST(test_snapshot)
{
	char err[256], path[128];
	struct store *st =
	    store_open(dir, 2, CFG_FSYNC_ALWAYS, err, sizeof(err));
	struct wbuf out;

	ck_assert_msg(st != NULL, "%s", err);
	wbuf_init_dynamic(&out, 1 << 20);
	ck_assert_int_eq(
	    store_snapshot_read(st, 100, &out, err, sizeof(err)), 1);
	ck_assert_int_eq(
	    store_snapshot_write(st, 100, (const uint8_t *)"one", 3), 0);
	ck_assert_int_eq(
	    store_snapshot_write(st, 200, (const uint8_t *)"two!", 4), 0);
	ck_assert_int_eq(
	    store_snapshot_read(st, 200, &out, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.len, 4);
	ck_assert_int_eq(memcmp(out.p, "two!", 4), 0);
	/* The previous one stays (the log may still name it)... */
	ck_assert_int_eq(
	    store_snapshot_read(st, 100, &out, err, sizeof(err)), 0);
	ck_assert_int_eq(memcmp(out.p, "one", 3), 0);
	/* ...and so does any number of them, until the log names a newer
	 * checkpoint and the older ones are pruned. */
	ck_assert_int_eq(
	    store_snapshot_write(st, 300, (const uint8_t *)"3", 1), 0);
	ck_assert_int_eq(
	    store_snapshot_read(st, 100, &out, err, sizeof(err)), 0);
	store_snapshots_prune(st, 300);
	ck_assert_int_eq(
	    store_snapshot_read(st, 100, &out, err, sizeof(err)), 1);
	ck_assert_int_eq(
	    store_snapshot_read(st, 200, &out, err, sizeof(err)), 1);
	/* A damaged snapshot is refused. */
	snprintf(path, sizeof(path), "%s/node-2/snapshot-%020d", dir, 300);
	ck_assert_int_eq(truncate(path, 16), 0);
	ck_assert_int_eq(
	    store_snapshot_read(st, 300, &out, err, sizeof(err)), -1);
	wbuf_clear(&out);
	store_close(st);
}
END_TEST

static int
count_snapshots(const char *node_dir)
{
	DIR *d = opendir(node_dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "snapshot-", 9) == 0)
			n++;
	closedir(d);
	return n;
}

/*
 * Across restarts, snapshots below the checkpoint the log names are pruned
 * (the replica does so after its replay); newer ones written ahead of
 * their checkpoint's stability stay.
 */
START_TEST(test_snapshots_bounded_across_restarts)
{
	char err[256], node[128];
	struct wbuf out;

	snprintf(node, sizeof(node), "%s/node-5", dir);
	for (uint64_t seq = 100; seq <= 600; seq += 100) {
		struct store *st =
		    store_open(dir, 5, CFG_FSYNC_OFF, err, sizeof(err));

		ck_assert_msg(st != NULL, "%s", err);
		/* The log names the one before (this one is written ahead). */
		store_snapshots_prune(st, seq - 100);
		ck_assert_int_eq(
		    store_snapshot_write(st, seq, (const uint8_t *)"x", 1), 0);
		store_close(st); /* a restart after every checkpoint */
		ck_assert_int_le(count_snapshots(node), 2);
	}
	{
		struct store *st =
		    store_open(dir, 5, CFG_FSYNC_OFF, err, sizeof(err));

		ck_assert_msg(st != NULL, "%s", err);
		store_snapshots_prune(st, 500);
		ck_assert_int_eq(count_snapshots(node), 2);
		wbuf_init_dynamic(&out, 1 << 10);
		ck_assert_int_eq(
		    store_snapshot_read(st, 600, &out, err, sizeof(err)), 0);
		ck_assert_int_eq(
		    store_snapshot_read(st, 500, &out, err, sizeof(err)), 0);
		ck_assert_int_eq(
		    store_snapshot_read(st, 400, &out, err, sizeof(err)), 1);
		wbuf_clear(&out);
		store_close(st);
	}
}
END_TEST

static int
gen_two(void *arg)
{
	struct store *st = arg;

	if (store_append(st, (const uint8_t *)"a", 1) == -1 ||
	    store_append(st, (const uint8_t *)"bb", 2) == -1)
		return -1;
	return 0;
}

/*
 * The records written with a header (a compaction's) were durable before
 * it: damage to the last of them is refused though no record follows.
 */
START_TEST(test_corrupt_compacted_refused)
{
	char wal[128], err[256], live[160];
	struct seen s;
	struct store *st;

	write_records(wal, sizeof(wal));
	st = open_replayed(&s);
	ck_assert_int_eq(store_rewrite(st, gen_two, st), 0); /* log.1 */
	store_close(st);
	snprintf(live, sizeof(live), "%s/node-1/log.1", dir);
	/* "a" at 32 + 24, "bb" at 32 + 25 + 24: its second byte */
	flip_bit(live, 32 + 25 + 24 + 1, 0x01);
	ck_assert_int_eq(replay(&s, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "corrupt record"));
}
END_TEST

/* Compaction replaces the whole log; later appends go to the new one. */
START_TEST(test_rewrite)
{
	char wal[128], err[256];
	struct seen sn;
	struct store *st;

	write_records(wal, sizeof(wal));
	st = store_open(dir, 1, CFG_FSYNC_BATCH, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_int_eq(store_rewrite(st, gen_two, st), 0);
	ck_assert_int_eq(store_append(st, (const uint8_t *)"ccc", 3), 0);
	ck_assert_int_eq(store_sync(st), 0);
	store_close(st);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 3);
	ck_assert_uint_eq(sn.lens[0], 1);
	ck_assert_uint_eq(sn.lens[2], 3);
}
END_TEST

static int
gen_many(void *arg)
{
	uint8_t rec[300];

	(void)arg;
	for (int i = 0; i < 20; i++) {
		memset(rec, 100 + i, sizeof(rec));
		if (store_append(arg, rec, sizeof(rec)) == -1)
			return -1;
	}
	return 0;
}

static off_t
file_size(const char *name)
{
	char path[128];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/node-1/%s", dir, name);
	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/*
 * Compaction reuses the other file: after two, log.0 is live again and was
 * written over in place (it keeps its size); what it held beyond the new
 * log's end is an older generation's and never replays.
 */
START_TEST(test_rewrite_reuses_spare)
{
	char wal[128], err[256];
	struct seen sn;
	struct store *st;
	off_t size0;

	write_records(wal, sizeof(wal)); /* log.0: 50 records */
	size0 = file_size("log.0");
	st = open_replayed(&sn);
	ck_assert_int_eq(store_rewrite(st, gen_many, st), 0); /* log.1 */
	ck_assert_int_eq(store_rewrite(st, gen_two, st), 0); /* log.0 */
	ck_assert_int_eq(store_append(st, (const uint8_t *)"ccc", 3), 0);
	ck_assert_int_eq(store_sync(st), 0);
	store_close(st);
	ck_assert_int_eq(file_size("log.0"), size0);
	ck_assert_int_gt(file_size("log.1"), 20 * 300);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 3);
	ck_assert_uint_eq(sn.lens[0], 1);
	ck_assert_uint_eq(sn.lens[1], 2);
	ck_assert_uint_eq(sn.lens[2], 3);
	/* A restart appends where the log ends, and keeps the file. */
	restart_and_append((const uint8_t *)"dddd", 4);
	ck_assert_int_eq(file_size("log.0"), size0);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 4);
	ck_assert_uint_eq(sn.lens[3], 4);
}
END_TEST

/*
 * A crash during compaction, after the spare's records and before its
 * header: the spare is not a log yet and the old log stays live.
 */
START_TEST(test_compaction_cut_before_header)
{
	char wal[128], err[256], spare[160];
	struct seen sn;
	int fd;
	uint8_t junk[4096];

	write_records(wal, sizeof(wal));
	snprintf(spare, sizeof(spare), "%s/node-1/log.1", dir);
	fd = open(spare, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	memset(junk, 0x5a, sizeof(junk));
	ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), 32), sizeof(junk));
	close(fd);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 50);
}
END_TEST

/*
 * A crash in the middle of a flush into a reused file: its pages reach the
 * disk in any order, so a record of it may be missing while a later one of
 * the same flush is whole. That is a torn tail (dropped, with the later
 * record), not damage: the later record was written before the missing one
 * was durable.
 */
START_TEST(test_torn_flush_out_of_order)
{
	char wal[128], err[256];
	struct seen sn;
	struct store *st;
	uint8_t rec[100], zero[124];
	int fd;

	write_records(wal, sizeof(wal));
	st = open_replayed(&sn);
	memset(rec, 7, sizeof(rec));
	/* One flush with three records. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(store_append(st, rec, sizeof(rec)), 0);
	ck_assert_int_eq(store_sync(st), 0);
	store_close(st);
	/* The first of them never reached the disk. */
	fd = open(wal, O_RDWR);
	ck_assert_int_ge(fd, 0);
	memset(zero, 0, sizeof(zero));
	ck_assert_int_eq(pwrite(fd, zero, sizeof(zero),
	                     file_size("log.0") - 3 * (off_t)sizeof(zero)),
	    sizeof(zero));
	close(fd);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 50);
	/* The dropped records stay dropped, even once a new record fills
	 * exactly the place of the missing one. */
	memset(rec, 9, sizeof(rec));
	restart_and_append(rec, sizeof(rec));
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 51);
	ck_assert_uint_eq(sn.first[50], 9);
}
END_TEST

/* A data directory of the single-file format is converted on replay. */
START_TEST(test_converts_old_wal)
{
	char path[128], err[256];
	struct seen sn;
	uint8_t buf[64];
	int fd;

	snprintf(path, sizeof(path), "%s/node-1", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/node-1/wal", dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	for (int i = 1; i <= 3; i++) {
		uint32_t crc;

		memset(buf + 8, 'a' + i, (size_t)i);
		crc = crc32c(0, buf + 8, (size_t)i);
		for (int b = 0; b < 4; b++) {
			buf[b] = (uint8_t)((uint32_t)i >> (8 * b));
			buf[4 + b] = (uint8_t)(crc >> (8 * b));
		}
		ck_assert_int_eq(write(fd, buf, 8 + (size_t)i), 8 + i);
	}
	ck_assert_int_eq(write(fd, "torn", 4), 4);
	close(fd);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 3);
	ck_assert_uint_eq(sn.first[2], 'a' + 3);
	ck_assert_int_eq(access(path, F_OK), -1); /* wal is gone */
	restart_and_append((const uint8_t *)"x", 1);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 4);
}
END_TEST

/* A damaged file header is refused, not read as "no log". */
START_TEST(test_damaged_header_refused)
{
	char wal[128], err[256];
	struct store *st;

	write_records(wal, sizeof(wal));
	flip_bit(wal, 9, 1); /* in the generation */
	st = store_open(dir, 1, CFG_FSYNC_BATCH, err, sizeof(err));
	ck_assert_ptr_null(st);
	ck_assert_ptr_nonnull(strstr(err, "damaged header"));
}
END_TEST

/* Writes len bytes of b as dir/node-9/log.0 (the directory made 0700). */
static void
plant_log0(uint8_t b, size_t len, char *path, size_t pathlen)
{
	uint8_t buf[64];
	FILE *f;

	snprintf(path, pathlen, "%s/node-9", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, pathlen, "%s/node-9/log.0", dir);
	memset(buf, b, sizeof(buf));
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static off_t
size_at(const char *path)
{
	struct stat sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return sb.st_size;
}

/*
 * Only a missing, empty or never-begun (zeroes) log is new: a file with
 * bytes that are not a log, or shorter than its header, is refused and
 * left as it was (it used to be truncated and started afresh).
 */
START_TEST(test_not_a_log_refused)
{
	char path[128], err[256];
	struct store *st;

	plant_log0(0x5a, 20, path, sizeof(path));
	st = store_open(dir, 9, CFG_FSYNC_BATCH, err, sizeof(err));
	ck_assert_ptr_null(st);
	ck_assert_msg(
	    strstr(err, "log.0: damaged header at 0") != NULL, "%s", err);
	ck_assert_int_eq(size_at(path), 20);
}
END_TEST

START_TEST(test_zeroes_are_new)
{
	char path[128], err[256];
	struct store *st;

	plant_log0(0, 20, path, sizeof(path));
	st = store_open(dir, 9, CFG_FSYNC_BATCH, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	store_close(st);
	ck_assert_int_eq(size_at(path), 32); /* a fresh header over them */
}
END_TEST

/* A spare that holds records (its header not written) with no log beside
 * it is a log that went, not a new one. */
START_TEST(test_lone_spare_refused)
{
	char path[128], spare[128], err[256];

	plant_log0(0, 64, path, sizeof(path));
	snprintf(spare, sizeof(spare), "%s/node-9/log.1", dir);
	ck_assert_int_eq(rename(path, spare), 0);
	ck_assert_ptr_null(store_open(dir, 9, CFG_FSYNC_OFF, err, sizeof(err)));
	ck_assert_msg(strstr(err, "log.1: 64 bytes but no log header") != NULL,
	    "%s", err);
	ck_assert_int_eq(access(path, F_OK), -1); /* no log.0 made */
	ck_assert_int_eq(size_at(spare), 64);
}
END_TEST

/* A data directory others can write to is refused. */
START_TEST(test_open_dir_refused)
{
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/node-8", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(chmod(path, 0777), 0);
	ck_assert_ptr_null(store_open(dir, 8, CFG_FSYNC_OFF, err, sizeof(err)));
	ck_assert_msg(
	    strstr(err, "writable by nobody else") != NULL, "%s", err);
	ck_assert_int_eq(chmod(path, 0700), 0);
	store_close(store_open(dir, 8, CFG_FSYNC_OFF, err, sizeof(err)));
}
END_TEST

START_TEST(test_locked)
{
	char err[256];
	struct store *a = store_open(dir, 3, CFG_FSYNC_OFF, err, sizeof(err));
	struct store *b;

	ck_assert_msg(a != NULL, "%s", err);
	b = store_open(dir, 3, CFG_FSYNC_OFF, err, sizeof(err));
	ck_assert_ptr_null(b);
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	store_close(a);
}
END_TEST

/* Group commit off the loop: one flush in flight, reaped by poll. */
/* Appends one record of len bytes, all set to b. */
static void
append_byte(struct store *st, uint8_t b, size_t len)
{
	uint8_t rec[64];

	memset(rec, b, sizeof(rec));
	ck_assert_int_eq(store_append(st, rec, len), 0);
}

/* Flushes through the log's thread and waits for it. */
static void
flush_wait(struct store *st)
{
	ck_assert_int_eq(store_sync_begin(st), 1);
	ck_assert_int_eq(store_sync_poll(st, true), 0);
}

/*
 * Compaction off the loop: the compacted records stand for what was
 * appended before it began (flushed or not); what was appended after, in
 * the old log or still buffered when it switches, follows them in the new
 * log, and what comes during the switch too.
 */
START_TEST(test_compaction_off_loop)
{
	char wal[128], err[256];
	struct seen sn;
	struct store *st;

	write_records(wal, sizeof(wal)); /* log.0: 50 records */
	st = open_replayed(&sn);
	append_byte(st, 'r', 5);
	flush_wait(st);
	append_byte(st, 'x', 6); /* buffered: the compaction covers it */
	ck_assert_int_eq(store_compact_begin(st, 0, gen_two, st), 1);
	ck_assert(!store_compact_ready(st));
	ck_assert_int_eq(store_compact_begin(st, 0, gen_two, st), 0);
	append_byte(st, 'y', 7);
	flush_wait(st); /* into the old log: the spare is not live yet */
	append_byte(st, 'z', 8);
	ck_assert_int_eq(store_bg_poll(st, true), 0);
	ck_assert(store_compact_ready(st));
	ck_assert_int_eq(store_sync_begin(st), 1); /* the switch */
	append_byte(st, 'w', 9); /* during the switch */
	ck_assert_int_eq(store_sync_poll(st, true), 0);
	ck_assert(!store_compact_ready(st));
	flush_wait(st);
	store_close(st);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 5);
	ck_assert_uint_eq(sn.lens[0], 1);
	ck_assert_uint_eq(sn.lens[1], 2);
	ck_assert_uint_eq(sn.first[2], 'y');
	ck_assert_uint_eq(sn.first[3], 'z');
	ck_assert_uint_eq(sn.first[4], 'w');
	ck_assert_uint_eq(sn.lens[4], 9);
	/* Again, with the covered record still buffered at the switch. */
	st = open_replayed(&sn);
	append_byte(st, 'u', 10);
	ck_assert_int_eq(store_compact_begin(st, 0, gen_two, st), 1);
	append_byte(st, 't', 11);
	ck_assert_int_eq(store_bg_poll(st, true), 0);
	flush_wait(st); /* the switch */
	store_close(st);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 3);
	ck_assert_uint_eq(sn.first[2], 't');
	/* The new log takes appends after a restart. */
	restart_and_append((const uint8_t *)"v", 1);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 4);
}
END_TEST

/*
 * A compaction whose spare is written but not yet switched when the store
 * closes (or the process dies) is abandoned: the old log holds everything.
 */
START_TEST(test_compaction_off_loop_abandoned)
{
	char wal[128], err[256];
	struct seen sn;
	struct store *st;

	write_records(wal, sizeof(wal));
	st = open_replayed(&sn);
	append_byte(st, 'x', 6);
	ck_assert_int_eq(store_compact_begin(st, 0, gen_two, st), 1);
	append_byte(st, 'y', 7);
	flush_wait(st);
	ck_assert_int_eq(store_bg_poll(st, true), 0);
	append_byte(st, 'z', 8);
	store_close(st);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 53);
	ck_assert_uint_eq(sn.first[50], 'x');
	ck_assert_uint_eq(sn.first[52], 'z');
}
END_TEST

/* A snapshot written by the background thread, and pruned. */
START_TEST(test_snapshot_off_loop)
{
	char err[256];
	struct store *st =
	    store_open(dir, 1, CFG_FSYNC_BATCH, err, sizeof(err));
	struct wbuf out;

	ck_assert_msg(st != NULL, "%s", err);
	wbuf_init_dynamic(&out, 1 << 10);
	ck_assert(!store_snapshot_durable(st, 20));
	ck_assert_int_eq(
	    store_snapshot_begin(st, 20, (const uint8_t *)"state", 5, -1), 1);
	ck_assert(store_bg_busy(st));
	ck_assert_int_eq(
	    store_snapshot_begin(st, 40, (const uint8_t *)"later", 5, -1), 0);
	ck_assert_int_eq(store_bg_poll(st, true), 0);
	ck_assert(store_snapshot_durable(st, 20));
	ck_assert(!store_snapshot_durable(st, 40));
	ck_assert_int_eq(
	    store_snapshot_read(st, 20, &out, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.len, 5);
	ck_assert_int_eq(memcmp(out.p, "state", 5), 0);
	store_snapshots_prune(st, 40);
	ck_assert_int_eq(
	    store_snapshot_read(st, 20, &out, err, sizeof(err)), 1);
	wbuf_clear(&out);
	store_close(st);
}
END_TEST

START_TEST(test_background_sync)
{
	char err[256];
	struct store *st =
	    store_open(dir, 1, CFG_FSYNC_BATCH, err, sizeof(err));
	struct store_stats ss;
	struct seen s;
	uint8_t rec[100];
	int rc;

	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_int_ne(store_sync_fd(st), -1);
	ck_assert_int_eq(store_sync_begin(st), 0); /* nothing buffered */
	ck_assert_int_eq(store_sync_poll(st, false), 0);
	memset(rec, 1, sizeof(rec));
	ck_assert_int_eq(store_append(st, rec, sizeof(rec)), 0);
	ck_assert_int_eq(store_sync_begin(st), 1);
	/* While one is in flight, more records wait for the next. */
	rec[0] = 2;
	ck_assert_int_eq(store_append(st, rec, sizeof(rec)), 0);
	ck_assert_int_eq(store_sync_begin(st), 1);
	ck_assert_int_eq(store_sync_poll(st, true), 0);
	ck_assert_int_eq(store_sync_poll(st, false), 0); /* reaped */
	store_get_stats(st, &ss);
	ck_assert_uint_eq(ss.syncs, 1);
	/* The second record's flush: poll without waiting until it ends. */
	ck_assert_int_eq(store_sync_begin(st), 1);
	for (int i = 0; i < 100000 && (rc = store_sync_poll(st, false)) == 1;
	     i++)
		usleep(100);
	ck_assert_int_eq(rc, 0);
	store_get_stats(st, &ss);
	ck_assert_uint_eq(ss.syncs, 2);
	/* Closing with a flush in flight waits for it. */
	rec[0] = 3;
	ck_assert_int_eq(store_append(st, rec, sizeof(rec)), 0);
	ck_assert_int_eq(store_sync_begin(st), 1);
	store_close(st);
	ck_assert_int_eq(replay(&s, err, sizeof(err)), 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert_uint_eq(s.first[2], 3);
	/* Modes other than batch have no thread and sync in place. */
	st = store_open(dir, 1, CFG_FSYNC_ALWAYS, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(store_replay(st, collect, &s, err, sizeof(err)), 0);
	ck_assert_int_eq(store_sync_fd(st), -1);
	ck_assert_int_eq(store_append(st, rec, sizeof(rec)), 0);
	ck_assert_int_eq(store_sync_begin(st), 0);
	store_get_stats(st, &ss);
	ck_assert_uint_eq(ss.syncs, 1);
	store_close(st);
}
END_TEST

/*
 * Inline workers (for a simulator): no threads and no eventfd; a job handed
 * over waits until store_work runs it, and the polls then reap it as after
 * a thread. Flushes, a snapshot and a compaction, then replay.
 */
static void
inline_flush(struct store *st)
{
	ck_assert_int_eq(store_sync_begin(st), 1);
	ck_assert(store_work_pending(st));
	ck_assert_int_eq(store_sync_poll(st, false), 1); /* not run yet */
	ck_assert_int_eq(store_work(st, 0), 1);
	ck_assert(!store_work_pending(st));
	ck_assert_int_eq(store_sync_poll(st, false), 0);
}

START_TEST(test_inline_workers)
{
	char err[256];
	struct seen sn;
	struct store_stats ss;
	struct store *st;

	store_inline_workers(true);
	st = open_replayed(&sn);
	ck_assert_int_eq(store_sync_fd(st), -1);
	ck_assert_int_eq(store_work(st, 0), 0); /* nothing pending */
	append_byte(st, 'a', 5);
	append_byte(st, 'b', 6);
	inline_flush(st);
	store_get_stats(st, &ss);
	ck_assert_uint_eq(ss.syncs, 1);
	/* A snapshot and a flush both pending: pick chooses. */
	ck_assert_int_eq(
	    store_snapshot_begin(st, 20, (const uint8_t *)"state", 5, -1), 1);
	append_byte(st, 'c', 7);
	ck_assert_int_eq(store_sync_begin(st), 1);
	ck_assert_int_eq(store_work(st, 1), 1); /* the background's */
	ck_assert_int_eq(store_sync_poll(st, false), 1);
	ck_assert_int_eq(store_bg_poll(st, false), 0);
	ck_assert(store_snapshot_durable(st, 20));
	ck_assert(store_work_pending(st));
	ck_assert_int_eq(store_work(st, 1), 1); /* the log's: the only one */
	ck_assert_int_eq(store_sync_poll(st, false), 0);
	/* A compaction: the spare, then the switch in place of a flush. */
	ck_assert_int_eq(store_compact_begin(st, 0, gen_two, st), 1);
	append_byte(st, 'd', 8);
	ck_assert_int_eq(store_bg_poll(st, false), 1);
	ck_assert_int_eq(store_work(st, 0), 1);
	ck_assert_int_eq(store_bg_poll(st, false), 0);
	ck_assert(store_compact_ready(st));
	inline_flush(st); /* the switch */
	ck_assert(!store_compact_ready(st));
	store_get_stats(st, &ss);
	ck_assert_uint_eq(ss.compactions, 1);
	/* A poll that waits runs the job itself. */
	append_byte(st, 'e', 9);
	ck_assert_int_eq(store_sync_begin(st), 1);
	ck_assert_int_eq(store_sync_poll(st, true), 0);
	/* A flush handed over and never run is run at close. */
	append_byte(st, 'f', 10);
	ck_assert_int_eq(store_sync_begin(st), 1);
	store_close(st);
	ck_assert_int_eq(replay(&sn, err, sizeof(err)), 0);
	ck_assert_int_eq(sn.n, 5); /* "a", "bb", d, e, f */
	ck_assert_uint_eq(sn.lens[0], 1);
	ck_assert_uint_eq(sn.lens[1], 2);
	ck_assert_uint_eq(sn.first[2], 'd');
	ck_assert_uint_eq(sn.first[3], 'e');
	ck_assert_uint_eq(sn.first[4], 'f');
	store_inline_workers(false);
}
END_TEST

START_TEST(test_crc32c_known)
{
	uint8_t b[32], big[1000];
	uint32_t whole, parts = 0;

	/* The standard check value of CRC-32C, and RFC 3720's vectors. */
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xe3069283u);
	memset(b, 0, sizeof(b));
	ck_assert_uint_eq(crc32c(0, b, 32), 0x8a9136aau);
	memset(b, 0xff, sizeof(b));
	ck_assert_uint_eq(crc32c(0, b, 32), 0x62a8ab43u);
	/* Pieces of every odd size chain to the one-shot value. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	whole = crc32c(0, big, sizeof(big));
	for (size_t off = 0, k = 1; off < sizeof(big); off += k, k += 2)
		parts = crc32c(parts, big + off,
		    off + k <= sizeof(big) ? k : sizeof(big) - off);
	ck_assert_uint_eq(parts, whole);
}
END_TEST

/*
 * The replicas caught lying in a state transfer: none without the file;
 * what was written comes back after a restart; a malformed or unreadable
 * file is an error, not "none".
 */
START_TEST(test_liars_file)
{
	char err[256], path[4200];
	struct store *st =
	    store_open(dir, 1, CFG_FSYNC_BATCH, err, sizeof(err));
	uint64_t mask = 1;
	FILE *f;

	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_int_eq(store_liars_read(st, &mask, err, sizeof(err)), 0);
	ck_assert_uint_eq(mask, 0);
	ck_assert_int_eq(store_liars_write(st, 1ULL << 0 | 1ULL << 63), 0);
	store_close(st);
	st = store_open(dir, 1, CFG_FSYNC_BATCH, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_int_eq(store_liars_read(st, &mask, err, sizeof(err)), 0);
	ck_assert_uint_eq(mask, 1ULL << 0 | 1ULL << 63);
	ck_assert_int_eq(store_liars_write(st, 0), 0);
	ck_assert_int_eq(store_liars_read(st, &mask, err, sizeof(err)), 0);
	ck_assert_uint_eq(mask, 0);
	snprintf(path, sizeof(path), "%s/node-1/xfer-liars", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("liars 3 x\n", f);
	fclose(f);
	ck_assert_int_eq(store_liars_read(st, &mask, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "malformed"));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0); /* unreadable as a file */
	ck_assert_int_eq(store_liars_read(st, &mask, err, sizeof(err)), -1);
	store_close(st);
}
END_TEST

/* Writes the snapshot file of seq as the older format ("SNP1") did. */
static void
write_snp1(struct store *st, uint64_t seq, const uint8_t *img, size_t len)
{
	char path[128];
	uint8_t hdr[16];
	uint32_t crc = crc32c(0, img, len);
	FILE *f;

	for (int i = 0; i < 8; i++)
		hdr[i] = (uint8_t)(seq >> (8 * i));
	for (int i = 0; i < 4; i++)
		hdr[8 + i] = (uint8_t)(crc >> (8 * i));
	memcpy(hdr + 12, "SNP1", 4);
	snprintf(path, sizeof(path), "%s/snapshot-%020llu", store_dir(st),
	    (unsigned long long)seq);
	ck_assert_ptr_nonnull(f = fopen(path, "wb"));
	ck_assert_uint_eq(fwrite(hdr, 1, sizeof(hdr), f), sizeof(hdr));
	ck_assert_uint_eq(fwrite(img, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/*
 * A snapshot of the older format (no reply table) reads as one of the
 * current format with an empty reply table after the client table, so an
 * existing data directory still starts; one whose table length runs past
 * its end is refused.
 */
START_TEST(test_snapshot_older_format)
{
	static const uint8_t v1[] = {3, 0, 0, 0, 'c', 't', '!', 's', 'v'};
	static const uint8_t v2[] = {
	    3, 0, 0, 0, 'c', 't', '!', 0, 0, 0, 0, 's', 'v'};
	static const uint8_t bad[] = {9, 0, 0, 0, 'c', 't'};
	char err[256];
	struct store *st =
	    store_open(dir, 2, CFG_FSYNC_ALWAYS, err, sizeof(err));
	struct wbuf out;

	ck_assert_msg(st != NULL, "%s", err);
	wbuf_init_dynamic(&out, 1 << 20);
	write_snp1(st, 100, v1, sizeof(v1));
	ck_assert_int_eq(
	    store_snapshot_read(st, 100, &out, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.len, sizeof(v2));
	ck_assert_int_eq(memcmp(out.p, v2, sizeof(v2)), 0);
	/* What is written now is read back as it was. */
	ck_assert_int_eq(store_snapshot_write(st, 200, v2, sizeof(v2)), 0);
	ck_assert_int_eq(
	    store_snapshot_read(st, 200, &out, err, sizeof(err)), 0);
	ck_assert_uint_eq(out.len, sizeof(v2));
	ck_assert_int_eq(memcmp(out.p, v2, sizeof(v2)), 0);
	write_snp1(st, 300, bad, sizeof(bad));
	ck_assert_int_eq(
	    store_snapshot_read(st, 300, &out, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "older format"));
	wbuf_clear(&out);
	store_close(st);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("valid");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_snapshot);
	tcase_add_test(tc, test_snapshot_older_format);
	tcase_add_test(tc, test_snapshots_bounded_across_restarts);
	tcase_add_test(tc, test_locked);
	tcase_add_test(tc, test_rewrite);
	tcase_add_test(tc, test_rewrite_reuses_spare);
	tcase_add_test(tc, test_compaction_cut_before_header);
	tcase_add_test(tc, test_converts_old_wal);
	tcase_add_test(tc, test_crc32c_known);
	tcase_add_test(tc, test_background_sync);
	tcase_add_test(tc, test_compaction_off_loop);
	tcase_add_test(tc, test_compaction_off_loop_abandoned);
	tcase_add_test(tc, test_snapshot_off_loop);
	tcase_add_test(tc, test_liars_file);
	tcase_add_test(tc, test_inline_workers);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_torn_tail_every_offset);
	tcase_add_test(tc, test_corrupt_middle_refused);
	tcase_add_test(tc, test_corrupt_compacted_refused);
	tcase_add_test(tc, test_torn_flush_out_of_order);
	tcase_add_test(tc, test_damaged_header_refused);
	tcase_add_test(tc, test_not_a_log_refused);
	tcase_add_test(tc, test_zeroes_are_new);
	tcase_add_test(tc, test_lone_spare_refused);
	tcase_add_test(tc, test_open_dir_refused);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
