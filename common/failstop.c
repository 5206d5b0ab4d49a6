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

void
failstop(enum failstop_status status, const char *fmt, ...)
{
	char reason[SUP_REASON_MAX + 1], line[2200];
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	log_error("%s", reason);
	if (failstop_link != -1) {
		len = sup_failed_line(line, sizeof(line), reason);
		if (write(failstop_link, line, len) != (ssize_t)len)
			log_debug("supervisor link: %s", strerror(errno));
	}
	fflush(stderr);
	/* Not exit(): no stdio buffer (the ledger's journal) is flushed on
	 * the way out, and nothing touches the disk again. */
	_exit(status);
}
