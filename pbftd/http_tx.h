/*
 * http_tx.h - reading one ledger entry from a local replica's journal for
 * GET /v1/tx/{index} (http_tx.c).
 */
#ifndef PBFTD_HTTP_TX_H
#define PBFTD_HTTP_TX_H

#include <stdint.h>

struct pbftd;

/*
 * Entry idx of the first local running replica's ledger: 0 with *out
 * (malloc'd, the caller frees) and *len, 1 if it has no such entry (yet),
 * -1 on a read error, -2 if no local replica runs. *node names the
 * replica read.
 */
int http_tx_read(struct pbftd *d, uint64_t idx, uint32_t *node, uint8_t **out,
    uint32_t *len);
/* Drops the offsets kept between calls. */
void http_tx_free(void);

#endif
