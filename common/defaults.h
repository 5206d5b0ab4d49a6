/*
 * defaults.h - the protocol parameters' defaults, in one place: the
 * configuration parser (common/cfg.c), the development cluster of
 * pbft-replica --dev (pbft-replica/main.c) and the consensus core's own
 * default (pbft_config_default) all take them from here, so that a cluster
 * configured without them and a core built in a test agree. Every value is
 * documented with its key in doc/cluster.ini.5.
 */
#ifndef PBFT_DEFAULTS_H
#define PBFT_DEFAULTS_H

#define PBFT_DEFAULT_CHECKPOINT_INTERVAL 100 /* batches */
#define PBFT_DEFAULT_WINDOW 200 /* batches: 2 intervals */
#define PBFT_DEFAULT_BATCH_REQS 1024
#define PBFT_DEFAULT_BATCH_BYTES (1024 * 1024)
/* Two batches in flight: larger batches and fewer signatures than four
 * (measured when it was chosen: 28k -> 34k requests/s at 8x32 clients). */
#define PBFT_DEFAULT_INFLIGHT 2
#define PBFT_DEFAULT_QUEUE_BYTES (64ULL * 1024 * 1024)
/* Not a [cluster] key: the bound of one connection's write queue, the
 * replica's to a peer or client and the client library's to a replica
 * (common/conn.h). A queue that would pass it is dropped, connection and
 * all: the peer is too slow or gone. */
#define PBFT_CONN_QUEUE_BYTES_MAX (32u << 20)

#endif
