/*
 * xfer.c - state transfer (TOCS section 5.3.2): a replica behind the stable
 * checkpoint fetches its state in chunks from one peer at a time, checks
 * the image's head against the digest 2f+1 checkpoints certified before it
 * asks for any of the tail, stages the tail in the service and installs it
 * only when the whole state matches; and the other side, answering a
 * peer's FETCH_STATE within a byte budget and at most once a period.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "failstop.h"
#include "log.h"
#include "replica_int.h"
#include "sig.h"
#include "wire.h"

/*
 * Asks for the chunk that holds the first image byte not held yet and, once
 * the number of chunks is known, the next few (XFER_WINDOW in flight: one
 * round trip a chunk would cap a transfer at a chunk per round trip).
 */
/* The image offset of the first byte not held: in the head, or past
 * what the service holds of the tail. */
static uint64_t
xfer_want(struct replica *r)
{
	struct xfer *x = &r->xfer;

	return x->head_len == 0 || x->img.len < x->head_len
	    ? x->img.len
	    : x->head_len + r->svc->ops->stage_have(r->svc);
}

static void
xfer_ask(struct replica *r)
{
	struct xfer *x = &r->xfer;
	struct pbft_msg m = {.type = PBFT_MSG_FETCH_STATE};
	uint32_t to;

	x->expect = (uint32_t)(xfer_want(r) / PBFT_CHUNK_BYTES_MAX);
	if (x->asked_to < x->expect)
		x->asked_to = x->expect;
	to = x->count == 0 ? x->expect + 1 : x->expect + XFER_WINDOW;
	if (x->count != 0 && to > x->count)
		to = x->count;
	m.u.fetch_state.seq = x->seq;
	memcpy(m.u.fetch_state.digest, x->digest, PBFT_DIGEST_LEN);
	m.u.fetch_state.replica = r->id;
	for (; x->asked_to < to; x->asked_to++) {
		m.u.fetch_state.index = x->asked_to;
		send_to(r, x->peer, &m, false);
	}
	x->asked_up = net_peer_up(r->net, x->peer);
	x->idle_ticks = 0;
}

/* Asks peer p, for the head from its start. */
static void
xfer_from(struct replica *r, uint32_t p)
{
	struct xfer *x = &r->xfer;

	x->peer = p;
	x->count = 0;
	x->total_len = 0;
	x->head_len = 0;
	x->head_ok = false;
	x->asked_to = 0;
	wbuf_reset(&x->img);
	xfer_ask(r);
}

/* Remembers peer p as a liar, or (its state installed) forgets that. */
static void
xfer_liar(struct replica *r, uint32_t p, bool lied)
{
	struct xfer *x = &r->xfer;
	uint64_t was = x->liars;

	if (lied)
		x->liars |= 1ULL << p;
	else
		x->liars &= ~(1ULL << p);
	if (x->liars != was && store_liars_write(r->store, x->liars) == -1)
		log_warn("%s: cannot record the replicas caught lying",
		    store_dir(r->store));
}

/*
 * Asks the next peer, for the head from its start. A peer whose bytes were
 * part of a state that failed a check (bad) is avoided until the transfer
 * ends; so is one that was silent (connected, no answer for a while) for
 * two of the checkpoints fetched. One silent for one checkpoint only is
 * skipped for that one: it may have moved on to a later checkpoint, which
 * it will serve. So a faulty peer cannot make us drop what was staged more
 * than once a transfer, nor wait for it more than twice, however often the
 * checkpoint fetched changes. When every peer is avoided, all are tried
 * again.
 */
