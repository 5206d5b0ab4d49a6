/*
 * failstop.c - the replica's stop on a disk it cannot trust; see
 * failstop.h.
 */
#include "failstop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int failstop_link = -1;
static bool failstop_unreadable;

void
failstop_set_link(int fd)
{
	failstop_link = fd;
}

void
failstop_note_unreadable(void)
{
	failstop_unreadable = true;
}

bool
failstop_noted_unreadable(void)
{
	return failstop_unreadable;
}

/* {"failed":"REASON"}\n, the reason escaped as a JSON string. */
static size_t
failed_line(char *out, size_t cap, const char *reason)
{
	size_t n = 0;

	n += (size_t)snprintf(out, cap, "{\"failed\":\"");
	for (const char *p = reason; *p != '\0' && n + 8 < cap; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"' || c == '\\')
			n += (size_t)snprintf(out + n, cap - n, "\\%c", c);
		else if (c < 0x20)
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		else
			out[n++] = (char)c;
	}
	n += (size_t)snprintf(out + n, cap - n, "\"}\n");
	return n < cap ? n : cap - 1;
}

void
failstop(enum failstop_status status, const char *fmt, ...)
{
	char reason[1024], line[2200];
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	log_error("%s", reason);
	if (failstop_link != -1) {
		len = failed_line(line, sizeof(line), reason);
		if (write(failstop_link, line, len) != (ssize_t)len)
			log_debug("supervisor link: %s", strerror(errno));
	}
	fflush(stderr);
	/* Not exit(): no stdio buffer (the ledger's journal) is flushed on
	 * the way out, and nothing touches the disk again. */
	_exit(status);
}
