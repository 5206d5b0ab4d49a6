/*
 * store_bg.c - the store's background thread: group-commit flushes and
 * checkpoint snapshots off the event loop, and log compaction into the
 * spare file; see store.h for the guarantees.
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

/* On a thread: uses only the job and the store's fixed fields. */
void
job_run(const struct store *st, struct job *j)
{
	uint64_t t0 = now_ns();
	int rc = 0;

	errno = 0;
	j->what = NULL;
	switch (j->kind) {
	case JOB_FLUSH:
		if (vfs_fdatasync(j->fd) == -1) {
			rc = -1;
			j->what = "fdatasync";
		}
		break;
	case JOB_SNAPSHOT:
		if (j->fd != -1 && vfs_fdatasync(j->fd) == -1) {
			rc = -1;
			j->what = "the service's file: fdatasync";
		} else {
			rc = snapshot_file_write(
			    st, j->seq, j->data, j->len, &j->what);
		}
		break;
	case JOB_SPARE:
		if (vfs_pwrite(j->fd, j->data, j->len, (off_t)j->at) !=
		    (ssize_t)j->len) {
			rc = -1;
			j->what = "compaction: write";
		} else if (sync_fd(st, j->fd) == -1) {
			rc = -2; /* never synced again: stop */
			j->what = "compaction: fdatasync";
		}
		break;
	case JOB_SWITCH:
		rc = log_write_new(
		    st, j->fd, j->gen, j->data, j->len, j->at, &j->what);
		if (rc == 0 && j->dir_sync && st->mode != CFG_FSYNC_OFF &&
		    vfs_fsync(st->dir_fd) == -1) {
			rc = -2;
			j->what = "compaction: directory fsync";
		}
		break;
	}
	j->err = rc == 0 ? 0 : errno != 0 ? errno : EIO;
	j->rc = rc;
	j->ns = now_ns() - t0;
}

