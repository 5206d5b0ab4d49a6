/*
 * vfs.c - the POSIX binding of vfs.h: the system calls themselves, reached
 * through one table; nothing is added on their way.
 */
#include "vfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int
posix_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static int
posix_list(const char *dir, void (*fn)(void *arg, const char *name), void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			fn(arg, e->d_name);
	closedir(d);
	return 0;
}

static const struct vfs_ops posix_ops = {
    .open = posix_open,
    .close = close,
    .read = read,
    .write = write,
    .pread = pread,
    .pwrite = pwrite,
    .fsync = fsync,
    .fdatasync = fdatasync,
    .ftruncate = ftruncate,
    .fstat = fstat,
    .stat = stat,
    .rename = rename,
    .unlink = unlink,
    .mkdir = mkdir,
    .flock = flock,
    .sync_file_range = sync_file_range,
    .statvfs = statvfs,
    .list = posix_list,
};

const struct vfs_ops *vfs = &posix_ops;

void
vfs_set(const struct vfs_ops *ops)
{
	vfs = ops != NULL ? ops : &posix_ops;
}

bool
vfs_is_posix(void)
{
	return vfs == &posix_ops;
}
