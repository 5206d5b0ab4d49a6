/*
 * wire.c - frames for every pbft message; see wire.h for the contract.
 *
 * Body encodings (all integers little-endian):
 *   HELLO        u8 role, u32 id, 32 eph_pub, 32 nonce
 *   AUTH         64 sig
 *   REQUEST      u32 client, u64 timestamp, u32 op_len, op, u16 auth_len,
 *                auth
 *   REPLY        u64 view, u64 timestamp, u32 client, u32 replica, u64 seq,
 *                u8 status, u32 result_len, result
 *   PREPREPARE   u64 view, u64 seq, 32 digest, u32 replica,
 *                u32 batch_len, batch
 *   PREPARE,
 *   COMMIT       u64 view, u64 seq, 32 digest, u32 replica
 *   CHECKPOINT   u64 seq, 32 digest, u32 replica, 64 sig
 *   VIEW_CHANGE  u64 view, u64 stable_seq, 32 stable_digest,
 *                u32 nckpt, nckpt x (u32 replica, 64 sig),
 *                u32 nprepared, nprepared x (u64 view, u64 seq, 32 digest),
 *                u32 npreprepared, npreprepared x (u64 view, u64 seq,
 *                  32 digest),
 *                u32 replica, 64 sig
 *   NEW_VIEW     u64 view, u32 nvc, nvc x VIEW_CHANGE body,
 *                u32 npp, npp x (u64 seq, 32 digest),
 *                u32 replica, 64 sig
 *   FETCH_BATCH  u64 seq, 32 digest, u32 replica
 *   BATCH        u64 seq, 32 digest, u32 replica, u32 batch_len, batch
 *   FETCH_STATE  u64 seq, 32 digest, u32 index, u32 replica
 *   STATE_CHUNK  u64 seq, 32 digest, u32 index, u32 count, u64 total_len,
 *                u32 replica, u32 data_len, data
 *   ANNOUNCE     u32 replica, u64 epoch, u8 host_len, host, u16 port, 64 sig
 *   STATUS       u64 view, u64 low, u64 last_exec, u32 replica, u8 flags
 */
#include "wire.h"

#include <string.h>

#define SIGPAIR_BYTES (4 + PBFT_SIG_LEN)
#define VCE_BYTES (8 + 8 + PBFT_DIGEST_LEN)
#define VC_MIN_BYTES (8 + 8 + PBFT_DIGEST_LEN + 4 + 4 + 4 + 4 + PBFT_SIG_LEN)
#define NVPP_BYTES (8 + PBFT_DIGEST_LEN)
#define VC_Q_MAX (PBFT_WINDOW_MAX * PBFT_Q_PER_SEQ)
#define REQ_MIN_BYTES (4 + 8 + 4 + 2)
#define SHARE_BYTES 4 /* a compact batch's head and tail counts */

const char *
wire_strerror(enum wire_err e)
{
	static const char *names[] = {"ok", "truncated", "too-big", "trailing",
	    "version", "type", "value", "nomem"};

	return (unsigned)e < WIRE_E_COUNT ? names[e] : "unknown";
}

bool
wire_host_valid(const uint8_t *host, size_t len)
{
	if (len == 0 || len > PBFT_HOST_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = host[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		        ch == ':' || ch == '_' || ch == '%'))
			return false;
	}
	return true;
}

/*
 * Decoded arrays: a sigpair is 68 bytes both ways; a cert is 116 encoded
 * bytes at least and sizeof(struct) is below 2x that; a view change
 * (>= 128 bytes) likewise; an O entry is 104 bytes. Factor 2 plus
 * alignment slack is therefore always enough.
 */
size_t
wire_arena_bytes_for(size_t frame_len)
{
	return 2 * frame_len + 4096;
}

static void *
arena_alloc(struct wire_arena *a, size_t n, size_t size)
{
	size_t off = (a->used + 15) & ~(size_t)15;
	void *p;

	if (n != 0 && size > (a->cap - off) / n)
		return NULL;
	if (off > a->cap)
		return NULL;
	p = a->base + off;
	a->used = off + n * size;
	return p;
}

/* ---- encoding ----------------------------------------------------------- */

static void
put_sigpairs(struct wbuf *wb, const struct pbft_sigpair *v, uint32_t n)
{
	wbuf_put_u32(wb, n);
	for (uint32_t i = 0; i < n; i++) {
		wbuf_put_u32(wb, v[i].replica);
		wbuf_put_bytes(wb, v[i].sig, PBFT_SIG_LEN);
	}
}

static void
put_vc_entries(struct wbuf *wb, const struct pbft_vc_entry *e, uint32_t n)
{
	wbuf_put_u32(wb, n);
	for (uint32_t i = 0; i < n; i++) {
		wbuf_put_u64(wb, e[i].view);
		wbuf_put_u64(wb, e[i].seq);
		wbuf_put_bytes(wb, e[i].digest, PBFT_DIGEST_LEN);
	}
}

