/*
 * rsim_client_link.c - common/client_link.h for the simulator; see
 * rsim_client_link.h. A link is up or down as the simulator says; a frame
 * queued on a link that is up leaves through the fabric at once (the
 * simulator delays, loses or delivers it). No channel: the replicas take
 * the requests' authenticators from the client's auth hook (opts.auth)
 * instead of MACs, so a link has no request key.
 */
#include "rsim_client_link.h"

#include <stdio.h>
#include <stdlib.h>

#include "client_link.h"

#define LINKS_MAX 64 /* clients the simulator may run at once */

struct client_links {
	struct pbft_client *c;
	uint32_t id, n;
	bool up[PBFT_REPLICAS_MAX];
};

static struct rsim_client_fabric fabric;
static struct client_links *by_id[LINKS_MAX];

void
rsim_client_fabric(const struct rsim_client_fabric *f)
{
	fabric = *f;
}

struct client_links *
client_links_new(struct pbft_client *c, struct ev_loop *loop,
    const struct pbft_client_opts *opts, char *err, size_t errlen)
{
	struct client_links *l;

	(void)loop;
	if (opts->client_id >= LINKS_MAX || by_id[opts->client_id] != NULL) {
		snprintf(err, errlen, "client %u: no simulated links for it",
		    opts->client_id);
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->c = c;
	l->id = opts->client_id;
	l->n = opts->cfg->n;
	by_id[l->id] = l;
	return l;
}

void
client_links_free(struct client_links *l)
{
	if (l == NULL)
		return;
	by_id[l->id] = NULL;
	free(l);
}

bool
client_link_queue(
    struct client_links *l, uint32_t i, const uint8_t *frame, size_t len)
{
	if (!l->up[i])
		return false;
	if (fabric.out != NULL)
		fabric.out(fabric.ctx, l->id, i, frame, len);
	return true;
}

bool
client_link_is_up(const struct client_links *l, uint32_t i)
{
	return l->up[i];
}

const uint8_t *
client_link_request_key(const struct client_links *l, uint32_t i)
{
	(void)l;
	(void)i;
	return NULL;
}

void
rsim_client_link(uint32_t client, uint32_t i, bool up)
{
	struct client_links *l = client < LINKS_MAX ? by_id[client] : NULL;

	if (l == NULL || i >= l->n || l->up[i] == up)
		return;
	l->up[i] = up;
	if (up)
		client_link_up(l->c, i);
	else
		client_link_down(l->c, i);
}

void
rsim_client_deliver(
    uint32_t client, uint32_t i, const uint8_t *frame, size_t len)
{
	struct client_links *l = client < LINKS_MAX ? by_id[client] : NULL;

	if (l != NULL && i < l->n && l->up[i])
		client_link_frame(l->c, i, frame, len);
}
