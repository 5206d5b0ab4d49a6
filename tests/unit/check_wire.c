/*
 * check_wire.c - the wire codec: every message type round-trips; every
 * failure class gives its error code; every truncation of a valid frame is
 * refused and every single-bit change decodes or fails cleanly.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "samples.h"
#include "wire.h"

static uint8_t arena_mem[1 << 22];

static enum wire_err
decode(const uint8_t *p, size_t len, struct pbft_msg *m)
{
	struct wire_arena a;

	wire_arena_init(&a, arena_mem, sizeof(arena_mem));
	return wire_decode(p, len, m, &a);
}

static void
frame(int i, struct wbuf *wb)
{
	wbuf_init_dynamic(wb, 1 << 20);
	ck_assert_int_eq(sample_frame(i, wb), 0);
}

START_TEST(test_roundtrip_every_type)
{
	for (int i = 0; i < SAMPLES_COUNT; i++) {
		struct wbuf a, b;
		struct pbft_msg m;

		frame(i, &a);
		ck_assert_int_eq(decode(a.p, a.len, &m), WIRE_OK);
		wbuf_init_dynamic(&b, 1 << 20);
		ck_assert_int_eq(wire_encode(&b, &m), 0);
		ck_assert_uint_eq(a.len, b.len);
		ck_assert_int_eq(memcmp(a.p, b.p, a.len), 0);
		wbuf_clear(&a);
		wbuf_clear(&b);
	}
}
END_TEST

START_TEST(test_nested_fields)
{
	struct wbuf a;
	struct pbft_msg m;

	frame(9, &a); /* new view: 2 view changes, 3 O entries */
	ck_assert_int_eq(decode(a.p, a.len, &m), WIRE_OK);
	ck_assert_int_eq(m.type, PBFT_MSG_NEW_VIEW);
	ck_assert_uint_eq(m.u.new_view.nvc, 2);
	ck_assert_uint_eq(m.u.new_view.npp, 3);
	ck_assert_uint_eq(m.u.new_view.vcs[0].nprepared, 2);
	ck_assert_uint_eq(m.u.new_view.vcs[0].prepared[1].seq, 6);
	ck_assert_uint_eq(m.u.new_view.vcs[0].npreprepared, 3);
	ck_assert_uint_eq(m.u.new_view.vcs[0].preprepared[2].digest[0], 7);
	ck_assert_uint_eq(m.u.new_view.vcs[0].nckpt, 3);
	ck_assert_uint_eq(m.u.new_view.vcs[0].ckpt[2].replica, 3);
	ck_assert_uint_eq(m.u.new_view.pps[2].seq, 7);
	wbuf_clear(&a);
}
END_TEST

START_TEST(test_batch_roundtrip)
{
	struct pbft_request in[3], out[3];
	struct wbuf wb, auth;
	uint32_t k;

	for (int i = 0; i < 3; i++)
		in[i] = (struct pbft_request){.client = (uint32_t)i,
		    .timestamp = 10 + (uint64_t)i,
		    .op_len = 3,
		    .op = (const uint8_t *)"abc",
		    .auth_len = 2,
		    .auth = (const uint8_t *)"xy"};
	wbuf_init_dynamic(&wb, 4096);
	wbuf_init_dynamic(&auth, WIRE_BATCH_AUTH_BYTES_MAX);
	ck_assert_int_eq(wire_encode_batch(&wb, in, 3), 0);
	ck_assert_int_eq(
	    wire_decode_batch(wb.p, wb.len, out, 3, &k, &auth), WIRE_OK);
	ck_assert_uint_eq(k, 3);
	ck_assert_uint_eq(out[2].timestamp, 12);
	ck_assert_uint_eq(out[2].auth_len, 2);
	ck_assert_mem_eq(out[2].auth, "xy", 2);
	ck_assert_int_eq(
	    wire_decode_batch(wb.p, wb.len, out, 2, &k, &auth), WIRE_E_TOO_BIG);
	ck_assert_int_eq(wire_decode_batch(wb.p, wb.len - 1, out, 3, &k, &auth),
	    WIRE_E_TRUNCATED);
	/* Without a place for them, no authenticators. */
	ck_assert_int_eq(
	    wire_decode_batch(wb.p, wb.len, out, 3, &k, NULL), WIRE_OK);
	ck_assert_ptr_null(out[1].auth);
	ck_assert_uint_eq(out[1].auth_len, 0);
	wbuf_clear(&wb);
	wbuf_clear(&auth);
}
END_TEST