static int
put_view_change(
    struct wbuf *wb, const struct pbft_view_change *vc, bool with_sig)
{
	if (vc->nckpt > PBFT_REPLICAS_MAX || vc->nprepared > PBFT_WINDOW_MAX ||
	    vc->npreprepared > VC_Q_MAX)
		return -1;
	wbuf_put_u64(wb, vc->view);
	wbuf_put_u64(wb, vc->stable_seq);
	wbuf_put_bytes(wb, vc->stable_digest, PBFT_DIGEST_LEN);
	put_sigpairs(wb, vc->ckpt, vc->nckpt);
	put_vc_entries(wb, vc->prepared, vc->nprepared);
	put_vc_entries(wb, vc->preprepared, vc->npreprepared);
	wbuf_put_u32(wb, vc->replica);
	if (with_sig)
		wbuf_put_bytes(wb, vc->sig, PBFT_SIG_LEN);
	return 0;
}

static int
put_new_view(struct wbuf *wb, const struct pbft_new_view *nv, bool with_sig)
{
	if (nv->nvc > PBFT_REPLICAS_MAX || nv->npp > PBFT_WINDOW_MAX)
		return -1;
	wbuf_put_u64(wb, nv->view);
	wbuf_put_u32(wb, nv->nvc);
	for (uint32_t i = 0; i < nv->nvc; i++)
		if (put_view_change(wb, &nv->vcs[i], true) == -1)
			return -1;
	wbuf_put_u32(wb, nv->npp);
	for (uint32_t i = 0; i < nv->npp; i++) {
		wbuf_put_u64(wb, nv->pps[i].seq);
		wbuf_put_bytes(wb, nv->pps[i].digest, PBFT_DIGEST_LEN);
	}
	wbuf_put_u32(wb, nv->replica);
	if (with_sig)
		wbuf_put_bytes(wb, nv->sig, PBFT_SIG_LEN);
	return 0;
}

static void
put_vote(struct wbuf *wb, const struct pbft_vote *v)
{
	wbuf_put_u64(wb, v->view);
	wbuf_put_u64(wb, v->seq);
	wbuf_put_bytes(wb, v->digest, PBFT_DIGEST_LEN);
	wbuf_put_u32(wb, v->replica);
}

/*
 * How a request of a compact batch (wire.h) builds its authenticator from
 * the previous one's, which is prev_len bytes long.
 */
struct share {
	size_t prev_len;
	uint16_t head, tail;
};

/* One request; in a compact batch (sh), the literal bytes only. */
static void
put_request(
    struct wbuf *wb, const struct pbft_request *r, const struct share *sh)
{
	size_t head = sh != NULL ? sh->head : 0,
	       tail = sh != NULL ? sh->tail : 0;

	wbuf_put_u32(wb, r->client);
	wbuf_put_u64(wb, r->timestamp);
	wbuf_put_u32(wb, r->op_len);
	wbuf_put_bytes(wb, r->op, r->op_len);
	wbuf_put_u16(wb, r->auth_len);
	if (sh != NULL) {
		wbuf_put_u16(wb, sh->head);
		wbuf_put_u16(wb, sh->tail);
	}
	if (r->auth_len > head + tail)
		wbuf_put_bytes(wb, r->auth + head, r->auth_len - head - tail);
}

/*
 * Each message type's body, with or without its signature field (for
 * signing); -1 if the message breaks a bound. The table after the decoders
 * maps a type to these.
 */
static int
put_hello(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	if (m->u.hello.role != PBFT_ROLE_REPLICA &&
	    m->u.hello.role != PBFT_ROLE_CLIENT)
		return -1;
	wbuf_put_u8(wb, m->u.hello.role);
	wbuf_put_u32(wb, m->u.hello.id);
	wbuf_put_bytes(wb, m->u.hello.eph_pub, 32);
	wbuf_put_bytes(wb, m->u.hello.nonce, 32);
	return 0;
}

static int
put_auth(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	wbuf_put_bytes(wb, m->u.auth.sig, PBFT_SIG_LEN);
	return 0;
}

static int
put_request_msg(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	if (m->u.request.op_len > PBFT_OP_BYTES_MAX ||
	    m->u.request.auth_len > PBFT_AUTH_BYTES_MAX)
		return -1;
	put_request(wb, &m->u.request, NULL);
	return 0;
}

static int
put_reply(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	const struct pbft_reply *r = &m->u.reply;

	if (r->result_len > PBFT_RESULT_BYTES_MAX)
		return -1;
	wbuf_put_u64(wb, r->view);
	wbuf_put_u64(wb, r->timestamp);
	wbuf_put_u32(wb, r->client);
	wbuf_put_u32(wb, r->replica);
	wbuf_put_u64(wb, r->seq);
	wbuf_put_u8(wb, r->status);
	wbuf_put_u32(wb, r->result_len);
	wbuf_put_bytes(wb, r->result, r->result_len);
	return 0;
}

static int
put_preprepare(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	const struct pbft_preprepare *p = &m->u.preprepare;

	if (p->batch_len > PBFT_BATCH_BYTES_MAX)
		return -1;
	wbuf_put_u64(wb, p->view);
	wbuf_put_u64(wb, p->seq);
	wbuf_put_bytes(wb, p->digest, PBFT_DIGEST_LEN);
	wbuf_put_u32(wb, p->replica);
	wbuf_put_u32(wb, p->batch_len);
	wbuf_put_bytes(wb, p->batch, p->batch_len);
	return 0;
}

