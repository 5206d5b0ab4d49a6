/*
 * check_reqauth.c - request authenticators: every request of a group leads
 * to the signed root; a changed operation, path, index or signature does
 * not verify; malformed layouts are refused; the replica's verifier checks
 * a group's signature once and then answers from its cache, MAC first for
 * backups, signature when strict.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "crypto.h"
#include "reqauth.h"
#include "sig.h"
#include "wire.h"

#define N 4

static void *client_key;
static struct cluster_cfg cfg;
static struct cfg_client client_cfg;
static struct replica_crypto rc;
static uint8_t mac_key[32];

static const uint8_t *
key_of(void *ctx, uint32_t client)
{
	(void)ctx;
	return client == 0 ? mac_key : NULL;
}

static void
setup(void)
{
	uint8_t seed[32];

	memset(seed, 7, 32);
	client_key = sig_keygen(seed);
	memset(&cfg, 0, sizeof(cfg));
	cfg.n = N;
	cfg.f = 1;
	for (uint32_t i = 0; i < N; i++) {
		void *k;

		memset(seed, 20 + (int)i, 32);
		k = sig_keygen(seed);
		sig_public_raw(k, cfg.nodes[i].public_key);
		sig_key_free(k);
	}
	memset(&client_cfg, 0, sizeof(client_cfg));
	snprintf(client_cfg.name, sizeof(client_cfg.name), "c0");
	sig_public_raw(client_key, client_cfg.public_key);
	cfg.nclients = 1;
	cfg.clients = &client_cfg;
	memset(seed, 21, 32);
	ck_assert_int_eq(
	    replica_crypto_init(&rc, &cfg, sig_keygen(seed), NULL, 0), 0);
	rc.self = 1;
	memset(mac_key, 0x5a, 32);
	rc.client_key = key_of;
}

static void
teardown(void)
{
	replica_crypto_clear(&rc);
	sig_key_free(client_key);
}

/* A group of count requests, as the client library builds them. */
struct group {
	uint32_t count;
	uint8_t ops[16][8];
	uint8_t auth[16][PBFT_AUTH_BYTES_MAX];
	struct pbft_request req[16];
};

static void
make_group(struct group *g, uint32_t count, uint64_t ts0)
{
	static struct reqauth_tree tree;
	uint8_t leaves[16][32];
	uint8_t msg[REQAUTH_ROOT_MSG_LEN];
	uint8_t sig[PBFT_SIG_LEN];
	struct wbuf wb;

	wbuf_init_dynamic(&wb, 4096);
	g->count = count;
	for (uint32_t j = 0; j < count; j++) {
		memset(g->ops[j], 'a' + (int)j, sizeof(g->ops[j]));
		g->req[j] = (struct pbft_request){.client = 0,
		    .timestamp = ts0 + j,
		    .op_len = sizeof(g->ops[j]),
		    .op = g->ops[j],
		    .auth = g->auth[j]};
		wbuf_reset(&wb);
		ck_assert_int_eq(wire_signed_request(&wb, &g->req[j]), 0);
		reqauth_leaf(wb.p, wb.len, leaves[j]);
	}
	reqauth_tree(&tree, (const uint8_t(*)[32])leaves, count);
	reqauth_root_msg(reqauth_tree_root(&tree), msg);
	ck_assert_int_eq(sig_sign(client_key, msg, sizeof(msg), sig), 0);
	for (uint32_t j = 0; j < count; j++) {
		uint8_t *macs;

		reqauth_tree_write(&tree, j, sig, g->auth[j]);
		g->req[j].auth_len = (uint16_t)reqauth_len(tree.depth, N, 1);
		macs = g->auth[j] + reqauth_len(tree.depth, N, 0);
		for (uint32_t i = 0; i < N; i++)
			sig_req_mac(mac_key, msg, sizeof(msg),
			    macs + PBFT_REQ_MAC_LEN * i);
	}
	wbuf_clear(&wb);
}

static bool
verify(const struct pbft_request *r, bool strict)
{
	return rc.ops.verify_request(rc.ops.ctx, r, strict);
}

START_TEST(test_every_member_verifies_once_per_group)
{
	struct group g;

	for (uint32_t count = 1; count <= 16; count++) {
		uint64_t checks = rc.req_sig_checks;

		make_group(&g, count, 1000 * count);
		for (uint32_t j = 0; j < count; j++)
			ck_assert_msg(verify(&g.req[j], true),
			    "group of %u, member %u", count, j);
		/* One signature verification for the whole group. */
		ck_assert_uint_eq(rc.req_sig_checks, checks + 1);
	}
	ck_assert_uint_eq(rc.verify_failures, 0);
}
END_TEST

