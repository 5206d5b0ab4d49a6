/* check_service.c - the built-in ledger + key-value service. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "service.h"
#include "sig.h"

static uint8_t
run(struct service *s, struct wbuf *op, uint8_t *res, size_t *rlen)
{
	return s->ops->execute(s, 1, 0, op->p, op->len, res, rlen);
}

START_TEST(test_submit_indexes)
{
	struct service *s = service_ledger_new();
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;

	wbuf_init_dynamic(&wb, 1 << 20);
	for (uint64_t i = 0; i < 100; i++) {
		uint64_t idx = 0;

		wbuf_reset(&wb);
		ck_assert_int_eq(ledger_op_submit(&wb, "tx", 2), 0);
		ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
		/* The client side's decoder (common/svcop.c) reads what the
		 * service wrote. */
		ck_assert_int_eq(ledger_result_index(res, rlen, &idx), 0);
		ck_assert_uint_eq(idx, i);
		ck_assert_int_eq(ledger_result_index(res, rlen - 1, &idx), -1);
	}
	ck_assert_uint_eq(service_ledger_count(s), 100);
	wbuf_clear(&wb);
	s->ops->free(s);
}
END_TEST

START_TEST(test_kv)
{
	struct service *s = service_ledger_new();
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;

	wbuf_init_dynamic(&wb, 1 << 20);
	ck_assert_int_eq(ledger_op_put(&wb, "k", 1, "v1", 2), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	wbuf_reset(&wb);
	ck_assert_int_eq(ledger_op_put(&wb, "k", 1, "v22", 3), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	wbuf_reset(&wb);
	ck_assert_int_eq(ledger_op_get(&wb, "k", 1), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	ck_assert_uint_eq(rlen, 3);
	ck_assert_int_eq(memcmp(res, "v22", 3), 0);
	wbuf_reset(&wb);
	ck_assert_int_eq(ledger_op_del(&wb, "k", 1), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_NOT_FOUND);
	wbuf_reset(&wb);
	ck_assert_int_eq(ledger_op_get(&wb, "k", 1), 0);
	ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_NOT_FOUND);
	wbuf_clear(&wb);
	s->ops->free(s);
}
END_TEST

START_TEST(test_bad_ops)
{
	struct service *s = service_ledger_new();
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	static const uint8_t ops[][4] = {
	    {0}, {9}, {LEDGER_OP_PUT, 5, 0, 'a'}, {LEDGER_OP_GET, 0, 0, 0}};

	ck_assert_int_eq(
	    s->ops->execute(s, 1, 0, ops[0], 0, res, &rlen), SVC_BAD_OP);
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(
		    s->ops->execute(s, 1, 0, ops[i], 4, res, &rlen),
		    SVC_BAD_OP);
	s->ops->free(s);
}
END_TEST

/* Digests depend on content, not on the order keys were inserted. */
START_TEST(test_digest_and_snapshot)
{
	struct service *a = service_ledger_new(), *b = service_ledger_new();
	uint8_t res[PBFT_RESULT_BYTES_MAX], da[32], db[32];
	size_t rlen;
	struct wbuf wb, snap;
	char key[16];

	wbuf_init_dynamic(&wb, 1 << 20);
	wbuf_init_dynamic(&snap, 1 << 26);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		wbuf_reset(&wb);
		ledger_op_put(&wb, key, strlen(key), "x", 1);
		run(a, &wb, res, &rlen);
		snprintf(key, sizeof(key), "key%d", 199 - i);
		wbuf_reset(&wb);
		ledger_op_put(&wb, key, strlen(key), "x", 1);
		run(b, &wb, res, &rlen);
	}
	a->ops->digest(a, da);
	b->ops->digest(b, db);
	ck_assert_mem_eq(da, db, 32);

	wbuf_reset(&wb);
	ledger_op_submit(&wb, "only-a", 6);
	run(a, &wb, res, &rlen);
	a->ops->digest(a, da);
	ck_assert_int_ne(memcmp(da, db, 32), 0);

	ck_assert_int_eq(a->ops->snapshot(a, &snap), 0);
	ck_assert_int_eq(b->ops->restore(b, snap.p, snap.len), 0);
	b->ops->digest(b, db);
	ck_assert_mem_eq(da, db, 32);
	ck_assert_uint_eq(service_ledger_count(b), 1);

	/* A truncated image is refused and leaves the state as it was. */
	ck_assert_int_eq(b->ops->restore(b, snap.p, snap.len - 1), -1);
	b->ops->digest(b, db);
	ck_assert_mem_eq(da, db, 32);
	wbuf_clear(&wb);
	wbuf_clear(&snap);
	a->ops->free(a);
	b->ops->free(b);
}
END_TEST

/* Runs k submits and k puts on s. */
static void
load(struct service *s, int k, int tag)
{
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;
	char buf[32];

	wbuf_init_dynamic(&wb, 1 << 20);
	for (int i = 0; i < k; i++) {
		snprintf(buf, sizeof(buf), "tx-%d-%d", tag, i);
		wbuf_reset(&wb);
		ledger_op_submit(&wb, buf, strlen(buf));
		ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
		wbuf_reset(&wb);
		ledger_op_put(&wb, buf, 4 + (size_t)(i % 3), buf, strlen(buf));
		ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	}
	wbuf_clear(&wb);
}

static off_t
file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/*
 * Incremental checkpoints: the head plus the journal's first tail_len
 * bytes are the whole image; after a restart the head and the journal give
 * back the state of the checkpoint, later entries cut; a journal that lost
 * what the head names is refused.
 */
START_TEST(test_checkpoint_head_and_journal)
{
	char dir[] = "/tmp/pbft-svc-XXXXXX", path[64];
	struct service *s, *t, *m = service_ledger_new();
	struct wbuf head, full;
	uint64_t tail, tail2;
	uint8_t d_ck[32], d[32];
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ledger", dir);
	wbuf_init_dynamic(&head, 1 << 20);
	wbuf_init_dynamic(&full, 1 << 24);
	s = service_ledger_open(path);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(s->ops->reopen(s, NULL, 0, &tail), 0);
	load(s, 300, 1);
	ck_assert_int_eq(s->ops->checkpoint(s, &head, &tail), 0);
	ck_assert_uint_gt(tail, head.len); /* the head is the small part */
	s->ops->digest(s, d_ck);
	ck_assert_int_eq(s->ops->sync(s), 0);
	load(s, 50, 2); /* after the checkpoint */
	/* head || tail bytes == the full image, which restores elsewhere. */
	wbuf_put_bytes(&full, head.p, head.len);
	ck_assert_int_eq(wbuf_reserve(&full, tail), 0);
	ck_assert_int_eq(s->ops->tail_read(s, 0, full.p + full.len, tail), 0);
	full.len += tail;
	ck_assert_int_eq(m->ops->restore(m, full.p, full.len), 0);
	m->ops->digest(m, d);
	ck_assert_mem_eq(d, d_ck, 32);
	ck_assert_int_eq(s->ops->tail_read(s, tail * 100, full.p, 1), -1);
	s->ops->free(s);

	/* Restart: the checkpoint's state, the later entries cut. */
	t = service_ledger_open(path);
	ck_assert_int_eq(t->ops->reopen(t, head.p, head.len, &tail2), 0);
	ck_assert_uint_eq(tail2, tail);
	ck_assert_uint_eq(service_ledger_count(t), 300);
	t->ops->digest(t, d);
	ck_assert_mem_eq(d, d_ck, 32);
	ck_assert_int_eq(file_size(path), (off_t)tail);
	load(t, 10, 3); /* and it goes on from there */
	ck_assert_uint_eq(service_ledger_count(t), 310);
	t->ops->free(t);

	/* A flipped byte in an entry's transaction (the first entry's
	 * bytes start after its 12-byte header): refused by the chain, state
	 * unchanged. */
	f = fopen(path, "r+");
	ck_assert_ptr_nonnull(f);
	fseek(f, 14, SEEK_SET);
	fputc('#', f);
	fclose(f);
	t = service_ledger_open(path);
	ck_assert_int_eq(t->ops->reopen(t, head.p, head.len, &tail2), -1);
	ck_assert_uint_eq(service_ledger_count(t), 0);
	/* A truncated journal: refused too; the empty state still works. */
	ck_assert_int_eq(truncate(path, (off_t)tail / 2), 0);
	ck_assert_int_eq(t->ops->reopen(t, head.p, head.len, &tail2), -1);
	ck_assert_int_eq(t->ops->reopen(t, NULL, 0, &tail2), 0);
	ck_assert_int_eq(file_size(path), 0);
	/* A head with trailing bytes is not a head. */
	ck_assert_int_eq(t->ops->reopen(t, full.p, full.len, &tail2), -1);
	/* The full image restores into the journaled service too. */
	ck_assert_int_eq(t->ops->restore(t, full.p, full.len), 0);
	ck_assert_int_eq(file_size(path), (off_t)tail);
	t->ops->digest(t, d);
	ck_assert_mem_eq(d, d_ck, 32);
	t->ops->free(t);
	m->ops->free(m);
	wbuf_clear(&head);
	wbuf_clear(&full);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* Stages the tail of src, up to tail, from what s holds on, in pieces;
 * the byte at flip (if not -1) arrives flipped. stage_put's answer. */
static int
feed(struct service *s, struct service *src, uint64_t tail, size_t piece,
    int64_t flip)
{
	uint64_t at = s->ops->stage_have(s);
	uint8_t *buf = malloc(piece);
	int rc = 0;

	ck_assert_ptr_nonnull(buf);
	while (rc == 0 && at < tail) {
		size_t n = tail - at < piece ? (size_t)(tail - at) : piece;

		ck_assert_int_eq(src->ops->tail_read(src, at, buf, n), 0);
		if (flip >= (int64_t)at && flip < (int64_t)(at + n))
			buf[flip - (int64_t)at] ^= 0x01;
		rc = s->ops->stage_put(s, buf, n);
		at += n;
	}
	free(buf);
	return rc;
}

/* A service under test: journaled in dir (journal 1) or in memory. */
static struct service *
open_svc(int journal, const char *path)
{
	struct service *s;
	uint64_t tail;

	if (!journal)
		return service_ledger_new();
	s = service_ledger_open(path);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(s->ops->reopen(s, NULL, 0, &tail), 0);
	return s;
}

/*
 * State transfer into a service that holds the start of the tail: the head
 * is checked first, then only the rest of its tail is staged, in odd
 * pieces; the state stays as it was until installed; what was staged for
 * one checkpoint counts for a later one; after installing, the service is
 * the source's and goes on like it.
 */
START_TEST(test_stage_transfer)
{
	char dir[] = "/tmp/pbft-svc-XXXXXX", path[64];
	struct service *src = service_ledger_new(), *dst;
	struct wbuf h1, h2, own;
	uint64_t t1, t2, town;
	uint8_t d_own[32], d2[32], d[32];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ledger", dir);
	wbuf_init_dynamic(&h1, 1 << 20);
	wbuf_init_dynamic(&h2, 1 << 20);
	wbuf_init_dynamic(&own, 1 << 20);
	dst = open_svc(_i, path);
	load(src, 200, 1);
	load(dst, 120, 1); /* the same first 120: a replica behind */
	ck_assert_int_eq(dst->ops->checkpoint(dst, &own, &town), 0);
	dst->ops->digest(dst, d_own);
	ck_assert_uint_eq(dst->ops->stage_have(dst), town);
	ck_assert_int_eq(src->ops->checkpoint(src, &h1, &t1), 0);
	ck_assert_int_eq(dst->ops->stage_check(dst, h1.p, h1.len - 1, d), -1);
	ck_assert_int_eq(dst->ops->stage_check(dst, h1.p, h1.len, d), 0);
	/* Half of checkpoint 1's tail, cut inside an entry. */
	ck_assert_int_eq(feed(dst, src, town + (t1 - town) / 2 + 5, 7, -1), 0);
	ck_assert_uint_eq(
	    dst->ops->stage_have(dst), town + (t1 - town) / 2 + 5);
	dst->ops->digest(dst, d);
	ck_assert_mem_eq(d, d_own, 32); /* staged is not installed */
	/* A later checkpoint; the rest of its tail. */
	load(src, 50, 2);
	ck_assert_int_eq(src->ops->checkpoint(src, &h2, &t2), 0);
	src->ops->digest(src, d2);
	ck_assert_int_eq(dst->ops->stage_check(dst, h2.p, h2.len, d), 0);
	ck_assert_mem_eq(d, d2, 32); /* before any more of the tail */
	ck_assert_uint_eq(
	    dst->ops->stage_have(dst), town + (t1 - town) / 2 + 5);
	ck_assert_int_eq(feed(dst, src, t2, 4096, -1), 0);
	ck_assert_uint_eq(dst->ops->stage_have(dst), t2);
	dst->ops->digest(dst, d);
	ck_assert_mem_eq(d, d_own, 32);
	ck_assert_int_eq(dst->ops->stage_install(dst), 0);
	dst->ops->digest(dst, d);
	ck_assert_mem_eq(d, d2, 32);
	ck_assert_uint_eq(service_ledger_count(dst), 250);
	ck_assert_uint_eq(dst->ops->stage_have(dst), t2);
	ck_assert_int_eq(dst->ops->stage_install(dst), -1); /* once */
	if (_i) {
		/* Durable as the head names it: a restart takes it back. */
		ck_assert_int_eq(file_size(path), (off_t)t2);
		dst->ops->free(dst);
		dst = service_ledger_open(path);
		ck_assert_int_eq(dst->ops->reopen(dst, h2.p, h2.len, &t1), 0);
		ck_assert_uint_eq(t1, t2);
	}
	load(src, 10, 3);
	load(dst, 10, 3);
	src->ops->digest(src, d2);
	dst->ops->digest(dst, d);
	ck_assert_mem_eq(d, d2, 32);
	src->ops->free(src);
	dst->ops->free(dst);
	wbuf_clear(&h1);
	wbuf_clear(&h2);
	wbuf_clear(&own);
	unlink(path);
	rmdir(dir);
}
END_TEST

/*
 * Wrong bytes from a peer: a bad entry header is refused as it comes, a bad
 * transaction byte by the chain at the last entry; either way the state and
 * the journal are as before once dropped, and right bytes are then
 * accepted. Staged bytes are forgotten when the state moves on its own.
 */
START_TEST(test_stage_refuses)
{
	char dir[] = "/tmp/pbft-svc-XXXXXX", path[64];
	struct service *src = service_ledger_new(), *dst;
	struct wbuf h, own;
	uint64_t t, town;
	uint8_t d_own[32], d[32];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ledger", dir);
	wbuf_init_dynamic(&h, 1 << 20);
	wbuf_init_dynamic(&own, 1 << 20);
	dst = open_svc(_i, path);
	load(src, 200, 1);
	load(dst, 120, 1);
	ck_assert_int_eq(dst->ops->checkpoint(dst, &own, &town), 0);
	dst->ops->digest(dst, d_own);
	ck_assert_int_eq(src->ops->checkpoint(src, &h, &t), 0);
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	/* The first staged byte is the next entry's index. */
	ck_assert_int_eq(feed(dst, src, t, 1000, (int64_t)town), -1);
	dst->ops->stage_drop(dst);
	ck_assert_uint_eq(dst->ops->stage_have(dst), town);
	if (_i)
		ck_assert_int_eq(file_size(path), (off_t)town);
	/* Nothing is taken without a head checked (the drop forgot it). */
	ck_assert_int_eq(feed(dst, src, t, 1000, -1), -1);
	ck_assert_uint_eq(dst->ops->stage_have(dst), town);
	/* A transaction byte (after the 12-byte header): the chain at the
	 * last entry refuses it. */
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	ck_assert_int_eq(feed(dst, src, t, 1000, (int64_t)town + 14), -1);
	ck_assert_int_eq(dst->ops->stage_install(dst), -1);
	dst->ops->stage_drop(dst);
	dst->ops->digest(dst, d);
	ck_assert_mem_eq(d, d_own, 32);
	ck_assert_uint_eq(service_ledger_count(dst), 120);
	/* Right bytes now. */
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	ck_assert_int_eq(feed(dst, src, t, 1000, -1), 0);
	/* Executing forgets what was staged, and the head checked. */
	load(dst, 1, 9);
	ck_assert_uint_gt(dst->ops->stage_have(dst), town);
	ck_assert_uint_lt(dst->ops->stage_have(dst), t);
	ck_assert_int_eq(dst->ops->stage_install(dst), -1);
	/* That entry is not the source's: its tail, staged after it, does
	 * not make the head's chain. */
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	ck_assert_int_eq(feed(dst, src, t, 1000, -1), -1);
	src->ops->free(src);
	dst->ops->free(dst);
	wbuf_clear(&h);
	wbuf_clear(&own);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* Where a ledger head keeps its tail's length: after "PBFTSVC2", the
 * count and the chain. */
#define HEAD_JLEN_AT (8 + 8 + 32)

static void
put_u64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Runs k submits of len bytes each on s. */
static void
load_big(struct service *s, int k, size_t len)
{
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;
	uint8_t *tx = malloc(len);

	ck_assert_ptr_nonnull(tx);
	wbuf_init_dynamic(&wb, 1 << 20);
	for (int i = 0; i < k; i++) {
		memset(tx, 'a' + i % 26, len);
		wbuf_reset(&wb);
		ledger_op_submit(&wb, tx, len);
		ck_assert_int_eq(run(s, &wb, res, &rlen), SVC_OK);
	}
	wbuf_clear(&wb);
	free(tx);
}

/*
 * The digest covers all a head names, the tail's length too: a head that
 * names a longer (or shorter) tail than the certified one has another
 * digest, so a fetching replica refuses it before it asks for any of the
 * tail; and nothing is staged without a head checked first.
 */
START_TEST(test_stage_head_first)
{
	char dir[] = "/tmp/pbft-svc-XXXXXX", path[64];
	struct service *src = service_ledger_new(), *dst;
	struct wbuf h;
	uint64_t t;
	uint8_t d_src[32], d[32], byte = 0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ledger", dir);
	wbuf_init_dynamic(&h, 1 << 20);
	dst = open_svc(_i, path);
	load(src, 50, 1);
	ck_assert_int_eq(src->ops->checkpoint(src, &h, &t), 0);
	src->ops->digest(src, d_src);
	/* No head checked: not a byte is taken. */
	ck_assert_int_eq(dst->ops->stage_put(dst, &byte, 1), -1);
	ck_assert_uint_eq(dst->ops->stage_have(dst), 0);
	if (_i)
		ck_assert_int_eq(file_size(path), 0);
	/* The true head gives the certified digest. */
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	ck_assert_mem_eq(d, d_src, 32);
	/* A head naming a tail 256 MiB longer, or one byte shorter, does
	 * not. */
	put_u64le(h.p + HEAD_JLEN_AT, t + (256u << 20));
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	ck_assert_int_ne(memcmp(d, d_src, 32), 0);
	put_u64le(h.p + HEAD_JLEN_AT, t - 1);
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	ck_assert_int_ne(memcmp(d, d_src, 32), 0);
	dst->ops->stage_drop(dst);
	ck_assert_int_eq(dst->ops->stage_put(dst, &byte, 1), -1);
	src->ops->free(src);
	dst->ops->free(dst);
	wbuf_clear(&h);
	unlink(path);
	rmdir(dir);
}
END_TEST

/*
 * What a checked head bounds: the true tail is taken and one byte more is
 * refused; an invented tail of entries in the right format and order (as
 * long as the true ones) is refused at the head's last entry by its chain,
 * and never once is more staged, in memory or in the journal, than the
 * certified tail.
 */
START_TEST(test_stage_bounded)
{
	char dir[] = "/tmp/pbft-svc-XXXXXX", path[64];
	struct service *src = service_ledger_new(), *dst;
	struct wbuf h;
	uint64_t t, at = 0;
	uint8_t d[32], extra = 0;
	const size_t elen = 30000, piece = 1 << 20;
	uint8_t *buf = malloc(piece);
	int rc = 0;

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ledger", dir);
	wbuf_init_dynamic(&h, 1 << 20);
	dst = open_svc(_i, path);
	load_big(src, 100, elen);
	ck_assert_int_eq(src->ops->checkpoint(src, &h, &t), 0);
	ck_assert_uint_eq(t, 100 * (12 + elen));
	/* The true tail, then one byte past it. */
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	ck_assert_int_eq(feed(dst, src, t, piece, -1), 0);
	ck_assert_uint_eq(dst->ops->stage_have(dst), t);
	ck_assert_int_eq(dst->ops->stage_put(dst, &extra, 1), -1);
	ck_assert_uint_eq(dst->ops->stage_have(dst), t);
	dst->ops->stage_drop(dst);
	/* An invented tail, sent on past the certified end. */
	ck_assert_int_eq(dst->ops->stage_check(dst, h.p, h.len, d), 0);
	for (int k = 0; rc == 0 && k < 1000; k++) {
		for (size_t i = 0; i < piece; i++) {
			uint64_t o = at + i, e = o / (12 + elen);
			uint64_t pos = o % (12 + elen);

			buf[i] = pos < 8 ? (uint8_t)(e >> (8 * pos))
			    : pos < 12   ? (uint8_t)(elen >> (8 * (pos - 8)))
			                 : 0xa5;
		}
		rc = dst->ops->stage_put(dst, buf, piece);
		if (rc == -1 && at + piece > t)
			rc = dst->ops->stage_put(dst, buf, (size_t)(t - at));
		at += piece;
		ck_assert_uint_le(dst->ops->stage_have(dst), t);
		if (_i)
			ck_assert_int_le(file_size(path), (off_t)t);
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(dst->ops->stage_install(dst), -1);
	dst->ops->stage_drop(dst);
	ck_assert_uint_eq(dst->ops->stage_have(dst), 0);
	src->ops->free(src);
	dst->ops->free(dst);
	free(buf);
	wbuf_clear(&h);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* Where a head's tail starts, from its first bytes. */
START_TEST(test_head_tail)
{
	struct service *s = service_ledger_new();
	struct wbuf h;
	uint64_t t, got;

	wbuf_init_dynamic(&h, 1 << 20);
	load(s, 20, 1);
	ck_assert_int_eq(s->ops->checkpoint(s, &h, &t), 0);
	for (size_t n = 0; n < 56; n++)
		ck_assert_int_eq(s->ops->head_tail(h.p, n, &got), 1);
	ck_assert_int_eq(s->ops->head_tail(h.p, 56, &got), 0);
	ck_assert_uint_eq(got, t);
	ck_assert_int_eq(s->ops->head_tail(h.p, h.len, &got), 0);
	h.p[0] ^= 1;
	ck_assert_int_eq(s->ops->head_tail(h.p, 3, &got), -1);
	h.p[0] ^= 1;
	h.p[48] = 0; /* a tail too short for its count */
	h.p[49] = 0;
	ck_assert_int_eq(s->ops->head_tail(h.p, 56, &got), -1);
	s->ops->free(s);
	wbuf_clear(&h);
}
END_TEST

/* ---- key-value access --------------------------------------------------- */

/* Runs op (put or del of key, value v) as client c; the status. */
static uint8_t
as(struct service *s, uint32_t c, uint8_t code, const char *key, const char *v)
{
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;
	uint8_t st;

	wbuf_init_dynamic(&wb, 1 << 16);
	if (code == LEDGER_OP_PUT)
		ledger_op_put(&wb, key, strlen(key), v, strlen(v));
	else if (code == LEDGER_OP_DEL)
		ledger_op_del(&wb, key, strlen(key));
	else
		ledger_op_get(&wb, key, strlen(key));
	st = s->ops->execute(s, 1, c, wb.p, wb.len, res, &rlen);
	if (code == LEDGER_OP_GET && st == SVC_OK && v != NULL) {
		ck_assert_uint_eq(rlen, strlen(v));
		ck_assert_mem_eq(res, v, rlen);
	}
	wbuf_clear(&wb);
	return st;
}

#define PUT LEDGER_OP_PUT
#define DEL LEDGER_OP_DEL
#define GET LEDGER_OP_GET

/* Three clients: 0 plain, 1 admin, 2 may write team/; pub/ is shared. */
static struct cluster_cfg *
access_cfg(uint64_t max_keys, uint64_t max_bytes)
{
	struct cluster_cfg *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	c->nclients = 3;
	c->clients = calloc(3, sizeof(*c->clients));
	ck_assert_ptr_nonnull(c->clients);
	c->clients[1].admin = true;
	c->clients[2].write_prefixes.n = 1;
	c->clients[2].write_prefixes.p[0] = strdup("team/");
	c->shared_prefixes.n = 1;
	c->shared_prefixes.p[0] = strdup("pub/");
	c->client_max_keys = max_keys;
	c->client_max_bytes = max_bytes;
	return c;
}

/* Without any rules: a key is its creator's; others may only read it. */
START_TEST(test_kv_owner)
{
	struct service *s = service_ledger_new();
	uint8_t d0[32], d1[32];

	ck_assert_int_eq(as(s, 0, PUT, "k", "mine"), SVC_OK);
	s->ops->digest(s, d0);
	ck_assert_int_eq(as(s, 1, PUT, "k", "theirs"), SVC_DENIED);
	ck_assert_int_eq(as(s, 1, DEL, "k", NULL), SVC_DENIED);
	s->ops->digest(s, d1);
	ck_assert_mem_eq(d0, d1, 32); /* a refusal changes nothing */
	ck_assert_int_eq(as(s, 1, GET, "k", "mine"), SVC_OK);
	ck_assert_int_eq(as(s, 0, PUT, "k", "mine2"), SVC_OK);
	ck_assert_int_eq(as(s, 1, GET, "k", "mine2"), SVC_OK);
	ck_assert_int_eq(as(s, 0, DEL, "k", NULL), SVC_OK);
	/* Deleted, the key is free: the next creator owns it. */
	ck_assert_int_eq(as(s, 1, PUT, "k", "theirs"), SVC_OK);
	ck_assert_int_eq(as(s, 0, PUT, "k", "mine"), SVC_DENIED);
	ck_assert_int_eq(as(s, 1, DEL, "nokey", NULL), SVC_NOT_FOUND);
	s->ops->free(s);
}
END_TEST

/* admin, write_prefixes and shared_prefixes grant writes; the owner stays. */
START_TEST(test_kv_access_list)
{
	struct service *s = service_ledger_new();
	struct cluster_cfg *c = access_cfg(0, 0);

	ck_assert_int_eq(service_ledger_access(s, c), 0);
	cfg_free(c); /* the service keeps its own copy */
	ck_assert_int_eq(as(s, 0, PUT, "k", "v"), SVC_OK);
	ck_assert_int_eq(as(s, 0, PUT, "team/x", "v"), SVC_OK);
	ck_assert_int_eq(as(s, 0, PUT, "pub/y", "v"), SVC_OK);
	/* The admin may write anything; the key is still client 0's. */
	ck_assert_int_eq(as(s, 1, PUT, "k", "admin"), SVC_OK);
	ck_assert_int_eq(as(s, 0, PUT, "k", "back"), SVC_OK);
	ck_assert_int_eq(as(s, 2, PUT, "k", "no"), SVC_DENIED);
	ck_assert_int_eq(as(s, 2, DEL, "k", NULL), SVC_DENIED);
	/* Client 2 writes team/ whoever made the key, but nothing else. */
	ck_assert_int_eq(as(s, 2, PUT, "team/x", "two"), SVC_OK);
	ck_assert_int_eq(as(s, 2, PUT, "team", "v"), SVC_OK); /* creates */
	ck_assert_int_eq(as(s, 0, PUT, "team", "v"), SVC_DENIED);
	ck_assert_int_eq(as(s, 2, DEL, "team/x", NULL), SVC_OK);
	/* pub/ is anyone's to write; a client unknown to the file too. */
	ck_assert_int_eq(as(s, 2, PUT, "pub/y", "w"), SVC_OK);
	ck_assert_int_eq(as(s, 7, PUT, "pub/y", "w"), SVC_OK);
	ck_assert_int_eq(as(s, 7, PUT, "k", "w"), SVC_DENIED);
	ck_assert_int_eq(as(s, 1, DEL, "k", NULL), SVC_OK);
	s->ops->free(s);
}
END_TEST

/* Quotas count what an owner holds; refusals say SVC_QUOTA. */
START_TEST(test_kv_quota)
{
	struct service *s = service_ledger_new();
	struct cluster_cfg *c = access_cfg(2, 20);
	uint8_t d0[32], d1[32];

	ck_assert_int_eq(service_ledger_access(s, c), 0);
	cfg_free(c);
	ck_assert_int_eq(as(s, 0, PUT, "a", "123456789"), SVC_OK); /* 10 */
	ck_assert_int_eq(as(s, 0, PUT, "b", "12345"), SVC_OK); /* 16 */
	s->ops->digest(s, d0);
	ck_assert_int_eq(as(s, 0, PUT, "c", ""), SVC_QUOTA); /* 3 keys */
	ck_assert_int_eq(as(s, 0, PUT, "b", "123456789A"), SVC_QUOTA); /* 21 */
	/* The admin writing client 0's key is charged to client 0. */
	ck_assert_int_eq(as(s, 1, PUT, "b", "123456789A"), SVC_QUOTA);
	s->ops->digest(s, d1);
	ck_assert_mem_eq(d0, d1, 32);
	ck_assert_int_eq(as(s, 0, PUT, "b", "123456789"), SVC_OK); /* 20 */
	ck_assert_int_eq(as(s, 1, PUT, "c", "x"), SVC_OK); /* client 1's */
	ck_assert_int_eq(as(s, 0, DEL, "b", NULL), SVC_OK);
	ck_assert_int_eq(as(s, 0, PUT, "c2", "x"), SVC_OK);
	ck_assert_int_eq(as(s, 0, PUT, "c3", "x"), SVC_QUOTA);
	s->ops->free(s);
}
END_TEST

/* Owners are in the image and in the digest, and survive a restore. */
START_TEST(test_kv_owner_snapshot)
{
	struct service *a = service_ledger_new(), *b = service_ledger_new();
	struct service *o = service_ledger_new();
	uint8_t da[32], db[32], d_o[32], res[PBFT_RESULT_BYTES_MAX];
	struct wbuf snap, head;
	uint64_t tail;
	size_t rlen;

	wbuf_init_dynamic(&snap, 1 << 20);
	wbuf_init_dynamic(&head, 1 << 20);
	ck_assert_int_eq(as(a, 2, PUT, "k", "v"), SVC_OK);
	ck_assert_int_eq(as(o, 1, PUT, "k", "v"), SVC_OK);
	ck_assert_int_eq(ledger_op_submit(&head, "tx", 2), 0); /* a tail too */
	ck_assert_int_eq(
	    a->ops->execute(a, 1, 2, head.p, head.len, res, &rlen), SVC_OK);
	ck_assert_int_eq(
	    o->ops->execute(o, 1, 1, head.p, head.len, res, &rlen), SVC_OK);
	wbuf_reset(&head);
	ck_assert_int_eq(a->ops->checkpoint(a, &head, &tail), 0);
	a->ops->digest(a, da);
	o->ops->digest(o, d_o);
	ck_assert_int_ne(memcmp(da, d_o, 32), 0); /* same pair, other owner */
	ck_assert_int_eq(a->ops->snapshot(a, &snap), 0);
	ck_assert_int_eq(b->ops->restore(b, snap.p, snap.len), 0);
	b->ops->digest(b, db);
	ck_assert_mem_eq(da, db, 32);
	ck_assert_int_eq(as(b, 0, PUT, "k", "x"), SVC_DENIED);
	ck_assert_int_eq(as(b, 1, PUT, "k", "x"), SVC_DENIED);
	ck_assert_int_eq(as(b, 2, PUT, "k", "x"), SVC_OK);
	/* An owner past the client limit is no image (the head ends with
	 * the only key's owner). */
	ck_assert_uint_eq(snap.p[head.len - 4], 2);
	snap.p[head.len - 1] = 0x7f;
	ck_assert_int_eq(b->ops->restore(b, snap.p, snap.len), -1);
	wbuf_clear(&snap);
	wbuf_clear(&head);
	a->ops->free(a);
	b->ops->free(b);
	o->ops->free(o);
}
END_TEST

/*
 * An image from before owners ("PBFTSVC2"): read, its pairs hashed into
 * kvsum as they were (H(klen | key | value)); its keys have no owner, so
 * only an admin or a prefix grant changes them.
 */
START_TEST(test_kv_old_image)
{
	static const uint8_t pair[] = {1, 0, 'k', 'v'};
	struct service *s = service_ledger_new();
	struct cluster_cfg *c = access_cfg(0, 0);
	uint8_t img[8 + 8 + 32 + 8 + 8 + 2 + 1 + 4 + 1] = "PBFTSVC2";
	uint8_t want[14 + 8 + 32 + 8 + 32] = "pbft ledger v2", d[32];
	size_t at = 8 + 8 + 32 + 8;

	img[at] = 1; /* nkeys */
	at += 8;
	memcpy(img + at, "\x01\x00k\x01\x00\x00\x00v", 8);
	ck_assert_int_eq(s->ops->restore(s, img, sizeof(img)), 0);
	sig_sha256(pair, sizeof(pair), want + 14 + 8 + 32 + 8); /* kvsum */
	sig_sha256(want, sizeof(want), want);
	s->ops->digest(s, d);
	ck_assert_mem_eq(d, want, 32);
	ck_assert_int_eq(as(s, 0, GET, "k", "v"), SVC_OK);
	ck_assert_int_eq(as(s, 0, PUT, "k", "x"), SVC_DENIED);
	ck_assert_int_eq(service_ledger_access(s, c), 0);
	ck_assert_int_eq(as(s, 0, PUT, "k", "x"), SVC_DENIED);
	ck_assert_int_eq(as(s, 1, PUT, "k", "x"), SVC_OK);
	cfg_free(c);
	s->ops->free(s);
}
END_TEST

static Suite *
service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("valid");

	tcase_add_test(tc, test_submit_indexes);
	tcase_add_test(tc, test_kv);
	tcase_add_test(tc, test_digest_and_snapshot);
	tcase_add_test(tc, test_checkpoint_head_and_journal);
	tcase_add_loop_test(tc, test_stage_transfer, 0, 2);
	tcase_add_test(tc, test_head_tail);
	tcase_add_test(tc, test_kv_owner);
	tcase_add_test(tc, test_kv_access_list);
	tcase_add_test(tc, test_kv_quota);
	tcase_add_test(tc, test_kv_owner_snapshot);
	tcase_add_test(tc, test_kv_old_image);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_test(tc, test_bad_ops);
	tcase_add_loop_test(tc, test_stage_refuses, 0, 2);
	tcase_add_loop_test(tc, test_stage_head_first, 0, 2);
	tcase_add_loop_test(tc, test_stage_bounded, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(service_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
