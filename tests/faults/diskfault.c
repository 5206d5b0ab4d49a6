/*
 * diskfault.c - a disk that fails on purpose, for the faults suite: an
 * LD_PRELOAD library (built only with -Dfault_injection=true) that makes
 * the file calls of a process fail while a control file says so.
 *
 * DISKFAULT_CTL names the control file. While it exists, each line is a
 * rule, read again whenever the file changes:
 *
 *     read  EIO    node-1/log.0     read, pread fail with EIO
 *     write ENOSPC node-1/ledger    write, pwrite, fwrite, fflush fail
 *     sync  EIO    node-2/log.      fsync, fdatasync, sync_file_range fail
 *     free  1000000 node-3          statvfs/fstatvfs report 1,000,000
 *                                   bytes available
 *
 * A rule applies to a file whose path (for a descriptor, its name under
 * /proc/self/fd) contains the pattern. Removing the file ends every fault,
 * so a test turns faults on and off while the process runs.
 *
 * DISKFAULT_LOG, when set, names a file that gets one line per injected
 * failure ("PID fail OP PATH") and one per sync of a file whose sync had
 * already failed in the same process ("PID resync PATH"): a fail-stop
 * process writes none of the latter.
 *
 * It does not: fail opens, renames or directory calls; see through stdio
 * beyond fwrite and fflush (glibc's stdio writes through internal calls
 * that no preload can interpose, so those two are checked at the top).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

enum df_op { DF_READ, DF_WRITE, DF_SYNC, DF_FREE };

#define DF_RULES_MAX 16
#define DF_FAILED_MAX 32

struct df_rule {
	enum df_op op;
	long long value; /* errno, or bytes free */
	char pattern[256];
};

static pthread_mutex_t df_mu = PTHREAD_MUTEX_INITIALIZER;
static struct df_rule df_rules[DF_RULES_MAX];
static int df_nrules;
static struct stat df_seen; /* the control file as last parsed */
static bool df_present;
static char df_failed[DF_FAILED_MAX][512]; /* paths whose sync failed */
static int df_nfailed;

static int
df_errno(const char *s)
{
	if (strcmp(s, "EIO") == 0)
		return EIO;
	if (strcmp(s, "ENOSPC") == 0)
		return ENOSPC;
	if (strcmp(s, "EDQUOT") == 0)
		return EDQUOT;
	return strtol(s, NULL, 10) > 0 ? (int)strtol(s, NULL, 10) : EIO;
}

static void
df_parse(FILE *f)
{
	char line[512], op[16], val[32], pat[256];

	df_nrules = 0;
	while (df_nrules < DF_RULES_MAX && fgets(line, sizeof(line), f)) {
		struct df_rule *r = &df_rules[df_nrules];

		if (sscanf(line, "%15s %31s %255s", op, val, pat) != 3)
			continue;
		if (strcmp(op, "read") == 0)
			r->op = DF_READ;
		else if (strcmp(op, "write") == 0)
			r->op = DF_WRITE;
		else if (strcmp(op, "sync") == 0)
			r->op = DF_SYNC;
		else if (strcmp(op, "free") == 0)
			r->op = DF_FREE;
		else
			continue;
		r->value =
		    r->op == DF_FREE ? strtoll(val, NULL, 10) : df_errno(val);
		snprintf(r->pattern, sizeof(r->pattern), "%s", pat);
		df_nrules++;
	}
}

/* Called with df_mu held: the rules as the control file says now. */
static void
df_refresh(void)
{
	const char *ctl = getenv("DISKFAULT_CTL");
	struct stat sb;
	FILE *f;

	if (ctl == NULL || stat(ctl, &sb) == -1) {
		df_present = false;
		df_nrules = 0;
		return;
	}
	if (df_present && sb.st_ino == df_seen.st_ino &&
	    sb.st_size == df_seen.st_size &&
	    sb.st_mtim.tv_sec == df_seen.st_mtim.tv_sec &&
	    sb.st_mtim.tv_nsec == df_seen.st_mtim.tv_nsec)
		return;
	df_present = true;
	df_seen = sb;
	df_nrules = 0;
	if ((f = fopen(ctl, "re")) != NULL) {
		df_parse(f);
		fclose(f);
	}
}

static void
df_fd_path(int fd, char *buf, size_t len)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

static void
df_log(const char *what, const char *path)
{
	const char *log = getenv("DISKFAULT_LOG");
	char line[700];
	int fd, len;

	if (log == NULL)
		return;
	len = snprintf(
	    line, sizeof(line), "%d %s %s\n", (int)getpid(), what, path);
	if ((fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) ==
	    -1)
		return;
	/* Not through write(): that is this library's own. */
	if (len > 0)
		(void)!syscall(SYS_write, fd, line,
		    (size_t)len < sizeof(line) ? (size_t)len : sizeof(line));
	close(fd);
}

/* The rule of op matching path (NULL: none); its value in *value. */
static bool
df_match(enum df_op op, const char *path, long long *value)
{
	bool hit = false;

	pthread_mutex_lock(&df_mu);
	df_refresh();
	for (int i = 0; i < df_nrules && !hit; i++) {
		if (df_rules[i].op == op &&
		    strstr(path, df_rules[i].pattern) != NULL) {
			*value = df_rules[i].value;
			hit = true;
		}
	}
	pthread_mutex_unlock(&df_mu);
	return hit;
}

