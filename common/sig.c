/*
 * sig.c - Ed25519 and SHA-256 through OpenSSL's EVP interface; see sig.h.
 */
#include "pbft_build.h"
#if PBFT_HAVE_SHA256_INIT
/* See sig_sha256_cat. */
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include "sig.h"

#include "failstop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/*
 * A key: the EVP_PKEY and contexts set up for it once. Setting up a
 * signing or verifying context looks the algorithm up by name and
 * allocates (about 4 us, more with cold caches, against 60-190 us for the
 * operation); copying a prepared one costs 0.2 us.
 */
struct sig_key {
	EVP_PKEY *pk;
	EVP_MD_CTX *sign; /* private keys only */
	EVP_MD_CTX *verify;
};

static _Thread_local EVP_MD_CTX *work_ctx;

static void *
key_wrap(EVP_PKEY *pk, bool private_key)
{
	struct sig_key *k;

	if (pk == NULL)
		return NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto fail;
	k->pk = pk;
	if ((k->verify = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(k->verify, NULL, NULL, NULL, pk) != 1)
		goto fail;
	if (private_key &&
	    ((k->sign = EVP_MD_CTX_new()) == NULL ||
	        EVP_DigestSignInit(k->sign, NULL, NULL, NULL, pk) != 1))
		goto fail;
	return k;
fail:
	if (k != NULL) {
		EVP_MD_CTX_free(k->verify);
		EVP_MD_CTX_free(k->sign);
		free(k);
	}
	EVP_PKEY_free(pk);
	return NULL;
}

void *
sig_keygen(const uint8_t seed[32])
{
	uint8_t buf[32];
	EVP_PKEY *k;

	if (seed == NULL) {
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return NULL;
		seed = buf;
	}
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	OPENSSL_cleanse(buf, sizeof(buf));
	return key_wrap(k, true);
}

void
sig_key_free(void *key)
{
	struct sig_key *k = key;

	if (k == NULL)
		return;
	EVP_MD_CTX_free(k->sign);
	EVP_MD_CTX_free(k->verify);
	EVP_PKEY_free(k->pk);
	free(k);
}

int
sig_public_raw(void *key, uint8_t out[PBFT_PUBKEY_LEN])
{
	struct sig_key *k = key;
	size_t len = PBFT_PUBKEY_LEN;

	if (k == NULL || EVP_PKEY_get_raw_public_key(k->pk, out, &len) != 1 ||
	    len != PBFT_PUBKEY_LEN)
		return -1;
	return 0;
}

void *
sig_public_from_raw(const uint8_t raw[PBFT_PUBKEY_LEN])
{
	return key_wrap(EVP_PKEY_new_raw_public_key(
	                    EVP_PKEY_ED25519, NULL, raw, PBFT_PUBKEY_LEN),
	    false);
}

/* Writes the PEM of key to fd (PKCS#8, encrypted under pass unless NULL)
 * and closes it; 0 or -1. */
static int
pem_to_fd(void *key, int fd, const char *pass)
{
	FILE *f = fdopen(fd, "w");
	int ok;

	if (f == NULL) {
		close(fd);
		return -1;
	}
	if (pass != NULL)
		ok = PEM_write_PKCS8PrivateKey(f, ((struct sig_key *)key)->pk,
		    EVP_aes_256_cbc(), NULL, 0, NULL, (void *)(uintptr_t)pass);
	else
		ok = PEM_write_PrivateKey(
		    f, ((struct sig_key *)key)->pk, NULL, NULL, 0, NULL, NULL);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

/*
 * Key files may sit in a directory another local user can reach, so no
 * name is trusted: a new file is created with O_EXCL|O_NOFOLLOW (a planted
 * symlink or file makes it fail instead of receiving the key), and an
 * overwrite writes a fresh file of a random name beside it (mkstemp: also
 * O_EXCL, mode 0600) and renames it over the old name, which replaces a
 * symlink rather than following it. Only a regular file is replaced.
 */
static int
write_pem(void *key, const char *path, bool overwrite, const char *pass,
    char *err, size_t errlen)
{
	char tmp[4200];
	struct stat sb;
	int fd, n;

	fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 && errno == EEXIST && !overwrite) {
		snprintf(
		    err, errlen, "%s exists (use --force to overwrite)", path);
		return -1;
	}
	if (fd == -1 && errno == EEXIST) {
		if (lstat(path, &sb) == -1 || !S_ISREG(sb.st_mode)) {
			snprintf(err, errlen,
			    "%s exists and is not a regular file: not "
			    "replacing it",
			    path);
			return -1;
		}
		n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
		if (n < 0 || (size_t)n >= sizeof(tmp)) {
			snprintf(err, errlen, "%s: path too long", path);
			return -1;
		}
		if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
			goto fail;
		errno = 0;
		if (fchmod(fd, 0600) == -1 || pem_to_fd(key, fd, pass) == -1 ||
		    rename(tmp, path) == -1)
			goto fail_unlink;
		return 0;
	}
	if (fd == -1)
		goto fail;
	snprintf(tmp, sizeof(tmp), "%s", path);
	errno = 0;
	if (fchmod(fd, 0600) == -1 || pem_to_fd(key, fd, pass) == -1)
		goto fail_unlink;
	return 0;
fail_unlink:
	n = errno;
	unlink(tmp);
	errno = n;
fail:
	snprintf(err, errlen, "%s: %s", path,
	    errno ? strerror(errno) : "cannot write the key");
	return -1;
}

int
sig_write_private_pem(
    void *key, const char *path, bool overwrite, char *err, size_t errlen)
{
	return write_pem(key, path, overwrite, NULL, err, errlen);
}

int
sig_write_private_pem_encrypted(void *key, const char *path, bool overwrite,
    const char *pass, char *err, size_t errlen)
{
	if (pass == NULL || pass[0] == '\0') {
		snprintf(err, errlen, "%s: an empty passphrase", path);
		return -1;
	}
	return write_pem(key, path, overwrite, pass, err, errlen);
}

/*
 * The key file's bytes into buf: its length, or -1 with err set when it
 * cannot be opened or read ("PATH: read at OFF: ERROR"; an I/O error is
 * noted for the exit status, failstop.h) or is larger than a key file.
 */
static ssize_t
key_file_read(
    const char *path, uint8_t *buf, size_t cap, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t r = 1;

	if (fd == -1) {
		snprintf(err, errlen, "cannot read private key file %s: %s",
		    path, strerror(errno));
		return -1;
	}
	while (len < cap && (r = read(fd, buf + len, cap - len)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "%s: read at %zu: %s", path, len,
			    strerror(errno));
			failstop_note_unreadable();
			close(fd);
			return -1;
		}
		len += (size_t)r;
	}
	close(fd);
	if (len == cap) {
		snprintf(err, errlen, "%s: too large for a key file", path);
		return -1;
	}
	return (ssize_t)len;
}

