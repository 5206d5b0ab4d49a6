/*
 * chan.c - the channel handshake and record layer; see chan.h.
 */
#include "chan.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "sig.h"
#include "wire.h"

static const char label_init[] = "initiator";
static const char label_resp[] = "responder";

static int
fail(struct chan *ch, const char *why)
{
	ch->state = CHAN_FAILED;
	ch->error = why;
	return -1;
}

void
chan_init(struct chan *ch, uint8_t role, uint32_t id, void *key,
    chan_lookup_fn lookup, void *lookup_ctx, const char *cluster,
    bool initiator, uint8_t want_role, uint32_t want_id)
{
	memset(ch, 0, sizeof(*ch));
	ch->role = role;
	ch->id = id;
	ch->key = key;
	ch->lookup = lookup;
	ch->lookup_ctx = lookup_ctx;
	snprintf(ch->cluster, sizeof(ch->cluster), "%s", cluster);
	ch->initiator = initiator;
	ch->want_role = want_role;
	ch->want_id = want_id;
	ch->caps = CHAN_CAPS_ALL;
	wbuf_init_dynamic(&ch->held, CHAN_RECORD_MAX);
}

/* Handshake work done by this thread (chan_work_get). */
static __thread struct chan_work work;

void
chan_work_get(struct chan_work *w)
{
	*w = work;
}

/* Makes our ephemeral key and HELLO into ch->my_hello, and appends it. */
static int
send_hello(struct chan *ch, struct wbuf *out)
{
	struct pbft_msg m = {.type = PBFT_MSG_HELLO};
	struct wbuf wb;
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	EVP_PKEY *eph = NULL;
	size_t plen = 32;

	work.keygens++;
	if (kc == NULL || EVP_PKEY_keygen_init(kc) != 1 ||
	    EVP_PKEY_keygen(kc, &eph) != 1) {
		EVP_PKEY_CTX_free(kc);
		return fail(ch, "cannot make an ephemeral key");
	}
	EVP_PKEY_CTX_free(kc);
	ch->eph = eph;
	m.u.hello.role = ch->role;
	m.u.hello.id = ch->id;
	if (EVP_PKEY_get_raw_public_key(eph, m.u.hello.eph_pub, &plen) != 1 ||
	    RAND_bytes(m.u.hello.nonce, 32) != 1)
		return fail(ch, "cannot make an ephemeral key");
	if (ch->caps != 0) { /* chan.h: capabilities */
		memcpy(
		    m.u.hello.nonce + 24, CHAN_CAP_MAGIC, CHAN_CAP_MAGIC_LEN);
		m.u.hello.nonce[31] = ch->caps;
	}
	wbuf_init_fixed(&wb, ch->my_hello, sizeof(ch->my_hello));
	if (wire_encode(&wb, &m) == -1)
		return fail(ch, "cannot encode hello");
	ch->my_hello_len = wb.len;
	wbuf_put_bytes(out, ch->my_hello, ch->my_hello_len);
	return wbuf_failed(out) ? fail(ch, "output full") : 0;
}

int
chan_start(struct chan *ch, struct wbuf *out)
{
	/* A responder speaks only once the initiator's HELLO passed the
	 * cheap checks (on_hello). */
	if (ch->initiator && send_hello(ch, out) == -1)
		return -1;
	ch->state = CHAN_HELLO_SENT;
	return 0;
}

static void
transcript(struct chan *ch)
{
	uint8_t buf[32 + PBFT_NAME_BYTES_MAX + 256];
	size_t off = 0, cl = strlen(ch->cluster);
	const uint8_t *a = ch->initiator ? ch->my_hello : ch->peer_hello;
	const uint8_t *b = ch->initiator ? ch->peer_hello : ch->my_hello;
	size_t al = ch->initiator ? ch->my_hello_len : ch->peer_hello_len;
	size_t bl = ch->initiator ? ch->peer_hello_len : ch->my_hello_len;

	memcpy(buf, "pbft handshake v1", 17);
	off = 17;
	memcpy(buf + off, ch->cluster, cl);
	off += cl;
	memcpy(buf + off, a, al);
	off += al;
	memcpy(buf + off, b, bl);
	off += bl;
	sig_sha256(buf, off, ch->th);
}

