/*
 * client.c - the pbft client library; see client.h.
 *
 * Two layers: links (one per replica, client_link.h: in production a
 * connection of conn.h carrying an authenticated channel, dialled with
 * backoff) and requests (a fixed table of outstanding requests with their
 * reply votes and timers, found by timestamp through a hash index).
 *
 * Requests submitted during one loop iteration are signed together just
 * before the loop waits again (an ev_prepare watcher): one Ed25519 signature
 * over a hash tree of up to REQAUTH_GROUP_MAX requests (reqauth.h), so a
 * busy client pays for one signature per burst, not per request. While
 * earlier requests are still unanswered, a new group is signed at most once
 * per sign_interval_us (as Nagle's algorithm holds small segments while
 * data is unacknowledged): a client that submits in a steady trickle then
 * costs the primary one signature check per interval instead of one per
 * loop iteration, and a lone request never waits. The interval stretches
 * with the client's recent latency (half of it, up to 2.5 times
 * sign_interval_us): when the cluster is slow because it is busy, each
 * signature covers more requests and the primary checks fewer of them,
 * while a request waits for its signature no more than a quarter of what
 * requests take anyway, on average.
 *
 * Without a loop (the simulator) there are no watchers: the timers are
 * due times that pbft_client_tick checks, and the signing step runs in
 * pbft_client_before_wait.
 */
#include "client.h"

#include <ev.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_link.h"
#include "log.h"
#include "pbft_build.h"
#include "reqauth.h"
#include "sig.h"
#include "wire.h"

/* Requests sent to all replicas after one needed a retransmission: the
 * first run, and the most a run doubles to (client.h). */
#define ALL_RUN_MIN 16
#define ALL_RUN_MAX 1024

/* A one-shot timer: a watcher on the loop, or without a loop a due time. */
struct ctimer {
	ev_timer w;
	uint64_t at; /* when it fires (clock_us), while active */
	bool armed; /* without a loop: active */
};

/* A reply vote: what replica i said about a request. */
struct vote {
	bool have;
	uint64_t seq, view;
	uint8_t status;
	uint32_t rlen;
	/* the result itself if it fits (most do), else its SHA-256 */
	uint8_t digest[PBFT_DIGEST_LEN];
};

struct creq {
	bool used;
	bool sent; /* started: on the started list, timers running */
	uint64_t ts;
	uint8_t *op; /* until signed: a copy of the operation */
	uint32_t op_len;
	uint8_t *frame; /* once signed: the encoded REQUEST frame */
	size_t frame_len;
	pbft_client_cb cb;
	void *arg;
	uint64_t start_us;
	uint64_t retrans_at_us, deadline_us;
	uint32_t retrans_ms;
	bool to_all; /* sent to all or retransmitted: every replica should
	              * have it */
	bool retried; /* retransmitted */
	uint64_t nth; /* started as the client's nth request */
	uint64_t view0; /* the client's view when it started */
	uint64_t queued; /* replicas whose current channel took the frame */
	uint32_t prev, next; /* started list: reqs index + 1, or 0 */
	struct pbft_client *c;
	struct vote *votes; /* n, in pbft_client.votes */
};

struct pbft_client {
	struct ev_loop *loop;
	const struct cluster_cfg *cfg;
	struct pbft_client_opts opts;
	uint32_t n, f;
	uint64_t last_ts;
	uint64_t view; /* latest view f+1 replicas vouch for (view_learn) */
	uint64_t rview[PBFT_REPLICAS_MAX]; /* highest each replica named */
	/* Requests to send to all replicas at once (route_learn): how many
	 * more, how many the next run will be, and the nth of the first
	 * request started after the run was decided. */
	uint32_t all_left, all_run;
	uint64_t nstarted, all_from;
	struct client_links *links;
	struct creq *reqs;
	struct vote *votes; /* nreqs_max x n */
	uint32_t nreqs_max, outstanding;
	uint32_t sign_interval_us;
	uint32_t *free_slots, nfree; /* stack of unused reqs[] indexes */
	/* Started requests, oldest first (reqs index + 1, or 0): their
	 * retransmissions and deadlines come due in about this order, so one
	 * timer watches them all, not two per request. */
	uint32_t first, last;
	struct ctimer sweep;
	uint32_t *by_ts, ts_mask; /* open addressing: reqs index + 1, or 0 */
	struct creq **pending; /* submitted, not signed yet */
	uint32_t npending;
	struct creq **signing; /* the group being signed */
	uint8_t (*leaves)[32];
	struct reqauth_tree *tree;
	ev_prepare sign_w; /* signs pending requests before the loop waits */
	bool sign_wanted; /* without a loop: sign_w is active */
	struct ctimer sign_t; /* or when the sign interval is over */
	uint64_t last_sign_us;
	uint64_t lat_avg_us; /* moving average of answered requests' latency */
	struct wbuf scratch;
	uint8_t *arena;
	size_t arena_len;
};

