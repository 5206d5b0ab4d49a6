/*
 * wire.h - encoding and decoding of every pbft message into frames.
 *
 * A frame is
 *
 *     u32 len | u8 version | u8 type | body
 *
 * little-endian, where len counts the bytes after itself (version, type and
 * body) and never exceeds PBFT_FRAME_BYTES_MAX - 4. Authenticated channels
 * (common/chan.h) seal whole frames; this module knows nothing of keys.
 *
 * Decoding trusts nothing: every length and count is checked against the bytes
 * that remain and against the hard limits of msg.h before anything is read or
 * allocated; trailing bytes are an error. Variable-size arrays (certificates,
 * view changes inside a new view) are placed in a caller-provided arena, so
 * the decoder never calls malloc and a claimed count cannot size an
 * allocation. Byte strings (ops, batches, results, chunks) are borrowed from
 * the input buffer.
 *
 * The encoding of each body is documented in wire.c next to its code.
 */
#ifndef PBFT_WIRE_H
#define PBFT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "rbuf.h"
#include "wbuf.h"

#define WIRE_HDR_LEN 6 /* u32 len, u8 version, u8 type */

enum wire_err {
	WIRE_OK = 0,
	WIRE_E_TRUNCATED, /* fewer bytes than a field needs */
	WIRE_E_TOO_BIG, /* a length or count above its hard limit */
	WIRE_E_TRAILING, /* bytes left after the body */
	WIRE_E_VERSION, /* unknown wire version */
	WIRE_E_TYPE, /* unknown message type */
	WIRE_E_VALUE, /* a field outside its domain (e.g. role) */
	WIRE_E_NOMEM, /* the arena is too small for the message */
	WIRE_E_COUNT, /* number of error codes, for counters */
};

/* A short, stable name for an error ("truncated", "too-big", ...). */
const char *wire_strerror(enum wire_err e);
/* True if host[0..len) is a host name or address an ANNOUNCE may carry. */
bool wire_host_valid(const uint8_t *host, size_t len);
/* A stable name for a message type ("prepare"), or "unknown". */
const char *wire_type_name(unsigned type);

/* Bump allocator for decoded arrays; memory is caller-owned. */
struct wire_arena {
	uint8_t *base;
	size_t cap;
	size_t used;
};

static inline void
wire_arena_init(struct wire_arena *a, void *base, size_t cap)
{
	a->base = base;
	a->cap = cap;
	a->used = 0;
}

/*
 * An arena this large always suffices to decode any frame of at most
 * frame_len bytes (each decoded array element takes at most this factor
 * times its encoded size).
 */
size_t wire_arena_bytes_for(size_t frame_len);

/*
 * Appends one complete frame (header and body) for msg to wb. Returns 0, or
 * -1 if the message breaks a hard limit or wb ran out of room (wb is then
 * marked failed). The message must be well-formed: counts match arrays.
 */
int wire_encode(struct wbuf *wb, const struct pbft_msg *msg);

/*
 * Looks at the start of a byte stream: if at least WIRE_HDR_LEN bytes are
 * there, stores the whole frame's length (header included) in *frame_len
 * and returns WIRE_OK; returns WIRE_E_TRUNCATED if more bytes are needed,
 * WIRE_E_TOO_BIG if the claimed length exceeds PBFT_FRAME_BYTES_MAX, and
 * WIRE_E_VERSION for an unknown version. Used by stream readers to know how
 * much to buffer before calling wire_decode.
 */
enum wire_err wire_frame_len(const uint8_t *buf, size_t len, size_t *frame_len);

/*
 * Decodes exactly one frame occupying all of buf[0..len). On WIRE_OK, *out is
 * filled, borrowing from buf and from arena. On error *out is unspecified
 * and nothing else changed except arena->used.
 */
enum wire_err wire_decode(const uint8_t *buf, size_t len, struct pbft_msg *out,
    struct wire_arena *arena);

/*
 * Appends the bytes a signature over msg covers: the type byte followed by
 * the body encoding with the message's own `sig` field omitted. Signed
 * messages are checkpoints, view changes, new views and announcements; a
 * checkpoint inside a proof signs wire_signed_checkpoint(...).
 * Returns 0, or -1 if wb failed.
 */
int wire_signed_bytes(struct wbuf *wb, const struct pbft_msg *msg);
int wire_signed_checkpoint(struct wbuf *wb, uint64_t seq,
    const uint8_t digest[PBFT_DIGEST_LEN], uint32_t replica);
/* The bytes a client signs (or MACs) for a request: client, timestamp, op. */
int wire_signed_request(struct wbuf *wb, const struct pbft_request *req);

/*
 * Batches. wire_encode_batch appends the compact form: u32 count |
 * WIRE_BATCH_COMPACT, then per request u32 client, u64 timestamp, u32
 * op_len, op, u16 auth_len, u16 head, u16 tail and auth_len - head - tail
 * bytes: the request's authenticator is the previous request's first head
 * bytes, these bytes, then the previous one's last tail bytes. Requests of
 * one client group share their signature, MACs and most of their tree path
 * (common/reqauth.h), so a batch carries them about once.
 *
 * wire_decode_batch also takes the plain form of older logs (u32 count, then
 * per request the same fields with u16 auth_len and auth). It checks the
 * whole batch and fills reqs[0..*count): op borrows from buf; authenticators
 * are rebuilt in auth (reset first; it must not be buf), or, with auth NULL,
 * are not wanted (auth NULL, auth_len 0). At most max requests are accepted
 * (WIRE_E_TOO_BIG beyond).
 */
#define WIRE_BATCH_COMPACT 0x80000000u
/* The most that a batch's rebuilt authenticators take. */
#define WIRE_BATCH_AUTH_BYTES_MAX                                              \
	((size_t)PBFT_BATCH_REQS_MAX * PBFT_AUTH_BYTES_MAX)
int wire_encode_batch(
    struct wbuf *wb, const struct pbft_request *reqs, uint32_t count);
enum wire_err wire_decode_batch(const uint8_t *buf, size_t len,
    struct pbft_request *reqs, uint32_t max, uint32_t *count,
    struct wbuf *auth);
/* Most bytes one request takes inside a batch. */
size_t wire_request_bytes(const struct pbft_request *req);

#endif