static size_t
auth_input(const struct chan *ch, bool ours, uint8_t *buf)
{
	bool init = ours ? ch->initiator : !ch->initiator;
	const char *l = init ? label_init : label_resp;

	memcpy(buf, ch->th, 32);
	memcpy(buf + 32, l, strlen(l));
	return 32 + strlen(l);
}

/* Appends our AUTH: our signature over the transcript. */
static int
send_auth(struct chan *ch, struct wbuf *out)
{
	struct pbft_msg m = {.type = PBFT_MSG_AUTH};
	uint8_t buf[64];
	size_t n = auth_input(ch, true, buf);

	work.signs++;
	if (sig_sign(ch->key, buf, n, m.u.auth.sig) == -1)
		return fail(ch, "cannot sign the transcript");
	if (wire_encode(out, &m) == -1)
		return fail(ch, "output full");
	return 0;
}

/*
 * The peer's HELLO. Everything checked before any key is made or anything
 * signed is cheap: the frame's length and form (input_handshake), the
 * (role, id) we expect or the caller's lookup, which also applies its own
 * policy (net.c: the source address). An initiator then signs; a responder
 * only makes its ephemeral key and answers with its HELLO: it signs once
 * the initiator's AUTH verified (on_auth).
 */
static int
on_hello(struct chan *ch, const uint8_t *frame, size_t len,
    const struct pbft_hello *h, struct wbuf *out)
{
	if (ch->state != CHAN_HELLO_SENT)
		return fail(ch, "unexpected hello");
	if (ch->want_role != 0 &&
	    (h->role != ch->want_role || h->id != ch->want_id))
		return fail(ch, "peer is not the node we dialled");
	if (len > sizeof(ch->peer_hello))
		return fail(ch, "hello too long");
	if (ch->lookup(ch->lookup_ctx, h->role, h->id, ch->peer_pub) == -1)
		return fail(ch, "peer identity not in cluster.ini");
	memcpy(ch->peer_hello, frame, len);
	ch->peer_hello_len = len;
	ch->peer_role = h->role;
	ch->peer_id = h->id;
	if (memcmp(h->nonce + 24, CHAN_CAP_MAGIC, CHAN_CAP_MAGIC_LEN) == 0)
		ch->peer_caps = h->nonce[31];
	if (!ch->initiator && send_hello(ch, out) == -1)
		return -1;
	transcript(ch);
	if (ch->initiator && send_auth(ch, out) == -1)
		return -1;
	ch->state = CHAN_AUTH_SENT;
	return 0;
}