static uint64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Strictly increasing timestamps that survive a restart of the process. */
static uint64_t
next_ts(struct pbft_client *c)
{
	uint64_t t = c->opts.now_us != NULL ? c->opts.now_us(c->opts.env_ctx)
	                                    : wall_us();

	c->last_ts = t > c->last_ts ? t : c->last_ts + 1;
	return c->last_ts;
}

/* ---- timers ------------------------------------------------------------ */

static uint64_t
clock_us(const struct pbft_client *c)
{
	return c->opts.now_us != NULL ? c->opts.now_us(c->opts.env_ctx)
	                              : mono_us();
}

static bool
timer_active(const struct pbft_client *c, struct ctimer *t)
{
	return c->loop != NULL ? ev_is_active(&t->w) : t->armed;
}

static void
timer_stop(struct pbft_client *c, struct ctimer *t)
{
	if (c->loop != NULL)
		ev_timer_stop(c->loop, &t->w);
	t->armed = false;
}

/* Fires at due (clock_us), or at once if that has passed. */
static void
timer_start(struct pbft_client *c, struct ctimer *t, uint64_t now, uint64_t due)
{
	timer_stop(c, t);
	t->at = due;
	t->armed = true;
	if (c->loop == NULL)
		return;
	ev_timer_set(&t->w, due > now ? (double)(due - now) / 1e6 : 0, 0);
	ev_timer_start(c->loop, &t->w);
}

/* ---- requests ---------------------------------------------------------- */

static void req_start(struct pbft_client *c, struct creq *q);

/* Serial mode: the waiting request with the lowest timestamp goes next. */
static void
start_next(struct pbft_client *c)
{
	struct creq *next = NULL;

	for (uint32_t i = 0; i < c->nreqs_max; i++) {
		struct creq *q = &c->reqs[i];

		if (q->used && q->sent)
			return; /* one is in flight */
		if (q->used && (next == NULL || q->ts < next->ts))
			next = q;
	}
	if (next != NULL)
		req_start(c, next);
}

/* ---- the timestamp index ----------------------------------------------- */

static uint32_t
ts_home(const struct pbft_client *c, uint64_t ts)
{
	return (uint32_t)((ts * 0x9e3779b97f4a7c15ull) >> 32) & c->ts_mask;
}

static void
ts_insert(struct pbft_client *c, struct creq *q)
{
	uint32_t i = ts_home(c, q->ts);

	while (c->by_ts[i] != 0)
		i = (i + 1) & c->ts_mask;
	c->by_ts[i] = (uint32_t)(q - c->reqs) + 1;
}

static struct creq *
req_by_ts(struct pbft_client *c, uint64_t ts)
{
	for (uint32_t i = ts_home(c, ts); c->by_ts[i] != 0;
	     i = (i + 1) & c->ts_mask)
		if (c->reqs[c->by_ts[i] - 1].ts == ts)
			return &c->reqs[c->by_ts[i] - 1];
	return NULL;
}

