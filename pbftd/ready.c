/*
 * ready.c - whether the cluster can serve, as far as this pbftd can see:
 * what READY=1 and STATUS= tell systemd, and what `status` reports.
 *
 * Ready means a quorum (2f+1) of replicas connected to each other and
 * pbftd's own client connected to at least 2f+1 replicas, so that a request
 * submitted now is ordered without waiting for a connection. pbftd sees
 * its local replicas' own status (peers_connected) and its client's
 * channels, nothing else: a local replica counts as connected to the others
 * when it has channels to at least 2f peers, and the replicas pbftd needs
 * so connected are 2f+1 of its local ones, or all of them when it runs
 * fewer (--nodes); with none (client-only), the client's channels alone
 * decide. A pbftd without a client identity judges from its replicas
 * alone. It takes no decision and keeps no state: callers judge again.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "pbftd.h"

/* A status older than this is not evidence (poll_cb asks every second). */
#define READY_STATUS_FRESH_S 3.0

PBFT_PRINTF(4, 5)
static void
put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	k = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	*off = k < 0 ? len : *off + (size_t)k;
}

/*
 * Peers a local replica reports connected, or -1 if it is not running or
 * its status is missing or stale.
 */
static long long
local_peers(const struct pbftd *d, const struct child *c)
{
	if (c->state != CHILD_RUNNING || c->status == NULL ||
	    ev_now(d->loop) - c->status_at >= READY_STATUS_FRESH_S)
		return -1;
	return json_integer_value(
	    json_object_get(c->status, "peers_connected"));
}

/* Local replicas connected to 2f peers; the ones that are not, in why. */
static void
judge_mesh(const struct pbftd *d, struct ready *r, char *why, size_t len)
{
	uint32_t local = 0, want = 2 * d->cfg->f;
	size_t off = 0;

	for (uint32_t i = 0; i < d->cfg->n; i++) {
		const struct child *c = &d->children[i];
		long long peers;

		if (!c->local)
			continue;
		local++;
		if ((peers = local_peers(d, c)) >= want) {
			r->meshed++;
			continue;
		}
		if (peers < 0)
			put(why, len, &off, "%snode %u %s", off ? ", " : "", i,
			    c->state == CHILD_RUNNING ? "not answering"
			                              : "not running");
		else
			put(why, len, &off, "%snode %u has %lld of %u peers",
			    off ? ", " : "", i, peers, want);
	}
	r->meshed_needed = local < r->quorum ? local : r->quorum;
}

void
ready_judge(const struct pbftd *d, struct ready *r)
{
	char mesh_why[256] = "";
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	r->quorum = 2 * d->cfg->f + 1;
	judge_mesh(d, r, mesh_why, sizeof(mesh_why));
	if (d->client != NULL) {
		r->client_connected = pbft_client_connected(d->client);
		r->client_needed = r->quorum;
	}
	r->ok = r->meshed >= r->meshed_needed &&
	    r->client_connected >= r->client_needed;
	if (r->ok) {
		snprintf(r->text, sizeof(r->text), "ready");
		return;
	}
	put(r->text, sizeof(r->text), &off, "waiting for");
	if (r->meshed < r->meshed_needed)
		put(r->text, sizeof(r->text), &off,
		    " %u local replicas connected to %u peers each (now %u: "
		    "%s)",
		    r->meshed_needed, 2 * d->cfg->f, r->meshed, mesh_why);
	if (r->client_connected < r->client_needed)
		put(r->text, sizeof(r->text), &off,
		    "%s pbftd's client connected to %u replicas (now %u)",
		    r->meshed < r->meshed_needed ? " and" : "",
		    r->client_needed, r->client_connected);
}

void
ready_status_json(const struct pbftd *d, struct json_t *rep)
{
	struct ready r;

	ready_judge(d, &r);
	json_object_set_new(rep, "ready", json_boolean(r.ok));
	json_object_set_new(rep, "readiness", json_string(r.text));
}
