/*
 * check_conn.c - the connection module on its own: the dial backoff
 * doubles from 100 ms to 5 s with its jitter within half to one and a
 * half times the step; a connection whose peer closes is closed once and
 * its owner told why (CONN_EOF), a second close telling nothing; the
 * write queue, held frames included, never grows past
 * CONN_QUEUE_BYTES_MAX: the frame that would pass it closes the
 * connection with CONN_QUEUE_FULL. (Channels over real sockets, SIGPIPE
 * and redialling run in check_net and check_client.)
 */
#include <check.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

struct owner {
	int closed;
	enum conn_why why;
	char detail[64];
	size_t queued_at_close;
	struct conn *c;
};

static void
on_frame(void *arg, const uint8_t *frame, size_t len)
{
	(void)arg;
	(void)frame;
	(void)len;
}

static void
on_closed(void *arg, enum conn_why why, const char *detail)
{
	struct owner *o = arg;

	o->closed++;
	o->why = why;
	snprintf(o->detail, sizeof(o->detail), "%s", detail);
	o->queued_at_close = conn_queued(o->c);
}

static const struct conn_ops ops = {.frame = on_frame, .closed = on_closed};

static int
lookup(void *ctx, uint8_t role, uint32_t id, uint8_t pub[PBFT_PUBKEY_LEN])
{
	(void)ctx;
	(void)role;
	(void)id;
	(void)pub;
	return -1;
}

/* c on one end of a socketpair, as an accepted connection; *peer: the
 * other end. */
static void
open_pair(struct conn *c, struct conn_group *g, struct owner *o, int *peer)
{
	int sv[2];

	ck_assert_int_eq(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	memset(o, 0, sizeof(*o));
	o->c = c;
	conn_init(c, g, &ops, o);
	conn_open(c, sv[0], false);
	chan_init(
	    &c->ch, PBFT_ROLE_REPLICA, 0, NULL, lookup, NULL, "t", false, 0, 0);
	ck_assert_int_eq(conn_start(c), 0);
	*peer = sv[1];
}

START_TEST(test_backoff_doubles_with_jitter)
{
	uint32_t ms = 0, step = CONN_BACKOFF_MIN_MS;

	for (int i = 0; i < 12; i++) {
		double d = conn_backoff(&ms);

		ck_assert(d >= step * 0.5 / 1000 && d <= step * 1.5 / 1000);
		step = step * 2 > CONN_BACKOFF_MAX_MS ? CONN_BACKOFF_MAX_MS
		                                      : step * 2;
		ck_assert_uint_eq(ms, step);
	}
	ck_assert_uint_eq(ms, CONN_BACKOFF_MAX_MS);
}
END_TEST

START_TEST(test_closed_once_with_reason)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct conn_group g;
	struct conn c;
	struct owner o;
	int peer;

	conn_group_init(&g, loop);
	open_pair(&c, &g, &o, &peer);
	ck_assert(conn_is_open(&c));
	ck_assert_ptr_eq(g.all, &c);
	close(peer);
	for (int i = 0; i < 10 && o.closed == 0; i++)
		ev_run(loop, EVRUN_ONCE);
	ck_assert_int_eq(o.closed, 1);
	ck_assert_int_eq(o.why, CONN_EOF);
	ck_assert_str_eq(o.detail, "closed by peer");
	ck_assert(!conn_is_open(&c));
	ck_assert_ptr_null(g.all);
	conn_close(&c, CONN_LOCAL, "again");
	ck_assert_int_eq(o.closed, 1);
	conn_clear(&c);
	conn_group_clear(&g);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_queue_bounded)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct conn_group g;
	struct conn c;
	struct owner o;
	size_t len = 300 * 1024, queued = 0;
	uint8_t *frame = calloc(1, len);
	int peer;

	ck_assert_ptr_nonnull(frame);
	conn_group_init(&g, loop);
	open_pair(&c, &g, &o, &peer);
	/* Not established: refused, left open. */
	ck_assert_int_eq(conn_queue(&c, frame, len, true), -1);
	ck_assert(conn_is_open(&c));
	/* Held frames are not sealed: no channel needed to fill the queue. */
	c.up = true;
	while (conn_queue(&c, frame, len, true) == 0) {
		queued += len + 4;
		ck_assert_uint_eq(conn_queued(&c), queued);
		ck_assert_uint_le(queued, CONN_QUEUE_BYTES_MAX);
	}
	ck_assert_int_eq(o.closed, 1);
	ck_assert_int_eq(o.why, CONN_QUEUE_FULL);
	ck_assert_uint_eq(o.queued_at_close, queued);
	ck_assert_uint_gt(queued + len + 64, CONN_QUEUE_BYTES_MAX);
	close(peer);
	conn_clear(&c);
	conn_group_clear(&g);
	ev_loop_destroy(loop);
	free(frame);
}
END_TEST

static Suite *
conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("conn");

	tcase_add_test(tc, test_backoff_doubles_with_jitter);
	tcase_add_test(tc, test_closed_once_with_reason);
	tcase_add_test(tc, test_queue_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(conn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