void
xfer_next_peer(struct replica *r, bool bad)
{
	struct xfer *x = &r->xfer;
	uint32_t n = r->cfg->n, p = x->peer;
	uint64_t bit = 1ULL << p; /* n <= PBFT_REPLICAS_MAX = 64 */

	if (bad) {
		r->svc->ops->stage_drop(r->svc);
		x->failures++;
		x->avoid |= x->staged_from | bit;
		x->staged_from = 0;
		xfer_liar(r, p, true);
		log_warnx("state from replica %u does not match the certified "
		          "digest of checkpoint %llu; asking another replica",
		    x->peer, (unsigned long long)x->seq);
	} else if (p != r->id && x->asked_up) {
		if (x->silent_once & bit)
			x->avoid |= bit;
		x->silent_once |= bit;
		x->silent_now |= bit;
	}
	for (uint32_t k = 0; k < 2 * n; k++) {
		p = (p + 1) % n;
		if (k == n - 1)
			x->avoid = x->silent_now = 0; /* try them all again */
		if (p != r->id && !((x->avoid | x->silent_now) & 1ULL << p))
			break;
	}
	xfer_from(r, p);
}

/* A replica id in [0, n) at random (the environment's, if it has one). */
static uint32_t
xfer_random(const struct replica *r, uint32_t n)
{
	uint32_t v;

	if (r->opts.random != NULL)
		v = r->opts.random(r->opts.env_ctx);
	else if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint32_t)rand();
	return v % n;
}

void
do_fetch_state(struct replica *r, const struct pbft_action *a)
{
	struct xfer *x = &r->xfer;

	if (x->active && x->seq >= a->seq)
		return;
	log_info("behind the cluster: fetching the state of checkpoint %llu "
	         "(%llu bytes of its tail held)",
	    (unsigned long long)a->seq,
	    (unsigned long long)r->svc->ops->stage_have(r->svc));
	x->seq = a->seq;
	memcpy(x->digest, a->digest, PBFT_DIGEST_LEN);
	if (!x->active) {
		x->fetched = 0;
		x->began = replica_now(r);
		x->avoid = x->liars;
		x->silent_once = 0;
		x->staged_from = 0;
	}
	x->active = true;
	x->silent_now = 0;
#if PBFT_FAULT_INJECTION
	{
		uint32_t p = fault_xfer_first(r->fault);

		if (p != UINT32_MAX && p != r->id && !(x->avoid & 1ULL << p)) {
			xfer_from(r, p);
			return;
		}
	}
#endif
	/* From a peer chosen at random, for a later checkpoint too (the
	 * staged tail stays): a liar cannot count on being asked first. */
	x->peer = xfer_random(r, r->cfg->n);
	x->asked_up = false;
	xfer_next_peer(r, false);
}

static uint32_t
le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* Splits an image into client table, reply table and service image. */
int
image_split(const uint8_t *img, size_t len, const uint8_t **ct, size_t *ctlen,
    const uint8_t **rp, size_t *rplen, const uint8_t **svc, size_t *svclen)
{
	size_t n, m;

	if (len < 4 || (n = le32_at(img)) > len - 4 || len - 4 - n < 4 ||
	    (m = le32_at(img + 4 + n)) > len - 8 - n)
		return -1;
	*ct = img + 4;
	*ctlen = n;
	*rp = img + 8 + n;
	*rplen = m;
	*svc = img + 8 + n + m;
	*svclen = len - 8 - n - m;
	return 0;
}

/*
 * Checks the fetched head against the certified digest, before any of its
 * tail is fetched: the head names all the digest covers (service.h), so
 * the tail it names is the certified one, and the service takes no byte
 * past it. One peer's word is never enough: the digest was certified by
 * 2f+1 checkpoint messages, so a lying peer is caught here, or by the
 * service's checks as its tail comes, and another is asked. 0 or -1.
 */
static int
xfer_head_check(struct replica *r)
{
	struct xfer *x = &r->xfer;
	const uint8_t *ct, *rp, *head;
	size_t ctlen, rplen, headlen;
	uint8_t sd[PBFT_DIGEST_LEN], want[PBFT_DIGEST_LEN];

	if (image_split(x->img.p, x->img.len, &ct, &ctlen, &rp, &rplen, &head,
	        &headlen) == -1 ||
	    replies_load(r->replies, r->cfg->nclients, rp, rplen, false) ==
	        -1 ||
	    r->svc->ops->stage_check(r->svc, head, headlen, x->head_sd) == -1)
		return -1;
	/* The digest the replicas that took the checkpoint handed their
	 * cores: the service's and the reply table's (do_take_checkpoint). */
	replies_fold(r->crypto, x->head_sd, rp, rplen, sd);
	pbft_state_digest(r->crypto, sd, ct, ctlen, want);
	if (memcmp(want, x->digest, PBFT_DIGEST_LEN) != 0 &&
	    !(r->opts.test_flags & REPLICA_TEST_XFER_NO_DIGEST))
		return -1;
	x->head_ok = true;
	return 0;
}

