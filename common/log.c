/*
 * log.c - leveled logging to stderr with a process/node tag.
 *
 * Deliberately tiny: no syslog client; a log file, when asked for, simply
 * becomes the process's stderr (log_file_open), so children inherit it. Under
 * systemd stderr goes to the journal, which is where a daemon's lines belong.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char log_tag[64] = "pbft";
static char log_path[4096];
static enum log_level log_level = LOG_LVL_INFO;

void
log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag ? tag : "pbft");
}

void
log_init(const char *tag, enum log_level level)
{
	log_set_tag(tag);
	log_level = level;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	static const char *names[] = {"error", "warn", "info", "debug"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_level_from_env(void)
{
	const char *s = getenv("PBFT_LOG");
	enum log_level lvl;

	if (s != NULL && log_level_parse(s, &lvl) == 0)
		log_level = lvl;
}

static void log_vline(enum log_level lvl, const char *fmt, va_list ap,
    int errnum) __attribute__((format(printf, 2, 0)));

static void
log_vline(enum log_level lvl, const char *fmt, va_list ap, int errnum)
{
	static const char *lvl_names[] = {"error", "warn", "info", "debug"};
	char msg[1024];

	if (lvl > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (errnum != 0)
		fprintf(stderr, "%s: %s: %s: %s\n", log_tag, lvl_names[lvl],
		    msg, strerror(errnum));
	else
		fprintf(stderr, "%s: %s: %s\n", log_tag, lvl_names[lvl], msg);
	fflush(stderr);
}

#define LOG_BODY(lvl, err)                                                     \
	do {                                                                   \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vline((lvl), fmt, ap, err);                                \
		va_end(ap);                                                    \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	int saved = errno;

	LOG_BODY(LOG_LVL_WARN, saved);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_WARN, 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_INFO, 0);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_DEBUG, 0);
}

void
log_error(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, 0);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;

	LOG_BODY(LOG_LVL_ERROR, saved);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, 0);
	exit(1);
}

bool
log_ratelimit(struct log_ratelimit *rl, uint64_t now_ms, uint32_t burst,
    uint32_t interval_ms)
{
	if (rl->last_ms == 0 || now_ms - rl->last_ms >= interval_ms) {
		uint64_t refill = rl->last_ms == 0
		    ? burst
		    : (now_ms - rl->last_ms) / (interval_ms ? interval_ms : 1);
		rl->tokens =
		    refill >= burst ? burst : rl->tokens + (uint32_t)refill;
		if (rl->tokens > burst)
			rl->tokens = burst;
		rl->last_ms = now_ms;
	}
	if (rl->tokens > 0) {
		rl->tokens--;
		return true;
	}
	rl->suppressed++;
	return false;
}

void
log_hex(char *out, const void *buf, size_t len, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = buf;
	size_t n = len < max ? len : max;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int
log_file_open(const char *path, char *err, size_t errlen)
{
	int fd;

	if (strlen(path) >= sizeof(log_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fflush(stderr);
	if (dup2(fd, STDERR_FILENO) == -1) {
		snprintf(err, errlen, "%s: dup2: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (log_path != path)
		snprintf(log_path, sizeof(log_path), "%s", path);
	return 0;
}

int
log_file_reopen(void)
{
	char err[sizeof(log_path) + 128]; /* the path and a reason */

	if (log_path[0] == '\0')
		return 0;
	if (log_file_open(log_path, err, sizeof(err)) == -1) {
		log_warnx("cannot reopen the log file: %s", err);
		return -1;
	}
	return 0;
}