static EVP_CIPHER_CTX *
cipher(const uint8_t key[32], bool enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();

	if (c == NULL ||
	    EVP_CipherInit_ex(c, EVP_chacha20_poly1305(), NULL, key, NULL,
	        enc ? 1 : 0) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return c;
}

static int
hkdf(const uint8_t *ikm, size_t ikmlen, const uint8_t salt[32],
    const char *info, uint8_t out[32])
{
	EVP_PKEY_CTX *k = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t olen = 32;
	int rc = -1;

	if (k != NULL && EVP_PKEY_derive_init(k) == 1 &&
	    EVP_PKEY_CTX_set_hkdf_md(k, EVP_sha256()) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_salt(k, salt, 32) == 1 &&
	    EVP_PKEY_CTX_set1_hkdf_key(k, ikm, (int)ikmlen) == 1 &&
	    EVP_PKEY_CTX_add1_hkdf_info(
	        k, (const unsigned char *)info, (int)strlen(info)) == 1 &&
	    EVP_PKEY_derive(k, out, &olen) == 1 && olen == 32)
		rc = 0;
	EVP_PKEY_CTX_free(k);
	return rc;
}

static int
derive_keys(struct chan *ch, const uint8_t peer_eph[32])
{
	EVP_PKEY *peer =
	    EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_eph, 32);
	EVP_PKEY_CTX *d = EVP_PKEY_CTX_new(ch->eph, NULL);
	uint8_t shared[32], k_ir[32], k_ri[32];
	size_t slen = sizeof(shared);
	int rc = -1;

	if (peer == NULL || d == NULL || EVP_PKEY_derive_init(d) != 1 ||
	    EVP_PKEY_derive_set_peer(d, peer) != 1 ||
	    EVP_PKEY_derive(d, shared, &slen) != 1 || slen != 32)
		goto out;
	if (hkdf(shared, slen, ch->th, "pbft i->r", k_ir) == -1 ||
	    hkdf(shared, slen, ch->th, "pbft r->i", k_ri) == -1 ||
	    hkdf(shared, slen, ch->th, "pbft request mac", ch->mac_key) == -1)
		goto out;
	ch->tx = cipher(ch->initiator ? k_ir : k_ri, true);
	ch->rx = cipher(ch->initiator ? k_ri : k_ir, false);
	if (ch->tx != NULL && ch->rx != NULL)
		rc = 0;
out:
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(k_ir, sizeof(k_ir));
	OPENSSL_cleanse(k_ri, sizeof(k_ri));
	EVP_PKEY_free(peer);
	EVP_PKEY_CTX_free(d);
	return rc;
}

static int
on_auth(struct chan *ch, const struct pbft_auth *a, struct wbuf *out)
{
	uint8_t buf[64];
	size_t n;
	void *pub;
	bool ok;
	struct pbft_msg hm;
	struct wire_arena arena = {0};

	if (ch->state != CHAN_AUTH_SENT)
		return fail(ch, "unexpected auth");
	n = auth_input(ch, false, buf);
	if ((pub = sig_public_from_raw(ch->peer_pub)) == NULL)
		return fail(ch, "unusable peer key");
	work.verifies++;
	ok = sig_verify(pub, buf, n, a->sig);
	sig_key_free(pub);
	if (!ok)
		return fail(ch, "peer failed to prove its identity");
	if (!ch->initiator && send_auth(ch, out) == -1)
		return -1;
	if (wire_decode(ch->peer_hello, ch->peer_hello_len, &hm, &arena) !=
	        WIRE_OK ||
	    derive_keys(ch, hm.u.hello.eph_pub) == -1)
		return fail(ch, "key agreement failed");
	EVP_PKEY_free(ch->eph);
	ch->eph = NULL;
	ch->state = CHAN_ESTABLISHED;
	return 0;
}

static void
nonce(uint64_t ctr, uint8_t n[12])
{
	memset(n, 0, 4);
	for (int i = 0; i < 8; i++)
		n[4 + i] = (uint8_t)(ctr >> (8 * i));
}

/* Opens one record; 0 and the frame in plain, or -1. */
static int
open_record(struct chan *ch, const uint8_t *rec, size_t len, uint8_t *plain)
{
	uint8_t iv[12];
	int outl = 0, fin = 0;
	size_t clen = len - 4 - CHAN_TAG_LEN;

	nonce(ch->rx_ctr, iv);
	if (EVP_CipherInit_ex(ch->rx, NULL, NULL, NULL, iv, 0) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ch->rx, EVP_CTRL_AEAD_SET_TAG, CHAN_TAG_LEN,
	        (void *)(uintptr_t)(rec + 4 + clen)) != 1 ||
	    EVP_CipherUpdate(ch->rx, NULL, &outl, rec, 4) != 1 ||
	    EVP_CipherUpdate(ch->rx, plain, &outl, rec + 4, (int)clen) != 1 ||
	    EVP_CipherFinal_ex(ch->rx, plain + outl, &fin) != 1)
		return -1;
	ch->rx_ctr++;
	return 0;
}

/* Whether this call's frame budget is spent (chan_set_budget). */
static bool
budget_spent(const struct chan *ch)
{
	return (ch->frames_max != 0 && ch->frames_done >= ch->frames_max) ||
	    (ch->bytes_max != 0 && ch->bytes_done >= ch->bytes_max);
}