/* Should op on fd fail? Then errno is set and the failure logged. */
static bool
df_fail(enum df_op op, int fd)
{
	static const char *names[] = {"read", "write", "sync", "free"};
	char path[512], what[32];
	long long e;
	bool any;

	pthread_mutex_lock(&df_mu);
	df_refresh();
	any = df_nrules > 0 || df_nfailed > 0;
	pthread_mutex_unlock(&df_mu);
	if (!any)
		return false;
	df_fd_path(fd, path, sizeof(path));
	if (op == DF_SYNC) {
		pthread_mutex_lock(&df_mu);
		for (int i = 0; i < df_nfailed; i++)
			if (strcmp(df_failed[i], path) == 0)
				df_log("resync", path);
		pthread_mutex_unlock(&df_mu);
	}
	if (!df_match(op, path, &e))
		return false;
	if (op == DF_SYNC) {
		pthread_mutex_lock(&df_mu);
		if (df_nfailed < DF_FAILED_MAX)
			snprintf(df_failed[df_nfailed++], sizeof(df_failed[0]),
			    "%s", path);
		pthread_mutex_unlock(&df_mu);
	}
	snprintf(what, sizeof(what), "fail %s", names[op]);
	df_log(what, path);
	errno = (int)e;
	return true;
}

#define DF_REAL(ret, name, ...)                                                \
	static ret (*real)(__VA_ARGS__);                                       \
	if (real == NULL)                                                      \
	*(void **)&real = dlsym(RTLD_NEXT, name)

ssize_t
read(int fd, void *buf, size_t len)
{
	DF_REAL(ssize_t, "read", int, void *, size_t);
	if (df_fail(DF_READ, fd))
		return -1;
	return real(fd, buf, len);
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	DF_REAL(ssize_t, "pread", int, void *, size_t, off_t);
	if (df_fail(DF_READ, fd))
		return -1;
	return real(fd, buf, len, off);
}

ssize_t
pread64(int fd, void *buf, size_t len, off_t off)
{
	DF_REAL(ssize_t, "pread64", int, void *, size_t, off_t);
	if (df_fail(DF_READ, fd))
		return -1;
	return real(fd, buf, len, off);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	DF_REAL(ssize_t, "write", int, const void *, size_t);
	if (df_fail(DF_WRITE, fd))
		return -1;
	return real(fd, buf, len);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	DF_REAL(ssize_t, "pwrite", int, const void *, size_t, off_t);
	if (df_fail(DF_WRITE, fd))
		return -1;
	return real(fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	DF_REAL(ssize_t, "pwrite64", int, const void *, size_t, off_t);
	if (df_fail(DF_WRITE, fd))
		return -1;
	return real(fd, buf, len, off);
}

size_t
fwrite(const void *buf, size_t size, size_t n, FILE *f)
{
	DF_REAL(size_t, "fwrite", const void *, size_t, size_t, FILE *);
	if (df_fail(DF_WRITE, fileno(f)))
		return 0;
	return real(buf, size, n, f);
}

int
fflush(FILE *f)
{
	DF_REAL(int, "fflush", FILE *);
	if (f != NULL && df_fail(DF_WRITE, fileno(f)))
		return EOF;
	return real(f);
}

int
fsync(int fd)
{
	DF_REAL(int, "fsync", int);
	if (df_fail(DF_SYNC, fd))
		return -1;
	return real(fd);
}

int
fdatasync(int fd)
{
	DF_REAL(int, "fdatasync", int);
	if (df_fail(DF_SYNC, fd))
		return -1;
	return real(fd);
}

int
sync_file_range(int fd, off_t off, off_t len, unsigned int flags)
{
	DF_REAL(int, "sync_file_range", int, off_t, off_t, unsigned int);
	if (df_fail(DF_SYNC, fd))
		return -1;
	return real(fd, off, len, flags);
}

static void
df_fake_free(const char *path, struct statvfs *sv)
{
	long long bytes;

	if (!df_match(DF_FREE, path, &bytes) || sv->f_frsize == 0)
		return;
	sv->f_bavail = (fsblkcnt_t)(bytes / (long long)sv->f_frsize);
	if (sv->f_bfree < sv->f_bavail)
		sv->f_bfree = sv->f_bavail;
}

int
statvfs(const char *path, struct statvfs *sv)
{
	DF_REAL(int, "statvfs", const char *, struct statvfs *);
	if (real(path, sv) == -1)
		return -1;
	df_fake_free(path, sv);
	return 0;
}

int
fstatvfs(int fd, struct statvfs *sv)
{
	char path[512];

	DF_REAL(int, "fstatvfs", int, struct statvfs *);
	if (real(fd, sv) == -1)
		return -1;
	df_fd_path(fd, path, sizeof(path));
	df_fake_free(path, sv);
	return 0;
}

/* What a program built with _FILE_OFFSET_BITS=64 calls. */
int
statvfs64(const char *path, struct statvfs64 *sv)
{
	DF_REAL(int, "statvfs64", const char *, struct statvfs64 *);
	if (real(path, sv) == -1)
		return -1;
	df_fake_free(path, (struct statvfs *)(void *)sv);
	return 0;
}

int
fstatvfs64(int fd, struct statvfs64 *sv)
{
	char path[512];

	DF_REAL(int, "fstatvfs64", int, struct statvfs64 *);
	if (real(fd, sv) == -1)
		return -1;
	df_fd_path(fd, path, sizeof(path));
	df_fake_free(path, (struct statvfs *)(void *)sv);
	return 0;
}