/* An inline worker's job, run on the caller's thread. */
static void
worker_run_inline(struct worker *w)
{
	job_run(w->st, &w->job);
	w->request = false;
	w->done = true;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->request && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->request) /* a job handed over is run even so */
			break;
		pthread_mutex_unlock(&w->mu);
		job_run(w->st, &w->job);
		pthread_mutex_lock(&w->mu);
		w->request = false;
		w->done = true;
		pthread_cond_broadcast(&w->cv);
		(void)!write(w->st->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Set by store_inline_workers: workers without threads. */
static bool inline_workers;

void
store_inline_workers(bool on)
{
	inline_workers = on;
}

bool
store_inline(void)
{
	return inline_workers;
}

int
worker_start(struct store *st, struct worker *w)
{
	int e;

	w->st = st;
	if (inline_workers) {
		w->inl = true;
		w->started = true;
		return 0;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if ((e = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		errno = e;
		return -1;
	}
	w->started = true;
	return 0;
}

void
worker_stop(struct worker *w)
{
	if (!w->started)
		return;
	if (w->inl) { /* a job handed over is run even so */
		if (w->request)
			worker_run_inline(w);
		w->started = false;
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	w->started = false;
}

void
worker_hand(struct worker *w, const struct job *j)
{
	if (w->inl) {
		w->job = *j;
		w->request = true;
		w->done = false;
		w->busy = true;
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->job = *j;
	w->request = true;
	w->done = false;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	w->busy = true;
}

/* The job handed to w, once it has ended: true with *out set; false while
 * it runs (never with wait) or when there is none. */
bool
worker_reap(struct worker *w, bool wait, struct job *out)
{
	if (!w->busy)
		return false;
	if (w->inl) {
		if (wait && w->request)
			worker_run_inline(w);
		if (!w->done)
			return false;
		w->done = false;
		*out = w->job;
		w->busy = false;
		return true;
	}
	pthread_mutex_lock(&w->mu);
	while (wait && !w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	if (!w->done) {
		pthread_mutex_unlock(&w->mu);
		return false;
	}
	w->done = false;
	*out = w->job;
	pthread_mutex_unlock(&w->mu);
	w->busy = false;
	return true;
}

bool
store_work_pending(const struct store *st)
{
	return (st->sy.inl && st->sy.request) || (st->bg.inl && st->bg.request);
}

int
store_work(struct store *st, uint32_t pick)
{
	bool sy = st->sy.inl && st->sy.request;
	bool bg = st->bg.inl && st->bg.request;

	if (!sy && !bg)
		return 0;
	worker_run_inline(sy && (!bg || pick % 2 == 0) ? &st->sy : &st->bg);
	return 1;
}

static void
drain_events(const struct store *st)
{
	uint64_t v;

	if (st->efd != -1)
		(void)!read(st->efd, &v, sizeof(v));
}

static void
wbuf_swap(struct wbuf *a, struct wbuf *b)
{
	struct wbuf t = *a;

	*a = *b;
	*b = t;
}

/*
 * Rewrites the generation and synced fields of the records in p[0..len)
 * (and their header checks): records that move into another log.
 */
static void
restamp(uint8_t *p, size_t len, uint32_t gen, uint64_t synced)
{
	struct wbuf wb;

	wbuf_init_fixed(&wb, p, len);
	wb.len = len;
	for (size_t off = 0; off + REC_HDR_LEN <= len;
	     off += REC_HDR_LEN + (size_t)le32(p + off)) {
		wbuf_patch_u32(&wb, off + 4, gen);
		wbuf_patch_u32(&wb, off + 8, (uint32_t)synced);
		wbuf_patch_u32(&wb, off + 12, (uint32_t)(synced >> 32));
		wbuf_patch_u32(&wb, off + 20, crc32c(0, p + off, 20));
	}
}

/* ---- compaction -------------------------------------------------------- */

/* The spare, opened (created: *created set) if there is none yet. */
int
spare_open(struct store *st, bool *created)
{
	char path[CFG_PATH_MAX + 32];

	*created = false;
	if (st->spare_fd != -1)
		return 0;
	log_path(st, 1 - st->live, path, sizeof(path));
	st->spare_fd =
	    vfs_open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (st->spare_fd == -1) {
		store_fail(st, "log.%d: compaction: open", 1 - st->live);
		return -1;
	}
	*created = true;
	return 0;
}

/* The spare, whose records now end at end, has become the live log. */
void
spare_made_live(struct store *st, uint64_t end)
{
	int fd = st->spare_fd;

	st->spare_fd = st->wal_fd;
	st->wal_fd = fd;
	st->live = 1 - st->live;
	/* A torn tail not yet cut stays in the old file: it holds another
	 * generation than the one the spare is next written with. */
	st->cut_at = 0;
	st->gen++;
	st->wal_off = st->durable_off = st->base = end;
	st->stats.bytes = end - LOG_HDR_LEN;
	st->stats.compactions++;
}

int
store_compact_begin(
    struct store *st, uint64_t keep, int (*gen)(void *arg), void *arg)
{
	struct job j = {.kind = JOB_SPARE, .at = LOG_HDR_LEN};
	int rc;

	if (!st->bg.started || st->bg.busy || st->cpt != CPT_NONE ||
	    st->live == -1 || st->wal_off == LOG_NOT_REPLAYED)
		return 0;
	if (spare_open(st, &st->cpt_created) == -1)
		return -1;
	/* The compacted records stand for everything appended so far. */
	st->cpt_pos = st->wal_off + st->pending.len;
	wbuf_swap(&st->pending, &st->cpt_recs);
	wbuf_reset(&st->pending);
	st->compacting = true;
	rc = gen(arg);
	st->compacting = false;
	wbuf_swap(&st->pending, &st->cpt_recs);
	if (rc == -1 || wbuf_failed(&st->cpt_recs)) {
		wbuf_reset(&st->cpt_recs);
		return -1;
	}
	j.fd = st->spare_fd;
	j.data = st->cpt_recs.p;
	j.len = st->cpt_recs.len;
	st->cpt = CPT_SPARE;
	st->cpt_keep = keep;
	worker_hand(&st->bg, &j);
	return 1;
}

bool
store_compact_ready(const struct store *st)
{
	return st->cpt == CPT_READY;
}

void
compact_abandon(struct store *st, const char *why)
{
	st->stats.compactions_abandoned++;
	log_warnx("%s/log.%d: compaction abandoned (%s); the old log is "
	          "kept and compaction is retried at the next checkpoint",
	    st->dir, st->live, why);
	st->cpt = CPT_NONE;
	wbuf_reset(&st->cpt_recs);
	wbuf_reset(&st->cpt_tail);
}

/*
 * The compaction's last step, run in place of a flush: what the log holds
 * after the compacted records' position and what is buffered go after them
 * in the spare, then its header. The buffered records are set aside (they
 * go to the old log should this fail). 1, or 0 when abandoned.
 */
static int
switch_begin(struct store *st)
{
	struct wbuf *t = &st->cpt_tail;
	struct job j = {.kind = JOB_SWITCH,
	    .fd = st->spare_fd,
	    .gen = st->gen + 1,
	    .at = LOG_HDR_LEN + st->cpt_recs.len,
	    .dir_sync = st->cpt_created};
	size_t skip = 0;

	wbuf_reset(t);
	if (st->cpt_pos < st->wal_off) {
		size_t n = (size_t)(st->wal_off - st->cpt_pos);

		if (wbuf_reserve(t, n) == -1 ||
		    vfs_pread(st->wal_fd, t->p, n, (off_t)st->cpt_pos) !=
		        (ssize_t)n) {
			compact_abandon(st, "cannot read the log back");
			return 0;
		}
		t->len = n;
	} else {
		skip = (size_t)(st->cpt_pos - st->wal_off);
	}
	wbuf_put_bytes(t, st->pending.p + skip, st->pending.len - skip);
	if (wbuf_failed(t)) {
		compact_abandon(st, "out of memory");
		return 0;
	}
	restamp(t->p, t->len, (uint32_t)(st->gen + 1), 0);
	wbuf_reset(&st->cpt_held);
	wbuf_swap(&st->pending, &st->cpt_held);
	j.data = t->p;
	j.len = t->len;
	st->cpt = CPT_SWITCH;
	worker_hand(&st->sy, &j);
	return 1;
}

static int
switch_end(struct store *st, const struct job *j)
{
	st->cpt = CPT_NONE;
	wbuf_reset(&st->cpt_recs);
	wbuf_reset(&st->cpt_tail);
	if (j->rc == -2) {
		errno = j->err;
		store_fail(st, "log.%d: %s", 1 - st->live, j->what);
		return -1;
	}
	if (j->rc == -1) {
		/* The old log stays: the records set aside go there now,
		 * before the output that waits for them, and then the ones
		 * buffered meanwhile. */
		int rc;

		errno = j->err;
		st->stats.compactions_abandoned++;
		log_warn("%s/log.%d: %s; the old log is kept and compaction "
		         "is retried at the next checkpoint",
		    st->dir, 1 - st->live, j->what);
		wbuf_swap(&st->pending, &st->cpt_held);
		rc = store_sync(st);
		wbuf_swap(&st->pending, &st->cpt_held);
		wbuf_reset(&st->cpt_held);
		return rc;
	}
	wbuf_reset(&st->cpt_held);
	spare_made_live(st, j->at + j->len);
	/* Buffered meanwhile for the old log: they go into the new one. */
	restamp(st->pending.p, st->pending.len, (uint32_t)st->gen, st->base);
	if (j->ns > st->stats.switch_ns_max)
		st->stats.switch_ns_max = j->ns;
	store_snapshots_prune(st, st->cpt_keep);
	return 0;
}

/* ---- flushes ----------------------------------------------------------- */

int
store_sync_begin(struct store *st)
{
	struct job j = {.kind = JOB_FLUSH};

	if (st->failed)
		return -1;
	if (st->sy.busy)
		return 1;
	if (!st->sy.started) /* fsync = always or off: no thread */
		return store_sync(st) == -1 ? -1 : 0;
	if (st->cpt == CPT_READY && switch_begin(st) == 1)
		return 1;
	if (st->pending.len == 0)
		return 0;
	if (write_pending(st) == -1)
		return -1;
	st->flush_end = st->wal_off;
	j.fd = st->wal_fd;
	worker_hand(&st->sy, &j);
	return 1;
}

int
store_sync_fd(const struct store *st)
{
	return st->efd;
}

int
store_sync_poll(struct store *st, bool wait)
{
	struct job j;

	if (!wait)
		drain_events(st);
	if (!st->sy.busy)
		return 0;
	if (!worker_reap(&st->sy, wait, &j))
		return 1;
	if (j.kind == JOB_SWITCH)
		return switch_end(st, &j);
	note_sync(st, j.ns);
	if (j.rc != 0) {
		errno = j.err;
		store_fail(st, "log.%d: fdatasync", st->live);
		return -1;
	}
	st->durable_off = st->flush_end;
	return 0;
}