/*
 * Hands the frames of an opened record (plain[off..len)) to fn while the
 * budget lasts. The record is authentic, so the frames before a malformed
 * one are the peer's as much as if they had come in records of their own:
 * they are delivered, then the channel fails. What the budget leaves is
 * copied to ch->held for the next call. 0, or -1.
 */
static int
deliver(struct chan *ch, const uint8_t *plain, size_t len, size_t off,
    chan_frame_fn fn, void *arg)
{
	for (size_t want; off < len; off += want) {
		if (budget_spent(ch)) {
			if (plain != ch->held.p) { /* keep what is left */
				wbuf_reset(&ch->held);
				wbuf_put_bytes(
				    &ch->held, plain + off, len - off);
				if (wbuf_failed(&ch->held))
					return fail(ch, "out of memory");
				off = 0;
			}
			ch->held_off = off;
			return 0;
		}
		if (wire_frame_len(plain + off, len - off, &want) != WIRE_OK ||
		    want > len - off) {
			wbuf_clear(&ch->held); /* delivered once, not again */
			return fail(ch, "record does not hold whole frames");
		}
		ch->frames_done++;
		ch->bytes_done += want;
		fn(arg, plain + off, want);
	}
	ch->held_off = 0;
	wbuf_clear(&ch->held); /* a big record's copy is not kept */
	return 0;
}

static int
input_record(struct chan *ch, const uint8_t *in, size_t len, size_t *used,
    struct wbuf *scratch, chan_frame_fn fn, void *arg)
{
	uint32_t rl;

	if (len < 4)
		return 0;
	rl = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
	    (uint32_t)in[3] << 24;
	/* An empty record (rl == CHAN_TAG_LEN) is a heartbeat: authenticated,
	 * counted in the nonce sequence, and nothing to deliver; taken only
	 * when we announced CHAN_CAP_HEARTBEAT, as the earlier code. */
	if ((rl < CHAN_TAG_LEN + WIRE_HDR_LEN &&
	        (rl != CHAN_TAG_LEN || !(ch->caps & CHAN_CAP_HEARTBEAT))) ||
	    rl > CHAN_RECORD_MAX)
		return fail(ch, "bad record length");
	if (len - 4 < rl)
		return 0;
	wbuf_reset(scratch);
	if (wbuf_reserve(scratch, rl) == -1)
		return fail(ch, "out of memory");
	if (open_record(ch, in, rl + 4, scratch->p) == -1)
		return fail(ch, "record failed authentication");
	*used = rl + 4;
	return deliver(ch, scratch->p, rl - CHAN_TAG_LEN, 0, fn, arg);
}

static int
input_handshake(struct chan *ch, const uint8_t *in, size_t len, size_t *used,
    struct wbuf *out)
{
	size_t flen;
	enum wire_err e = wire_frame_len(in, len, &flen);
	struct pbft_msg m;
	struct wire_arena arena = {0};

	if (e == WIRE_E_TRUNCATED)
		return 0;
	if (e != WIRE_OK || flen > 256)
		return fail(ch, "bad handshake frame");
	if (len < flen)
		return 0;
	if (wire_decode(in, flen, &m, &arena) != WIRE_OK)
		return fail(ch, "malformed handshake frame");
	*used = flen;
	if (m.type == PBFT_MSG_HELLO)
		return on_hello(ch, in, flen, &m.u.hello, out);
	if (m.type == PBFT_MSG_AUTH)
		return on_auth(ch, &m.u.auth, out);
	return fail(ch, "frame before the handshake finished");
}

int
chan_input(struct chan *ch, const uint8_t *in, size_t len, size_t *consumed,
    struct wbuf *out, chan_frame_fn fn, void *arg)
{
	static __thread struct wbuf scratch;
	size_t off = 0;

