/* crypto.c - Ed25519/SHA-256 behind the core's crypto interface. */
#include "crypto.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reqauth.h"
#include "sig.h"
#include "wire.h"

static void
rc_digest(
    void *ctx, const uint8_t *data, size_t len, uint8_t out[PBFT_DIGEST_LEN])
{
	(void)ctx;
	sig_sha256(data, len, out);
}

static void
rc_sign(void *ctx, const uint8_t *data, size_t len, uint8_t sig[PBFT_SIG_LEN])
{
	struct replica_crypto *rc = ctx;

	if (sig_sign(rc->self_key, data, len, sig) == -1)
		abort(); /* our own key failed: nothing sane left to do */
}

static bool
rc_verify(void *ctx, uint32_t replica, const uint8_t *data, size_t len,
    const uint8_t sig[PBFT_SIG_LEN])
{
	struct replica_crypto *rc = ctx;
	bool ok;

	if (replica >= rc->n)
		return false;
	rc->verify_calls++;
	ok = sig_verify(rc->node_pub[replica], data, len, sig);
	if (!ok)
		rc->verify_failures++;
	return ok;
}

/*
 * Is (client, root, signature) among the group signatures verified lately?
 * The cache only ever holds triples that verified, so a hit is as good as
 * checking again; a miss costs one verification. The signature is part of
 * the key: a copy of a request whose signature bytes were altered must fail
 * at every replica, cached or not, or a faulty client or primary could make
 * correct replicas judge one request differently.
 */
static struct group_seen *
group_slot(struct replica_crypto *rc, uint32_t client, const uint8_t root[32])
{
	uint32_t h = ((uint32_t)root[0] | (uint32_t)root[1] << 8 |
	                 (uint32_t)root[2] << 16) ^
	    client * 2654435761u;

	return &rc->seen[h % CRYPTO_GROUPS_SEEN];
}

static bool
group_signature_ok(struct replica_crypto *rc, uint32_t client,
    const uint8_t root[32], const struct reqauth *a)
{
	uint8_t msg[REQAUTH_ROOT_MSG_LEN];
	struct group_seen *g = group_slot(rc, client, root);

	if (g->used && g->client == client && memcmp(g->root, root, 32) == 0 &&
	    memcmp(g->sig, a->sig, PBFT_SIG_LEN) == 0) {
		rc->req_sig_cached++;
		return true;
	}
	reqauth_root_msg(root, msg);
	rc->req_sig_checks++;
	if (!sig_verify(rc->client_pub[client], msg, sizeof(msg), a->sig)) {
		rc->verify_failures++;
		return false;
	}
	g->used = true;
	g->client = client;
	memcpy(g->root, root, 32);
	memcpy(g->sig, a->sig, PBFT_SIG_LEN);
	return true;
}

/* ---- known tree nodes per group (crypto.h, struct group_tree) ---------- */

static struct group_tree *
tree_slot(struct replica_crypto *rc, uint32_t client, const uint8_t *sig)
{
	uint32_t h = ((uint32_t)sig[0] | (uint32_t)sig[1] << 8 |
	                 (uint32_t)sig[2] << 16) ^
	    client * 2654435761u;

	return &rc->trees[h % CRYPTO_TREES];
}

static bool
tree_known(const struct group_tree *t, uint32_t pos)
{
	return t->known[pos / 64] >> (pos % 64) & 1;
}

static void
tree_put(struct group_tree *t, uint32_t pos, const uint8_t h[32])
{
	t->known[pos / 64] |= 1ULL << (pos % 64);
	memcpy(t->node[pos], h, 32);
}

/*
 * True when leaf, index and path lead to a node this tree already knows and
 * the path from there up equals the known siblings, that is, when the full
 * path would reach the same verified root. Records the nodes it hashed. A
 * false answer says nothing: the caller checks the full path.
 */
