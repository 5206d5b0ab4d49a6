/*
 * service.c - the built-in replicated service: an ordered transaction ledger
 * plus a key-value store.
 *
 * State digest: H("pbft ledger v2" || count || chain || jlen || kvsum), where
 * chain is a hash chain over every ledger entry, jlen the bytes of the
 * entries in journal format, and kvsum the sum, modulo 2^256, of a hash of
 * each pair and its owner, so puts and deletes update it in O(1):
 * H(0xffff | klen | key | vlen | value | owner), or H(klen | key | value)
 * for a key without owner (from an image that predates owners; 0xffff is
 * no klen, so the two cannot collide). Everything in it is in an image's
 * head: a fetching replica checks a head against the certified digest
 * before it takes a byte of the tail, and then takes exactly jlen bytes
 * that make count entries and that chain.
 * The hash table's seed is random per process: table layout never reaches
 * the digest, and a client cannot aim keys at one bucket.
 *
 * Where the ledger lives: a replica's service (service_ledger_open) keeps
 * the entries only in its journal file, so memory stays flat however long
 * the ledger grows, and a checkpoint costs O(keys), not O(ledger): its image
 * is the head below plus "the journal's first jlen bytes", which the journal
 * already holds (sync makes them durable; reopen checks them against the
 * chain after a restart). A service without a journal keeps the entries in
 * memory (tests, verification of fetched state).
 *
 * Image (snapshot, restore), little-endian:
 *     "PBFTSVC3" | u64 count | chain[32] | u64 jlen | u64 nkeys
 *     | nkeys x (u16 klen | key | u32 vlen | value | u32 owner)  <- the head
 *     | count x (u64 index | u32 len | bytes)                    <- jlen bytes
 * The entries have the journal's own format. "PBFTSVC2" images (no owner
 * field) are still read; their keys get LEDGER_OWNER_NONE.
 *
 * Key-value access (service.h) is decided in execute from the owner stored
 * with each key and rules copied from the configuration, which every
 * replica shares, so every correct replica decides alike.
 */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "failstop.h"
#include "rbuf.h"
#include "sig.h"
#include "vfs.h"

#define SNAP_MAGIC "PBFTSVC3"
#define SNAP_MAGIC_LEN_COMMON 7 /* "PBFTSVC", then the version digit */
#define ENTRY_HDR 12 /* u64 index | u32 len */

struct kv {
	struct kv *next;
	uint64_t hash;
	uint16_t klen;
	uint32_t vlen;
	uint32_t owner; /* client id, or LEDGER_OWNER_NONE */
	uint8_t *key; /* key bytes followed by value bytes, one allocation */
};

/* Access rules, from the configuration (service_ledger_access). */
struct kv_client {
	bool admin;
	struct cfg_prefixes write;
};

struct kv_rules {
	uint64_t max_keys, max_bytes; /* per owner, 0 = unlimited */
	struct cfg_prefixes shared;
	uint32_t nclients;
	struct kv_client *clients; /* by client id */
};

/* What an owner holds, for the quotas. */
struct kv_use {
	uint64_t keys, bytes;
};

struct ledger {
	struct service base;
	/* ledger */
	uint64_t count;
	uint64_t jlen; /* bytes of the entries in journal format */
	uint8_t chain[PBFT_DIGEST_LEN];
	/* entries in journal format, in memory (only without a journal) */
	uint8_t *data;
	uint64_t data_cap;
	/* key-value store */
	struct kv **buckets;
	uint64_t nbuckets, nkeys;
	uint64_t seed;
	uint64_t kvsum[4];
	struct kv_use *use; /* by owner, PBFT_CLIENTS_MAX; NULL until needed */
	struct kv_rules *rules; /* NULL: owners only; kept across restores */
	struct journal *journal; /* NULL when not journaling */
	char *jpath; /* its path, for the line a failed write stops with */
	uint64_t wb_off; /* journal bytes whose write-back has been started */
	/* A state transfer's entries, staged after ours (in the journal file
	 * past jlen, or in data): valid while the state is still the one they
	 * were staged after (base_count entries). */
	struct stage {
		bool valid;
		uint64_t base_count, base_jlen;
		uint64_t count, jlen; /* through the staged entries */
		uint8_t chain[PBFT_DIGEST_LEN];
		uint8_t *part; /* an entry not complete yet */
		size_t partlen;
		/* The head stage_check accepted: what is staged must end
		 * exactly at its count, jlen and chain. */
		struct ledger *checked;
	} st;
};

/*
 * The journal is made durable at every checkpoint, by all replicas at about
 * the same moment. Starting the write-back of each mebibyte as it is
 * written (without waiting for it) leaves that sync little to do, instead of
 * a checkpoint's worth of entries at once (10 ms and more at saturation,
 * which stalled the loop and every other replica's log flushes).
 */
#define JOURNAL_WRITEBACK_BYTES (1u << 20)
#define JOURNAL_BUFFER_BYTES (256u << 10)

/*
 * The journal could not be written or made durable: the replica stops, in
 * words (a journal that silently diverged from the others' would be a
 * Byzantine replica), and never syncs it again: the kernel may have
 * dropped the pages a second sync would claim.
 */
