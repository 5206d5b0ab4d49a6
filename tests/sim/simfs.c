/*
 * simfs.c - the simulator's in-memory file system; see simfs.h for the
 * model. Names are whole paths in two tables (current and durable); files
 * and directories are inodes in one array, freed when neither table nor an
 * fd refers to them. Sizes are small: every lookup is a linear scan.
 */
#include "simfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define PATH_BYTES 512

struct sf_buf {
	uint8_t *p;
	size_t len, cap;
};

/* A change since the last sync: a write of len bytes at off, or (data
 * NULL) a truncation to off. */
struct sf_op {
	uint64_t off;
	size_t len;
	uint8_t *data;
};

struct sf_inode {
	bool used, dir;
	struct sf_buf cur, dur;
	struct sf_op *ops;
	size_t nops, capops;
	int locker; /* the fd holding its flock, or -1 */
};

struct sf_name {
	char *path;
	size_t ino;
};

struct sf_names {
	struct sf_name *v;
	size_t n, cap;
};

struct sf_fd {
	bool used, dead;
	size_t ino;
	char *path;
	uint64_t off;
	int flags;
};

static struct {
	struct sf_inode *ino;
	size_t nino;
	struct sf_names cur, dur;
	struct sf_fd *fds;
	size_t nfds;
} fs;

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n ? n : 1)) == NULL)
		abort();
	return p;
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

/* ---- paths ------------------------------------------------------------ */

/* Absolute, no repeated or trailing slash. -1 (ENAMETOOLONG) if too long. */
static int
norm(const char *in, char out[PATH_BYTES])
{
	size_t n = 0;

	out[n++] = '/';
	for (const char *p = in; *p != '\0'; p++) {
		if (*p == '/' && out[n - 1] == '/')
			continue;
		if (n + 2 >= PATH_BYTES) {
			errno = ENAMETOOLONG;
			return -1;
		}
		out[n++] = *p;
	}
	if (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	return 0;
}

static void
parent_of(const char *path, char out[PATH_BYTES])
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL || slash == path ? 1 : (size_t)(slash - path);

	memcpy(out, path, n);
	out[n] = '\0';
}

static bool
is_under(const char *path, const char *dir)
{
	size_t dl = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, dl) == 0 &&
	    (path[dl] == '\0' || path[dl] == '/');
}

static bool
is_child(const char *path, const char *dir)
{
	char par[PATH_BYTES];

	if (strcmp(path, "/") == 0)
		return false;
	parent_of(path, par);
	return strcmp(par, dir) == 0;
}

/* ---- buffers and inodes ----------------------------------------------- */

static void
buf_size(struct sf_buf *b, size_t len)
{
	if (len > b->cap) {
		b->cap = len > 2 * b->cap ? len : 2 * b->cap;
		b->p = xrealloc(b->p, b->cap);
	}
	if (len > b->len)
		memset(b->p + b->len, 0, len - b->len);
	b->len = len;
}

static void
buf_write(struct sf_buf *b, uint64_t off, const uint8_t *p, size_t len)
{
	if (off + len > b->len)
		buf_size(b, (size_t)(off + len));
	memcpy(b->p + off, p, len);
}

static void
buf_copy(struct sf_buf *dst, const struct sf_buf *src)
{
	dst->len = 0;
	buf_size(dst, src->len);
	if (src->len > 0)
		memcpy(dst->p, src->p, src->len);
}

static void
ops_clear(struct sf_inode *in)
{
	for (size_t i = 0; i < in->nops; i++)
		free(in->ops[i].data);
	in->nops = 0;
}

static void
op_add(struct sf_inode *in, uint64_t off, const uint8_t *p, size_t len)
{
	struct sf_op *op;

	if (in->nops == in->capops) {
		in->capops = in->capops ? 2 * in->capops : 8;
		in->ops = xrealloc(in->ops, in->capops * sizeof(*in->ops));
	}
	op = &in->ops[in->nops++];
	op->off = off;
	op->len = len;
	op->data = NULL;
	if (p != NULL) {
		op->data = xrealloc(NULL, len);
		memcpy(op->data, p, len);
	}
}

