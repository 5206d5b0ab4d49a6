/*
 * replica.c - the replica process's glue around the consensus core; see
 * replica.h. Protocol decisions live in core/, bytes on the wire in net.c,
 * durability in store.c, the application in service.c; of the driver, the
 * reply table is in replies.c, recovery on start in recover.c and state
 * transfer in xfer.c.
 */
#include "replica_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "pbft_build.h"
#if PBFT_FAULT_INJECTION
#include "fault.h"
#endif
#include "diskspace.h"
#include "failstop.h"
#include "log.h"
#include "net.h"
#include "pbft.h"
#include "service.h"
#include "sig.h"
#include "store.h"

/* ---- sending ---------------------------------------------------------- */

static void wal_needed(struct replica *r, bool early);

void
send_to(struct replica *r, uint32_t to, const struct pbft_msg *m, bool early)
{
	wal_needed(r, early);
#if PBFT_FAULT_INJECTION
	if (fault_send(r->fault, r->net, to, m))
		return;
#endif
	net_send(r->net, to, m, early);
}

static void
broadcast(struct replica *r, const struct pbft_msg *m, bool early)
{
	wal_needed(r, early);
#if PBFT_FAULT_INJECTION
	if (fault_send(r->fault, r->net, UINT32_MAX, m))
		return;
#endif
	net_broadcast(r->net, m, early);
}

void
send_client(struct replica *r, uint32_t client, const struct pbft_reply *rep)
{
	struct pbft_msg m = {.type = PBFT_MSG_REPLY};

#if PBFT_FAULT_INJECTION
	if (fault_drop_replies(r->fault))
		return;
#endif
	m.u.reply = *rep;
	net_send_client(r->net, client, &m);
}

/* ---- executing -------------------------------------------------------- */

static void
do_execute(struct replica *r, const struct pbft_action *a)
{
	for (uint32_t i = 0; i < a->nreqs; i++) {
		const struct pbft_request *req = &a->reqs[i];
		struct reply_slot *slot;
		struct pbft_reply rep;
		size_t len = 0;

		if (a->skip[i] || (slot = reply_slot(r, req->client)) == NULL)
			continue;
		slot->status = r->svc->ops->execute(r->svc, a->seq, req->client,
		    req->op, req->op_len, slot->result, &len);
		slot->len = (uint32_t)len;
		slot->ts = req->timestamp;
		slot->seq = a->seq;
		slot->view = a->view;
		rep = (struct pbft_reply){.view = a->view,
		    .timestamp = req->timestamp,
		    .client = req->client,
		    .replica = r->id,
		    .seq = a->seq,
		    .status = slot->status,
		    .result_len = slot->len,
		    .result = slot->result};
		send_client(r, req->client, &rep);
	}
	if (r->svc->ops->flush != NULL)
		r->svc->ops->flush(r->svc);
}

/* ---- checkpoints and snapshots ---------------------------------------- */

struct snap *
snap_find(struct replica *r, uint64_t seq)
{
	for (int i = 0; i < SNAPS_MAX; i++)
		if (r->snaps[i].seq == seq && seq != 0)
			return &r->snaps[i];
	return NULL;
}

struct snap *
snap_slot(struct replica *r)
{
	struct snap *best = &r->snaps[0];

	for (int i = 0; i < SNAPS_MAX; i++) {
		if (r->snaps[i].seq == 0)
			return &r->snaps[i];
		if (r->snaps[i].seq < best->seq)
			best = &r->snaps[i];
	}
	return best;
}

static void
defer_event(struct replica *r, const struct pbft_event *ev)
{
	if (r->ndeferred == SNAPS_MAX)
		fatalx("too many deferred events (core contract broken)");
	r->deferred[r->ndeferred++] = *ev;
}

/* s->img = table, the reply table and the service's image (its head if
 * incremental). */
int
snap_build(
    struct replica *r, struct snap *s, const uint8_t *table, size_t table_len)
{
	const struct service_ops *ops = r->svc->ops;
	size_t at;

	wbuf_reset(&s->img);
	s->tail_len = 0;
	wbuf_put_u32(&s->img, (uint32_t)table_len);
	wbuf_put_bytes(&s->img, table, table_len);
	at = s->img.len;
	wbuf_put_u32(&s->img, 0); /* patched below */
	replies_encode(r->replies, r->cfg->nclients, &s->img);
	if (wbuf_failed(&s->img))
		return -1;
	wbuf_patch_u32(&s->img, at, (uint32_t)(s->img.len - at - 4));
	if (ops->checkpoint != NULL
	        ? ops->checkpoint(r->svc, &s->img, &s->tail_len) == -1
	        : ops->snapshot(r->svc, &s->img) == -1)
		return -1;
	return wbuf_failed(&s->img) ? -1 : 0;
}

static void bg_kick(struct replica *r, bool may_compact);
static void write_snapshot(struct replica *r, const struct snap *s);

