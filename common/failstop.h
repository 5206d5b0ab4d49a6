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
 * was. Not here: deciding what is an error (the callers do).
 *
 * The supervisor link (fd 3), every message:
 *     pbftd -> replica   "S"                      a status request
 *     replica -> pbftd   {...status fields...}\n  the answer
 *     replica -> pbftd   {"failed":"REASON"}\n    the last word before an
 *                                                 exit of status
 *                                                 FAILSTOP_UNREADABLE or
 *                                                 FAILSTOP_IO
 */
#ifndef PBFT_FAILSTOP_H
#define PBFT_FAILSTOP_H

#include "log.h"

enum failstop_status {
	/* Could not start for another reason (the network, memory, a
	 * write at start): pbftd restarts it with its backoff. */
	FAILSTOP_START = 1,
	/* Refused to start: its data could not be read (EIO, a short read,
	 * a checksum). Restarting changes nothing until someone looks, so
	 * pbftd marks the node failed at once. */
	FAILSTOP_UNREADABLE = 3,
	/* Stopped while running: a write or sync failed. pbftd restarts it
	 * with its backoff; it comes back once the disk does. */
	FAILSTOP_IO = 4,
};

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
