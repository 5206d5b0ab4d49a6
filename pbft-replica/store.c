/*
 * store.c - write-ahead log and snapshots in a replica's data directory;
 * see store.h for the formats and the guarantees.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/*
 * The background syncer: one thread that runs fdatasync on request, so the
 * replica's loop keeps working while the disk flushes. The loop writes the
 * records itself (write(2) into the page cache is quick) and only hands the
 * flush over; at most one flush is in flight. Everything below the mutex is
 * shared with the thread.
 */
struct syncer {
	bool started;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int efd; /* eventfd: readable when a flush ended */
	bool inflight; /* loop side: a flush was requested, not yet reaped */
	/* shared, under mu */
	bool request, done, quit;
	int fd, result;
	uint64_t ns;
};

/*
 * The log lives in two files, log.0 and log.1 (see store.h). The live one
 * has the newer generation; the other is the spare that the next compaction
 * overwrites. Offsets are file offsets.
 */
#define LOG_HDR_LEN 32
#define REC_HDR_LEN 24
#define LOG_NOT_REPLAYED UINT64_MAX
static const char log_magic[8] = {'P', 'B', 'F', 'T', 'L', 'O', 'G', '2'};

struct store {
	char dir[CFG_PATH_MAX];
	int dir_fd, lock_fd;
	int wal_fd; /* the live log file (or the old-format wal) */
	int spare_fd; /* the other log file, or -1 */
	int live; /* index of the live file: log.<live>; -1: old format */
	uint64_t gen; /* the live file's generation */
	uint64_t base; /* end of the records its header came with */
	uint64_t wal_off; /* where the next write goes */
	uint64_t durable_off; /* everything before it is durable */
	uint64_t flush_end; /* durable_off once the flush in flight ends */
	bool compacting; /* store_append writes generation gen + 1 */
	enum cfg_fsync mode;
	struct wbuf pending; /* records appended, not yet written */
	uint64_t snap_last, snap_prev; /* snapshots kept on disk */
	struct store_stats stats;
	struct syncer sy;
};

static int syncer_start(struct store *st);
static void syncer_stop(struct store *st);

static uint32_t crc_table[256];

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = ~crc;

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

uint32_t
crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	/* The CPU's CRC32 instruction computes exactly CRC32C. */
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_hw(crc, p, len);
#endif
	if (crc_table[1] == 0)
		crc_init();
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static int
mkdir_p(const char *path, mode_t mode)
{
	char tmp[CFG_PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static void snap_path(
    const struct store *st, uint64_t seq, char *buf, size_t len);

/*
 * After a restart: the two newest snapshots are the only ones the log can
 * name (a snapshot is written before the log names it), so older ones
 * left by earlier runs go, and writing resumes the keep-two rotation.
 */
static void
prune_snapshots(struct store *st)
{
	DIR *d = opendir(st->dir);
	struct dirent *e;
	uint64_t top[2] = {0, 0};
	unsigned removed = 0;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		unsigned long long seq;
		char end;

		if (sscanf(e->d_name, "snapshot-%20llu%c", &seq, &end) != 1)
			continue;
		if (seq > top[0]) {
			top[1] = top[0];
			top[0] = seq;
		} else if (seq > top[1]) {
			top[1] = seq;
		}
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		unsigned long long seq;
		char end, path[CFG_PATH_MAX + 48];

		if (sscanf(e->d_name, "snapshot-%20llu%c", &seq, &end) != 1 ||
		    seq == top[0] || seq == top[1])
			continue;
		snap_path(st, seq, path, sizeof(path));
		if (unlink(path) == 0)
			removed++;
	}
	closedir(d);
	if (removed > 0)
		log_info("%s: removed %u old snapshots", st->dir, removed);
	st->snap_last = top[0];
	st->snap_prev = top[1];
}

static uint32_t le32(const uint8_t *p);

static uint64_t
le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void
log_path(const struct store *st, int i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/log.%d", st->dir, i);
}

/* base: where the records written with the header (compaction) end. */
static void
log_header(uint8_t hdr[LOG_HDR_LEN], uint64_t gen, uint64_t base)
{
	struct wbuf wb;

	memset(hdr, 0, LOG_HDR_LEN);
	wbuf_init_fixed(&wb, hdr, LOG_HDR_LEN);
	wbuf_put_bytes(&wb, log_magic, sizeof(log_magic));
	wbuf_put_u64(&wb, gen);
	wbuf_put_u64(&wb, base);
	wbuf_put_u32(&wb, crc32c(0, hdr, 24));
}

/*
 * A log file's header: 1 with *gen and *base set, 0 when the file holds no
 * log (too short, or not begun: a spare whose first compaction never
 * finished), -1 when it is damaged (the magic is there, the check fails).
 */
static int
log_header_read(int fd, uint64_t *gen, uint64_t *base)
{
	uint8_t hdr[LOG_HDR_LEN];

	if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, log_magic, sizeof(log_magic)) != 0)
		return 0;
	if (crc32c(0, hdr, 24) != le32(hdr + 24))
		return -1;
	*gen = le64(hdr + 8);
	*base = le64(hdr + 16);
	return *gen == 0 || *base < LOG_HDR_LEN ? -1 : 1;
}