static void
do_take_checkpoint(struct replica *r, const struct pbft_action *a)
{
	struct snap *s = snap_slot(r);
	struct pbft_event ev = {.type = PBFT_EV_STATE_DIGEST, .seq = a->seq};
	const uint8_t *ct, *rp, *svc;
	size_t ctlen, rplen, svclen;
	uint8_t sd[PBFT_DIGEST_LEN];

	if (s == r->bg_snap || r->snap_wanted != NULL) {
		bg_settle(r); /* rare: checkpoints come K batches apart */
		s = snap_slot(r);
	}
	s->seq = a->seq;
	if (snap_build(r, s, a->client_table, a->client_table_len) == -1 ||
	    image_split(s->img.p, s->img.len, &ct, &ctlen, &rp, &rplen, &svc,
	        &svclen) == -1)
		fatalx("checkpoint %llu: cannot snapshot the service",
		    (unsigned long long)a->seq);
	r->svc->ops->digest(r->svc, sd);
	replies_fold(r->crypto, sd, rp, rplen, ev.digest);
	defer_event(r, &ev);
	if (r->cfg->fsync == CFG_FSYNC_BATCH) {
		/* Written now, so that it is durable by the time our
		 * CHECKPOINT leaves (ckpt_wait) and when the checkpoint is
		 * stable and the log names it. */
		r->snap_wanted = s;
		r->ckpt_wait = a->seq;
		bg_kick(r, false);
	} else {
		/* Durable before the step of our CHECKPOINT syncs. */
		write_snapshot(r, s);
	}
}

/*
 * fsync = always or off: runs before the step's records are synced, so the
 * snapshot of a checkpoint is on disk before our CHECKPOINT leaves or the
 * log names it stable.
 */
static void
write_snapshot(struct replica *r, const struct snap *s)
{
	/* The file part first: the head on disk names only durable bytes. */
	if (r->svc->ops->sync != NULL && r->svc->ops->sync(r->svc) == -1)
		failstop(FAILSTOP_IO,
		    "checkpoint %llu: cannot make the service's file durable",
		    (unsigned long long)s->seq);
	if (store_snapshot_write(r->store, s->seq, s->img.p, s->img.len) == -1)
		failstop(FAILSTOP_IO,
		    "checkpoint %llu: cannot write its "
		    "snapshot: %s",
		    (unsigned long long)s->seq, store_last_error(r->store));
}

static void
write_stable_snapshot(struct replica *r, const struct pbft_action *a)
{
	struct snap *s = snap_find(r, a->seq);

	if (s != NULL && !store_snapshot_durable(r->store, a->seq))
		write_snapshot(r, s);
}

static void
do_stable(struct replica *r, const struct pbft_action *a)
{
	/* Older images are no longer needed by anyone (one the store's
	 * thread is writing stays untouched until it is done: see
	 * do_take_checkpoint). */
	for (int i = 0; i < SNAPS_MAX; i++)
		if (r->snaps[i].seq != 0 && r->snaps[i].seq < a->seq) {
			r->snaps[i].seq = 0;
			if (r->snap_wanted == &r->snaps[i])
				r->snap_wanted = NULL;
		}
	if (r->ckpt_wait < a->seq)
		r->ckpt_wait = 0; /* below the stable one: wanted no more */
	log_debug("checkpoint %llu stable", (unsigned long long)a->seq);
}

/* ---- the core ---------------------------------------------------------- */

static int
compact_emit(void *arg, const uint8_t *rec, size_t len)
{
	struct replica *r = arg;

	return store_append(r->store, rec, len);
}

static int
compact_gen(void *arg)
{
	struct replica *r = arg;

	return pbft_compact(r->core, compact_emit, r) == 0 ? 0 : -1;
}

/*
 * The core's contract: a step's records are durable before its messages
 * leave. With fsync = batch the loop does not wait for the disk: a step's
 * records are buffered and its output to replicas is held in net (net_hold:
 * replies to clients depend on no record here and go at once); before the
 * loop next waits, wal_begin writes everything buffered, marks what net holds
 * and hands one fdatasync to the store's thread; when it ends, wal_ended
 * releases the marked output. Steps that run meanwhile buffer records for
 * the next flush, so flushes overlap with work and carry many batches.
 * Output queued after a mark goes out only with a later flush, so held
 * frames keep their order.
 *
 * Pre-prepares and prepares (early output) are not held: agreement does
 * not wait for the disk, only a commit does (it follows the record of
 * the slot's prepared claim). A flush starts when held output needs it, so the
 * records of a batch's pre-prepare and prepares usually share the flush of
 * that claim; a tick flushes what nothing needed. Early output waits
 * only while a view's record (a barrier) is not durable, so that nothing
 * of a new view overtakes its NEW-VIEW or our entry into it.
 *
 * Checkpoints stay off the loop too. A checkpoint's snapshot is handed to
 * the store's background thread when it is taken; the records of the step
 * that makes it stable (which name it) are not flushed before it is
 * durable (stable_wait). Then the log is compacted there, and the
 * compaction's last step (the new log made live) runs in place of a flush.
 */
static void wal_begin(struct replica *r);

static bool
wal_wanted(const struct replica *r)
{
	return r->stable_wait == 0 && r->ckpt_wait == 0 &&
	    ((r->wal_dirty && r->wal_need) || store_compact_ready(r->store));
}

/* No flush in flight: the next one, or, with nothing buffered, let all
 * output go. */
static void
wal_next(struct replica *r)
{
	if (wal_wanted(r))
		wal_begin(r);
	else if (!r->wal_dirty)
		net_unhold(r->net);
}