static size_t
inode_new(bool dir)
{
	size_t i = 0;

	while (i < fs.nino && fs.ino[i].used)
		i++;
	if (i == fs.nino)
		fs.ino = xrealloc(fs.ino, ++fs.nino * sizeof(*fs.ino));
	memset(&fs.ino[i], 0, sizeof(fs.ino[i]));
	fs.ino[i].used = true;
	fs.ino[i].dir = dir;
	fs.ino[i].locker = -1;
	return i;
}

static void
inode_free(struct sf_inode *in)
{
	ops_clear(in);
	free(in->ops);
	free(in->cur.p);
	free(in->dur.p);
	memset(in, 0, sizeof(*in));
}

/* ---- name tables ------------------------------------------------------ */

static long
names_find(const struct sf_names *ns, const char *path)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i].path, path) == 0)
			return (long)i;
	return -1;
}

static void
names_del_at(struct sf_names *ns, size_t i)
{
	free(ns->v[i].path);
	ns->v[i] = ns->v[--ns->n];
}

static void
names_del(struct sf_names *ns, const char *path)
{
	long i = names_find(ns, path);

	if (i >= 0)
		names_del_at(ns, (size_t)i);
}

static void
names_set(struct sf_names *ns, const char *path, size_t ino)
{
	long i = names_find(ns, path);

	if (i >= 0) {
		ns->v[i].ino = ino;
		return;
	}
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? 2 * ns->cap : 16;
		ns->v = xrealloc(ns->v, ns->cap * sizeof(*ns->v));
	}
	ns->v[ns->n].path = xstrdup(path);
	ns->v[ns->n++].ino = ino;
}

static void
fs_init(void)
{
	size_t root;

	if (fs.nino > 0)
		return;
	root = inode_new(true);
	names_set(&fs.cur, "/", root);
	names_set(&fs.dur, "/", root);
}

/* The inode path names now, or NULL (errno ENOENT). */
static struct sf_inode *
lookup(const char *path)
{
	long i;

	fs_init();
	if ((i = names_find(&fs.cur, path)) < 0) {
		errno = ENOENT;
		return NULL;
	}
	return &fs.ino[fs.cur.v[i].ino];
}

/* Frees the inodes no name and no fd refers to. */
static void
gc(void)
{
	bool *ref = calloc(fs.nino ? fs.nino : 1, sizeof(*ref));

	if (ref == NULL)
		abort();
	for (size_t i = 0; i < fs.cur.n; i++)
		ref[fs.cur.v[i].ino] = true;
	for (size_t i = 0; i < fs.dur.n; i++)
		ref[fs.dur.v[i].ino] = true;
	for (size_t i = 0; i < fs.nfds; i++)
		if (fs.fds[i].used)
			ref[fs.fds[i].ino] = true;
	for (size_t i = 0; i < fs.nino; i++)
		if (fs.ino[i].used && !ref[i])
			inode_free(&fs.ino[i]);
	free(ref);
}

/* ---- fds -------------------------------------------------------------- */

/* The open fd, or NULL with errno EBADF (none) or EIO (dead by a crash). */
static struct sf_fd *
fd_get(int fd)
{
	size_t i = (size_t)(fd - SIMFS_FD_BASE);

	if (fd < SIMFS_FD_BASE || i >= fs.nfds || !fs.fds[i].used) {
		errno = EBADF;
		return NULL;
	}
	if (fs.fds[i].dead) {
		errno = EIO;
		return NULL;
	}
	return &fs.fds[i];
}

/* An open file (not a directory) fd, writable if wr. */
static struct sf_inode *
file_of(int fd, bool wr)
{
	struct sf_fd *f = fd_get(fd);

	if (f == NULL)
		return NULL;
	if (fs.ino[f->ino].dir) {
		errno = EISDIR;
		return NULL;
	}
	if (wr && (f->flags & O_ACCMODE) == O_RDONLY) {
		errno = EBADF;
		return NULL;
	}
	return &fs.ino[f->ino];
}

