/*
 * store_snap.c - checkpoint snapshots in the data directory (written off
 * the loop, read back whole and checked at start) and the file of peers
 * caught lying in a state transfer; see store.h for the formats.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "failstop.h"
#include "log.h"
#include "vfs.h"
#include "store_int.h"

int
store_snapshot_begin(struct store *st, uint64_t seq, const uint8_t *data,
    size_t len, int file_fd)
{
	struct job j = {.kind = JOB_SNAPSHOT,
	    .fd = file_fd,
	    .seq = seq,
	    .data = data,
	    .len = len};

	if (!st->bg.started || st->bg.busy)
		return 0;
	worker_hand(&st->bg, &j);
	return 1;
}

bool
store_bg_busy(const struct store *st)
{
	return st->bg.busy;
}

bool
store_snapshot_durable(const struct store *st, uint64_t seq)
{
	return st->snap_durable >= seq;
}

void
store_snapshot_on_disk(struct store *st, uint64_t seq)
{
	if (seq > st->snap_durable)
		st->snap_durable = seq;
}

/* The name of the file fd (the service's own, which the store syncs but
 * did not open), relative to the data directory when it is in it; for
 * the line a replica stops with. */
static void
file_name(const struct store *st, int fd, char *buf, size_t len)
{
	char proc[64], path[CFG_PATH_MAX];
	size_t dl = strlen(st->dir);
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = vfs_is_posix() ? readlink(proc, path, sizeof(path) - 1) : -1;
	if (n <= 0) {
		snprintf(buf, len, "the service's file");
		return;
	}
	path[n] = '\0';
	snprintf(buf, len, "%s",
	    strncmp(path, st->dir, dl) == 0 && path[dl] == '/' ? path + dl + 1
	                                                       : path);
}

int
store_bg_poll(struct store *st, bool wait)
{
	struct job j;

	/* No draining here: store_sync_poll did, before either was looked
	 * at, so that no end is missed. */
	if (!worker_reap(&st->bg, wait, &j))
		return st->bg.busy ? 1 : 0;
	errno = j.err;
	if (j.kind == JOB_SNAPSHOT) {
		if (j.rc != 0 && j.what != NULL &&
		    strncmp(j.what, "the service's file", 18) == 0) {
			char name[CFG_PATH_MAX];

			file_name(st, j.fd, name, sizeof(name));
			store_fail(st, "%s: fdatasync (checkpoint %llu)", name,
			    (unsigned long long)j.seq);
			return -1;
		}
		if (j.rc != 0) {
			store_fail(st, "%s (snapshot %llu)", j.what,
			    (unsigned long long)j.seq);
			return -1;
		}
		if (j.seq > st->snap_durable)
			st->snap_durable = j.seq;
		st->stats.snapshots++;
		if (j.ns > st->stats.snapshot_ns_max)
			st->stats.snapshot_ns_max = j.ns;
		return 0;
	}
	if (j.rc == -2) { /* a failed sync: never again */
		store_fail(st, "log.%d: %s", 1 - st->live, j.what);
		return -1;
	}
	if (j.rc != 0) {
		log_warn("%s/log.%d: %s", st->dir, 1 - st->live, j.what);
		compact_abandon(st, "cannot write the spare file");
		return 0;
	}
	st->cpt = CPT_READY;
	return 0;
}