/*
 * The passphrase callback: the one given, or none (an encrypted key with no
 * passphrase fails instead of prompting on a terminal, as OpenSSL's default
 * would).
 */
static int
pass_cb(char *buf, int size, int rwflag, void *u)
{
	size_t len;

	(void)rwflag;
	if (u == NULL || size <= 0)
		return -1;
	len = strlen(u);
	if (len > (size_t)size)
		return -1;
	memcpy(buf, u, len);
	return (int)len;
}

void *
sig_read_private_pem(
    const char *path, const char *pass, char *err, size_t errlen)
{
	static const char enc[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
	uint8_t buf[16384];
	ssize_t len = key_file_read(path, buf, sizeof(buf), err, errlen);
	bool encrypted;
	BIO *bio;
	EVP_PKEY *k;
	void *key;

	if (len == -1)
		return NULL;
	encrypted = memmem(buf, (size_t)len, enc, sizeof(enc) - 1) != NULL ||
	    memmem(buf, (size_t)len, "Proc-Type: 4,ENCRYPTED", 22) != NULL;
	if (encrypted && pass == NULL) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen,
		    "%s is encrypted: give its passphrase "
		    "(private_key_passphrase_file)",
		    path);
		return NULL;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	k = bio != NULL ? PEM_read_bio_PrivateKey(
	                      bio, NULL, pass_cb, (void *)(uintptr_t)pass)
	                : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(buf, sizeof(buf));
	ERR_clear_error();
	if (k == NULL && encrypted) {
		snprintf(err, errlen,
		    "%s: cannot decrypt the key (wrong passphrase?)", path);
		return NULL;
	}
	if (k == NULL) {
		snprintf(err, errlen, "%s is not a PEM private key", path);
		return NULL;
	}
	if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s is not an Ed25519 key", path);
		EVP_PKEY_free(k);
		return NULL;
	}
	if ((key = key_wrap(k, true)) == NULL)
		snprintf(err, errlen, "%s: cannot use the key", path);
	return key;
}