_Noreturn static void
journal_failed(const struct ledger *l, const char *what)
{
	failstop(FAILSTOP_IO, "%s: %s: %s", l->jpath ? l->jpath : "journal",
	    what, strerror(errno != 0 ? errno : EIO));
}

/*
 * The journal file and its write buffer: entries are appended at pos + len
 * through buf, written out (pwrite at pos) when it fills or is flushed.
 * Every other access flushes first, so the file then holds them all.
 */
struct journal {
	int fd;
	uint8_t *buf; /* JOURNAL_BUFFER_BYTES */
	size_t len; /* bytes in buf, not yet written */
	uint64_t pos; /* where buf[0] goes in the file */
};

static int
journal_pwrite(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t w = vfs_pwrite(fd, p, len, (off_t)off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			return -1;
		}
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	return 0;
}

/* Writes what is buffered. 0, or -1 with errno set. */
static int
journal_flush(struct journal *j)
{
	if (j->len == 0)
		return 0;
	if (journal_pwrite(j->fd, j->buf, j->len, j->pos) == -1)
		return -1;
	j->pos += j->len;
	j->len = 0;
	return 0;
}

/* Appends len bytes. 0, or -1 with errno set. */
static int
journal_put(struct journal *j, const uint8_t *p, size_t len)
{
	if (j->len + len > JOURNAL_BUFFER_BYTES && journal_flush(j) == -1)
		return -1;
	if (len >= JOURNAL_BUFFER_BYTES) {
		if (journal_pwrite(j->fd, p, len, j->pos) == -1)
			return -1;
		j->pos += len;
		return 0;
	}
	memcpy(j->buf + j->len, p, len);
	j->len += len;
	return 0;
}

/* The next entry goes at the file's end (nothing buffered). 0 or -1. */
static int
journal_seek_end(struct journal *j)
{
	struct stat sb;

	if (vfs_fstat(j->fd, &sb) == -1)
		return -1;
	j->pos = (uint64_t)sb.st_size;
	return 0;
}

static void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	(void)journal_flush(j); /* as fclose would */
	vfs_close(j->fd);
	free(j->buf);
	free(j);
}

static void
journal_writeback(struct ledger *l)
{
	uint64_t from = l->wb_off <= l->jlen ? l->wb_off : 0;

	if (l->jlen - from < JOURNAL_WRITEBACK_BYTES)
		return;
	if (journal_flush(l->journal) != 0)
		journal_failed(l, "write");
	/* Starts the write-back; its failure is as fatal as a sync's. */
	if (vfs_sync_file_range(l->journal->fd, (off_t)from,
	        (off_t)(l->jlen - from), SYNC_FILE_RANGE_WRITE) == -1)
		journal_failed(l, "sync_file_range");
	l->wb_off = l->jlen;
}

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

static void put_le(uint8_t *p, uint64_t v, int n);

/* kvsum += sign * H(the pair and its owner), as 256-bit little-endian. */
static void
kvsum_update(struct ledger *l, const struct kv *e, bool add)
{
	uint8_t buf[8 + LEDGER_KEY_BYTES_MAX + PBFT_RESULT_BYTES_MAX + 4];
	uint8_t d[PBFT_DIGEST_LEN];
	uint64_t w[4], carry = 0;
	size_t n = 0;

	if (e->owner != LEDGER_OWNER_NONE) {
		put_le(buf, 0xffff, 2);
		n = 2;
	}
	put_le(buf + n, e->klen, 2);
	memcpy(buf + n + 2, e->key, e->klen);
	n += 2 + e->klen;
	if (e->owner != LEDGER_OWNER_NONE) {
		put_le(buf + n, e->vlen, 4);
		n += 4;
	}
	memcpy(buf + n, e->key + e->klen, e->vlen);
	n += e->vlen;
	if (e->owner != LEDGER_OWNER_NONE) {
		put_le(buf + n, e->owner, 4);
		n += 4;
	}
	sig_sha256(buf, n, d);
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

/* What owner holds; NULL for LEDGER_OWNER_NONE (no quota applies). */
static struct kv_use *
kv_use_of(struct ledger *l, uint32_t owner)
{
	if (owner >= PBFT_CLIENTS_MAX)
		return NULL;
	if (l->use == NULL &&
	    (l->use = calloc(PBFT_CLIENTS_MAX, sizeof(*l->use))) == NULL)
		abort(); /* deterministic state cannot diverge: stop instead */
	return &l->use[owner];
}

/* Counts e for its owner (add) or no longer (!add). */
static void
kv_charge(struct ledger *l, const struct kv *e, bool add)
{
	struct kv_use *u = kv_use_of(l, e->owner);

	if (u == NULL)
		return;
	if (add) {
		u->keys++;
		u->bytes += (uint64_t)e->klen + e->vlen;
	} else {
		u->keys--;
		u->bytes -= (uint64_t)e->klen + e->vlen;
	}
}

/* Unlinks and frees *pp. */
static void
kv_unlink(struct ledger *l, struct kv **pp)
{
	struct kv *e = *pp;

	kvsum_update(l, e, false);
	kv_charge(l, e, false);
	*pp = e->next;
	free(e->key);
	free(e);
	l->nkeys--;
}

static void
kv_put(struct ledger *l, const uint8_t *k, size_t klen, const uint8_t *v,
    size_t vlen, uint32_t owner)
{
	uint64_t h = kv_hash(l, k, klen);
	struct kv **pp = kv_find(l, k, klen, h), *e;

	if (*pp != NULL)
		kv_unlink(l, pp);
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->key = malloc(klen + vlen + 1)) == NULL)
		abort();
	e->hash = h;
	e->klen = (uint16_t)klen;
	e->vlen = (uint32_t)vlen;
	e->owner = owner;
	memcpy(e->key, k, klen);
	if (vlen > 0)
		memcpy(e->key + klen, v, vlen);
	pp = &l->buckets[h & (l->nbuckets - 1)];
	e->next = *pp;
	*pp = e;
	kvsum_update(l, e, true);
	kv_charge(l, e, true);
	if (++l->nkeys > l->nbuckets)
		kv_grow(l);
}

