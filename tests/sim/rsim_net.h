/*
 * rsim_net.h - the simulator's side of pbft-replica/net.h: tests/sim/
 * rsim_net.c implements net.h for the replicas the simulator runs (the
 * simulator's binary links it instead of net.c), and this header is how
 * the simulator (tests/sim/rsim.c) moves the frames and sets the links.
 *
 * A replica's frame leaves through the fabric's out callback when net.c
 * would write it: at once, or, when held (net_hold), only once released
 * (net_release_marked, net_unhold). Frames are the real wire encoding.
 * What becomes of them afterwards (delay, loss, duplication, partitions)
 * is the simulator's business.
 */
#ifndef PBFT_RSIM_NET_H
#define PBFT_RSIM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net;

struct rsim_fabric {
	void *ctx;
	/* A frame leaves replica from; to_client: to client `to`. early: it
	 * left while records were not yet durable (net_send's early). */
	void (*out)(void *ctx, uint32_t from, bool to_client, uint32_t to,
	    const uint8_t *frame, size_t len, bool early);
};

void rsim_net_fabric(const struct rsim_fabric *f);
/* The net of replica id (NULL when it is down). */
struct net *rsim_net_of(uint32_t id);
/* Decodes a frame once, as net.c does, and hands it to the replica. */
void rsim_net_deliver(struct net *n, bool from_client, uint32_t from,
    const uint8_t *frame, size_t len);
/* The link to replica peer comes up or goes down; down drops what is
 * queued to it, held frames too (as net.c loses a closed socket's). */
void rsim_net_link(struct net *n, uint32_t peer, bool up);
/* Frames held and not yet released, over every peer (for checks). */
size_t rsim_net_held(const struct net *n);

#endif
