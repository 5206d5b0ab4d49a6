/*
 * client_link.h - the client library's links to the replicas, bound at link
 * time: common/client_link.c in production (a connection of conn.h per
 * replica, an authenticated channel over TCP, dialled with backoff), the
 * simulator's tests/sim/rsim_client_link.c in pbft-sim (frames handed to
 * the simulated network).
 *
 * The request logic (common/client.c) sees a replica's link only as up or
 * not: it queues frames on links that are up, and the links tell it when
 * one comes up or goes down (what was queued there is then lost) and hand
 * it every frame a replica sends.
 */
#ifndef PBFT_CLIENT_LINK_H
#define PBFT_CLIENT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"

struct client_links;

/* ---- what the links implement ------------------------------------------ */

/*
 * The links of client c to every replica of opts->cfg, starting to come up
 * (opts->key: the client's key for the channels' handshakes, borrowed).
 * NULL with err set on failure.
 */
struct client_links *client_links_new(struct pbft_client *c,
    struct ev_loop *loop, const struct pbft_client_opts *opts, char *err,
    size_t errlen);
/* Closes every link (client_link_down is not called) and frees. */
void client_links_free(struct client_links *l);
/* Queues a frame to replica i: true if its link is up and took it. */
bool client_link_queue(
    struct client_links *l, uint32_t i, const uint8_t *frame, size_t len);
bool client_link_is_up(const struct client_links *l, uint32_t i);
/* The key for the MAC of requests to replica i (chan.h), or NULL. */
const uint8_t *client_link_request_key(
    const struct client_links *l, uint32_t i);

/* ---- what the links call (common/client.c) ----------------------------- */

void client_link_up(struct pbft_client *c, uint32_t i);
void client_link_down(struct pbft_client *c, uint32_t i);
/* A frame from replica i, borrowed for the call. */
void client_link_frame(
    struct pbft_client *c, uint32_t i, const uint8_t *frame, size_t len);

#endif