static bool
prefix_of(const struct cfg_prefixes *px, const uint8_t *k, size_t klen)
{
	for (uint32_t i = 0; i < px->n; i++) {
		size_t n = strlen(px->p[i]);

		if (n <= klen && memcmp(px->p[i], k, n) == 0)
			return true;
	}
	return false;
}

/* May client change or delete key k, which owner holds? (service.h) */
static bool
kv_may_write(const struct ledger *l, uint32_t client, uint32_t owner,
    const uint8_t *k, size_t klen)
{
	const struct kv_rules *r = l->rules;

	if (owner == client && owner != LEDGER_OWNER_NONE)
		return true;
	if (r == NULL)
		return false;
	if (prefix_of(&r->shared, k, klen))
		return true;
	if (client >= r->nclients)
		return false;
	return r->clients[client].admin ||
	    prefix_of(&r->clients[client].write, k, klen);
}

/*
 * Would replacing old (NULL: a new key) by len bytes of key and value take
 * owner past a quota? A put that does not grow what is over a lowered
 * quota is let through.
 */
static uint8_t
kv_quota(struct ledger *l, uint32_t owner, const struct kv *old, size_t len)
{
	const struct kv_rules *r = l->rules;
	struct kv_use *u;
	uint64_t was, bytes;

	if (r == NULL || (u = kv_use_of(l, owner)) == NULL)
		return SVC_OK;
	was = old != NULL ? (uint64_t)old->klen + old->vlen : 0;
	bytes = u->bytes - was + len;
	if (old == NULL && r->max_keys != 0 && u->keys + 1 > r->max_keys)
		return SVC_QUOTA;
	if (r->max_bytes != 0 && bytes > r->max_bytes && len > was)
		return SVC_QUOTA;
	return SVC_OK;
}

/* A client's put: a new key becomes its own; an existing one keeps its
 * owner. */
static uint8_t
kv_write(struct ledger *l, uint32_t client, const uint8_t *k, size_t klen,
    const uint8_t *v, size_t vlen)
{
	struct kv *e = *kv_find(l, k, klen, kv_hash(l, k, klen));
	uint32_t owner = e != NULL ? e->owner : client;
	uint8_t rc;

	if (e != NULL ? !kv_may_write(l, client, owner, k, klen)
	              : client >= PBFT_CLIENTS_MAX)
		return SVC_DENIED;
	if ((rc = kv_quota(l, owner, e, klen + vlen)) != SVC_OK)
		return rc;
	kv_put(l, k, klen, v, vlen, owner);
	return SVC_OK;
}

static uint8_t
kv_del(struct ledger *l, uint32_t client, const uint8_t *k, size_t klen)
{
	struct kv **pp = kv_find(l, k, klen, kv_hash(l, k, klen));

	if (*pp == NULL)
		return SVC_NOT_FOUND;
	if (!kv_may_write(l, client, (*pp)->owner, k, klen))
		return SVC_DENIED;
	kv_unlink(l, pp);
	return SVC_OK;
}

static void
put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* chain = H(chain || index || len || tx) */
static void
chain_step(uint8_t chain[PBFT_DIGEST_LEN], uint64_t index, const uint8_t *tx,
    size_t len)
{
	uint8_t hdr[PBFT_DIGEST_LEN + ENTRY_HDR];

	memcpy(hdr, chain, PBFT_DIGEST_LEN);
	put_le(hdr + PBFT_DIGEST_LEN, index, 8);
	put_le(hdr + PBFT_DIGEST_LEN + 8, len, 4);
	sig_sha256_cat(hdr, sizeof(hdr), tx, len, NULL, 0, chain);
}

