/*
 * service.c - the built-in replicated service: an ordered transaction ledger
 * plus a key-value store.
 *
 * State digest: H("pbft ledger v1" || count || chain || kvsum), where chain is
 * a hash chain over every ledger entry and kvsum is the sum, modulo 2^256, of
 * H(key || value) over all pairs, so puts and deletes update it in O(1).
 * Everything lives in memory; snapshots serialise it. The hash table's seed is
 * random per process: table layout never reaches the digest, and a client
 * cannot aim keys at one bucket.
 */
#include "service.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "rbuf.h"
#include "sig.h"

#define SNAP_MAGIC "PBFTSVC1"

struct kv {
	struct kv *next;
	uint64_t hash;
	uint16_t klen;
	uint32_t vlen;
	uint8_t *key; /* key bytes followed by value bytes, one allocation */
};

struct ledger {
	struct service base;
	/* ledger */
	uint64_t count;
	uint64_t
	    *offs; /* offs[i] = start of entry i in data; offs[count] = end */
	uint64_t offs_cap;
	uint8_t *data;
	uint64_t data_len, data_cap;
	uint8_t chain[PBFT_DIGEST_LEN];
	/* key-value store */
	struct kv **buckets;
	uint64_t nbuckets, nkeys;
	uint64_t seed;
	uint64_t kvsum[4];
	FILE *journal; /* NULL when not journaling */
};

static struct ledger *
ledger_of(struct service *s)
{
	return (struct ledger *)s;
}

static uint64_t
kv_hash(const struct ledger *l, const uint8_t *k, size_t len)
{
	uint64_t h = l->seed ^ 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= k[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 32);
}

/* kvsum += sign * H(klen || key || value), as 256-bit little-endian. */
static void
kvsum_update(struct ledger *l, const struct kv *e, bool add)
{
	uint8_t buf[2 + LEDGER_KEY_BYTES_MAX + PBFT_RESULT_BYTES_MAX];
	uint8_t d[PBFT_DIGEST_LEN];
	uint64_t w[4], carry = 0;

	buf[0] = (uint8_t)e->klen;
	buf[1] = (uint8_t)(e->klen >> 8);
	memcpy(buf + 2, e->key, (size_t)e->klen + e->vlen);
	sig_sha256(buf, 2 + (size_t)e->klen + e->vlen, d);
	memcpy(w, d, sizeof(w));
	if (!add) { /* subtract: add the two's complement */
		for (int i = 0; i < 4; i++)
			w[i] = ~w[i];
		carry = 1;
	}
	for (int i = 0; i < 4; i++) {
		uint64_t a = l->kvsum[i], b = w[i];
		uint64_t s = a + b;
		uint64_t c1 = s < a;
		uint64_t s2 = s + carry;
		uint64_t c2 = s2 < s;

		l->kvsum[i] = s2;
		carry = c1 | c2;
	}
}