static int
fd_new(size_t ino, const char *path, int flags)
{
	size_t i = 0;

	while (i < fs.nfds && fs.fds[i].used)
		i++;
	if (i == fs.nfds)
		fs.fds = xrealloc(fs.fds, ++fs.nfds * sizeof(*fs.fds));
	fs.fds[i] = (struct sf_fd){
	    .used = true, .ino = ino, .path = xstrdup(path), .flags = flags};
	return SIMFS_FD_BASE + (int)i;
}

/* ---- the operations ----------------------------------------------------- */

static int
sf_open(const char *path, int flags, mode_t mode)
{
	char p[PATH_BYTES], par[PATH_BYTES];
	struct sf_inode *in, *pin;
	bool wr = (flags & O_ACCMODE) != O_RDONLY;

	if (norm(path, p) == -1)
		return -1;
	if ((in = lookup(p)) == NULL) {
		parent_of(p, par);
		if (!(flags & O_CREAT) || (pin = lookup(par)) == NULL ||
		    !pin->dir) {
			errno = ENOENT;
			return -1;
		}
		names_set(&fs.cur, p, inode_new(false));
		in = lookup(p);
	} else if ((flags & O_CREAT) && (flags & O_EXCL)) {
		errno = EEXIST;
		return -1;
	} else if ((flags & O_DIRECTORY) && !in->dir) {
		errno = ENOTDIR;
		return -1;
	} else if (in->dir && wr) {
		errno = EISDIR;
		return -1;
	} else if (!in->dir && wr && (flags & O_TRUNC) && in->cur.len > 0) {
		op_add(in, 0, NULL, 0);
		buf_size(&in->cur, 0);
	}
	return fd_new((size_t)(in - fs.ino), p, flags);
}

static int
sf_close(int fd)
{
	size_t i = (size_t)(fd - SIMFS_FD_BASE);
	struct sf_fd *f;

	if (fd < SIMFS_FD_BASE || i >= fs.nfds || !fs.fds[i].used) {
		errno = EBADF;
		return -1;
	}
	f = &fs.fds[i];
	if (fs.ino[f->ino].locker == fd)
		fs.ino[f->ino].locker = -1;
	free(f->path);
	memset(f, 0, sizeof(*f));
	gc();
	return 0;
}

static ssize_t
sf_pread(int fd, void *buf, size_t len, off_t off)
{
	struct sf_inode *in = file_of(fd, false);
	size_t n;

	if (in == NULL)
		return -1;
	if (off < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)off >= in->cur.len)
		return 0;
	n = in->cur.len - (size_t)off;
	n = n < len ? n : len;
	memcpy(buf, in->cur.p + off, n);
	return (ssize_t)n;
}

static ssize_t
sf_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct sf_inode *in = file_of(fd, true);

	if (in == NULL)
		return -1;
	if (off < 0) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0)
		return 0;
	buf_write(&in->cur, (uint64_t)off, buf, len);
	op_add(in, (uint64_t)off, buf, len);
	return (ssize_t)len;
}

static ssize_t
sf_read(int fd, void *buf, size_t len)
{
	struct sf_fd *f = fd_get(fd);
	ssize_t r;

	if (f == NULL)
		return -1;
	r = sf_pread(fd, buf, len, (off_t)f->off);
	if (r > 0)
		f->off += (uint64_t)r;
	return r;
}

static ssize_t
sf_write(int fd, const void *buf, size_t len)
{
	struct sf_fd *f = fd_get(fd);
	ssize_t w;

	if (f == NULL)
		return -1;
	w = sf_pwrite(fd, buf, len, (off_t)f->off);
	if (w > 0)
		f->off += (uint64_t)w;
	return w;
}

/* The names in dir become durable, as they are now. */
static void
dir_sync(const char *dir)
{
	for (size_t i = 0; i < fs.dur.n;)
		if (is_child(fs.dur.v[i].path, dir))
			names_del_at(&fs.dur, i);
		else
			i++;
	for (size_t i = 0; i < fs.cur.n; i++)
		if (is_child(fs.cur.v[i].path, dir))
			names_set(&fs.dur, fs.cur.v[i].path, fs.cur.v[i].ino);
	gc();
}

static int
sf_fsync(int fd)
{
	struct sf_fd *f = fd_get(fd);
	struct sf_inode *in;

	if (f == NULL)
		return -1;
	in = &fs.ino[f->ino];
	if (in->dir) {
		dir_sync(f->path);
		return 0;
	}
	buf_copy(&in->dur, &in->cur);
	ops_clear(in);
	return 0;
}

