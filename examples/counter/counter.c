/*
 * counter.c - the counter service (counter.h). Deterministic: execute
 * depends on the state and the operation only. The lines it prints are
 * output for the test that checks every replica reached one value; the
 * state never depends on them.
 */
#include "counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct counter {
	uint64_t value;
	FILE *out;
};

static void
put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int
counter_value(const uint8_t *result, size_t len, uint64_t *value)
{
	if (len != 8)
		return -1;
	*value = 0;
	for (int i = 7; i >= 0; i--)
		*value = *value << 8 | result[i];
	return 0;
}

static void *
counter_create(void *arg)
{
	struct counter *c = calloc(1, sizeof(*c));

	if (c != NULL)
		c->out = arg;
	return c;
}

static void
counter_destroy(void *state)
{
	free(state);
}

static uint8_t
counter_execute(void *state, uint64_t seq, uint32_t client, const uint8_t *op,
    size_t op_len, uint8_t *result, size_t *result_len)
{
	struct counter *c = state;

	(void)client;
	if (op_len != 1 || (op[0] != COUNTER_OP_INC && op[0] != COUNTER_OP_GET))
		return PBFT_SVC_BAD_OP;
	if (op[0] == COUNTER_OP_INC)
		c->value++;
	put_le64(result, c->value);
	*result_len = 8;
	if (c->out != NULL) {
		fprintf(c->out, "value %llu at seq %llu\n",
		    (unsigned long long)c->value, (unsigned long long)seq);
		fflush(c->out);
	}
	return PBFT_SVC_OK;
}

/* The value itself, padded: two different states never share a digest. */
static void
counter_digest(void *state, uint8_t out[PBFT_DIGEST_BYTES])
{
	const struct counter *c = state;

	memset(out, 0, PBFT_DIGEST_BYTES);
	memcpy(out, "counter", 7);
	put_le64(out + 8, c->value);
}

static int
counter_snapshot(void *state, uint8_t **image, size_t *len)
{
	const struct counter *c = state;

	if ((*image = malloc(8)) == NULL)
		return -1;
	put_le64(*image, c->value);
	*len = 8;
	return 0;
}

static int
counter_restore(void *state, const uint8_t *image, size_t len)
{
	struct counter *c = state;

	return counter_value(image, len, &c->value);
}

const struct pbft_service_ops counter_ops = {
    .create = counter_create,
    .destroy = counter_destroy,
    .execute = counter_execute,
    .digest = counter_digest,
    .snapshot = counter_snapshot,
    .restore = counter_restore,
};