static struct kv **
kv_find(struct ledger *l, const uint8_t *k, size_t klen, uint64_t h)
{
	struct kv **pp = &l->buckets[h & (l->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->klen == klen &&
		    memcmp((*pp)->key, k, klen) == 0)
			return pp;
	return pp;
}

static void
kv_grow(struct ledger *l)
{
	uint64_t nb = l->nbuckets * 2;
	struct kv **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		abort(); /* deterministic state cannot diverge: stop instead */
	for (uint64_t i = 0; i < l->nbuckets; i++) {
		struct kv *e = l->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(l->buckets);
	l->buckets = b;
	l->nbuckets = nb;
}

static void
kv_put(struct ledger *l, const uint8_t *k, size_t klen, const uint8_t *v,
    size_t vlen)
{
	uint64_t h = kv_hash(l, k, klen);
	struct kv **pp = kv_find(l, k, klen, h), *e;

	if (*pp != NULL) {
		e = *pp;
		kvsum_update(l, e, false);
		*pp = e->next;
		free(e->key);
		free(e);
		l->nkeys--;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->key = malloc(klen + vlen + 1)) == NULL)
		abort();
	e->hash = h;
	e->klen = (uint16_t)klen;
	e->vlen = (uint32_t)vlen;
	memcpy(e->key, k, klen);
	if (vlen > 0)
		memcpy(e->key + klen, v, vlen);
	pp = &l->buckets[h & (l->nbuckets - 1)];
	e->next = *pp;
	*pp = e;
	kvsum_update(l, e, true);
	if (++l->nkeys > l->nbuckets)
		kv_grow(l);
}

static bool
kv_del(struct ledger *l, const uint8_t *k, size_t klen)
{
	struct kv **pp = kv_find(l, k, klen, kv_hash(l, k, klen)), *e;

	if ((e = *pp) == NULL)
		return false;
	kvsum_update(l, e, false);
	*pp = e->next;
	free(e->key);
	free(e);
	l->nkeys--;
	return true;
}

static void
ledger_append(struct ledger *l, const uint8_t *tx, size_t len)
{
	uint8_t hdr[PBFT_DIGEST_LEN + 12];
	uint8_t *buf;

	while (l->count + 2 > l->offs_cap) {
		l->offs_cap = l->offs_cap ? l->offs_cap * 2 : 1024;
		l->offs = realloc(l->offs, l->offs_cap * sizeof(*l->offs));
		if (l->offs == NULL)
			abort();
	}
	while (l->data_len + len > l->data_cap) {
		l->data_cap = l->data_cap ? l->data_cap * 2 : 65536;
		if ((l->data = realloc(l->data, l->data_cap)) == NULL)
			abort();
	}
	if (len > 0)
		memcpy(l->data + l->data_len, tx, len);
	l->offs[l->count] = l->data_len;
	l->data_len += len;
	l->offs[l->count + 1] = l->data_len;
	/* chain = H(chain || index || len || tx) */
	memcpy(hdr, l->chain, PBFT_DIGEST_LEN);
	for (int i = 0; i < 8; i++)
		hdr[PBFT_DIGEST_LEN + i] = (uint8_t)(l->count >> (8 * i));
	for (int i = 0; i < 4; i++)
		hdr[PBFT_DIGEST_LEN + 8 + i] = (uint8_t)(len >> (8 * i));
	if ((buf = malloc(sizeof(hdr) + len)) == NULL)
		abort();
	memcpy(buf, hdr, sizeof(hdr));
	if (len > 0)
		memcpy(buf + sizeof(hdr), tx, len);
	sig_sha256(buf, sizeof(hdr) + len, l->chain);
	free(buf);
	if (l->journal != NULL) {
		uint8_t jh[12];

		for (int i = 0; i < 8; i++)
			jh[i] = (uint8_t)(l->count >> (8 * i));
		for (int i = 0; i < 4; i++)
			jh[8 + i] = (uint8_t)(len >> (8 * i));
		if (fwrite(jh, 1, sizeof(jh), l->journal) != sizeof(jh) ||
		    (len > 0 && fwrite(tx, 1, len, l->journal) != len))
			abort(); /* the journal must not silently diverge */
	}
	l->count++;
}

static uint8_t
op_key(struct rbuf *rb, const uint8_t **key, uint16_t *klen)
{
	if (rbuf_get_u16(rb, klen) == -1 || *klen == 0 ||
	    *klen > LEDGER_KEY_BYTES_MAX || rbuf_get_ref(rb, key, *klen) == -1)
		return SVC_BAD_OP;
	return SVC_OK;
}

static uint8_t
ledger_execute(struct service *s, uint64_t seq, uint32_t client,
    const uint8_t *op, size_t op_len, uint8_t *result, size_t *result_len)
{
	struct ledger *l = ledger_of(s);
	struct rbuf rb;
	uint8_t code;
	const uint8_t *key;
	uint16_t klen;
	struct kv *e;

	(void)seq;
	(void)client;
	*result_len = 0;
	rbuf_init(&rb, op, op_len);
	if (rbuf_get_u8(&rb, &code) == -1)
		return SVC_BAD_OP;
	switch (code) {
	case LEDGER_OP_SUBMIT:
		for (int i = 0; i < 8; i++)
			result[i] = (uint8_t)(l->count >> (8 * i));
		*result_len = 8;
		ledger_append(l, op + 1, op_len - 1);
		return SVC_OK;
	case LEDGER_OP_PUT:
		if (op_key(&rb, &key, &klen) != SVC_OK)
			return SVC_BAD_OP;
		if (rbuf_left(&rb) > PBFT_RESULT_BYTES_MAX)
			return SVC_TOO_BIG;
		kv_put(l, key, klen, rb.p + rb.off, rbuf_left(&rb));
		return SVC_OK;
	case LEDGER_OP_GET:
	case LEDGER_OP_DEL:
		if (op_key(&rb, &key, &klen) != SVC_OK || rbuf_left(&rb) != 0)
			return SVC_BAD_OP;
		if (code == LEDGER_OP_DEL)
			return kv_del(l, key, klen) ? SVC_OK : SVC_NOT_FOUND;
		e = *kv_find(l, key, klen, kv_hash(l, key, klen));
		if (e == NULL)
			return SVC_NOT_FOUND;
		memcpy(result, e->key + e->klen, e->vlen);
		*result_len = e->vlen;
		return SVC_OK;
	default:
		return SVC_BAD_OP;
	}
}

static void
ledger_digest(struct service *s, uint8_t out[PBFT_DIGEST_LEN])
{
	struct ledger *l = ledger_of(s);
	uint8_t buf[14 + 8 + PBFT_DIGEST_LEN + 32];

	memcpy(buf, "pbft ledger v1", 14);
	for (int i = 0; i < 8; i++)
		buf[14 + i] = (uint8_t)(l->count >> (8 * i));
	memcpy(buf + 22, l->chain, PBFT_DIGEST_LEN);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			buf[22 + PBFT_DIGEST_LEN + 8 * i + j] =
			    (uint8_t)(l->kvsum[i] >> (8 * j));
	sig_sha256(buf, sizeof(buf), out);
}

static int
ledger_snapshot(struct service *s, struct wbuf *out)
{
	struct ledger *l = ledger_of(s);

	wbuf_put_bytes(out, SNAP_MAGIC, 8);
	wbuf_put_u64(out, l->count);
	for (uint64_t i = 0; i < l->count; i++) {
		uint64_t len = l->offs[i + 1] - l->offs[i];

		wbuf_put_u32(out, (uint32_t)len);
		wbuf_put_bytes(out, l->data + l->offs[i], len);
	}
	wbuf_put_u64(out, l->nkeys);
	for (uint64_t b = 0; b < l->nbuckets; b++) {
		for (struct kv *e = l->buckets[b]; e != NULL; e = e->next) {
			wbuf_put_u16(out, e->klen);
			wbuf_put_bytes(out, e->key, e->klen);
			wbuf_put_u32(out, e->vlen);
			wbuf_put_bytes(out, e->key + e->klen, e->vlen);
		}
	}
	return wbuf_failed(out) ? -1 : 0;
}

static void ledger_clear(struct ledger *l);
static int ledger_init(struct ledger *l);

static int
ledger_load(struct ledger *l, const uint8_t *img, size_t len)
{
	struct rbuf rb;
	uint8_t magic[8];
	uint64_t count, nkeys;

	rbuf_init(&rb, img, len);
	if (rbuf_get_bytes(&rb, magic, 8) == -1 ||
	    memcmp(magic, SNAP_MAGIC, 8) != 0 ||
	    rbuf_get_u64(&rb, &count) == -1)
		return -1;
	for (uint64_t i = 0; i < count; i++) {
		uint32_t tlen;
		const uint8_t *tx;

		if (rbuf_get_u32(&rb, &tlen) == -1 ||
		    tlen > PBFT_OP_BYTES_MAX ||
		    rbuf_get_ref(&rb, &tx, tlen) == -1)
			return -1;
		ledger_append(l, tx, tlen);
	}
	if (rbuf_get_u64(&rb, &nkeys) == -1)
		return -1;
	for (uint64_t i = 0; i < nkeys; i++) {
		uint16_t klen;
		uint32_t vlen;
		const uint8_t *k, *v;

		if (rbuf_get_u16(&rb, &klen) == -1 || klen == 0 ||
		    klen > LEDGER_KEY_BYTES_MAX ||
		    rbuf_get_ref(&rb, &k, klen) == -1 ||
		    rbuf_get_u32(&rb, &vlen) == -1 ||
		    vlen > PBFT_RESULT_BYTES_MAX ||
		    rbuf_get_ref(&rb, &v, vlen) == -1)
			return -1;
		kv_put(l, k, klen, v, vlen);
	}
	return rbuf_left(&rb) == 0 ? 0 : -1;
}

static int
ledger_restore(struct service *s, const uint8_t *img, size_t len)
{
	struct ledger *l = ledger_of(s), tmp;

	/* Build the new state aside so a bad image leaves the old one. */
	memset(&tmp, 0, sizeof(tmp));
	tmp.base = l->base;
	if (ledger_init(&tmp) == -1)
		return -1;
	tmp.seed = l->seed;
	if (ledger_load(&tmp, img, len) == -1) {
		ledger_clear(&tmp);
		return -1;
	}
	tmp.journal = l->journal;
	l->journal = NULL;
	ledger_clear(l);
	*l = tmp;
	if (l->journal != NULL) {
		/* Rewrite the journal from the restored ledger. */
		uint64_t count = l->count;
		FILE *j = l->journal;

		if (fflush(j) != 0 || ftruncate(fileno(j), 0) == -1 ||
		    fseeko(j, 0, SEEK_SET) == -1)
			abort();
		l->journal = NULL;
		for (uint64_t i = 0; i < count; i++) {
			uint8_t jh[12];
			uint64_t n = l->offs[i + 1] - l->offs[i];

			for (int b = 0; b < 8; b++)
				jh[b] = (uint8_t)(i >> (8 * b));
			for (int b = 0; b < 4; b++)
				jh[8 + b] = (uint8_t)(n >> (8 * b));
			if (fwrite(jh, 1, 12, j) != 12 ||
			    (n > 0 &&
			        fwrite(l->data + l->offs[i], 1, n, j) != n))
				abort();
		}
		l->journal = j;
		fflush(j);
	}
	return 0;
}

static void
ledger_clear(struct ledger *l)
{
	for (uint64_t b = 0; b < l->nbuckets; b++) {
		struct kv *e = l->buckets[b], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	}
	free(l->buckets);
	free(l->offs);
	free(l->data);
	l->buckets = NULL;
	l->offs = NULL;
	l->data = NULL;
}

static void
ledger_flush(struct service *s)
{
	struct ledger *l = ledger_of(s);

	if (l->journal != NULL && fflush(l->journal) != 0)
		abort();
}

static void
ledger_free(struct service *s)
{
	struct ledger *l;

	if (s == NULL)
		return;
	l = ledger_of(s);
	if (l->journal != NULL)
		fclose(l->journal);
	ledger_clear(l);
	free(s);
}

static const struct service_ops ledger_ops = {
    .execute = ledger_execute,
    .digest = ledger_digest,
    .snapshot = ledger_snapshot,
    .restore = ledger_restore,
    .flush = ledger_flush,
    .free = ledger_free,
};

static int
ledger_init(struct ledger *l)
{
	l->nbuckets = 64;
	if ((l->buckets = calloc(l->nbuckets, sizeof(*l->buckets))) == NULL)
		return -1;
	return 0;
}

struct service *
service_ledger_new(void)
{
	struct ledger *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->base.ops = &ledger_ops;
	if (ledger_init(l) == -1) {
		free(l);
		return NULL;
	}
	if (getrandom(&l->seed, sizeof(l->seed), 0) != sizeof(l->seed))
		l->seed = (uint64_t)(uintptr_t)l;
	return &l->base;
}

struct service *
service_ledger_open(const char *journal_path)
{
	struct service *s = service_ledger_new();
	struct ledger *l;

	if (s == NULL)
		return NULL;
	l = ledger_of(s);
	if ((l->journal = fopen(journal_path, "w")) == NULL) {
		ledger_free(s);
		return NULL;
	}
	return s;
}

uint64_t
service_ledger_count(struct service *s)
{
	return ledger_of(s)->count;
}

int
service_ledger_entry(
    struct service *s, uint64_t i, const uint8_t **data, size_t *len)
{
	struct ledger *l = ledger_of(s);

	if (i >= l->count)
		return -1;
	*data = l->data + l->offs[i];
	*len = l->offs[i + 1] - l->offs[i];
	return 0;
}

int
ledger_op_submit(struct wbuf *wb, const void *tx, size_t len)
{
	wbuf_put_u8(wb, LEDGER_OP_SUBMIT);
	wbuf_put_bytes(wb, tx, len);
	return wbuf_failed(wb) ? -1 : 0;
}

int
ledger_op_put(
    struct wbuf *wb, const void *key, size_t klen, const void *val, size_t vlen)
{
	if (klen == 0 || klen > LEDGER_KEY_BYTES_MAX)
		return -1;
	wbuf_put_u8(wb, LEDGER_OP_PUT);
	wbuf_put_u16(wb, (uint16_t)klen);
	wbuf_put_bytes(wb, key, klen);
	wbuf_put_bytes(wb, val, vlen);
	return wbuf_failed(wb) ? -1 : 0;
}

static int
op_with_key(struct wbuf *wb, uint8_t code, const void *key, size_t klen)
{
	if (klen == 0 || klen > LEDGER_KEY_BYTES_MAX)
		return -1;
	wbuf_put_u8(wb, code);
	wbuf_put_u16(wb, (uint16_t)klen);
	wbuf_put_bytes(wb, key, klen);
	return wbuf_failed(wb) ? -1 : 0;
}

int
ledger_op_get(struct wbuf *wb, const void *key, size_t klen)
{
	return op_with_key(wb, LEDGER_OP_GET, key, klen);
}

int
ledger_op_del(struct wbuf *wb, const void *key, size_t klen)
{
	return op_with_key(wb, LEDGER_OP_DEL, key, klen);
}
