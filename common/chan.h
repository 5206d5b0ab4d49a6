/*
 * chan.h - authenticated, encrypted channels between pbft processes.
 *
 * Sans-I/O: bytes in, bytes out; the caller owns the socket. Handshake, in
 * an order where the initiator (the end that dialled) proves who it is
 * before the responder signs anything:
 *
 *   1. the initiator sends HELLO (role, id, fresh X25519 public key, nonce);
 *   2. the responder checks it with cheap checks only (form and length, a
 *      (role, id) that cluster.ini lists, and whatever its lookup function
 *      adds, such as the source address) and only then makes its own
 *      ephemeral key and answers with its HELLO;
 *   3. th = SHA-256("pbft handshake v1" || cluster name || initiator's HELLO
 *      frame || responder's HELLO frame); the initiator sends AUTH, its
 *      Ed25519 signature over th || "initiator", made with the identity key
 *      that cluster.ini lists for its (role, id);
 *   4. the responder verifies it and only then sends its own AUTH over
 *      th || "responder"; the initiator verifies that. Session keys are
 *      HKDF-SHA256(ikm = X25519 shared secret, salt = th, info =
 *      "pbft i->r" / "pbft r->i").
 *
 * So a stranger without a key costs a responder one key generation and one
 * failed verification, and nothing at all unless its HELLO passed the cheap
 * checks; it never obtains a signature. The frames and the transcript are
 * those of the earlier order (both HELLOs at once, then both AUTHs), so
 * either end may run the earlier code.
 *
 * Capabilities. The last 8 bytes of a HELLO's nonce are CHAN_CAP_MAGIC (7
 * bytes) and a byte of CHAN_CAP_* flags; the other 24 bytes stay random.
 * The earlier code fills all 32 with random bytes and reads none of them,
 * so it ignores the flags, and its HELLO names a capability only with a
 * chance of 2^-56 (as TLS 1.3 marks a downgrade in ServerHello.random). The
 * nonce is in the transcript both ends sign, so a flag cannot be altered on
 * the way. A sender uses a capability only when the peer announced it.
 *
 * Afterwards every record is  u32 len | ChaCha20-Poly1305(frames) | tag,  the
 * nonce being a per-direction counter that is never sent: a record that is
 * replayed, reordered, dropped, altered or injected fails authentication and
 * the channel reports an error (the caller then drops the connection). A
 * record holds one or more whole frames back to back: senders coalesce what
 * they queue in one loop iteration, so a burst of small messages costs one
 * AEAD operation. A record may also be empty, a heartbeat on an idle link,
 * sent only to a peer that announced CHAN_CAP_HEARTBEAT: a channel that did
 * not announce it (as the earlier code) fails on an empty record.
 */
#ifndef PBFT_CHAN_H
#define PBFT_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "wbuf.h"

#define CHAN_TAG_LEN 16
#define CHAN_RECORD_MAX (PBFT_FRAME_BYTES_MAX + CHAN_TAG_LEN)

#define CHAN_CAP_MAGIC "pbftcap"
#define CHAN_CAP_MAGIC_LEN 7
#define CHAN_CAP_HEARTBEAT 0x01 /* takes empty records (heartbeats) */
#define CHAN_CAPS_ALL CHAN_CAP_HEARTBEAT /* what this code announces */

/* Finds the identity key of (role, id); 0, or -1 when unknown. */
typedef int (*chan_lookup_fn)(
    void *ctx, uint8_t role, uint32_t id, uint8_t pub[PBFT_PUBKEY_LEN]);
/* Receives one authenticated frame (borrowed for the call). */
typedef void (*chan_frame_fn)(void *arg, const uint8_t *frame, size_t len);

enum chan_state {
	CHAN_IDLE = 0,
	CHAN_HELLO_SENT, /* waiting for the peer's HELLO */
	CHAN_AUTH_SENT, /* waiting for the peer's AUTH */
	CHAN_ESTABLISHED,
	CHAN_FAILED,
};

