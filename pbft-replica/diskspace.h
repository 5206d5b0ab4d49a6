/*
 * diskspace.h - the free space of a replica's data directory, against the
 * reserve it keeps (min_free in cluster.ini).
 *
 * A replica whose disk fills stops at the first write that fails (fail
 * stop: see failstop.h); one that sees the disk filling first stops taking
 * new client requests while it still has room for what is in flight: the
 * log records and snapshots of batches others propose, state served to
 * peers, checkpoints and their compaction. It resumes by itself when space
 * returns. The check is a statvfs once a second (on the replica's tick),
 * never per request. Not here: what a replica does when low (replica.c).
 */
#ifndef PBFT_DISKSPACE_H
#define PBFT_DISKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct diskspace {
	char dir[CFG_PATH_MAX];
	uint64_t reserve; /* bytes; 0: no reserve */
	uint64_t free_bytes; /* available to us at the last check */
	bool low; /* below the reserve at the last check */
	uint64_t refused; /* client requests not taken while low */
};

void diskspace_init(struct diskspace *d, const char *dir, uint64_t reserve);
/* Measures again; logs when the disk becomes low and when it recovers. */
void diskspace_check(struct diskspace *d);
/* "ok", or "disk low: N MiB free, reserve M MiB". */
void diskspace_describe(const struct diskspace *d, char *buf, size_t len);

#endif
