/*
 * fake_crypto.h - a cheap, deterministic stand-in for Ed25519 and SHA-256,
 * for the simulator and the core's unit tests.
 *
 * A "signature" is a keyed hash of the data under the signer's secret; the
 * secret of replica i is derived from i, so a test can forge any signature on
 * purpose (fake_sign_as) while a core's own crypto signs only as itself.
 * Verification recomputes the tag. Not cryptography; never link it into a
 * daemon.
 */
#ifndef PBFT_FAKE_CRYPTO_H
#define PBFT_FAKE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "pbft.h"

#define FAKE_AUTH_LEN 8

struct fake_crypto {
	struct pbft_crypto ops; /* pass &fc->ops as pbft_config.crypto */
	uint32_t self;
	uint64_t verifies; /* signature checks asked for */
};

/* Prepares fc for replica self; fc must outlive the core using it. */
void fake_crypto_init(struct fake_crypto *fc, uint32_t self);

void fake_digest(const uint8_t *data, size_t len, uint8_t out[PBFT_DIGEST_LEN]);
void fake_sign_as(uint32_t signer, const uint8_t *data, size_t len,
    uint8_t sig[PBFT_SIG_LEN]);
bool fake_verify(uint32_t signer, const uint8_t *data, size_t len,
    const uint8_t sig[PBFT_SIG_LEN]);
/*
 * Computes the FAKE_AUTH_LEN-byte authenticator of req (client, timestamp,
 * op) into auth; set req->auth = auth, req->auth_len = FAKE_AUTH_LEN.
 */
void fake_request_auth(
    const struct pbft_request *req, uint8_t auth[FAKE_AUTH_LEN]);

#endif
