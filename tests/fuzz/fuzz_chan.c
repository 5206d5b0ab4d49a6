/*
 * fuzz_chan.c - libFuzzer target for the channel layer. The first input
 * byte picks the victim and the second how the rest is cut into reads:
 *
 *   mode 0: a responder (replica 1) receives the bytes as a dialler's
 *           HELLO, AUTH and records;
 *   mode 1: an initiator (replica 0 dialling replica 1) receives them as
 *           the responder's answer;
 *   mode 2: a channel that completed a real handshake receives one genuine
 *           record and then the bytes as further records; the first byte
 *           also sets a work budget of 0 (none) to 3 frames per call, so
 *           records are delivered in pieces across calls.
 *
 * Whatever arrives, chan_input must return 0 or -1, never consume more than
 * it was given, stay dead once it failed, deliver only frames that are
 * well-formed and within the limits, and no more per call than its budget.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "sig.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *rkey[2], *ckey;
static uint8_t rpub[2][32], cpub[32];

static void
keys(void)
{
	uint8_t seed[32];

	if (ckey != NULL)
		return;
	for (int i = 0; i < 2; i++) {
		memset(seed, 0x30 + i, 32);
		rkey[i] = sig_keygen(seed);
		if (rkey[i] == NULL || sig_public_raw(rkey[i], rpub[i]) != 0)
			abort();
	}
	memset(seed, 0x40, 32);
	ckey = sig_keygen(seed);
	if (ckey == NULL || sig_public_raw(ckey, cpub) != 0)
		abort();
}

static int
lookup(void *ctx, uint8_t role, uint32_t id, uint8_t pub[32])
{
	(void)ctx;
	if (role == PBFT_ROLE_REPLICA && id < 2)
		memcpy(pub, rpub[id], 32);
	else if (role == PBFT_ROLE_CLIENT && id == 0)
		memcpy(pub, cpub, 32);
	else
		return -1;
	return 0;
}

static void
on_frame(void *arg, const uint8_t *f, size_t len)
{
	size_t flen;

	(*(int *)arg)++;
	if (len > PBFT_FRAME_BYTES_MAX ||
	    wire_frame_len(f, len, &flen) != WIRE_OK || flen != len)
		abort();
}

/* Moves all of from into to's input; 0 or -1. */
static int
pump(struct wbuf *from, struct chan *to, struct wbuf *to_out, int *frames)
{
	size_t used = 0;
	int rc =
	    chan_input(to, from->p, from->len, &used, to_out, on_frame, frames);

	wbuf_reset(from);
	return rc;
}

/* A real handshake between a and b; 0 or -1. */
static int
handshake(struct chan *a, struct chan *b, struct wbuf *ao, struct wbuf *bo)
{
	int frames = 0;

	if (chan_start(a, ao) != 0 || chan_start(b, bo) != 0)
		return -1;
	for (int i = 0; i < 4; i++) {
		if (ao->len > 0 && pump(ao, b, bo, &frames) != 0)
			return -1;
		if (bo->len > 0 && pump(bo, a, ao, &frames) != 0)
			return -1;
	}
	return chan_established(a) && chan_established(b) ? 0 : -1;
}

/* Feeds pre then data to ch in reads of step bytes, like a socket would;
 * returns the number of frames delivered. */
static int
feed(struct chan *ch, const uint8_t *pre, size_t prelen, const uint8_t *data,
    size_t size, size_t step)
{
	uint8_t *buf = malloc(prelen + size + 1);
	size_t have = 0, off = 0, total = prelen + size;
	struct wbuf out;
	int frames = 0;
	bool dead = false;

	if (buf == NULL)
		abort();
	if (prelen > 0)
		memcpy(buf, pre, prelen);
	memcpy(buf + prelen, data, size);
	wbuf_init_dynamic(&out, 1 << 16);
	while (off < total || (!dead && chan_budget_spent(ch))) {
		size_t n = total - off < step ? total - off : step;
		size_t used = 0;
		int rc, before = frames;

		have += n;
		off += n;
		rc = chan_input(ch, buf, have, &used, &out, on_frame, &frames);
		if (rc != 0 && rc != -1)
			abort();
		if (used > have || (dead && rc != -1))
			abort();
		if (ch->frames_max != 0 &&
		    (size_t)(frames - before) > ch->frames_max)
			abort();
		if (rc == -1) {
			if (ch->state != CHAN_FAILED)
				abort();
			dead = true;
		}
		memmove(buf, buf + used, have - used);
		have -= used;
		wbuf_reset(&out);
	}
	wbuf_clear(&out);
	free(buf);
	return frames;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan a, b;
	struct wbuf ao, bo, rec;
	size_t step;
	uint8_t frame[256];
	struct pbft_msg m = {.type = PBFT_MSG_CHECKPOINT};
	struct wbuf fw;

	if (size < 2)
		return 0;
	keys();
	step = data[1] == 0 ? size : data[1];
	wbuf_init_dynamic(&ao, 1 << 16);
	wbuf_init_dynamic(&bo, 1 << 16);
	wbuf_init_dynamic(&rec, 1 << 16);
	chan_init(&a, PBFT_ROLE_REPLICA, 0, rkey[0], lookup, NULL, "fuzz", true,
	    PBFT_ROLE_REPLICA, 1);
	chan_init(&b, PBFT_ROLE_REPLICA, 1, rkey[1], lookup, NULL, "fuzz",
	    false, 0, 0);
	switch (data[0] % 3) {
	case 0:
		if (chan_start(&b, &bo) != 0)
			abort();
		(void)feed(&b, NULL, 0, data + 2, size - 2, step);
		break;
	case 1:
		if (chan_start(&a, &ao) != 0)
			abort();
		(void)feed(&a, NULL, 0, data + 2, size - 2, step);
		break;
	default:
		if (handshake(&a, &b, &ao, &bo) != 0)
			abort();
		chan_set_budget(&b, (size_t)(data[0] / 3 % 4), 0);
		m.u.checkpoint.seq = 1;
		wbuf_init_fixed(&fw, frame, sizeof(frame));
		if (wire_encode(&fw, &m) != 0 ||
		    chan_seal(&a, fw.p, fw.len, &rec) != 0)
			abort();
		/* The genuine record comes first, so it always gets through. */
		if (feed(&b, rec.p, rec.len, data + 2, size - 2, step) < 1)
			abort();
		break;
	}
	chan_clear(&a);
	chan_clear(&b);
	wbuf_clear(&ao);
	wbuf_clear(&bo);
	wbuf_clear(&rec);
	return 0;
}