/* Installs the checked head with the tail staged (which the service
 * refuses unless it ends exactly as the head names it). */
static void
xfer_finish(struct replica *r)
{
	struct xfer *x = &r->xfer;
	const uint8_t *ct, *rp, *head;
	size_t ctlen, rplen, headlen;
	struct pbft_event ev = {.type = PBFT_EV_STATE_INSTALLED};

	/* No snapshot may be in the works while the state is replaced. */
	bg_settle(r);
	if (!x->head_ok ||
	    image_split(x->img.p, x->img.len, &ct, &ctlen, &rp, &rplen, &head,
	        &headlen) == -1 ||
	    r->svc->ops->stage_install(r->svc) == -1) {
		xfer_next_peer(r, true);
		return;
	}
	/* The checkpoint's replies (checked with the head): the cache ends
	 * as the state does; executing past it fills it as before. */
	(void)replies_load(r->replies, r->cfg->nclients, rp, rplen, true);
	log_info("state of checkpoint %llu installed (%llu bytes, %llu of "
	         "them fetched, from replica %u, in %.0f ms)",
	    (unsigned long long)x->seq, (unsigned long long)x->total_len,
	    (unsigned long long)(x->fetched + x->head_len), x->peer,
	    (replica_now(r) - x->began) * 1e3);
	/* Images of older checkpoints referred to the replaced state. */
	for (int i = 0; i < SNAPS_MAX; i++)
		if (r->snaps[i].seq <= x->seq)
			r->snaps[i].seq = 0;
	{
		struct snap *s = snap_slot(r);

		s->seq = x->seq;
		if (snap_build(r, s, ct, ctlen) == -1 ||
		    store_snapshot_write(
		        r->store, s->seq, s->img.p, s->img.len) == -1)
			log_warnx("installed state not written to disk");
	}
	if (r->stable_wait <= x->seq)
		r->stable_wait = 0; /* its snapshot is this one's past */
	xfer_liar(r, x->peer, false);
	x->active = false;
	x->completed++;
	ev.seq = x->seq;
	memcpy(ev.digest, x->head_sd, PBFT_DIGEST_LEN);
	ev.client_table = ct;
	ev.client_table_len = ctlen;
	replica_step(r, &ev);
	wbuf_reset(&x->img);
}

/*
 * Learns where the head ends from its first bytes: the client table's
 * and the reply table's lengths, then the service's word for its tail's. 0
 * (known or not yet), -1 if the image cannot be right.
 */
static int
xfer_head_len(struct replica *r)
{
	struct xfer *x = &r->xfer;
	const uint8_t *ct, *rp, *head;
	size_t ctlen, rplen, headlen;
	uint64_t tail;
	int rc;

	if (x->img.len < 4)
		return 0;
	if (image_split(x->img.p, x->img.len, &ct, &ctlen, &rp, &rplen, &head,
	        &headlen) == -1 ||
	    (rc = r->svc->ops->head_tail(head, headlen, &tail)) == 1)
		return x->img.len < x->total_len ? 0 : -1; /* more to come? */
	if (rc == -1 || tail > x->total_len - (uint64_t)(head - x->img.p) ||
	    x->total_len - tail > STATE_HEAD_BYTES_MAX)
		return -1;
	x->head_len = x->total_len - tail;
	return 0;
}

/*
 * Takes the bytes of chunk index at image offset off that are the next
 * ones wanted: the head's into img, the tail's to the service. 0 or -1.
 */
