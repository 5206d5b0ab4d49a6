/*
 * pbftctl.c - command-line front end of pbft.
 *
 *     pbftctl [-s SOCKET | -c FILE] [-j] [-t SECONDS] COMMAND [ARGS]
 *
 * Key and cluster tooling (keygen, init) and the load generator (bench) run
 * locally; every other command is one JSON request to pbftd's control socket
 * and one JSON reply. Exit status: 0 ok, 1 request failed or timed out,
 * 2 usage or configuration error, 3 pbftd unreachable.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "ctl.h"
#include "keys.h"
#include "pbft_build.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pbftctl [-s SOCKET | -c FILE] [-j] [-t SECONDS] COMMAND "
	    "[ARGS]\n"
	    "\n"
	    "commands (through pbftd's control socket):\n"
	    "  submit DATA...        append a transaction to the ledger\n"
	    "  put KEY VALUE         set a key\n"
	    "  get KEY               read a key (ordered like any request)\n"
	    "  del KEY               delete a key\n"
	    "  status [--json]       readiness, cluster and per-replica "
	    "state\n"
	    "  peers [--json]        replicas: address, local or remote, "
	    "connected,\n"
	    "                        public key\n"
	    "  restart NODE          restart one local replica\n"
	    "  stop NODE             stop one local replica\n"
	    "  shutdown              stop pbftd and its replicas\n"
	    "local commands:\n"
	    "  keygen [-o FILE] [--seed HEX64]   create an Ed25519 key\n"
	    "  init -n N -o DIR [...]            create a cluster "
	    "configuration\n"
	    "  bench -c FILE [...]               load generator (see "
	    "pbftctl bench -h)\n"
	    "\n"
	    "  -s, --socket PATH     pbftd's control socket\n"
	    "  -c, --config FILE     take the socket path from cluster.ini\n"
	    "  -j, --json            print replies as JSON\n"
	    "  -t, --timeout SECS    how long to wait for pbftd (default 30)\n"
	    "  -h, --help            this text;  -V, --version\n"
	    "\n"
	    "With no command on a terminal, pbftctl reads commands "
	    "interactively.\n"
	    "Exit status: 0 ok, 1 request failed, 2 usage or configuration "
	    "error,\n3 pbftd unreachable.\n");
}

int
main(int argc, char **argv)
{
	const char *cmd;

	if (argc >= 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	        strcmp(argv[1], "help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 &&
	    (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("pbftctl %s\n", PBFT_VERSION);
		return 0;
	}
	cmd = argc >= 2 ? argv[1] : "";
	if (strcmp(cmd, "keygen") == 0)
		return pbftctl_keygen(argc - 1, argv + 1);
	if (strcmp(cmd, "init") == 0)
		return pbftctl_init(argc - 1, argv + 1);
	if (strcmp(cmd, "bench") == 0)
		return pbftctl_bench(argc - 1, argv + 1);
	return ctl_main(argc, argv, usage);
}