const uint32_t store_sync_le_us[STORE_SYNC_BUCKETS - 1] = {50, 100, 250, 500,
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

int
store_rewrite(struct store *st, int (*gen)(void *arg), void *arg)
{
	struct job j = {.kind = JOB_SWITCH, .at = LOG_HDR_LEN};
	int rc;

	if (st->live == -1) /* the old format is converted by replay */
		return -1;
	/* A compaction off the loop in the works is overtaken. */
	if (store_bg_poll(st, true) == -1 || store_sync(st) == -1)
		return -1;
	st->cpt = CPT_NONE;
	wbuf_reset(&st->cpt_recs);
	st->compacting = true;
	rc = gen(arg);
	st->compacting = false;
	if (rc == -1 || spare_open(st, &j.dir_sync) == -1) {
		wbuf_reset(&st->pending);
		return -1;
	}
	/* The spare is overwritten in place: its blocks are allocated and
	 * the file does not grow until the log outgrows it, so the flushes
	 * that follow write data, not file system metadata. The same steps
	 * as a switch off the loop, run here. */
	j.fd = st->spare_fd;
	j.gen = st->gen + 1;
	j.data = st->pending.p;
	j.len = st->pending.len;
	job_run(st, &j);
	wbuf_reset(&st->pending);
	if (j.rc != 0) {
		st->stats.compactions_abandoned++;
		errno = j.err;
		store_fail(st, "log.%d: %s", 1 - st->live, j.what);
		return j.rc;
	}
	spare_made_live(st, j.at + j.len);
	return 0;
}

void
snap_path(const struct store *st, uint64_t seq, char *buf, size_t len)
{
	snprintf(
	    buf, len, "%s/snapshot-%020llu", st->dir, (unsigned long long)seq);
}

/*
 * A snapshot file: u64 seq | u32 crc32c(image) | magic | image. The image
 * is the replica's (pbft-replica/replica_int.h, struct snap): with "SNP2"
 * u32 table length | client table | u32 replies length | reply table |
 * service image; "SNP1" files, written before the reply table was part of
 * the state, have no reply table and are read as SNP2 images with an empty
 * one (no replies), so an existing data directory still starts.
 */
#define SNAP_MAGIC "SNP2"
#define SNAP_MAGIC_V1 "SNP1"

/* An SNP1 image as an SNP2 one: an empty reply table after the client
 * table. 0, or -1 when the image is too short to be one. */
static int
snap_image_v1(struct wbuf *img)
{
	size_t n;

	if (img->len < 4 || (n = le32(img->p)) > img->len - 4 ||
	    wbuf_reserve(img, 4) == -1)
		return -1;
	memmove(img->p + 8 + n, img->p + 4 + n, img->len - 4 - n);
	memset(img->p + 4 + n, 0, 4);
	img->len += 4;
	return 0;
}

/* On any thread: uses only the store's fixed fields. */
int
snapshot_file_write(const struct store *st, uint64_t seq, const uint8_t *data,
    size_t len, const char **what)
{
	char tmp[CFG_PATH_MAX + 32], dst[CFG_PATH_MAX + 48];
	uint8_t hdr[16];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/snapshot.tmp", st->dir);
	snap_path(st, seq, dst, sizeof(dst));
	fd = vfs_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		*what = "snapshot.tmp: open";
		return -1;
	}
	*what = "snapshot.tmp: write";
	for (int i = 0; i < 8; i++)
		hdr[i] = (uint8_t)(seq >> (8 * i));
	for (int i = 0; i < 4; i++)
		hdr[8 + i] = (uint8_t)(crc32c(0, data, len) >> (8 * i));
	memcpy(hdr + 12, SNAP_MAGIC, 4);
	if (write_full(fd, hdr, sizeof(hdr)) == -1 ||
	    write_full(fd, data, len) == -1 ||
	    (*what = "snapshot.tmp: fsync",
	        st->mode != CFG_FSYNC_OFF && vfs_fsync(fd) == -1)) {
		int e = errno;

		vfs_close(fd);
		errno = e;
		return -1;
	}
	vfs_close(fd);
	if (vfs_rename(tmp, dst) == -1 ||
	    (st->mode != CFG_FSYNC_OFF && vfs_fsync(st->dir_fd) == -1)) {
		*what = "snapshot: rename";
		return -1;
	}
	return 0;
}

int
store_snapshot_write(
    struct store *st, uint64_t seq, const uint8_t *data, size_t len)
{
	const char *what = NULL;

	if (store_bg_poll(st, true) == -1)
		return -1;
	if (snapshot_file_write(st, seq, data, len, &what) == -1) {
		store_fail(
		    st, "%s (snapshot %llu)", what, (unsigned long long)seq);
		return -1;
	}
	if (seq > st->snap_durable)
		st->snap_durable = seq;
	st->stats.snapshots++;
	return 0;
}