/* Removes q, shifting later entries of its probe run back (no tombstones). */
static void
ts_remove(struct pbft_client *c, struct creq *q)
{
	uint32_t i = ts_home(c, q->ts);
	uint32_t want = (uint32_t)(q - c->reqs) + 1;

	while (c->by_ts[i] != want) {
		if (c->by_ts[i] == 0)
			return;
		i = (i + 1) & c->ts_mask;
	}
	c->by_ts[i] = 0;
	for (uint32_t j = (i + 1) & c->ts_mask; c->by_ts[j] != 0;
	     j = (j + 1) & c->ts_mask) {
		uint32_t k = ts_home(c, c->reqs[c->by_ts[j] - 1].ts);

		/* Entry j may move to the hole at i unless its home lies
		 * cyclically in (i, j]. */
		if (i <= j ? (k > i && k <= j) : (k > i || k <= j))
			continue;
		c->by_ts[i] = c->by_ts[j];
		c->by_ts[j] = 0;
		i = j;
	}
}

/* ---- request lifecycle ------------------------------------------------- */

/* Takes q off the started list; the sweep timer may fire once for nothing. */
static void
unlist(struct pbft_client *c, struct creq *q)
{
	if (!q->sent)
		return;
	if (q->prev != 0)
		c->reqs[q->prev - 1].next = q->next;
	else
		c->first = q->next;
	if (q->next != 0)
		c->reqs[q->next - 1].prev = q->prev;
	else
		c->last = q->prev;
	q->prev = q->next = 0;
	if (c->first == 0)
		timer_stop(c, &c->sweep);
}

static void
req_finish(struct pbft_client *c, struct creq *q, const struct pbft_result *res)
{
	pbft_client_cb cb = q->cb;
	void *arg = q->arg;

	unlist(c, q);
	ts_remove(c, q);
	free(q->frame);
	free(q->op);
	q->frame = q->op = NULL;
	q->used = false;
	q->sent = false;
	c->free_slots[c->nfree++] = (uint32_t)(q - c->reqs);
	c->outstanding--;
	cb(arg, res);
	if (!c->opts.pipeline && res->status != PBFT_CLIENT_CANCELLED)
		start_next(c);
}

/* Queues q for replica i unless its channel has it; true if it has. */
static bool
req_send_to(struct pbft_client *c, struct creq *q, uint32_t i)
{
	uint64_t bit = 1ull << i;

	if ((q->queued & bit) == 0 &&
	    client_link_queue(c->links, i, q->frame, q->frame_len))
		q->queued |= bit;
	return (q->queued & bit) != 0;
}

/*
 * Sends q to the primary, or (all) retransmits it to every replica (Castro
 * and Liskov 4.1). While the primary's channel is not up, a first send goes
 * to the backups whose channels are: they forward it to the primary.
 */
static void
req_send(struct pbft_client *c, struct creq *q, bool all)
{
	uint32_t primary = (uint32_t)(c->view % c->n);

	if (q->frame == NULL)
		return; /* not signed yet; sign_pending sends it */
	if (all) {
		q->to_all = true;
		q->queued = 0;
	}
	if (!all && req_send_to(c, q, primary))
		return;
	for (uint32_t i = 0; i < c->n; i++)
		req_send_to(c, q, i);
}

/*
 * Replica i's channel just came up: it gets at once what it would have
 * got had it been up when the request was sent or last retransmitted, so
 * the first requests after a start do not wait for a retransmission.
 */
void
client_link_up(struct pbft_client *c, uint32_t replica)
{
	uint64_t primary = 1ull << (uint32_t)(c->view % c->n);

	for (uint32_t at = c->first; at != 0; at = c->reqs[at - 1].next) {
		struct creq *q = &c->reqs[at - 1];

		if (q->frame != NULL &&
		    (q->to_all || (1ull << replica) == primary ||
		        (q->queued & primary) == 0))
			req_send_to(c, q, replica);
	}
}

/* Replica i's channel is gone, and with it what was queued there. */
void
client_link_down(struct pbft_client *c, uint32_t replica)
{
	for (uint32_t at = c->first; at != 0; at = c->reqs[at - 1].next)
		c->reqs[at - 1].queued &= ~(1ull << replica);
}

/* The first thing due on the started list, from its oldest entries. */
static void
sweep_arm(struct pbft_client *c, uint64_t now, uint64_t due)
{
	timer_stop(c, &c->sweep);
	if (c->first != 0)
		timer_start(c, &c->sweep, now, due);
}

/*
 * Retransmits what is due (Castro and Liskov 4.1: to all replicas, the
 * interval doubling up to 8 s) and fails what is past its deadline. The
 * walk stops at the first request too young for either: every later one
 * started later.
 */