static int
sf_ftruncate(int fd, off_t len)
{
	struct sf_inode *in = file_of(fd, true);

	if (in == NULL)
		return -1;
	if (len < 0) {
		errno = EINVAL;
		return -1;
	}
	buf_size(&in->cur, (size_t)len);
	op_add(in, (uint64_t)len, NULL, 0);
	return 0;
}

static void
stat_fill(const struct sf_inode *in, struct stat *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->st_ino = (ino_t)(in - fs.ino) + 1;
	sb->st_mode = in->dir ? S_IFDIR | 0700 : S_IFREG | 0600;
	sb->st_nlink = 1;
	sb->st_uid = geteuid();
	sb->st_gid = getegid();
	sb->st_size = (off_t)in->cur.len;
	sb->st_blksize = 4096;
	sb->st_blocks = (blkcnt_t)((in->cur.len + 511) / 512);
}

static int
sf_fstat(int fd, struct stat *sb)
{
	struct sf_fd *f = fd_get(fd);

	if (f == NULL)
		return -1;
	stat_fill(&fs.ino[f->ino], sb);
	return 0;
}

static int
sf_stat(const char *path, struct stat *sb)
{
	char p[PATH_BYTES];
	struct sf_inode *in;

	if (norm(path, p) == -1 || (in = lookup(p)) == NULL)
		return -1;
	stat_fill(in, sb);
	return 0;
}

static int
sf_rename(const char *from, const char *to)
{
	char f[PATH_BYTES], t[PATH_BYTES], par[PATH_BYTES];
	struct sf_inode *in, *pin, *old;

	if (norm(from, f) == -1 || norm(to, t) == -1 ||
	    (in = lookup(f)) == NULL)
		return -1;
	parent_of(t, par);
	if ((pin = lookup(par)) == NULL || !pin->dir) {
		errno = ENOENT;
		return -1;
	}
	if (in->dir || ((old = lookup(t)) != NULL && old->dir)) {
		errno = EISDIR; /* directories are never renamed here */
		return -1;
	}
	if (strcmp(f, t) == 0)
		return 0;
	names_set(&fs.cur, t, (size_t)(in - fs.ino));
	names_del(&fs.cur, f);
	gc();
	return 0;
}

static int
sf_unlink(const char *path)
{
	char p[PATH_BYTES];
	struct sf_inode *in;

	if (norm(path, p) == -1 || (in = lookup(p)) == NULL)
		return -1;
	if (in->dir) {
		errno = EISDIR;
		return -1;
	}
	names_del(&fs.cur, p);
	gc();
	return 0;
}

static int
sf_mkdir(const char *path, mode_t mode)
{
	char p[PATH_BYTES], par[PATH_BYTES];
	struct sf_inode *pin;
	size_t ino;

	if (norm(path, p) == -1)
		return -1;
	if (lookup(p) != NULL) {
		errno = EEXIST;
		return -1;
	}
	parent_of(p, par);
	if ((pin = lookup(par)) == NULL || !pin->dir) {
		errno = ENOENT;
		return -1;
	}
	ino = inode_new(true);
	names_set(&fs.cur, p, ino);
	names_set(&fs.dur, p, ino);
	return 0;
}

/* Exclusive and shared locks alike; one that would block fails
 * (EWOULDBLOCK): a single thread would wait forever. */
static int
sf_flock(int fd, int op)
{
	struct sf_fd *f = fd_get(fd);
	struct sf_inode *in;

	if (f == NULL)
		return -1;
	in = &fs.ino[f->ino];
	if (op & LOCK_UN) {
		if (in->locker == fd)
			in->locker = -1;
		return 0;
	}
	if (in->locker != -1 && in->locker != fd) {
		errno = EWOULDBLOCK;
		return -1;
	}
	in->locker = fd;
	return 0;
}

static int
sf_sync_file_range(int fd, off_t off, off_t len, unsigned flags)
{
	return file_of(fd, false) == NULL ? -1 : 0;
}

