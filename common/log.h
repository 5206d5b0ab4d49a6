/*
 * log.h - the one logging module every pbft program uses.
 *
 * Lines go to stderr, each prefixed with a tag naming the process and node
 * ("replica 2: ..."). Levels: error, warn, info, debug. The level starts at
 * info; -d or PBFT_LOG=debug raises it. This module does not rate-limit by
 * itself: callers that log on behalf of a peer use log_ratelimit().
 * Never log keys, signatures or request payloads.
 */
#ifndef PBFT_LOG_H
#define PBFT_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Sets the tag printed before every line (copied; may be NULL). */
void log_init(const char *tag, enum log_level level);
void log_set_tag(const char *tag);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns -1 on anything else. */
int log_level_parse(const char *s, enum log_level *out);
/* Applies PBFT_LOG from the environment if it is set and valid. */
void log_level_from_env(void);

#define PBFT_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_warn(const char *fmt, ...) PBFT_PRINTF(1, 2); /* appends strerror */
void log_warnx(const char *fmt, ...) PBFT_PRINTF(1, 2);
void log_info(const char *fmt, ...) PBFT_PRINTF(1, 2);
void log_debug(const char *fmt, ...) PBFT_PRINTF(1, 2);
void log_error(const char *fmt, ...) PBFT_PRINTF(1, 2);
_Noreturn void fatal(const char *fmt, ...) PBFT_PRINTF(1, 2); /* strerror */
_Noreturn void fatalx(const char *fmt, ...) PBFT_PRINTF(1, 2);

/*
 * Token bucket for messages caused by peers: returns true when a line may be
 * logged now. now_ms is any monotonic clock; burst lines, then one per
 * interval_ms.
 */
struct log_ratelimit {
	uint64_t last_ms;
	uint32_t tokens;
	uint32_t suppressed;
};
bool log_ratelimit(struct log_ratelimit *rl, uint64_t now_ms, uint32_t burst,
    uint32_t interval_ms);

/*
 * Sends stderr (and so every log line, also of children started later) to
 * path, opened for appending with mode 0640. log_file_reopen opens the
 * same path again (after log rotation moved it); a no-op without a file.
 * Both return 0, or -1 (with err set, or a warning logged).
 */
int log_file_open(const char *path, char *err, size_t errlen);
int log_file_reopen(void);

/* Hex-encodes up to max bytes of buf into out (size >= 2*max+1). */
void log_hex(char *out, const void *buf, size_t len, size_t max);

#endif
