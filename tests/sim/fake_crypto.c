/* fake_crypto.c - deterministic stand-in crypto; see fake_crypto.h. */
#include "fake_crypto.h"

#include <string.h>

/* 64-bit FNV-1a mixed with a splitmix finaliser: fast and well spread. */
static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t
hash64(uint64_t seed, const uint8_t *data, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);

	for (size_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h ^ len);
}

static void
expand(uint64_t h, uint8_t *out, size_t outlen)
{
	for (size_t i = 0; i < outlen; i += 8) {
		uint64_t w = mix64(h + i);
		size_t n = outlen - i < 8 ? outlen - i : 8;

		memcpy(out + i, &w, n);
	}
}

void
fake_digest(const uint8_t *data, size_t len, uint8_t out[PBFT_DIGEST_LEN])
{
	expand(hash64(0x5eed, data, len), out, PBFT_DIGEST_LEN);
}

void
fake_sign_as(
    uint32_t signer, const uint8_t *data, size_t len, uint8_t sig[PBFT_SIG_LEN])
{
	expand(hash64(0x516e0000ULL + signer, data, len), sig, PBFT_SIG_LEN);
}

bool
fake_verify(uint32_t signer, const uint8_t *data, size_t len,
    const uint8_t sig[PBFT_SIG_LEN])
{
	uint8_t want[PBFT_SIG_LEN];

	fake_sign_as(signer, data, len, want);
	return memcmp(want, sig, PBFT_SIG_LEN) == 0;
}

void
fake_request_auth(const struct pbft_request *req, uint8_t auth[FAKE_AUTH_LEN])
{
	uint64_t h = hash64(0xc11e0000ULL + req->client, req->op, req->op_len);

	h = mix64(h ^ req->timestamp);
	memcpy(auth, &h, FAKE_AUTH_LEN);
}

static void
fc_digest(
    void *ctx, const uint8_t *data, size_t len, uint8_t out[PBFT_DIGEST_LEN])
{
	(void)ctx;
	fake_digest(data, len, out);
}

static void
fc_sign(void *ctx, const uint8_t *data, size_t len, uint8_t sig[PBFT_SIG_LEN])
{
	const struct fake_crypto *fc = ctx;

	fake_sign_as(fc->self, data, len, sig);
}

static bool
fc_verify(void *ctx, uint32_t replica, const uint8_t *data, size_t len,
    const uint8_t sig[PBFT_SIG_LEN])
{
	struct fake_crypto *fc = ctx;

	fc->verifies++;
	return fake_verify(replica, data, len, sig);
}

static bool
fc_verify_request(void *ctx, const struct pbft_request *req, bool strict)
{
	uint8_t want[FAKE_AUTH_LEN];

	(void)ctx;
	(void)strict; /* one objective check stands for both */
	if (req->auth_len != FAKE_AUTH_LEN)
		return false;
	fake_request_auth(req, want);
	return memcmp(want, req->auth, FAKE_AUTH_LEN) == 0;
}

void
fake_crypto_init(struct fake_crypto *fc, uint32_t self)
{
	fc->self = self;
	fc->ops.ctx = fc;
	fc->ops.digest = fc_digest;
	fc->ops.sign = fc_sign;
	fc->ops.verify = fc_verify;
	fc->ops.verify_request = fc_verify_request;
}