static bool
tree_check(
    struct group_tree *t, const uint8_t leaf[32], const struct reqauth *a)
{
	uint8_t h[REQAUTH_DEPTH_MAX + 1][32];
	uint32_t base = (1u << a->depth) + a->index;
	uint32_t l;

	memcpy(h[0], leaf, 32);
	for (l = 0;; l++) {
		uint32_t pos = base >> l;
		const uint8_t *sib = a->path + 32 * l;

		if (tree_known(t, pos) && memcmp(t->node[pos], h[l], 32) == 0)
			break;
		if (l == a->depth)
			return false;
		reqauth_step(pos, h[l], sib, h[l + 1]);
	}
	for (uint32_t k = l; k < a->depth; k++) {
		uint32_t sp = (base >> k) ^ 1;

		if (!tree_known(t, sp) ||
		    memcmp(t->node[sp], a->path + 32 * k, 32) != 0)
			return false;
	}
	for (uint32_t k = 0; k < l; k++) {
		tree_put(t, base >> k, h[k]);
		tree_put(t, (base >> k) ^ 1, a->path + 32 * k);
	}
	return true;
}

/*
 * Starts t over with the path h (reqauth_path) of one request of a new group,
 * whose root was authenticated by the client's signature (sig_ok) or by its
 * MAC to us.
 */
static void
tree_start(struct group_tree *t, uint32_t client, const struct reqauth *a,
    const uint8_t h[REQAUTH_DEPTH_MAX + 1][32], bool sig_ok)
{
	uint32_t base = (1u << a->depth) + a->index;

	t->used = true;
	t->sig_ok = sig_ok;
	t->client = client;
	t->depth = a->depth;
	memcpy(t->sig, a->sig, PBFT_SIG_LEN);
	memset(t->known, 0, sizeof(t->known));
	for (uint32_t l = 0; l < a->depth; l++) {
		tree_put(t, base >> l, h[l]);
		tree_put(t, (base >> l) ^ 1, a->path + 32 * l);
	}
	tree_put(t, 1, h[a->depth]); /* the root */
}

/* t holds the tree of a's group (whichever way its root was authenticated). */
static bool
tree_is(const struct group_tree *t, uint32_t client, const struct reqauth *a)
{
	return t->used && t->client == client && t->depth == a->depth &&
	    memcmp(t->sig, a->sig, PBFT_SIG_LEN) == 0;
}

/*
 * The signature check of a request. A request of a group seen lately is
 * checked against the group's known tree nodes (about two hashes instead
 * of one per level); otherwise, or if that does not settle it, the full
 * path is hashed to the root and the root's signature checked (cached).
 */
static bool
request_signature_ok(struct replica_crypto *rc, uint32_t client,
    const uint8_t leaf[32], const struct reqauth *a)
{
	struct group_tree *t = tree_slot(rc, client, a->sig);
	uint8_t h[REQAUTH_DEPTH_MAX + 1][32];

	if (tree_is(t, client, a) && t->sig_ok && tree_check(t, leaf, a)) {
		rc->req_sig_cached++;
		rc->req_tree_hits++;
		return true;
	}
	reqauth_path(leaf, a, h);
	if (!group_signature_ok(rc, client, h[a->depth], a))
		return false;
	tree_start(t, client, a, (const uint8_t(*)[32])h, true);
	return true;
}

/*
 * Our MAC entry: HMAC under the client's request key of the group's root
 * message, so that one MAC per replica covers a whole group. A request of
 * a group whose root is already known (by MAC or signature) needs no MAC
 * computation at all.
 */