static void
sweep_run(struct pbft_client *c)
{
	uint64_t now = clock_us(c), young = c->opts.retransmit_ms;
	uint64_t due = UINT64_MAX;
	uint32_t at = c->first;

	if (c->opts.timeout_ms < young)
		young = c->opts.timeout_ms;
	young *= 1000;
	while (at != 0) {
		struct creq *q = &c->reqs[at - 1];

		at = q->next;
		if (q->start_us + young > now) {
			if (q->start_us + young < due)
				due = q->start_us + young;
			break;
		}
		if (q->deadline_us <= now) {
			struct pbft_result res = {.status = PBFT_CLIENT_TIMEOUT,
			    .latency_us = now - q->start_us};

			req_finish(c, q, &res);
			continue;
		}
		if (q->retrans_at_us <= now) {
			req_send(c, q, true);
			q->retried = true;
			q->retrans_ms =
			    q->retrans_ms * 2 > 8000 ? 8000 : q->retrans_ms * 2;
			q->retrans_at_us = now + (uint64_t)q->retrans_ms * 1000;
		}
		if (q->retrans_at_us < due)
			due = q->retrans_at_us;
		if (q->deadline_us < due)
			due = q->deadline_us;
	}
	/* A callback above may have started a request past the walk (serial
	 * mode starts the next one), arming the timer for it. */
	if (!timer_active(c, &c->sweep) || due < c->sweep.at)
		sweep_arm(c, now, due);
}

static void
sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	sweep_run(w->data);
}

/*
 * Replica i named view in a reply. The client's view rises to the
 * highest view that f+1 replicas have named (each its highest): at least
 * one correct replica has reached it, so a faulty replica cannot send the
 * client to a primary of its choosing by naming a view nobody is in. A new view
 * ends a run of requests sent to all (route_learn): its primary gets a fresh
 * chance.
 */
static void
view_learn(struct pbft_client *c, uint32_t i, uint64_t view)
{
	uint64_t best = c->view;

	if (view <= c->rview[i])
		return;
	c->rview[i] = view;
	if (view <= c->view)
		return;
	for (uint32_t j = 0; j < c->n; j++) {
		uint32_t k = 0;

		if (c->rview[j] <= best)
			continue;
		for (uint32_t m = 0; m < c->n; m++)
			k += c->rview[m] >= c->rview[j];
		if (k >= c->f + 1)
			best = c->rview[j];
	}
	if (best == c->view)
		return;
	c->view = best;
	c->all_left = 0;
	c->all_run = ALL_RUN_MIN;
}

/*
 * q is answered. If it needed a retransmission in the view it started in
 * (the primary ignored it, or sat on it until the backups forwarded it),
 * the next requests go to all replicas at once (client.h); if it went to
 * the primary alone and needed none, the next run will be the shortest.
 * Requests started before the last run was decided say nothing new (with
 * pipelining, one slow stretch answers many of them).
 */
static void
route_learn(struct pbft_client *c, const struct creq *q)
{
	if (q->nth < c->all_from)
		return;
	if (q->retried && q->view0 == c->view) {
		c->all_left = c->all_run;
		c->all_run =
		    c->all_run * 2 > ALL_RUN_MAX ? ALL_RUN_MAX : c->all_run * 2;
		c->all_from = c->nstarted;
	} else if (!q->to_all) {
		c->all_run = ALL_RUN_MIN;
	}
}

static void
client_on_reply(
    struct pbft_client *c, uint32_t replica, const struct pbft_reply *rep)
{
	struct creq *q = req_by_ts(c, rep->timestamp);
	struct vote *v;
	uint32_t agree = 0;
	struct pbft_result res = {.status = PBFT_CLIENT_OK};