static int
sf_statvfs(const char *path, struct statvfs *sv)
{
	char p[PATH_BYTES];

	if (norm(path, p) == -1 || lookup(p) == NULL)
		return -1;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_blocks = sv->f_bfree = sv->f_bavail = 1UL << 30;
	sv->f_namemax = 255;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names, sorted (the order is the caller's to rely on: fixed). */
static int
sf_list(const char *dir, void (*fn)(void *arg, const char *name), void *arg)
{
	char p[PATH_BYTES];
	struct sf_inode *in;
	char **names;
	size_t n = 0;

	if (norm(dir, p) == -1 || (in = lookup(p)) == NULL)
		return -1;
	if (!in->dir) {
		errno = ENOTDIR;
		return -1;
	}
	names = xrealloc(NULL, (fs.cur.n + 1) * sizeof(*names));
	for (size_t i = 0; i < fs.cur.n; i++)
		if (is_child(fs.cur.v[i].path, p))
			names[n++] =
			    xstrdup(strrchr(fs.cur.v[i].path, '/') + 1);
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		fn(arg, names[i]);
		free(names[i]);
	}
	free(names);
	return 0;
}

static const struct vfs_ops simfs_table = {
    .open = sf_open,
    .close = sf_close,
    .read = sf_read,
    .write = sf_write,
    .pread = sf_pread,
    .pwrite = sf_pwrite,
    .fsync = sf_fsync,
    .fdatasync = sf_fsync,
    .ftruncate = sf_ftruncate,
    .fstat = sf_fstat,
    .stat = sf_stat,
    .rename = sf_rename,
    .unlink = sf_unlink,
    .mkdir = sf_mkdir,
    .flock = sf_flock,
    .sync_file_range = sf_sync_file_range,
    .statvfs = sf_statvfs,
    .list = sf_list,
};

const struct vfs_ops *
simfs_ops(void)
{
	return &simfs_table;
}

/* ---- crashes, damage, digest -------------------------------------------- */

static uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * The file as the disk holds it after a crash: its durable image and,
 * with rng, a prefix of the bytes changed since (a truncation is one
 * byte), which then is durable.
 */
static void
inode_crash(struct sf_inode *in, uint64_t *rng)
{
	uint64_t total = 0, keep;

	for (size_t i = 0; i < in->nops; i++)
		total += in->ops[i].data != NULL ? in->ops[i].len : 1;
	keep = rng != NULL && total > 0 ? splitmix(rng) % (total + 1) : 0;
	buf_copy(&in->cur, &in->dur);
	for (size_t i = 0; i < in->nops && keep > 0; i++) {
		const struct sf_op *op = &in->ops[i];

		if (op->data == NULL) {
			buf_size(&in->cur, (size_t)op->off);
			keep--;
			continue;
		}
		buf_write(&in->cur, op->off, op->data,
		    keep < op->len ? (size_t)keep : op->len);
		keep -= keep < op->len ? keep : op->len;
	}
	buf_copy(&in->dur, &in->cur);
	ops_clear(in);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct sf_name *)a)->path,
	    ((const struct sf_name *)b)->path);
}

void
simfs_crash(const char *dir, uint64_t rnd)
{
	char d[PATH_BYTES];
	uint64_t rng = rnd;

	if (norm(dir, d) == -1)
		return;
	fs_init();
	for (size_t i = 0; i < fs.nfds; i++) {
		struct sf_fd *f = &fs.fds[i];

		if (!f->used || !is_under(f->path, d))
			continue;
		f->dead = true;
		if (fs.ino[f->ino].locker == SIMFS_FD_BASE + (int)i)
			fs.ino[f->ino].locker = -1;
	}
	for (size_t i = 0; i < fs.cur.n;)
		if (is_under(fs.cur.v[i].path, d))
			names_del_at(&fs.cur, i);
		else
			i++;
	/* In path order, so that rnd picks the same prefixes every time. */
	qsort(fs.dur.v, fs.dur.n, sizeof(*fs.dur.v), cmp_name);
	for (size_t i = 0; i < fs.dur.n; i++) {
		struct sf_inode *in = &fs.ino[fs.dur.v[i].ino];

		if (!is_under(fs.dur.v[i].path, d))
			continue;
		names_set(&fs.cur, fs.dur.v[i].path, fs.dur.v[i].ino);
		if (!in->dir)
			inode_crash(in, rnd != 0 ? &rng : NULL);
	}
	gc();
}

