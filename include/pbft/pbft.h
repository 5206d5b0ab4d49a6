/*
 * pbft/pbft.h - libpbft, the pbft library: one include for all of it.
 *
 *     #include <pbft/pbft.h>      cc ... $(pkg-config --cflags --libs pbft)
 *
 * libpbft gives a program what pbftd, pbftctl and pbft-replica are built
 * from: a client of a pbft cluster (pbft/client.h), a replica running a
 * deterministic service of the program's own (pbft/service.h), and loading
 * a cluster.ini with its errors (pbft/config.h). Everything else of the
 * tree is internal and not exported.
 *
 * Threads: libpbft has no global state a caller must set up. A loaded
 * configuration is immutable and may be read from any thread. A client or
 * a replica belongs to the libev loop it was created on: call its
 * functions, and free it, only from the thread that runs that loop; its
 * callbacks run on that thread. A replica runs background threads of its
 * own (disk syncs, snapshots) that never call back into the program.
 * Several clients and replicas may share one loop or use one loop each.
 *
 * Signals: the library never installs a signal handler. Connections write
 * to sockets whose peer may have gone: ignore SIGPIPE (signal(SIGPIPE,
 * SIG_IGN)) in a program that uses it.
 *
 * Logging: the library logs to standard error, one line per event.
 */
#ifndef PBFT_PUBLIC_PBFT_H
#define PBFT_PUBLIC_PBFT_H

#include <pbft/client.h>
#include <pbft/config.h>
#include <pbft/service.h>

#endif