	if (rep->client != c->opts.client_id)
		return; /* not ours */
	view_learn(c, replica, rep->view);
	if (q == NULL || !q->sent)
		return; /* late duplicate */
	v = &q->votes[replica];
	v->have = true;
	v->seq = rep->seq;
	v->view = rep->view;
	v->status = rep->status;
	v->rlen = rep->result_len;
	memset(v->digest, 0, sizeof(v->digest));
	if (rep->result_len <= sizeof(v->digest))
		memcpy(v->digest, rep->result, rep->result_len);
	else
		sig_sha256(rep->result, rep->result_len, v->digest);
	for (uint32_t i = 0; i < c->n; i++) {
		const struct vote *o = &q->votes[i];

		if (o->have && o->seq == v->seq && o->status == v->status &&
		    o->rlen == v->rlen &&
		    memcmp(o->digest, v->digest, PBFT_DIGEST_LEN) == 0)
			agree++;
	}
	if (agree < c->f + 1)
		return;
	res.latency_us = clock_us(c) - q->start_us;
	/* An average over about the last 16 answers. */
	c->lat_avg_us =
	    c->lat_avg_us - c->lat_avg_us / 16 + res.latency_us / 16;
	route_learn(c, q);
	res.seq = rep->seq;
	res.view = rep->view;
	res.svc_status = rep->status;
	res.result = rep->result;
	res.result_len = rep->result_len;
	req_finish(c, q, &res);
}

void
client_link_frame(
    struct pbft_client *c, uint32_t i, const uint8_t *frame, size_t len)
{
	struct wire_arena arena;
	struct pbft_msg m;

	wire_arena_init(&arena, c->arena, c->arena_len);
	if (wire_decode(frame, len, &m, &arena) != WIRE_OK ||
	    m.type != PBFT_MSG_REPLY || m.u.reply.replica != i) {
		log_debug("client: replica %u sent a bad frame", i);
		return;
	}
	client_on_reply(c, i, &m.u.reply);
}

/* Encodes m, q's REQUEST, as q's frame, which replaces its operation. */
static int
req_keep(struct pbft_client *c, struct creq *q, const struct pbft_msg *m)
{
	wbuf_reset(&c->scratch);
	if (wire_encode(&c->scratch, m) == -1 ||
	    (q->frame = malloc(c->scratch.len)) == NULL)
		return -1;
	memcpy(q->frame, c->scratch.p, c->scratch.len);
	q->frame_len = c->scratch.len;
	free(q->op);
	q->op = NULL;
	return 0;
}

/*
 * Encodes q's REQUEST frame: the group's signature and q's path, then the
 * group's MACs (sign_group). Returns 0 or -1.
 */
static int
req_seal(struct pbft_client *c, struct creq *q, uint32_t index,
    const uint8_t sig[PBFT_SIG_LEN], const uint8_t *group_macs)
{
	struct pbft_msg m = {.type = PBFT_MSG_REQUEST};
	uint8_t auth[PBFT_AUTH_BYTES_MAX];
	uint8_t *macs = auth + reqauth_len(c->tree->depth, c->n, 0);

	m.u.request = (struct pbft_request){.client = c->opts.client_id,
	    .timestamp = q->ts,
	    .op_len = q->op_len,
	    .op = q->op,
	    .auth_len = (uint16_t)reqauth_len(c->tree->depth, c->n, 1),
	    .auth = auth};
	reqauth_tree_write(c->tree, index, sig, auth);
	memcpy(macs, group_macs, (size_t)PBFT_REQ_MAC_LEN * c->n);
#if PBFT_FAULT_INJECTION
	/* A faulty client (PBFT_CLIENT_FAULT, fault-injection builds):
	 * bad-macs: the MACs of odd replicas are wrong, the signature right;
	 * bad-sig: the signature is wrong, every MAC right. */
	if (getenv("PBFT_CLIENT_FAULT") != NULL) {
		const char *f = getenv("PBFT_CLIENT_FAULT");

		if (strcmp(f, "bad-macs") == 0)
			for (uint32_t i = 1; i < c->n; i += 2)
				macs[PBFT_REQ_MAC_LEN * i] ^= 1;
		else if (strcmp(f, "bad-sig") == 0)
			auth[0] ^= 1;
	}
#endif
	return req_keep(c, q, &m);
}

