/*
 * fuzz_wire.c - libFuzzer target for the frame decoder: any input must
 * decode cleanly or fail cleanly; what decodes must re-encode to a frame
 * that decodes again and re-encodes to the same bytes. Batches too: one
 * that decodes re-encodes (compact) to a batch that decodes to the same
 * requests, authenticators rebuilt byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t arena1[2 * PBFT_FRAME_BYTES_MAX + 4096];
static uint8_t arena2[2 * PBFT_FRAME_BYTES_MAX + 4096];
static struct pbft_request reqs[PBFT_BATCH_REQS_MAX];
static struct pbft_request reqs2[PBFT_BATCH_REQS_MAX];

static void
batch_roundtrip(const uint8_t *data, size_t size)
{
	struct wbuf auth, auth2, enc;
	uint32_t k, k2;

	wbuf_init_dynamic(&auth, WIRE_BATCH_AUTH_BYTES_MAX);
	wbuf_init_dynamic(&auth2, WIRE_BATCH_AUTH_BYTES_MAX);
	wbuf_init_dynamic(&enc, 2 * PBFT_FRAME_BYTES_MAX);
	if (wire_decode_batch(
	        data, size, reqs, PBFT_BATCH_REQS_MAX, &k, &auth) != WIRE_OK)
		goto out;
	if (wire_encode_batch(&enc, reqs, k) != 0 ||
	    wire_decode_batch(enc.p, enc.len, reqs2, PBFT_BATCH_REQS_MAX, &k2,
	        &auth2) != WIRE_OK ||
	    k2 != k)
		abort();
	for (uint32_t i = 0; i < k; i++)
		if (reqs2[i].client != reqs[i].client ||
		    reqs2[i].timestamp != reqs[i].timestamp ||
		    reqs2[i].op_len != reqs[i].op_len ||
		    (reqs[i].op_len > 0 &&
		        memcmp(reqs2[i].op, reqs[i].op, reqs[i].op_len) != 0) ||
		    reqs2[i].auth_len != reqs[i].auth_len ||
		    (reqs[i].auth_len > 0 &&
		        memcmp(reqs2[i].auth, reqs[i].auth, reqs[i].auth_len) !=
		            0))
			abort();
out:
	wbuf_clear(&auth);
	wbuf_clear(&auth2);
	wbuf_clear(&enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_arena a1, a2;
	struct pbft_msg m1, m2;
	struct wbuf w1, w2;

	wire_arena_init(&a1, arena1, sizeof(arena1));
	if (wire_decode(data, size, &m1, &a1) == WIRE_OK) {
		wbuf_init_dynamic(&w1, PBFT_FRAME_BYTES_MAX);
		wbuf_init_dynamic(&w2, PBFT_FRAME_BYTES_MAX);
		if (wire_encode(&w1, &m1) != 0)
			abort();
		wire_arena_init(&a2, arena2, sizeof(arena2));
		if (wire_decode(w1.p, w1.len, &m2, &a2) != WIRE_OK ||
		    wire_encode(&w2, &m2) != 0 || w1.len != w2.len ||
		    memcmp(w1.p, w2.p, w1.len) != 0)
			abort();
		wbuf_clear(&w1);
		wbuf_clear(&w2);
	}
	batch_roundtrip(data, size);
	return 0;
}