/* A fresh copy of a prepared context, in this thread's working context. */
static EVP_MD_CTX *
work_from(const EVP_MD_CTX *prepared)
{
	if (prepared == NULL)
		return NULL;
	if (work_ctx == NULL && (work_ctx = EVP_MD_CTX_new()) == NULL)
		return NULL;
	if (EVP_MD_CTX_copy_ex(work_ctx, prepared) != 1)
		return NULL;
	return work_ctx;
}

int
sig_sign(void *key, const uint8_t *data, size_t len, uint8_t sig[PBFT_SIG_LEN])
{
	struct sig_key *k = key;
	EVP_MD_CTX *ctx = k != NULL ? work_from(k->sign) : NULL;
	size_t siglen = PBFT_SIG_LEN;

	if (ctx == NULL || EVP_DigestSign(ctx, sig, &siglen, data, len) != 1 ||
	    siglen != PBFT_SIG_LEN)
		return -1;
	return 0;
}

bool
sig_verify(void *pubkey, const uint8_t *data, size_t len,
    const uint8_t sig[PBFT_SIG_LEN])
{
	struct sig_key *k = pubkey;
	EVP_MD_CTX *ctx = k != NULL ? work_from(k->verify) : NULL;

	return ctx != NULL &&
	    EVP_DigestVerify(ctx, sig, PBFT_SIG_LEN, data, len) == 1;
}

