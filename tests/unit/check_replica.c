/*
 * check_replica.c - the replica driver's reply table, part of the
 * checkpointed state (pbft-replica/replica_int.h, struct reply_slot): each
 * client's last reply survives its encoding into a snapshot image and back,
 * the image splits into client table, reply table and service image, a
 * malformed table is refused, and the digest handed to the core changes
 * with any byte of a reply.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "replica_int.h"
#include "sig.h"

#define NCLIENTS 5

static void
sha256(void *ctx, const uint8_t *data, size_t len, uint8_t out[PBFT_DIGEST_LEN])
{
	(void)ctx;
	sig_sha256(data, len, out);
}

static const struct pbft_crypto crypto = {.digest = sha256};

static struct reply_slot *
slot(uint64_t ts, uint64_t seq, uint8_t status, const char *result)
{
	struct reply_slot *s = calloc(1, sizeof(*s));

	ck_assert_ptr_nonnull(s);
	s->ts = ts;
	s->seq = seq;
	s->view = 7;
	s->status = status;
	s->len = (uint32_t)strlen(result);
	memcpy(s->result, result, s->len);
	return s;
}

static void
fill(struct reply_slot **v)
{
	memset(v, 0, NCLIENTS * sizeof(*v));
	v[1] = slot(11, 8, 0, "executed at 8");
	v[3] = slot(5, 12, 2, "");
	v[4] = calloc(1, sizeof(*v[4])); /* allocated, never executed */
	v[4]->result[0] = 'x';
	ck_assert_int_eq(v[4]->len, 0);
}

static void
clear(struct reply_slot **v)
{
	for (int i = 0; i < NCLIENTS; i++) {
		free(v[i]);
		v[i] = NULL;
	}
}

static void
encode(struct reply_slot **v, struct wbuf *wb)
{
	wbuf_init_dynamic(wb, 1 << 20);
	replies_encode(v, NCLIENTS, wb);
	ck_assert(!wbuf_failed(wb));
}

static void
fold(struct reply_slot **v, uint8_t out[PBFT_DIGEST_LEN])
{
	static const uint8_t sd[PBFT_DIGEST_LEN] = {1, 2, 3};
	struct wbuf wb;

	encode(v, &wb);
	replies_fold(&crypto, sd, wb.p, wb.len, out);
	wbuf_clear(&wb);
}

static void
same_reply(const struct reply_slot *a, const struct reply_slot *b)
{
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(a->ts, b->ts);
	ck_assert_uint_eq(a->seq, b->seq);
	ck_assert_uint_eq(a->status, b->status);
	ck_assert_uint_eq(a->len, b->len);
	ck_assert_int_eq(memcmp(a->result, b->result, a->len), 0);
}

/* A snapshot image built as snap_build does, split and loaded back. */
START_TEST(test_reply_survives_image)
{
	struct reply_slot *v[NCLIENTS], *w[NCLIENTS] = {0};
	static const uint8_t ct[] = {'c', 't'};
	const uint8_t *cp, *rp, *sp;
	size_t clen, rlen, slen, at;
	struct wbuf img;

	fill(v);
	wbuf_init_dynamic(&img, 1 << 20);
	wbuf_put_u32(&img, sizeof(ct));
	wbuf_put_bytes(&img, ct, sizeof(ct));
	at = img.len;
	wbuf_put_u32(&img, 0);
	replies_encode(v, NCLIENTS, &img);
	wbuf_patch_u32(&img, at, (uint32_t)(img.len - at - 4));
	wbuf_put_bytes(&img, "svc", 3);
	ck_assert_int_eq(
	    image_split(img.p, img.len, &cp, &clen, &rp, &rlen, &sp, &slen), 0);
	ck_assert_uint_eq(clen, sizeof(ct));
	ck_assert_int_eq(memcmp(cp, ct, clen), 0);
	ck_assert_uint_eq(slen, 3);
	ck_assert_int_eq(memcmp(sp, "svc", 3), 0);
	/* A slot of a client not in the image is emptied. */
	w[0] = slot(3, 4, 0, "older state");
	ck_assert_int_eq(replies_load(w, NCLIENTS, rp, rlen, false), 0);
	ck_assert_uint_eq(w[0]->seq, 4); /* a check changes nothing */
	ck_assert_int_eq(replies_load(w, NCLIENTS, rp, rlen, true), 0);
	ck_assert_uint_eq(w[0]->seq, 0);
	ck_assert_uint_eq(w[0]->ts, 0);
	same_reply(v[1], w[1]);
	same_reply(v[3], w[3]);
	ck_assert_ptr_null(w[2]);
	ck_assert_ptr_null(w[4]);
	/* The view is no part of the state. */
	ck_assert_uint_eq(w[1]->view, 0);
	/* Cut anywhere, the image does not split or its table is refused. */
	for (size_t n = 0; n < img.len - 3; n++)
		ck_assert(image_split(img.p, n, &cp, &clen, &rp, &rlen, &sp,
		              &slen) == -1 ||
		    replies_load(w, NCLIENTS, rp, rlen, false) == -1);
	wbuf_clear(&img);
	clear(v);
	clear(w);
}
END_TEST