static void
wal_ended(struct replica *r, int rc)
{
	r->wal_inflight = false;
	r->barrier_inflight = false;
	if (rc == -1)
		failstop(FAILSTOP_IO,
		    "write-ahead log: cannot make records durable: %s",
		    store_last_error(r->store));
#if PBFT_FAULT_INJECTION
	fault_point(r->fault, FAULT_AFTER_WAL);
#endif
	net_release_marked(r->net);
	wal_next(r);
}

static void
wal_begin(struct replica *r)
{
	int rc;

#if PBFT_FAULT_INJECTION
	fault_point(r->fault, FAULT_BEFORE_WAL);
#endif
	net_mark(r->net);
	r->wal_dirty = r->wal_need = false;
	r->barrier_inflight = r->barrier_dirty;
	r->barrier_dirty = false;
	rc = store_sync_begin(r->store);
	if (rc == 1)
		r->wal_inflight = true;
	else
		wal_ended(r, rc);
}

/* Output that is not early waits for the records buffered so far: flush
 * them before the loop next waits (so does a tick, for early ones). */
static void
wal_needed(struct replica *r, bool early)
{
	if (early || !r->wal_dirty || r->wal_need)
		return;
	r->wal_need = true;
	replica_ev_want_wait(r);
}

void
replica_before_wait(struct replica *r)
{
	if (!r->wal_inflight && wal_wanted(r))
		wal_begin(r);
}

/*
 * Hands the background thread its next job when it is idle: a taken
 * checkpoint's snapshot first, then a compaction (only with may_compact:
 * it calls into the core, so never while a step's actions are carried out).
 */
static void
bg_kick(struct replica *r, bool may_compact)
{
	const struct service_ops *ops = r->svc->ops;
	struct snap *s = r->snap_wanted;
	struct pbft_status ps;
	int rc;

	if (store_bg_busy(r->store))
		return;
	r->bg_snap = NULL;
	if (s != NULL) {
		/* The image's head names the service's file up to here. */
		if (ops->flush != NULL)
			ops->flush(r->svc);
		if (store_snapshot_begin(r->store, s->seq, s->img.p, s->img.len,
		        ops->file_fd != NULL ? ops->file_fd(r->svc) : -1) ==
		    1) {
			r->bg_snap = s;
			r->snap_wanted = NULL;
		}
		return;
	}
	if (!r->compact_wanted || !may_compact)
		return;
	pbft_get_status(r->core, &ps);
	rc =
	    store_compact_begin(r->store, ps.stable_checkpoint, compact_gen, r);
	if (rc == -1)
		log_warnx("write-ahead log: compaction failed; the old log is "
		          "kept and compaction is retried at the next "
		          "checkpoint");
	if (rc != 0) /* 0: one is still in the works; this one follows */
		r->compact_wanted = false;
}

/* After the background thread's job ended (or to look whether it has). */
static void
bg_poll(struct replica *r, bool wait, bool may_compact)
{
	int rc = store_bg_poll(r->store, wait);

	if (rc == 1)
		return;
	if (rc == -1)
		failstop(FAILSTOP_IO,
		    "checkpoint %llu: cannot write its "
		    "snapshot: %s",
		    (unsigned long long)(r->bg_snap ? r->bg_snap->seq : 0),
		    store_last_error(r->store));
	bg_kick(r, may_compact);
	if (r->stable_wait != 0 &&
	    store_snapshot_durable(r->store, r->stable_wait))
		r->stable_wait = 0;
	if (r->ckpt_wait != 0 && store_snapshot_durable(r->store, r->ckpt_wait))
		r->ckpt_wait = 0;
	if (!r->wal_inflight)
		wal_next(r);
}

/* Waits until no snapshot is being written or waits to be. */
void
bg_settle(struct replica *r)
{
	while (r->bg_snap != NULL || r->snap_wanted != NULL)
		bg_poll(r, true, false);
}

void
replica_disk_event(struct replica *r)
{
	int rc;

	rc = store_sync_poll(r->store, false); /* also drains the eventfd */
	if (rc != 1 && r->wal_inflight)
		wal_ended(r, rc);
	bg_poll(r, false, true);
}

/* Everything buffered is durable now (the log was just rewritten). */
static void
wal_settled(struct replica *r)
{
	r->wal_dirty = r->wal_need = false;
	r->barrier_dirty = r->barrier_inflight = false;
	net_unhold(r->net); /* lets everything held go */
}

/*
 * Whether output may leave before the log is durable: pre-prepares and
 * prepares (the core marks them early) while no barrier record waits. A
 * crash may then lose votes that peers saw; the core's start record keeps
 * a replica that crashed mute in the views it may have sent them in.
 */
static bool
early_ok(const struct replica *r, const struct pbft_action *a)
{
	if ((r->opts.test_flags & REPLICA_TEST_EARLY_COMMIT) &&
	    a->msg != NULL && a->msg->type == PBFT_MSG_COMMIT)
		return true;
	return a->early && !r->barrier_dirty && !r->barrier_inflight;
}

/*
 * First pass over the core's actions: every record to the log, and what
 * a stable checkpoint makes the flush wait for. With fsync = off or
 * always the records are made durable here; with batch, the group commit
 * holds the output until they are.
 */