/* With opts.auth: each request authenticated by the hook alone. */
static int
auth_each(struct pbft_client *c, struct creq **group, uint32_t count)
{
	uint8_t auth[PBFT_AUTH_BYTES_MAX];

	for (uint32_t j = 0; j < count; j++) {
		struct pbft_msg m = {.type = PBFT_MSG_REQUEST};
		struct pbft_request *r = &m.u.request;

		*r = (struct pbft_request){.client = c->opts.client_id,
		    .timestamp = group[j]->ts,
		    .op_len = group[j]->op_len,
		    .op = group[j]->op,
		    .auth = auth};
		r->auth_len = (uint16_t)c->opts.auth(c->opts.env_ctx, r, auth);
		if (req_keep(c, group[j], &m) == -1)
			return -1;
	}
	return 0;
}

/* Signs count requests (1..REQAUTH_GROUP_MAX) with one signature. */
static int
sign_group(struct pbft_client *c, struct creq **group, uint32_t count)
{
	uint8_t msg[REQAUTH_ROOT_MSG_LEN];
	uint8_t sig[PBFT_SIG_LEN];
	uint8_t macs[PBFT_REQ_MAC_LEN * PBFT_REPLICAS_MAX];

	if (c->opts.auth != NULL)
		return auth_each(c, group, count);
	for (uint32_t j = 0; j < count; j++) {
		struct pbft_request r = {.client = c->opts.client_id,
		    .timestamp = group[j]->ts,
		    .op_len = group[j]->op_len,
		    .op = group[j]->op};

		wbuf_reset(&c->scratch);
		if (wire_signed_request(&c->scratch, &r) == -1)
			return -1;
		reqauth_leaf(c->scratch.p, c->scratch.len, c->leaves[j]);
	}
	reqauth_tree(c->tree, (const uint8_t(*)[32])c->leaves, count);
	reqauth_root_msg(reqauth_tree_root(c->tree), msg);
	if (sig_sign(c->opts.key, msg, sizeof(msg), sig) == -1)
		return -1;
	/* One MAC per replica over the signed root message (zeros for a
	 * replica not connected yet, which then checks the signature). */
	for (uint32_t i = 0; i < c->n; i++) {
		const uint8_t *key = client_link_request_key(c->links, i);
		uint8_t *mac = macs + PBFT_REQ_MAC_LEN * i;

		if (key != NULL)
			sig_req_mac(key, msg, sizeof(msg), mac);
		else
			memset(mac, 0, PBFT_REQ_MAC_LEN);
	}
	for (uint32_t j = 0; j < count; j++)
		if (req_seal(c, group[j], j, sig, macs) == -1)
			return -1;
	return 0;
}

/*
 * Signs everything submitted since the last call, in groups, and sends what
 * is already started. A request that cannot be signed (out of memory) fails
 * with PBFT_CLIENT_TIMEOUT at its deadline: its timers run, nothing is sent.
 */
static void
sign_pending(struct pbft_client *c)
{
	uint32_t count = c->npending;

	/* Callbacks may submit more while we send: work on a copy. */
	memcpy(c->signing, c->pending, count * sizeof(*c->signing));
	c->npending = 0;
	for (uint32_t at = 0; at < count; at += REQAUTH_GROUP_MAX) {
		uint32_t k = count - at < REQAUTH_GROUP_MAX ? count - at
		                                            : REQAUTH_GROUP_MAX;

		if (sign_group(c, c->signing + at, k) == -1)
			log_error("client: cannot sign %u requests", k);
	}
	for (uint32_t j = 0; j < count; j++)
		if (c->signing[j]->sent)
			req_send(c, c->signing[j], c->signing[j]->to_all);
}

uint64_t
pbft_client_sign_interval_us(uint32_t base_us, uint64_t latency_avg_us)
{
	uint64_t lo = base_us, hi = lo * 5 / 2, want = latency_avg_us / 2;

	return want < lo ? lo : want > hi ? hi : want;
}

/* Before the loop waits: signs what is pending now, or when the sign
 * interval is over. */
static void
sign_step(struct pbft_client *c)
{
	uint64_t now = clock_us(c), since = now - c->last_sign_us;
	uint64_t interval =
	    pbft_client_sign_interval_us(c->sign_interval_us, c->lat_avg_us);

	if (c->npending == 0)
		return;
	if (c->outstanding == c->npending || since >= interval ||
	    c->npending >= REQAUTH_GROUP_MAX) {
		timer_stop(c, &c->sign_t);
		c->last_sign_us = now;
		sign_pending(c);
	} else if (!timer_active(c, &c->sign_t)) {
		timer_start(c, &c->sign_t, now, now + interval - since);
	}
}