/*
 * Requests of one client group (common/reqauth.h) share their signature,
 * MACs and upper tree path: the compact batch carries those once, and the
 * decoder rebuilds every authenticator byte for byte.
 */
START_TEST(test_batch_shares_authenticators)
{
	enum { N = 64, ALEN = 64 + 3 + 6 * 32 + 4 * 16 };
	static uint8_t auths[N][ALEN];
	struct pbft_request in[N + 1], out[N + 1];
	struct wbuf wb, auth;
	size_t plain = 4;
	uint32_t k;

	for (int i = 0; i < N; i++) {
		memset(auths[i], 0x5a, ALEN); /* same signature and MACs */
		auths[i][66] = (uint8_t)i; /* index */
		for (int l = 0; l < 6;
		     l++) /* siblings differ below the split */
			memset(auths[i] + 67 + 32 * l,
			    l < __builtin_ctz((unsigned)i | 64) + 1 ? i + l : 0,
			    32);
		in[i] = (struct pbft_request){.client = 7,
		    .timestamp = (uint64_t)i + 1,
		    .op_len = 3,
		    .op = (const uint8_t *)"abc",
		    .auth_len = ALEN,
		    .auth = auths[i]};
		plain += wire_request_bytes(&in[i]);
	}
	/* Another client's request in between shares nothing. */
	in[N] = in[N - 1];
	in[N].client = 8;
	in[N].auth_len = 5;
	in[N].auth = (const uint8_t *)"other";
	plain += wire_request_bytes(&in[N]);
	wbuf_init_dynamic(&wb, 1 << 20);
	wbuf_init_dynamic(&auth, WIRE_BATCH_AUTH_BYTES_MAX);
	ck_assert_int_eq(wire_encode_batch(&wb, in, N + 1), 0);
	ck_assert_uint_lt(wb.len * 5, plain * 2); /* under 40% */
	ck_assert_int_eq(
	    wire_decode_batch(wb.p, wb.len, out, N + 1, &k, &auth), WIRE_OK);
	ck_assert_uint_eq(k, N + 1);
	for (int i = 0; i <= N; i++) {
		ck_assert_uint_eq(out[i].client, in[i].client);
		ck_assert_uint_eq(out[i].timestamp, in[i].timestamp);
		ck_assert_uint_eq(out[i].auth_len, in[i].auth_len);
		ck_assert_mem_eq(out[i].auth, in[i].auth, in[i].auth_len);
	}
	wbuf_clear(&wb);
	wbuf_clear(&auth);
}
END_TEST

/* A batch that borrows more than the previous authenticator has, or more
 * than its own length, is refused; the plain form of older logs decodes. */
START_TEST(test_batch_hostile_sharing)
{
	uint8_t b[64];
	struct pbft_request out[2];
	struct wbuf wb, auth;
	uint32_t k;
	size_t second;

	wbuf_init_dynamic(&auth, WIRE_BATCH_AUTH_BYTES_MAX);
	for (int c = 0; c < 3; c++) {
		wbuf_init_fixed(&wb, b, sizeof(b));
		wbuf_put_u32(&wb, 2 | WIRE_BATCH_COMPACT);
		for (int i = 0; i < 2; i++) {
			wbuf_put_u32(&wb, 1);
			wbuf_put_u64(&wb, 5);
			wbuf_put_u32(&wb, 0);
			second = wb.len;
			wbuf_put_u16(&wb, 4); /* auth_len */
			wbuf_put_u16(&wb, 0); /* head */
			wbuf_put_u16(&wb, 0); /* tail */
			wbuf_put_bytes(&wb, "abcd", 4);
		}
		ck_assert_int_eq(
		    wire_decode_batch(b, wb.len, out, 2, &k, &auth), WIRE_OK);
		if (c == 0) { /* head beyond the previous one */
			b[second] = 6; /* auth_len 6 */
			b[second + 2] = 5; /* head 5 > 4 */
			b[second + 4] = 1;
		} else if (c == 1) { /* tail beyond the previous one */
			b[second] = 6; /* auth_len 6 */
			b[second + 4] = 5; /* tail 5 > 4 */
		} else { /* head + tail beyond its own length */
			b[second + 2] = 3;
			b[second + 4] = 3;
		}
		ck_assert_int_eq(
		    wire_decode_batch(b, wb.len, out, 2, &k, &auth),
		    WIRE_E_VALUE);
	}
	/* The plain form. */
	wbuf_init_fixed(&wb, b, sizeof(b));
	wbuf_put_u32(&wb, 1);
	wbuf_put_u32(&wb, 1);
	wbuf_put_u64(&wb, 5);
	wbuf_put_u32(&wb, 0);
	wbuf_put_u16(&wb, 4);
	wbuf_put_bytes(&wb, "abcd", 4);
	ck_assert_int_eq(
	    wire_decode_batch(b, wb.len, out, 2, &k, &auth), WIRE_OK);
	ck_assert_uint_eq(k, 1);
	ck_assert_mem_eq(out[0].auth, "abcd", 4);
	wbuf_clear(&auth);
}
END_TEST