static int
xfer_take(struct replica *r, uint64_t off, const uint8_t *p, size_t len)
{
	struct xfer *x = &r->xfer;
	uint64_t have, at;

	if (x->head_len == 0 || x->img.len < x->head_len) {
		size_t n = len;

		if (off != x->img.len)
			return 0; /* not what was asked: ignore */
		if (x->head_len != 0 && n > x->head_len - x->img.len)
			n = (size_t)(x->head_len - x->img.len);
		wbuf_put_bytes(&x->img, p, n);
		if (wbuf_failed(&x->img))
			return -1; /* a head beyond STATE_HEAD_BYTES_MAX */
		if (x->head_len == 0 && xfer_head_len(r) == -1)
			return -1;
		if (x->head_len == 0 || x->img.len < x->head_len)
			return 0;
		x->img.len = x->head_len; /* the rest is tail */
		if (xfer_head_check(r) == -1)
			return -1;
	}
	/* Tail bytes: from image offset at, of which the service holds
	 * the first have. */
	at = off > x->head_len ? off : x->head_len;
	have = x->head_len + r->svc->ops->stage_have(r->svc);
	if (at > have || off + len <= have)
		return 0;
	x->fetched += off + len - have;
	x->bytes_total += off + len - have;
	x->staged_from |= 1ULL << x->peer;
	return r->svc->ops->stage_put(
	    r->svc, p + (have - off), (size_t)(off + len - have));
}

void
on_state_chunk(
    struct replica *r, uint32_t from, const struct pbft_state_chunk *c)
{
	struct xfer *x = &r->xfer;
	uint64_t off = (uint64_t)c->index * PBFT_CHUNK_BYTES_MAX;

	if (!x->active || from != x->peer || c->seq != x->seq ||
	    memcmp(c->digest, x->digest, PBFT_DIGEST_LEN) != 0 ||
	    c->index != x->expect)
		return; /* stale, unasked or no longer wanted: ignore */
	if (x->count == 0) {
		if (c->count == 0 ||
		    c->count !=
		        (c->total_len + PBFT_CHUNK_BYTES_MAX - 1) /
		                PBFT_CHUNK_BYTES_MAX +
		            (c->total_len == 0)) {
			xfer_next_peer(r, true);
			return;
		}
		x->count = c->count;
		x->total_len = c->total_len;
	}
	if (c->count != x->count || c->total_len != x->total_len ||
	    c->index >= x->count ||
	    c->data_len !=
	        (x->total_len - off < PBFT_CHUNK_BYTES_MAX
	                ? x->total_len - off
	                : PBFT_CHUNK_BYTES_MAX) ||
	    xfer_take(r, off, c->data, c->data_len) == -1) {
		xfer_next_peer(r, true);
		return;
	}
#if PBFT_FAULT_INJECTION
	if (c->index + 1 == (x->count + 1) / 2)
		fault_point(r->fault, FAULT_STATE_TRANSFER);
#endif
	if (x->head_len != 0 && xfer_want(r) >= x->total_len) {
		xfer_finish(r);
		return;
	}
	xfer_ask(r);
}

/*
 * A tick of a transfer: asks again what was asked before the peer's channel
 * was up, or what got no answer for a while (the peer's budget for us may
 * have run out); a peer silent for a second is left for the next.
 */
void
xfer_tick(struct replica *r)
{
	struct xfer *x = &r->xfer;
	uint32_t idle = x->idle_ticks + 1;

	if (!x->asked_up && net_peer_up(r->net, x->peer)) {
		/* Asked before its channel was up: those were lost. */
		x->asked_to = x->expect;
		xfer_ask(r);
	} else if (idle > XFER_RETRY_TICKS) {
		xfer_next_peer(r, false);
	} else if (idle % XFER_RESEND_TICKS == 0) {
		x->asked_to = x->expect;
		xfer_ask(r);
		x->idle_ticks = idle;
	} else {
		x->idle_ticks = idle;
	}
}

/*
 * Whether chunk index of checkpoint seq may go to peer from: not if it was
 * answered within a retransmission period. A correct replica asks each
 * chunk once, in order, and again only when no answer came (the answer
 * was sent: it arrives, or the channel broke); one asking the same chunks
 * in a loop gets the state once a period, not as often as it asks.
 */
