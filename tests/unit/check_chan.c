/*
 * check_chan.c - authenticated channels: handshakes between replicas and
 * from a client complete; frames cross both ways; an altered, replayed,
 * reordered or foreign record is detected; unknown or lying peers are
 * refused, a responder does no key or signature work for them before the
 * cheap checks and never signs for them; a work budget splits records.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "sig.h"
#include "wire.h"

/* Keys: replicas 0..3 and clients 0..1, from fixed seeds. */
static void *rkey[4], *ckey[2], *stranger;
static uint8_t rpub[4][32], cpub[2][32];

static void
keys_setup(void)
{
	uint8_t seed[32];

	for (int i = 0; i < 4; i++) {
		memset(seed, 10 + i, 32);
		rkey[i] = sig_keygen(seed);
		sig_public_raw(rkey[i], rpub[i]);
	}
	for (int i = 0; i < 2; i++) {
		memset(seed, 50 + i, 32);
		ckey[i] = sig_keygen(seed);
		sig_public_raw(ckey[i], cpub[i]);
	}
	memset(seed, 99, 32);
	stranger = sig_keygen(seed);
}

static void
keys_teardown(void)
{
	for (int i = 0; i < 4; i++)
		sig_key_free(rkey[i]);
	for (int i = 0; i < 2; i++)
		sig_key_free(ckey[i]);
	sig_key_free(stranger);
}

static int
lookup(void *ctx, uint8_t role, uint32_t id, uint8_t pub[32])
{
	(void)ctx;
	if (role == PBFT_ROLE_REPLICA && id < 4)
		memcpy(pub, rpub[id], 32);
	else if (role == PBFT_ROLE_CLIENT && id < 2)
		memcpy(pub, cpub[id], 32);
	else
		return -1;
	return 0;
}

struct sink {
	int frames;
	uint8_t last[256];
	size_t last_len;
};

static void
on_frame(void *arg, const uint8_t *f, size_t len)
{
	struct sink *s = arg;

	s->frames++;
	s->last_len = len < sizeof(s->last) ? len : sizeof(s->last);
	memcpy(s->last, f, s->last_len);
}

/* Moves everything in `from` into `to`'s input; returns chan_input's rc. */
static int
pump(struct wbuf *from, struct chan *to, struct wbuf *to_out, struct sink *sink)
{
	size_t used = 0;
	int rc =
	    chan_input(to, from->p, from->len, &used, to_out, on_frame, sink);

	if (rc == 0) {
		memmove(from->p, from->p + used, from->len - used);
		from->len -= used;
	}
	return rc;
}

struct pair {
	struct chan a, b; /* a dials b */
	struct wbuf ao, bo;
	struct sink as, bs;
};

/* Runs the handshake, each end announcing the capabilities given; returns
 * 0 when both ends are established. */
static int
handshake_caps(struct pair *p, uint8_t arole, uint32_t aid, void *akey,
    uint32_t bid, uint32_t want, uint8_t acaps, uint8_t bcaps)
{
	memset(p, 0, sizeof(*p));
	wbuf_init_dynamic(&p->ao, 1 << 22);
	wbuf_init_dynamic(&p->bo, 1 << 22);
	chan_init(&p->a, arole, aid, akey, lookup, NULL, "test", true,
	    PBFT_ROLE_REPLICA, want);
	chan_init(&p->b, PBFT_ROLE_REPLICA, bid, rkey[bid], lookup, NULL,
	    "test", false, 0, 0);
	p->a.caps = acaps;
	p->b.caps = bcaps;
	if (chan_start(&p->a, &p->ao) == -1 || chan_start(&p->b, &p->bo) == -1)
		return -1;
	for (int round = 0; round < 4; round++) {
		if (p->ao.len > 0 && pump(&p->ao, &p->b, &p->bo, &p->bs) == -1)
			return -1;
		if (p->bo.len > 0 && pump(&p->bo, &p->a, &p->ao, &p->as) == -1)
			return -1;
	}
	return chan_established(&p->a) && chan_established(&p->b) ? 0 : -1;
}