/* PREPARE and COMMIT share the vote's encoding. */
static int
put_prepare(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	put_vote(wb, &m->u.prepare);
	return 0;
}

static int
put_commit(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	put_vote(wb, &m->u.commit);
	return 0;
}

static int
put_checkpoint(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	wbuf_put_u64(wb, m->u.checkpoint.seq);
	wbuf_put_bytes(wb, m->u.checkpoint.digest, PBFT_DIGEST_LEN);
	wbuf_put_u32(wb, m->u.checkpoint.replica);
	if (with_sig)
		wbuf_put_bytes(wb, m->u.checkpoint.sig, PBFT_SIG_LEN);
	return 0;
}

static int
put_view_change_msg(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	return put_view_change(wb, &m->u.view_change, with_sig);
}

static int
put_new_view_msg(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	return put_new_view(wb, &m->u.new_view, with_sig);
}

static int
put_status(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	wbuf_put_u64(wb, m->u.status.view);
	wbuf_put_u64(wb, m->u.status.low);
	wbuf_put_u64(wb, m->u.status.last_exec);
	wbuf_put_u32(wb, m->u.status.replica);
	wbuf_put_u8(wb, m->u.status.flags);
	return 0;
}

static int
put_fetch_batch(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	wbuf_put_u64(wb, m->u.fetch_batch.seq);
	wbuf_put_bytes(wb, m->u.fetch_batch.digest, PBFT_DIGEST_LEN);
	wbuf_put_u32(wb, m->u.fetch_batch.replica);
	return 0;
}

static int
put_batch(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	const struct pbft_batch *b = &m->u.batch;

	if (b->batch_len > PBFT_BATCH_BYTES_MAX)
		return -1;
	wbuf_put_u64(wb, b->seq);
	wbuf_put_bytes(wb, b->digest, PBFT_DIGEST_LEN);
	wbuf_put_u32(wb, b->replica);
	wbuf_put_u32(wb, b->batch_len);
	wbuf_put_bytes(wb, b->batch, b->batch_len);
	return 0;
}

static int
put_fetch_state(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	wbuf_put_u64(wb, m->u.fetch_state.seq);
	wbuf_put_bytes(wb, m->u.fetch_state.digest, PBFT_DIGEST_LEN);
	wbuf_put_u32(wb, m->u.fetch_state.index);
	wbuf_put_u32(wb, m->u.fetch_state.replica);
	return 0;
}

static int
put_state_chunk(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	const struct pbft_state_chunk *c = &m->u.state_chunk;

	if (c->data_len > PBFT_CHUNK_BYTES_MAX)
		return -1;
	wbuf_put_u64(wb, c->seq);
	wbuf_put_bytes(wb, c->digest, PBFT_DIGEST_LEN);
	wbuf_put_u32(wb, c->index);
	wbuf_put_u32(wb, c->count);
	wbuf_put_u64(wb, c->total_len);
	wbuf_put_u32(wb, c->replica);
	wbuf_put_u32(wb, c->data_len);
	wbuf_put_bytes(wb, c->data, c->data_len);
	return 0;
}

static int
put_announce(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	const struct pbft_announce *a = &m->u.announce;

	if (!wire_host_valid(a->host, a->host_len) || a->port == 0)
		return -1;
	wbuf_put_u32(wb, a->replica);
	wbuf_put_u64(wb, a->epoch);
	wbuf_put_u8(wb, a->host_len);
	wbuf_put_bytes(wb, a->host, a->host_len);
	wbuf_put_u16(wb, a->port);
	if (with_sig)
		wbuf_put_bytes(wb, a->sig, PBFT_SIG_LEN);
	return 0;
}

/* A message type: its name, body encoder and body decoder (wire_types). */
struct wire_type {
	const char *name;
	int (*put)(struct wbuf *wb, const struct pbft_msg *m, bool with_sig);
	enum wire_err (*get)(
	    struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a);
};

static const struct wire_type *wire_type(unsigned type);

static int
put_body(struct wbuf *wb, const struct pbft_msg *m, bool with_sig)
{
	const struct wire_type *t = wire_type(m->type);

	return t != NULL ? t->put(wb, m, with_sig) : -1;
}

int
wire_encode(struct wbuf *wb, const struct pbft_msg *msg)
{
	size_t start = wb->len;

	wbuf_put_u32(wb, 0);
	wbuf_put_u8(wb, PBFT_WIRE_VERSION);
	wbuf_put_u8(wb, (uint8_t)msg->type);
	if (put_body(wb, msg, true) == -1 || wbuf_failed(wb) ||
	    wb->len - start > PBFT_FRAME_BYTES_MAX) {
		if (!wbuf_failed(wb))
			wb->len = start;
		return -1;
	}
	wbuf_patch_u32(wb, start, (uint32_t)(wb->len - start - 4));
	return wbuf_failed(wb) ? -1 : 0;
}