static uint64_t
serve_period(const struct replica *r)
{
	uint64_t period = r->cfg->view_change_timeout_ms / REPLICA_TICK_MS / 4;

	return period < 5 ? 5 : period; /* as the core's retransmit_ticks */
}

bool
serve_again_ok(struct replica *r, uint32_t from, uint64_t seq, uint32_t index)
{
	return r->served[from].seq != seq || index >= r->served[from].hi ||
	    r->ticks - r->served[from].at >= serve_period(r);
}

static void
serve_note(struct replica *r, uint32_t from, uint64_t seq, uint32_t index)
{
	if (r->served[from].seq != seq ||
	    r->ticks - r->served[from].at >= serve_period(r))
		r->served[from].hi = 0;
	r->served[from].seq = seq;
	if (index + 1 > r->served[from].hi)
		r->served[from].hi = index + 1;
	r->served[from].at = r->ticks;
}

void
on_fetch_state(
    struct replica *r, uint32_t from, const struct pbft_fetch_state *f)
{
	struct snap *s = snap_find(r, f->seq);
	struct pbft_msg m = {.type = PBFT_MSG_STATE_CHUNK};
	struct pbft_state_chunk *c = &m.u.state_chunk;
	uint64_t off, total;

	if (s == NULL)
		return; /* not here (any more): the asker tries another */
	if (from >= r->cfg->n || r->serve_credit[from] < PBFT_CHUNK_BYTES_MAX ||
	    net_peer_queued(r->net, from) >= XFER_SERVE_BURST ||
	    !serve_again_ok(r, from, f->seq, f->index)) {
		r->serve_refused++; /* an honest asker asks again */
		return;
	}
	c->seq = f->seq;
	memcpy(c->digest, f->digest, PBFT_DIGEST_LEN);
	total = s->img.len + s->tail_len;
	c->count = (uint32_t)((total + PBFT_CHUNK_BYTES_MAX - 1) /
	    PBFT_CHUNK_BYTES_MAX);
	if (c->count == 0)
		c->count = 1;
	c->total_len = total;
	c->replica = r->id;
#if PBFT_FAULT_INJECTION
	c->index = f->index;
	if (fault_lying_chunk(r->fault, c, s->img.p, s->img.len, s->tail_len)) {
		send_to(r, from, &m, false);
		return;
	}
#endif
	if (f->index >= c->count)
		return;
	c->index = f->index;
	off = (uint64_t)f->index * PBFT_CHUNK_BYTES_MAX;
	c->data_len = (uint32_t)(total - off < PBFT_CHUNK_BYTES_MAX
	        ? total - off
	        : PBFT_CHUNK_BYTES_MAX);
	if (off + c->data_len <= s->img.len) {
		c->data = s->img.p + off;
	} else {
		/* Part or all of it from the service's file. */
		size_t head = off < s->img.len ? (size_t)(s->img.len - off) : 0;
		uint64_t toff = off + head - s->img.len;

		if (r->chunk_buf == NULL &&
		    (r->chunk_buf = malloc(PBFT_CHUNK_BYTES_MAX)) == NULL)
			return;
		if (head > 0)
			memcpy(r->chunk_buf, s->img.p + off, head);
		if (r->svc->ops->tail_read(r->svc, toff, r->chunk_buf + head,
		        c->data_len - head) == -1) {
			log_warnx("checkpoint %llu: cannot read its state",
			    (unsigned long long)s->seq);
			return;
		}
		c->data = r->chunk_buf;
	}
#if PBFT_FAULT_INJECTION
	if (fault_corrupt_chunks(r->fault) && c->data_len > 0) {
		static uint8_t bad[PBFT_CHUNK_BYTES_MAX];

		memcpy(bad, c->data, c->data_len);
		bad[c->data_len / 2] ^= 0x5a;
		c->data = bad;
	}
#endif
	r->serve_credit[from] -= c->data_len;
	serve_note(r, from, f->seq, c->index);
	send_to(r, from, &m, false);
}
