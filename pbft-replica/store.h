/*
 * store.h - a replica's durable state in its data directory
 * (data_dir/node-ID): the write-ahead log of the core's PERSIST records and
 * snapshots of the service at stable checkpoints.
 *
 * The write-ahead log lives in two files, log.0 and log.1, each
 *
 *   header:  "PBFTLOG2" | u64 generation | u64 base | u32 crc32c(first
 *            24) | 4 zero     (base: where the records written with the
 *            header end)
 *   records: u32 len | u32 generation | u64 synced | u32 crc32c(data)
 *            | u32 crc32c(first 20 bytes) | data
 *
 * The live file is the one whose header is valid with the newer generation.
 * Compaction writes the new log into the other file (the spare) over what it
 * held, the records first and the header last, each synced, and the files
 * swap roles: the log is written into blocks the file system has already
 * allocated, so a flush writes data and no metadata. A record is the log's
 * end when it is not whole or not of the file's generation; older records
 * beyond it are what a reused file holds. synced says how far the log was
 * durable when the record was written: a bad record followed by a whole one
 * that was written after the bad one was durable (or any bad one before
 * base) is damage, and the replica
 * refuses to start (silently dropping acknowledged state is never an
 * option); otherwise it is a tail a crash cut short, dropped with a log line.
 * A data directory with the older single-file format (wal: u32 len | u32
 * crc32c(data) | data) is converted on replay.
 *
 * Snapshots are written to a temporary file, fsynced, renamed into place and
 * the directory fsynced, so a crash leaves either the old or the new one.
 * The directory is locked (flock) so two processes cannot share it.
 *
 * With fsync = batch the disk work runs on two threads of the store: one
 * flushes the log (and ends compactions), the other writes snapshots and
 * the compacted log into the spare, so the loop never waits for the disk
 * and a checkpoint does not delay the log's flushes.
 */
#ifndef PBFT_STORE_H
#define PBFT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "wbuf.h"

#define STORE_RECORD_BYTES_MAX (PBFT_FRAME_BYTES_MAX + 64)

struct store;

/* fdatasync latency histogram: bucket i counts syncs of at most
 * store_sync_le_us[i] microseconds; the last bucket has no bound. */
#define STORE_SYNC_BUCKETS 14
extern const uint32_t store_sync_le_us[STORE_SYNC_BUCKETS - 1];

struct store_stats {
	uint64_t records, bytes, syncs, compactions;
	uint64_t sync_ns_total, sync_ns_max;
	uint64_t compactions_abandoned; /* failed: the old log kept */
	uint64_t switch_ns_max; /* longest compaction switch (output held) */
	uint64_t snapshots, snapshot_ns_max; /* written, longest (thread) */
	uint64_t sync_hist[STORE_SYNC_BUCKETS];
};

/*
 * Opens (creating with mode 0700) dir/node-ID, locks it and opens the WAL.
 * Returns NULL with err set on failure (e.g. already locked, a directory
 * others can write to, a log header that cannot be read or is damaged:
 * only missing, empty or never-begun log files make a new log).
 */
struct store *store_open(const char *data_dir, uint32_t id, enum cfg_fsync mode,
    char *err, size_t errlen);
void store_close(struct store *st); /* safe on NULL */
/*
 * For a simulator, after the disk under the store crashed (the process
 * died): frees st without any more disk work. With inline workers the jobs
 * not yet run are dropped; with threads a job handed over still runs.
 * Safe on NULL.
 */
void store_abandon(struct store *st);

/*
 * Calls fn for every intact WAL record in order; required before appending
 * to a log that holds records. A torn tail is cut before the first write
 * (so a start refused later leaves the file as it was). Returns 0, or -1
 * with err set when a read fails ("log.0: read at OFF: ERROR"), a record
 * in the middle is corrupt or fn returns -1.
 */
int store_replay(struct store *st,
    int (*fn)(void *arg, const uint8_t *rec, size_t len), void *arg, char *err,
    size_t errlen);

/*
 * Process-wide, before any store_open: with on, a store of fsync = batch
 * starts no threads and opens no eventfd (store_sync_fd returns -1); a job
 * handed to a worker (a flush, a snapshot, a compaction's steps) waits
 * until the caller runs it with store_work, or until store_sync_poll or
 * store_bg_poll is called with wait, which run it. For a simulator that
 * chooses when the disk's work happens. Off (the default): threads.
 */
void store_inline_workers(bool on);
/* A job handed to a worker has not run yet (inline workers only). */
bool store_work_pending(const struct store *st);
/*
 * Runs one pending job on the caller's thread: the log worker's or the
 * background worker's (pick % 2: 0 the log's, 1 the background's) when
 * both are pending. 1 if a job ran, 0 if none was pending. Afterwards
 * store_sync_poll / store_bg_poll without wait reap it, as after a thread
 * ended it.
 */