static int
handshake(struct pair *p, uint8_t arole, uint32_t aid, void *akey, uint32_t bid,
    uint32_t want)
{
	return handshake_caps(
	    p, arole, aid, akey, bid, want, CHAN_CAPS_ALL, CHAN_CAPS_ALL);
}

static void
pair_clear(struct pair *p)
{
	chan_clear(&p->a);
	chan_clear(&p->b);
	wbuf_clear(&p->ao);
	wbuf_clear(&p->bo);
}

static void
seal_request(struct chan *c, struct wbuf *out, uint64_t ts)
{
	struct pbft_msg m = {.type = PBFT_MSG_REQUEST};
	struct wbuf f;

	m.u.request = (struct pbft_request){.client = 0,
	    .timestamp = ts,
	    .op_len = 2,
	    .op = (const uint8_t *)"hi"};
	wbuf_init_dynamic(&f, 4096);
	ck_assert_int_eq(wire_encode(&f, &m), 0);
	ck_assert_int_eq(chan_seal(c, f.p, f.len, out), 0);
	wbuf_clear(&f);
}

START_TEST(test_replica_handshake_and_frames)
{
	struct pair p;
	uint8_t role;
	uint32_t id;

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	chan_peer(&p.b, &role, &id);
	ck_assert_uint_eq(role, PBFT_ROLE_REPLICA);
	ck_assert_uint_eq(id, 0);
	seal_request(&p.a, &p.ao, 1);
	seal_request(&p.a, &p.ao, 2);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(p.bs.frames, 2);
	seal_request(&p.b, &p.bo, 3);
	ck_assert_int_eq(pump(&p.bo, &p.a, &p.ao, &p.as), 0);
	ck_assert_int_eq(p.as.frames, 1);
	pair_clear(&p);
}
END_TEST

/* One record may carry several whole frames; a cut frame fails it. */
START_TEST(test_record_with_several_frames)
{
	struct pair p;
	struct pbft_msg m = {.type = PBFT_MSG_REQUEST};
	struct wbuf f;

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	wbuf_init_dynamic(&f, 4096);
	for (uint64_t ts = 1; ts <= 3; ts++) {
		m.u.request = (struct pbft_request){.client = 0,
		    .timestamp = ts,
		    .op_len = 2,
		    .op = (const uint8_t *)"hi"};
		ck_assert_int_eq(wire_encode(&f, &m), 0);
	}
	ck_assert_int_eq(chan_seal(&p.a, f.p, f.len, &p.ao), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(p.bs.frames, 3);
	/* The last frame cut short: the whole ones before it arrive, then
	 * the channel fails. */
	ck_assert_int_eq(chan_seal(&p.a, f.p, f.len - 1, &p.ao), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	ck_assert_int_eq(p.bs.frames, 5);
	ck_assert(!chan_established(&p.b));
	wbuf_clear(&f);
	pair_clear(&p);
}
END_TEST

START_TEST(test_client_handshake)
{
	struct pair p;
	uint8_t role;
	uint32_t id;

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_CLIENT, 1, ckey[1], 2, 2), 0);
	chan_peer(&p.b, &role, &id);
	ck_assert_uint_eq(role, PBFT_ROLE_CLIENT);
	ck_assert_uint_eq(id, 1);
	pair_clear(&p);
}
END_TEST

/* Both ends share the request-MAC key; another session has another. */
START_TEST(test_request_key_shared_per_session)
{
	struct pair p, q;
	uint8_t k[32];

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_CLIENT, 1, ckey[1], 2, 2), 0);
	ck_assert_ptr_nonnull(chan_request_key(&p.a));
	ck_assert_ptr_nonnull(chan_request_key(&p.b));
	ck_assert_mem_eq(chan_request_key(&p.a), chan_request_key(&p.b), 32);
	memcpy(k, chan_request_key(&p.a), 32);
	ck_assert_int_eq(handshake(&q, PBFT_ROLE_CLIENT, 1, ckey[1], 2, 2), 0);
	ck_assert_mem_ne(chan_request_key(&q.a), k, 32);
	pair_clear(&p);
	ck_assert_ptr_null(chan_request_key(&p.a)); /* gone with the session */
	pair_clear(&q);
}
END_TEST

