/* rbuf.c - bounds-checked little-endian reader; see rbuf.h. */
#include "rbuf.h"

#include <string.h>

int
rbuf_get_u8(struct rbuf *rb, uint8_t *out)
{
	if (rbuf_left(rb) < 1)
		return -1;
	*out = rb->p[rb->off++];
	return 0;
}

int
rbuf_get_u16(struct rbuf *rb, uint16_t *out)
{
	const uint8_t *q;

	if (rbuf_left(rb) < 2)
		return -1;
	q = rb->p + rb->off;
	*out = (uint16_t)(q[0] | (uint16_t)q[1] << 8);
	rb->off += 2;
	return 0;
}

int
rbuf_get_u32(struct rbuf *rb, uint32_t *out)
{
	const uint8_t *q;

	if (rbuf_left(rb) < 4)
		return -1;
	q = rb->p + rb->off;
	*out = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
	    (uint32_t)q[3] << 24;
	rb->off += 4;
	return 0;
}

int
rbuf_get_u64(struct rbuf *rb, uint64_t *out)
{
	uint32_t lo = 0, hi = 0; /* set: 8 bytes are left */

	if (rbuf_left(rb) < 8)
		return -1;
	(void)rbuf_get_u32(rb, &lo);
	(void)rbuf_get_u32(rb, &hi);
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

int
rbuf_get_bytes(struct rbuf *rb, void *out, size_t n)
{
	if (rbuf_left(rb) < n)
		return -1;
	if (n > 0)
		memcpy(out, rb->p + rb->off, n);
	rb->off += n;
	return 0;
}

int
rbuf_get_ref(struct rbuf *rb, const uint8_t **out, size_t n)
{
	if (rbuf_left(rb) < n)
		return -1;
	*out = rb->p + rb->off;
	rb->off += n;
	return 0;
}

int
rbuf_skip(struct rbuf *rb, size_t n)
{
	if (rbuf_left(rb) < n)
		return -1;
	rb->off += n;
	return 0;
}
