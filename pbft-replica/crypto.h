/*
 * crypto.h - the consensus core's crypto interface backed by real keys:
 * Ed25519 signatures (this node's private key, every node's and client's
 * public key from cluster.ini) and SHA-256 digests.
 *
 * Client requests are authenticated by an Ed25519 signature of the client
 * over a hash tree of the requests it sent together (common/reqauth.h):
 * validity is objective, so a request verifies at every correct replica or
 * at none, and a faulty client cannot make replicas disagree about it (the
 * attack Aardvark describes against MAC authenticators). The core asks for
 * the signature everywhere (strict), the backups' check of a pre-prepare
 * included; the MAC path (not strict) is there for a caller that can
 * afford a subjective answer, and the core is not one. Verified group
 * roots are cached, so a group of requests costs one signature
 * verification per replica.
 */
#ifndef PBFT_REPLICA_CRYPTO_H
#define PBFT_REPLICA_CRYPTO_H

#include "cfg.h"
#include "pbft.h"
#include "reqauth.h"
#include "wbuf.h"

#define CRYPTO_GROUPS_SEEN 4096 /* cached verified group roots */
#define CRYPTO_TREES 64 /* groups whose verified tree nodes are kept */

struct group_seen {
	bool used;
	uint32_t client;
	uint8_t root[32];
	uint8_t sig[PBFT_SIG_LEN];
};

/*
 * The nodes of one group's hash tree that lie on paths already verified up
 * to its root, in heap order (root at 1); the root was authenticated by the
 * client's signature (sig_ok) or only by its MAC to this replica, which is
 * enough for a backup's check but not for a strict one. A later request of the
 * group needs hashing only until its path meets a known node; the rest of
 * its path must then equal known nodes byte for byte, so the answer is the
 * one the full path would give.
 */
struct group_tree {
	bool used, sig_ok;
	uint8_t depth;
	uint32_t client;
	uint8_t sig[PBFT_SIG_LEN];
	uint64_t known[2 * REQAUTH_GROUP_MAX / 64];
	uint8_t node[2 * REQAUTH_GROUP_MAX][32];
};

struct replica_crypto {
	struct pbft_crypto ops; /* hand &rc->ops to the core */
	void *self_key; /* EVP_PKEY, owned */
	void **node_pub; /* n public keys, owned */
	void **client_pub; /* nclients public keys, owned */
	uint32_t n, nclients;
	struct wbuf scratch; /* signed-bytes buffer, reused */
	uint64_t verify_calls, verify_failures;
	uint64_t mac_ok, mac_fallbacks; /* authenticator entries */
	uint64_t req_sig_checks; /* client signatures verified */
	uint64_t req_sig_cached; /* requests whose group root was verified */
	uint64_t req_tree_hits; /* of those, checked against a known tree */
	struct group_seen seen[CRYPTO_GROUPS_SEEN];
	struct group_tree *trees; /* CRYPTO_TREES, owned */
	uint32_t self; /* this replica's id: its authenticator entry */
	/* The request key of the current channel with a client, or NULL. */
	const uint8_t *(*client_key)(void *ctx, uint32_t client);
	void *client_key_ctx;
};

/*
 * Sets up rc for cfg with this node's private key (ownership passes to rc).
 * Returns 0, or -1 with err set if a configured public key is unusable.
 */
int replica_crypto_init(struct replica_crypto *rc,
    const struct cluster_cfg *cfg, void *self_key, char *err, size_t errlen);
void replica_crypto_clear(struct replica_crypto *rc);

#endif
