/*
 * replies.c - the reply table: the last reply to each client, kept to
 * answer a retransmitted request (struct reply_slot in replica_int.h), its
 * encoding in a checkpoint's state image and the digest that folds it into
 * the service's, and the resending of a cached reply.
 */
#include <stdlib.h>
#include <string.h>

#include "failstop.h"
#include "rbuf.h"
#include "replica_int.h"

struct reply_slot *
reply_slot(struct replica *r, uint32_t client)
{
	if (client >= r->cfg->nclients)
		return NULL;
	if (r->replies[client] == NULL &&
	    (r->replies[client] = calloc(1, sizeof(struct reply_slot))) == NULL)
		fatalx("out of memory");
	return r->replies[client];
}

void
replies_encode(struct reply_slot *const *v, uint32_t n, struct wbuf *wb)
{
	size_t at = wb->len;
	uint32_t count = 0;

	wbuf_put_u32(wb, 0); /* patched below */
	for (uint32_t i = 0; i < n; i++) {
		const struct reply_slot *s = v[i];

		if (s == NULL || s->seq == 0)
			continue;
		wbuf_put_u32(wb, i);
		wbuf_put_u64(wb, s->ts);
		wbuf_put_u64(wb, s->seq);
		wbuf_put_u8(wb, s->status);
		wbuf_put_u32(wb, s->len);
		wbuf_put_bytes(wb, s->result, s->len);
		count++;
	}
	if (!wbuf_failed(wb))
		wbuf_patch_u32(wb, at, count);
}

/* One entry of an encoded table into s; its client in *client. */
static int
reply_entry(struct rbuf *rb, uint32_t *client, struct reply_slot *s)
{
	if (rbuf_get_u32(rb, client) == -1 || rbuf_get_u64(rb, &s->ts) == -1 ||
	    rbuf_get_u64(rb, &s->seq) == -1 ||
	    rbuf_get_u8(rb, &s->status) == -1 ||
	    rbuf_get_u32(rb, &s->len) == -1 || s->seq == 0 ||
	    s->len > PBFT_RESULT_BYTES_MAX ||
	    rbuf_get_bytes(rb, s->result, s->len) == -1)
		return -1;
	s->view = 0; /* not part of the state: clients do not match it */
	return 0;
}

int
replies_load(
    struct reply_slot **v, uint32_t n, const uint8_t *p, size_t len, bool apply)
{
	struct reply_slot *s = calloc(1, sizeof(*s));
	struct rbuf rb;
	uint32_t count = 0, client = 0, next = 0;
	int rc = -1;

	if (s == NULL)
		fatalx("out of memory");
	rbuf_init(&rb, p, len);
	if (len != 0 && (rbuf_get_u32(&rb, &count) == -1 || count > n))
		goto out;
	for (uint32_t i = 0; apply && i < n; i++)
		if (v[i] != NULL)
			memset(v[i], 0, sizeof(*v[i]));
	for (uint32_t k = 0; k < count; k++, next = client + 1) {
		if (reply_entry(&rb, &client, s) == -1 || client < next ||
		    client >= n)
			goto out; /* only when !apply: checked before */
		if (!apply)
			continue;
		if (v[client] == NULL)
			v[client] = s;
		else
			*v[client] = *s;
		if (v[client] == s && (s = calloc(1, sizeof(*s))) == NULL)
			fatalx("out of memory");
	}
	rc = rbuf_left(&rb) == 0 ? 0 : -1;
out:
	free(s);
	return rc;
}

void
replies_fold(const struct pbft_crypto *c, const uint8_t sd[PBFT_DIGEST_LEN],
    const uint8_t *p, size_t len, uint8_t out[PBFT_DIGEST_LEN])
{
	uint8_t buf[2 * PBFT_DIGEST_LEN];

	memcpy(buf, sd, PBFT_DIGEST_LEN);
	c->digest(c->ctx, p, len, buf + PBFT_DIGEST_LEN);
	c->digest(c->ctx, buf, sizeof(buf), out);
}

/* REPLICA_TEST_REPLY_MIX: another client's cached reply, if any. */
static struct reply_slot *
reply_mixed(struct replica *r, uint32_t client, struct reply_slot *own)
{
	for (uint32_t i = 0; i < r->cfg->nclients; i++)
		if (i != client && r->replies[i] != NULL)
			return r->replies[i];
	return own;
}

void
do_resend_reply(struct replica *r, const struct pbft_action *a)
{
	struct reply_slot *slot = reply_slot(r, a->client);
	struct pbft_reply rep;

	if (slot == NULL || slot->ts != a->timestamp)
		return; /* not executed here, or a later reply replaced it */
	if (r->opts.test_flags & REPLICA_TEST_REPLY_MIX)
		slot = reply_mixed(r, a->client, slot);
	rep = (struct pbft_reply){.view = slot->view,
	    .timestamp = a->timestamp,
	    .client = a->client,
	    .replica = r->id,
	    .seq = slot->seq,
	    .status = slot->status,
	    .result_len = slot->len,
	    .result = slot->result};
	send_client(r, a->client, &rep);
}