int store_work(struct store *st, uint32_t pick);

/* Buffers one record; store_sync makes everything buffered durable. */
int store_append(struct store *st, const uint8_t *rec, size_t len);
/*
 * Writes buffered records and syncs them per the fsync mode, after waiting
 * for a background flush in flight. 0 or -1.
 */
int store_sync(struct store *st);

/*
 * Group commit off the loop: writes the buffered records and hands their
 * fdatasync to the store's sync thread. Returns 1 if a flush is now in
 * flight (store_sync_fd becomes readable when it ends; at most one at a
 * time, so 1 also means "one was already in flight, nothing new started"),
 * 0 if the records need no flush (none buffered, or a mode other than
 * batch: written, and synced as store_sync would), -1 on a write error.
 */
int store_sync_begin(struct store *st);
/* An eventfd that becomes readable when a background flush ends (-1 unless
 * fsync = batch). */
int store_sync_fd(const struct store *st);
/*
 * Reaps the flush in flight: 1 if it has not ended (only without wait), 0 if
 * it ended well or none was in flight, -1 if fdatasync failed. With wait,
 * blocks until it ends. Without wait it first empties the eventfd, so the
 * caller then polls store_bg_poll too (which does not).
 */
int store_sync_poll(struct store *st, bool wait);

/*
 * Compaction off the loop (fsync = batch), in two steps. store_compact_begin
 * has gen append (through store_append) the compacted records, which stand
 * for everything appended so far, and writes them into the spare on the
 * background thread while the log goes on. Once store_compact_ready, the
 * next store_sync_begin ends it in place of a flush: the records appended
 * since are copied after the compacted ones, then the header makes the
 * spare live (store_sync_poll reaps it like a flush; -1 only when the header
 * was written and failed). Snapshots below keep are removed then. Returns 1
 * when begun, 0 when it cannot begin now (the background thread is busy, a
 * compaction is in the works, or no threads), -1 when gen failed.
 */
int store_compact_begin(
    struct store *st, uint64_t keep, int (*gen)(void *arg), void *arg);
bool store_compact_ready(const struct store *st);

/*
 * A snapshot off the loop (fsync = batch): on the background thread,
 * fdatasync(file_fd) (the service's own file; -1: none) and the snapshot
 * of seq written as store_snapshot_write does. data must stay unchanged
 * until the job is reaped. 1 when begun, 0 when the thread is busy (or
 * there is none).
 */
int store_snapshot_begin(struct store *st, uint64_t seq, const uint8_t *data,
    size_t len, int file_fd);
bool store_bg_busy(const struct store *st);
/* A snapshot of seq or later is durable. */
bool store_snapshot_durable(const struct store *st, uint64_t seq);
/* The snapshot of seq, read back at a start, is on disk: durable. */
void store_snapshot_on_disk(struct store *st, uint64_t seq);
/*
 * Reaps the background thread's job: 1 if it has not ended (only without
 * wait), 0 if it ended (a compaction that failed is abandoned with a log
 * line) or there was none, -1 if a snapshot could not be written.
 */
int store_bg_poll(struct store *st, bool wait);

/*
 * Compaction: replaces the whole log with the records gen appends (through
 * store_append), written into the spare file and made live by its header,
 * so a crash leaves the old log or the new one. 0; -1 when the old log is
 * still the live one; -2 when the new header's write or sync failed, so
 * that which log is live on disk is unknown (stop).
 */
int store_rewrite(struct store *st, int (*gen)(void *arg), void *arg);

/*
 * Writes the snapshot of checkpoint seq durably (snapshot-<seq>), after any
 * background job ends. Older snapshots stay: the log may still name one.
 */
int store_snapshot_write(
    struct store *st, uint64_t seq, const uint8_t *data, size_t len);
/* Removes the snapshots of checkpoints below below (the log names none). */
void store_snapshots_prune(struct store *st, uint64_t below);
/*
 * Reads the snapshot of checkpoint seq into out (a dynamic wbuf).
 * Returns 0, 1 when there is none, -1 on error (err set).
 */
int store_snapshot_read(
    struct store *st, uint64_t seq, struct wbuf *out, char *err, size_t errlen);

/*
 * Replicas caught serving a state that failed its checks (a bit each), kept
 * in the node's directory across restarts so that a state transfer after a
 * restart does not go back to them first. read: a missing file is none;
 * 0, or -1 with err set (unreadable or malformed). write: atomic (rename);
 * 0 or -1.
 */
int store_liars_read(
    const struct store *st, uint64_t *mask, char *err, size_t errlen);
int store_liars_write(const struct store *st, uint64_t mask);

const char *store_dir(const struct store *st);
/* The last I/O error the store met, "FILE: what: ERROR" (FILE in the data
 * directory), for the line a replica stops with. */
const char *store_last_error(const struct store *st);
void store_get_stats(const struct store *st, struct store_stats *out);

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