struct chan {
	enum chan_state state;
	bool initiator;
	uint8_t role;
	uint32_t id;
	void *key; /* our Ed25519 key, borrowed */
	chan_lookup_fn lookup;
	void *lookup_ctx;
	char cluster[PBFT_NAME_BYTES_MAX];
	uint8_t want_role; /* 0: any */
	uint32_t want_id;
	/* Capabilities our HELLO announces (chan_init: CHAN_CAPS_ALL; 0, set
	 * before chan_start, speaks as the earlier code) and the peer's. */
	uint8_t caps, peer_caps;
	uint8_t peer_role;
	uint32_t peer_id;
	uint8_t peer_pub[PBFT_PUBKEY_LEN];
	void *eph; /* our X25519 key (EVP_PKEY) */
	uint8_t my_hello[128], peer_hello[128];
	size_t my_hello_len, peer_hello_len;
	uint8_t th[32];
	uint8_t mac_key[32]; /* request MACs (chan_request_key) */
	void *tx, *rx; /* EVP_CIPHER_CTX */
	uint64_t tx_ctr, rx_ctr;
	const char *error;
	/* Work budget of one chan_input call (0: none), what this call did,
	 * and the opened record the budget left undelivered (held.p from
	 * held_off on). */
	size_t frames_max, bytes_max, frames_done, bytes_done;
	struct wbuf held;
	size_t held_off;
};

/* Handshake work done so far by the calling thread (for tests and
 * measurements: a stranger must cost none of it before the cheap checks). */
struct chan_work {
	uint64_t keygens; /* ephemeral X25519 keys made */
	uint64_t signs; /* transcripts signed */
	uint64_t verifies; /* peers' signatures checked */
};
void chan_work_get(struct chan_work *w);

/*
 * Prepares a channel. key: our Ed25519 private key (borrowed). An initiator
 * names the peer it dialled (want_role, want_id); a responder passes
 * want_role 0 and learns the peer from its HELLO.
 */
void chan_init(struct chan *ch, uint8_t role, uint32_t id, void *key,
    chan_lookup_fn lookup, void *lookup_ctx, const char *cluster,
    bool initiator, uint8_t want_role, uint32_t want_id);
/* Appends our HELLO to out (an initiator; a responder waits for the
 * peer's). 0, or -1 (error in chan_error). */
int chan_start(struct chan *ch, struct wbuf *out);
/*
 * Consumes bytes from in (as many as form complete frames or records; the
 * rest must be passed again with more data), appends handshake replies to
 * out, and hands every decrypted frame to fn. *consumed says how many bytes
 * were used. Returns 0, or -1 on any failure (the channel is then dead).
 */
int chan_input(struct chan *ch, const uint8_t *in, size_t len, size_t *consumed,
    struct wbuf *out, chan_frame_fn fn, void *arg);
/*
 * Bounds the work of each later chan_input call: it hands fn at most
 * frames_max frames and stops after the frame that reaches bytes_max bytes
 * (0: no bound; at least one frame is handed over). The rest of a record
 * already opened is kept in the channel, and bytes not yet opened are left
 * unconsumed. chan_budget_spent says the last call stopped for the budget:
 * call chan_input again (with no new bytes if need be) to go on.
 */
void chan_set_budget(struct chan *ch, size_t frames_max, size_t bytes_max);
bool chan_budget_spent(const struct chan *ch);
/*
 * Appends frames (one or more whole frames back to back, at most
 * PBFT_FRAME_BYTES_MAX bytes) as one sealed record. 0, or -1 before
 * establishment. len 0 seals an empty record, a heartbeat: a peer that
 * announced CHAN_CAP_HEARTBEAT authenticates it like any other and delivers
 * nothing; one that did not fails on it ("bad record length"), so the
 * caller checks chan_peer_caps first.
 */
int chan_seal(
    struct chan *ch, const uint8_t *frame, size_t len, struct wbuf *out);
bool chan_established(const struct chan *ch);
/*
 * A key both ends of an established channel share, apart from the record
 * keys: a client MACs its requests for this replica with it (the request
 * authenticator of common/msg.h). NULL until the channel is established.
 */
const uint8_t *chan_request_key(const struct chan *ch);
void chan_peer(const struct chan *ch, uint8_t *role, uint32_t *id);
/* The CHAN_CAP_* flags the peer's HELLO announced (0 before it came, and
 * from a peer running the earlier code). */
uint8_t chan_peer_caps(const struct chan *ch);
const char *chan_error(const struct chan *ch);
/* Frees the channel's keys (wiped); safe to call twice. */
void chan_clear(struct chan *ch);

#endif
