/* reqauth.c - request authenticators: hash trees over grouped requests. */
#include "reqauth.h"

#include <string.h>

#include "sig.h"

_Static_assert(PBFT_AUTH_BYTES_MAX ==
        REQAUTH_HEAD_LEN + 32 * REQAUTH_DEPTH_MAX +
            PBFT_REQ_MAC_LEN * PBFT_REPLICAS_MAX,
    "msg.h and reqauth.h disagree on the authenticator limit");

/* H(tag || a || b); b may be NULL. */
static void
hash_tagged(uint8_t tag, const uint8_t *a, size_t alen, const uint8_t *b,
    size_t blen, uint8_t out[32])
{
	sig_sha256_cat(&tag, 1, a, alen, b, b != NULL ? blen : 0, out);
}

size_t
reqauth_len(uint32_t depth, uint32_t n, int with_macs)
{
	return REQAUTH_HEAD_LEN + (size_t)32 * depth +
	    (with_macs ? (size_t)PBFT_REQ_MAC_LEN * n : 0);
}

int
reqauth_parse(const uint8_t *auth, size_t len, uint32_t n, struct reqauth *out)
{
	uint32_t depth;
	uint32_t index;

	if (len < REQAUTH_HEAD_LEN || n == 0 || n > PBFT_REPLICAS_MAX)
		return -1;
	depth = auth[PBFT_SIG_LEN];
	index = (uint32_t)auth[PBFT_SIG_LEN + 1] << 8 | auth[PBFT_SIG_LEN + 2];
	if (depth > REQAUTH_DEPTH_MAX || (index >> depth) != 0)
		return -1;
	if (len != reqauth_len(depth, n, 0) && len != reqauth_len(depth, n, 1))
		return -1;
	out->sig = auth;
	out->depth = (uint8_t)depth;
	out->index = (uint16_t)index;
	out->path = auth + REQAUTH_HEAD_LEN;
	out->macs =
	    len == reqauth_len(depth, n, 1) ? out->path + 32 * depth : NULL;
	return 0;
}

void
reqauth_leaf(const uint8_t *signed_bytes, size_t len, uint8_t leaf[32])
{
	hash_tagged(0, signed_bytes, len, NULL, 0, leaf);
}

void
reqauth_step(uint32_t pos, const uint8_t child[32], const uint8_t sib[32],
    uint8_t out[32])
{
	if (pos & 1)
		hash_tagged(1, sib, 32, child, 32, out);
	else
		hash_tagged(1, child, 32, sib, 32, out);
}

void
reqauth_path(const uint8_t leaf[32], const struct reqauth *a,
    uint8_t h[REQAUTH_DEPTH_MAX + 1][32])
{
	uint32_t pos = (1u << a->depth) + a->index;

	memcpy(h[0], leaf, 32);
	for (uint32_t l = 0; l < a->depth; l++, pos >>= 1)
		reqauth_step(pos, h[l], a->path + 32 * l, h[l + 1]);
}

void
reqauth_root_msg(const uint8_t root[32], uint8_t msg[REQAUTH_ROOT_MSG_LEN])
{
	memcpy(msg, REQAUTH_ROOT_DOMAIN, sizeof(REQAUTH_ROOT_DOMAIN) - 1);
	memcpy(msg + sizeof(REQAUTH_ROOT_DOMAIN) - 1, root, 32);
}

void
reqauth_tree(
    struct reqauth_tree *t, const uint8_t (*leaves)[32], uint32_t count)
{
	uint32_t depth = 0;
	uint32_t width;

	if (count > REQAUTH_GROUP_MAX)
		count = REQAUTH_GROUP_MAX; /* callers stay within the limit */
	while ((1u << depth) < count)
		depth++;
	width = 1u << depth;
	t->depth = depth;
	for (uint32_t i = 0; i < width; i++) {
		if (i < count)
			memcpy(t->node[width + i], leaves[i], 32);
		else
			memset(t->node[width + i], 0, 32);
	}
	for (uint32_t i = width - 1; i >= 1; i--)
		hash_tagged(
		    1, t->node[2 * i], 32, t->node[2 * i + 1], 32, t->node[i]);
}

const uint8_t *
reqauth_tree_root(const struct reqauth_tree *t)
{
	return t->node[1];
}

void
reqauth_tree_write(const struct reqauth_tree *t, uint32_t index,
    const uint8_t sig[PBFT_SIG_LEN], uint8_t *auth)
{
	uint32_t pos = (1u << t->depth) + index;

	memcpy(auth, sig, PBFT_SIG_LEN);
	auth[PBFT_SIG_LEN] = (uint8_t)t->depth;
	auth[PBFT_SIG_LEN + 1] = (uint8_t)(index >> 8);
	auth[PBFT_SIG_LEN + 2] = (uint8_t)index;
	for (uint32_t l = 0; l < t->depth; l++, pos >>= 1)
		memcpy(auth + REQAUTH_HEAD_LEN + 32 * l, t->node[pos ^ 1], 32);
}
