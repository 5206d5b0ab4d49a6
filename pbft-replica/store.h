/*
 * store.h - a replica's durable state in its data directory
 * (data_dir/node-ID): the write-ahead log of the core's PERSIST records and
 * snapshots of the service at stable checkpoints.
 *
 * WAL records are  u32 len | u32 crc32c(data) | data.  A torn tail (the last
 * record cut short or failing its CRC with nothing valid after it) is
 * truncated with a log line; a bad record followed by more data stops the
 * replica: silently dropping acknowledged state is never an option.
 *
 * Snapshots are written to a temporary file, fsynced, renamed into place and
 * the directory fsynced, so a crash leaves either the old or the new one.
 * The directory is locked (flock) so two processes cannot share it.
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
	uint64_t sync_hist[STORE_SYNC_BUCKETS];
};

/*
 * Opens (creating with mode 0700) dir/node-ID, locks it and opens the WAL.
 * Returns NULL with err set on failure (e.g. already locked).
 */
struct store *store_open(const char *data_dir, uint32_t id, enum cfg_fsync mode,
    char *err, size_t errlen);
void store_close(struct store *st); /* safe on NULL */

/*
 * Calls fn for every intact WAL record in order. A torn tail is truncated.
 * Returns 0, or -1 with err set when a record in the middle is corrupt or
 * fn returns -1.
 */
int store_replay(struct store *st,
    int (*fn)(void *arg, const uint8_t *rec, size_t len), void *arg, char *err,
    size_t errlen);

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
 * blocks until it ends.
 */
int store_sync_poll(struct store *st, bool wait);

/*
 * Compaction: replaces the whole log with the records gen appends (through
 * store_append). The new log is written aside, synced and renamed into
 * place, so a crash leaves the old log or the new one. 0 or -1.
 */
int store_rewrite(struct store *st, int (*gen)(void *arg), void *arg);

/*
 * Writes the snapshot of checkpoint seq durably (snapshot-<seq>); the one
 * before it is kept too, because the log may not name the new one yet.
 */
int store_snapshot_write(
    struct store *st, uint64_t seq, const uint8_t *data, size_t len);
/*
 * Reads the snapshot of checkpoint seq into out (a dynamic wbuf).
 * Returns 0, 1 when there is none, -1 on error (err set).
 */
int store_snapshot_read(
    struct store *st, uint64_t seq, struct wbuf *out, char *err, size_t errlen);

const char *store_dir(const struct store *st);
void store_get_stats(const struct store *st, struct store_stats *out);

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