/*
 * Later members of a group are checked against the tree nodes the earlier
 * ones verified, but the answer must stay the one the full path gives: a
 * member whose upper path was altered fails although its lower part meets
 * a known node (a backup checking the full path would refuse it).
 */
START_TEST(test_known_tree_nodes_keep_answers_objective)
{
	struct group g;
	struct pbft_request r;
	uint8_t auth[PBFT_AUTH_BYTES_MAX];
	uint64_t hits = rc.req_tree_hits;

	make_group(&g, 16, 4242); /* depth 4 */
	for (uint32_t j = 0; j < 16; j++)
		ck_assert(verify(&g.req[j], true));
	ck_assert_uint_eq(rc.req_tree_hits, hits + 15);
	for (uint32_t level = 0; level < 4; level++) {
		for (uint32_t j = 0; j < 16; j++) {
			r = g.req[j];
			memcpy(auth, r.auth, r.auth_len);
			r.auth = auth;
			auth[REQAUTH_HEAD_LEN + 32 * level + 31] ^= 0x01;
			ck_assert_msg(!verify(&r, true),
			    "member %u with level %u altered verified", j,
			    level);
		}
	}
	/* Every member still verifies; a fresh group does too. */
	for (uint32_t j = 0; j < 16; j++)
		ck_assert(verify(&g.req[j], true));
	make_group(&g, 7, 9999);
	for (uint32_t j = 7; j-- > 0;)
		ck_assert(verify(&g.req[j], true));
}
END_TEST

START_TEST(test_changed_request_fails)
{
	struct group g;
	struct pbft_request r;
	uint8_t op[8];
	uint8_t auth[PBFT_AUTH_BYTES_MAX];

	make_group(&g, 5, 77);
	ck_assert(verify(&g.req[2], true)); /* the root is now cached */
	/* Another operation under a cached root's path. */
	r = g.req[2];
	memcpy(op, r.op, sizeof(op));
	op[0] ^= 1;
	r.op = op;
	ck_assert(!verify(&r, true));
	/* Another timestamp. */
	r = g.req[2];
	r.timestamp++;
	ck_assert(!verify(&r, true));
	/* Another client. */
	r = g.req[2];
	r.client = 1;
	ck_assert(!verify(&r, true));
	/* Another index or sibling hash. */
	r = g.req[2];
	memcpy(auth, r.auth, r.auth_len);
	r.auth = auth;
	auth[PBFT_SIG_LEN + 2] = 3;
	ck_assert(!verify(&r, true));
	auth[PBFT_SIG_LEN + 2] = 2;
	auth[REQAUTH_HEAD_LEN + 5] ^= 0x80;
	ck_assert(!verify(&r, true));
	auth[REQAUTH_HEAD_LEN + 5] ^= 0x80;
	ck_assert(verify(&r, true));
	/* A bad signature over a fresh group. */
	make_group(&g, 3, 500);
	memcpy(auth, g.req[1].auth, g.req[1].auth_len);
	auth[10] ^= 1;
	r = g.req[1];
	r.auth = auth;
	ck_assert(!verify(&r, true));
	ck_assert(verify(&g.req[1], true));
}
END_TEST

