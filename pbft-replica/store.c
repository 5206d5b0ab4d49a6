/*
 * store.c - write-ahead log and snapshots in a replica's data directory;
 * see store.h for the formats and the guarantees.
 */
#include "store.h"

#include <stdarg.h>
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

#include "failstop.h"
#include "log.h"
#include "vfs.h"
#include "store_int.h"

const char log_magic[8] = {'P', 'B', 'F', 'T', 'L', 'O', 'G', '2'};

void
store_fail(struct store *st, const char *fmt, ...)
{
	char what[160];
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(st->last_err, sizeof(st->last_err), "%s: %s", what,
	    strerror(e != 0 ? e : EIO));
	st->failed = true;
	log_warnx("%s/%s", st->dir, st->last_err);
	errno = e;
}

const char *
store_last_error(const struct store *st)
{
	return st->last_err[0] != '\0' ? st->last_err : "no error recorded";
}

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
		if (vfs_mkdir(tmp, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (vfs_mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * The data directory may already exist (made by an operator, a package, an
 * earlier run): it must be ours and writable by nobody else, or someone
 * else could plant or swap the files a replica trusts.
 */
static int
dir_trusted(int fd, const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (vfs_fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: stat: %s", path, strerror(errno));
		return -1;
	}
	if (sb.st_uid != geteuid() || (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen,
		    "%s: owned by uid %u with mode %04o: a data directory "
		    "must belong to this user (uid %u) and be writable by "
		    "nobody else (chmod go-w)",
		    path, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777),
		    (unsigned)geteuid());
		return -1;
	}
	return 0;
}

struct prune {
	struct store *st;
	uint64_t below;
	unsigned removed;
};

static void
prune_one(void *arg, const char *name)
{
	struct prune *pr = arg;
	unsigned long long seq;
	char end, path[CFG_PATH_MAX + 48];

	if (sscanf(name, "snapshot-%20llu%c", &seq, &end) != 1 ||
	    seq >= pr->below)
		return;
	snap_path(pr->st, seq, path, sizeof(path));
	if (vfs_unlink(path) == 0)
		pr->removed++;
}

void
store_snapshots_prune(struct store *st, uint64_t below)
{
	struct prune pr = {st, below, 0};

	if (vfs_list(st->dir, prune_one, &pr) == -1)
		return;
	if (pr.removed > 0)
		log_debug("%s: removed %u snapshots below checkpoint %llu",
		    st->dir, pr.removed, (unsigned long long)below);
}

static uint64_t
le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

void
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
 * A log file's header: 1 with *gen and *base set; 0 when the file holds no
 * log yet: empty, or not begun (a spare whose first compaction never
 * finished: zeroes where the header goes); -1 when it is damaged (the magic
 * is there, the check fails) or cannot be read (err set: the file, the
 * offset, the error). A read error is never "no log": a replica that took
 * it for one would start afresh and forget the votes it sent.
 */
static int
log_header_read(int fd, const char *path, uint64_t *gen, uint64_t *base,
    char *err, size_t errlen)
{
	uint8_t hdr[LOG_HDR_LEN];
	struct stat sb;
	ssize_t r;

	if (vfs_fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: stat: %s", path, strerror(errno));
		return -1;
	}
	if (sb.st_size == 0)
		return 0;
	r = vfs_pread(fd, hdr, sizeof(hdr), 0);
	if (r == -1 || (r < (ssize_t)sizeof(hdr) && sb.st_size > (off_t)r)) {
		snprintf(err, errlen, "%s: read at 0: %s", path,
		    r == -1 ? strerror(errno) : "short read");
		return -1;
	}
	if (r < (ssize_t)sizeof(hdr) ||
	    memcmp(hdr, log_magic, sizeof(log_magic)) != 0) {
		static const uint8_t zero[sizeof(log_magic)];

		if (memcmp(hdr, zero,
		        (size_t)r < sizeof(zero) ? (size_t)r : sizeof(zero)))
			goto damaged; /* neither a log nor a spare not begun */
		return 0;
	}
	if (crc32c(0, hdr, 24) != le32(hdr + 24))
		goto damaged;
	*gen = le64(hdr + 8);
	*base = le64(hdr + 16);
	if (*gen != 0 && *base >= LOG_HDR_LEN)
		return 1;
damaged:
	snprintf(
	    err, errlen, "%s: damaged header at 0: refusing to start", path);
	return -1;
}

int
sync_fd(const struct store *st, int fd)
{
	return st->mode == CFG_FSYNC_OFF ? 0 : vfs_fdatasync(fd);
}

/*
 * Makes fd a log of generation gen whose records end at base: the records
 * p[0..len) first (at offset at), synced, then the header, synced; until the
 * header is durable the file is not a log of this generation, so a crash
 * halfway leaves the previous log in charge. 0; -1 when the records' write
 * failed (headers not touched: the file can be written again later); -2
 * when a sync failed (the file is never synced again in this process: the
 * kernel may have dropped its pages) or the header's write did (the file
 * may or may not be live on disk). *what names the step.
 */
int
log_write_new(const struct store *st, int fd, uint64_t gen, const uint8_t *p,
    size_t len, uint64_t at, const char **what)
{
	uint8_t hdr[LOG_HDR_LEN];

	*what = "compaction: write";
	if (vfs_pwrite(fd, p, len, (off_t)at) != (ssize_t)len)
		return -1;
	*what = "compaction: fdatasync";
	if (sync_fd(st, fd) == -1)
		return -2;
	log_header(hdr, gen, at + len);
	*what = "compaction: header write";
	if (vfs_pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		return -2;
	*what = "compaction: header fdatasync";
	if (sync_fd(st, fd) == -1)
		return -2;
	return 0;
}

/* log.0 and log.1 hold no more than a header's worth (of zeroes, as
 * log_header_read found): 0, or -1 with err set. */
static int
log_files_empty(const struct store *st, char *err, size_t errlen)
{
	char path[CFG_PATH_MAX + 32];
	struct stat sb;

	for (int i = 0; i < 2; i++) {
		log_path(st, i, path, sizeof(path));
		if (vfs_stat(path, &sb) == 0 && sb.st_size > LOG_HDR_LEN) {
			snprintf(err, errlen,
			    "%s: %lld bytes but no log header, and no other "
			    "log: refusing to start",
			    path, (long long)sb.st_size);
			return -1;
		}
	}
	return 0;
}

/*
 * No log: log.0 and log.1 are missing, empty or never begun. log.0 begins
 * generation 1. Not truncated: what is there is empty or zeroes.
 */
static int
log_create(struct store *st, char *err, size_t errlen)
{
	char path[CFG_PATH_MAX + 32];
	const char *what;

	log_path(st, 0, path, sizeof(path));
	st->wal_fd = vfs_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	st->live = 0;
	st->gen = 1;
	st->base = LOG_HDR_LEN;
	if (st->wal_fd == -1 ||
	    log_write_new(st, st->wal_fd, 1, NULL, 0, LOG_HDR_LEN, &what) !=
	        0 ||
	    (st->mode != CFG_FSYNC_OFF && vfs_fsync(st->dir_fd) == -1)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	st->wal_off = st->durable_off = LOG_HDR_LEN;
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
		fd[i] = vfs_open(path, O_RDWR | O_CLOEXEC, 0);
		if (fd[i] == -1 && errno != ENOENT) {
			snprintf(
			    err, errlen, "%s: open: %s", path, strerror(errno));
			failstop_note_unreadable();
			goto fail;
		}
		if (fd[i] != -1 &&
		    (valid[i] = log_header_read(
		         fd[i], path, &gen[i], &base[i], err, errlen)) == -1) {
			failstop_note_unreadable();
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
		vfs_close(fd[0]);
	snprintf(path, sizeof(path), "%s/wal", st->dir);
	st->wal_fd = vfs_open(path, O_RDWR | O_CLOEXEC, 0);
	if (st->wal_fd != -1) { /* the old format: store_replay converts */
		st->live = -1;
		st->wal_off = st->durable_off = LOG_NOT_REPLAYED;
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s: open: %s", path, strerror(errno));
		failstop_note_unreadable();
		return -1;
	}
	/* Neither log has a header and there is no old wal (whose
	 * conversion, cut short, leaves a log.0 without one): new only if
	 * neither holds records either; a spare with records and no log
	 * beside it is a log that went. */
	if (log_files_empty(st, err, errlen) == -1) {
		failstop_note_unreadable();
		return -1;
	}
	return log_create(st, err, errlen);
fail:
	for (int i = 0; i < 2; i++)
		if (fd[i] != -1)
			vfs_close(fd[i]);
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
	st->efd = -1;
	st->mode = mode;
	wbuf_init_dynamic(&st->pending, 1ULL << 30);
	wbuf_init_dynamic(&st->cpt_recs, 1ULL << 30);
	wbuf_init_dynamic(&st->cpt_tail, 1ULL << 30);
	wbuf_init_dynamic(&st->cpt_held, 1ULL << 30);
	if ((size_t)snprintf(st->dir, sizeof(st->dir), "%s/node-%u", data_dir,
	        id) >= sizeof(st->dir) ||
	    mkdir_p(st->dir, 0700) == -1) {
		snprintf(err, errlen, "cannot create data directory %s: %s",
		    st->dir, strerror(errno));
		goto fail;
	}
	if ((st->dir_fd = vfs_open(st->dir,
	         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "%s: %s", st->dir, strerror(errno));
		goto fail;
	}
	if (dir_trusted(st->dir_fd, st->dir, err, errlen) == -1)
		goto fail;
	snprintf(path, sizeof(path), "%s/lock", st->dir);
	st->lock_fd = vfs_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd == -1 ||
	    vfs_flock(st->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen,
		    "%s is in use by another process (or not lockable): %s",
		    st->dir, strerror(errno));
		goto fail;
	}
	if (log_open(st, err, errlen) == -1)
		goto fail;
	if (mode == CFG_FSYNC_BATCH &&
	    ((!store_inline() &&
	         (st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) ||
	        worker_start(st, &st->sy) == -1 ||
	        worker_start(st, &st->bg) == -1)) {
		snprintf(err, errlen, "cannot start the log's threads: %s",
		    strerror(errno));
		goto fail;
	}
	return st;
fail:
	store_close(st);
	return NULL;
}

/* Stops the workers, closes the files, frees st. */
static void
store_free(struct store *st)
{
	worker_stop(&st->sy);
	worker_stop(&st->bg);
	if (st->efd != -1)
		close(st->efd);
	if (st->wal_fd != -1)
		vfs_close(st->wal_fd);
	if (st->spare_fd != -1)
		vfs_close(st->spare_fd);
	if (st->lock_fd != -1)
		vfs_close(st->lock_fd);
	if (st->dir_fd != -1)
		vfs_close(st->dir_fd);
	wbuf_clear(&st->pending);
	wbuf_clear(&st->cpt_recs);
	wbuf_clear(&st->cpt_tail);
	wbuf_clear(&st->cpt_held);
	free(st);
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	/* A snapshot in the works comes first: the records that name it
	 * wait for it. After an I/O error nothing more is written or synced
	 * (the jobs in flight are only waited for). */
	(void)store_bg_poll(st, true);
	if (st->pending.len > 0 && !st->failed)
		(void)store_sync(st);
	(void)store_sync_poll(st, true);
	store_free(st);
}

void
store_abandon(struct store *st)
{
	if (st == NULL)
		return;
	st->sy.request = st->bg.request = false;
	store_free(st);
}

/*
 * Reads the whole file into out. 0; -1 with err set ("PATH: read at OFF:
 * ERROR") when a read fails or the file ends before the size fstat gave.
 */
int
read_all(int fd, const char *path, struct wbuf *out, char *err, size_t errlen)
{
	uint8_t buf[65536];
	struct stat sb;
	uint64_t off = 0;
	ssize_t r;

	if (vfs_fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: stat: %s", path, strerror(errno));
		return -1;
	}
	while ((r = vfs_pread(fd, buf, sizeof(buf), (off_t)off)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s: read at %llu: %s", path,
			    (unsigned long long)off, strerror(errno));
			return -1;
		}
		wbuf_put_bytes(out, buf, (size_t)r);
		if (wbuf_failed(out)) {
			snprintf(err, errlen, "%s: %llu bytes: out of memory",
			    path, (unsigned long long)sb.st_size);
			return -1;
		}
		off += (uint64_t)r;
	}
	if (off < (uint64_t)sb.st_size) {
		snprintf(err, errlen,
		    "%s: read at %llu: end of file before its size (%llu)",
		    path, (unsigned long long)off,
		    (unsigned long long)sb.st_size);
		return -1;
	}
	return 0;
}

uint32_t
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
 * The records of an old-format wal, in order, to fn and into the pending
 * log; *off ends at the first byte not taken (a torn tail starts there).
 * A corrupt record with an intact one after it is damage, not a tear.
 */
static int
v1_records(struct store *st, const struct wbuf *all,
    int (*fn)(void *arg, const uint8_t *rec, size_t len), void *arg,
    size_t *off, char *err, size_t errlen)
{
	while (*off < all->len) {
		size_t left = all->len - *off;
		uint32_t len, crc;

		if (left < 8)
			break; /* torn header */
		len = le32(all->p + *off);
		crc = le32(all->p + *off + 4);
		if (len > STORE_RECORD_BYTES_MAX || len > left - 8 ||
		    crc32c(0, all->p + *off + 8, len) != crc) {
			if (!v1_intact_record_after(all, *off))
				break; /* torn tail */
			snprintf(err, errlen,
			    "%s/wal: corrupt record at offset %zu (length %u, "
			    "%zu bytes follow): refusing to start",
			    st->dir, *off, len, left);
			return -1;
		}
		if (fn(arg, all->p + *off + 8, len) == -1) {
			snprintf(err, errlen,
			    "%s/wal: record at offset %zu rejected by the "
			    "consensus core",
			    st->dir, *off);
			return -1;
		}
		if (store_append(st, all->p + *off + 8, len) == -1) {
			snprintf(err, errlen, "%s/wal: out of memory", st->dir);
			return -1;
		}
		*off += 8 + (size_t)len;
	}
	return 0;
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
	const char *what;

	wbuf_init_dynamic(&all, SIZE_MAX / 2);
	snprintf(path, sizeof(path), "%s/wal", st->dir);
	if (read_all(st->wal_fd, path, &all, err, errlen) == -1) {
		failstop_note_unreadable();
		goto out;
	}
	st->compacting = true; /* gen is 0 until the conversion: log.0 is 1 */
	if (v1_records(st, &all, fn, arg, &off, err, errlen) == -1)
		goto out;
	if (off < all.len)
		log_warnx("%s/wal: torn tail of %zu bytes at offset %zu "
		          "dropped",
		    st->dir, all.len - off, off);
	log_path(st, 0, path, sizeof(path));
	fd = vfs_open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 ||
	    log_write_new(st, fd, 1, st->pending.p, st->pending.len,
	        LOG_HDR_LEN, &what) != 0 ||
	    (st->mode != CFG_FSYNC_OFF && vfs_fsync(st->dir_fd) == -1)) {
		snprintf(err, errlen, "%s: cannot convert the old wal: %s",
		    path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/wal", st->dir);
	if (vfs_unlink(path) == -1 ||
	    (st->mode != CFG_FSYNC_OFF && vfs_fsync(st->dir_fd) == -1)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	log_info("%s: converted the write-ahead log (wal) to log.0", st->dir);
	vfs_close(st->wal_fd);
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
		vfs_close(fd);
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
	char path[CFG_PATH_MAX + 32];
	size_t off = LOG_HDR_LEN;
	uint32_t gen32 = (uint32_t)st->gen;
	bool later = false; /* records of this generation after the end */
	int rc = -1;

	if (st->live == -1)
		return replay_v1(st, fn, arg, err, errlen);
	wbuf_init_dynamic(&all, SIZE_MAX / 2);
	log_path(st, st->live, path, sizeof(path));
	if (read_all(st->wal_fd, path, &all, err, errlen) == -1) {
		failstop_note_unreadable();
		goto out;
	}
	if (all.len < LOG_HDR_LEN) { /* its header was read at open */
		snprintf(err, errlen, "%s: %zu bytes: shorter than its header",
		    path, all.len);
		failstop_note_unreadable();
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
	 * is a bad one among those the header came with (they were durable
	 * before the header was written), whatever follows.
	 */
	if (off < st->base)
		goto corrupt;
	for (size_t pos = off + 1; pos + REC_HDR_LEN <= all.len; pos++) {
		uint64_t synced;

		if (record_at(&all, pos, gen32, &synced) == 0)
			continue;
		if (synced > off)
			goto corrupt;
		later = true;
	}
	/* Past the end, a reused file holds an older generation's bytes;
	 * they stay, and new records go over them. Whole records of this one
	 * there were cut off by a crash and must not come back when new
	 * records end short of them: the file is cut. */
	if (later || header_at(&all, off, gen32))
		log_warnx("%s/log.%d: torn tail at offset %zu dropped%s",
		    st->dir, st->live, off, later ? " (file truncated)" : "");
	/* Cut by the first write (write_pending), not here: a start that is
	 * refused later (an unreadable snapshot or journal) leaves every
	 * byte as it found it. */
	st->cut_at = later ? off : 0;
	st->wal_off = st->durable_off = off;
	st->stats.bytes = off - LOG_HDR_LEN;
	rc = 0;
	goto out;
corrupt:
	snprintf(err, errlen,
	    "%s/log.%d: corrupt record at offset %zu (%zu bytes follow): "
	    "refusing to start",
	    st->dir, st->live, off, all.len - off);
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

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int
write_full(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = vfs_write(fd, p, len);

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

void
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
int
write_pending(struct store *st)
{
	if (st->pending.len == 0)
		return 0;
	if (st->wal_off == LOG_NOT_REPLAYED) {
		log_warnx("%s/log.%d: appending before the log was replayed",
		    st->dir, st->live);
		return -1;
	}
	if (st->cut_at != 0) {
		if (vfs_ftruncate(st->wal_fd, (off_t)st->cut_at) == -1 ||
		    vfs_fsync(st->wal_fd) == -1) {
			store_fail(st, "log.%d: truncate at %llu", st->live,
			    (unsigned long long)st->cut_at);
			return -1;
		}
		st->cut_at = 0;
	}
	if (vfs_pwrite(st->wal_fd, st->pending.p, st->pending.len,
	        (off_t)st->wal_off) != (ssize_t)st->pending.len) {
		store_fail(st, "log.%d: write at %llu", st->live,
		    (unsigned long long)st->wal_off);
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

	if (st->failed || store_sync_poll(st, true) == -1)
		return -1;
	if (st->pending.len == 0)
		return 0;
	if (write_pending(st) == -1)
		return -1;
	if (st->mode == CFG_FSYNC_OFF)
		return 0;
	t0 = now_ns();
	if (vfs_fdatasync(st->wal_fd) == -1) {
		store_fail(st, "log.%d: fdatasync", st->live);
		return -1;
	}
	note_sync(st, now_ns() - t0);
	st->durable_off = st->wal_off;
	return 0;
}
