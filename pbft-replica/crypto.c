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
    const uint8_t leaf[32], const struct reqauth *a)
{
	uint8_t root[32];
	uint8_t msg[REQAUTH_ROOT_MSG_LEN];
	struct group_seen *g;

	reqauth_root(leaf, a, root);
	g = group_slot(rc, client, root);
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
	if (!strict && a.macs != NULL && rc->client_key != NULL) {
		const uint8_t *key =
		    rc->client_key(rc->client_key_ctx, req->client);
		uint8_t mac[PBFT_REQ_MAC_LEN];

		if (key != NULL) {
			sig_req_mac(key, rc->scratch.p, rc->scratch.len, mac);
			if (CRYPTO_memcmp(mac,
			        a.macs + (size_t)PBFT_REQ_MAC_LEN * rc->self,
			        PBFT_REQ_MAC_LEN) == 0) {
				rc->mac_ok++;
				return true;
			}
		}
		rc->mac_fallbacks++; /* stale key or a lying client */
	}
	reqauth_leaf(rc->scratch.p, rc->scratch.len, leaf);
	return group_signature_ok(rc, req->client, leaf, &a);
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
	if (rc->node_pub == NULL || rc->client_pub == NULL) {
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
	sig_key_free(rc->self_key);
	wbuf_clear(&rc->scratch);
	memset(rc, 0, sizeof(*rc));
}
