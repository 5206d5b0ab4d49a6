/*
 * conn.h - one TCP connection carrying an authenticated channel
 * (common/chan.h) on a libev loop: the socket work that the replica's
 * network layer (pbft-replica/net.c) and the client library
 * (common/client.c) share.
 *
 * A connection reads into a buffer and hands it to its channel, at most one
 * work budget a loop iteration (chan_set_budget: the rest waits, unread,
 * for the next iteration); it queues frames for the peer in a bounded write
 * queue (CONN_QUEUE_BYTES_MAX, counting what waits to be sealed, sealed
 * records not yet taken by the socket and held frames), seals what queued
 * during one loop iteration as one record and writes it with one send(2)
 * just before the loop waits (conn_group's flusher). Writes use
 * MSG_NOSIGNAL: a peer that reset the connection costs an EPIPE and a
 * close, never a SIGPIPE, so no program embedding this code needs to
 * ignore the signal. A connection closes once, with a reason (enum
 * conn_why), and tells its owner.
 *
 * Holding. A frame queued with hold set waits (not sealed yet, so that
 * frames queued without it overtake it) until conn_release: the replica
 * holds what depends on records of its write-ahead log until they are
 * durable (net_hold in pbft-replica/net.h).
 *
 * Dialling. conn_connect starts a non-blocking connect; conn_backoff gives
 * the doubling, jittered delay before the next attempt. Accepting is the
 * owner's (its admission policy decides first): an accepted socket becomes
 * a connection through conn_open like a dialled one.
 *
 * Not here: which peers to dial, admission, handshake deadlines, liveness,
 * what frames mean. The connection is embedded in its owner's struct; its
 * memory is the owner's, which frees it no earlier than the next loop
 * iteration after conn_close if it was closed from one of its callbacks.
 */
#ifndef PBFT_CONN_H
#define PBFT_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan.h"
#include "defaults.h"
#include "wbuf.h"

#define CONN_QUEUE_BYTES_MAX PBFT_CONN_QUEUE_BYTES_MAX
#define CONN_BACKOFF_MIN_MS 100
#define CONN_BACKOFF_MAX_MS 5000

/* Why a connection closed. */
enum conn_why {
	CONN_LOCAL = 0, /* its owner closed it (the detail says why) */
	CONN_EOF, /* the peer closed it */
	CONN_IO, /* connect, read or send failed (detail: strerror) */
	CONN_CHAN, /* the channel failed: handshake or record (chan_error) */
	CONN_QUEUE_FULL, /* the write queue would pass its bound */
	CONN_NOMEM, /* a buffer could not grow */
};

struct conn;

struct conn_ops {
	/* An authenticated frame (borrowed for the call). */
	void (*frame)(void *arg, const uint8_t *frame, size_t len);
	/* The channel is established (before its first frame). */
	void (*up)(void *arg);
	/* The connection closed: the socket is gone, the channel not
	 * cleared yet (chan_peer, chan_error still answer). */
	void (*closed)(void *arg, enum conn_why why, const char *detail);
};

/* The connections of one owner on one loop: one flush of them all before
 * the loop waits, and those with input left over for the next turn. */
struct conn_group {
	struct ev_loop *loop;
	struct conn *all; /* open connections */
	struct conn *work; /* input left for the next iteration */
	bool dirty; /* some connection queued frames since the flusher ran */
	ev_prepare flusher;
	ev_check work_check;
	ev_idle work_idle; /* keeps the loop from waiting while work is left */
	uint64_t budget_deferrals; /* an input left for a later turn */
};

struct conn {
	struct conn_group *g;
	const struct conn_ops *ops;
	void *arg;
	int fd; /* -1: closed */
	bool connecting; /* connect() in progress */
	bool up; /* established, and ops->up called */
	bool in_work;
	struct chan ch;
	ev_io rd, wr;
	struct wbuf in; /* read, not consumed by the channel yet */
	struct wbuf out; /* sealed, from out_off on not yet sent */
	size_t out_off;
	struct wbuf pt; /* frames queued, sealed as one record later */
	struct wbuf hp; /* held frames, each after its u32 length */
	size_t hmark; /* hp.len at conn_mark */
	ev_tstamp last_rx, last_tx; /* loop time of the last read, send */
	uint64_t bytes_in, bytes_out; /* on this connection */
	/* Further tallies of bytes read and sent (NULL: none), such as a
	 * process's totals and one peer's. */
	uint64_t *count_in[2], *count_out[2];
	enum conn_why why; /* once closed */
	struct conn *next, **prev; /* group's list while open */
	struct conn *next_work;
};

void conn_group_init(struct conn_group *g, struct ev_loop *loop);
/* Stops the group's watchers (its connections closed first). */
void conn_group_clear(struct conn_group *g);
/* Remembers what every connection holds (conn_mark). */
void conn_group_mark(struct conn_group *g);
/* conn_release on every connection. */
void conn_group_release(struct conn_group *g, bool all);

/* Sets up a closed connection: buffers and watchers, no socket. */
void conn_init(struct conn *c, struct conn_group *g, const struct conn_ops *ops,
    void *arg);
/* Frees its buffers; c must be closed. */
void conn_clear(struct conn *c);
/*
 * Adopts a non-blocking socket fd (connecting: a connect() in progress)
 * and joins the group. The caller then prepares c->ch (chan_init) and
 * calls conn_start.
 */
void conn_open(struct conn *c, int fd, bool connecting);
/* Queues the channel's first handshake frame and starts the I/O. 0, or -1
 * with c closed. */
int conn_start(struct conn *c);
/* Closes the socket and tells the owner (ops->closed); nothing if closed. */
void conn_close(struct conn *c, enum conn_why why, const char *detail);
bool conn_is_open(const struct conn *c);

/*
 * Queues a frame on an established channel; hold: it waits for
 * conn_release. 0, or -1 when not established, or with c closed for a full
 * queue (CONN_QUEUE_FULL) or memory (CONN_NOMEM).
 */
int conn_queue(struct conn *c, const uint8_t *frame, size_t len, bool hold);
/* Bytes queued and not yet taken by the socket, held ones included. */
size_t conn_queued(const struct conn *c);
void conn_mark(struct conn *c);
/* Lets held frames go: those up to the mark, or all. */
void conn_release(struct conn *c, bool all);
/* Seals an empty record (a heartbeat, chan.h) and sends it. */
void conn_heartbeat(struct conn *c);
/* Seals what is queued and sends what the socket takes now. */
void conn_flush(struct conn *c);

/*
 * Starts a non-blocking connect to host:port (numeric: host is an address,
 * not a name to look up). The socket, or -1.
 */
int conn_connect(const char *host, uint16_t port, bool numeric);
/* The delay before the next dial (seconds, jittered: half to one and a half
 * times *backoff_ms, 0 standing for CONN_BACKOFF_MIN_MS), and doubles
 * *backoff_ms up to CONN_BACKOFF_MAX_MS. Reset: *backoff_ms = 0. */
double conn_backoff(uint32_t *backoff_ms);

#endif
