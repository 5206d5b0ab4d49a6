/* bench.h - `pbftctl bench`: a load generator over the client library. */
#ifndef PBFTCTL_BENCH_H
#define PBFTCTL_BENCH_H

/* Runs `pbftctl bench ARGS`; argv[0] is "bench". Returns an exit status. */
int pbftctl_bench(int argc, char **argv);

#endif
