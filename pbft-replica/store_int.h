/*
 * store_int.h - a replica's store, shared by its files: store.c (opening,
 * the log and its replay, appends and syncs), store_bg.c (the background
 * thread, compaction, flushes) and store_snap.c (snapshots, the liars
 * file). Nothing outside them includes this.
 */
#ifndef PBFT_STORE_INT_H
#define PBFT_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "store.h"
#include "wbuf.h"

/*
 * Disk work off the loop: two threads, each running one job at a time
 * that the loop hands over and later reaps (a job's fields are written by
 * the loop before it is handed over and by the thread before it is done).
 * The loop writes log records itself (write(2) into the page cache is
 * quick); the log thread runs their fdatasync and the last step of a
 * compaction, the background thread snapshots and the first step of a
 * compaction, so that neither delays the log's flushes. Both signal one
 * eventfd when a job ends. With store_inline_workers there are neither
 * threads nor the eventfd: a job handed over waits (request set) until
 * store_work, or a poll that waits, runs it on the caller's thread.
 */
enum job_kind {
	JOB_FLUSH, /* fdatasync(fd) */
	JOB_SNAPSHOT, /* fdatasync(fd) when fd != -1, then snapshot seq */
	JOB_SPARE, /* recs into the spare fd at at, synced */
	JOB_SWITCH, /* the same, then the header (gen, base), synced */
};

struct job {
	enum job_kind kind;
	int fd;
	uint64_t seq; /* JOB_SNAPSHOT */
	const uint8_t *data;
	size_t len;
	uint64_t at, gen; /* JOB_SPARE, JOB_SWITCH */
	bool dir_sync; /* JOB_SWITCH: the spare file is new */
	/* results */
	int rc; /* 0; -1 failed; -2 JOB_SWITCH failed at or after the header */
	int err; /* errno of the failure */
	const char *what; /* the step that failed */
	uint64_t ns;
};

struct worker {
	bool started;
	bool inl; /* no thread: the caller runs the job (store_work) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool busy; /* loop side: a job was handed over, not yet reaped */
	/* shared, under mu */
	bool request, done, quit;
	struct job job;
	struct store *st;
};

/*
 * The log lives in two files, log.0 and log.1 (see store.h). The live one
 * has the newer generation; the other is the spare that the next compaction
 * overwrites. Offsets are file offsets.
 */
#define LOG_HDR_LEN 32
#define REC_HDR_LEN 24
#define LOG_NOT_REPLAYED UINT64_MAX
extern const char log_magic[8];

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
	struct store_stats stats;
	int efd; /* eventfd: readable when a job of either thread ended */
	struct worker sy; /* the log's flushes, a compaction's switch */
	struct worker bg; /* snapshots, a compaction's spare */
	/* Compaction off the loop (store_compact_begin). */
	enum { CPT_NONE, CPT_SPARE, CPT_READY, CPT_SWITCH } cpt;
	struct wbuf cpt_recs; /* the compacted records */
	struct wbuf cpt_tail; /* records after them, copied from the log */
	struct wbuf cpt_held; /* pending when the switch began */
	uint64_t cpt_pos; /* the log's end (with pending) they stand for */
	uint64_t cpt_keep; /* snapshots below it go once the switch ends */
	bool cpt_created; /* the spare file was created for it */
	uint64_t snap_durable; /* newest snapshot written */
	uint64_t cut_at; /* a torn tail to cut before the first write */
	char last_err[256]; /* the last I/O error: "FILE: what: strerror" */
	bool failed; /* an I/O error: nothing is written or synced again */
};

/* store.c */
void store_fail(struct store *st, const char *fmt, ...) PBFT_PRINTF(2, 3);
void log_path(const struct store *st, int i, char *buf, size_t len);
int sync_fd(const struct store *st, int fd);
int log_write_new(const struct store *st, int fd, uint64_t gen,
    const uint8_t *p, size_t len, uint64_t at, const char **what);
uint32_t le32(const uint8_t *p);
uint64_t now_ns(void);
void note_sync(struct store *st, uint64_t dt);
int write_pending(struct store *st);
int read_all(
    int fd, const char *path, struct wbuf *out, char *err, size_t errlen);
int write_full(int fd, const uint8_t *p, size_t len);

/* store_bg.c */
bool store_inline(void);
int worker_start(struct store *st, struct worker *w);
void worker_stop(struct worker *w);
void job_run(const struct store *st, struct job *j);
void worker_hand(struct worker *w, const struct job *j);
bool worker_reap(struct worker *w, bool wait, struct job *out);
int spare_open(struct store *st, bool *created);
void spare_made_live(struct store *st, uint64_t end);
void compact_abandon(struct store *st, const char *why);

/* store_snap.c */
void snap_path(const struct store *st, uint64_t seq, char *buf, size_t len);
int snapshot_file_write(const struct store *st, uint64_t seq,
    const uint8_t *data, size_t len, const char **what);

#endif