int
wire_signed_bytes(struct wbuf *wb, const struct pbft_msg *msg)
{
	wbuf_put_u8(wb, (uint8_t)msg->type);
	if (put_body(wb, msg, false) == -1)
		return -1;
	return wbuf_failed(wb) ? -1 : 0;
}

int
wire_signed_checkpoint(struct wbuf *wb, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], uint32_t replica)
{
	struct pbft_msg m = {.type = PBFT_MSG_CHECKPOINT};

	m.u.checkpoint.seq = seq;
	memcpy(m.u.checkpoint.digest, digest, PBFT_DIGEST_LEN);
	m.u.checkpoint.replica = replica;
	return wire_signed_bytes(wb, &m);
}

int
wire_signed_request(struct wbuf *wb, const struct pbft_request *req)
{
	if (req->op_len > PBFT_OP_BYTES_MAX)
		return -1;
	wbuf_put_u8(wb, PBFT_MSG_REQUEST);
	wbuf_put_u32(wb, req->client);
	wbuf_put_u64(wb, req->timestamp);
	wbuf_put_u32(wb, req->op_len);
	wbuf_put_bytes(wb, req->op, req->op_len);
	return wbuf_failed(wb) ? -1 : 0;
}

size_t
wire_request_bytes(const struct pbft_request *req)
{
	return REQ_MIN_BYTES + SHARE_BYTES + req->op_len + req->auth_len;
}

/*
 * Bytes that a and b share at their start (or end), at most max; eight at a
 * time while they can (the shared run is a signature, MACs and hashes).
 */
static size_t
common_run(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    size_t max, bool from_end)
{
	size_t n = 0, lim = alen < blen ? alen : blen;

	if (lim > max)
		lim = max;
	if (from_end) {
		while (n + 8 <= lim &&
		    memcmp(a + alen - n - 8, b + blen - n - 8, 8) == 0)
			n += 8;
		while (n < lim && a[alen - 1 - n] == b[blen - 1 - n])
			n++;
	} else {
		while (n + 8 <= lim && memcmp(a + n, b + n, 8) == 0)
			n += 8;
		while (n < lim && a[n] == b[n])
			n++;
	}
	return n;
}

int
wire_encode_batch(
    struct wbuf *wb, const struct pbft_request *reqs, uint32_t count)
{
	if (count > PBFT_BATCH_REQS_MAX)
		return -1;
	wbuf_put_u32(wb, count | WIRE_BATCH_COMPACT);
	for (uint32_t i = 0; i < count; i++) {
		const struct pbft_request *r = &reqs[i];
		struct share sh = {0};

		if (r->op_len > PBFT_OP_BYTES_MAX ||
		    r->auth_len > PBFT_AUTH_BYTES_MAX)
			return -1;
		if (i > 0) {
			const struct pbft_request *q = &reqs[i - 1];

			sh.head = (uint16_t)common_run(r->auth, r->auth_len,
			    q->auth, q->auth_len, r->auth_len, false);
			sh.tail = (uint16_t)common_run(r->auth, r->auth_len,
			    q->auth, q->auth_len, r->auth_len - sh.head, true);
		}
		put_request(wb, r, &sh);
	}
	return wbuf_failed(wb) ? -1 : 0;
}

/* ---- decoding ----------------------------------------------------------- */

#define NEED(expr)                                                             \
	do {                                                                   \
		if ((expr) == -1)                                              \
			return WIRE_E_TRUNCATED;                               \
	} while (0)

/* One request; in a compact batch (sh), auth is the literal bytes only. */
static enum wire_err
get_request(struct rbuf *rb, struct pbft_request *r, struct share *sh)
{
	size_t lit;

	NEED(rbuf_get_u32(rb, &r->client));
	NEED(rbuf_get_u64(rb, &r->timestamp));
	NEED(rbuf_get_u32(rb, &r->op_len));
	if (r->op_len > PBFT_OP_BYTES_MAX)
		return WIRE_E_TOO_BIG;
	NEED(rbuf_get_ref(rb, &r->op, r->op_len));
	NEED(rbuf_get_u16(rb, &r->auth_len));
	if (sh != NULL) {
		NEED(rbuf_get_u16(rb, &sh->head));
		NEED(rbuf_get_u16(rb, &sh->tail));
	}
	if (r->auth_len > PBFT_AUTH_BYTES_MAX)
		return WIRE_E_TOO_BIG;
	lit = r->auth_len;
	if (sh != NULL) {
		if (sh->head > sh->prev_len || sh->tail > sh->prev_len ||
		    (size_t)sh->head + sh->tail > r->auth_len)
			return WIRE_E_VALUE;
		lit -= (size_t)sh->head + sh->tail;
	}
	NEED(rbuf_get_ref(rb, &r->auth, lit));
	if (r->client >= PBFT_CLIENTS_MAX)
		return WIRE_E_VALUE;
	return WIRE_OK;
}

static enum wire_err
get_replica(struct rbuf *rb, uint32_t *out)
{
	NEED(rbuf_get_u32(rb, out));
	return *out < PBFT_REPLICAS_MAX ? WIRE_OK : WIRE_E_VALUE;
}

