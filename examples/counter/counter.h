/*
 * counter.h - a replicated counter, the smallest service for libpbft: one
 * unsigned 64-bit value, operations "i" (add one) and "g" (read), each
 * answered with the value after it, 8 bytes little-endian.
 */
#ifndef COUNTER_H
#define COUNTER_H

#include <pbft/pbft.h>

#define COUNTER_OP_INC 'i'
#define COUNTER_OP_GET 'g'

/* The service's operations; arg of create: a FILE * that execute writes
 * "value V at seq S" lines to (NULL: none). */
extern const struct pbft_service_ops counter_ops;

/* The value in a result; 0, or -1 if it is not 8 bytes. */
int counter_value(const uint8_t *result, size_t len, uint64_t *value);

#endif
