/*
 * pbft/config.h - loading a cluster configuration (cluster.ini, see
 * cluster.ini(5)).
 *
 * A configuration names the cluster's nodes (address, public key, and for
 * the nodes and clients this host runs, the private key file) and its
 * clients. Loading checks structure and values; a private key is read only
 * when a client or a replica is started with it. Errors are one line,
 * "FILE:LINE: what is wrong" (or "FILE: what is wrong"), written to the
 * caller's buffer (PBFT_ERR_LEN bytes are enough).
 *
 * Threads: pbft_conf_load and pbft_conf_free from any thread; a loaded
 * configuration does not change and may be read from several threads.
 */
#ifndef PBFT_PUBLIC_CONFIG_H
#define PBFT_PUBLIC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <pbft/api.h>

PBFT_BEGIN_DECLS

struct pbft_conf;

/* Parses and validates the file at path. Returns a configuration to free
 * with pbft_conf_free, or NULL with the first problem in err. */
PBFT_API struct pbft_conf *pbft_conf_load(
    const char *path, char *err, size_t errlen);
/* Safe on NULL. Not while a client or replica made from it lives. */
PBFT_API void pbft_conf_free(struct pbft_conf *conf);

/* Number of replicas n, and the number f of faulty ones tolerated. */
PBFT_API uint32_t pbft_conf_nodes(const struct pbft_conf *conf);
PBFT_API uint32_t pbft_conf_faults(const struct pbft_conf *conf);
/* The id of client [client.NAME] (its position among the clients, which
 * is what a service's execute is handed): 0, or -1 if there is none. */
PBFT_API int pbft_conf_client_id(
    const struct pbft_conf *conf, const char *name, uint32_t *id);

/* The library's version, "MAJOR.MINOR.PATCH". */
PBFT_API const char *pbft_version(void);

PBFT_END_DECLS

#endif