/* Reads a count and checks it against a limit and the bytes left. */
static enum wire_err
get_count(struct rbuf *rb, uint32_t *n, uint32_t max, size_t min_each)
{
	NEED(rbuf_get_u32(rb, n));
	if (*n > max)
		return WIRE_E_TOO_BIG;
	if ((uint64_t)*n * min_each > rbuf_left(rb))
		return WIRE_E_TRUNCATED;
	return WIRE_OK;
}

static enum wire_err
get_sigpairs(struct rbuf *rb, const struct pbft_sigpair **out, uint32_t *n,
    struct wire_arena *a)
{
	struct pbft_sigpair *v;
	enum wire_err e;

	if ((e = get_count(rb, n, PBFT_REPLICAS_MAX, SIGPAIR_BYTES)) != WIRE_OK)
		return e;
	if ((v = arena_alloc(a, *n, sizeof(*v))) == NULL)
		return WIRE_E_NOMEM;
	for (uint32_t i = 0; i < *n; i++) {
		if ((e = get_replica(rb, &v[i].replica)) != WIRE_OK)
			return e;
		NEED(rbuf_get_bytes(rb, v[i].sig, PBFT_SIG_LEN));
	}
	*out = v;
	return WIRE_OK;
}

static enum wire_err
get_vc_entries(struct rbuf *rb, const struct pbft_vc_entry **out, uint32_t *n,
    uint32_t max, struct wire_arena *a)
{
	struct pbft_vc_entry *v;
	enum wire_err e;

	if ((e = get_count(rb, n, max, VCE_BYTES)) != WIRE_OK)
		return e;
	if ((v = arena_alloc(a, *n, sizeof(*v))) == NULL)
		return WIRE_E_NOMEM;
	for (uint32_t i = 0; i < *n; i++) {
		NEED(rbuf_get_u64(rb, &v[i].view));
		NEED(rbuf_get_u64(rb, &v[i].seq));
		NEED(rbuf_get_bytes(rb, v[i].digest, PBFT_DIGEST_LEN));
	}
	*out = v;
	return WIRE_OK;
}

static enum wire_err
get_view_change(
    struct rbuf *rb, struct pbft_view_change *vc, struct wire_arena *a)
{
	enum wire_err e;

	NEED(rbuf_get_u64(rb, &vc->view));
	NEED(rbuf_get_u64(rb, &vc->stable_seq));
	NEED(rbuf_get_bytes(rb, vc->stable_digest, PBFT_DIGEST_LEN));
	if ((e = get_sigpairs(rb, &vc->ckpt, &vc->nckpt, a)) != WIRE_OK)
		return e;
	if ((e = get_vc_entries(rb, &vc->prepared, &vc->nprepared,
	         PBFT_WINDOW_MAX, a)) != WIRE_OK ||
	    (e = get_vc_entries(rb, &vc->preprepared, &vc->npreprepared,
	         VC_Q_MAX, a)) != WIRE_OK)
		return e;
	if ((e = get_replica(rb, &vc->replica)) != WIRE_OK)
		return e;
	NEED(rbuf_get_bytes(rb, vc->sig, PBFT_SIG_LEN));
	return WIRE_OK;
}

static enum wire_err
get_new_view(struct rbuf *rb, struct pbft_new_view *nv, struct wire_arena *a)
{
	struct pbft_view_change *vcs;
	struct pbft_nv_preprepare *pps;
	enum wire_err e;

	NEED(rbuf_get_u64(rb, &nv->view));
	if ((e = get_count(rb, &nv->nvc, PBFT_REPLICAS_MAX, VC_MIN_BYTES)) !=
	    WIRE_OK)
		return e;
	if ((vcs = arena_alloc(a, nv->nvc, sizeof(*vcs))) == NULL)
		return WIRE_E_NOMEM;
	for (uint32_t i = 0; i < nv->nvc; i++)
		if ((e = get_view_change(rb, &vcs[i], a)) != WIRE_OK)
			return e;
	nv->vcs = vcs;
	if ((e = get_count(rb, &nv->npp, PBFT_WINDOW_MAX, NVPP_BYTES)) !=
	    WIRE_OK)
		return e;
	if ((pps = arena_alloc(a, nv->npp, sizeof(*pps))) == NULL)
		return WIRE_E_NOMEM;
	for (uint32_t i = 0; i < nv->npp; i++) {
		NEED(rbuf_get_u64(rb, &pps[i].seq));
		NEED(rbuf_get_bytes(rb, pps[i].digest, PBFT_DIGEST_LEN));
	}
	nv->pps = pps;
	if ((e = get_replica(rb, &nv->replica)) != WIRE_OK)
		return e;
	NEED(rbuf_get_bytes(rb, nv->sig, PBFT_SIG_LEN));
	return WIRE_OK;
}

static enum wire_err
get_vote(struct rbuf *rb, struct pbft_vote *v)
{
	NEED(rbuf_get_u64(rb, &v->view));
	NEED(rbuf_get_u64(rb, &v->seq));
	NEED(rbuf_get_bytes(rb, v->digest, PBFT_DIGEST_LEN));
	return get_replica(rb, &v->replica);
}