/* No bytes (a snapshot of the older format): no replies. */
START_TEST(test_empty_table)
{
	struct reply_slot *w[NCLIENTS] = {0};
	struct wbuf wb;

	w[2] = slot(1, 2, 0, "r");
	ck_assert_int_eq(replies_load(w, NCLIENTS, NULL, 0, true), 0);
	ck_assert_uint_eq(w[2]->seq, 0);
	clear(w);
	encode(w, &wb); /* no replies: a count of 0 */
	ck_assert_uint_eq(wb.len, 4);
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, true), 0);
	wbuf_clear(&wb);
}
END_TEST

/* An encoded table of n entries by hand: clients c, seqs q, results of
 * len zero bytes. */
static void
table(struct wbuf *wb, uint32_t n, const uint32_t *c, const uint64_t *q,
    uint32_t len)
{
	wbuf_init_dynamic(wb, 1 << 20);
	wbuf_put_u32(wb, n);
	for (uint32_t i = 0; i < n; i++) {
		wbuf_put_u32(wb, c[i]);
		wbuf_put_u64(wb, 1);
		wbuf_put_u64(wb, q[i]);
		wbuf_put_u8(wb, 0);
		wbuf_put_u32(wb, len);
		for (uint32_t k = 0; k < len; k++)
			wbuf_put_u8(wb, 0);
	}
}

/* Tables a correct replica never writes are refused. */
START_TEST(test_malformed_refused)
{
	struct reply_slot *v[NCLIENTS], *w[NCLIENTS] = {0};
	struct wbuf wb;

	fill(v);
	encode(v, &wb);
	wbuf_put_u8(&wb, 0); /* trailing byte */
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, false), -1);
	wbuf_clear(&wb);
	encode(v, &wb);
	ck_assert_int_eq(replies_load(w, 1, wb.p, wb.len, false), -1);
	ck_assert_int_eq(replies_load(w, 3, wb.p, wb.len, false), -1);
	wbuf_patch_u32(&wb, 0, NCLIENTS + 1); /* more than clients */
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, false), -1);
	wbuf_clear(&wb);
	/* At the bound a result is taken; beyond it, not. */
	free(v[3]);
	v[3] = slot(5, 12, 2, "");
	v[3]->len = PBFT_RESULT_BYTES_MAX;
	encode(v, &wb);
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, false), 0);
	wbuf_clear(&wb);
	table(&wb, 1, (const uint32_t[]){0}, (const uint64_t[]){1},
	    PBFT_RESULT_BYTES_MAX + 1);
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, false), -1);
	wbuf_clear(&wb);
	/* Clients in order, once each, with a seq. */
	table(&wb, 2, (const uint32_t[]){1, 2}, (const uint64_t[]){1, 2}, 0);
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, false), 0);
	wbuf_clear(&wb);
	table(&wb, 2, (const uint32_t[]){2, 1}, (const uint64_t[]){1, 2}, 0);
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, false), -1);
	wbuf_clear(&wb);
	table(&wb, 2, (const uint32_t[]){1, 1}, (const uint64_t[]){1, 2}, 0);
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, false), -1);
	wbuf_clear(&wb);
	table(&wb, 1, (const uint32_t[]){1}, (const uint64_t[]){0}, 0);
	ck_assert_int_eq(replies_load(w, NCLIENTS, wb.p, wb.len, false), -1);
	wbuf_clear(&wb);
	clear(v);
	clear(w);
}
END_TEST

/* Replicas that agree on the digest agree on every reply byte. */
START_TEST(test_digest_covers_replies)
{
	struct reply_slot *v[NCLIENTS];
	uint8_t d0[PBFT_DIGEST_LEN], d[PBFT_DIGEST_LEN];

	fill(v);
	fold(v, d0);
	fold(v, d);
	ck_assert_int_eq(memcmp(d0, d, sizeof(d)), 0);
	v[1]->view = 9; /* not part of the state */
	fold(v, d);
	ck_assert_int_eq(memcmp(d0, d, sizeof(d)), 0);
	v[1]->result[4] ^= 1;
	fold(v, d);
	ck_assert_int_ne(memcmp(d0, d, sizeof(d)), 0);
	v[1]->result[4] ^= 1;
	v[3]->status = 0;
	fold(v, d);
	ck_assert_int_ne(memcmp(d0, d, sizeof(d)), 0);
	v[3]->status = 2;
	v[3]->seq++;
	fold(v, d);
	ck_assert_int_ne(memcmp(d0, d, sizeof(d)), 0);
	v[3]->seq--;
	v[1]->ts++;
	fold(v, d);
	ck_assert_int_ne(memcmp(d0, d, sizeof(d)), 0);
	clear(v);
}
END_TEST

static Suite *
replica_suite(void)
{
	Suite *s = suite_create("replica");
	TCase *tc = tcase_create("replies");

	tcase_add_test(tc, test_reply_survives_image);
	tcase_add_test(tc, test_empty_table);
	tcase_add_test(tc, test_malformed_refused);
	tcase_add_test(tc, test_digest_covers_replies);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(replica_suite());
	int failed;

	log_set_level(LOG_LVL_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
