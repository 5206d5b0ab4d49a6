/*
 * api.c - libpbft's configuration and client calls (include/pbft/config.h,
 * include/pbft/client.h): thin wrappers over common/cfg.c and
 * common/client.c, which hold the logic. The replica half is in
 * lib/replica_api.c.
 */
#include <pbft/pbft.h>

#include <ev.h>
#include <stdio.h>

#include "cfg.h"
#include "client.h"
#include "pbft_build.h"
#include "svcop.h"
#include "wbuf.h"

/* The public status codes are the service's own. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(PBFT_SVC_OK, SVC_OK) &&
        SAME(PBFT_SVC_NOT_FOUND, SVC_NOT_FOUND) &&
        SAME(PBFT_SVC_BAD_OP, SVC_BAD_OP) &&
        SAME(PBFT_SVC_TOO_BIG, SVC_TOO_BIG) &&
        SAME(PBFT_SVC_DENIED, SVC_DENIED) && SAME(PBFT_SVC_QUOTA, SVC_QUOTA),
    "enum pbft_svc differs from enum service_status");
_Static_assert(PBFT_DIGEST_BYTES == PBFT_DIGEST_LEN &&
        PBFT_SERVICE_RESULT_MAX == PBFT_RESULT_BYTES_MAX,
    "include/pbft/service.h differs from common/msg.h");

/* A struct pbft_conf is a struct cluster_cfg under a public name. */
static const struct cluster_cfg *
conf_cfg(const struct pbft_conf *conf)
{
	return (const struct cluster_cfg *)(const void *)conf;
}

struct pbft_conf *
pbft_conf_load(const char *path, char *err, size_t errlen)
{
	return (struct pbft_conf *)(void *)cfg_load(path, err, errlen);
}

void
pbft_conf_free(struct pbft_conf *conf)
{
	cfg_free((struct cluster_cfg *)(void *)conf);
}

uint32_t
pbft_conf_nodes(const struct pbft_conf *conf)
{
	return conf_cfg(conf)->n;
}

uint32_t
pbft_conf_faults(const struct pbft_conf *conf)
{
	return conf_cfg(conf)->f;
}

int
pbft_conf_client_id(
    const struct pbft_conf *conf, const char *name, uint32_t *id)
{
	const struct cfg_client *cl = cfg_client_by_name(conf_cfg(conf), name);

	if (cl == NULL)
		return -1;
	*id = cl->id;
	return 0;
}

const char *
pbft_version(void)
{
	return PBFT_VERSION;
}

struct pbft_client *
pbft_client_open(struct ev_loop *loop, const struct pbft_conf *conf,
    const char *name, const struct pbft_client_params *params, char *err,
    size_t errlen)
{
	const struct cluster_cfg *cfg = conf_cfg(conf);
	struct pbft_client_opts o = {.cfg = cfg};

	if (pbft_conf_client_id(conf, name, &o.client_id) == -1) {
		snprintf(err, errlen, "%s: no [client.%s]", cfg->path, name);
		return NULL;
	}
	if (params != NULL) {
		o.timeout_ms = params->timeout_ms;
		o.retransmit_ms = params->retransmit_ms;
		o.max_outstanding = params->max_outstanding;
	}
	if (cfg_load_client_key(cfg, o.client_id, &o.key, err, errlen) == -1)
		return NULL;
	return pbft_client_new(loop, &o, err, errlen); /* takes the key */
}

void
pbft_client_wait(struct ev_loop *loop, struct pbft_client *c)
{
	while (pbft_client_outstanding(c) > 0)
		ev_run(loop, EVRUN_ONCE);
}

/* Encodes one operation of the built-in service into op and submits it. */
#define OP_MAX (PBFT_OP_BYTES_MAX)

static int
submit_built(struct pbft_client *c, struct wbuf *wb, int rc, pbft_client_cb cb,
    void *arg)
{
	if (rc == -1)
		return -1;
	return pbft_client_submit(c, wb->p, wb->len, cb, arg);
}

int
pbft_ledger_submit(struct pbft_client *c, const void *tx, size_t len,
    pbft_client_cb cb, void *arg)
{
	struct wbuf wb;
	int rc;

	wbuf_init_dynamic(&wb, OP_MAX);
	rc = submit_built(c, &wb, ledger_op_submit(&wb, tx, len), cb, arg);
	wbuf_clear(&wb);
	return rc;
}

int
pbft_kv_put(struct pbft_client *c, const void *key, size_t klen,
    const void *val, size_t vlen, pbft_client_cb cb, void *arg)
{
	struct wbuf wb;
	int rc;

	wbuf_init_dynamic(&wb, OP_MAX);
	rc = submit_built(
	    c, &wb, ledger_op_put(&wb, key, klen, val, vlen), cb, arg);
	wbuf_clear(&wb);
	return rc;
}

int
pbft_kv_get(struct pbft_client *c, const void *key, size_t klen,
    pbft_client_cb cb, void *arg)
{
	struct wbuf wb;
	int rc;

	wbuf_init_dynamic(&wb, OP_MAX);
	rc = submit_built(c, &wb, ledger_op_get(&wb, key, klen), cb, arg);
	wbuf_clear(&wb);
	return rc;
}

int
pbft_kv_del(struct pbft_client *c, const void *key, size_t klen,
    pbft_client_cb cb, void *arg)
{
	struct wbuf wb;
	int rc;

	wbuf_init_dynamic(&wb, OP_MAX);
	rc = submit_built(c, &wb, ledger_op_del(&wb, key, klen), cb, arg);
	wbuf_clear(&wb);
	return rc;
}