START_TEST(test_altered_record_detected)
{
	for (size_t k = 0;; k++) {
		struct pair p;
		size_t len;

		ck_assert_int_eq(
		    handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
		seal_request(&p.a, &p.ao, 1);
		len = p.ao.len;
		if (k >= len) {
			pair_clear(&p);
			break;
		}
		p.ao.p[k] ^= 0x01;
		ck_assert_int_eq(
		    pump(&p.ao, &p.b, &p.bo, &p.bs) == -1 || p.bs.frames == 0,
		    1);
		ck_assert_int_eq(p.bs.frames, 0);
		pair_clear(&p);
	}
}
END_TEST

START_TEST(test_replay_and_reorder_detected)
{
	struct pair p;
	struct wbuf r1, r2;

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	wbuf_init_dynamic(&r1, 4096);
	wbuf_init_dynamic(&r2, 4096);
	seal_request(&p.a, &r1, 1);
	seal_request(&p.a, &r2, 2);
	/* reorder: the second record first */
	wbuf_put_bytes(&p.ao, r2.p, r2.len);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	pair_clear(&p);
	/* replay: the first record twice */
	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	wbuf_reset(&r1);
	seal_request(&p.a, &r1, 1);
	wbuf_put_bytes(&p.ao, r1.p, r1.len);
	wbuf_put_bytes(&p.ao, r1.p, r1.len);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	ck_assert_int_eq(p.bs.frames, 1);
	pair_clear(&p);
	wbuf_clear(&r1);
	wbuf_clear(&r2);
}
END_TEST

START_TEST(test_foreign_session_key_detected)
{
	struct pair p, q;

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	ck_assert_int_eq(handshake(&q, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	seal_request(&q.a, &p.ao, 1); /* sealed in another session */
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	pair_clear(&p);
	pair_clear(&q);
}
END_TEST

START_TEST(test_unknown_and_lying_peers_refused)
{
	struct pair p;

	/* client id 7 is not in the configuration */
	ck_assert_int_eq(handshake(&p, PBFT_ROLE_CLIENT, 7, ckey[0], 1, 1), -1);
	ck_assert_ptr_nonnull(strstr(chan_error(&p.b), "not in cluster.ini"));
	pair_clear(&p);
	/* claims to be replica 2 but holds another key */
	ck_assert_int_eq(
	    handshake(&p, PBFT_ROLE_REPLICA, 2, stranger, 1, 1), -1);
	ck_assert_ptr_nonnull(strstr(chan_error(&p.b), "prove"));
	pair_clear(&p);
	/* we dialled replica 2, replica 3 answered */
	ck_assert_int_eq(
	    handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 3, 2), -1);
	ck_assert_ptr_nonnull(strstr(chan_error(&p.a), "not the node"));
	pair_clear(&p);
}
END_TEST

START_TEST(test_oversized_record_refused)
{
	struct pair p;
	uint8_t hdr[4] = {0xff, 0xff, 0xff, 0x7f};

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	wbuf_put_bytes(&p.ao, hdr, 4);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	pair_clear(&p);
}
END_TEST

/* Work done between two snapshots of chan_work_get. */
static struct chan_work
work_since(const struct chan_work *before)
{
	struct chan_work now;

	chan_work_get(&now);
	return (struct chan_work){now.keygens - before->keygens,
	    now.signs - before->signs, now.verifies - before->verifies};
}

/* A responder makes no key and signs nothing until a HELLO passed the
 * cheap checks, and signs only once the initiator's AUTH verified: a
 * stranger never gets a signature. */
START_TEST(test_responder_signs_after_initiator_proves)
{
	struct pair p;
	struct chan_work w0, w;
	struct pbft_msg m = {.type = PBFT_MSG_AUTH};

	memset(&p, 0, sizeof(p));
	wbuf_init_dynamic(&p.ao, 1 << 16);
	wbuf_init_dynamic(&p.bo, 1 << 16);
	chan_init(&p.b, PBFT_ROLE_REPLICA, 1, rkey[1], lookup, NULL, "test",
	    false, 0, 0);
	chan_work_get(&w0);
	ck_assert_int_eq(chan_start(&p.b, &p.bo), 0);
	ck_assert_uint_eq(p.bo.len, 0); /* the responder waits */
	/* A HELLO naming an id cluster.ini does not list: no work at all. */
	chan_init(&p.a, PBFT_ROLE_REPLICA, 9, stranger, lookup, NULL, "test",
	    true, PBFT_ROLE_REPLICA, 1);
	ck_assert_int_eq(chan_start(&p.a, &p.ao), 0);
	chan_work_get(&w0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	w = work_since(&w0);
	ck_assert_uint_eq(w.keygens + w.signs + w.verifies, 0);
	ck_assert_uint_eq(p.bo.len, 0);
	pair_clear(&p);
	/* Replica 2's id with 64 random bytes for AUTH: one key made, one
	 * verification failed, nothing signed. */
	memset(&p, 0, sizeof(p));
	wbuf_init_dynamic(&p.ao, 1 << 16);
	wbuf_init_dynamic(&p.bo, 1 << 16);
	chan_init(&p.a, PBFT_ROLE_REPLICA, 2, stranger, lookup, NULL, "test",
	    true, PBFT_ROLE_REPLICA, 1);
	chan_init(&p.b, PBFT_ROLE_REPLICA, 1, rkey[1], lookup, NULL, "test",
	    false, 0, 0);
	ck_assert_int_eq(chan_start(&p.a, &p.ao), 0);
	ck_assert_int_eq(chan_start(&p.b, &p.bo), 0);
	chan_work_get(&w0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	w = work_since(&w0);
	ck_assert_uint_eq(w.keygens, 1);
	ck_assert_uint_eq(w.signs, 0);
	ck_assert_uint_gt(p.bo.len, 0); /* its HELLO, and no AUTH */
	ck_assert_int_eq(p.b.state, CHAN_AUTH_SENT);
	memset(m.u.auth.sig, 0x5a, sizeof(m.u.auth.sig));
	ck_assert_int_eq(wire_encode(&p.ao, &m), 0);
	p.bo.len = 0;
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	w = work_since(&w0);
	ck_assert_uint_eq(w.verifies, 1);
	ck_assert_uint_eq(w.signs, 0);
	ck_assert_uint_eq(p.bo.len, 0);
	pair_clear(&p);
	/* A real peer: each end signs once and verifies once. */
	chan_work_get(&w0);
	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	w = work_since(&w0);
	ck_assert_uint_eq(w.keygens, 2);
	ck_assert_uint_eq(w.signs, 2);
	ck_assert_uint_eq(w.verifies, 2);
	pair_clear(&p);
}
END_TEST

/* With a budget of 3 frames a call, two records of 10 frames arrive over 7
 * calls; the second is not opened before the first is done. */
START_TEST(test_budget_splits_records)
{
	struct pair p;
	struct pbft_msg m = {.type = PBFT_MSG_REQUEST};
	struct wbuf f;
	size_t used;
	int calls = 0;

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	wbuf_init_dynamic(&f, 1 << 16);
	for (uint64_t ts = 1; ts <= 10; ts++) {
		m.u.request = (struct pbft_request){.client = 0,
		    .timestamp = ts,
		    .op_len = 2,
		    .op = (const uint8_t *)"hi"};
		ck_assert_int_eq(wire_encode(&f, &m), 0);
	}
	ck_assert_int_eq(chan_seal(&p.a, f.p, f.len, &p.ao), 0);
	ck_assert_int_eq(chan_seal(&p.a, f.p, f.len, &p.ao), 0);
	chan_set_budget(&p.b, 3, 0);
	ck_assert_int_eq(
	    chan_input(&p.b, p.ao.p, p.ao.len, &used, &p.bo, on_frame, &p.bs),
	    0);
	ck_assert_int_eq(p.bs.frames, 3);
	ck_assert(chan_budget_spent(&p.b));
	/* Only the first record was opened. */
	ck_assert_uint_eq(used, p.ao.len / 2);
	memmove(p.ao.p, p.ao.p + used, p.ao.len - used);
	p.ao.len -= used;
	while (chan_budget_spent(&p.b) && calls++ < 100) {
		int before = p.bs.frames;

		ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
		ck_assert_int_le(p.bs.frames - before, 3);
	}
	ck_assert_int_eq(p.bs.frames, 20);
	ck_assert_uint_eq(p.ao.len, 0);
	/* 3, 3, 3, 1+2 (the second record opened), 3, 3, 2: 7 calls. */
	ck_assert_int_eq(calls, 6);
	/* A record whose last frame is cut short, 2 frames a call: the nine
	 * whole ones arrive over five calls, the fifth fails, and the dead
	 * channel hands nothing on again. */
	chan_set_budget(&p.b, 2, 0);
	ck_assert_int_eq(chan_seal(&p.a, f.p, f.len - 1, &p.ao), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	ck_assert_int_eq(p.bs.frames, 29);
	(void)pump(&p.ao, &p.b, &p.bo, &p.bs);
	ck_assert_int_eq(p.bs.frames, 29);
	ck_assert_int_eq(p.b.state, CHAN_FAILED);
	pair_clear(&p);
	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	p.bs.frames = 20;
	/* No budget: everything at once. */
	chan_set_budget(&p.b, 0, 0);
	ck_assert_int_eq(chan_seal(&p.a, f.p, f.len, &p.ao), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(p.bs.frames, 30);
	ck_assert(!chan_budget_spent(&p.b));
	wbuf_clear(&f);
	pair_clear(&p);
}
END_TEST

/*
 * Capabilities: two ends of today's code learn each other's heartbeat flag
 * and take empty records; an end speaking as the earlier code (no flags in
 * its nonce) is seen announcing nothing, and fails on an empty record as
 * that code does, so a sender must look at chan_peer_caps first. Frames
 * cross both ways in either case.
 */
START_TEST(test_capabilities_announced)
{
	struct pair p;

	ck_assert_int_eq(handshake(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1), 0);
	ck_assert_uint_eq(chan_peer_caps(&p.a), CHAN_CAP_HEARTBEAT);
	ck_assert_uint_eq(chan_peer_caps(&p.b), CHAN_CAP_HEARTBEAT);
	ck_assert_int_eq(chan_seal(&p.a, (const uint8_t *)"", 0, &p.ao), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(p.bs.frames, 0);
	seal_request(&p.a, &p.ao, 7);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(p.bs.frames, 1);
	pair_clear(&p);

	ck_assert_int_eq(handshake_caps(&p, PBFT_ROLE_REPLICA, 0, rkey[0], 1, 1,
	                     CHAN_CAPS_ALL, 0),
	    0);
	ck_assert_uint_eq(chan_peer_caps(&p.a), 0);
	ck_assert_uint_eq(chan_peer_caps(&p.b), CHAN_CAP_HEARTBEAT);
	seal_request(&p.a, &p.ao, 8);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), 0);
	ck_assert_int_eq(p.bs.frames, 1);
	ck_assert_int_eq(chan_seal(&p.a, (const uint8_t *)"", 0, &p.ao), 0);
	ck_assert_int_eq(pump(&p.ao, &p.b, &p.bo, &p.bs), -1);
	ck_assert_str_eq(chan_error(&p.b), "bad record length");
	pair_clear(&p);
}
END_TEST

static Suite *
chan_suite(void)
{
	Suite *s = suite_create("chan");
	TCase *tc = tcase_create("valid");

	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_test(tc, test_replica_handshake_and_frames);
	tcase_add_test(tc, test_client_handshake);
	tcase_add_test(tc, test_record_with_several_frames);
	tcase_add_test(tc, test_request_key_shared_per_session);
	tcase_add_test(tc, test_capabilities_announced);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_test(tc, test_altered_record_detected);
	tcase_add_test(tc, test_replay_and_reorder_detected);
	tcase_add_test(tc, test_foreign_session_key_detected);
	tcase_add_test(tc, test_unknown_and_lying_peers_refused);
	tcase_add_test(tc, test_oversized_record_refused);
	tcase_add_test(tc, test_responder_signs_after_initiator_proves);
	tcase_add_test(tc, test_budget_splits_records);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(chan_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
