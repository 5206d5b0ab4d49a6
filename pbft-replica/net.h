/*
 * net.h - the replica's TCP layer on libev: one authenticated channel
 * (common/chan.h) to every other replica, plus client connections.
 *
 * The replica with the lower id dials the higher one, so two replicas never
 * race to connect to each other; a newer channel from the same peer replaces
 * an older one. Dials are retried forever with doubling, jittered backoff
 * (100 ms to 5 s). A peer that disconnects or sends anything that does not
 * authenticate is dropped and logged; the replica carries on.
 *
 * Liveness. A peer link on which nothing was written for
 * heartbeat_interval (cluster.ini) carries a heartbeat, an empty sealed
 * record (chan.h), if the peer announced in its HELLO that it takes them;
 * such a link with nothing read for dead_after is closed by either end and
 * redialled by the dialling one, as any lost link. A peer running code
 * from before heartbeats announces nothing, gets none and is not expected
 * to send any, so replicas of both versions interoperate (a rolling
 * upgrade). On every link the kernel helps: TCP_USER_TIMEOUT of dead_after
 * and keepalive probes from dead_after / 2 on, which alone find an old
 * peer's dead link within about dead_after plus a second. A link that
 * came back is not given the dead socket's queue: the replica sends the
 * peer its STATUS and votes when a channel comes up, and the protocol
 * retransmits the rest.
 *
 * Addresses. A node whose [node.N] gives no address is started with one
 * (pbft-replica --listen) and dials the cluster's bootstrap peer. Every
 * node sends each newly connected peer the signed ANNOUNCE frames it
 * knows (its own, if it announces, and those it learned); a receiver checks
 * the named replica's signature, keeps the newest by epoch, relays it and
 * dials the address if it is the dialling side. A peer that sends an
 * announcement that does not verify is disconnected and counted. An
 * announced host must be a numeric address (a name would need a lookup
 * that can block the loop): others are ignored and counted.
 *
 * Strangers. Before a connection costs any cryptography it must pass, on
 * accept, the checks of admit.h (a token bucket of new connections per
 * source address, handshake_rate a second; connections_per_address open
 * ones, 2n more for a replica's address; with accept_from = replicas, only
 * replicas' addresses), the overall connection limit (NET_CLIENTS_MAX for
 * other addresses, 2n more slots kept for replicas' addresses) and the
 * limit of handshakes in progress (handshakes_max, 2n more for replicas'
 * addresses). When those are full a newcomer replaces the oldest
 * handshake of its own address, else the oldest of an address that is not
 * a replica's (a replica's newcomer: of any address), else it is refused:
 * connections that say nothing cannot hold the slots, and one address
 * flooding mostly replaces its own. Then its HELLO must name a known
 * (role, id) and, for a
 * replica whose address the file gives, come from that host
 * (replica_source = match). Only then does the replica make a key, and it
 * signs only after the dialler's signature verified (chan.h). Refusals are
 * counted by reason (enum net_refuse).
 *
 * Work. Each connection's input is handled at most NET_BUDGET_FRAMES
 * frames or NET_BUDGET_BYTES bytes per loop iteration; the rest waits for
 * the next one (the connection is not read meanwhile), so one peer's
 * burst cannot hold the loop.
 *
 * Connections are those of common/conn.h: writes that cannot raise SIGPIPE,
 * and write queues bounded (NET_WQ_BYTES_MAX per connection). A peer whose
 * queue overflows is too slow or dead: its connection is dropped, queued
 * data with it, and the drop is counted. That is safe because the protocol
 * retransmits what matters; it keeps a stuck peer from growing our memory.
 */
#ifndef PBFT_NET_H
#define PBFT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "defaults.h"
#include "msg.h"

/* The write queue bound of common/conn.h, one for every connection. */
#define NET_WQ_BYTES_MAX PBFT_CONN_QUEUE_BYTES_MAX
#define NET_CLIENTS_MAX 1024
#define NET_HANDSHAKE_MS 5000
/* Work per connection per loop iteration: frames handed on, and bytes. */
#define NET_BUDGET_FRAMES 1024
#define NET_BUDGET_BYTES (1u << 20)

/* Connections refused before any cryptography, by reason (net_stats). */
enum net_refuse {
	NET_REFUSE_RATE = 0, /* the source address's handshake rate */
	NET_REFUSE_CONNS, /* connection slots, overall or per address */
	NET_REFUSE_HANDSHAKES, /* too many handshakes in progress */
	NET_REFUSE_SOURCE, /* accept_from, or a replica's id from elsewhere */
	NET_REFUSE_ANNOUNCE_NAME, /* an announced host that is not numeric */
	NET_REFUSE_COUNT,
};
/* The reason's name in status "rejected" (handshake_rate, ...). */
const char *net_refuse_name(enum net_refuse r);

struct ev_loop;
struct net;