static void
ledger_append(struct ledger *l, const uint8_t *tx, size_t len)
{
	uint8_t jh[ENTRY_HDR];

	chain_step(l->chain, l->count, tx, len);
	put_le(jh, l->count, 8);
	put_le(jh + 8, len, 4);
	if (l->journal != NULL) {
		if (journal_put(l->journal, jh, sizeof(jh)) == -1 ||
		    (len > 0 && journal_put(l->journal, tx, len) == -1))
			journal_failed(l, "write");
	} else {
		while (l->jlen + sizeof(jh) + len > l->data_cap) {
			l->data_cap = l->data_cap ? l->data_cap * 2 : 65536;
			if ((l->data = realloc(l->data, l->data_cap)) == NULL)
				abort();
		}
		memcpy(l->data + l->jlen, jh, sizeof(jh));
		if (len > 0)
			memcpy(l->data + l->jlen + sizeof(jh), tx, len);
	}
	l->jlen += sizeof(jh) + len;
	if (l->journal != NULL)
		journal_writeback(l);
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
		return kv_write(
		    l, client, key, klen, rb.p + rb.off, rbuf_left(&rb));
	case LEDGER_OP_GET:
	case LEDGER_OP_DEL:
		if (op_key(&rb, &key, &klen) != SVC_OK || rbuf_left(&rb) != 0)
			return SVC_BAD_OP;
		if (code == LEDGER_OP_DEL)
			return kv_del(l, client, key, klen);
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
	uint8_t buf[14 + 8 + PBFT_DIGEST_LEN + 8 + 32];

	memcpy(buf, "pbft ledger v2", 14);
	put_le(buf + 14, l->count, 8);
	memcpy(buf + 22, l->chain, PBFT_DIGEST_LEN);
	put_le(buf + 22 + PBFT_DIGEST_LEN, l->jlen, 8);
	for (int i = 0; i < 4; i++)
		put_le(buf + 30 + PBFT_DIGEST_LEN + 8 * i, l->kvsum[i], 8);
	sig_sha256(buf, sizeof(buf), out);
}

/* The image's head: everything but the entries. */
static int
ledger_checkpoint(struct service *s, struct wbuf *out, uint64_t *tail_len)
{
	struct ledger *l = ledger_of(s);

	wbuf_put_bytes(out, SNAP_MAGIC, 8);
	wbuf_put_u64(out, l->count);
	wbuf_put_bytes(out, l->chain, PBFT_DIGEST_LEN);
	wbuf_put_u64(out, l->jlen);
	wbuf_put_u64(out, l->nkeys);
	for (uint64_t b = 0; b < l->nbuckets; b++) {
		for (struct kv *e = l->buckets[b]; e != NULL; e = e->next) {
			wbuf_put_u16(out, e->klen);
			wbuf_put_bytes(out, e->key, e->klen);
			wbuf_put_u32(out, e->vlen);
			wbuf_put_bytes(out, e->key + e->klen, e->vlen);
			wbuf_put_u32(out, e->owner);
		}
	}
	*tail_len = l->jlen;
	return wbuf_failed(out) ? -1 : 0;
}