static enum wire_err
get_bytes32(struct rbuf *rb, uint32_t *len, const uint8_t **p, uint32_t max)
{
	NEED(rbuf_get_u32(rb, len));
	if (*len > max)
		return WIRE_E_TOO_BIG;
	NEED(rbuf_get_ref(rb, p, *len));
	return WIRE_OK;
}

static enum wire_err
get_hello(struct rbuf *rb, struct pbft_hello *h)
{
	NEED(rbuf_get_u8(rb, &h->role));
	NEED(rbuf_get_u32(rb, &h->id));
	NEED(rbuf_get_bytes(rb, h->eph_pub, 32));
	NEED(rbuf_get_bytes(rb, h->nonce, 32));
	if (h->role != PBFT_ROLE_REPLICA && h->role != PBFT_ROLE_CLIENT)
		return WIRE_E_VALUE;
	if (h->id >= (h->role == PBFT_ROLE_REPLICA ? PBFT_REPLICAS_MAX
	                                           : PBFT_CLIENTS_MAX))
		return WIRE_E_VALUE;
	return WIRE_OK;
}

static enum wire_err
get_reply(struct rbuf *rb, struct pbft_reply *r)
{
	NEED(rbuf_get_u64(rb, &r->view));
	NEED(rbuf_get_u64(rb, &r->timestamp));
	NEED(rbuf_get_u32(rb, &r->client));
	NEED(rbuf_get_u32(rb, &r->replica));
	NEED(rbuf_get_u64(rb, &r->seq));
	NEED(rbuf_get_u8(rb, &r->status));
	if (r->replica >= PBFT_REPLICAS_MAX || r->client >= PBFT_CLIENTS_MAX)
		return WIRE_E_VALUE;
	return get_bytes32(
	    rb, &r->result_len, &r->result, PBFT_RESULT_BYTES_MAX);
}

static enum wire_err
get_preprepare(struct rbuf *rb, struct pbft_preprepare *p)
{
	enum wire_err e;

	NEED(rbuf_get_u64(rb, &p->view));
	NEED(rbuf_get_u64(rb, &p->seq));
	NEED(rbuf_get_bytes(rb, p->digest, PBFT_DIGEST_LEN));
	if ((e = get_replica(rb, &p->replica)) != WIRE_OK)
		return e;
	return get_bytes32(rb, &p->batch_len, &p->batch, PBFT_BATCH_BYTES_MAX);
}

static enum wire_err
get_checkpoint(struct rbuf *rb, struct pbft_checkpoint *c)
{
	enum wire_err e;

	NEED(rbuf_get_u64(rb, &c->seq));
	NEED(rbuf_get_bytes(rb, c->digest, PBFT_DIGEST_LEN));
	if ((e = get_replica(rb, &c->replica)) != WIRE_OK)
		return e;
	NEED(rbuf_get_bytes(rb, c->sig, PBFT_SIG_LEN));
	return WIRE_OK;
}

static enum wire_err
get_fetch_batch(struct rbuf *rb, struct pbft_fetch_batch *f)
{
	NEED(rbuf_get_u64(rb, &f->seq));
	NEED(rbuf_get_bytes(rb, f->digest, PBFT_DIGEST_LEN));
	return get_replica(rb, &f->replica);
}

static enum wire_err
get_batch(struct rbuf *rb, struct pbft_batch *b)
{
	enum wire_err e;

	NEED(rbuf_get_u64(rb, &b->seq));
	NEED(rbuf_get_bytes(rb, b->digest, PBFT_DIGEST_LEN));
	if ((e = get_replica(rb, &b->replica)) != WIRE_OK)
		return e;
	return get_bytes32(rb, &b->batch_len, &b->batch, PBFT_BATCH_BYTES_MAX);
}

static enum wire_err
get_fetch_state(struct rbuf *rb, struct pbft_fetch_state *f)
{
	NEED(rbuf_get_u64(rb, &f->seq));
	NEED(rbuf_get_bytes(rb, f->digest, PBFT_DIGEST_LEN));
	NEED(rbuf_get_u32(rb, &f->index));
	return get_replica(rb, &f->replica);
}

static enum wire_err
get_state_chunk(struct rbuf *rb, struct pbft_state_chunk *c)
{
	enum wire_err e;

	NEED(rbuf_get_u64(rb, &c->seq));
	NEED(rbuf_get_bytes(rb, c->digest, PBFT_DIGEST_LEN));
	NEED(rbuf_get_u32(rb, &c->index));
	NEED(rbuf_get_u32(rb, &c->count));
	NEED(rbuf_get_u64(rb, &c->total_len));
	if ((e = get_replica(rb, &c->replica)) != WIRE_OK)
		return e;
	return get_bytes32(rb, &c->data_len, &c->data, PBFT_CHUNK_BYTES_MAX);
}

static enum wire_err
get_announce(struct rbuf *rb, struct pbft_announce *a)
{
	enum wire_err e;

	if ((e = get_replica(rb, &a->replica)) != WIRE_OK)
		return e;
	NEED(rbuf_get_u64(rb, &a->epoch));
	NEED(rbuf_get_u8(rb, &a->host_len));
	NEED(rbuf_get_ref(rb, &a->host, a->host_len));
	NEED(rbuf_get_u16(rb, &a->port));
	NEED(rbuf_get_bytes(rb, a->sig, PBFT_SIG_LEN));
	if (!wire_host_valid(a->host, a->host_len) || a->port == 0)
		return WIRE_E_VALUE;
	return WIRE_OK;
}