static void
persist_actions(struct replica *r)
{
	bool batch = r->cfg->fsync == CFG_FSYNC_BATCH;
	bool persisted = false;

	for (size_t i = 0; i < r->acts.n; i++) {
		const struct pbft_action *a = &r->acts.v[i];

		if (a->type == PBFT_ACT_STABLE && !batch)
			write_stable_snapshot(r, a);
		if (a->type == PBFT_ACT_STABLE && batch) {
			if (snap_find(r, a->seq) != NULL &&
			    !store_snapshot_durable(r->store, a->seq))
				r->stable_wait = a->seq;
			else if (r->stable_wait < a->seq)
				/* A later stable checkpoint than the one we
				 * waited for, and no snapshot of it to wait
				 * for (we are behind it: its state will be
				 * fetched, and a restart fetches it again).
				 * do_stable drops the older snapshot if it
				 * was not written yet, so waiting for it would
				 * hold every flush, and all output, forever. */
				r->stable_wait = 0;
		}
		if (a->type != PBFT_ACT_PERSIST)
			continue;
		if (store_append(r->store, a->record, a->record_len) == -1)
			fatalx("write-ahead log: record of %zu bytes refused",
			    a->record_len);
		persisted = true;
		if (a->barrier && batch)
			r->barrier_dirty = r->wal_need = true;
	}
	if (persisted && !batch) {
		/* off: write and send right away; always: the loop waits
		 * for the disk after every step. */
#if PBFT_FAULT_INJECTION
		fault_point(r->fault, FAULT_BEFORE_WAL);
#endif
		if (store_sync(r->store) == -1)
			failstop(FAILSTOP_IO,
			    "write-ahead log: cannot make records durable: %s",
			    store_last_error(r->store));
#if PBFT_FAULT_INJECTION
		fault_point(r->fault, FAULT_AFTER_WAL);
#endif
	} else if (persisted) {
		r->wal_dirty = true;
		net_hold(r->net);
		replica_ev_want_wait(r);
	}
}

/* One action but PERSIST (done by persist_actions). */
static void
act(struct replica *r, const struct pbft_action *a)
{
	switch (a->type) {
	case PBFT_ACT_SEND:
		send_to(r, a->to, a->msg, early_ok(r, a));
		break;
	case PBFT_ACT_BROADCAST:
		broadcast(r, a->msg, early_ok(r, a));
		break;
	case PBFT_ACT_PERSIST:
		break;
	case PBFT_ACT_EXECUTE:
		do_execute(r, a);
		break;
	case PBFT_ACT_RESEND_REPLY:
		do_resend_reply(r, a);
		break;
	case PBFT_ACT_TAKE_CHECKPOINT:
		do_take_checkpoint(r, a);
		break;
	case PBFT_ACT_STABLE:
		do_stable(r, a);
		break;
	case PBFT_ACT_VIEW:
		log_info("entered view %llu (primary %u)",
		    (unsigned long long)a->view,
		    (unsigned)(a->view % r->cfg->n));
		break;
	case PBFT_ACT_FETCH_STATE:
		do_fetch_state(r, a);
		break;
	case PBFT_ACT_DISCONNECT:
		net_disconnect(r->net, false, a->to,
		    "sent a signature that does not verify");
		break;
	case PBFT_ACT_DROP_CLIENT:
		net_disconnect(r->net, true, a->client,
		    "sent a request that does not authenticate");
		break;
	}
}

/*
 * The log below a new stable checkpoint is history: rewrite it from the
 * core's compacted state, so disk use stays bounded (with batch, in the
 * background).
 */
static void
compact_after_stable(struct replica *r, uint64_t stable)
{
	int rc;

	if (r->cfg->fsync == CFG_FSYNC_BATCH) {
		r->compact_wanted = true;
		bg_kick(r, true);
		return;
	}
	rc = store_rewrite(r->store, compact_gen, r);
	if (rc == -2)
		failstop(FAILSTOP_IO,
		    "write-ahead log: compaction failed after its new log was "
		    "written (%s); stopping rather than guessing which log a "
		    "restart would read",
		    store_last_error(r->store));
	if (rc == -1) {
		log_warnx("write-ahead log: compaction failed; the old log is "
		          "kept and compaction is retried at the next "
		          "checkpoint");
		if (store_sync(r->store) == -1)
			failstop(FAILSTOP_IO,
			    "write-ahead log: cannot make records durable: %s",
			    store_last_error(r->store));
	} else {
		store_snapshots_prune(r->store, stable);
	}
	wal_settled(r);
}

static void
run_actions(struct replica *r)
{
	uint64_t stable = 0;

	persist_actions(r);
	for (size_t i = 0; i < r->acts.n; i++) {
		act(r, &r->acts.v[i]);
		if (r->acts.v[i].type == PBFT_ACT_STABLE)
			stable = r->acts.v[i].seq;
	}
	if (stable != 0)
		compact_after_stable(r, stable);
}

void
replica_step(struct replica *r, const struct pbft_event *ev)
{
	struct pbft_event queue[SNAPS_MAX];
	size_t nq;

	r->acts.n = 0;
	if (pbft_step(r->core, ev, &r->acts) == -1)
		fatalx("consensus core: out of memory");
	run_actions(r);
	/* Answers produced by the actions (state digests) go in next. */
	while (r->ndeferred > 0) {
		nq = r->ndeferred;
		memcpy(queue, r->deferred, nq * sizeof(queue[0]));
		r->ndeferred = 0;
		for (size_t i = 0; i < nq; i++) {
			r->acts.n = 0;
			if (pbft_step(r->core, &queue[i], &r->acts) == -1)
				fatalx("consensus core: out of memory");
			run_actions(r);
		}
	}
}