START_TEST(test_mac_first_then_signature)
{
	struct group g;
	uint8_t auth[PBFT_AUTH_BYTES_MAX];
	struct pbft_request r;
	uint64_t checks;
	size_t mac_at;

	/* One MAC per group: the first member costs a MAC, the next ones
	 * only their path up to the known tree, and no signature. */
	make_group(&g, 4, 9000);
	checks = rc.req_sig_checks;
	for (uint32_t j = 0; j < 4; j++)
		ck_assert(verify(&g.req[j], false));
	ck_assert_uint_eq(rc.mac_ok, 4);
	ck_assert_uint_eq(rc.req_tree_hits, 3);
	ck_assert_uint_eq(rc.req_sig_checks, checks); /* no signature */
	/* A wrong MAC for this replica: the signature decides. */
	make_group(&g, 2, 9100);
	r = g.req[1];
	memcpy(auth, r.auth, r.auth_len);
	r.auth = auth;
	mac_at = reqauth_len(1, N, 0) + PBFT_REQ_MAC_LEN * rc.self;
	auth[mac_at] ^= 1;
	ck_assert(verify(&r, false));
	ck_assert_uint_eq(rc.mac_fallbacks, 1);
	ck_assert_uint_eq(rc.req_sig_checks, checks + 1);
	/* Strict ignores a right MAC when the signature is wrong, even
	 * though the same root verified with the right signature; and a
	 * root known by MAC only never satisfies a strict check. */
	make_group(&g, 2, 9200);
	r = g.req[1];
	memcpy(auth, r.auth, r.auth_len);
	r.auth = auth;
	auth[0] ^= 1;
	ck_assert(verify(&r, false)); /* MAC right */
	ck_assert(!verify(&r, true));
	ck_assert(!verify(&r, true)); /* a failure is never cached */
	ck_assert(verify(&g.req[0], false)); /* known by MAC */
	checks = rc.req_sig_checks;
	ck_assert(verify(&g.req[0], true));
	ck_assert_uint_eq(rc.req_sig_checks, checks + 1);
}
END_TEST

START_TEST(test_malformed_layouts_refused)
{
	uint8_t auth[PBFT_AUTH_BYTES_MAX] = {0};
	struct reqauth a;

	ck_assert_int_eq(reqauth_parse(auth, reqauth_len(0, N, 0), N, &a), 0);
	ck_assert(a.macs == NULL);
	ck_assert_int_eq(reqauth_parse(auth, reqauth_len(0, N, 1), N, &a), 0);
	ck_assert(a.macs == auth + REQAUTH_HEAD_LEN);
	ck_assert_int_eq(reqauth_parse(auth, 0, N, &a), -1);
	ck_assert_int_eq(reqauth_parse(auth, PBFT_SIG_LEN, N, &a), -1);
	ck_assert_int_eq(
	    reqauth_parse(auth, reqauth_len(0, N, 1) + 1, N, &a), -1);
	ck_assert_int_eq(
	    reqauth_parse(auth, reqauth_len(0, N + 1, 1), N, &a), -1);
	auth[PBFT_SIG_LEN] = REQAUTH_DEPTH_MAX + 1;
	ck_assert_int_eq(reqauth_parse(auth,
	                     reqauth_len(REQAUTH_DEPTH_MAX + 1, N, 0), N, &a),
	    -1);
	auth[PBFT_SIG_LEN] = 2;
	auth[PBFT_SIG_LEN + 2] = 4; /* index 4 in a tree of 4 leaves */
	ck_assert_int_eq(reqauth_parse(auth, reqauth_len(2, N, 0), N, &a), -1);
	auth[PBFT_SIG_LEN + 2] = 3;
	ck_assert_int_eq(reqauth_parse(auth, reqauth_len(2, N, 0), N, &a), 0);
	ck_assert_uint_eq(a.index, 3);
	ck_assert_uint_eq(a.depth, 2);
	/* The largest layout fits the wire limit. */
	auth[PBFT_SIG_LEN] = REQAUTH_DEPTH_MAX;
	ck_assert_int_eq(
	    reqauth_parse(auth,
	        reqauth_len(REQAUTH_DEPTH_MAX, PBFT_REPLICAS_MAX, 1),
	        PBFT_REPLICAS_MAX, &a),
	    0);
	ck_assert_uint_eq(reqauth_len(REQAUTH_DEPTH_MAX, PBFT_REPLICAS_MAX, 1),
	    PBFT_AUTH_BYTES_MAX);
}
END_TEST

