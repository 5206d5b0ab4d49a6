/*
 * rsim_client_link.h - the simulator's side of common/client_link.h:
 * tests/sim/rsim_client_link.c gives the client library (common/client.c,
 * run without a loop) links that hand its frames to the simulator
 * (tests/sim/rsim.c), which moves them as it moves the replicas' and
 * says when a link is up.
 */
#ifndef PBFT_RSIM_CLIENT_LINK_H
#define PBFT_RSIM_CLIENT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rsim_client_fabric {
	void *ctx;
	/* A frame leaves client `client` for replica `to`. */
	void (*out)(void *ctx, uint32_t client, uint32_t to,
	    const uint8_t *frame, size_t len);
};

void rsim_client_fabric(const struct rsim_client_fabric *f);
/* Client client's link to replica i comes up or goes down (a link starts
 * down). Nothing for a client that does not exist. */
void rsim_client_link(uint32_t client, uint32_t i, bool up);
/* Hands replica i's frame to client client, if their link is up. */
void rsim_client_deliver(
    uint32_t client, uint32_t i, const uint8_t *frame, size_t len);

#endif