int
simfs_corrupt(const char *path, uint64_t off)
{
	char p[PATH_BYTES];
	struct sf_inode *in;

	if (norm(path, p) == -1 || (in = lookup(p)) == NULL || in->dir ||
	    off >= in->dur.len)
		return -1;
	in->dur.p[off] ^= 0xff;
	if (off < in->cur.len)
		in->cur.p[off] ^= 0xff;
	return 0;
}

int
simfs_copy_durable(const char *dir, const char *dst, const char *prefix)
{
	char d[PATH_BYTES], t[PATH_BYTES], p[PATH_BYTES];
	size_t dl, n0;

	if (norm(dir, d) == -1 || norm(dst, t) == -1)
		return -1;
	if (sf_mkdir(t, 0700) == -1)
		return -1;
	dl = strlen(d);
	n0 = fs.dur.n; /* the names added below are not copied again */
	for (size_t i = 0; i < n0; i++) {
		const char *src = fs.dur.v[i].path;
		struct sf_inode *in;
		size_t ino;

		if (!is_under(src, d) || strcmp(src, d) == 0 ||
		    (prefix != NULL &&
		        strncmp(strrchr(src, '/') + 1, prefix,
		            strlen(prefix)) != 0))
			continue;
		if (strlen(t) + strlen(src + dl) + 1 > sizeof(p)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(p, t, strlen(t));
		memcpy(p + strlen(t), src + dl, strlen(src + dl) + 1);
		ino = inode_new(fs.ino[fs.dur.v[i].ino].dir);
		in = &fs.ino[ino]; /* inode_new may move the array */
		if (!in->dir) {
			buf_copy(&in->dur, &fs.ino[fs.dur.v[i].ino].dur);
			buf_copy(&in->cur, &in->dur);
		}
		names_set(&fs.cur, p, ino);
		names_set(&fs.dur, p, ino);
	}
	return 0;
}

void
simfs_remove(const char *dir)
{
	char d[PATH_BYTES];

	if (norm(dir, d) == -1)
		return;
	fs_init();
	for (size_t i = 0; i < fs.cur.n;)
		if (is_under(fs.cur.v[i].path, d))
			names_del_at(&fs.cur, i);
		else
			i++;
	for (size_t i = 0; i < fs.dur.n;)
		if (is_under(fs.dur.v[i].path, d))
			names_del_at(&fs.dur, i);
		else
			i++;
	gc();
}

static uint64_t
fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
names_digest(uint64_t h, struct sf_names *ns)
{
	qsort(ns->v, ns->n, sizeof(*ns->v), cmp_name);
	for (size_t i = 0; i < ns->n; i++) {
		const struct sf_inode *in = &fs.ino[ns->v[i].ino];
		uint64_t lens[2] = {in->cur.len, in->dur.len};

		h = fnv(h, ns->v[i].path, strlen(ns->v[i].path) + 1);
		h = fnv(h, &in->dir, sizeof(in->dir));
		h = fnv(h, lens, sizeof(lens));
		h = fnv(h, in->cur.p, in->cur.len);
		h = fnv(h, in->dur.p, in->dur.len);
	}
	return h;
}

uint64_t
simfs_digest(void)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	fs_init();
	h = names_digest(h, &fs.cur);
	return names_digest(h, &fs.dur);
}

void
simfs_reset(void)
{
	for (size_t i = 0; i < fs.nino; i++)
		if (fs.ino[i].used)
			inode_free(&fs.ino[i]);
	for (size_t i = 0; i < fs.cur.n; i++)
		free(fs.cur.v[i].path);
	for (size_t i = 0; i < fs.dur.n; i++)
		free(fs.dur.v[i].path);
	for (size_t i = 0; i < fs.nfds; i++)
		free(fs.fds[i].path);
	free(fs.ino);
	free(fs.cur.v);
	free(fs.dur.v);
	free(fs.fds);
	memset(&fs, 0, sizeof(fs));
}
