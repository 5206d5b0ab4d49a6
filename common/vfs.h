/*
 * vfs.h - the file operations of a replica's durable state (the store's
 * log and snapshots, the service's journal, the data directory's free
 * space), behind one table so that a simulator can put them on a disk of
 * its own (tests/sim/simfs.c). Production uses POSIX: each vfs_ call is
 * one indirect call to the system call of the same name, nothing more.
 *
 * Deliberately not here: key files, configuration, sockets, the eventfd
 * the store's threads signal: they are no part of the durable state.
 * The table is process-wide; vfs_set is called before any file is opened
 * and never while a store's threads run.
 */
#ifndef PBFT_VFS_H
#define PBFT_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

/* Each as its system call: the result, or -1 with errno set. */
struct vfs_ops {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*read)(int fd, void *buf, size_t len);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	int (*fsync)(int fd);
	int (*fdatasync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*fstat)(int fd, struct stat *sb);
	int (*stat)(const char *path, struct stat *sb);
	int (*rename)(const char *from, const char *to);
	int (*unlink)(const char *path);
	int (*mkdir)(const char *path, mode_t mode);
	int (*flock)(int fd, int op);
	int (*sync_file_range)(int fd, off_t off, off_t len, unsigned flags);
	int (*statvfs)(const char *path, struct statvfs *sv);
	/* Calls fn with the name of every entry of the directory dir but "."
	 * and "..", in no particular order; fn may unlink the entry it is
	 * given. 0, or -1 with errno set when dir cannot be read. */
	int (*list)(const char *dir, void (*fn)(void *arg, const char *name),
	    void *arg);
};

/* The operations in force (never NULL). */
extern const struct vfs_ops *vfs;

/* ops: a table that outlives its use; NULL: POSIX (the default). */
void vfs_set(const struct vfs_ops *ops);
/* The POSIX table is in force: fds are the kernel's (/proc names them). */
bool vfs_is_posix(void);

static inline int
vfs_open(const char *path, int flags, mode_t mode)
{
	return vfs->open(path, flags, mode);
}
static inline int
vfs_close(int fd)
{
	return vfs->close(fd);
}
static inline ssize_t
vfs_read(int fd, void *buf, size_t len)
{
	return vfs->read(fd, buf, len);
}
static inline ssize_t
vfs_write(int fd, const void *buf, size_t len)
{
	return vfs->write(fd, buf, len);
}
static inline ssize_t
vfs_pread(int fd, void *buf, size_t len, off_t off)
{
	return vfs->pread(fd, buf, len, off);
}
static inline ssize_t
vfs_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return vfs->pwrite(fd, buf, len, off);
}
static inline int
vfs_fsync(int fd)
{
	return vfs->fsync(fd);
}
static inline int
vfs_fdatasync(int fd)
{
	return vfs->fdatasync(fd);
}
static inline int
vfs_ftruncate(int fd, off_t len)
{
	return vfs->ftruncate(fd, len);
}
static inline int
vfs_fstat(int fd, struct stat *sb)
{
	return vfs->fstat(fd, sb);
}
static inline int
vfs_stat(const char *path, struct stat *sb)
{
	return vfs->stat(path, sb);
}
static inline int
vfs_rename(const char *from, const char *to)
{
	return vfs->rename(from, to);
}
static inline int
vfs_unlink(const char *path)
{
	return vfs->unlink(path);
}
static inline int
vfs_mkdir(const char *path, mode_t mode)
{
	return vfs->mkdir(path, mode);
}
static inline int
vfs_flock(int fd, int op)
{
	return vfs->flock(fd, op);
}
static inline int
vfs_sync_file_range(int fd, off_t off, off_t len, unsigned flags)
{
	return vfs->sync_file_range(fd, off, len, flags);
}
static inline int
vfs_statvfs(const char *path, struct statvfs *sv)
{
	return vfs->statvfs(path, sv);
}
static inline int
vfs_list(const char *dir, void (*fn)(void *arg, const char *name), void *arg)
{
	return vfs->list(dir, fn, arg);
}

#endif
