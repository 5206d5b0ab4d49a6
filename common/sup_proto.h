/*
 * sup_proto.h - the supervisor link: every message between pbftd and a
 * pbft-replica it started, in one place, as ctl_proto.h is for the control
 * socket.
 *
 * pbftd (pbftd/child.c) makes a socketpair and passes one end to the
 * replica as fd SUP_FD; the replica (pbft-replica/main.c, and failstop.c
 * for its last word) takes fd SUP_FD as the link when it is a socket. A
 * stream of lines, each ending in '\n' and at most SUP_LINE_MAX bytes with
 * it; a reader drops a longer line or one it cannot read, logs it, and
 * goes on (both ends are ours: that is a bug, not an attack). Every
 * message:
 *
 *   SUP_MSG_STATUS_REQ  pbftd -> replica  "S\n"
 *       A status request; pbftd sends one a second to each running
 *       replica. The replica reads requests by their first byte alone
 *       (SUP_STATUS_REQ_BYTE, sup_count_status_reqs), so one cannot be
 *       split across reads, and answers each with one SUP_MSG_STATUS.
 *   SUP_MSG_STATUS      replica -> pbftd  "{...}\n"
 *       Its status, one JSON object (replica_status_json). One that does
 *       not fit SUP_LINE_MAX is not sent; pbftd asks again.
 *   SUP_MSG_FAILED      replica -> pbftd  "{"failed":"REASON"}\n"
 *       Its last word before an exit of status FAILSTOP_UNREADABLE or
 *       FAILSTOP_IO: REASON (at most SUP_REASON_MAX bytes, cut there) as a
 *       JSON string. pbftd keeps it for `pbftctl status`.
 *
 * End of file either way means the other side is gone: the replica stops
 * (PR_SET_PDEATHSIG backs that up), pbftd reads what is left and waits for
 * the exit status, which is part of this contract too (enum failstop_status
 * below). The replica never blocks on the link: a write that does not go
 * through is dropped, and pbftd asks again.
 */
#ifndef PBFT_SUP_PROTO_H
#define PBFT_SUP_PROTO_H

#include <stddef.h>

#define SUP_FD 3
#define SUP_LINE_MAX (16 * 1024)
#define SUP_REASON_MAX 1024

#define SUP_STATUS_REQ "S\n"
#define SUP_STATUS_REQ_BYTE 'S'
#define SUP_FAILED_KEY "failed"

enum sup_msg {
	SUP_MSG_STATUS_REQ, /* pbftd -> replica */
	SUP_MSG_STATUS, /* replica -> pbftd */
	SUP_MSG_FAILED, /* replica -> pbftd, then it exits */
};

/* How a replica exits, which pbftd reads from its wait status. */
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

/* The number of status requests in n bytes read from the link. */
size_t sup_count_status_reqs(const char *buf, size_t n);

/* Ends the SUP_MSG_STATUS whose JSON object is the first len bytes of buf
 * (cap bytes long) with its newline: the line's length, or 0 when it would
 * not fit buf or SUP_LINE_MAX. */
size_t sup_status_line(char *buf, size_t len, size_t cap);

/* Writes the SUP_MSG_FAILED line for reason into out (cap bytes): the
 * line's length, newline included, always below cap. reason is escaped as
 * a JSON string and cut at SUP_REASON_MAX bytes or where the line would
 * not fit; cap is at least 16. */
size_t sup_failed_line(char *out, size_t cap, const char *reason);

#endif
