/*
 * svcop.h - the client side of the built-in service: how a ledger or
 * key-value operation is encoded into a request, and the status codes a
 * reply carries.
 *
 * This is what a client (pbftd, pbftctl, an embedder) needs to talk to the
 * built-in ledger + key-value service; the service itself (execution,
 * state, journal) stays in pbft-replica/service.c, which decodes what these
 * helpers encode and encodes the results they decode. Nothing here does
 * I/O.
 */
#ifndef PBFT_SVCOP_H
#define PBFT_SVCOP_H

#include <stddef.h>
#include <stdint.h>

#include "wbuf.h"

/* Status codes carried in replies (struct pbft_reply.status). */
enum service_status {
	SVC_OK = 0,
	SVC_NOT_FOUND = 1, /* get/del of a key that is not there */
	SVC_BAD_OP = 2, /* the operation does not parse */
	SVC_TOO_BIG = 3, /* a value that does not fit a reply */
	SVC_DENIED = 4, /* put/del of a key this client may not write */
	SVC_QUOTA = 5, /* the put would exceed the owner's key or byte quota */
};

/* Operation encoding of the built-in service (first byte = opcode). */
enum ledger_op {
	LEDGER_OP_SUBMIT = 1, /* rest: transaction bytes -> u64 ledger index */
	LEDGER_OP_PUT = 2, /* u16 key_len, key, value -> empty, or
	                      SVC_DENIED, SVC_QUOTA */
	LEDGER_OP_GET = 3, /* key -> value, or SVC_NOT_FOUND */
	LEDGER_OP_DEL = 4, /* key -> empty, or SVC_NOT_FOUND, SVC_DENIED */
};

#define LEDGER_KEY_BYTES_MAX 1024

/* Helpers to build operations for the built-in service; 0 or -1 (a key
 * empty or longer than LEDGER_KEY_BYTES_MAX, or wb out of room). */
int ledger_op_submit(struct wbuf *wb, const void *tx, size_t len);
int ledger_op_put(struct wbuf *wb, const void *key, size_t klen,
    const void *val, size_t vlen);
int ledger_op_get(struct wbuf *wb, const void *key, size_t klen);
int ledger_op_del(struct wbuf *wb, const void *key, size_t klen);

/* The result of a LEDGER_OP_SUBMIT answered SVC_OK: the transaction's
 * index in the ledger (u64, little-endian). 0, or -1 when result is not
 * 8 bytes long. */
#define LEDGER_INDEX_BYTES 8
int ledger_result_index(const void *result, size_t len, uint64_t *index);

#endif
