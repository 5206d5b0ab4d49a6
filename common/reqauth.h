/*
 * reqauth.h - client request authenticators: one signature for a group of
 * requests, plus one MAC per replica.
 *
 * A client that has several requests ready signs them together: each
 * request's leaf is H(0x00 || wire_signed_request bytes), the leaves form a
 * binary hash tree (inner node H(0x01 || left || right), missing leaves all
 * zero), and the client signs REQAUTH_ROOT_DOMAIN || root with its Ed25519
 * key. Each request then carries the signature, its position in the tree and
 * the sibling hashes on the way to the root, so it stands on its own: a
 * replica that sees one request of a group can check it, and a replica that
 * sees many verifies the signature once (crypto.c caches verified roots). A
 * lone request is a tree of depth 0 whose root is its leaf.
 *
 * Layout of pbft_request.auth:
 *
 *     sig[64] | depth u8 | index u16 (big endian) | path[depth][32]
 *     | optional macs[n][16]
 *
 * macs[i] is HMAC-SHA256 (truncated) of the signed root message
 * (reqauth_root_msg) under the request key of the client's channel to
 * replica i (chan_request_key): one MAC per replica covers the group, and
 * every request of the group carries the same ones. Replicas judge a
 * request by the signature alone (crypto.h: the core's checks are all
 * strict), so its validity is objective: it verifies at every correct
 * replica or at none. A MAC that verifies does not make a request valid;
 * it is carried for a check that may be subjective, which the core never
 * makes.
 */
#ifndef PBFT_REQAUTH_H
#define PBFT_REQAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define REQAUTH_DEPTH_MAX 8 /* up to 256 requests under one signature */
#define REQAUTH_GROUP_MAX (1u << REQAUTH_DEPTH_MAX)
#define REQAUTH_HEAD_LEN (PBFT_SIG_LEN + 3)
#define REQAUTH_ROOT_DOMAIN "pbft request group v1"
#define REQAUTH_ROOT_MSG_LEN (sizeof(REQAUTH_ROOT_DOMAIN) - 1 + 32)

/* A parsed authenticator; pointers borrow from the request. */
struct reqauth {
	const uint8_t *sig;
	uint8_t depth;
	uint16_t index;
	const uint8_t *path; /* depth * 32 bytes, leaf level first */
	const uint8_t *macs; /* n * PBFT_REQ_MAC_LEN bytes, or NULL */
};

/* Bytes of an authenticator of this depth, with or without n MACs. */
size_t reqauth_len(uint32_t depth, uint32_t n, int with_macs);

/*
 * Checks the layout for a cluster of n replicas: depth within limits, index
 * inside the tree, length exactly that of the depth with or without n MACs.
 * Returns 0 and fills out, or -1.
 */
int reqauth_parse(
    const uint8_t *auth, size_t len, uint32_t n, struct reqauth *out);

/* H(0x00 || signed bytes). */
void reqauth_leaf(const uint8_t *signed_bytes, size_t len, uint8_t leaf[32]);

/*
 * The node above child, which sits at heap position pos (root at 1, leaves
 * of a depth-d tree at 2^d + index), given its sibling sib.
 */
void reqauth_step(uint32_t pos, const uint8_t child[32], const uint8_t sib[32],
    uint8_t out[32]);

/* The nodes from leaf up along a's path: h[0] = leaf, h[a->depth] = root. */
void reqauth_path(const uint8_t leaf[32], const struct reqauth *a,
    uint8_t h[REQAUTH_DEPTH_MAX + 1][32]);

/* The message the client signs: REQAUTH_ROOT_DOMAIN || root. */
void reqauth_root_msg(
    const uint8_t root[32], uint8_t msg[REQAUTH_ROOT_MSG_LEN]);

/*
 * Client side. tree holds 2 * REQAUTH_GROUP_MAX nodes; reqauth_tree builds
 * it from count (1..REQAUTH_GROUP_MAX) leaves.
 * reqauth_tree_root and reqauth_tree_path read it.
 */
struct reqauth_tree {
	uint32_t depth;
	uint8_t node[2 * REQAUTH_GROUP_MAX][32]; /* heap order, root at 1 */
};

void reqauth_tree(
    struct reqauth_tree *t, const uint8_t (*leaves)[32], uint32_t count);
const uint8_t *reqauth_tree_root(const struct reqauth_tree *t);
/* Writes sig, depth, index and path into auth (reqauth_len(depth, 0, 0)). */
void reqauth_tree_write(const struct reqauth_tree *t, uint32_t index,
    const uint8_t sig[PBFT_SIG_LEN], uint8_t *auth);

#endif