static bool
request_mac_ok(struct replica_crypto *rc, uint32_t client,
    const uint8_t leaf[32], const struct reqauth *a)
{
	struct group_tree *t = tree_slot(rc, client, a->sig);
	const uint8_t *key;
	uint8_t h[REQAUTH_DEPTH_MAX + 1][32];
	uint8_t msg[REQAUTH_ROOT_MSG_LEN], mac[PBFT_REQ_MAC_LEN];

	if (tree_is(t, client, a) && tree_check(t, leaf, a)) {
		rc->req_tree_hits++;
		if (t->sig_ok)
			rc->req_sig_cached++;
		else
			rc->mac_ok++;
		return true;
	}
	key = rc->client_key(rc->client_key_ctx, client);
	if (key == NULL)
		return false;
	reqauth_path(leaf, a, h);
	reqauth_root_msg(h[a->depth], msg);
	sig_req_mac(key, msg, sizeof(msg), mac);
	if (CRYPTO_memcmp(mac, a->macs + (size_t)PBFT_REQ_MAC_LEN * rc->self,
	        PBFT_REQ_MAC_LEN) != 0)
		return false;
	rc->mac_ok++;
	tree_start(t, client, a, (const uint8_t(*)[32])h, false);
	return true;
}

static bool
rc_verify_request(void *ctx, const struct pbft_request *req, bool strict)
{
	struct replica_crypto *rc = ctx;
	struct reqauth a;
	uint8_t leaf[32];

	if (req->client >= rc->nclients ||
	    reqauth_parse(req->auth, req->auth_len, rc->n, &a) == -1)
		return false;
	wbuf_reset(&rc->scratch);
	if (wire_signed_request(&rc->scratch, req) == -1)
		return false;
	reqauth_leaf(rc->scratch.p, rc->scratch.len, leaf);
	if (!strict && a.macs != NULL && rc->client_key != NULL) {
		if (request_mac_ok(rc, req->client, leaf, &a))
			return true;
		rc->mac_fallbacks++; /* stale key or a lying client */
	}
	return request_signature_ok(rc, req->client, leaf, &a);
}

int
replica_crypto_init(struct replica_crypto *rc, const struct cluster_cfg *cfg,
    void *self_key, char *err, size_t errlen)
{
	memset(rc, 0, sizeof(*rc));
	rc->self_key = self_key;
	rc->n = cfg->n;
	rc->nclients = cfg->nclients;
	wbuf_init_dynamic(&rc->scratch, PBFT_FRAME_BYTES_MAX);
	rc->node_pub = calloc(cfg->n, sizeof(void *));
	rc->client_pub =
	    calloc(cfg->nclients ? cfg->nclients : 1, sizeof(void *));
	rc->trees = calloc(CRYPTO_TREES, sizeof(*rc->trees));
	if (rc->node_pub == NULL || rc->client_pub == NULL ||
	    rc->trees == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < cfg->n; i++) {
		rc->node_pub[i] = sig_public_from_raw(cfg->nodes[i].public_key);
		if (rc->node_pub[i] == NULL) {
			snprintf(
			    err, errlen, "node %u: unusable public key", i);
			goto fail;
		}
	}
	for (uint32_t i = 0; i < cfg->nclients; i++) {
		rc->client_pub[i] =
		    sig_public_from_raw(cfg->clients[i].public_key);
		if (rc->client_pub[i] == NULL) {
			snprintf(err, errlen, "client %s: unusable public key",
			    cfg->clients[i].name);
			goto fail;
		}
	}
	rc->ops.ctx = rc;
	rc->ops.digest = rc_digest;
	rc->ops.sign = rc_sign;
	rc->ops.verify = rc_verify;
	rc->ops.verify_request = rc_verify_request;
	return 0;
fail:
	replica_crypto_clear(rc);
	return -1;
}

void
replica_crypto_clear(struct replica_crypto *rc)
{
	if (rc->node_pub != NULL)
		for (uint32_t i = 0; i < rc->n; i++)
			sig_key_free(rc->node_pub[i]);
	if (rc->client_pub != NULL)
		for (uint32_t i = 0; i < rc->nclients; i++)
			sig_key_free(rc->client_pub[i]);
	free(rc->node_pub);
	free(rc->client_pub);
	free(rc->trees);
	sig_key_free(rc->self_key);
	wbuf_clear(&rc->scratch);
	memset(rc, 0, sizeof(*rc));
}
