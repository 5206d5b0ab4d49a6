/*
 * fuzz_state.c - libFuzzer target for what a state-transfer peer sends
 * the built-in ledger (pbft-replica/service.c): the input is a fetched
 * state, a head followed by its tail. A service that holds two entries of
 * its own learns where the tail starts (head_tail, from every prefix
 * length up to the fixed part), checks the head (stage_check), stages the
 * tail bytes past its own in pieces (stage_put) and installs them; the
 * whole input also goes through restore. Nothing may crash or leak; what is
 * staged never goes past the tail the head names; a state that installs
 * has the digest the check gave.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
submit(struct service *s, const char *tx)
{
	uint8_t res[PBFT_RESULT_BYTES_MAX];
	size_t rlen;
	struct wbuf wb;

	wbuf_init_dynamic(&wb, 1024);
	if (ledger_op_submit(&wb, tx, strlen(tx)) == -1 ||
	    s->ops->execute(s, 1, 0, wb.p, wb.len, res, &rlen) != SVC_OK)
		abort();
	wbuf_clear(&wb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct service *s = service_ledger_new(), *m = service_ledger_new();
	const struct service_ops *ops;
	uint8_t d[PBFT_DIGEST_LEN], d2[PBFT_DIGEST_LEN];
	uint64_t tail = 0, have;
	size_t head_len = size, piece = size % 7 + 1;
	int rc = -1;

	if (s == NULL || m == NULL)
		abort();
	ops = s->ops;
	submit(s, "a");
	submit(s, "b");
	for (size_t k = 0; k <= size && k <= 64; k++)
		if (ops->head_tail(data, k, &tail) < -1 ||
		    ops->head_tail(data, k, &tail) > 1)
			abort();
	if (ops->head_tail(data, size, &tail) == 0 && tail <= size)
		head_len = size - (size_t)tail;
	else
		tail = 0;
	have = ops->stage_have(s);
	if (ops->stage_check(s, data, head_len, d) == 0) {
		rc = 0;
		for (uint64_t at = ops->stage_have(s); at < tail; at += piece) {
			size_t n =
			    tail - at < piece ? (size_t)(tail - at) : piece;

			if ((rc = ops->stage_put(s, data + head_len + at, n)) ==
			    -1)
				break;
			if (ops->stage_have(s) > tail)
				abort(); /* past the tail the head names */
		}
	}
	if (rc != -1 && ops->stage_install(s) == 0) {
		ops->digest(s, d2);
		if (memcmp(d, d2, PBFT_DIGEST_LEN) != 0)
			abort();
	} else {
		ops->stage_drop(s);
		if (ops->stage_have(s) != have)
			abort(); /* dropped back to its own */
	}
	(void)m->ops->restore(m, data, size);
	s->ops->free(s);
	m->ops->free(m);
	return 0;
}
