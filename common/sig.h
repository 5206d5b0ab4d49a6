/*
 * sig.h - Ed25519 keys and signatures, and SHA-256, through OpenSSL.
 *
 * Keys are opaque (void *; an EVP_PKEY with its signing and verifying
 * contexts set up once) so that headers including this one need no OpenSSL
 * headers. A key is used by one thread at a time. Private keys live in PEM
 * files (PKCS#8) with mode 0600; public keys are written as 64 hex digits
 * in cluster.ini.
 */
#ifndef PBFT_SIG_H
#define PBFT_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

/* A new random key, or deterministic from a 32-byte seed when seed != NULL. */
void *sig_keygen(const uint8_t seed[32]);
void sig_key_free(void *key); /* safe on NULL */
/* Raw 32-byte public key of a private or public key. Returns 0 or -1. */
int sig_public_raw(void *key, uint8_t out[PBFT_PUBKEY_LEN]);
/* A public-only key from raw bytes; NULL on bad input. */
void *sig_public_from_raw(const uint8_t raw[PBFT_PUBKEY_LEN]);
/*
 * Writes key as PEM to a new file of mode 0600, never through a symlink.
 * An existing path is an error unless overwrite; then a regular file (only)
 * is replaced by a rename. 0 or -1 with err set.
 */
int sig_write_private_pem(
    void *key, const char *path, bool overwrite, char *err, size_t errlen);
/* The same, as PKCS#8 encrypted with AES-256-CBC under a key derived from
 * pass (PBKDF2, OpenSSL's defaults). */
int sig_write_private_pem_encrypted(void *key, const char *path, bool overwrite,
    const char *pass, char *err, size_t errlen);
/*
 * Reads a PEM private key; checks it is Ed25519. An encrypted one needs
 * pass (NULL: refused, never a prompt); a wrong pass is refused. NULL with
 * err set.
 */
void *sig_read_private_pem(
    const char *path, const char *pass, char *err, size_t errlen);

int sig_sign(
    void *key, const uint8_t *data, size_t len, uint8_t sig[PBFT_SIG_LEN]);
bool sig_verify(void *pubkey, const uint8_t *data, size_t len,
    const uint8_t sig[PBFT_SIG_LEN]);
void sig_sha256(const uint8_t *data, size_t len, uint8_t out[32]);
/* SHA-256 of a || b || c (any part may be empty). */
void sig_sha256_cat(const uint8_t *a, size_t alen, const uint8_t *b,
    size_t blen, const uint8_t *c, size_t clen, uint8_t out[32]);
/* The first PBFT_REQ_MAC_LEN bytes of HMAC-SHA256(key, data). */
void sig_req_mac(const uint8_t key[32], const uint8_t *data, size_t len,
    uint8_t out[PBFT_REQ_MAC_LEN]);

/* Hex helpers: 0 or -1 (wrong length or non-hex digit). */
int sig_hex_decode(const char *hex, uint8_t *out, size_t outlen);
void sig_hex_encode(const uint8_t *in, size_t len, char *out); /* 2*len+1 */

/*
 * Deterministic demo key for node index i of a --dev cluster (insecure:
 * anyone can derive it; callers log that loudly).
 */
void *sig_dev_key(uint32_t index);

#endif