/* ---- network input ----------------------------------------------------- */

/*
 * Every frame net.h delivers was decoded once, there; here it is routed by
 * its type through `routes`, the one table of who handles what. A handler
 * gets the decoded message, borrowed from the frame (which it may need:
 * relaying an announcement) for the duration of the call.
 */
typedef void route_fn(struct replica *r, uint32_t from,
    const struct pbft_msg *m, const uint8_t *frame, size_t len);

/* A protocol message from a replica, for the core. */
static void
to_core(struct replica *r, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	struct pbft_event ev = {.type = PBFT_EV_MSG, .from = from, .msg = m};

	(void)frame;
	(void)len;
	replica_step(r, &ev);
}

/* A request a backup forwarded. Below the disk reserve a primary proposes
 * nothing new: the backups' timers replace it. */
static void
forwarded_request(struct replica *r, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	if (r->disk.low) {
		r->disk.refused++;
		return;
	}
	to_core(r, from, m, frame, len);
}

/* A request from client `client`: it speaks only for itself (the channel
 * proved who it is). Below the disk reserve: no new work (the client
 * retries at the others); agreement on what others propose goes on. */
static void
client_request(struct replica *r, uint32_t client, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	struct pbft_event ev = {.type = PBFT_EV_REQUEST, .msg = m};

	(void)frame;
	(void)len;
	if (m->u.request.client != client) {
		r->frames_bad++;
		return;
	}
	if (r->disk.low) {
		r->disk.refused++;
		return;
	}
	replica_step(r, &ev);
}

static void
fetch_state(struct replica *r, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	(void)frame;
	(void)len;
	on_fetch_state(r, from, &m->u.fetch_state);
}

static void
state_chunk(struct replica *r, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	(void)frame;
	(void)len;
	on_state_chunk(r, from, &m->u.state_chunk);
}

static void
announce(struct replica *r, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	net_announce(r->net, from, m, frame, len);
}

/*
 * Each message type's handler when a replica sends it and when a client
 * does. No handler (HELLO and AUTH belong to the handshake, REPLY goes only
 * to clients, and clients send only requests): the frame is counted bad.
 */
static const struct route {
	route_fn *replica, *client;
} routes[PBFT_MSG_TYPE_MAX] = {
    [PBFT_MSG_REQUEST] = {forwarded_request, client_request},
    [PBFT_MSG_PREPREPARE] = {to_core, NULL},
    [PBFT_MSG_PREPARE] = {to_core, NULL},
    [PBFT_MSG_COMMIT] = {to_core, NULL},
    [PBFT_MSG_CHECKPOINT] = {to_core, NULL},
    [PBFT_MSG_VIEW_CHANGE] = {to_core, NULL},
    [PBFT_MSG_NEW_VIEW] = {to_core, NULL},
    [PBFT_MSG_FETCH_BATCH] = {to_core, NULL},
    [PBFT_MSG_BATCH] = {to_core, NULL},
    [PBFT_MSG_STATUS] = {to_core, NULL},
    [PBFT_MSG_FETCH_STATE] = {fetch_state, NULL},
    [PBFT_MSG_STATE_CHUNK] = {state_chunk, NULL},
    [PBFT_MSG_ANNOUNCE] = {announce, NULL},
};

static void
on_msg(void *ctx, bool client, uint32_t from, const struct pbft_msg *m,
    const uint8_t *frame, size_t len)
{
	struct replica *r = ctx;
	route_fn *fn = NULL;

	if (m != NULL && (unsigned)m->type < PBFT_MSG_TYPE_MAX)
		fn = client ? routes[m->type].client : routes[m->type].replica;
	if (fn == NULL) {
		r->frames_bad++;
		return;
	}
	fn(r, from, m, frame, len);
}

/* Tells the core of each channel to a replica that came up since the
 * last tick (PBFT_EV_PEER_UP). */
static void
peers_up_check(struct replica *r)
{
	for (uint32_t i = 0; i < r->cfg->n; i++) {
		bool up = i != r->id && net_peer_up(r->net, i);

		if (up && !r->peer_up[i]) {
			struct pbft_event ev = {
			    .type = PBFT_EV_PEER_UP, .from = i};

			replica_step(r, &ev);
		}
		r->peer_up[i] = up;
	}
}

void
replica_tick(struct replica *r)
{
	struct pbft_event ev = {.type = PBFT_EV_TICK};
	struct pbft_status st;

	replica_step(r, &ev);
	wal_needed(r, false); /* records whose output all went early */
	peers_up_check(r);
	if (++r->disk_ticks * REPLICA_TICK_MS >= 1000) {
		r->disk_ticks = 0;
		diskspace_check(&r->disk);
	}
	pbft_get_status(r->core, &st);
	if (st.view_changes_deferred != r->vc_deferred) {
		r->vc_deferred = st.view_changes_deferred;
		log_warnx("view %llu: no progress for a view-change timeout, "
		          "but fewer than 2f replicas answer: not suspecting "
		          "the primary while cut off",
		    (unsigned long long)st.view);
	}
	r->ticks++;
	for (uint32_t i = 0; i < r->cfg->n; i++)
		r->serve_credit[i] =
		    r->serve_credit[i] + XFER_SERVE_BYTES_TICK <
		        XFER_SERVE_BURST
		    ? r->serve_credit[i] + XFER_SERVE_BYTES_TICK
		    : XFER_SERVE_BURST;
	if (r->xfer.active)
		xfer_tick(r);
#if PBFT_FAULT_INJECTION
	fault_tick(r->fault, r->net);
#endif
}

