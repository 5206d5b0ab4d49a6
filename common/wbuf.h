/*
 * wbuf.h - little-endian writer with a sticky error flag.
 *
 * A wbuf writes into a buffer it either borrows (fixed capacity) or owns
 * (grown with realloc up to a hard limit, reused across messages so the hot
 * path does not allocate once warm). A write that does not fit sets the error
 * flag and leaves the buffer unchanged; encoders write everything and check
 * wbuf_failed() once at the end.
 */
#ifndef PBFT_WBUF_H
#define PBFT_WBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max; /* growable buffers never exceed this many bytes */
	bool owned; /* p was allocated by wbuf and is freed by wbuf_clear */
	bool failed;
};

/* Borrows buf[0..cap); nothing is allocated. */
void wbuf_init_fixed(struct wbuf *wb, void *buf, size_t cap);
/* Starts empty; grows on demand up to max bytes. */
void wbuf_init_dynamic(struct wbuf *wb, size_t max);
/* Frees an owned buffer; safe on a fixed or already cleared wbuf. */
void wbuf_clear(struct wbuf *wb);
/* Empties the buffer and clears the error flag, keeping its memory. */
void wbuf_reset(struct wbuf *wb);

static inline bool
wbuf_failed(const struct wbuf *wb)
{
	return wb->failed;
}

/* wbuf_reserve's slow path: grows the buffer, or fails. */
int wbuf_grow(struct wbuf *wb, size_t n);

/*
 * The writers run per field of every message encoded, so the common case
 * (room enough) is inline: a compare, a store or a fixed-size memcpy.
 */

/* Makes room for n more bytes; returns 0, or -1 (and sets failed). */
static inline int
wbuf_reserve(struct wbuf *wb, size_t n)
{
	if (!wb->failed && n <= wb->cap - wb->len)
		return 0;
	return wbuf_grow(wb, n);
}

static inline void
wbuf_put_bytes(struct wbuf *wb, const void *src, size_t n)
{
	if (n == 0 || wbuf_reserve(wb, n) == -1)
		return;
	memcpy(wb->p + wb->len, src, n);
	wb->len += n;
}

static inline void
wbuf_put_u8(struct wbuf *wb, uint8_t v)
{
	if (wbuf_reserve(wb, 1) == -1)
		return;
	wb->p[wb->len++] = v;
}

/* The low n bytes of v, least significant first. */
static inline void
wbuf_put_le(struct wbuf *wb, uint64_t v, size_t n)
{
	if (wbuf_reserve(wb, n) == -1)
		return;
	for (size_t i = 0; i < n; i++)
		wb->p[wb->len + i] = (uint8_t)(v >> (8 * i));
	wb->len += n;
}

static inline void
wbuf_put_u16(struct wbuf *wb, uint16_t v)
{
	wbuf_put_le(wb, v, 2);
}

static inline void
wbuf_put_u32(struct wbuf *wb, uint32_t v)
{
	wbuf_put_le(wb, v, 4);
}

static inline void
wbuf_put_u64(struct wbuf *wb, uint64_t v)
{
	wbuf_put_le(wb, v, 8);
}

/* Overwrites 4 bytes at off (already written) with v; used for lengths. */
void wbuf_patch_u32(struct wbuf *wb, size_t off, uint32_t v);

#endif