static enum wire_err
get_status(struct rbuf *rb, struct pbft_status_msg *s)
{
	enum wire_err e;

	NEED(rbuf_get_u64(rb, &s->view));
	NEED(rbuf_get_u64(rb, &s->low));
	NEED(rbuf_get_u64(rb, &s->last_exec));
	if ((e = get_replica(rb, &s->replica)) != WIRE_OK)
		return e;
	NEED(rbuf_get_u8(rb, &s->flags));
	if (s->flags &
	    ~(PBFT_STATUS_ASK | PBFT_STATUS_CHANGING | PBFT_STATUS_MUTED))
		return WIRE_E_VALUE;
	return WIRE_OK;
}

/* The decoders by message, for the table. */
static enum wire_err
get_hello_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_hello(rb, &m->u.hello);
}

static enum wire_err
get_auth(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	NEED(rbuf_get_bytes(rb, m->u.auth.sig, PBFT_SIG_LEN));
	return WIRE_OK;
}

static enum wire_err
get_request_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_request(rb, &m->u.request, NULL);
}

static enum wire_err
get_reply_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_reply(rb, &m->u.reply);
}

static enum wire_err
get_preprepare_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_preprepare(rb, &m->u.preprepare);
}

static enum wire_err
get_prepare(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_vote(rb, &m->u.prepare);
}

static enum wire_err
get_commit(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_vote(rb, &m->u.commit);
}

static enum wire_err
get_checkpoint_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_checkpoint(rb, &m->u.checkpoint);
}

static enum wire_err
get_view_change_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_view_change(rb, &m->u.view_change, a);
}

static enum wire_err
get_new_view_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_new_view(rb, &m->u.new_view, a);
}

static enum wire_err
get_fetch_batch_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_fetch_batch(rb, &m->u.fetch_batch);
}

static enum wire_err
get_batch_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_batch(rb, &m->u.batch);
}

static enum wire_err
get_fetch_state_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_fetch_state(rb, &m->u.fetch_state);
}

static enum wire_err
get_state_chunk_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_state_chunk(rb, &m->u.state_chunk);
}

static enum wire_err
get_announce_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_announce(rb, &m->u.announce);
}

static enum wire_err
get_status_msg(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	return get_status(rb, &m->u.status);
}

/*
 * Every message type: its name, encoder and decoder. A new message type is
 * a value in common/msg.h, a row here (with the body's layout in the
 * comment at the top of this file), and a row in the replica's router
 * (routes in pbft-replica/replica.c); see README.md, Design.
 */
static const struct wire_type wire_types[PBFT_MSG_TYPE_MAX] = {
    [PBFT_MSG_HELLO] = {"hello", put_hello, get_hello_msg},
    [PBFT_MSG_AUTH] = {"auth", put_auth, get_auth},
    [PBFT_MSG_REQUEST] = {"request", put_request_msg, get_request_msg},
    [PBFT_MSG_REPLY] = {"reply", put_reply, get_reply_msg},
    [PBFT_MSG_PREPREPARE] = {"pre-prepare", put_preprepare, get_preprepare_msg},
    [PBFT_MSG_PREPARE] = {"prepare", put_prepare, get_prepare},
    [PBFT_MSG_COMMIT] = {"commit", put_commit, get_commit},
    [PBFT_MSG_CHECKPOINT] = {"checkpoint", put_checkpoint, get_checkpoint_msg},
    [PBFT_MSG_VIEW_CHANGE] = {"view-change", put_view_change_msg,
        get_view_change_msg},
    [PBFT_MSG_NEW_VIEW] = {"new-view", put_new_view_msg, get_new_view_msg},
    [PBFT_MSG_FETCH_BATCH] = {"fetch-batch", put_fetch_batch,
        get_fetch_batch_msg},
    [PBFT_MSG_BATCH] = {"batch", put_batch, get_batch_msg},
    [PBFT_MSG_FETCH_STATE] = {"fetch-state", put_fetch_state,
        get_fetch_state_msg},
    [PBFT_MSG_STATE_CHUNK] = {"state-chunk", put_state_chunk,
        get_state_chunk_msg},
    [PBFT_MSG_ANNOUNCE] = {"announce", put_announce, get_announce_msg},
    [PBFT_MSG_STATUS] = {"status", put_status, get_status_msg},
};

static const struct wire_type *
wire_type(unsigned type)
{
	if (type >= PBFT_MSG_TYPE_MAX || wire_types[type].name == NULL)
		return NULL;
	return &wire_types[type];
}

const char *
wire_type_name(unsigned type)
{
	const struct wire_type *t = wire_type(type);

	return t != NULL ? t->name : "unknown";
}

