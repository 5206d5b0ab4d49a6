/*
 * replica_ev.c - the replica's libev watchers: a tick timer, a prepare
 * watcher that starts the group commit's flush before the loop waits, and
 * the store's eventfd. Each is a thin wrapper around an entry point of
 * replica.h, so that an environment without a loop (the simulator) drives
 * the same code by calling those entry points itself. Nothing else in the
 * driver calls libev.
 */
#include "replica_int.h"

#include <ev.h>

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	replica_tick(w->data);
}

static void
wal_prep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	ev_prepare_stop(loop, w);
	replica_before_wait(w->data);
}

static void
wal_done_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	replica_disk_event(w->data);
}

void
replica_ev_start(struct replica *r)
{
	if (r->loop == NULL)
		return;
	ev_prepare_init(&r->wal_prep, wal_prep_cb);
	r->wal_prep.data = r;
	if (store_sync_fd(r->store) != -1) {
		ev_io_init(&r->wal_done, wal_done_cb, store_sync_fd(r->store),
		    EV_READ);
		r->wal_done.data = r;
		ev_io_start(r->loop, &r->wal_done);
	}
	ev_timer_init(&r->tick, tick_cb, REPLICA_TICK_MS / 1000.0,
	    REPLICA_TICK_MS / 1000.0);
	r->tick.data = r;
	ev_timer_start(r->loop, &r->tick);
}

void
replica_ev_stop(struct replica *r)
{
	if (r->loop == NULL)
		return;
	ev_timer_stop(r->loop, &r->tick);
	ev_prepare_stop(r->loop, &r->wal_prep);
	if (r->store != NULL && store_sync_fd(r->store) != -1)
		ev_io_stop(r->loop, &r->wal_done);
}

void
replica_ev_want_wait(struct replica *r)
{
	if (r->loop != NULL)
		ev_prepare_start(r->loop, &r->wal_prep);
}

double
replica_now(const struct replica *r)
{
	if (r->opts.now != NULL)
		return r->opts.now(r->opts.env_ctx);
	return r->loop != NULL ? ev_now(r->loop) : 0.0;
}