static int
sync_fd(const struct store *st, int fd)
{
	return st->mode == CFG_FSYNC_OFF ? 0 : fdatasync(fd);
}

/*
 * Makes fd a log of generation gen holding the records in st->pending: the
 * records first (after the header's place), synced, then the header,
 * synced; until the header is durable the file is not a log of this
 * generation, so a crash halfway leaves the previous log in charge. 0, or
 * -1 when nothing was made live (headers not touched), -2 when the header
 * write or its sync failed (the file may or may not be live on disk).
 */
static int
log_write_new(struct store *st, int fd, uint64_t gen)
{
	uint8_t hdr[LOG_HDR_LEN];

	if (pwrite(fd, st->pending.p, st->pending.len, LOG_HDR_LEN) !=
	        (ssize_t)st->pending.len ||
	    sync_fd(st, fd) == -1)
		return -1;
	log_header(hdr, gen, LOG_HDR_LEN + st->pending.len);
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
	    sync_fd(st, fd) == -1)
		return -2;
	return 0;
}

/*
 * Opens the log files: the live one is the valid one of the newer
 * generation. A data directory with neither but an old-format wal is
 * converted by store_replay; one with nothing starts log.0 afresh.
 */
static int
log_open(struct store *st, char *err, size_t errlen)
{
	char path[CFG_PATH_MAX + 32];
	int fd[2] = {-1, -1};
	uint64_t gen[2] = {0, 0}, base[2] = {0, 0};
	int valid[2] = {0, 0};

	for (int i = 0; i < 2; i++) {
		log_path(st, i, path, sizeof(path));
		fd[i] = open(path, O_RDWR | O_CLOEXEC);
		if (fd[i] == -1 && errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (fd[i] != -1 &&
		    (valid[i] = log_header_read(fd[i], &gen[i], &base[i])) ==
		        -1) {
			snprintf(err, errlen,
			    "%s: damaged header: refusing to start", path);
			goto fail;
		}
	}
	if (valid[0] && valid[1] && gen[0] == gen[1]) {
		snprintf(err, errlen,
		    "%s/log.0 and log.1 claim the same generation %llu: "
		    "refusing to start",
		    st->dir, (unsigned long long)gen[0]);
		goto fail;
	}
	if (valid[0] || valid[1]) {
		st->live = valid[1] && (!valid[0] || gen[1] > gen[0]) ? 1 : 0;
		st->gen = gen[st->live];
		st->base = base[st->live];
		st->wal_fd = fd[st->live];
		st->spare_fd = fd[1 - st->live];
		st->wal_off = st->durable_off = LOG_NOT_REPLAYED;
		return 0;
	}
	st->spare_fd = fd[1];
	if (fd[0] != -1)
		close(fd[0]);
	snprintf(path, sizeof(path), "%s/wal", st->dir);
	st->wal_fd = open(path, O_RDWR | O_CLOEXEC);
	if (st->wal_fd != -1) { /* the old format: store_replay converts */
		st->live = -1;
		st->wal_off = st->durable_off = LOG_NOT_REPLAYED;
		return 0;
	}
	log_path(st, 0, path, sizeof(path));
	st->wal_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	st->live = 0;
	st->gen = 1;
	st->base = LOG_HDR_LEN;
	if (st->wal_fd == -1 || log_write_new(st, st->wal_fd, 1) != 0 ||
	    (st->mode != CFG_FSYNC_OFF && fsync(st->dir_fd) == -1)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	st->wal_off = st->durable_off = LOG_HDR_LEN;
	return 0;
fail:
	for (int i = 0; i < 2; i++)
		if (fd[i] != -1)
			close(fd[i]);
	return -1;
}

struct store *
store_open(const char *data_dir, uint32_t id, enum cfg_fsync mode, char *err,
    size_t errlen)
{
	struct store *st = calloc(1, sizeof(*st));
	char path[CFG_PATH_MAX + 32];

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->dir_fd = st->lock_fd = st->wal_fd = st->spare_fd = -1;
	st->sy.efd = -1;
	st->mode = mode;
	wbuf_init_dynamic(&st->pending, 1ULL << 30);
	if ((size_t)snprintf(st->dir, sizeof(st->dir), "%s/node-%u", data_dir,
	        id) >= sizeof(st->dir) ||
	    mkdir_p(st->dir, 0700) == -1) {
		snprintf(err, errlen, "cannot create data directory %s: %s",
		    st->dir, strerror(errno));
		goto fail;
	}
	if ((st->dir_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s", st->dir, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/lock", st->dir);
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd == -1 || flock(st->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen,
		    "%s is in use by another process (or not lockable): %s",
		    st->dir, strerror(errno));
		goto fail;
	}
	if (log_open(st, err, errlen) == -1)
		goto fail;
	if (mode == CFG_FSYNC_BATCH && syncer_start(st) == -1) {
		snprintf(err, errlen, "cannot start the WAL sync thread: %s",
		    strerror(errno));
		goto fail;
	}
	prune_snapshots(st);
	return st;
fail:
	store_close(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->pending.len > 0)
		(void)store_sync(st);
	(void)store_sync_poll(st, true);
	syncer_stop(st);
	if (st->wal_fd != -1)
		close(st->wal_fd);
	if (st->spare_fd != -1)
		close(st->spare_fd);
	if (st->lock_fd != -1)
		close(st->lock_fd);
	if (st->dir_fd != -1)
		close(st->dir_fd);
	wbuf_clear(&st->pending);
	free(st);
}

static int
read_all(int fd, struct wbuf *out)
{
	uint8_t buf[65536];
	ssize_t r;

	if (lseek(fd, 0, SEEK_SET) == -1)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		wbuf_put_bytes(out, buf, (size_t)r);
		if (wbuf_failed(out))
			return -1;
	}
	return 0;
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/*
 * The old format (a single file "wal" of  u32 len | u32 crc32c | data):
 * true when some intact record starts after off, so that the bad record at
 * off is damage in the middle of the log, not a tail torn by a crash.
 */
static bool
v1_intact_record_after(const struct wbuf *all, size_t off)
{
	for (size_t pos = off + 1; pos + 8 <= all->len; pos++) {
		uint32_t len = le32(all->p + pos);

		if (len == 0 || len > all->len - pos - 8)
			continue;
		if (crc32c(0, all->p + pos + 8, len) == le32(all->p + pos + 4))
			return true;
	}
	return false;
}

/*
 * Replays an old-format wal and converts it: its records become log.0 of
 * generation 1, then the wal goes. A crash halfway leaves the wal, and the
 * next start converts it again.
 */
static int
replay_v1(struct store *st,
    int (*fn)(void *arg, const uint8_t *rec, size_t len), void *arg, char *err,
    size_t errlen)
{
	struct wbuf all;
	char path[CFG_PATH_MAX + 32];
	size_t off = 0;
	int rc = -1, fd = -1;

	wbuf_init_dynamic(&all, SIZE_MAX / 2);
	if (read_all(st->wal_fd, &all) == -1) {
		snprintf(
		    err, errlen, "%s/wal: read: %s", st->dir, strerror(errno));
		goto out;
	}
	st->compacting = true; /* gen is 0 until the conversion: log.0 is 1 */
	while (off < all.len) {
		size_t left = all.len - off;
		uint32_t len, crc;

		if (left < 8)
			break; /* torn header */
		len = le32(all.p + off);
		crc = le32(all.p + off + 4);
		if (len > STORE_RECORD_BYTES_MAX || len > left - 8 ||
		    crc32c(0, all.p + off + 8, len) != crc) {
			if (!v1_intact_record_after(&all, off))
				break; /* torn tail */
			snprintf(err, errlen,
			    "%s/wal: corrupt record at offset %zu (length %u, "
			    "%zu bytes follow): refusing to start",
			    st->dir, off, len, left);
			goto out;
		}
		if (fn(arg, all.p + off + 8, len) == -1) {
			snprintf(err, errlen,
			    "%s/wal: record at offset %zu rejected by the "
			    "consensus core",
			    st->dir, off);
			goto out;
		}
		if (store_append(st, all.p + off + 8, len) == -1) {
			snprintf(err, errlen, "%s/wal: out of memory", st->dir);
			goto out;
		}
		off += 8 + (size_t)len;
	}
	if (off < all.len)
		log_warnx("%s/wal: torn tail of %zu bytes at offset %zu "
		          "dropped",
		    st->dir, all.len - off, off);
	log_path(st, 0, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || log_write_new(st, fd, 1) != 0 ||
	    (st->mode != CFG_FSYNC_OFF && fsync(st->dir_fd) == -1)) {
		snprintf(err, errlen, "%s: cannot convert the old wal: %s",
		    path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/wal", st->dir);
	if (unlink(path) == -1 ||
	    (st->mode != CFG_FSYNC_OFF && fsync(st->dir_fd) == -1)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	log_info("%s: converted the write-ahead log (wal) to log.0", st->dir);
	close(st->wal_fd);
	st->wal_fd = fd;
	fd = -1;
	st->live = 0;
	st->gen = 1;
	st->wal_off = st->durable_off = st->base =
	    LOG_HDR_LEN + st->pending.len;
	st->stats.bytes = st->pending.len;
	rc = 0;
out:
	st->compacting = false;
	wbuf_reset(&st->pending);
	if (fd != -1)
		close(fd);
	wbuf_clear(&all);
	return rc;
}

/* True when a record header of this generation is at off. */
static bool
header_at(const struct wbuf *all, size_t off, uint32_t gen32)
{
	const uint8_t *h = all->p + off;

	return all->len - off >= REC_HDR_LEN && le32(h + 4) == gen32 &&
	    crc32c(0, h, 20) == le32(h + 20);
}

/*
 * The record at off (of a log of generation gen32): its length when it is
 * whole and belongs to this generation, else 0 (no record is empty: the
 * core writes none). *synced: where the log was durable when it was
 * written.
 */
static uint32_t
record_at(const struct wbuf *all, size_t off, uint32_t gen32, uint64_t *synced)
{
	const uint8_t *h = all->p + off;
	uint32_t len;

	if (!header_at(all, off, gen32))
		return 0;
	len = le32(h);
	if (len == 0 || len > STORE_RECORD_BYTES_MAX ||
	    len > all->len - off - REC_HDR_LEN ||
	    crc32c(0, h + REC_HDR_LEN, len) != le32(h + 16))
		return 0;
	*synced = le64(h + 8);
	return len;
}

int
store_replay(struct store *st,
    int (*fn)(void *arg, const uint8_t *rec, size_t len), void *arg, char *err,
    size_t errlen)
{
	struct wbuf all;
	size_t off = LOG_HDR_LEN;
	uint32_t gen32 = (uint32_t)st->gen;
	bool later = false; /* records of this generation after the end */
	int rc = -1;

	if (st->live == -1)
		return replay_v1(st, fn, arg, err, errlen);
	wbuf_init_dynamic(&all, SIZE_MAX / 2);
	if (read_all(st->wal_fd, &all) == -1 || all.len < LOG_HDR_LEN) {
		snprintf(err, errlen, "%s/log.%d: read: %s", st->dir, st->live,
		    all.len < LOG_HDR_LEN ? "too short" : strerror(errno));
		goto out;
	}
	for (;;) {
		uint64_t synced;
		uint32_t len = record_at(&all, off, gen32, &synced);

		if (len == 0)
			break;
		if (fn(arg, all.p + off + REC_HDR_LEN, len) == -1) {
			snprintf(err, errlen,
			    "%s/log.%d: record at offset %zu rejected by the "
			    "consensus core",
			    st->dir, st->live, off);
			goto out;
		}
		off += REC_HDR_LEN + (size_t)len;
	}
	/*
	 * The log ends at off. After it there may be records of older
	 * generations (the file is reused) and what a crash cut short: the
	 * records of the flush in flight, any of whose pages may or may not
	 * have reached the disk. A whole record of this generation further on
	 * that was written when the log was already durable past off proves
	 * the record at off was durable: it is damage, not a torn write. So
	 * does any whole record after a bad one among those the header came
	 * with (they were durable before the header was written).
	 */
	for (size_t pos = off + 1; pos + REC_HDR_LEN <= all.len; pos++) {
		uint64_t synced;

		if (record_at(&all, pos, gen32, &synced) == 0)
			continue;
		if (synced > off || off < st->base) {
			snprintf(err, errlen,
			    "%s/log.%d: corrupt record at offset %zu (%zu "
			    "bytes follow): refusing to start",
			    st->dir, st->live, off, all.len - off);
			goto out;
		}
		later = true;
	}
	/* Past the end, a reused file holds an older generation's bytes;
	 * they stay, and new records go over them. Whole records of this one
	 * there were cut off by a crash and must not come back when new
	 * records end short of them: the file is cut. */
	if (later || header_at(&all, off, gen32))
		log_warnx("%s/log.%d: torn tail at offset %zu dropped%s",
		    st->dir, st->live, off, later ? " (file truncated)" : "");
	if (later &&
	    (ftruncate(st->wal_fd, (off_t)off) == -1 ||
	        fsync(st->wal_fd) == -1)) {
		snprintf(err, errlen, "%s/log.%d: truncate: %s", st->dir,
		    st->live, strerror(errno));
		goto out;
	}
	st->wal_off = st->durable_off = off;
	st->stats.bytes = off - LOG_HDR_LEN;
	rc = 0;
out:
	wbuf_clear(&all);
	return rc;
}

int
store_append(struct store *st, const uint8_t *rec, size_t len)
{
	size_t at = st->pending.len;
	/* Where the log was durable when this record was written (0 when
	 * that says nothing: compaction, fsync = off); see store_replay. */
	uint64_t synced = st->compacting || st->mode == CFG_FSYNC_OFF ||
	        st->durable_off == LOG_NOT_REPLAYED
	    ? 0
	    : st->durable_off;

	if (len == 0 || len > STORE_RECORD_BYTES_MAX)
		return -1;
	wbuf_put_u32(&st->pending, (uint32_t)len);
	wbuf_put_u32(&st->pending, (uint32_t)(st->gen + st->compacting));
	wbuf_put_u64(&st->pending, synced);
	wbuf_put_u32(&st->pending, crc32c(0, rec, len));
	if (wbuf_failed(&st->pending))
		return -1;
	wbuf_put_u32(&st->pending, crc32c(0, st->pending.p + at, 20));
	wbuf_put_bytes(&st->pending, rec, len);
	if (wbuf_failed(&st->pending))
		return -1;
	st->stats.records++;
	return 0;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int
write_full(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void
note_sync(struct store *st, uint64_t dt)
{
	int b = 0;

	st->stats.syncs++;
	st->stats.sync_ns_total += dt;
	if (dt > st->stats.sync_ns_max)
		st->stats.sync_ns_max = dt;
	while (b < STORE_SYNC_BUCKETS - 1 &&
	    dt > (uint64_t)store_sync_le_us[b] * 1000)
		b++;
	st->stats.sync_hist[b]++;
}

/* Writes the buffered records to the WAL (page cache). 0 or -1. */
static int
write_pending(struct store *st)
{
	if (st->pending.len == 0)
		return 0;
	if (st->wal_off == LOG_NOT_REPLAYED) {
		log_warnx("%s/log.%d: appending before the log was replayed",
		    st->dir, st->live);
		return -1;
	}
	if (pwrite(st->wal_fd, st->pending.p, st->pending.len,
	        (off_t)st->wal_off) != (ssize_t)st->pending.len) {
		log_warn("%s/log.%d: write", st->dir, st->live);
		return -1;
	}
	st->wal_off += st->pending.len;
	st->stats.bytes += st->pending.len;
	wbuf_reset(&st->pending);
	return 0;
}

int
store_sync(struct store *st)
{
	uint64_t t0;

	if (store_sync_poll(st, true) == -1)
		return -1;
	if (st->pending.len == 0)
		return 0;
	if (write_pending(st) == -1)
		return -1;
	if (st->mode == CFG_FSYNC_OFF)
		return 0;
	t0 = now_ns();
	if (fdatasync(st->wal_fd) == -1) {
		log_warn("%s/log.%d: fdatasync", st->dir, st->live);
		return -1;
	}
	note_sync(st, now_ns() - t0);
	st->durable_off = st->wal_off;
	return 0;
}

static void *
syncer_main(void *arg)
{
	struct store *st = arg;
	struct syncer *sy = &st->sy;
	uint64_t one = 1;

	pthread_mutex_lock(&sy->mu);
	for (;;) {
		int fd, r;
		uint64_t t0;

		while (!sy->request && !sy->quit)
			pthread_cond_wait(&sy->cv, &sy->mu);
		if (sy->quit)
			break;
		fd = sy->fd;
		pthread_mutex_unlock(&sy->mu);
		t0 = now_ns();
		r = fdatasync(fd);
		pthread_mutex_lock(&sy->mu);
		sy->result = r == -1 ? errno : 0;
		sy->ns = now_ns() - t0;
		sy->request = false;
		sy->done = true;
		pthread_cond_broadcast(&sy->cv);
		(void)!write(sy->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&sy->mu);
	return NULL;
}

static int
syncer_start(struct store *st)
{
	struct syncer *sy = &st->sy;
	int e;

	sy->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sy->efd == -1)
		return -1;
	pthread_mutex_init(&sy->mu, NULL);
	pthread_cond_init(&sy->cv, NULL);
	if ((e = pthread_create(&sy->thread, NULL, syncer_main, st)) != 0) {
		pthread_mutex_destroy(&sy->mu);
		pthread_cond_destroy(&sy->cv);
		errno = e;
		return -1;
	}
	sy->started = true;
	return 0;
}

static void
syncer_stop(struct store *st)
{
	struct syncer *sy = &st->sy;

	if (sy->started) {
		pthread_mutex_lock(&sy->mu);
		sy->quit = true;
		pthread_cond_broadcast(&sy->cv);
		pthread_mutex_unlock(&sy->mu);
		pthread_join(sy->thread, NULL);
		pthread_mutex_destroy(&sy->mu);
		pthread_cond_destroy(&sy->cv);
		sy->started = false;
	}
	if (sy->efd != -1)
		close(sy->efd);
	sy->efd = -1;
}

int
store_sync_begin(struct store *st)
{
	struct syncer *sy = &st->sy;

	if (sy->inflight)
		return 1;
	if (!sy->started) /* fsync = always or off: no thread */
		return store_sync(st) == -1 ? -1 : 0;
	if (st->pending.len == 0)
		return 0;
	if (write_pending(st) == -1)
		return -1;
	st->flush_end = st->wal_off;
	pthread_mutex_lock(&sy->mu);
	sy->fd = st->wal_fd;
	sy->request = true;
	sy->done = false;
	pthread_cond_signal(&sy->cv);
	pthread_mutex_unlock(&sy->mu);
	sy->inflight = true;
	return 1;
}

int
store_sync_fd(const struct store *st)
{
	return st->sy.efd;
}

int
store_sync_poll(struct store *st, bool wait)
{
	struct syncer *sy = &st->sy;
	uint64_t v;
	int result;

	if (!sy->inflight) {
		if (sy->efd != -1)
			(void)!read(sy->efd, &v, sizeof(v));
		return 0;
	}
	pthread_mutex_lock(&sy->mu);
	while (wait && !sy->done)
		pthread_cond_wait(&sy->cv, &sy->mu);
	if (!sy->done) {
		pthread_mutex_unlock(&sy->mu);
		return 1;
	}
	sy->done = false;
	result = sy->result;
	note_sync(st, sy->ns);
	pthread_mutex_unlock(&sy->mu);
	(void)!read(sy->efd, &v, sizeof(v)); /* may be empty: fine */
	sy->inflight = false;
	if (result != 0) {
		errno = result;
		log_warn("%s/log.%d: fdatasync", st->dir, st->live);
		return -1;
	}
	st->durable_off = st->flush_end;
	return 0;
}

const uint32_t store_sync_le_us[STORE_SYNC_BUCKETS - 1] = {50, 100, 250, 500,
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

int
store_rewrite(struct store *st, int (*gen)(void *arg), void *arg)
{
	char path[CFG_PATH_MAX + 32];
	int fd = st->spare_fd, rc, target = 1 - st->live;
	bool created = false;
	size_t len;

	if (st->live == -1) /* the old format is converted by replay */
		return -1;
	if (store_sync(st) == -1) /* waits for a background flush first */
		return -1;
	st->compacting = true;
	rc = gen(arg);
	st->compacting = false;
	if (rc == -1) {
		wbuf_reset(&st->pending);
		return -1;
	}
	log_path(st, target, path, sizeof(path));
	if (fd == -1) {
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		created = fd != -1;
	}
	/* The spare is overwritten in place: its blocks are allocated and
	 * the file does not grow until the log outgrows it, so the flushes
	 * that follow write data, not file system metadata. */
	rc = fd == -1 ? -1 : log_write_new(st, fd, st->gen + 1);
	if (rc == 0 && created && st->mode != CFG_FSYNC_OFF &&
	    fsync(st->dir_fd) == -1)
		rc = -2;
	if (created)
		st->spare_fd = fd;
	len = st->pending.len;
	wbuf_reset(&st->pending);
	if (rc != 0) {
		log_warn("%s: compaction", path);
		return rc;
	}
	st->spare_fd = st->wal_fd;
	st->wal_fd = fd;
	st->live = target;
	st->gen++;
	st->wal_off = st->durable_off = st->base = LOG_HDR_LEN + (uint64_t)len;
	st->stats.bytes = len;
	st->stats.compactions++;
	return 0;
}

static void
snap_path(const struct store *st, uint64_t seq, char *buf, size_t len)
{
	snprintf(
	    buf, len, "%s/snapshot-%020llu", st->dir, (unsigned long long)seq);
}

int
store_snapshot_write(
    struct store *st, uint64_t seq, const uint8_t *data, size_t len)
{
	char tmp[CFG_PATH_MAX + 32], dst[CFG_PATH_MAX + 48];
	uint8_t hdr[16];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/snapshot.tmp", st->dir);
	snap_path(st, seq, dst, sizeof(dst));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		log_warn("%s", tmp);
		return -1;
	}
	for (int i = 0; i < 8; i++)
		hdr[i] = (uint8_t)(seq >> (8 * i));
	for (int i = 0; i < 4; i++)
		hdr[8 + i] = (uint8_t)(crc32c(0, data, len) >> (8 * i));
	memcpy(hdr + 12, "SNP1", 4);
	if (write_full(fd, hdr, sizeof(hdr)) == -1 ||
	    write_full(fd, data, len) == -1 ||
	    (st->mode != CFG_FSYNC_OFF && fsync(fd) == -1)) {
		log_warn("%s", tmp);
		close(fd);
		return -1;
	}
	close(fd);
	if (rename(tmp, dst) == -1 ||
	    (st->mode != CFG_FSYNC_OFF && fsync(st->dir_fd) == -1)) {
		log_warn("%s", dst);
		return -1;
	}
	/* Keep this one and the one before: the log may still name it. */
	if (st->snap_prev != 0 && st->snap_prev != seq) {
		char old[CFG_PATH_MAX + 48];

		snap_path(st, st->snap_prev, old, sizeof(old));
		unlink(old);
	}
	st->snap_prev = st->snap_last;
	st->snap_last = seq;
	return 0;
}

int
store_snapshot_read(
    struct store *st, uint64_t seq, struct wbuf *out, char *err, size_t errlen)
{
	char path[CFG_PATH_MAX + 48];
	int fd, rc = -1;

	snap_path(st, seq, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	wbuf_reset(out);
	if (read_all(fd, out) == -1 || out->len < 16 ||
	    memcmp(out->p + 12, "SNP1", 4) != 0 ||
	    crc32c(0, out->p + 16, out->len - 16) != le32(out->p + 8) ||
	    ((uint64_t)le32(out->p) | (uint64_t)le32(out->p + 4) << 32) !=
	        seq) {
		snprintf(
		    err, errlen, "%s: unreadable or corrupt snapshot", path);
		goto out;
	}
	memmove(out->p, out->p + 16, out->len - 16);
	out->len -= 16;
	st->snap_last = seq;
	rc = 0;
out:
	close(fd);
	return rc;
}

const char *
store_dir(const struct store *st)
{
	return st->dir;
}

void
store_get_stats(const struct store *st, struct store_stats *out)
{
	*out = st->stats;
}
