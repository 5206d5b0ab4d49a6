/*
 * fuzz_record.c - libFuzzer target for the consensus core's log records
 * (pbft_recover): the input is a sequence of records, each after a u16
 * little-endian length. Any record must be taken or refused cleanly. After
 * the records the core must start (pbft_boot_record), and its compacted
 * log, replayed into a fresh core, must be taken whole and give the same
 * view, stable checkpoint and mute state: compaction writes only records
 * recovery accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_crypto.h"
#include "pbft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pbft *
core(struct fake_crypto *fc)
{
	struct pbft_config c;
	struct pbft *p;

	fake_crypto_init(fc, 1);
	pbft_config_default(&c, 4, 1, 4);
	c.checkpoint_interval = 4;
	c.window = 8;
	c.crypto = &fc->ops;
	if ((p = pbft_new(&c, NULL, 0)) == NULL)
		abort();
	return p;
}

static int
replay(void *arg, const uint8_t *rec, size_t len)
{
	if (pbft_recover(arg, rec, len) != 0)
		abort(); /* compaction wrote a record recovery refuses */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake_crypto fc1, fc2;
	struct pbft *p = core(&fc1), *q;
	struct pbft_status s1, s2;
	uint8_t boot[PBFT_BOOT_RECORD_LEN];
	size_t off = 0;

	while (size - off >= 2) {
		size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;

		off += 2;
		if (len > size - off)
			break;
		if (pbft_recover(p, data + off, len) == -1)
			break; /* a driver refuses to start here */
		off += len;
	}
	pbft_boot_record(p, boot);
	q = core(&fc2);
	if (pbft_compact(p, replay, q) != 0)
		abort();
	pbft_get_status(p, &s1);
	pbft_get_status(q, &s2);
	if (s1.view != s2.view ||
	    s1.stable_checkpoint != s2.stable_checkpoint ||
	    s1.muted != s2.muted)
		abort();
	pbft_free(p);
	pbft_free(q);
	return 0;
}