START_TEST(test_signed_bytes_cover_fields)
{
	uint8_t d[PBFT_DIGEST_LEN] = {1};
	struct wbuf a, b;

	wbuf_init_dynamic(&a, 4096);
	wbuf_init_dynamic(&b, 4096);
	wire_signed_checkpoint(&a, 2, d, 3);
	wire_signed_checkpoint(&b, 2, d, 4);
	ck_assert(a.len == b.len && memcmp(a.p, b.p, a.len) != 0);
	wbuf_reset(&b);
	wire_signed_checkpoint(&b, 3, d, 3);
	ck_assert(memcmp(a.p, b.p, a.len) != 0);
	wbuf_reset(&b);
	d[31] = 9;
	wire_signed_checkpoint(&b, 2, d, 3);
	ck_assert(memcmp(a.p, b.p, a.len) != 0);
	wbuf_clear(&a);
	wbuf_clear(&b);
}
END_TEST

/* ---- malformed ---------------------------------------------------------- */

START_TEST(test_truncated_every_offset)
{
	for (int i = 0; i < SAMPLES_COUNT; i++) {
		struct wbuf a;
		struct pbft_msg m;

		frame(i, &a);
		for (size_t cut = 0; cut < a.len; cut++)
			ck_assert_int_ne(decode(a.p, cut, &m), WIRE_OK);
		wbuf_clear(&a);
	}
}
END_TEST