/* The fast paths in sig.c still compute the standard functions. */
START_TEST(test_hash_and_mac_vectors)
{
	uint8_t key[32], mac[PBFT_REQ_MAC_LEN], h[32], h2[32];
	static const uint8_t want_mac[PBFT_REQ_MAC_LEN] = {0x19, 0x8a, 0x60,
	    0x7e, 0xb4, 0x4b, 0xfb, 0xc6, 0x99, 0x03, 0xa0, 0xf1, 0xcf, 0x2b,
	    0xbd, 0xc5};
	static const uint8_t want_abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01,
	    0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0,
	    0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
	    0xf2, 0x00, 0x15, 0xad};

	memset(key, 0x0b, sizeof(key));
	sig_req_mac(key, (const uint8_t *)"Hi There", 8, mac);
	ck_assert_mem_eq(mac, want_mac, sizeof(mac));
	sig_sha256((const uint8_t *)"abc", 3, h);
	ck_assert_mem_eq(h, want_abc, 32);
	sig_sha256_cat((const uint8_t *)"a", 1, (const uint8_t *)"b", 1,
	    (const uint8_t *)"c", 1, h2);
	ck_assert_mem_eq(h2, want_abc, 32);
	/* A second key after the first: the reused context is re-keyed. */
	memset(key, 0x0c, sizeof(key));
	sig_req_mac(key, (const uint8_t *)"Hi There", 8, mac);
	ck_assert(memcmp(mac, want_mac, sizeof(mac)) != 0);
	/* The first key again (a cached context, or re-keyed): same MAC. */
	memset(key, 0x0b, sizeof(key));
	for (int i = 0; i < 3; i++) {
		sig_req_mac(key, (const uint8_t *)"Hi There", 8, mac);
		ck_assert_mem_eq(mac, want_mac, sizeof(mac));
	}
	/* Two keys sharing a cache slot alternate correctly. */
	key[2] = 0x77;
	sig_req_mac(key, (const uint8_t *)"Hi There", 8, mac);
	ck_assert(memcmp(mac, want_mac, sizeof(mac)) != 0);
	key[2] = 0x0b;
	sig_req_mac(key, (const uint8_t *)"Hi There", 8, mac);
	ck_assert_mem_eq(mac, want_mac, sizeof(mac));
}
END_TEST

/*
 * Keys reuse contexts prepared once (sig.c): many signatures and checks in
 * a row, a failed check between good ones, a private key checking its own
 * signature, a public key refusing to sign, and the RFC 8032 vector.
 */
START_TEST(test_key_contexts_reused)
{
	/* RFC 8032 section 7.1, test 1: the empty message. */
	static const char seed_hex[] = "9d61b19deffd5a60ba844af492ec2cc4"
	                               "4449c5697b326919703bac031cae7f60";
	static const char sig_hex[] = "e5564300c360ac729086e2cc806e828a"
	                              "84877f1eb8e5d974d873e06522490155"
	                              "5fb8821590a33bacc61e39701cf9b46b"
	                              "d25bf5f0595bbe24655141438e7a100b";
	uint8_t seed[32], want[PBFT_SIG_LEN], sig[PBFT_SIG_LEN], pub[32];
	uint8_t msg[100];
	void *priv, *pubk;

	ck_assert_int_eq(sig_hex_decode(seed_hex, seed, sizeof(seed)), 0);
	ck_assert_int_eq(sig_hex_decode(sig_hex, want, sizeof(want)), 0);
	priv = sig_keygen(seed);
	ck_assert_ptr_nonnull(priv);
	ck_assert_int_eq(sig_public_raw(priv, pub), 0);
	pubk = sig_public_from_raw(pub);
	ck_assert_ptr_nonnull(pubk);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(sig_sign(priv, msg, 0, sig), 0);
		ck_assert_mem_eq(sig, want, PBFT_SIG_LEN);
	}
	for (int i = 0; i < 20; i++) {
		memset(msg, i, sizeof(msg));
		ck_assert_int_eq(sig_sign(priv, msg, sizeof(msg), sig), 0);
		ck_assert(sig_verify(pubk, msg, sizeof(msg), sig));
		msg[i] ^= 1;
		ck_assert(!sig_verify(pubk, msg, sizeof(msg), sig));
		msg[i] ^= 1;
		ck_assert(sig_verify(pubk, msg, sizeof(msg), sig));
		ck_assert(sig_verify(priv, msg, sizeof(msg), sig));
	}
	ck_assert_int_eq(sig_sign(pubk, msg, sizeof(msg), sig), -1);
	ck_assert(!sig_verify(NULL, msg, sizeof(msg), sig));
	sig_key_free(pubk);
	sig_key_free(priv);
}
END_TEST

static Suite *
reqauth_suite(void)
{
	Suite *s = suite_create("reqauth");
	TCase *tc = tcase_create("groups");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_every_member_verifies_once_per_group);
	tcase_add_test(tc, test_changed_request_fails);
	tcase_add_test(tc, test_known_tree_nodes_keep_answers_objective);
	tcase_add_test(tc, test_mac_first_then_signature);
	tcase_add_test(tc, test_malformed_layouts_refused);
	tcase_add_test(tc, test_hash_and_mac_vectors);
	tcase_add_test(tc, test_key_contexts_reused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(reqauth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