static void
sign_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	ev_prepare_stop(loop, w);
	sign_step(w->data);
}

static void
sign_timer_run(struct pbft_client *c)
{
	c->last_sign_us = clock_us(c);
	sign_pending(c);
}

static void
sign_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	sign_timer_run(w->data);
}

int
pbft_client_submit(struct pbft_client *c, const uint8_t *op, size_t len,
    pbft_client_cb cb, void *arg)
{
	struct creq *q;

	if (len > PBFT_OP_BYTES_MAX || c->nfree == 0)
		return -1;
	q = &c->reqs[c->free_slots[c->nfree - 1]];
	q->op = malloc(len ? len : 1);
	if (q->op == NULL)
		return -1;
	c->nfree--;
	memcpy(q->op, op, len);
	q->op_len = (uint32_t)len;
	q->frame = NULL;
	memset(q->votes, 0, c->n * sizeof(*q->votes));
	q->ts = next_ts(c);
	q->used = true;
	q->cb = cb;
	q->arg = arg;
	q->c = c;
	q->sent = false;
	ts_insert(c, q);
	c->pending[c->npending++] = q;
	if (c->loop != NULL)
		ev_prepare_start(c->loop, &c->sign_w);
	else
		c->sign_wanted = true;
	c->outstanding++;
	if (c->opts.pipeline)
		req_start(c, q);
	else
		start_next(c);
	return 0;
}

static void
req_start(struct pbft_client *c, struct creq *q)
{
	uint32_t idx = (uint32_t)(q - c->reqs) + 1;
	uint64_t due;

	q->sent = true;
	q->start_us = clock_us(c);
	q->retrans_ms = c->opts.retransmit_ms;
	q->to_all = c->all_left > 0;
	q->retried = false;
	q->nth = c->nstarted++;
	q->view0 = c->view;
	if (c->all_left > 0)
		c->all_left--;
	q->queued = 0;
	q->retrans_at_us = q->start_us + (uint64_t)q->retrans_ms * 1000;
	q->deadline_us = q->start_us + (uint64_t)c->opts.timeout_ms * 1000;
	q->next = 0;
	q->prev = c->last;
	if (c->last != 0)
		c->reqs[c->last - 1].next = idx;
	else
		c->first = idx;
	c->last = idx;
	due = q->retrans_at_us < q->deadline_us ? q->retrans_at_us
	                                        : q->deadline_us;
	if (!timer_active(c, &c->sweep) || due < c->sweep.at)
		sweep_arm(c, q->start_us, due);
	req_send(c, q, q->to_all);
}

/* ---- lifecycle --------------------------------------------------------- */