	if (scratch.max == 0)
		wbuf_init_dynamic(&scratch, CHAN_RECORD_MAX);
	*consumed = 0;
	ch->frames_done = ch->bytes_done = 0;
	if (ch->held.len > 0 && ch->state == CHAN_ESTABLISHED &&
	    deliver(ch, ch->held.p, ch->held.len, ch->held_off, fn, arg) == -1)
		return -1;
	while (off < len && ch->held.len == 0 && !budget_spent(ch)) {
		size_t used = 0;
		int rc;

		if (ch->state == CHAN_FAILED || ch->state == CHAN_IDLE)
			return fail(ch, ch->error ? ch->error : "not started");
		if (ch->state == CHAN_ESTABLISHED)
			rc = input_record(
			    ch, in + off, len - off, &used, &scratch, fn, arg);
		else
			rc = input_handshake(
			    ch, in + off, len - off, &used, out);
		if (rc == -1)
			return -1;
		if (used == 0)
			break; /* need more bytes */
		off += used;
		*consumed = off;
		if (ch->state == CHAN_FAILED)
			return -1;
	}
	return 0;
}

void
chan_set_budget(struct chan *ch, size_t frames_max, size_t bytes_max)
{
	ch->frames_max = frames_max;
	ch->bytes_max = bytes_max;
}

bool
chan_budget_spent(const struct chan *ch)
{
	return ch->held.len > 0 || budget_spent(ch);
}

int
chan_seal(struct chan *ch, const uint8_t *frame, size_t len, struct wbuf *out)
{
	uint8_t iv[12], hdr[4];
	uint32_t rl = (uint32_t)(len + CHAN_TAG_LEN);
	int outl = 0, fin = 0;
	size_t start;

	if (ch->state != CHAN_ESTABLISHED || len > PBFT_FRAME_BYTES_MAX)
		return -1;
	for (int i = 0; i < 4; i++)
		hdr[i] = (uint8_t)(rl >> (8 * i));
	if (wbuf_reserve(out, 4 + (size_t)rl) == -1)
		return -1;
	start = out->len;
	memcpy(out->p + start, hdr, 4);
	nonce(ch->tx_ctr, iv);
	if (EVP_CipherInit_ex(ch->tx, NULL, NULL, NULL, iv, 1) != 1 ||
	    EVP_CipherUpdate(ch->tx, NULL, &outl, hdr, 4) != 1 ||
	    EVP_CipherUpdate(
	        ch->tx, out->p + start + 4, &outl, frame, (int)len) != 1 ||
	    EVP_CipherFinal_ex(ch->tx, out->p + start + 4 + outl, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ch->tx, EVP_CTRL_AEAD_GET_TAG, CHAN_TAG_LEN,
	        out->p + start + 4 + len) != 1)
		return -1;
	out->len += 4 + (size_t)rl;
	ch->tx_ctr++;
	return 0;
}

bool
chan_established(const struct chan *ch)
{
	return ch->state == CHAN_ESTABLISHED;
}

const uint8_t *
chan_request_key(const struct chan *ch)
{
	return ch->state == CHAN_ESTABLISHED ? ch->mac_key : NULL;
}

void
chan_peer(const struct chan *ch, uint8_t *role, uint32_t *id)
{
	*role = ch->peer_role;
	*id = ch->peer_id;
}

uint8_t
chan_peer_caps(const struct chan *ch)
{
	return ch->peer_caps;
}

const char *
chan_error(const struct chan *ch)
{
	return ch->error ? ch->error : "no error";
}

void
chan_clear(struct chan *ch)
{
	EVP_PKEY_free(ch->eph);
	wbuf_clear(&ch->held);
	ch->held_off = 0;
	EVP_CIPHER_CTX_free(ch->tx);
	EVP_CIPHER_CTX_free(ch->rx);
	ch->eph = ch->tx = ch->rx = NULL;
	OPENSSL_cleanse(ch->th, sizeof(ch->th));
	OPENSSL_cleanse(ch->mac_key, sizeof(ch->mac_key));
	if (ch->state != CHAN_FAILED)
		ch->state = CHAN_IDLE;
}
