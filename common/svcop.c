/*
 * svcop.c - encoding of the built-in service's operations and decoding of
 * their results (svcop.h). The other side is pbft-replica/service.c's
 * execute.
 */
#include "svcop.h"

int
ledger_op_submit(struct wbuf *wb, const void *tx, size_t len)
{
	wbuf_put_u8(wb, LEDGER_OP_SUBMIT);
	wbuf_put_bytes(wb, tx, len);
	return wbuf_failed(wb) ? -1 : 0;
}

int
ledger_op_put(
    struct wbuf *wb, const void *key, size_t klen, const void *val, size_t vlen)
{
	if (klen == 0 || klen > LEDGER_KEY_BYTES_MAX)
		return -1;
	wbuf_put_u8(wb, LEDGER_OP_PUT);
	wbuf_put_u16(wb, (uint16_t)klen);
	wbuf_put_bytes(wb, key, klen);
	wbuf_put_bytes(wb, val, vlen);
	return wbuf_failed(wb) ? -1 : 0;
}

static int
op_with_key(struct wbuf *wb, uint8_t code, const void *key, size_t klen)
{
	if (klen == 0 || klen > LEDGER_KEY_BYTES_MAX)
		return -1;
	wbuf_put_u8(wb, code);
	wbuf_put_u16(wb, (uint16_t)klen);
	wbuf_put_bytes(wb, key, klen);
	return wbuf_failed(wb) ? -1 : 0;
}

int
ledger_op_get(struct wbuf *wb, const void *key, size_t klen)
{
	return op_with_key(wb, LEDGER_OP_GET, key, klen);
}

int
ledger_op_del(struct wbuf *wb, const void *key, size_t klen)
{
	return op_with_key(wb, LEDGER_OP_DEL, key, klen);
}

int
ledger_result_index(const void *result, size_t len, uint64_t *index)
{
	const uint8_t *p = result;

	if (len != LEDGER_INDEX_BYTES)
		return -1;
	*index = 0;
	for (int i = 0; i < LEDGER_INDEX_BYTES; i++)
		*index |= (uint64_t)p[i] << (8 * i);
	return 0;
}