/*
 * Input. Each authenticated frame is decoded once, here (common/wire.h),
 * and handed on with the bytes it came from: from a client (client true)
 * or from replica `from`. m is NULL if the frame did not decode. m borrows
 * from frame and from the net's decoding arena, and frame from the
 * connection's buffer: all valid only during the call, so a receiver
 * copies whatever it keeps. The receiver routes by m->type; ANNOUNCE goes
 * back to net_announce.
 */
struct net_callbacks {
	void *ctx;
	void (*on_msg)(void *ctx, bool client, uint32_t from,
	    const struct pbft_msg *m, const uint8_t *frame, size_t len);
};

/* Counters for one replica peer (all its connections so far). */
struct net_peer_stats {
	uint64_t frames_in, frames_out, bytes_in, bytes_out;
	uint64_t handshake_failures; /* on channels that named this peer */
	uint64_t bad_frames; /* records that failed authentication */
	uint64_t queue_drops; /* disconnects for a full write queue */
	uint64_t redials; /* dials retried after a failure or a lost link */
	uint64_t links_dead; /* links closed for nothing heard in dead_after */
};

/* One replica link as status shows it. */
struct net_link {
	/* A channel, heard from within dead_after if the peer takes
	 * heartbeats (one that does not is up until the kernel closes it). */
	bool up;
	bool heartbeats; /* the peer announced it takes heartbeats */
	int64_t heard_ms; /* since anything was read on it; -1: no channel */
	size_t queued; /* bytes queued to it (net_peer_queued) */
	uint64_t redials;
};

/*
 * Totals over every connection. handshake_failures: channels dropped
 * before authentication (garbage, unknown key, bad signature, timeout);
 * auth_failures: established channels dropped for a record that did not
 * authenticate (altered, replayed, reordered, oversized, foreign key).
 */
struct net_stats {
	uint32_t peers_connected; /* links up (struct net_link) */
	uint32_t clients_connected;
	uint64_t frames_in, frames_out, bytes_in, bytes_out;
	uint64_t handshake_failures, auth_failures, queue_drops;
	uint64_t announce_accepted; /* new addresses learned */
	uint64_t announce_rejected; /* bad signature or malformed */
	uint64_t accept_pauses; /* accept() out of descriptors or memory */
	uint64_t refused[NET_REFUSE_COUNT];
	uint64_t budget_deferrals; /* a peer's input left for a later turn */
	struct net_peer_stats peer[PBFT_REPLICAS_MAX]; /* by replica id */
};

/*
 * Listens on node id's address and starts dialling. key: this node's
 * Ed25519 key (borrowed; must outlive the net). NULL with err on failure.
 */
struct net *net_new(struct ev_loop *loop, const struct cluster_cfg *cfg,
    uint32_t id, void *key, const struct net_callbacks *cb, char *err,
    size_t errlen);
void net_free(struct net *n); /* safe on NULL */

/* Queue msg to a replica / every other replica / a client; silently
 * dropped when there is no channel (the protocol retransmits). early: it
 * need not wait for the replica's log (net_hold), and overtakes what does. */
void net_send(
    struct net *n, uint32_t replica, const struct pbft_msg *msg, bool early);
void net_broadcast(struct net *n, const struct pbft_msg *msg, bool early);
/* An already encoded frame (any bytes: fault injection sends garbage). */
void net_send_raw(
    struct net *n, uint32_t replica, const uint8_t *frame, size_t len);
void net_send_client(
    struct net *n, uint32_t client, const struct pbft_msg *msg);
void net_get_stats(const struct net *n, struct net_stats *st);

/*
 * Holding output for the write-ahead log: after net_hold, frames are queued
 * (counted against the queue limit, not sealed yet) but not written; early
 * frames are sealed and written ahead of them. net_mark remembers what every
 * connection holds; net_release_marked lets that much go out (the records it
 * depended on are durable); net_unhold lets everything go and stops holding.
 * Only frames to replicas are held: replies to clients and handshakes go out
 * at once.
 */
void net_hold(struct net *n);
void net_mark(struct net *n);
void net_release_marked(struct net *n);
void net_unhold(struct net *n);
/* The request-MAC key of the client's current channel, or NULL. */
const uint8_t *net_client_request_key(const struct net *n, uint32_t client);
/* Closes the channel with replica id (redialled as usual) or client id,
 * if there is one; why goes to the log. */
void net_disconnect(struct net *n, bool client, uint32_t id, const char *why);
/* Whether a channel with replica id is established (frames get through). */
bool net_peer_up(const struct net *n, uint32_t id);
/* Bytes queued to replica id and not yet taken by its socket (0 when
 * there is no channel): what it has yet to read of our answers. */
size_t net_peer_queued(const struct net *n, uint32_t id);
void net_peer_link(const struct net *n, uint32_t id, struct net_link *l);
/*
 * A decoded ANNOUNCE (m, from frame) that replica `from` sent: checked,
 * kept, relayed and dialled as described above; a forged one drops the
 * channel to `from`.
 */
void net_announce(struct net *n, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len);
/* "host:port" where replica id is reached (from the file or announced);
 * 0, or -1 if not known yet. */
int net_peer_address(const struct net *n, uint32_t id, char *buf, size_t len);

#endif
