/*
 * replica_api.c - libpbft's replica (include/pbft/service.h): a replica of
 * pbft-replica/replica.c running a service given as struct
 * pbft_service_ops, through an adapter to the internal struct service_ops.
 *
 * The adapter's checkpoints are whole images: a snapshot is u64 length |
 * the service's image, with no tail in a file of its own, so a state
 * transfer fetches the whole image as the head, restores it into a new
 * state made by create, compares that state's digest with the certified
 * one (the replica does, with what stage_check returns), and only then
 * swaps it in. Incremental checkpoints (the built-in ledger's journal) stay
 * internal.
 */
#include <pbft/pbft.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "replica.h"
#include "service.h"
#include "wbuf.h"

struct adapter {
	struct service base;
	const struct pbft_service_ops *ops;
	void *arg;
	void *state;
	void *staged; /* a fetched state, checked, not yet installed */
};

static struct adapter *
adapter_of(struct service *s)
{
	return (struct adapter *)(void *)s;
}

static uint8_t
ad_execute(struct service *s, uint64_t seq, uint32_t client, const uint8_t *op,
    size_t op_len, uint8_t *result, size_t *result_len)
{
	struct adapter *a = adapter_of(s);

	*result_len = 0;
	return a->ops->execute(
	    a->state, seq, client, op, op_len, result, result_len);
}

static void
ad_digest(struct service *s, uint8_t out[PBFT_DIGEST_LEN])
{
	struct adapter *a = adapter_of(s);

	a->ops->digest(a->state, out);
}

static int
ad_snapshot(struct service *s, struct wbuf *out)
{
	struct adapter *a = adapter_of(s);
	uint8_t *img = NULL;
	size_t len = 0;

	if (a->ops->snapshot(a->state, &img, &len) == -1) {
		free(img);
		return -1;
	}
	wbuf_put_u64(out, len);
	wbuf_put_bytes(out, img, len);
	free(img);
	return wbuf_failed(out) ? -1 : 0;
}

/* The image inside a head (u64 length | image): 0, 1 if more bytes are
 * needed, -1 if there are bytes past it. */
static int
head_image(
    const uint8_t *head, size_t len, const uint8_t **img, size_t *img_len)
{
	uint64_t n = 0;

	if (len < 8)
		return 1;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | head[i];
	if (n > len - 8)
		return 1;
	if (n != len - 8)
		return -1;
	*img = head + 8;
	*img_len = (size_t)n;
	return 0;
}

/* A new state from a head; NULL if it is malformed. */
static void *
state_from(struct adapter *a, const uint8_t *head, size_t len)
{
	const uint8_t *img;
	size_t img_len;
	void *st;

	if (head_image(head, len, &img, &img_len) != 0 ||
	    (st = a->ops->create(a->arg)) == NULL)
		return NULL;
	if (a->ops->restore(st, img, img_len) == -1) {
		a->ops->destroy(st);
		return NULL;
	}
	return st;
}

static int
ad_restore(struct service *s, const uint8_t *img, size_t len)
{
	struct adapter *a = adapter_of(s);
	void *st = state_from(a, img, len);

	if (st == NULL)
		return -1;
	a->ops->destroy(a->state);
	a->state = st;
	return 0;
}

static int
ad_head_tail(const uint8_t *head, size_t len, uint64_t *tail_len)
{
	const uint8_t *img;
	size_t img_len;
	int rc = head_image(head, len, &img, &img_len);

	*tail_len = 0;
	return rc;
}

static uint64_t
ad_stage_have(struct service *s)
{
	return 0;
}

static int
ad_stage_put(struct service *s, const uint8_t *p, size_t len)
{
	return -1; /* whole images have no tail */
}

static void
ad_stage_drop(struct service *s)
{
	struct adapter *a = adapter_of(s);

	if (a->staged != NULL)
		a->ops->destroy(a->staged);
	a->staged = NULL;
}

static int
ad_stage_check(struct service *s, const uint8_t *head, size_t len,
    uint8_t digest[PBFT_DIGEST_LEN])
{
	struct adapter *a = adapter_of(s);
	void *st = state_from(a, head, len);

	if (st == NULL)
		return -1;
	ad_stage_drop(s);
	a->staged = st;
	a->ops->digest(st, digest);
	return 0;
}

static int
ad_stage_install(struct service *s)
{
	struct adapter *a = adapter_of(s);

	if (a->staged == NULL)
		return -1;
	a->ops->destroy(a->state);
	a->state = a->staged;
	a->staged = NULL;
	return 0;
}

static void
ad_free(struct service *s)
{
	struct adapter *a = adapter_of(s);

	ad_stage_drop(s);
	if (a->state != NULL)
		a->ops->destroy(a->state);
	free(a);
}

static const struct service_ops adapter_ops = {
    .execute = ad_execute,
    .digest = ad_digest,
    .snapshot = ad_snapshot,
    .restore = ad_restore,
    .head_tail = ad_head_tail,
    .stage_have = ad_stage_have,
    .stage_put = ad_stage_put,
    .stage_check = ad_stage_check,
    .stage_install = ad_stage_install,
    .stage_drop = ad_stage_drop,
    .free = ad_free,
};

struct open_arg {
	const struct pbft_service_ops *ops;
	void *arg;
};

static struct service *
adapter_open(void *arg, const char *dir, char *err, size_t errlen)
{
	const struct open_arg *oa = arg;
	struct adapter *a = calloc(1, sizeof(*a));

	if (a == NULL || (a->state = oa->ops->create(oa->arg)) == NULL) {
		free(a);
		snprintf(err, errlen, "the service's create failed");
		return NULL;
	}
	a->base.ops = &adapter_ops;
	a->ops = oa->ops;
	a->arg = oa->arg;
	return &a->base;
}

struct pbft_replica *
pbft_replica_new(struct ev_loop *loop, struct pbft_conf *conf, uint32_t node,
    const struct pbft_service_ops *ops, void *arg, char *err, size_t errlen)
{
	struct cluster_cfg *cfg = (struct cluster_cfg *)(void *)conf;
	struct replica_opts o = {.id = node, .sup_fd = -1};
	struct open_arg oa = {.ops = ops, .arg = arg};
	void *key;

	if (node >= cfg->n) {
		snprintf(err, errlen, "%s: no node %u (n = %u)", cfg->path,
		    node, cfg->n);
		return NULL;
	}
	if (ops != NULL) {
		if (ops->create == NULL || ops->destroy == NULL ||
		    ops->execute == NULL || ops->digest == NULL ||
		    ops->snapshot == NULL || ops->restore == NULL) {
			snprintf(err, errlen,
			    "struct pbft_service_ops: every operation is "
			    "needed");
			return NULL;
		}
		o.service_open = adapter_open;
		o.service_arg = &oa; /* used only within replica_new */
	}
	if (cfg_load_node_key(cfg, node, &key, err, errlen) == -1)
		return NULL;
	return (struct pbft_replica *)(void *)replica_new(
	    loop, cfg, key, &o, err, errlen);
}

void
pbft_replica_free(struct pbft_replica *r)
{
	replica_free((struct replica *)(void *)r);
}

int
pbft_replica_status_json(struct pbft_replica *r, char *buf, size_t len)
{
	return replica_status_json((struct replica *)(void *)r, buf, len);
}