static enum wire_err
get_body(struct rbuf *rb, struct pbft_msg *m, struct wire_arena *a)
{
	const struct wire_type *t = wire_type(m->type);

	return t != NULL ? t->get(rb, m, a) : WIRE_E_TYPE;
}

enum wire_err
wire_frame_len(const uint8_t *buf, size_t len, size_t *frame_len)
{
	struct rbuf rb;
	uint32_t n;
	uint8_t ver;

	if (len < WIRE_HDR_LEN)
		return WIRE_E_TRUNCATED;
	rbuf_init(&rb, buf, len);
	(void)rbuf_get_u32(&rb, &n);
	(void)rbuf_get_u8(&rb, &ver);
	if (n < 2 || (size_t)n + 4 > PBFT_FRAME_BYTES_MAX)
		return WIRE_E_TOO_BIG;
	if (ver != PBFT_WIRE_VERSION)
		return WIRE_E_VERSION;
	*frame_len = (size_t)n + 4;
	return WIRE_OK;
}

enum wire_err
wire_decode(const uint8_t *buf, size_t len, struct pbft_msg *out,
    struct wire_arena *arena)
{
	struct rbuf rb;
	size_t flen;
	uint8_t type;
	enum wire_err e;

	if ((e = wire_frame_len(buf, len, &flen)) != WIRE_OK)
		return e;
	if (flen > len)
		return WIRE_E_TRUNCATED;
	if (flen < len)
		return WIRE_E_TRAILING;
	rbuf_init(&rb, buf + 5, len - 5);
	(void)rbuf_get_u8(&rb, &type);
	memset(out, 0, sizeof(*out));
	out->type = (enum pbft_msg_type)type;
	if ((e = get_body(&rb, out, arena)) != WIRE_OK)
		return e;
	return rbuf_left(&rb) == 0 ? WIRE_OK : WIRE_E_TRAILING;
}

/*
 * A compact batch, read twice: first to check it whole and size the
 * authenticators, then (with auth) to rebuild them there, each from the
 * previous one's head and tail and its own literal bytes.
 */
static enum wire_err
decode_compact(struct rbuf *start, uint32_t n, struct pbft_request *reqs,
    struct wbuf *auth)
{
	struct rbuf rb = *start;
	struct share sh = {0};
	size_t total = 0;
	enum wire_err e;

	if ((uint64_t)n * (REQ_MIN_BYTES + SHARE_BYTES) > rbuf_left(&rb))
		return WIRE_E_TRUNCATED;
	for (uint32_t i = 0; i < n; i++) {
		if ((e = get_request(&rb, &reqs[i], &sh)) != WIRE_OK)
			return e;
		sh.prev_len = reqs[i].auth_len;
		total += sh.prev_len;
	}
	if (rbuf_left(&rb) != 0)
		return WIRE_E_TRAILING;
	if (auth == NULL)
		return WIRE_OK; /* not wanted: wire_decode_batch clears them */
	wbuf_reset(auth);
	if (wbuf_reserve(auth, total) == -1)
		return WIRE_E_NOMEM;
	rb = *start;
	sh.prev_len = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct pbft_request *r = &reqs[i];
		const uint8_t *q = i > 0 ? reqs[i - 1].auth : NULL;
		uint8_t *a;
		size_t nlit;

		(void)get_request(&rb, r, &sh);
		nlit = r->auth_len - sh.head - sh.tail;
		a = r->auth_len > 0 ? auth->p + auth->len : NULL;
		if (sh.head > 0)
			memcpy(a, q, sh.head);
		if (nlit > 0)
			memcpy(a + sh.head, r->auth, nlit);
		if (sh.tail > 0)
			memcpy(a + sh.head + nlit, q + sh.prev_len - sh.tail,
			    sh.tail);
		auth->len += r->auth_len;
		r->auth = a;
		sh.prev_len = r->auth_len;
	}
	return WIRE_OK;
}

enum wire_err
wire_decode_batch(const uint8_t *buf, size_t len, struct pbft_request *reqs,
    uint32_t max, uint32_t *count, struct wbuf *auth)
{
	struct rbuf rb;
	uint32_t n;
	bool compact;
	enum wire_err e;

	rbuf_init(&rb, buf, len);
	NEED(rbuf_get_u32(&rb, &n));
	compact = (n & WIRE_BATCH_COMPACT) != 0;
	n &= ~WIRE_BATCH_COMPACT;
	if (n > max || n > PBFT_BATCH_REQS_MAX)
		return WIRE_E_TOO_BIG;
	if (compact) {
		if ((e = decode_compact(&rb, n, reqs, auth)) != WIRE_OK)
			return e;
	} else {
		if ((uint64_t)n * REQ_MIN_BYTES > rbuf_left(&rb))
			return WIRE_E_TRUNCATED;
		for (uint32_t i = 0; i < n; i++)
			if ((e = get_request(&rb, &reqs[i], NULL)) != WIRE_OK)
				return e;
		if (rbuf_left(&rb) != 0)
			return WIRE_E_TRAILING;
	}
	for (uint32_t i = 0; auth == NULL && i < n; i++) {
		reqs[i].auth = NULL;
		reqs[i].auth_len = 0;
	}
	*count = n;
	return WIRE_OK;
}
