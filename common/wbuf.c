/* wbuf.c - little-endian writer with a sticky error flag; see wbuf.h. */
#include "wbuf.h"

#include <stdlib.h>
#include <string.h>

void
wbuf_init_fixed(struct wbuf *wb, void *buf, size_t cap)
{
	wb->p = buf;
	wb->len = 0;
	wb->cap = cap;
	wb->max = cap;
	wb->owned = false;
	wb->failed = false;
}

void
wbuf_init_dynamic(struct wbuf *wb, size_t max)
{
	wb->p = NULL;
	wb->len = 0;
	wb->cap = 0;
	wb->max = max;
	wb->owned = true;
	wb->failed = false;
}

void
wbuf_clear(struct wbuf *wb)
{
	if (wb->owned)
		free(wb->p);
	wb->p = NULL;
	wb->len = wb->cap = 0;
	wb->failed = false;
}

void
wbuf_reset(struct wbuf *wb)
{
	wb->len = 0;
	wb->failed = false;
}

int
wbuf_grow(struct wbuf *wb, size_t n)
{
	size_t want, ncap;
	uint8_t *np;

	if (wb->failed)
		return -1;
	if (n <= wb->cap - wb->len)
		return 0;
	if (!wb->owned || n > wb->max - wb->len)
		goto fail;
	want = wb->len + n;
	ncap = wb->cap ? wb->cap : 256;
	while (ncap < want)
		ncap = ncap > wb->max / 2 ? wb->max : ncap * 2;
	if ((np = realloc(wb->p, ncap)) == NULL)
		goto fail;
	wb->p = np;
	wb->cap = ncap;
	return 0;
fail:
	wb->failed = true;
	return -1;
}

void
wbuf_patch_u32(struct wbuf *wb, size_t off, uint32_t v)
{
	if (wb->failed || off > wb->len || wb->len - off < 4) {
		wb->failed = true;
		return;
	}
	wb->p[off] = (uint8_t)v;
	wb->p[off + 1] = (uint8_t)(v >> 8);
	wb->p[off + 2] = (uint8_t)(v >> 16);
	wb->p[off + 3] = (uint8_t)(v >> 24);
}