struct pbft_client *
pbft_client_new(struct ev_loop *loop, const struct pbft_client_opts *opts,
    char *err, size_t errlen)
{
	struct pbft_client *c = calloc(1, sizeof(*c));
	const struct cluster_cfg *cfg = opts->cfg;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->cfg = cfg;
	c->opts = *opts;
	c->n = cfg->n;
	c->f = cfg->f;
	c->all_run = ALL_RUN_MIN;
	if (c->opts.timeout_ms == 0)
		c->opts.timeout_ms = 30000;
	if (c->opts.retransmit_ms == 0)
		c->opts.retransmit_ms =
		    cfg->request_timeout_ms ? cfg->request_timeout_ms : 1000;
	if (c->opts.max_outstanding == 0)
		c->opts.max_outstanding = 1024;
	c->nreqs_max = c->opts.max_outstanding;
	c->reqs = calloc(c->nreqs_max, sizeof(*c->reqs));
	c->votes = calloc((size_t)c->nreqs_max * c->n, sizeof(*c->votes));
	c->free_slots = calloc(c->nreqs_max, sizeof(*c->free_slots));
	c->ts_mask = 1;
	while (c->ts_mask < 2 * c->nreqs_max)
		c->ts_mask <<= 1;
	c->by_ts = calloc(c->ts_mask, sizeof(*c->by_ts));
	c->ts_mask--;
	c->pending = calloc(c->nreqs_max, sizeof(*c->pending));
	c->signing = calloc(c->nreqs_max, sizeof(*c->signing));
	c->leaves = calloc(REQAUTH_GROUP_MAX, sizeof(*c->leaves));
	c->tree = malloc(sizeof(*c->tree));
	c->arena_len = wire_arena_bytes_for(PBFT_FRAME_BYTES_MAX);
	c->arena = malloc(c->arena_len);
	wbuf_init_dynamic(&c->scratch, PBFT_FRAME_BYTES_MAX);
	ev_prepare_init(&c->sign_w, sign_cb);
	c->sign_w.data = c;
	ev_timer_init(&c->sign_t.w, sign_timer_cb, 0, 0);
	ev_init(&c->sweep.w, sweep_cb);
	c->sweep.w.data = c;
	c->sign_t.w.data = c;
	c->sign_interval_us =
	    opts->sign_interval_us ? opts->sign_interval_us : 2000;
	if (c->reqs == NULL || c->votes == NULL || c->arena == NULL ||
	    c->free_slots == NULL || c->by_ts == NULL || c->pending == NULL ||
	    c->signing == NULL || c->leaves == NULL || c->tree == NULL) {
		snprintf(err, errlen, "out of memory");
		pbft_client_free(c);
		return NULL;
	}
	for (uint32_t i = 0; i < c->nreqs_max; i++) {
		c->free_slots[i] = c->nreqs_max - 1 - i;
		c->reqs[i].votes = c->votes + (size_t)i * c->n;
	}
	c->nfree = c->nreqs_max;
	if (opts->client_id >= cfg->nclients) {
		snprintf(err, errlen, "no client with id %u", opts->client_id);
		pbft_client_free(c);
		return NULL;
	}
	c->links = client_links_new(c, loop, opts, err, errlen);
	if (c->links == NULL) {
		pbft_client_free(c);
		return NULL;
	}
	return c;
}

void
pbft_client_free(struct pbft_client *c)
{
	struct pbft_result res = {.status = PBFT_CLIENT_CANCELLED};

	if (c == NULL)
		return;
	for (uint32_t i = 0; c->reqs != NULL && i < c->nreqs_max; i++)
		if (c->reqs[i].used)
			req_finish(c, &c->reqs[i], &res);
	client_links_free(c->links);
	if (c->loop != NULL)
		ev_prepare_stop(c->loop, &c->sign_w);
	timer_stop(c, &c->sweep);
	timer_stop(c, &c->sign_t);
	wbuf_clear(&c->scratch);
	free(c->arena);
	free(c->reqs);
	free(c->votes);
	free(c->free_slots);
	free(c->by_ts);
	free(c->pending);
	free(c->signing);
	free(c->leaves);
	free(c->tree);
	sig_key_free(c->opts.key);
	free(c);
}

uint32_t
pbft_client_connected(const struct pbft_client *c)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < c->n; i++)
		k += client_link_is_up(c->links, i);
	return k;
}

bool
pbft_client_replica_connected(const struct pbft_client *c, uint32_t i)
{
	return i < c->n && client_link_is_up(c->links, i);
}

uint32_t
pbft_client_outstanding(const struct pbft_client *c)
{
	return c->outstanding;
}

/* ---- without a loop ---------------------------------------------------- */

void
pbft_client_tick(struct pbft_client *c)
{
	uint64_t now = clock_us(c);

	if (c->sign_t.armed && c->sign_t.at <= now) {
		c->sign_t.armed = false;
		sign_timer_run(c);
	}
	if (c->sweep.armed && c->sweep.at <= now) {
		c->sweep.armed = false;
		sweep_run(c);
	}
}

void
pbft_client_before_wait(struct pbft_client *c)
{
	if (!c->sign_wanted)
		return;
	c->sign_wanted = false;
	sign_step(c);
}

uint64_t
pbft_client_next_due(const struct pbft_client *c)
{
	uint64_t due = UINT64_MAX;

	if (c->sign_t.armed)
		due = c->sign_t.at;
	if (c->sweep.armed && c->sweep.at < due)
		due = c->sweep.at;
	return due;
}