int
store_snapshot_read(
    struct store *st, uint64_t seq, struct wbuf *out, char *err, size_t errlen)
{
	char path[CFG_PATH_MAX + 48];
	int fd, rc = -1;
	bool v1;

	snap_path(st, seq, path, sizeof(path));
	if ((fd = vfs_open(path, O_RDONLY | O_CLOEXEC, 0)) == -1) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: open: %s", path, strerror(errno));
		failstop_note_unreadable();
		return -1;
	}
	wbuf_reset(out);
	if (read_all(fd, path, out, err, errlen) == -1) {
		failstop_note_unreadable();
		goto out;
	}
	if (out->len < 16 ||
	    (memcmp(out->p + 12, SNAP_MAGIC, 4) != 0 &&
	        memcmp(out->p + 12, SNAP_MAGIC_V1, 4) != 0) ||
	    crc32c(0, out->p + 16, out->len - 16) != le32(out->p + 8) ||
	    ((uint64_t)le32(out->p) | (uint64_t)le32(out->p + 4) << 32) !=
	        seq) {
		snprintf(err, errlen,
		    "%s: corrupt snapshot (%zu bytes: header or checksum "
		    "wrong): refusing to start",
		    path, out->len);
		failstop_note_unreadable();
		goto out;
	}
	v1 = memcmp(out->p + 12, SNAP_MAGIC_V1, 4) == 0;
	memmove(out->p, out->p + 16, out->len - 16);
	out->len -= 16;
	if (v1 && snap_image_v1(out) == -1) {
		snprintf(err, errlen,
		    "%s: corrupt snapshot (older format, %zu bytes): refusing "
		    "to start",
		    path, out->len);
		failstop_note_unreadable();
		goto out;
	}
	rc = 0;
out:
	vfs_close(fd);
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

/* ---- replicas caught lying in a state transfer ----------------------- */

/* One line in the node's directory: "liars" and their ids, e.g.
 * "liars 0 5\n"; written whole to a temporary file and renamed. */
#define LIARS_FILE "xfer-liars"

int
store_liars_read(
    const struct store *st, uint64_t *mask, char *err, size_t errlen)
{
	char path[CFG_PATH_MAX + 16], buf[512], *p, *end;
	ssize_t n;
	int fd;

	*mask = 0;
	snprintf(path, sizeof(path), "%s/" LIARS_FILE, st->dir);
	if ((fd = vfs_open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0)) == -1) {
		if (errno == ENOENT)
			return 0; /* none caught */
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = vfs_read(fd, buf, sizeof(buf) - 1);
	vfs_close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	if (strncmp(buf, "liars", 5) != 0 || strchr(buf, '\n') == NULL)
		goto bad;
	for (p = buf + 5; *p == ' ';) {
		unsigned long id = strtoul(p + 1, &end, 10);

		if (end == p + 1 || id >= 64)
			goto bad;
		*mask |= 1ULL << id;
		p = end;
	}
	if (*p == '\n' && p[1] == '\0')
		return 0;
bad:
	snprintf(err, errlen, "%s: malformed (remove it to forget)", path);
	return -1;
}

int
store_liars_write(const struct store *st, uint64_t mask)
{
	char tmp[CFG_PATH_MAX + 16], dst[CFG_PATH_MAX + 16], buf[512];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "liars");
	int fd;

	for (int i = 0; i < 64; i++)
		if (mask & 1ULL << i)
			len += (size_t)snprintf(
			    buf + len, sizeof(buf) - len, " %d", i);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\n");
	snprintf(tmp, sizeof(tmp), "%s/" LIARS_FILE ".tmp", st->dir);
	snprintf(dst, sizeof(dst), "%s/" LIARS_FILE, st->dir);
	fd = vfs_open(
	    tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1)
		return -1;
	if (write_full(fd, (const uint8_t *)buf, len) == -1 ||
	    (st->mode != CFG_FSYNC_OFF && vfs_fsync(fd) == -1)) {
		vfs_close(fd);
		return -1;
	}
	vfs_close(fd);
	if (vfs_rename(tmp, dst) == -1 ||
	    (st->mode != CFG_FSYNC_OFF && vfs_fsync(st->dir_fd) == -1))
		return -1;
	return 0;
}
