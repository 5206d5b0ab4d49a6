/*
 * rbuf.h - bounds-checked little-endian reader over a borrowed byte range.
 *
 * Every getter returns 0 on success and -1 when fewer bytes remain than it
 * needs; on failure nothing is consumed and *out is untouched. rbuf never
 * allocates and never reads outside [p, p + len).
 */
#ifndef PBFT_RBUF_H
#define PBFT_RBUF_H

#include <stddef.h>
#include <stdint.h>

struct rbuf {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static inline void
rbuf_init(struct rbuf *rb, const void *p, size_t len)
{
	rb->p = p;
	rb->len = len;
	rb->off = 0;
}

static inline size_t
rbuf_left(const struct rbuf *rb)
{
	return rb->len - rb->off;
}

int rbuf_get_u8(struct rbuf *rb, uint8_t *out);
int rbuf_get_u16(struct rbuf *rb, uint16_t *out);
int rbuf_get_u32(struct rbuf *rb, uint32_t *out);
int rbuf_get_u64(struct rbuf *rb, uint64_t *out);
/* Copies n bytes into out. */
int rbuf_get_bytes(struct rbuf *rb, void *out, size_t n);
/* Points *out at the next n bytes (borrowed from the buffer) and skips them. */
int rbuf_get_ref(struct rbuf *rb, const uint8_t **out, size_t n);
int rbuf_skip(struct rbuf *rb, size_t n);

#endif
