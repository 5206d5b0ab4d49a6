/*
 * failstop.h - how a replica stops on a disk it cannot trust, and what it
 * tells its supervisor.
 *
 * A replica that cannot read its durable state, or cannot make a write
 * durable, stops: it never guesses (an unreadable log taken for an empty
 * one is a replica that forgot its votes) and never retries a failed sync
 * (the kernel may have dropped the pages it would claim). It logs one line
 * naming the file and the error, sends that line to pbftd on the
 * supervisor link (fd 3), and exits with a status that says which case it
 * was. Not here: deciding what is an error (the callers do), the link's
 * messages and the exit statuses (sup_proto.h declares them, for both
 * ends).
 */
#ifndef PBFT_FAILSTOP_H
#define PBFT_FAILSTOP_H

#include "log.h"
#include "sup_proto.h"

/* The supervisor link to tell (-1: none). */
void failstop_set_link(int fd);
/* Notes that the start is being refused for an unreadable disk, so that
 * the exit that follows has status FAILSTOP_UNREADABLE. */
void failstop_note_unreadable(void);
bool failstop_noted_unreadable(void);
/* Logs the line, tells the supervisor, exits with status. */
_Noreturn void failstop(enum failstop_status status, const char *fmt, ...)
    PBFT_PRINTF(2, 3);

#endif