/*
 * Hashing and MACs run per request, so they avoid OpenSSL 3's per-call
 * algorithm lookup (a locked name search): the algorithms are fetched once
 * per process, the contexts made once per thread and reused.
 */
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *alg_sha256;
static EVP_MAC *alg_hmac;
static void
algs_fetch(void)
{
	alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	alg_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

#if !PBFT_HAVE_SHA256_INIT
static _Thread_local EVP_MD_CTX *md_ctx;

static EVP_MD_CTX *
sha256_ctx(void)
{
	pthread_once(&algs_once, algs_fetch);
	if (md_ctx == NULL)
		md_ctx = EVP_MD_CTX_new();
	if (md_ctx == NULL || alg_sha256 == NULL ||
	    EVP_DigestInit_ex(md_ctx, alg_sha256, NULL) != 1)
		return NULL;
	return md_ctx;
}
#endif

/*
 * Most hashes here are short (a request's leaf, a tree step of 65 bytes, a
 * ledger link), and OpenSSL 3.0's EVP_DigestInit_ex frees and allocates
 * the provider's context on every call: 0.2 us against 0.08 us for the
 * hash itself of 33 bytes, and 8% of a busy primary's time. The low-level
 * interface, deprecated in 3.0 but still there, hashes on the stack; a
 * libcrypto without it (checked when configuring) gets the EVP path.
 */
void
sig_sha256_cat(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    const uint8_t *c, size_t clen, uint8_t out[32])
{
#if PBFT_HAVE_SHA256_INIT
	SHA256_CTX s;

	if (SHA256_Init(&s) != 1 || (alen && SHA256_Update(&s, a, alen) != 1) ||
	    (blen && SHA256_Update(&s, b, blen) != 1) ||
	    (clen && SHA256_Update(&s, c, clen) != 1) ||
	    SHA256_Final(out, &s) != 1)
		memset(out, 0, 32);
	OPENSSL_cleanse(&s, sizeof(s));
#else
	EVP_MD_CTX *ctx = sha256_ctx();
	unsigned int n = 32;

	if (ctx == NULL || (alen && EVP_DigestUpdate(ctx, a, alen) != 1) ||
	    (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    (clen && EVP_DigestUpdate(ctx, c, clen) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &n) != 1)
		memset(out, 0, 32);
#endif
}

void
sig_sha256(const uint8_t *data, size_t len, uint8_t out[32])
{
	sig_sha256_cat(data, len, NULL, 0, NULL, 0, out);
}

/*
 * HMAC contexts keyed once and reused: re-keying costs more than MACing a
 * short request. Direct-mapped by key, per thread; a miss keys the slot.
 */
#define MAC_SLOTS 64

struct mac_slot {
	EVP_MAC_CTX *ctx;
	uint8_t key[32];
	bool keyed;
};

static _Thread_local struct mac_slot mac_slots[MAC_SLOTS];

static EVP_MAC_CTX *
mac_for(const uint8_t key[32])
{
	struct mac_slot *m;
	uint32_t h;

	pthread_once(&algs_once, algs_fetch);
	h = ((uint32_t)key[0] | (uint32_t)key[1] << 8) % MAC_SLOTS;
	m = &mac_slots[h];
	if (m->ctx == NULL && alg_hmac != NULL) {
		OSSL_PARAM params[] = {
		    OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		    OSSL_PARAM_construct_end()};

		m->ctx = EVP_MAC_CTX_new(alg_hmac);
		if (m->ctx != NULL &&
		    EVP_MAC_CTX_set_params(m->ctx, params) != 1) {
			EVP_MAC_CTX_free(m->ctx);
			m->ctx = NULL;
		}
	}
	if (m->ctx == NULL)
		return NULL;
	if (m->keyed && CRYPTO_memcmp(m->key, key, 32) == 0) {
		if (EVP_MAC_init(m->ctx, NULL, 0, NULL) != 1)
			return NULL;
		return m->ctx;
	}
	m->keyed = false;
	if (EVP_MAC_init(m->ctx, key, 32, NULL) != 1)
		return NULL;
	memcpy(m->key, key, 32);
	m->keyed = true;
	return m->ctx;
}

void
sig_req_mac(const uint8_t key[32], const uint8_t *data, size_t len,
    uint8_t out[PBFT_REQ_MAC_LEN])
{
	EVP_MAC_CTX *ctx = mac_for(key);
	uint8_t full[32];
	size_t flen = 0;

	if (ctx == NULL || EVP_MAC_update(ctx, data, len) != 1 ||
	    EVP_MAC_final(ctx, full, &flen, sizeof(full)) != 1 ||
	    flen != sizeof(full)) {
		memset(out, 0, PBFT_REQ_MAC_LEN);
		return;
	}
	memcpy(out, full, PBFT_REQ_MAC_LEN);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sig_hex_decode(const char *hex, uint8_t *out, size_t outlen)
{
	if (strlen(hex) != 2 * outlen)
		return -1;
	for (size_t i = 0; i < outlen; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void
sig_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void *
sig_dev_key(uint32_t index)
{
	uint8_t buf[16] = "pbft-dev-key", seed[32];
	void *k;

	buf[12] = (uint8_t)index;
	buf[13] = (uint8_t)(index >> 8);
	buf[14] = (uint8_t)(index >> 16);
	buf[15] = (uint8_t)(index >> 24);
	sig_sha256(buf, sizeof(buf), seed);
	k = sig_keygen(seed);
	OPENSSL_cleanse(seed, sizeof(seed));
	return k;
}