START_TEST(test_bit_flips_fail_cleanly)
{
	for (int i = 0; i < SAMPLES_COUNT; i++) {
		struct wbuf a;
		struct pbft_msg m;

		frame(i, &a);
		for (size_t bit = 0; bit < a.len * 8; bit++) {
			enum wire_err e;

			a.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			e = decode(a.p, a.len, &m);
			ck_assert(e >= WIRE_OK && e < WIRE_E_COUNT);
			a.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		wbuf_clear(&a);
	}
}
END_TEST

START_TEST(test_error_classes)
{
	struct wbuf a;
	struct pbft_msg m;
	uint8_t *copy;

	frame(2, &a); /* a request */
	copy = malloc(a.len + 1);
	memcpy(copy, a.p, a.len);
	copy[a.len] = 0;
	/* trailing byte: the length says one byte more, body has it */
	copy[0]++;
	ck_assert_int_eq(decode(copy, a.len + 1, &m), WIRE_E_TRAILING);
	copy[0]--;
	ck_assert_int_eq(decode(copy, a.len + 1, &m), WIRE_E_TRAILING);
	copy[4] = 9; /* version */
	ck_assert_int_eq(decode(copy, a.len, &m), WIRE_E_VERSION);
	copy[4] = PBFT_WIRE_VERSION;
	copy[5] = 200; /* type */
	ck_assert_int_eq(decode(copy, a.len, &m), WIRE_E_TYPE);
	copy[5] = PBFT_MSG_REQUEST;
	/* op_len (after u32 client, u64 ts) above the limit */
	copy[6 + 12 + 3] = 0x7f;
	ck_assert_int_eq(decode(copy, a.len, &m), WIRE_E_TOO_BIG);
	free(copy);
	wbuf_clear(&a);

	frame(0, &a); /* hello with a role that does not exist */
	a.p[6] = 7;
	ck_assert_int_eq(decode(a.p, a.len, &m), WIRE_E_VALUE);
	wbuf_clear(&a);

	frame(5, &a); /* prepare from replica 64 */
	a.p[6 + 8 + 8 + 32] = PBFT_REPLICAS_MAX;
	ck_assert_int_eq(decode(a.p, a.len, &m), WIRE_E_VALUE);
	wbuf_clear(&a);

	/* a frame claiming more than the frame limit */
	{
		uint8_t big[6] = {
		    0xff, 0xff, 0xff, 0x7f, PBFT_WIRE_VERSION, 21};
		size_t fl;

		ck_assert_int_eq(wire_frame_len(big, 6, &fl), WIRE_E_TOO_BIG);
		ck_assert_int_eq(wire_frame_len(big, 3, &fl), WIRE_E_TRUNCATED);
	}
}
END_TEST

/* A count that cannot fit the bytes left is refused before allocating. */
START_TEST(test_count_larger_than_frame)
{
	struct wbuf a;
	struct pbft_msg m;
	struct wire_arena tiny;
	uint8_t small[64];

	frame(8, &a); /* view change: nckpt at offset 6 + 8 + 8 + 32 */
	a.p[6 + 48] = 60;
	ck_assert_int_eq(decode(a.p, a.len, &m), WIRE_E_TRUNCATED);
	wbuf_clear(&a);
	frame(9, &a);
	wire_arena_init(&tiny, small, sizeof(small));
	ck_assert_int_eq(wire_decode(a.p, a.len, &m, &tiny), WIRE_E_NOMEM);
	ck_assert_uint_le(a.len * 2 + 4096, wire_arena_bytes_for(a.len));
	wbuf_clear(&a);
}
END_TEST

/* The writer every encoder uses: little-endian fields; a write that does
 * not fit sets the sticky error and changes nothing; growth stops at max. */
START_TEST(test_wbuf_writer)
{
	static const uint8_t want[15] = {0xab, 0x34, 0x12, 0x78, 0x56, 0x34,
	    0x12, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
	uint8_t b[16], before[16];
	struct wbuf wb;

	memset(b, 0xee, sizeof(b));
	wbuf_init_fixed(&wb, b, sizeof(b));
	wbuf_put_u8(&wb, 0xab);
	wbuf_put_u16(&wb, 0x1234);
	wbuf_put_u32(&wb, 0x12345678);
	wbuf_put_u64(&wb, 0x0102030405060708ull);
	ck_assert_uint_eq(wb.len, 15);
	ck_assert(!wbuf_failed(&wb));
	ck_assert_mem_eq(b, want, sizeof(want));
	memcpy(before, b, sizeof(b));
	wbuf_put_u32(&wb, 0xffffffff); /* 4 > the 1 byte left */
	ck_assert(wbuf_failed(&wb));
	ck_assert_uint_eq(wb.len, 15);
	ck_assert_mem_eq(b, before, sizeof(b));
	wbuf_put_u8(&wb, 1); /* sticky: fits, still refused */
	ck_assert_uint_eq(wb.len, 15);
	wbuf_reset(&wb);
	ck_assert(!wbuf_failed(&wb));
	wbuf_put_bytes(&wb, before, sizeof(before));
	ck_assert_uint_eq(wb.len, 16);
	/* A growable buffer grows up to max and no further. */
	wbuf_init_dynamic(&wb, 1000);
	for (int i = 0; i < 125; i++)
		wbuf_put_u64(&wb, (uint64_t)i);
	ck_assert(!wbuf_failed(&wb));
	ck_assert_uint_eq(wb.len, 1000);
	ck_assert_uint_eq(wb.p[8 * 124], 124);
	wbuf_put_u8(&wb, 0);
	ck_assert(wbuf_failed(&wb));
	ck_assert_uint_eq(wb.len, 1000);
	wbuf_clear(&wb);
}
END_TEST

static Suite *
wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("valid");

	tcase_add_test(tc, test_roundtrip_every_type);
	tcase_add_test(tc, test_nested_fields);
	tcase_add_test(tc, test_batch_roundtrip);
	tcase_add_test(tc, test_batch_shares_authenticators);
	tcase_add_test(tc, test_batch_hostile_sharing);
	tcase_add_test(tc, test_signed_bytes_cover_fields);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_test(tc, test_truncated_every_offset);
	tcase_add_test(tc, test_bit_flips_fail_cleanly);
	tcase_add_test(tc, test_error_classes);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_test(tc, test_count_larger_than_frame);
	tcase_add_test(tc, test_wbuf_writer);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(wire_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