static int
ledger_tail_read(struct service *s, uint64_t off, uint8_t *buf, size_t len)
{
	struct ledger *l = ledger_of(s);

	if (off > l->jlen || len > l->jlen - off)
		return -1;
	if (l->journal == NULL) {
		memcpy(buf, l->data + off, len);
		return 0;
	}
	if (journal_flush(l->journal) != 0)
		journal_failed(l, "write");
	while (len > 0) {
		ssize_t r = vfs_pread(l->journal->fd, buf, len, (off_t)off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			journal_failed(l, "read");
		if (r == 0)
			return -1;
		buf += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

static int
ledger_snapshot(struct service *s, struct wbuf *out)
{
	uint64_t tail;
	size_t at;

	if (ledger_checkpoint(s, out, &tail) == -1 ||
	    wbuf_reserve(out, tail) == -1)
		return -1;
	at = out->len;
	if (ledger_tail_read(s, 0, out->p + at, tail) == -1)
		return -1;
	out->len += tail;
	return 0;
}

struct head {
	uint64_t count, jlen;
	uint8_t chain[PBFT_DIGEST_LEN];
	size_t len; /* bytes of the head in the image */
	bool owners; /* "PBFTSVC3": each pair has its owner */
};

/*
 * The head's fixed part (magic to jlen) from rb into h: 0, 1 if rb ends
 * before it does, -1 if it cannot be a head (another magic, or fewer bytes
 * of entries than their count needs).
 */
static int
head_fixed(struct rbuf *rb, struct head *h)
{
	size_t len = rbuf_left(rb);
	const uint8_t *m = rb->p + rb->off;

	if (len > 0 &&
	    memcmp(m, SNAP_MAGIC,
	        len < SNAP_MAGIC_LEN_COMMON ? len : SNAP_MAGIC_LEN_COMMON))
		return -1;
	if (len > SNAP_MAGIC_LEN_COMMON && m[7] != '2' && m[7] != '3')
		return -1;
	h->owners = len > SNAP_MAGIC_LEN_COMMON && m[7] == '3';
	if (rbuf_skip(rb, 8) == -1 || rbuf_get_u64(rb, &h->count) == -1 ||
	    rbuf_get_bytes(rb, h->chain, PBFT_DIGEST_LEN) == -1 ||
	    rbuf_get_u64(rb, &h->jlen) == -1)
		return 1;
	return h->jlen / ENTRY_HDR < h->count ? -1 : 0;
}

/* Parses an image's head into h and the key-value pairs into l (if not
 * NULL). 0 or -1. */
static int
head_parse(const uint8_t *img, size_t len, struct head *h, struct ledger *l)
{
	struct rbuf rb;
	uint64_t nkeys;

	rbuf_init(&rb, img, len);
	if (head_fixed(&rb, h) != 0 || rbuf_get_u64(&rb, &nkeys) == -1)
		return -1;
	for (uint64_t i = 0; i < nkeys; i++) {
		uint16_t klen;
		uint32_t vlen, owner = LEDGER_OWNER_NONE;
		const uint8_t *k, *v;

		if (rbuf_get_u16(&rb, &klen) == -1 || klen == 0 ||
		    klen > LEDGER_KEY_BYTES_MAX ||
		    rbuf_get_ref(&rb, &k, klen) == -1 ||
		    rbuf_get_u32(&rb, &vlen) == -1 ||
		    vlen > PBFT_RESULT_BYTES_MAX ||
		    rbuf_get_ref(&rb, &v, vlen) == -1 ||
		    (h->owners &&
		        (rbuf_get_u32(&rb, &owner) == -1 ||
		            owner >= PBFT_CLIENTS_MAX)))
			return -1;
		if (l != NULL)
			kv_put(l, k, klen, v, vlen, owner);
	}
	h->len = rb.off;
	return 0;
}

/*
 * Checks entries in journal format, fed in pieces by next(), against the
 * head: indexes 0..count-1 in order, lengths in bounds, exactly jlen bytes,
 * and the chain they make equal to the head's. 0 or -1.
 */
typedef int (*entry_reader)(void *arg, uint8_t *buf, size_t len);

static int
entries_check(
    const struct head *h, entry_reader next, void *arg, uint8_t *txbuf)
{
	uint8_t chain[PBFT_DIGEST_LEN] = {0};
	uint64_t used = 0;

	for (uint64_t i = 0; i < h->count; i++) {
		uint8_t jh[ENTRY_HDR];
		uint64_t len;

		if (h->jlen - used < ENTRY_HDR ||
		    next(arg, jh, ENTRY_HDR) == -1 || get_le(jh, 8) != i)
			return -1;
		len = get_le(jh + 8, 4);
		used += ENTRY_HDR;
		if (len > PBFT_OP_BYTES_MAX || h->jlen - used < len ||
		    next(arg, txbuf, len) == -1)
			return -1;
		used += len;
		chain_step(chain, i, txbuf, len);
	}
	return used == h->jlen && memcmp(chain, h->chain, PBFT_DIGEST_LEN) == 0
	    ? 0
	    : -1;
}

struct mem_reader {
	const uint8_t *p;
	size_t left;
};

static int
mem_next(void *arg, uint8_t *buf, size_t len)
{
	struct mem_reader *m = arg;

	if (len > m->left)
		return -1;
	memcpy(buf, m->p, len);
	m->p += len;
	m->left -= len;
	return 0;
}

/*
 * The journal read at start, by pread. It ending early is an answer (the
 * file does not hold what the head names: fetch the state); a read that
 * fails, or that ends before the size the file has, is not: the replica
 * refuses to start, having written nothing.
 */
struct file_reader {
	int fd;
	const char *path;
	uint64_t off, size;
};

static int
file_next(void *arg, uint8_t *buf, size_t len)
{
	struct file_reader *f = arg;

	while (len > 0) {
		ssize_t r = vfs_pread(f->fd, buf, len, (off_t)f->off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 || (r == 0 && f->off < f->size)) {
			failstop_note_unreadable();
			failstop(FAILSTOP_UNREADABLE, "%s: read at %llu: %s",
			    f->path, (unsigned long long)f->off,
			    r == -1 ? strerror(errno)
			            : "end of file before its size");
		}
		if (r == 0)
			return -1;
		buf += r;
		f->off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

static void ledger_clear(struct ledger *l);
static int ledger_init(struct ledger *l);
static void stage_forget_checked(struct ledger *l);

/* Replaces l's state with tmp's (keeping l's journal, seed and ops); what
 * was staged after the old state is forgotten. */
static void
ledger_swap_in(struct ledger *l, struct ledger *tmp)
{
	stage_forget_checked(l);
	tmp->rules = l->rules;
	tmp->journal = l->journal;
	tmp->jpath = l->jpath;
	l->jpath = NULL;
	tmp->st.part = l->st.part;
	l->journal = NULL;
	ledger_clear(l);
	*l = *tmp;
}

static int
ledger_restore(struct service *s, const uint8_t *img, size_t len)
{
	struct ledger *l = ledger_of(s), tmp;
	struct head h;
	struct mem_reader m;
	uint8_t *txbuf = malloc(PBFT_OP_BYTES_MAX);
	int rc = -1;

	/* Build the new state aside so a bad image leaves the old one. */
	memset(&tmp, 0, sizeof(tmp));
	tmp.base = l->base;
	tmp.seed = l->seed;
	if (txbuf == NULL || ledger_init(&tmp) == -1)
		goto out;
	if (head_parse(img, len, &h, &tmp) == -1 || len - h.len != h.jlen)
		goto out;
	m = (struct mem_reader){img + h.len, h.jlen};
	if (entries_check(&h, mem_next, &m, txbuf) == -1)
		goto out;
	tmp.count = h.count;
	tmp.jlen = h.jlen;
	memcpy(tmp.chain, h.chain, PBFT_DIGEST_LEN);
	if (l->journal == NULL) {
		if ((tmp.data = malloc(h.jlen ? h.jlen : 1)) == NULL)
			goto out;
		memcpy(tmp.data, img + h.len, h.jlen);
		tmp.data_cap = h.jlen;
	} else {
		/* The entries are the journal: write them as they are. */
		struct journal *j = l->journal;

		if (journal_flush(j) != 0 || vfs_ftruncate(j->fd, 0) == -1)
			journal_failed(l, "write");
		j->pos = 0;
		if ((h.jlen > 0 && journal_put(j, img + h.len, h.jlen) == -1) ||
		    journal_flush(j) != 0)
			journal_failed(l, "write");
		if (vfs_fdatasync(j->fd) == -1)
			journal_failed(l, "fdatasync");
	}
	ledger_swap_in(l, &tmp);
	rc = 0;
out:
	if (rc == -1)
		ledger_clear(&tmp);
	free(txbuf);
	return rc;
}

/*
 * After a restart: the state of a checkpoint from its head and the journal,
 * whose first jlen bytes must hold exactly the entries the head names (they
 * were made durable before the head was written). Later entries are cut:
 * their batches are executed again from the log. img == NULL: empty state.
 */
static int
ledger_reopen(
    struct service *s, const uint8_t *img, size_t len, uint64_t *tail_len)
{
	struct ledger *l = ledger_of(s), tmp;
	struct head h = {0};
	uint8_t *txbuf = malloc(PBFT_OP_BYTES_MAX);
	struct journal *j = l->journal;
	struct file_reader fr;
	struct stat sb;
	int rc = -1;

	memset(&tmp, 0, sizeof(tmp));
	tmp.base = l->base;
	tmp.seed = l->seed;
	if (txbuf == NULL || j == NULL || ledger_init(&tmp) == -1)
		goto out;
	if (img != NULL &&
	    (head_parse(img, len, &h, &tmp) == -1 || len != h.len))
		goto out;
	if (journal_flush(j) != 0)
		journal_failed(l, "write");
	if (vfs_fstat(j->fd, &sb) == -1)
		journal_failed(l, "stat");
	fr = (struct file_reader){j->fd, l->jpath, 0, (uint64_t)sb.st_size};
	if (entries_check(&h, file_next, &fr, txbuf) == -1)
		goto out;
	/* Everything read: later entries go (executed again from the log). */
	if (vfs_ftruncate(j->fd, (off_t)h.jlen) == -1)
		journal_failed(l, "truncate");
	j->pos = h.jlen;
	tmp.count = h.count;
	tmp.jlen = h.jlen;
	memcpy(tmp.chain, h.chain, PBFT_DIGEST_LEN);
	ledger_swap_in(l, &tmp);
	*tail_len = h.jlen;
	rc = 0;
out:
	if (rc == -1) {
		ledger_clear(&tmp);
		if (j != NULL)
			(void)journal_seek_end(j);
	}
	free(txbuf);
	return rc;
}

/* ---- state transfer: a fetched tail, staged after our own --------------- */

/* The tail length a head names, from its first len bytes (service.h). */
static int
ledger_head_tail(const uint8_t *head, size_t len, uint64_t *tail_len)
{
	struct rbuf rb;
	struct head h;
	int rc;

	rbuf_init(&rb, head, len);
	if ((rc = head_fixed(&rb, &h)) == 0)
		*tail_len = h.jlen;
	return rc;
}

static void
stage_forget_checked(struct ledger *l)
{
	if (l->st.checked != NULL) {
		ledger_clear(l->st.checked);
		free(l->st.checked);
		l->st.checked = NULL;
	}
}

/* What is staged, started afresh if the state moved since it was staged. */
static struct stage *
stage_of(struct ledger *l)
{
	struct stage *st = &l->st;

	if (!st->valid || st->base_count != l->count ||
	    st->base_jlen != l->jlen) {
		stage_forget_checked(l);
		st->valid = true;
		st->base_count = st->count = l->count;
		st->base_jlen = st->jlen = l->jlen;
		memcpy(st->chain, l->chain, PBFT_DIGEST_LEN);
		st->partlen = 0;
	}
	return st;
}

static uint64_t
ledger_stage_have(struct service *s)
{
	struct stage *st = stage_of(ledger_of(s));

	return st->jlen + st->partlen;
}

/* Writes staged bytes at off, past the state's own entries. */
static void
stage_write(struct ledger *l, uint64_t off, const uint8_t *p, size_t len)
{
	if (l->journal != NULL) {
		if (journal_flush(l->journal) != 0)
			journal_failed(l, "write");
		if (journal_pwrite(l->journal->fd, p, len, off) == -1)
			journal_failed(l, "write of a fetched state");
		return;
	}
	while (off + len > l->data_cap) {
		l->data_cap = l->data_cap ? l->data_cap * 2 : 65536;
		if ((l->data = realloc(l->data, l->data_cap)) == NULL)
			abort();
	}
	memcpy(l->data + off, p, len);
}

/*
 * Takes one complete entry header at st->part: the next index, a length in
 * bounds, and room for it and the header of every entry still to come
 * within the checked head's jlen. 0 or -1.
 */
static int
stage_entry_header(const struct stage *st, const struct ledger *t)
{
	uint64_t elen = get_le(st->part + 8, 4), avail = t->jlen - st->jlen;
	uint64_t rem; /* entries still to come, this one included */

	if (get_le(st->part, 8) != st->count || elen > PBFT_OP_BYTES_MAX ||
	    st->count >= t->count)
		return -1;
	rem = t->count - st->count;
	return rem <= avail / ENTRY_HDR && elen <= avail - ENTRY_HDR * rem ? 0
	                                                                   : -1;
}

/* An entry complete: into the chain; the last one must end the tail
 * exactly as the checked head names it. 0 or -1. */
static int
stage_entry_done(struct stage *st, const struct ledger *t)
{
	chain_step(st->chain, st->count, st->part + ENTRY_HDR,
	    st->partlen - ENTRY_HDR);
	st->count++;
	st->jlen += st->partlen;
	st->partlen = 0;
	if (st->count < t->count)
		return 0;
	return st->jlen == t->jlen &&
	        memcmp(st->chain, t->chain, PBFT_DIGEST_LEN) == 0
	    ? 0
	    : -1;
}

/*
 * Checks fetched entries as they come, one at a time across the pieces,
 * against the head stage_check accepted: nothing before it, not a byte past
 * its jlen, consecutive indexes from ours, lengths in bounds, and at its
 * count its chain. Bytes are written only once they checked.
 */
static int
ledger_stage_put(struct service *s, const uint8_t *p, size_t len)
{
	struct ledger *l = ledger_of(s);
	struct stage *st = stage_of(l);
	const struct ledger *t = st->checked;
	uint64_t off = st->jlen + st->partlen;
	const uint8_t *at = p;
	size_t left = len;

	if (t == NULL || len > t->jlen - off)
		return -1;
	if (st->part == NULL &&
	    (st->part = malloc(ENTRY_HDR + PBFT_OP_BYTES_MAX)) == NULL)
		return -1;
	while (left > 0) {
		size_t want = st->partlen >= ENTRY_HDR
		    ? ENTRY_HDR + (size_t)get_le(st->part + 8, 4) - st->partlen
		    : ENTRY_HDR - st->partlen;
		size_t take = want < left ? want : left;
		bool hdr = st->partlen < ENTRY_HDR;

		memcpy(st->part + st->partlen, at, take);
		st->partlen += take;
		at += take;
		left -= take;
		if (st->partlen < ENTRY_HDR)
			break; /* left is 0 */
		if (hdr && stage_entry_header(st, t) == -1)
			return -1;
		if (st->partlen == ENTRY_HDR + get_le(st->part + 8, 4) &&
		    stage_entry_done(st, t) == -1)
			return -1;
	}
	stage_write(l, off, p, len);
	return 0;
}

/* Forgets what was staged, back to the state's own entries. */
static void
stage_cut(struct ledger *l)
{
	l->st.valid = false;
	if (l->journal != NULL &&
	    (journal_flush(l->journal) != 0 ||
	        vfs_ftruncate(l->journal->fd, (off_t)l->jlen) == -1))
		journal_failed(l, "discard of a staged state");
	if (l->journal != NULL)
		l->journal->pos = l->jlen;
}

/*
 * Parses a fetched head and gives the digest of the state it names, before
 * any of its tail is fetched; the tail stage_put then takes must end
 * exactly where it says. What is staged stays if it can be the start of
 * that tail.
 */
static int
ledger_stage_check(struct service *s, const uint8_t *head, size_t len,
    uint8_t digest[PBFT_DIGEST_LEN])
{
	struct ledger *l = ledger_of(s), *t;
	struct stage *st;
	struct head h;

	stage_forget_checked(l);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	t->base = l->base;
	t->seed = l->seed;
	if (ledger_init(t) == -1 || head_parse(head, len, &h, t) == -1 ||
	    len != h.len || h.count < l->count || h.jlen < l->jlen)
		goto fail;
	st = stage_of(l);
	if (st->count > h.count || st->jlen + st->partlen > h.jlen) {
		stage_cut(l); /* staged for another state */
		st = stage_of(l);
	}
	if (st->count == h.count &&
	    (st->partlen != 0 || st->jlen != h.jlen ||
	        memcmp(st->chain, h.chain, PBFT_DIGEST_LEN) != 0))
		goto fail;
	t->count = h.count;
	t->jlen = t->wb_off = h.jlen;
	memcpy(t->chain, h.chain, PBFT_DIGEST_LEN);
	ledger_digest(&t->base, digest);
	st->checked = t;
	return 0;
fail:
	ledger_clear(t);
	free(t);
	return -1;
}

static int
ledger_stage_install(struct service *s)
{
	struct ledger *l = ledger_of(s), *t = l->st.checked;
	const struct stage *st = &l->st;

	if (t == NULL || st->count != t->count || st->jlen != t->jlen ||
	    st->partlen != 0 ||
	    memcmp(st->chain, t->chain, PBFT_DIGEST_LEN) != 0)
		return -1;
	if (l->journal != NULL) {
		struct journal *j = l->journal;

		if (journal_flush(j) != 0 ||
		    vfs_ftruncate(j->fd, (off_t)t->jlen) == -1 ||
		    vfs_fdatasync(j->fd) == -1)
			journal_failed(l, "install of a fetched state");
		j->pos = t->jlen;
	} else {
		t->data = l->data;
		t->data_cap = l->data_cap;
		l->data = NULL;
		l->data_cap = 0;
	}
	l->st.checked = NULL;
	ledger_swap_in(l, t); /* nothing staged after the new state */
	free(t);
	return 0;
}

static void
ledger_stage_drop(struct service *s)
{
	struct ledger *l = ledger_of(s);

	stage_forget_checked(l);
	stage_cut(l);
}

static int
ledger_sync(struct service *s)
{
	struct ledger *l = ledger_of(s);

	if (l->journal == NULL)
		return 0;
	if (journal_flush(l->journal) != 0)
		journal_failed(l, "write");
	if (vfs_fdatasync(l->journal->fd) == -1)
		journal_failed(l, "fdatasync");
	return 0;
}

static int
ledger_file_fd(struct service *s)
{
	struct ledger *l = ledger_of(s);

	return l->journal != NULL ? l->journal->fd : -1;
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
	free(l->data);
	free(l->use);
	l->buckets = NULL;
	l->data = NULL;
	l->use = NULL;
}

static void
ledger_flush(struct service *s)
{
	struct ledger *l = ledger_of(s);

	if (l->journal != NULL && journal_flush(l->journal) != 0)
		journal_failed(l, "write");
}

static void
prefixes_clear(struct cfg_prefixes *px)
{
	for (uint32_t i = 0; i < px->n; i++)
		free(px->p[i]);
	px->n = 0;
}

static void
rules_free(struct kv_rules *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; i < r->nclients; i++)
		prefixes_clear(&r->clients[i].write);
	prefixes_clear(&r->shared);
	free(r->clients);
	free(r);
}

static int
prefixes_copy(struct cfg_prefixes *dst, const struct cfg_prefixes *src)
{
	for (; dst->n < src->n; dst->n++)
		if ((dst->p[dst->n] = strdup(src->p[dst->n])) == NULL)
			return -1;
	return 0;
}

static void
ledger_free(struct service *s)
{
	struct ledger *l;

	if (s == NULL)
		return;
	l = ledger_of(s);
	journal_close(l->journal);
	free(l->jpath);
	stage_forget_checked(l);
	free(l->st.part);
	ledger_clear(l);
	rules_free(l->rules);
	free(s);
}

static const struct service_ops ledger_ops = {
    .execute = ledger_execute,
    .digest = ledger_digest,
    .snapshot = ledger_snapshot,
    .restore = ledger_restore,
    .checkpoint = ledger_checkpoint,
    .tail_read = ledger_tail_read,
    .sync = ledger_sync,
    .file_fd = ledger_file_fd,
    .reopen = ledger_reopen,
    .head_tail = ledger_head_tail,
    .stage_have = ledger_stage_have,
    .stage_put = ledger_stage_put,
    .stage_check = ledger_stage_check,
    .stage_install = ledger_stage_install,
    .stage_drop = ledger_stage_drop,
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
	int fd;

	if (s == NULL)
		return NULL;
	l = ledger_of(s);
	if ((l->jpath = strdup(journal_path)) == NULL) {
		ledger_free(s);
		return NULL;
	}
	/* Not truncated: reopen checks what it holds against a snapshot. */
	fd = vfs_open(journal_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1 && errno != ENOENT)
		failstop_note_unreadable(); /* there, and not to be read */
	if (fd == -1 || (l->journal = calloc(1, sizeof(*l->journal))) == NULL) {
		int e = errno;

		if (fd != -1)
			vfs_close(fd);
		ledger_free(s);
		errno = e;
		return NULL;
	}
	/* Entries are a few dozen bytes: a page-sized buffer made one
	 * write(2) per page, thousands a second at saturation; with this one
	 * a batch's entries usually go in one (ledger_flush). */
	l->journal->fd = fd;
	if ((l->journal->buf = malloc(JOURNAL_BUFFER_BYTES)) == NULL ||
	    journal_seek_end(l->journal) == -1) {
		ledger_free(s);
		return NULL;
	}
	return s;
}

int
service_ledger_access(struct service *s, const struct cluster_cfg *cfg)
{
	struct ledger *l = ledger_of(s);
	struct kv_rules *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return -1;
	r->max_keys = cfg->client_max_keys;
	r->max_bytes = cfg->client_max_bytes;
	if ((r->clients = calloc(cfg->nclients ? cfg->nclients : 1,
	         sizeof(*r->clients))) == NULL)
		goto fail;
	r->nclients = cfg->nclients;
	if (prefixes_copy(&r->shared, &cfg->shared_prefixes) == -1)
		goto fail;
	for (uint32_t i = 0; i < cfg->nclients; i++) {
		r->clients[i].admin = cfg->clients[i].admin;
		if (prefixes_copy(&r->clients[i].write,
		        &cfg->clients[i].write_prefixes) == -1)
			goto fail;
	}
	rules_free(l->rules);
	l->rules = r;
	return 0;
fail:
	rules_free(r);
	return -1;
}

uint64_t
service_ledger_count(struct service *s)
{
	return ledger_of(s)->count;
}