/* ---- setup ------------------------------------------------------------- */

static const uint8_t *
client_key(void *ctx, uint32_t client)
{
	struct replica *r = ctx;

	return net_client_request_key(r->net, client);
}

static int
open_ledger(struct replica *r, char *err, size_t errlen)
{
	char path[CFG_PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/ledger", store_dir(r->store));
	if ((r->svc = service_ledger_open(path)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (service_ledger_access(r->svc, r->cfg) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
open_service(struct replica *r, char *err, size_t errlen)
{
	const struct service_ops *ops;

	if (r->opts.service_open != NULL) {
		if ((r->svc = r->opts.service_open(r->opts.service_arg,
		         store_dir(r->store), err, errlen)) == NULL)
			return -1;
	} else if (open_ledger(r, err, errlen) == -1) {
		return -1;
	}
	ops = r->svc->ops;
	if (ops->head_tail == NULL || ops->stage_have == NULL ||
	    ops->stage_put == NULL || ops->stage_check == NULL ||
	    ops->stage_install == NULL || ops->stage_drop == NULL) {
		snprintf(err, errlen,
		    "the service lacks the state-transfer operations "
		    "(head_tail, stage_*: pbft-replica/service.h)");
		return -1;
	}
	return 0;
}

static void
core_config(struct replica *r, struct pbft_config *pc)
{
	const struct cluster_cfg *c = r->cfg;

	pbft_config_default(pc, c->n, r->id, c->nclients);
	pc->f = c->f;
	pc->checkpoint_interval = c->checkpoint_interval;
	pc->window = c->window;
	pc->batch_reqs_max = c->batch_max;
	pc->batch_bytes_max = c->batch_bytes_max;
	pc->inflight_max = c->inflight_max;
	pc->queue_bytes_max = c->queue_bytes_max;
	pc->batch_delay_ticks = c->batch_timeout_ms / REPLICA_TICK_MS;
	pc->view_timeout_ticks = c->view_change_timeout_ms / REPLICA_TICK_MS;
	if (pc->view_timeout_ticks < 2)
		pc->view_timeout_ticks = 2;
	pc->retransmit_ticks = pc->view_timeout_ticks / 4;
	if (pc->retransmit_ticks < 5)
		pc->retransmit_ticks = 5;
	pc->crypto = r->crypto;
	pc->test_flags = r->opts.core_test_flags;
}

struct replica *
replica_new(struct ev_loop *loop, struct cluster_cfg *cfg, void *key,
    const struct replica_opts *opts, char *err, size_t errlen)
{
	struct replica *r = calloc(1, sizeof(*r));
	struct pbft_config pc;
	struct net_callbacks cb = {.ctx = NULL};

	if (r == NULL) {
		sig_key_free(key);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->loop = loop;
	r->cfg = cfg;
	r->opts = *opts;
	r->id = opts->id;
	wbuf_init_dynamic(&r->xfer.img, STATE_HEAD_BYTES_MAX);
	for (int i = 0; i < PBFT_REPLICAS_MAX; i++)
		r->serve_credit[i] = XFER_SERVE_BURST;
	for (int i = 0; i < SNAPS_MAX; i++)
		wbuf_init_dynamic(&r->snaps[i].img, STATE_HEAD_BYTES_MAX);
	r->replies =
	    calloc(cfg->nclients ? cfg->nclients : 1, sizeof(*r->replies));
	if (r->replies == NULL) {
		sig_key_free(key);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r->crypto = &r->rc.ops;
	if (opts->core_crypto != NULL) {
		r->crypto = opts->core_crypto;
		sig_key_free(key);
	} else if (replica_crypto_init(&r->rc, cfg, key, err, errlen) == -1) {
		goto fail;
	}
	core_config(r, &pc);
	if ((r->core = pbft_new(&pc, err, errlen)) == NULL)
		goto fail;
	r->store = store_open(cfg->data_dir, r->id, cfg->fsync, err, errlen);
	if (r->store == NULL ||
	    store_liars_read(r->store, &r->xfer.liars, err, errlen) == -1)
		goto fail;
	diskspace_init(&r->disk, store_dir(r->store), cfg->min_free_bytes);
#if PBFT_FAULT_INJECTION
	if (opts->faults != NULL) {
		bool bad;
		char ferr[128];

		r->fault =
		    fault_new(opts->faults, r->id, cfg->n, store_dir(r->store),
		        r->rc.self_key, &bad, ferr, sizeof(ferr));
		if (bad) {
			snprintf(err, errlen, "PBFT_FAULTS: %s", ferr);
			goto fail;
		}
	}
#endif
	if (open_service(r, err, errlen) == -1 ||
	    store_replay(r->store, recover_record, r, err, errlen) == -1 ||
	    restore_snapshot(r, err, errlen) == -1 ||
	    record_start(r, err, errlen) == -1)
		goto fail;
	cb.ctx = r;
	cb.on_msg = on_msg;
	r->net = net_new(loop, cfg, r->id, r->rc.self_key, &cb, err, errlen);
	if (r->net == NULL)
		goto fail;
	r->rc.self = r->id;
	r->rc.client_key = client_key;
	r->rc.client_key_ctx = r;
	if (r->fetch_on_start.seq != 0)
		do_fetch_state(r, &r->fetch_on_start);
	replica_ev_start(r);
	return r;
fail:
	replica_free(r);
	return NULL;
}

/* snprintf that appends at *off; sets *off past len on overflow. */
PBFT_PRINTF(4, 5)
static void
jput(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	*off = n < 0 ? len : *off + (size_t)n;
}

/*
 * "peers": each other replica's link as net sees it: up (net_link), whether
 * the peer takes heartbeats, ms since anything was heard (-1: no channel),
 * bytes queued to it, dials retried and links closed as silent.
 */
static void
peers_json(const struct replica *r, char *buf, size_t len, size_t *off)
{
	struct net_stats ns;
	struct net_link l;
	bool first = true;

	net_get_stats(r->net, &ns);
	jput(buf, len, off, ",\"peers\":[");
	for (uint32_t i = 0; i < r->cfg->n; i++) {
		if (i == r->id)
			continue;
		net_peer_link(r->net, i, &l);
		jput(buf, len, off,
		    "%s{\"id\":%u,\"up\":%s,\"heartbeats\":%s,"
		    "\"heard_ms\":%lld,\"queued\":%zu,\"redials\":%llu,"
		    "\"dead\":%llu}",
		    first ? "" : ",", i, l.up ? "true" : "false",
		    l.heartbeats ? "true" : "false", (long long)l.heard_ms,
		    l.queued, (unsigned long long)l.redials,
		    (unsigned long long)ns.peer[i].links_dead);
		first = false;
	}
	jput(buf, len, off, "]");
}

/* Rejected input by reason: the core's, then the glue's and net's. */
static void
rejected_json(const struct replica *r, const struct pbft_status *st,
    const struct net_stats *ns, char *buf, size_t len, size_t *off)
{
	jput(buf, len, off, ",\"rejected\":{");
	for (int i = 0; i < PBFT_REJ_COUNT; i++)
		jput(buf, len, off, "\"%s\":%llu,",
		    pbft_reject_name((enum pbft_reject)i),
		    (unsigned long long)st->rejected[i]);
	for (int i = 0; i < NET_REFUSE_COUNT; i++)
		jput(buf, len, off, "\"%s\":%llu,",
		    net_refuse_name((enum net_refuse)i),
		    (unsigned long long)ns->refused[i]);
	jput(buf, len, off,
	    "\"undecodable_frame\":%llu,\"handshake\":%llu,"
	    "\"bad_record\":%llu,\"bad_announcement\":%llu,"
	    "\"bad_state_chunk\":%llu,\"disk_low\":%llu}",
	    (unsigned long long)r->frames_bad,
	    (unsigned long long)ns->handshake_failures,
	    (unsigned long long)ns->auth_failures,
	    (unsigned long long)ns->announce_rejected,
	    (unsigned long long)r->xfer.failures,
	    (unsigned long long)r->disk.refused);
}

/* The data disk and the log's sync-time histogram; closes the object. */
static void
disk_json(const struct replica *r, const struct store_stats *ss, char *buf,
    size_t len, size_t *off)
{
	char disk[96];

	diskspace_describe(&r->disk, disk, sizeof(disk));
	jput(buf, len, off, ",\"disk\":\"%s\",\"data_free_bytes\":%llu", disk,
	    (unsigned long long)r->disk.free_bytes);
	jput(buf, len, off, ",\"wal_sync_le_us\":[");
	for (int i = 0; i < STORE_SYNC_BUCKETS - 1; i++)
		jput(buf, len, off, "%s%u", i ? "," : "", store_sync_le_us[i]);
	jput(buf, len, off, "],\"wal_sync_buckets\":[");
	for (int i = 0; i < STORE_SYNC_BUCKETS; i++)
		jput(buf, len, off, "%s%llu", i ? "," : "",
		    (unsigned long long)ss->sync_hist[i]);
	jput(buf, len, off, "]}");
}

int
replica_status_json(struct replica *r, char *buf, size_t len)
{
	struct pbft_status st;
	struct net_stats ns;
	struct store_stats ss;
	char digest[2 * PBFT_DIGEST_LEN + 1];
	size_t off = 0;

	pbft_get_status(r->core, &st);
	net_get_stats(r->net, &ns);
	store_get_stats(r->store, &ss);
	sig_hex_encode(st.stable_digest, PBFT_DIGEST_LEN, digest);
	jput(buf, len, &off,
	    "{\"id\":%u,\"view\":%llu,\"primary\":%u,\"view_changing\":%s,"
	    "\"following\":%s,\"following_view\":%llu,\"muted\":%s,\"last_"
	    "executed\":%llu,\"stable_checkpoint\":%llu,"
	    "\"state_digest\":\"%s\",\"peers_connected\":%u,"
	    "\"clients_connected\":%u,\"executed_requests\":%llu,"
	    "\"executed_batches\":%llu,\"view_changes\":%llu,"
	    "\"view_changes_deferred\":%llu,"
	    "\"queued\":%u,\"state_transfer\":%s,\"state_transfers\":%llu,"
	    "\"state_transfer_bytes\":%llu,"
	    "\"wal_syncs\":%llu,\"wal_sync_max_us\":%llu,"
	    "\"wal_sync_sum_us\":%llu,\"wal_bytes\":%llu,"
	    "\"wal_compactions\":%llu,\"wal_compactions_abandoned\":%llu,"
	    "\"wal_compaction_switch_max_us\":%llu,\"snapshots\":%llu,"
	    "\"snapshot_max_us\":%llu,\"frames_bad\":%llu,"
	    "\"auth_failures\":%llu,\"queue_drops\":%llu,"
	    "\"request_sig_checks\":%llu,\"request_sig_cached\":%llu,"
	    "\"request_mac_checks\":%llu,"
	    "\"request_mac_fallbacks\":%llu,\"replica_sig_checks\":%llu",
	    r->id, (unsigned long long)st.view, st.primary,
	    st.view_changing ? "true" : "false",
	    st.following ? "true" : "false",
	    (unsigned long long)st.following_view, st.muted ? "true" : "false",
	    (unsigned long long)st.last_executed,
	    (unsigned long long)st.stable_checkpoint, digest,
	    ns.peers_connected, ns.clients_connected,
	    (unsigned long long)st.executed_reqs,
	    (unsigned long long)st.executed_batches,
	    (unsigned long long)st.view_changes,
	    (unsigned long long)st.view_changes_deferred, st.queued_reqs,
	    r->xfer.active ? "true" : "false",
	    (unsigned long long)r->xfer.completed,
	    (unsigned long long)r->xfer.bytes_total,
	    (unsigned long long)ss.syncs,
	    (unsigned long long)(ss.sync_ns_max / 1000),
	    (unsigned long long)(ss.sync_ns_total / 1000),
	    (unsigned long long)ss.bytes, (unsigned long long)ss.compactions,
	    (unsigned long long)ss.compactions_abandoned,
	    (unsigned long long)(ss.switch_ns_max / 1000),
	    (unsigned long long)ss.snapshots,
	    (unsigned long long)(ss.snapshot_ns_max / 1000),
	    (unsigned long long)r->frames_bad,
	    (unsigned long long)(ns.auth_failures + ns.handshake_failures),
	    (unsigned long long)ns.queue_drops,
	    (unsigned long long)r->rc.req_sig_checks,
	    (unsigned long long)r->rc.req_sig_cached,
	    (unsigned long long)r->rc.mac_ok,
	    (unsigned long long)r->rc.mac_fallbacks,
	    (unsigned long long)r->rc.verify_calls);
	rejected_json(r, &st, &ns, buf, len, &off);
	jput(buf, len, &off, ",\"state_requests_refused\":%llu",
	    (unsigned long long)r->serve_refused);
	peers_json(r, buf, len, &off);
	disk_json(r, &ss, buf, len, &off);
	return off < len ? 0 : -1;
}

struct store *
replica_store(struct replica *r)
{
	return r->store;
}

void
replica_mem_stats(const struct replica *r, struct replica_mem *m)
{
	struct pbft_status st;

	memset(m, 0, sizeof(*m));
	pbft_get_status(r->core, &st);
	m->core_queued_reqs = st.queued_reqs;
	m->core_queued_bytes = st.queued_bytes;
	m->core_pending_reqs = st.pending_reqs;
	m->window = st.high_mark - st.last_executed;
	for (uint32_t i = 0; i < r->cfg->nclients; i++)
		m->reply_slots += r->replies[i] != NULL;
	for (int i = 0; i < SNAPS_MAX; i++) {
		m->snaps += r->snaps[i].seq != 0;
		m->snap_bytes += r->snaps[i].img.cap;
	}
	m->xfer_bytes = r->xfer.img.cap;
	m->actions = r->acts.cap * sizeof(*r->acts.v);
}

/* crashed: the disk under the replica is gone; no more disk work. */
static void
replica_release(struct replica *r, bool crashed)
{
	if (r == NULL)
		return;
	if (r->started && !crashed)
		record_stop(r);
	replica_ev_stop(r);
	net_free(r->net);
#if PBFT_FAULT_INJECTION
	fault_free(r->fault);
#endif
	if (crashed)
		store_abandon(r->store);
	else
		store_close(r->store);
	pbft_free(r->core);
	free(r->acts.v);
	replica_crypto_clear(&r->rc);
	if (r->svc != NULL)
		r->svc->ops->free(r->svc);
	if (r->replies != NULL)
		for (uint32_t i = 0; i < r->cfg->nclients; i++)
			free(r->replies[i]);
	free(r->replies);
	for (int i = 0; i < SNAPS_MAX; i++)
		wbuf_clear(&r->snaps[i].img);
	wbuf_clear(&r->xfer.img);
	free(r->chunk_buf);
	free(r);
}

void
replica_free(struct replica *r)
{
	replica_release(r, false);
}

void
replica_abandon(struct replica *r)
{
	replica_release(r, true);
}
