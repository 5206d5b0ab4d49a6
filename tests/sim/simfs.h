/*
 * simfs.h - an in-memory file system for the simulator, behind common/vfs.h
 * (vfs_set(simfs_ops())), so that the real store and service run on a disk
 * whose crashes the simulator chooses. One process-wide tree; single
 * threaded (use it with store_inline_workers(true)); deterministic: no
 * clocks, no randomness but the caller's rnd. Its fds count up from
 * SIMFS_FD_BASE, clear of the process's real ones.
 *
 * The model. Every file has a durable image and a current one: writes and
 * truncations change the current image (and are remembered in order);
 * fsync or fdatasync of the file makes the current image durable. A name
 * (create, rename, unlink) becomes durable when its directory is fsynced,
 * as on Linux file systems: a file created, written and fsynced whose
 * directory never was is gone after a crash; a snapshot renamed over the
 * old one and not yet made durable by the directory's fsync leaves the old
 * one. Directories themselves (mkdir) are durable at once. Nothing is ever
 * short of space, and nothing is slow (simfs_slow is not provided).
 *
 * simfs_crash(dir, rnd): what the files under dir hold reverts to the
 * durable images and their names to the durable names; with rnd nonzero a
 * prefix, chosen by rnd, of the bytes written (in write order) to each file
 * since its last sync survives: a torn write (a truncation counts as one
 * byte of that stream). Every fd opened under dir becomes dead: every
 * operation on it but close fails with EIO; its lock is released.
 */
#ifndef PBFT_SIMFS_H
#define PBFT_SIMFS_H

#include <stdbool.h>
#include <stdint.h>

#include "vfs.h"

#define SIMFS_FD_BASE 1000

const struct vfs_ops *simfs_ops(void);
/* Forgets every file and fd: an empty tree (only "/"). */
void simfs_reset(void);
void simfs_crash(const char *dir, uint64_t rnd);
/* Flips every bit of the byte at off of path's durable image (and of its
 * current one): media damage. 0, or -1 when there is no such byte. */
int simfs_corrupt(const char *path, uint64_t off);
/*
 * What a crash of dir would leave, now, without torn writes: dst (which
 * must not exist; its parent must) is made holding every file and
 * directory durably named under dir whose name begins with prefix (NULL:
 * all), with the durable images, durable themselves. For checks that
 * read a replica's disk as a restart would, without touching it. 0, or
 * -1 (errno set).
 */
int simfs_copy_durable(const char *dir, const char *dst, const char *prefix);
/* Forgets dir and everything under it, durable or not (no fd may be open
 * under it). */
void simfs_remove(const char *dir);
/* A hash of the whole tree (names, current and durable images), for
 * checking that a seed replays exactly. */
uint64_t simfs_digest(void);

#endif
