/*
 * check_core.c - the consensus core's rules, one scenario each, on a tiny
 * in-memory network: messages are encoded and decoded like on the wire, and
 * a test can drop, alter or inject any of them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_crypto.h"
#include "pbft.h"
#include "wire.h"

#define NMAX 7
#define QMAX 4096

struct pkt {
	uint32_t from, to;
	uint8_t *data;
	size_t len;
};

struct net {
	uint32_t n;
	struct pbft *core[NMAX];
	struct fake_crypto fc[NMAX];
	struct pbft_actions acts[NMAX];
	struct pkt q[QMAX];
	size_t qn;
	bool down[NMAX]; /* drops everything to and from it */
	bool cut[NMAX]; /* likewise, but it still ticks */
	uint64_t drop_pp_seq[NMAX]; /* drops the pre-prepare of that seq */
	bool drop_new_view; /* drops every NEW-VIEW */
	uint32_t
	    drop_req1[NMAX]; /* 1 + a client: drops its forwarded requests */
	uint64_t executed[NMAX]; /* highest seq executed */
	uint32_t exec_reqs[NMAX]; /* requests executed (not skipped) */
	uint32_t resends[NMAX];
	uint32_t fetch_state[NMAX];
	uint64_t view_entered[NMAX];
	uint32_t disconnects[NMAX][NMAX]; /* [i][j]: i dropped replica j */
	uint32_t client_drops[NMAX]; /* clients it disconnected */
	/* [from][to][type]: messages and bytes sent */
	uint32_t sent[NMAX][NMAX][PBFT_MSG_TYPE_MAX];
	uint64_t sent_bytes[NMAX][NMAX][PBFT_MSG_TYPE_MAX];
	struct wbuf rec[NMAX]; /* persisted records, length-prefixed */
	/* The early-vote bound each replica's barrier records name (view + 1,
	 * 0: none), and the seqs below 64 it sent a PREPARE for. */
	uint64_t bound_view1[NMAX], bound_seq[NMAX];
	uint64_t prep_sent[NMAX];
	uint8_t app[NMAX][32];
	uint8_t arena[1 << 20];
};

static struct net *N;
/* When set, a replica's MAC check (verify_request, not strict) passes
 * whatever the request: a faulty client's MAC that verifies where its
 * signature does not. */
static bool mac_lies;
static bool (*fake_verify_request)(void *, const struct pbft_request *, bool);

static bool
lying_mac_verify_request(void *ctx, const struct pbft_request *req, bool strict)
{
	if (!strict && mac_lies)
		return true;
	return fake_verify_request(ctx, req, strict);
}
/* Batching settings for the next net_setup (0: the core's defaults). */
static uint32_t setup_batch_max, setup_batch_delay, setup_inflight;
/* Limits for the next net_setup (0: the core's defaults). */
static uint64_t setup_queue_bytes, setup_fetch_bytes;

static void
net_setup(uint32_t n, uint32_t test_flags)
{
	N = calloc(1, sizeof(*N));
	N->n = n;
	for (uint32_t i = 0; i < n; i++) {
		struct pbft_config c;
		char err[128];
		uint8_t boot[PBFT_BOOT_RECORD_LEN];

		fake_crypto_init(&N->fc[i], i);
		fake_verify_request = N->fc[i].ops.verify_request;
		N->fc[i].ops.verify_request = lying_mac_verify_request;
		pbft_config_default(&c, n, i, 4);
		c.checkpoint_interval = 4;
		c.window = 8;
		c.view_timeout_ticks = 20;
		c.retransmit_ticks = 5;
		if (setup_batch_max)
			c.batch_reqs_max = setup_batch_max;
		if (setup_batch_delay)
			c.batch_delay_ticks = setup_batch_delay;
		if (setup_inflight)
			c.inflight_max = setup_inflight;
		if (setup_queue_bytes)
			c.queue_bytes_max = setup_queue_bytes;
		if (setup_fetch_bytes)
			c.fetch_bytes_max = setup_fetch_bytes;
		c.test_flags = test_flags;
		c.crypto = &N->fc[i].ops;
		N->core[i] = pbft_new(&c, err, sizeof(err));
		ck_assert_msg(N->core[i] != NULL, "%s", err);
		wbuf_init_dynamic(&N->rec[i], 1 << 26);
		/* The start's record, as a driver writes it. */
		wbuf_put_u32(&N->rec[i], PBFT_BOOT_RECORD_LEN);
		wbuf_put_bytes(
		    &N->rec[i], boot, pbft_boot_record(N->core[i], boot));
	}
}

static void
net_teardown(void)
{
	for (uint32_t i = 0; i < N->n; i++) {
		pbft_free(N->core[i]);
		free(N->acts[i].v);
		wbuf_clear(&N->rec[i]);
	}
	for (size_t i = 0; i < N->qn; i++)
		free(N->q[i].data);
	free(N);
}

static void
enqueue(uint32_t from, uint32_t to, const struct pbft_msg *m)
{
	struct wbuf wb;

	ck_assert_uint_lt(N->qn, QMAX);
	wbuf_init_dynamic(&wb, PBFT_FRAME_BYTES_MAX);
	ck_assert_int_eq(wire_encode(&wb, m), 0);
	N->sent[from][to][m->type]++;
	N->sent_bytes[from][to][m->type] += wb.len;
	N->q[N->qn++] = (struct pkt){from, to, wb.p, wb.len};
}

static void step(uint32_t i, const struct pbft_event *ev);

#define REC_BOUND_KIND 12 /* pbft_int.h: u64 view, u64 seq */

static uint64_t
get_le64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int k = 7; k >= 0; k--)
		v = v << 8 | b[k];
	return v;
}

/*
 * The driver contract's bound, checked on every step of every test: an
 * early pre-prepare or prepare leaves only under a barrier record that
 * names its view and a seq at or above its own.
 */
static void
check_early(uint32_t i, const struct pbft_action *x)
{
	uint64_t view, seq;

	if (x->type == PBFT_ACT_PERSIST && x->record_len == 17 &&
	    x->record[0] == REC_BOUND_KIND) {
		ck_assert(x->barrier);
		N->bound_view1[i] = get_le64(x->record + 1) + 1;
		N->bound_seq[i] = get_le64(x->record + 9);
		return;
	}
	if ((x->type != PBFT_ACT_SEND && x->type != PBFT_ACT_BROADCAST) ||
	    (x->msg->type != PBFT_MSG_PREPREPARE &&
	        x->msg->type != PBFT_MSG_PREPARE))
		return;
	view = x->msg->type == PBFT_MSG_PREPARE ? x->msg->u.prepare.view
	                                        : x->msg->u.preprepare.view;
	seq = x->msg->type == PBFT_MSG_PREPARE ? x->msg->u.prepare.seq
	                                       : x->msg->u.preprepare.seq;
	if (x->msg->type == PBFT_MSG_PREPARE && seq < 64)
		N->prep_sent[i] |= 1ULL << seq;
	if (!x->early)
		return;
	ck_assert_uint_eq(N->bound_view1[i], view + 1);
	ck_assert_uint_le(seq, N->bound_seq[i]);
}

static void
run_actions(uint32_t i)
{
	struct pbft_actions *a = &N->acts[i];
	struct pbft_event dig[4];
	int nd = 0;

	for (size_t k = 0; k < a->n; k++) {
		const struct pbft_action *x = &a->v[k];

		check_early(i, x);
		switch (x->type) {
		case PBFT_ACT_SEND:
			enqueue(i, x->to, x->msg);
			break;
		case PBFT_ACT_BROADCAST:
			for (uint32_t to = 0; to < N->n; to++)
				if (to != i)
					enqueue(i, to, x->msg);
			break;
		case PBFT_ACT_PERSIST:
			wbuf_put_u32(&N->rec[i], (uint32_t)x->record_len);
			wbuf_put_bytes(&N->rec[i], x->record, x->record_len);
			break;
		case PBFT_ACT_EXECUTE:
			ck_assert_uint_eq(x->seq, N->executed[i] + 1);
			N->executed[i] = x->seq;
			for (uint32_t r = 0; r < x->nreqs; r++)
				if (!x->skip[r]) {
					N->exec_reqs[i]++;
					N->app[i][0]++;
				}
			break;
		case PBFT_ACT_RESEND_REPLY:
			N->resends[i]++;
			break;
		case PBFT_ACT_TAKE_CHECKPOINT:
			dig[nd] = (struct pbft_event){
			    .type = PBFT_EV_STATE_DIGEST, .seq = x->seq};
			memcpy(dig[nd].digest, N->app[i], 32);
			nd++;
			break;
		case PBFT_ACT_FETCH_STATE:
			N->fetch_state[i]++;
			break;
		case PBFT_ACT_VIEW:
			N->view_entered[i] = x->view;
			break;
		case PBFT_ACT_STABLE:
			break;
		case PBFT_ACT_DISCONNECT:
			ck_assert_uint_lt(x->to, N->n);
			N->disconnects[i][x->to]++;
			break;
		case PBFT_ACT_DROP_CLIENT:
			N->client_drops[i]++;
			break;
		}
	}
	for (int k = 0; k < nd; k++)
		step(i, &dig[k]);
}

static void
step(uint32_t i, const struct pbft_event *ev)
{
	N->acts[i].n = 0;
	ck_assert_int_eq(pbft_step(N->core[i], ev, &N->acts[i]), 0);
	run_actions(i);
}

/* Delivers queued packets (in order) until none are left. */
static void
drain(void)
{
	for (int guard = 0; N->qn > 0 && guard < 100000; guard++) {
		struct pkt p = N->q[0];
		struct wire_arena a;
		struct pbft_msg m;
		struct pbft_event ev = {.type = PBFT_EV_MSG, .msg = &m};

		memmove(N->q, N->q + 1, (N->qn - 1) * sizeof(N->q[0]));
		N->qn--;
		if (!N->down[p.from] && !N->down[p.to] && !N->cut[p.from] &&
		    !N->cut[p.to]) {
			wire_arena_init(&a, N->arena, sizeof(N->arena));
			ck_assert_int_eq(
			    wire_decode(p.data, p.len, &m, &a), WIRE_OK);
			ev.from = p.from;
			if ((m.type != PBFT_MSG_PREPREPARE ||
			        m.u.preprepare.seq != N->drop_pp_seq[p.to]) &&
			    (m.type != PBFT_MSG_NEW_VIEW ||
			        !N->drop_new_view) &&
			    (m.type != PBFT_MSG_REQUEST ||
			        m.u.request.client + 1 != N->drop_req1[p.to]))
				step(p.to, &ev);
		}
		free(p.data);
	}
}

static void
ticks(int k)
{
	struct pbft_event ev = {.type = PBFT_EV_TICK};

	for (int t = 0; t < k; t++) {
		for (uint32_t i = 0; i < N->n; i++)
			if (!N->down[i])
				step(i, &ev);
		drain();
	}
}

static uint8_t op_buf[16];

static struct pbft_msg
request(uint32_t client, uint64_t ts)
{
	static uint8_t auth[FAKE_AUTH_LEN];
	struct pbft_msg m = {.type = PBFT_MSG_REQUEST};

	op_buf[0] = (uint8_t)ts;
	m.u.request = (struct pbft_request){
	    .client = client, .timestamp = ts, .op_len = 4, .op = op_buf};
	fake_request_auth(&m.u.request, auth);
	m.u.request.auth = auth;
	m.u.request.auth_len = FAKE_AUTH_LEN;
	return m;
}

static void
submit(uint32_t to, uint32_t client, uint64_t ts)
{
	struct pbft_msg m = request(client, ts);
	struct pbft_event ev = {.type = PBFT_EV_REQUEST, .msg = &m};

	step(to, &ev);
	drain();
}

static uint64_t
rejected(uint32_t i, enum pbft_reject r)
{
	struct pbft_status st;

	pbft_get_status(N->core[i], &st);
	return st.rejected[r];
}

static struct pbft_status
status(uint32_t i)
{
	struct pbft_status st;

	pbft_get_status(N->core[i], &st);
	return st;
}

/* Injects a message as if replica `from` had sent it to `to`. */
static void
inject(uint32_t from, uint32_t to, const struct pbft_msg *m)
{
	struct pbft_event ev = {.type = PBFT_EV_MSG, .from = from, .msg = m};

	step(to, &ev);
	drain();
}

static struct pbft_msg
vote_msg(uint32_t sender, enum pbft_msg_type type, uint64_t view, uint64_t seq,
    uint8_t fill)
{
	struct pbft_msg m = {.type = type};

	m.u.prepare =
	    (struct pbft_vote){.view = view, .seq = seq, .replica = sender};
	memset(m.u.prepare.digest, fill, 32);
	return m;
}

/* sender's pre-prepare with a one-request batch. */
static struct pbft_msg
pp_msg(uint32_t sender, uint64_t view, uint64_t seq, uint64_t ts,
    struct wbuf *batch)
{
	struct pbft_msg m = {.type = PBFT_MSG_PREPREPARE};
	struct pbft_msg r = request(1, ts);

	wbuf_reset(batch);
	wire_encode_batch(batch, &r.u.request, 1);
	m.u.preprepare = (struct pbft_preprepare){.view = view,
	    .seq = seq,
	    .replica = sender,
	    .batch = batch->p,
	    .batch_len = (uint32_t)batch->len};
	fake_digest(batch->p, batch->len, m.u.preprepare.digest);
	return m;
}

/* ---- normal case -------------------------------------------------------- */

START_TEST(test_commit_one_request)
{
	net_setup(4, 0);
	submit(0, 0, 1);
	for (uint32_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(N->executed[i], 1);
		ck_assert_uint_eq(N->exec_reqs[i], 1);
	}
	net_teardown();
}
END_TEST

START_TEST(test_quorums_n5_n6)
{
	for (uint32_t n = 5; n <= 6; n++) {
		net_setup(n, 0);
		N->down[n - 1] = true; /* f = 1: one may be silent */
		submit(0, 0, 1);
		for (uint32_t i = 0; i < n - 1; i++)
			ck_assert_uint_eq(N->executed[i], 1);
		net_teardown();
	}
}
END_TEST

/* Without 2f+1 live replicas nothing may commit. */
START_TEST(test_no_commit_without_quorum)
{
	net_setup(4, 0);
	N->down[2] = N->down[3] = true;
	submit(0, 0, 1);
	ck_assert_uint_eq(N->executed[0], 0);
	ck_assert_uint_eq(N->executed[1], 0);
	net_teardown();
}
END_TEST

START_TEST(test_duplicate_not_reexecuted)
{
	net_setup(4, 0);
	submit(0, 0, 7);
	submit(0, 0, 7); /* retransmission of an executed request */
	ck_assert_uint_eq(N->exec_reqs[0], 1);
	ck_assert_uint_eq(N->resends[0], 1);
	submit(0, 0, 5); /* older: dropped */
	ck_assert_uint_eq(N->exec_reqs[1], 1);
	ck_assert_uint_ge(rejected(0, PBFT_REJ_OLD_REQUEST), 1);
	net_teardown();
}
END_TEST

START_TEST(test_batching)
{
	net_setup(4, 0);
	N->down[0] = true; /* hold the primary's traffic back */
	for (uint32_t c = 0; c < 4; c++) {
		struct pbft_msg m = request(c, 1);
		struct pbft_event ev = {.type = PBFT_EV_REQUEST, .msg = &m};

		step(0, &ev);
	}
	N->down[0] = false;
	drain();
	ck_assert_uint_eq(N->exec_reqs[1], 4);
	ck_assert_uint_le(N->executed[1], 4);
	net_teardown();
}
END_TEST

/*
 * While a batch is in flight, the primary holds a partial one until half a
 * batch is queued or batch_delay_ticks pass; with none in flight a request
 * goes out at once.
 */
START_TEST(test_partial_batch_waits_while_one_in_flight)
{
	uint64_t ts = 1;

	setup_batch_max = 8;
	setup_batch_delay = 2;
	setup_inflight = 4;
	net_setup(4, 0);
	setup_batch_max = setup_batch_delay = setup_inflight = 0;
	N->down[1] = N->down[2] = N->down[3] = true; /* nothing completes */
	submit(0, 0, ts++);
	ck_assert_uint_eq(status(0).next_seq, 2); /* proposed at once */
	for (int i = 0; i < 3; i++)
		submit(0, 0, ts++);
	ck_assert_uint_eq(status(0).queued_reqs, 3); /* held: 3 < 8 / 2 */
	submit(0, 0, ts++);
	ck_assert_uint_eq(status(0).queued_reqs, 0); /* half a batch */
	ck_assert_uint_eq(status(0).next_seq, 3);
	submit(0, 0, ts++);
	ticks(1);
	ck_assert_uint_eq(status(0).queued_reqs, 1);
	ticks(1); /* batch_delay_ticks passed */
	ck_assert_uint_eq(status(0).queued_reqs, 0);
	ck_assert_uint_eq(status(0).next_seq, 4);
	net_teardown();
}
END_TEST

/* from's (unsigned) prepare for pp's batch. */
static struct pbft_msg
prepare_for(uint32_t from, const struct pbft_msg *pp)
{
	struct pbft_msg v = {.type = PBFT_MSG_PREPARE};

	v.u.prepare = (struct pbft_vote){.view = pp->u.preprepare.view,
	    .seq = pp->u.preprepare.seq,
	    .replica = from};
	memcpy(v.u.prepare.digest, pp->u.preprepare.digest, 32);
	return v;
}

/* Whether replica i persisted a record of this kind. */
static bool
has_record(uint32_t i, uint8_t kind)
{
	struct rbuf rb;
	uint32_t len;
	const uint8_t *rec;

	rbuf_init(&rb, N->rec[i].p, N->rec[i].len);
	while (
	    rbuf_get_u32(&rb, &len) == 0 && rbuf_get_ref(&rb, &rec, len) == 0)
		if (len > 0 && rec[0] == kind)
			return true;
	return false;
}

/*
 * The normal case checks no replica signature: pre-prepares, prepares and
 * commits are authenticated by the channel that carries them. Only the
 * client's request is checked (by verify_request, not counted here).
 */
START_TEST(test_normal_case_checks_no_signature)
{
	net_setup(4, 0);
	for (uint64_t ts = 1; ts <= 3; ts++)
		submit(0, 0, ts);
	for (uint32_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(N->exec_reqs[i], 3);
		ck_assert_uint_eq(N->fc[i].verifies, 0);
	}
	net_teardown();
}
END_TEST

/* ---- hostile input ------------------------------------------------------ */

/*
 * A prepare counts once per sender, only for the digest it names, and never
 * from the primary (its pre-prepare stands for it): the slot prepares on 2f
 * from distinct backups, its own included (n = 7, f = 2: four).
 */
START_TEST(test_prepare_counts_once_per_sender)
{
	struct wbuf b;
	struct pbft_msg pp, v;

	net_setup(7, 0);
	wbuf_init_dynamic(&b, 1 << 16);
	for (uint32_t i = 0; i < 7; i++)
		N->down[i] = i != 1; /* 1 hears only us */
	pp = pp_msg(0, 0, 1, 1, &b);
	inject(0, 1, &pp);
	v = prepare_for(2, &pp);
	inject(2, 1, &v);
	inject(2, 1, &v); /* the same again */
	v = prepare_for(0, &pp);
	inject(0, 1, &v); /* the primary's */
	v = vote_msg(3, PBFT_MSG_PREPARE, 0, 1, 0xaa); /* another batch */
	inject(3, 1, &v);
	v = prepare_for(3, &pp); /* 3 already voted in this view */
	inject(3, 1, &v);
	v = prepare_for(4, &pp);
	inject(4, 1, &v);
	ck_assert(!has_record(1, 10)); /* REC_PREPARED: own, 2 and 4 */
	v = prepare_for(5, &pp);
	inject(5, 1, &v);
	ck_assert(has_record(1, 10));
	wbuf_clear(&b);
	net_teardown();
}
END_TEST

/* A VIEW-CHANGE from replica 2 to view 5 with these claims, signed. */
static struct pbft_msg
vc_with(const struct pbft_vc_entry *pe, uint32_t np,
    const struct pbft_vc_entry *qe, uint32_t nq)
{
	struct pbft_msg m = {.type = PBFT_MSG_VIEW_CHANGE};
	struct wbuf wb;

	m.u.view_change = (struct pbft_view_change){.view = 5,
	    .nprepared = np,
	    .prepared = pe,
	    .npreprepared = nq,
	    .preprepared = qe,
	    .replica = 2};
	wbuf_init_dynamic(&wb, 1 << 16);
	wire_signed_bytes(&wb, &m);
	fake_sign_as(2, wb.p, wb.len, m.u.view_change.sig);
	wbuf_clear(&wb);
	return m;
}

/*
 * Claims cannot be checked, but their shape can: a VIEW-CHANGE whose P has
 * two claims for a seq, names the view it moves to, or whose Q repeats a
 * digest or holds more than PBFT_Q_PER_SEQ for a seq is refused.
 */
START_TEST(test_view_change_claims_shape)
{
	struct pbft_vc_entry e[PBFT_Q_PER_SEQ + 1];
	struct pbft_msg m;
	uint64_t bad = 0;

	memset(e, 0, sizeof(e));
	for (uint32_t i = 0; i <= PBFT_Q_PER_SEQ; i++) {
		e[i].seq = 1;
		e[i].view = 1;
		e[i].digest[0] = (uint8_t)(i + 1);
	}
	net_setup(4, 0);
	m = vc_with(e, 2, NULL, 0); /* P: seq 1 twice */
	ticks(5); /* past the half period since the last one */
	inject(2, 3, &m);
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_CERT), ++bad);
	m = vc_with(e, 1, e, PBFT_Q_PER_SEQ + 1); /* Q: one too many */
	ticks(5); /* past the half period since the last one */
	inject(2, 3, &m);
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_CERT), ++bad);
	e[1].digest[0] = e[0].digest[0];
	m = vc_with(e, 1, e, 2); /* Q: a digest twice */
	ticks(5); /* past the half period since the last one */
	inject(2, 3, &m);
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_CERT), ++bad);
	e[1].digest[0] = 2;
	e[0].view = 5;
	m = vc_with(e, 1, e + 1, 1); /* P in the view it moves to */
	ticks(5); /* past the half period since the last one */
	inject(2, 3, &m);
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_CERT), ++bad);
	e[0].view = 1;
	m = vc_with(e, 1, e, PBFT_Q_PER_SEQ);
	ticks(5); /* past the half period since the last one */
	inject(2, 3, &m);
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_CERT), bad);
	net_teardown();
}
END_TEST

/*
 * Injects m from `from` to replica 3 with one bit of sig flipped, then as
 * signed: only the first is refused, so why's count is `want` after both.
 */
static void
forged_then_genuine(uint32_t from, const struct pbft_msg *m, uint8_t *sig,
    enum pbft_reject why, uint64_t want)
{
	sig[0] ^= 1;
	inject(from, 3, m);
	ck_assert_uint_eq(rejected(3, why), want);
	ck_assert_uint_gt(N->disconnects[3][from], 0);
	sig[0] ^= 1;
	inject(from, 3, m);
	ck_assert_uint_eq(rejected(3, why), want);
}

/*
 * What a third party must believe is signed, and a forged signature is
 * refused and counted: a checkpoint, a VIEW-CHANGE and a NEW-VIEW, each
 * with one bit of its signature flipped, while the same messages signed
 * properly are taken.
 */
START_TEST(test_bad_signature_rejected)
{
	struct pbft_msg c = {.type = PBFT_MSG_CHECKPOINT}, m;
	struct pbft_msg nv = {.type = PBFT_MSG_NEW_VIEW};
	struct pbft_status st;
	struct wbuf wb;

	net_setup(4, 0);
	pbft_get_status(N->core[3], &st);
	c.u.checkpoint = (struct pbft_checkpoint){.seq = 100, .replica = 2};
	wbuf_init_dynamic(&wb, 1 << 16);
	wire_signed_checkpoint(&wb, 100, c.u.checkpoint.digest, 2);
	fake_sign_as(2, wb.p, wb.len, c.u.checkpoint.sig);
	forged_then_genuine(2, &c, c.u.checkpoint.sig, PBFT_REJ_BAD_SIG, 1);
	m = vc_with(NULL, 0, NULL, 0);
	forged_then_genuine(2, &m, m.u.view_change.sig, PBFT_REJ_BAD_CERT, 1);
	nv.u.new_view = (struct pbft_new_view){.view = 1, .replica = 1};
	wbuf_reset(&wb);
	wire_signed_bytes(&wb, &nv);
	fake_sign_as(1, wb.p, wb.len, nv.u.new_view.sig);
	nv.u.new_view.sig[0] ^= 1;
	inject(1, 3, &nv);
	/* Without 2f+1 VIEW-CHANGEs it is refused before its signature. */
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_SIG), 1);
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_NEW_VIEW), 1);
	ck_assert_uint_eq(status(3).view, st.view);
	/* Each forgery closed its sender's channel. */
	ck_assert_uint_eq(N->disconnects[3][2], 2);
	ck_assert_uint_eq(N->disconnects[3][1], 1);
	wbuf_clear(&wb);
	net_teardown();
}
END_TEST

START_TEST(test_wrong_view_and_window)
{
	struct pbft_msg v;

	net_setup(4, 0);
	v = vote_msg(2, PBFT_MSG_COMMIT, 3, 1, 0xaa);
	inject(2, 1, &v);
	ck_assert_uint_eq(rejected(1, PBFT_REJ_WRONG_VIEW), 1);
	v = vote_msg(2, PBFT_MSG_COMMIT, 0, 9, 0xaa); /* L = 8 */
	inject(2, 1, &v);
	ck_assert_uint_eq(rejected(1, PBFT_REJ_OUT_OF_WINDOW), 1);
	v = vote_msg(3, PBFT_MSG_COMMIT, 0, 1, 0xaa);
	inject(2, 1, &v); /* replica field says 3, channel says 2 */
	ck_assert_uint_eq(rejected(1, PBFT_REJ_BAD_SENDER), 1);
	net_teardown();
}
END_TEST

START_TEST(test_preprepare_rules)
{
	struct wbuf b;
	struct pbft_msg pp;

	wbuf_init_dynamic(&b, 1 << 16);
	net_setup(4, 0);
	pp = pp_msg(2, 0, 1, 1, &b); /* replica 2 is not primary of 0 */
	inject(2, 1, &pp);
	ck_assert_uint_eq(rejected(1, PBFT_REJ_NOT_PRIMARY), 1);
	pp = pp_msg(0, 0, 1, 1, &b);
	pp.u.preprepare.digest[5] ^= 1; /* digest does not match batch */
	inject(0, 1, &pp);
	ck_assert_uint_eq(rejected(1, PBFT_REJ_BAD_DIGEST), 1);
	N->down[0] = true; /* keep replica 1's prepare from mattering */
	pp = pp_msg(0, 0, 1, 1, &b);
	inject(0, 1, &pp);
	pp = pp_msg(0, 0, 1, 2, &b); /* a second, different one */
	inject(0, 1, &pp);
	ck_assert_uint_eq(rejected(1, PBFT_REJ_CONFLICT), 1);
	net_teardown();
	wbuf_clear(&b);
}
END_TEST

/*
 * A backup judges the requests of a pre-prepare by their signature, as the
 * primary did: a request whose MAC verifies but whose signature does not is
 * refused, so a faulty client with a faulty primary cannot choose which
 * correct backups accept a batch.
 */
START_TEST(test_preprepare_requests_judged_by_signature)
{
	struct pbft_msg pp = {.type = PBFT_MSG_PREPREPARE};
	struct pbft_msg r = request(1, 1);
	uint8_t auth[FAKE_AUTH_LEN];
	struct wbuf b;

	memcpy(auth, r.u.request.auth, FAKE_AUTH_LEN);
	auth[0] ^= 1; /* the signature does not verify */
	r.u.request.auth = auth;
	wbuf_init_dynamic(&b, 1 << 16);
	wire_encode_batch(&b, &r.u.request, 1);
	pp.u.preprepare = (struct pbft_preprepare){.view = 0,
	    .seq = 1,
	    .replica = 0,
	    .batch = b.p,
	    .batch_len = (uint32_t)b.len};
	fake_digest(b.p, b.len, pp.u.preprepare.digest);
	net_setup(4, 0);
	mac_lies = true;
	inject(0, 1, &pp);
	mac_lies = false;
	ck_assert_uint_eq(rejected(1, PBFT_REJ_BAD_REQUEST), 1);
	ck_assert_uint_eq(N->sent[1][2][PBFT_MSG_PREPARE], 0);
	net_teardown();
	wbuf_clear(&b);
}
END_TEST

/* ---- checkpoints -------------------------------------------------------- */

START_TEST(test_checkpoint_stable_and_gc)
{
	net_setup(4, 0);
	for (uint64_t t = 1; t <= 4; t++)
		submit(0, 0, t); /* K = 4: seq 4 is a checkpoint */
	for (uint32_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(status(i).stable_checkpoint, 4);
		ck_assert_uint_eq(status(i).low_mark, 4);
	}
	net_teardown();
}
END_TEST

START_TEST(test_lagging_replica_fetches_state)
{
	net_setup(4, 0);
	N->down[3] = true;
	for (uint64_t t = 1; t <= 4; t++)
		submit(0, 0, t);
	N->down[3] = false;
	ticks(12); /* retransmitted checkpoints reach replica 3 */
	ck_assert_uint_ge(N->fetch_state[3], 1);
	net_teardown();
}
END_TEST

/*
 * A replica that missed one batch cannot execute past it, but while f+1
 * commits for later batches show the primary at work, it does not suspect
 * the primary on its own (it would sit in a view change nobody joins).
 */
START_TEST(test_lagging_replica_does_not_suspect_a_working_primary)
{
	net_setup(4, 0);
	N->drop_pp_seq[3] = 1; /* replica 3 never sees batch 1 */
	submit(0, 0, 1);
	ck_assert_uint_eq(N->executed[3], 0);
	/* Requests keep coming, each also to replica 3 (its timer runs). */
	for (uint64_t t = 2; t <= 3; t++) {
		submit(3, 0, t);
		submit(0, 0, t);
		ticks(15); /* under the 20-tick view timeout each */
	}
	ck_assert_uint_eq(N->executed[0], 3);
	ck_assert_uint_eq(N->executed[3], 0);
	ck_assert_uint_eq(status(3).view, 0);
	ck_assert(!status(3).view_changing);
	/* Once commits stop, a replica still stuck suspects the primary. */
	ticks(40);
	ck_assert(status(3).view_changing || status(3).view > 0);
	net_teardown();
}
END_TEST

/*
 * The view timer waits for the requests it started waiting for (OSDI
 * 4.5.2): a primary that executes one client's requests, each well within
 * the timeout, while it never gets another's, is suspected all the same,
 * and the held-back request executes in the next view. (Restarting the
 * timer at any execution let a primary that corrupted most of its frames
 * serve each batch just under a timeout for ever: rsim seed 206 at n = 7.)
 */
START_TEST(test_primary_holding_back_a_request_is_suspected)
{
	net_setup(4, 0);
	N->drop_req1[0] = 1 + 1; /* client 1's requests never reach it */
	for (uint32_t i = 1; i < 4; i++)
		submit(i, 1, 1); /* the client's retransmission to all */
	for (uint64_t t = 1; t <= 8; t++) {
		submit(0, 0, t); /* executes at once */
		ticks(10); /* half the 20-tick view timeout */
	}
	for (uint32_t i = 1; i < 4; i++)
		ck_assert(status(i).view_changing || status(i).view > 0);
	ticks(200);
	for (uint32_t i = 1; i < 4; i++) {
		ck_assert_uint_ge(status(i).view, 1);
		ck_assert(!status(i).view_changing);
		ck_assert_uint_eq(status(i).pending_reqs, 0);
	}
	net_teardown();
}
END_TEST

/*
 * A replica that missed one batch while the others go on is resent it only
 * because it asks: none of the others is stuck, so none retransmits on its
 * own. Its STATUS is answered with the missed messages, and it catches up
 * well within the view timeout, in its view.
 */
START_TEST(test_status_brings_back_missed_batches)
{
	net_setup(4, 0);
	N->drop_pp_seq[3] = 1; /* batch 1 never reaches replica 3 ... */
	submit(0, 0, 1);
	N->drop_pp_seq[3] = 0; /* ... but a resend would */
	ck_assert_uint_eq(N->executed[3], 0);
	for (uint64_t t = 2; t <= 5; t++) {
		submit(0, 0, t);
		ticks(3);
	}
	ck_assert_uint_eq(N->executed[0], 5);
	ck_assert_uint_eq(N->executed[3], 5);
	ck_assert_uint_eq(status(3).view, 0);
	ck_assert(!status(3).view_changing);
	net_teardown();
}
END_TEST

/* STATUS: the sender must be who the channel says; answers are rate-limited
 * to one a retransmission period per replica; nothing to say to a replica
 * as far as we are. */
START_TEST(test_status_rules)
{
	struct pbft_msg m = {.type = PBFT_MSG_STATUS};
	struct pbft_event ev = {.type = PBFT_EV_MSG, .from = 3, .msg = &m};

	net_setup(4, 0);
	for (uint64_t t = 1; t <= 2; t++)
		submit(0, 0, t);
	m.u.status = (struct pbft_status_msg){.view = 0, .replica = 2};
	inject(3, 0, &m);
	ck_assert_uint_eq(rejected(0, PBFT_REJ_BAD_SENDER), 1);
	/* Replica 3 says it executed nothing: the primary resends both
	 * batches and its votes, to replica 3 alone. */
	m.u.status.replica = 3;
	step(0, &ev);
	ck_assert_uint_ge(N->qn, 2);
	for (size_t i = 0; i < N->qn; i++)
		ck_assert_uint_eq(N->q[i].to, 3);
	drain();
	/* Again at once: not answered. */
	step(0, &ev);
	ck_assert_uint_eq(N->qn, 0);
	/* A period later, as far as we are: nothing to resend. */
	ticks(5);
	m.u.status.last_exec = 2;
	step(0, &ev);
	ck_assert_uint_eq(N->qn, 0);
	net_teardown();
}
END_TEST

/*
 * A replica cut off from the others, with a request they never saw, does
 * not suspect the primary while it cannot hear a quorum (its VIEW-CHANGE
 * would strand it alone in view 1). Back in touch, it learns the primary is
 * at work (the request, retransmitted by its client, executes) and stays.
 */
START_TEST(test_cut_off_replica_waits_for_a_quorum)
{
	net_setup(4, 0);
	submit(0, 0, 1);
	N->cut[3] = true;
	submit(3, 1, 1);
	ticks(100); /* five view timeouts */
	ck_assert(!status(3).view_changing);
	ck_assert_uint_eq(status(3).view, 0);
	ck_assert_uint_ge(status(3).view_changes_deferred, 1);
	N->cut[3] = false;
	submit(0, 1, 1); /* the client tries the primary */
	ticks(60);
	ck_assert_uint_eq(N->executed[3], 2);
	ck_assert(!status(3).view_changing);
	ck_assert_uint_eq(status(3).view, 0);
	net_teardown();
}
END_TEST

/* ---- view change -------------------------------------------------------- */

START_TEST(test_view_change_keeps_committed)
{
	net_setup(4, 0);
	submit(0, 0, 1);
	N->down[0] = true; /* the primary goes silent */
	submit(1, 1, 1); /* a backup forwards, starts its timer */
	submit(2, 1, 1);
	submit(3, 1, 1);
	ticks(200);
	for (uint32_t i = 1; i < 4; i++) {
		ck_assert_uint_ge(status(i).view, 1);
		ck_assert_uint_eq(N->exec_reqs[i], 2);
	}
	net_teardown();
}
END_TEST

/* A NEW-VIEW without 2f+1 VIEW-CHANGEs behind it is refused. */
START_TEST(test_new_view_without_quorum_rejected)
{
	net_setup(4, 0);
	submit(0, 0, 1);
	N->down[0] = true;
	submit(1, 1, 1);
	submit(2, 1, 1);
	submit(3, 1, 1);
	/* Let the view change start but intercept replica 1's NEW-VIEW. */
	for (int t = 0; t < 200 && status(1).view_changes == 0; t++) {
		struct pbft_event ev = {.type = PBFT_EV_TICK};

		for (uint32_t i = 1; i < 4; i++)
			step(i, &ev);
		drain();
	}
	ck_assert_uint_eq(status(1).view, 1);
	{
		/* Replica 2, primary of view 2, signs a NEW-VIEW with an
		 * empty V: it must be refused for want of 2f+1 VCs. */
		struct pbft_msg nv = {.type = PBFT_MSG_NEW_VIEW};
		struct wbuf wb;

		nv.u.new_view = (struct pbft_new_view){.view = 2, .replica = 2};
		wbuf_init_dynamic(&wb, 4096);
		wire_signed_bytes(&wb, &nv);
		fake_sign_as(2, wb.p, wb.len, nv.u.new_view.sig);
		wbuf_clear(&wb);
		inject(2, 3, &nv);
		ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_NEW_VIEW), 1);
		ck_assert_uint_eq(status(3).view, 1);
	}
	net_teardown();
}
END_TEST

/* ---- recovery ----------------------------------------------------------- */

START_TEST(test_recovery_never_contradicts)
{
	struct pbft_config c;
	struct wbuf b;
	struct pbft_msg pp;
	struct rbuf rb;
	uint32_t len;
	const uint8_t *rec;

	wbuf_init_dynamic(&b, 1 << 16);
	net_setup(4, 0);
	N->down[0] = N->down[2] = N->down[3] = true;
	pp = pp_msg(0, 0, 1, 1, &b);
	inject(0, 1, &pp); /* replica 1 accepts and prepares */
	/* Crash replica 1 and rebuild it from its records. */
	pbft_free(N->core[1]);
	pbft_config_default(&c, 4, 1, 4);
	c.checkpoint_interval = 4;
	c.window = 8;
	c.crypto = &N->fc[1].ops;
	N->core[1] = pbft_new(&c, NULL, 0);
	rbuf_init(&rb, N->rec[1].p, N->rec[1].len);
	while (
	    rbuf_get_u32(&rb, &len) == 0 && rbuf_get_ref(&rb, &rec, len) == 0)
		ck_assert_int_eq(pbft_recover(N->core[1], rec, len), 0);
	/* The same slot, another batch: it must be refused as a conflict. */
	pp = pp_msg(0, 0, 1, 2, &b);
	inject(0, 1, &pp);
	ck_assert_uint_eq(rejected(1, PBFT_REJ_CONFLICT), 1);
	ck_assert_int_eq(
	    pbft_recover(N->core[1], (const uint8_t *)"\x63", 1), -1);
	net_teardown();
	wbuf_clear(&b);
}
END_TEST

static struct pbft *
fresh_core(struct fake_crypto *fc)
{
	struct pbft_config c;

	fake_crypto_init(fc, 1);
	pbft_config_default(&c, 4, 1, 4);
	c.checkpoint_interval = 4;
	c.window = 8;
	c.crypto = &fc->ops;
	return pbft_new(&c, NULL, 0);
}

static bool
muted(struct pbft *p)
{
	struct pbft_status st;

	pbft_get_status(p, &st);
	return st.muted;
}

struct recs {
	uint8_t buf[4096];
	size_t len[16], off[16], n;
};

static int
keep_rec(void *arg, const uint8_t *rec, size_t len)
{
	struct recs *r = arg;
	size_t off = r->n ? r->off[r->n - 1] + r->len[r->n - 1] : 0;

	ck_assert_uint_lt(r->n, 16);
	ck_assert_uint_le(off + len, sizeof(r->buf));
	memcpy(r->buf + off, rec, len);
	r->off[r->n] = off;
	r->len[r->n++] = len;
	return 0;
}

/*
 * Starts a fresh core on log, writes its start record into boot and, when
 * compacted is not NULL, its compacted log there; true if it is mute.
 */
static bool
start_after(const struct recs *log, uint8_t *boot, struct recs *compacted)
{
	struct fake_crypto fc;
	struct pbft *p = fresh_core(&fc);
	bool m;

	for (size_t i = 0; i < log->n; i++)
		ck_assert_int_eq(
		    pbft_recover(p, log->buf + log->off[i], log->len[i]), 0);
	pbft_boot_record(p, boot);
	m = muted(p);
	if (compacted != NULL)
		ck_assert_int_eq(pbft_compact(p, keep_rec, compacted), 0);
	pbft_free(p);
	return m;
}

/*
 * A log written before an upgrade holds frames of an older wire version:
 * they are lost to the new core, as a crash would have lost them, so it
 * starts mute even after a clean stop; a frame of a newer version refuses
 * the log.
 */
START_TEST(test_old_frames_mute)
{
	struct fake_crypto fc;
	struct pbft *p;
	uint8_t start[PBFT_BOOT_RECORD_LEN], again[PBFT_BOOT_RECORD_LEN];
	uint8_t clean[PBFT_CLEAN_RECORD_LEN];
	/* REC_PP, then a frame: u32 length, version 1, type, some body */
	uint8_t old[16] = {2, 11, 0, 0, 0, 1, PBFT_MSG_PREPREPARE, 1, 2, 3};
	struct recs none = {.n = 0}, log = {.n = 0};

	pbft_clean_record(clean);
	ck_assert(!start_after(&none, start, NULL));
	keep_rec(&log, start, sizeof(start));
	keep_rec(&log, old, sizeof(old));
	keep_rec(&log, clean, sizeof(clean));
	ck_assert(start_after(&log, again, NULL));
	p = fresh_core(&fc);
	old[5] = PBFT_WIRE_VERSION + 1;
	ck_assert_int_eq(pbft_recover(p, old, sizeof(old)), -1);
	pbft_free(p);
}
END_TEST

static uint64_t
mute_seq(struct pbft *p)
{
	struct pbft_status st;

	pbft_get_status(p, &st);
	return st.mute_seq;
}

/* A REC_BOUND record: no early vote in view above seq. */
static void
bound_rec(uint8_t rec[17], uint64_t view, uint64_t seq)
{
	rec[0] = REC_BOUND_KIND;
	for (int k = 0; k < 8; k++) {
		rec[1 + k] = (uint8_t)(view >> (8 * k));
		rec[9 + k] = (uint8_t)(seq >> (8 * k));
	}
}

/* Recovers p from log. */
static void
replay_all(struct pbft *p, const struct recs *log)
{
	for (size_t i = 0; i < log->n; i++)
		ck_assert_int_eq(
		    pbft_recover(p, log->buf + log->off[i], log->len[i]), 0);
}

/*
 * A start after anything but a clean stop is mute up to the early-vote
 * bound its log holds in its view (none written: nothing to forget; a log
 * that predates the bound: the whole view), and stays so.
 */
START_TEST(test_mute_after_crash)
{
	struct fake_crypto fc;
	struct pbft *p;
	uint8_t start[PBFT_BOOT_RECORD_LEN], mute[PBFT_BOOT_RECORD_LEN];
	uint8_t again[PBFT_BOOT_RECORD_LEN], clean[PBFT_CLEAN_RECORD_LEN];
	uint8_t bound[17], bound1[17];
	/* REC_BOOT as written before the bound: not mute, view 0. */
	const uint8_t old_start[10] = {8, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	/* REC_VIEW: view 2, still changing to it. */
	const uint8_t changing[10] = {1, 2, 0, 0, 0, 0, 0, 0, 0, 1};
	struct recs none = {.n = 0}, killed = {.n = 0}, compacted = {.n = 0};
	struct recs mute_clean = {.n = 0}, start_clean = {.n = 0};
	struct recs in_change = {.n = 0}, idle = {.n = 0}, old = {.n = 0};

	pbft_clean_record(clean);
	bound_rec(bound, 0, 4);
	bound_rec(bound1, 1, 6);
	/* First start ever: nothing was sent, nothing to forget. */
	ck_assert(!start_after(&none, start, NULL));
	/* Killed before any early vote: none to forget either. */
	keep_rec(&idle, start, sizeof(start));
	ck_assert(!start_after(&idle, again, NULL));
	/* Killed after early votes up to seq 4 of view 0: mute up to 4, and
	 * compaction keeps that. */
	keep_rec(&killed, start, sizeof(start));
	keep_rec(&killed, bound, sizeof(bound));
	ck_assert(start_after(&killed, mute, &compacted));
	keep_rec(&compacted, clean, sizeof(clean));
	ck_assert(start_after(&compacted, again, NULL));
	p = fresh_core(&fc);
	replay_all(p, &compacted);
	ck_assert_uint_eq(mute_seq(p), 4);
	pbft_free(p);
	/* A clean stop after the mute start does not lift it... */
	keep_rec(&mute_clean, mute, sizeof(mute));
	keep_rec(&mute_clean, clean, sizeof(clean));
	ck_assert(start_after(&mute_clean, again, NULL));
	/* ...but one after a normal start means nothing was lost. */
	keep_rec(&start_clean, start, sizeof(start));
	keep_rec(&start_clean, bound, sizeof(bound));
	keep_rec(&start_clean, clean, sizeof(clean));
	ck_assert(!start_after(&start_clean, again, NULL));
	/* Killed while changing to view 2: it sent nothing early in view 2,
	 * so only view 1 and below are mute. */
	keep_rec(&in_change, start, sizeof(start));
	keep_rec(&in_change, bound1, sizeof(bound1));
	keep_rec(&in_change, changing, sizeof(changing));
	ck_assert(!start_after(&in_change, again, NULL));
	/* A log from before the bound: mute in all of its view. */
	keep_rec(&old, start, sizeof(start));
	keep_rec(&old, bound, sizeof(bound)); /* not the last start's */
	keep_rec(&old, old_start, sizeof(old_start));
	ck_assert(start_after(&old, again, NULL));
	p = fresh_core(&fc);
	replay_all(p, &old);
	pbft_boot_record(p, again);
	ck_assert_uint_eq(mute_seq(p), UINT64_MAX);
	pbft_free(p);
	/* Malformed start, bound and stop records refuse the log. */
	p = fresh_core(&fc);
	ck_assert_int_eq(pbft_recover(p, start, sizeof(start) - 1), -1);
	ck_assert_int_eq(pbft_recover(p, bound, sizeof(bound) - 1), -1);
	mute[1] = 2;
	ck_assert_int_eq(pbft_recover(p, mute, sizeof(mute)), -1);
	ck_assert_int_eq(pbft_recover(p, (const uint8_t *)"\x09\x00", 2), -1);
	pbft_free(p);
}
END_TEST

/* Replica i crashes and comes back from the first keep bytes of its log. */
static void
crash_restart(uint32_t i, size_t keep, uint32_t test_flags)
{
	struct pbft_config c;
	struct rbuf rb;
	uint32_t len;
	const uint8_t *rec;
	uint8_t boot[PBFT_BOOT_RECORD_LEN];

	pbft_free(N->core[i]);
	pbft_config_default(&c, N->n, i, 4);
	c.checkpoint_interval = 4;
	c.window = 8;
	c.view_timeout_ticks = 20;
	c.retransmit_ticks = 5;
	c.test_flags = test_flags;
	c.crypto = &N->fc[i].ops;
	N->core[i] = pbft_new(&c, NULL, 0);
	N->rec[i].len = keep;
	rbuf_init(&rb, N->rec[i].p, N->rec[i].len);
	while (
	    rbuf_get_u32(&rb, &len) == 0 && rbuf_get_ref(&rb, &rec, len) == 0)
		ck_assert_int_eq(pbft_recover(N->core[i], rec, len), 0);
	len = (uint32_t)pbft_boot_record(N->core[i], boot);
	wbuf_put_u32(&N->rec[i], len);
	wbuf_put_bytes(&N->rec[i], boot, len);
	/* Its service starts empty: it executes again from seq 1, with the
	 * votes its peers resend when its STATUS says it is stuck. */
	N->executed[i] = 0;
	ticks(6);
}

/* Whether replica i's log holds REC_BOUND(view, seq). */
static bool
has_bound(uint32_t i, uint64_t view, uint64_t seq)
{
	uint8_t want[17];
	struct rbuf rb;
	uint32_t len;
	const uint8_t *rec;

	bound_rec(want, view, seq);
	rbuf_init(&rb, N->rec[i].p, N->rec[i].len);
	while (
	    rbuf_get_u32(&rb, &len) == 0 && rbuf_get_ref(&rb, &rec, len) == 0)
		if (len == sizeof(want) && memcmp(rec, want, len) == 0)
			return true;
	return false;
}

/*
 * A backup back from a crash with its early-vote bound at seq 4 (half the
 * window of 8 past its first prepare): it prepares none of seqs 2..4 in
 * its view, yet the cluster executes them on the prepares of the other
 * two backups, it executes them too, and it prepares seq 5, after a new
 * bound record. (Loop 1 plants the bug of trusting the votes its log
 * remembers: it prepares seq 2 at once.)
 */
START_TEST(test_backup_rejoins_above_bound)
{
	uint32_t flags = _i ? PBFT_TEST_BROKEN_BOUND : 0;

	net_setup(4, 0);
	submit(0, 0, 1);
	ck_assert(has_bound(1, 0, 4));
	crash_restart(1, N->rec[1].len, flags);
	ck_assert_uint_eq(N->executed[1], 1);
	ck_assert_uint_eq(N->prep_sent[1], 1ULL << 1);
	for (uint64_t ts = 2; ts <= 4; ts++) {
		submit(0, 0, ts);
		ck_assert_uint_eq(N->executed[1], ts);
		ck_assert_uint_eq(N->prep_sent[1] >> 2, flags ? 1 : 0);
		if (flags) {
			net_teardown();
			return; /* caught: it prepared seq 2 */
		}
		ck_assert(status(1).muted == (ts < 4));
	}
	ck_assert(!has_bound(1, 0, 8));
	submit(0, 0, 5);
	ck_assert_uint_eq(N->executed[1], 5);
	ck_assert_uint_eq(N->prep_sent[1], 1ULL << 1 | 1ULL << 5);
	/* low 4 after the checkpoint: high mark 12, bound 5 + 4 - 1 */
	ck_assert(has_bound(1, 0, 8));
	ck_assert(!status(1).muted);
	net_teardown();
}
END_TEST

/*
 * A primary back from a crash after it pre-prepared seq 1 (bound 4) and
 * lost that record: it must pre-prepare no seq up to 4 again, with any
 * batch; the backups execute nothing (the next view change fills seq 1).
 */
START_TEST(test_primary_mute_up_to_bound)
{
	struct pbft_status st;
	uint8_t bound[17];

	size_t boot_len;

	net_setup(4, 0);
	boot_len = N->rec[0].len;
	N->down[1] = N->down[2] = N->down[3] = true;
	submit(0, 0, 1); /* pre-prepared, never delivered */
	ck_assert(has_bound(0, 0, 4));
	N->down[1] = N->down[2] = N->down[3] = false;
	/* Everything after the start but the bound lost: its pre-prepare of
	 * seq 1 too. */
	N->rec[0].len = boot_len;
	bound_rec(bound, 0, 4);
	wbuf_put_u32(&N->rec[0], sizeof(bound));
	wbuf_put_bytes(&N->rec[0], bound, sizeof(bound));
	crash_restart(0, N->rec[0].len, 0);
	st = status(0);
	ck_assert(st.muted);
	ck_assert_uint_eq(st.mute_seq, 4);
	submit(0, 1, 1);
	ticks(3);
	ck_assert_uint_eq(N->executed[1], 0);
	ck_assert_uint_eq(status(0).next_seq, 1);
	net_teardown();
}
END_TEST

/*
 * A primary back from a crash, mute up to its bound with a request
 * waiting: it says so (STATUS), and a retransmission period later the
 * replicas change views rather than wait out the view timeout (20 ticks
 * here), since nobody can pre-prepare in this view.
 */
START_TEST(test_mute_primary_replaced_at_once)
{
	struct pbft_msg m;
	struct pbft_event ev = {.type = PBFT_EV_REQUEST, .msg = &m};
	int t;

	net_setup(4, 0);
	submit(0, 0, 1);
	crash_restart(0, N->rec[0].len, 0);
	ck_assert(status(0).muted);
	m = request(1, 1); /* after submit's: they share buffers */
	for (uint32_t i = 0; i < 4; i++)
		step(i, &ev);
	drain();
	for (t = 0; t < 12 && status(1).view == 0; t++)
		ticks(1);
	ck_assert_uint_eq(status(1).view, 1);
	ck_assert_int_lt(t, 12);
	ticks(5);
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_uint_eq(N->executed[i], 2);
	net_teardown();
}
END_TEST

#define REC_VIEW_KIND 1 /* pbft_int.h: u64 view, u8 changing */
#define REC_VC_KIND 6 /* pbft_int.h: our VIEW-CHANGE frame */

/* The end of the first record at or after byte off of i's log, which
 * must be of that kind. */
static size_t
record_end(uint32_t i, size_t off, uint8_t kind)
{
	uint32_t len;
	const uint8_t *rec;
	struct rbuf rb;

	rbuf_init(&rb, N->rec[i].p + off, N->rec[i].len - off);
	ck_assert_int_eq(rbuf_get_u32(&rb, &len), 0);
	ck_assert_int_eq(rbuf_get_ref(&rb, &rec, len), 0);
	ck_assert_uint_eq(rec[0], kind);
	return off + 4 + len;
}

/*
 * A backup crashes in the step that starts its view change to view v
 * (view 0's primary silent: the f faulty one), its log keeping that
 * step's entry of v (REC_VIEW v, changing) but not the VIEW-CHANGE
 * written after it, which so never left. Back in v, changing, it must
 * send one: the others' view-change timer counts down only with 2f+1
 * VIEW-CHANGEs for v or later, and v's primary needs them for its
 * NEW-VIEW. Loop 0: v = 1, its log holds no VIEW-CHANGE; loop 1: v = 2
 * (view 1's NEW-VIEW lost, so the timer moved on), its log holds the one
 * for view 1, which it resent instead. Until it did, the correct replicas
 * stayed view-changing for good (pbft-sim at n = 4, seeds 1240 and 815).
 */
START_TEST(test_view_change_lost_in_crash_resent)
{
	struct pbft_event tick = {.type = PBFT_EV_TICK};
	uint64_t v = 1 + (uint64_t)_i;
	size_t mark = 0, keep;

	net_setup(4, 0);
	submit(0, 0, 1);
	N->down[0] = true;
	N->drop_new_view = v > 1;
	for (uint32_t i = 1; i < 4; i++)
		submit(i, 1, 1);
	for (int t = 0; t < 200 && status(2).view < v; t++) {
		mark = N->rec[2].len;
		for (uint32_t i = 1; i < 4; i++)
			step(i, &tick);
		if (status(2).view < v)
			drain();
	}
	ck_assert_uint_eq(status(2).view, v);
	ck_assert(status(2).view_changing);
	/* Nothing of that step left replica 2: it crashed first. */
	for (size_t k = 0; k < N->qn; k++)
		if (N->q[k].from == 2)
			N->q[k].to = 0; /* down */
	drain();
	N->drop_new_view = false;
	keep = record_end(2, mark, REC_VIEW_KIND);
	record_end(2, keep, REC_VC_KIND);
	crash_restart(2, keep, 0);
	ck_assert_uint_eq(status(2).view, v);
	ticks(60); /* three view timeouts */
	for (uint32_t i = 1; i < 4; i++) {
		ck_assert_uint_eq(status(i).view, v);
		ck_assert(!status(i).view_changing);
	}
	ck_assert_uint_eq(N->exec_reqs[1], 2);
	ck_assert_uint_eq(N->exec_reqs[3], 2);
	net_teardown();
}
END_TEST

#define REC_CKPT_KIND 4 /* pbft_int.h: our CHECKPOINT frame */

/* The end of the first record of that kind in i's log; 0 if none. */
static size_t
first_record_end(uint32_t i, uint8_t kind)
{
	uint32_t len;
	const uint8_t *rec;
	struct rbuf rb;

	rbuf_init(&rb, N->rec[i].p, N->rec[i].len);
	while (
	    rbuf_get_u32(&rb, &len) == 0 && rbuf_get_ref(&rb, &rec, len) == 0)
		if (len > 0 && rec[0] == kind)
			return N->rec[i].len - rbuf_left(&rb);
	return 0;
}

/*
 * A replica crashes after its CHECKPOINT for seq 4 is durable but before
 * the checkpoint is stable there (its log ends with that record). Its
 * driver restores the snapshot of that own checkpoint: the core takes it
 * only with the state it signed (a wrong service digest, a seq it did
 * not sign: refused, nothing changed), then goes on from seq 4 without
 * executing 1..4 again (run_actions checks EXECUTE's order) and with the
 * others to checkpoint 8. Before, a restart always went back to the stable
 * checkpoint: with every correct replica that certified a checkpoint back
 * there, its state was left with the faulty one (pbft-rsim --seed 154
 * --byz-mode lie-state).
 */
START_TEST(test_own_checkpoint_restored)
{
	struct pbft_config c;
	struct rbuf rb;
	uint32_t len;
	const uint8_t *rec;
	uint8_t boot[PBFT_BOOT_RECORD_LEN], sd[32], ct[4 + 4 * 8] = {4};
	uint64_t seqs[4];
	size_t keep;

	net_setup(4, 0);
	for (uint64_t t = 1; t <= 4; t++)
		submit(0, 0, t); /* K = 4: seq 4 is a checkpoint */
	ck_assert_uint_eq(status(1).stable_checkpoint, 4);
	keep = first_record_end(1, REC_CKPT_KIND);
	ck_assert_uint_gt(keep, 0);
	memcpy(sd, N->app[1], sizeof(sd)); /* the state at 4 */
	ct[4] = 4; /* client 0's last timestamp */
	pbft_free(N->core[1]);
	pbft_config_default(&c, 4, 1, 4);
	c.checkpoint_interval = 4;
	c.window = 8;
	c.view_timeout_ticks = 20;
	c.retransmit_ticks = 5;
	c.crypto = &N->fc[1].ops;
	N->core[1] = pbft_new(&c, NULL, 0);
	N->rec[1].len = keep;
	rbuf_init(&rb, N->rec[1].p, N->rec[1].len);
	while (
	    rbuf_get_u32(&rb, &len) == 0 && rbuf_get_ref(&rb, &rec, len) == 0)
		ck_assert_int_eq(pbft_recover(N->core[1], rec, len), 0);
	ck_assert_uint_eq(status(1).stable_checkpoint, 0);
	ck_assert_uint_eq(pbft_recover_own_checkpoints(N->core[1], seqs, 4), 1);
	ck_assert_uint_eq(seqs[0], 4);
	sd[0] ^= 1;
	ck_assert_int_eq(
	    pbft_recover_own_state(N->core[1], 4, sd, ct, sizeof(ct)), -1);
	sd[0] ^= 1;
	ck_assert_int_eq(
	    pbft_recover_own_state(N->core[1], 8, sd, ct, sizeof(ct)), -1);
	ck_assert_uint_eq(status(1).last_executed, 0);
	ck_assert_int_eq(
	    pbft_recover_own_state(N->core[1], 4, sd, ct, sizeof(ct)), 0);
	ck_assert_uint_eq(status(1).last_executed, 4);
	len = (uint32_t)pbft_boot_record(N->core[1], boot);
	wbuf_put_u32(&N->rec[1], len);
	wbuf_put_bytes(&N->rec[1], boot, len);
	N->executed[1] = 4;
	ticks(6);
	for (uint64_t t = 5; t <= 8; t++)
		submit(0, 0, t);
	ticks(6);
	ck_assert_uint_eq(N->executed[1], 8);
	ck_assert_uint_eq(status(1).stable_checkpoint, 8);
	net_teardown();
}
END_TEST

START_TEST(test_config_validation)
{
	struct pbft_config c;
	struct fake_crypto fc;
	char err[128];

	fake_crypto_init(&fc, 0);
	pbft_config_default(&c, 4, 0, 1);
	c.crypto = &fc.ops;
	c.f = 2; /* n < 3f+1 */
	ck_assert_ptr_null(pbft_new(&c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "3f+1"));
	c.f = 1;
	c.window = 150; /* not a multiple of K = 100 */
	ck_assert_ptr_null(pbft_new(&c, err, sizeof(err)));
}
END_TEST

/* ---- bounded work ------------------------------------------------------- */

/* Replica `from`'s CHECKPOINT for seq (digest filled with fill), signed. */
static struct pbft_msg
ckpt_msg(uint32_t from, uint64_t seq, uint8_t fill)
{
	struct pbft_msg c = {.type = PBFT_MSG_CHECKPOINT};
	struct wbuf wb;

	c.u.checkpoint = (struct pbft_checkpoint){.seq = seq, .replica = from};
	memset(c.u.checkpoint.digest, fill, PBFT_DIGEST_LEN);
	wbuf_init_dynamic(&wb, 1 << 16);
	wire_signed_checkpoint(&wb, seq, c.u.checkpoint.digest, from);
	fake_sign_as(from, wb.p, wb.len, c.u.checkpoint.sig);
	wbuf_clear(&wb);
	return c;
}

/*
 * A replica repeating a signed CHECKPOINT costs one verification, however
 * often it repeats it; walking ahead of the window costs one per new
 * checkpoint, and one below the latest it showed above the window costs
 * none.
 */
START_TEST(test_repeated_checkpoint_verified_once)
{
	struct pbft_msg c;
	uint64_t v0;

	net_setup(4, 0);
	c = ckpt_msg(2, 100, 7); /* far above the window (8) */
	v0 = N->fc[3].verifies;
	for (int i = 0; i < 1000; i++)
		inject(2, 3, &c);
	ck_assert_uint_eq(N->fc[3].verifies - v0, 1);
	for (uint64_t seq = 104; seq <= 140; seq += 4) {
		c = ckpt_msg(2, seq, 7);
		inject(2, 3, &c);
		inject(2, 3, &c);
	}
	ck_assert_uint_eq(N->fc[3].verifies - v0, 1 + 10);
	c = ckpt_msg(2, 120, 7); /* older than its latest: not verified */
	inject(2, 3, &c);
	ck_assert_uint_eq(N->fc[3].verifies - v0, 11);
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_SIG), 0);
	net_teardown();
}
END_TEST

/* Replica 2's VIEW-CHANGE for view with the stable checkpoint 4 proved by
 * replicas 0..2; signed unless bad. */
static struct pbft_msg
vc_for(uint64_t view, struct pbft_sigpair proof[3], bool bad)
{
	struct pbft_msg m = {.type = PBFT_MSG_VIEW_CHANGE};
	struct wbuf wb;

	m.u.view_change = (struct pbft_view_change){
	    .view = view, .replica = 2, .stable_seq = 4};
	memset(m.u.view_change.stable_digest, 9, PBFT_DIGEST_LEN);
	wbuf_init_dynamic(&wb, 1 << 16);
	for (uint32_t i = 0; i < 3; i++) {
		wbuf_reset(&wb);
		wire_signed_checkpoint(
		    &wb, 4, m.u.view_change.stable_digest, i);
		proof[i].replica = i;
		fake_sign_as(i, wb.p, wb.len, proof[i].sig);
	}
	m.u.view_change.ckpt = proof;
	m.u.view_change.nckpt = 3;
	wbuf_reset(&wb);
	wire_signed_bytes(&wb, &m);
	fake_sign_as(2, wb.p, wb.len, m.u.view_change.sig);
	m.u.view_change.sig[0] ^= bad ? 1 : 0;
	wbuf_clear(&wb);
	return m;
}

/*
 * VIEW-CHANGEs with ever higher views from one replica cost one
 * verification each, not one plus the checkpoint proof they carry again;
 * sent once more, none at all (not newer than what it proved).
 */
START_TEST(test_climbing_view_changes_bounded)
{
	struct pbft_sigpair proof[3];
	struct pbft_msg m;
	uint64_t v0;

	net_setup(4, 0);
	v0 = N->fc[3].verifies;
	for (uint64_t v = 1; v <= 100; v++) {
		m = vc_for(v, proof, false);
		inject(2, 3, &m);
	}
	/* One verified (and its proof), the rest within the half period. */
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_CERT), 0);
	ck_assert_uint_le(N->fc[3].verifies - v0, 1 + 3);
	ck_assert_uint_ge(rejected(3, PBFT_REJ_RATE_LIMITED), 99);
	ticks(5);
	v0 = N->fc[3].verifies;
	m = vc_for(101, proof, false);
	inject(2, 3, &m);
	ck_assert_uint_eq(N->fc[3].verifies - v0, 1);
	v0 = N->fc[3].verifies;
	for (uint64_t v = 1; v <= 100; v++) {
		m = vc_for(v, proof, false);
		inject(2, 3, &m);
	}
	ck_assert_uint_eq(N->fc[3].verifies - v0, 0);
	net_teardown();
}
END_TEST

/*
 * A NEW-VIEW is checked for 2f+1 VIEW-CHANGEs of its view from distinct
 * replicas before any signature: one whose V names a replica twice costs
 * no verification, however often it comes, and closes the relay's channel.
 */
START_TEST(test_new_view_shape_before_signature)
{
	struct pbft_msg nv = {.type = PBFT_MSG_NEW_VIEW};
	struct pbft_sigpair proof[3];
	struct pbft_view_change vcs[3];
	struct wbuf wb;
	uint64_t v0;

	net_setup(4, 0);
	for (int i = 0; i < 3; i++)
		vcs[i] = vc_for(5, proof, false).u.view_change; /* all from 2 */
	nv.u.new_view = (struct pbft_new_view){
	    .view = 5, .nvc = 3, .vcs = vcs, .replica = 1};
	wbuf_init_dynamic(&wb, 1 << 16);
	wire_signed_bytes(&wb, &nv);
	fake_sign_as(1, wb.p, wb.len, nv.u.new_view.sig);
	v0 = N->fc[3].verifies;
	for (int i = 0; i < 100; i++)
		inject(2, 3, &nv);
	ck_assert_uint_eq(N->fc[3].verifies - v0, 0);
	ck_assert_uint_eq(rejected(3, PBFT_REJ_BAD_CERT), 100);
	ck_assert_uint_eq(N->disconnects[3][2], 100);
	ck_assert_uint_eq(status(3).view, 0);
	wbuf_clear(&wb);
	net_teardown();
}
END_TEST

/* Moves replicas 1..3 to view 1 with replica 0 down. */
static void
to_view_one(void)
{
	submit(0, 0, 1);
	N->down[0] = true;
	submit(1, 1, 1);
	submit(2, 1, 1);
	submit(3, 1, 1);
	for (int t = 0; t < 300 && status(3).view_changes == 0; t++)
		ticks(1);
	for (uint32_t i = 1; i < 4; i++) {
		ck_assert_uint_eq(status(i).view, 1);
		ck_assert(!status(i).view_changing);
	}
}

/*
 * A VIEW-CHANGE for the view we are in is answered with our NEW-VIEW only
 * once its signature checked, and at most once every half retransmission
 * period; the forgery closes its sender's channel.
 */
START_TEST(test_late_view_change_checked_before_answer)
{
	struct pbft_sigpair proof[3];
	struct pbft_msg m;
	uint32_t *nv;

	net_setup(4, 0);
	to_view_one();
	nv = &N->sent[1][2][PBFT_MSG_NEW_VIEW];
	*nv = 0;
	m = vc_for(1, proof, true);
	inject(2, 1, &m);
	ck_assert_uint_eq(*nv, 0);
	ck_assert_uint_eq(rejected(1, PBFT_REJ_BAD_CERT), 1);
	ck_assert_uint_eq(N->disconnects[1][2], 1);
	ticks(5); /* a retransmission period */
	*nv = 0;
	m = vc_for(1, proof, false);
	for (int i = 0; i < 100; i++)
		inject(2, 1, &m);
	ck_assert_uint_eq(*nv, 1);
	ck_assert_uint_ge(rejected(1, PBFT_REJ_RATE_LIMITED), 99);
	net_teardown();
}
END_TEST

/*
 * FETCH_BATCH answers to one replica stay within fetch_bytes_max a
 * retransmission period however often it asks, and resume the next.
 */
/* FETCH_BATCH for batch seq (its body as the primary encoded it). */
static struct pbft_msg
fetch_of(uint64_t seq, uint32_t client, uint64_t ts, size_t *body)
{
	struct pbft_msg f = {.type = PBFT_MSG_FETCH_BATCH};
	struct pbft_msg r = request(client, ts);
	struct wbuf wb;

	wbuf_init_dynamic(&wb, 1 << 16);
	wire_encode_batch(&wb, &r.u.request, 1);
	*body = wb.len;
	f.u.fetch_batch = (struct pbft_fetch_batch){.seq = seq, .replica = 2};
	fake_digest(wb.p, wb.len, f.u.fetch_batch.digest);
	wbuf_clear(&wb);
	return f;
}

/*
 * A batch goes to one replica at most once a retransmission period, and
 * all batches together at most fetch_bytes_max a period.
 */
START_TEST(test_fetch_batch_answers_budgeted)
{
	struct pbft_msg f[3];
	uint32_t *answers;
	uint64_t *bytes;
	size_t body;

	/* Seven batches: the stable checkpoint is 4, batches 5-7 held. */
	for (uint64_t i = 0; i < 3; i++)
		f[i] = fetch_of(i + 5, 0, i + 5, &body);
	setup_fetch_bytes = 2 * body;
	net_setup(4, 0);
	setup_fetch_bytes = 0;
	for (uint64_t i = 0; i < 7; i++)
		submit(0, 0, i + 1);
	ck_assert_uint_eq(N->executed[1], 7);
	answers = &N->sent[1][2][PBFT_MSG_BATCH];
	bytes = &N->sent_bytes[1][2][PBFT_MSG_BATCH];
	/* The same batch asked 100 times: one answer. */
	for (int i = 0; i < 100; i++)
		inject(2, 1, &f[0]);
	ck_assert_uint_eq(*answers, 1);
	ck_assert_uint_ge(rejected(1, PBFT_REJ_RATE_LIMITED), 99);
	/* Two more, each asked 20 times: the byte budget (two bodies) lets
	 * one of them through. */
	for (int i = 0; i < 20; i++)
		for (int k = 1; k < 3; k++)
			inject(2, 1, &f[k]);
	ck_assert_uint_eq(*answers, 2);
	ck_assert_uint_le(*bytes, 2 * (body + 64)); /* + message header */
	ticks(5);
	inject(2, 1, &f[0]);
	ck_assert_uint_eq(*answers, 3);
	net_teardown();
}
END_TEST

static uint8_t big_op[60000];

/* client's request ts with a 60,000-byte operation, to the primary. */
static void
submit_big(uint32_t client, uint64_t ts)
{
	static uint8_t auth[FAKE_AUTH_LEN];
	struct pbft_msg m = {.type = PBFT_MSG_REQUEST};
	struct pbft_event ev = {.type = PBFT_EV_REQUEST, .msg = &m};

	big_op[0] = (uint8_t)ts;
	m.u.request = (struct pbft_request){.client = client,
	    .timestamp = ts,
	    .op_len = sizeof(big_op),
	    .op = big_op};
	fake_request_auth(&m.u.request, auth);
	m.u.request.auth = auth;
	m.u.request.auth_len = FAKE_AUTH_LEN;
	step(0, &ev);
	drain();
}

/*
 * The primary's queue holds at most queue_bytes_max bytes, and one client
 * at most its share (a quarter, at least PBFT_QUEUE_CLIENT_FLOOR); the
 * rest is refused and counted. A request that does not authenticate gets
 * its client disconnected.
 */
START_TEST(test_queue_bytes_capped)
{
	const uint64_t cap = 2 * PBFT_QUEUE_CLIENT_FLOOR; /* share: floor */
	struct pbft_msg bad = request(3, 1);
	struct pbft_event ev = {.type = PBFT_EV_REQUEST, .msg = &bad};
	uint64_t q0;

	setup_queue_bytes = cap;
	setup_inflight = 1;
	net_setup(4, 0);
	setup_queue_bytes = 0;
	setup_inflight = 0;
	for (uint32_t i = 1; i < 4; i++)
		N->down[i] = true; /* nothing commits: batch 1 stays */
	submit_big(0, 1); /* proposed at once */
	for (uint64_t ts = 2; ts < 100; ts++)
		submit_big(0, ts);
	q0 = status(0).queued_bytes;
	ck_assert_uint_le(q0, PBFT_QUEUE_CLIENT_FLOOR);
	ck_assert_uint_gt(q0, PBFT_QUEUE_CLIENT_FLOOR - 61000);
	ck_assert_uint_gt(rejected(0, PBFT_REJ_QUEUE_BYTES), 50);
	/* Another client still gets its share; a third finds it full. */
	for (uint32_t c = 1; c < 3; c++)
		for (uint64_t ts = 1; ts < 100; ts++)
			submit_big(c, ts);
	ck_assert_uint_le(status(0).queued_bytes, cap);
	ck_assert_uint_gt(status(0).queued_bytes, 2 * q0 - 61000);
	ck_assert_uint_eq(
	    status(0).queued_bytes / 60000 + 1, status(0).queued_reqs + 1);
	/* A forged request: refused, counted, its client dropped. */
	bad.u.request.auth = (const uint8_t *)"forged!!";
	step(0, &ev);
	ck_assert_uint_eq(rejected(0, PBFT_REJ_BAD_REQUEST), 1);
	ck_assert_uint_eq(N->client_drops[0], 1);
	net_teardown();
}
END_TEST

/*
 * A channel that comes up gets our STATUS and our votes for the window's
 * batches at once (what a retransmission would send a period later), at
 * most once a half period however often it reconnects.
 */
START_TEST(test_peer_up_told_at_once)
{
	struct pbft_event up = {.type = PBFT_EV_PEER_UP, .from = 2};
	uint32_t *status, *prepares, *commits;

	net_setup(4, 0);
	submit(0, 0, 1);
	ck_assert_uint_eq(N->executed[1], 1);
	status = &N->sent[1][2][PBFT_MSG_STATUS];
	prepares = &N->sent[1][2][PBFT_MSG_PREPARE];
	commits = &N->sent[1][2][PBFT_MSG_COMMIT];
	ck_assert_uint_eq(*status, 0);
	ck_assert_uint_eq(*prepares, 1);
	step(1, &up);
	drain();
	ck_assert_uint_eq(*status, 1);
	ck_assert_uint_eq(*prepares, 2);
	ck_assert_uint_eq(*commits, 2);
	for (int i = 0; i < 10; i++)
		step(1, &up);
	drain();
	ck_assert_uint_eq(*status, 1);
	ck_assert_uint_eq(*prepares, 2);
	ticks(5);
	step(1, &up);
	drain();
	ck_assert_uint_eq(*status, 2);
	net_teardown();
}
END_TEST

/*
 * Puts replica 3 alone in view 1: cut off with a request only it got, it
 * waits for a quorum; once back in touch, nobody shows the request at
 * work, so it suspects the primary, and the others, idle, do not follow.
 */
static void
strand_replica_3(void)
{
	submit(0, 0, 1);
	N->cut[3] = true;
	submit(3, 1, 1);
	ticks(60);
	N->cut[3] = false;
	for (int t = 0; t < 200 && !status(3).view_changing; t++)
		ticks(1);
	ck_assert(status(3).view_changing);
	ck_assert_uint_eq(status(3).view, 1);
	for (uint32_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(status(i).view, 0);
		ck_assert(!status(i).view_changing);
	}
}

/*
 * A replica alone in a view change (its VIEW-CHANGE not followed) executes
 * what the others commit in their lower view, once they answer the STATUS
 * that says it is changing to a view above theirs: 2f+1 matching COMMITs
 * of one view, the bodies by FETCH_BATCH. It sends no PREPARE or COMMIT of
 * their view, and stays changing. _i = 1: the rule off
 * (PBFT_TEST_BROKEN_STRANDED), it stays behind.
 */
START_TEST(test_stranded_replica_executes_without_voting)
{
	struct pbft_msg m = {.type = PBFT_MSG_STATUS};
	uint32_t votes = 0;
	uint64_t want = _i == 0 ? 3 : 1;

	net_setup(4, _i == 0 ? 0 : PBFT_TEST_BROKEN_STRANDED);
	strand_replica_3();
	ck_assert_uint_eq(N->executed[3], 1);
	for (uint32_t to = 0; to < 3; to++)
		votes += N->sent[3][to][PBFT_MSG_PREPARE] +
		    N->sent[3][to][PBFT_MSG_COMMIT];
	N->cut[3] = true; /* what the others commit now misses it */
	for (uint64_t t = 2; t <= 3; t++) /* below the first checkpoint */
		submit(0, 0, t);
	ticks(5); /* the answers to its last STATUS are a period old */
	N->cut[3] = false;
	ck_assert_uint_eq(N->executed[0], 3);
	ck_assert_uint_eq(N->executed[3], 1);
	/* Its STATUS, as it sends one a period while changing and stuck. */
	m.u.status = (struct pbft_status_msg){.view = 1,
	    .last_exec = 1,
	    .replica = 3,
	    .flags = PBFT_STATUS_CHANGING};
	for (uint32_t to = 0; to < 3; to++)
		inject(3, to, &m);
	ck_assert_uint_eq(N->executed[3], want);
	ck_assert_uint_eq(status(3).executed_late, want - 1);
	/* With no new requests, the periods that follow too. */
	ticks(30);
	ck_assert_uint_eq(N->executed[3], want);
	ck_assert(status(3).view_changing);
	ck_assert_uint_eq(status(3).view, 1);
	/* Status says it follows view 0 (the others' STATUS, idle). */
	ck_assert(status(3).following);
	ck_assert_uint_eq(status(3).following_view, 0);
	for (uint32_t i = 0; i < 3; i++)
		ck_assert(!status(i).following);
	for (uint32_t to = 0; to < 3; to++)
		votes -= N->sent[3][to][PBFT_MSG_PREPARE] +
		    N->sent[3][to][PBFT_MSG_COMMIT];
	ck_assert_uint_eq(votes, 0);
	/* New requests in view 0: it follows them as they commit. */
	for (uint64_t t = 4; t <= 5; t++)
		submit(0, 0, t);
	ticks(10);
	ck_assert_uint_eq(N->executed[0], 5);
	ck_assert_uint_eq(N->executed[3], _i == 0 ? 5 : 1);
	net_teardown();
}
END_TEST

/*
 * The COMMITs a stranded replica executes on: 2f+1 from distinct replicas
 * for one view, seq and digest. One replica repeating itself, or votes for
 * another digest or view, do not add up; the third matching one does (it
 * asks for the body then).
 */
START_TEST(test_stranded_commits_count_per_replica)
{
	struct pbft_msg c = vote_msg(0, PBFT_MSG_COMMIT, 0, 2, 7);
	uint32_t *fetches;

	net_setup(4, 0);
	strand_replica_3();
	N->cut[3] = true; /* from here on only what is injected */
	fetches = &N->sent[3][0][PBFT_MSG_FETCH_BATCH];
	for (int k = 0; k < 3; k++)
		inject(0, 3, &c);
	c = vote_msg(1, PBFT_MSG_COMMIT, 0, 2, 8); /* another digest */
	inject(1, 3, &c);
	c = vote_msg(2, PBFT_MSG_COMMIT, 0, 2, 7);
	inject(2, 3, &c);
	ck_assert_uint_eq(*fetches, 0);
	c = vote_msg(1, PBFT_MSG_COMMIT, 1, 2, 7); /* its own view: no */
	inject(1, 3, &c);
	ck_assert_uint_eq(*fetches, 0);
	/* Replica 1's latest vote below view 1 is for digest 8, in view 0:
	 * one for 7 in view 0 replaces it only if later, so it does not. */
	c = vote_msg(1, PBFT_MSG_COMMIT, 0, 2, 7);
	inject(1, 3, &c);
	ck_assert_uint_eq(*fetches, 0);
	/* At seq 3, three replicas for one digest in view 0: certified. */
	for (uint32_t i = 0; i < 3; i++) {
		c = vote_msg(i, PBFT_MSG_COMMIT, 0, 3, 9);
		inject(i, 3, &c);
		ck_assert_uint_eq(*fetches, i == 2 ? 1 : 0);
	}
	ck_assert_uint_eq(N->executed[3], 1);
	net_teardown();
}
END_TEST

static Suite *
core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("normal");

	tcase_add_test(tc, test_commit_one_request);
	tcase_add_test(tc, test_quorums_n5_n6);
	tcase_add_test(tc, test_no_commit_without_quorum);
	tcase_add_test(tc, test_duplicate_not_reexecuted);
	tcase_add_test(tc, test_batching);
	tcase_add_test(tc, test_partial_batch_waits_while_one_in_flight);
	tcase_add_test(tc, test_normal_case_checks_no_signature);
	tcase_add_test(tc, test_config_validation);
	tcase_add_test(tc, test_mute_after_crash);
	tcase_add_loop_test(tc, test_backup_rejoins_above_bound, 0, 2);
	tcase_add_test(tc, test_primary_mute_up_to_bound);
	tcase_add_test(tc, test_mute_primary_replaced_at_once);
	tcase_add_test(tc, test_old_frames_mute);
	tcase_add_test(tc, test_peer_up_told_at_once);
	suite_add_tcase(s, tc);
	tc = tcase_create("hostile");
	tcase_add_test(tc, test_prepare_counts_once_per_sender);
	tcase_add_test(tc, test_view_change_claims_shape);
	tcase_add_test(tc, test_bad_signature_rejected);
	tcase_add_test(tc, test_wrong_view_and_window);
	tcase_add_test(tc, test_preprepare_rules);
	tcase_add_test(tc, test_preprepare_requests_judged_by_signature);
	suite_add_tcase(s, tc);
	tc = tcase_create("checkpoint");
	tcase_add_test(tc, test_checkpoint_stable_and_gc);
	tcase_add_test(tc, test_lagging_replica_fetches_state);
	tcase_add_test(
	    tc, test_lagging_replica_does_not_suspect_a_working_primary);
	tcase_add_test(tc, test_primary_holding_back_a_request_is_suspected);
	tcase_add_test(tc, test_status_brings_back_missed_batches);
	tcase_add_test(tc, test_status_rules);
	tcase_add_test(tc, test_cut_off_replica_waits_for_a_quorum);
	tcase_add_loop_test(
	    tc, test_stranded_replica_executes_without_voting, 0, 2);
	tcase_add_test(tc, test_stranded_commits_count_per_replica);
	suite_add_tcase(s, tc);
	tc = tcase_create("view_change");
	tcase_add_test(tc, test_view_change_keeps_committed);
	tcase_add_test(tc, test_new_view_without_quorum_rejected);
	tcase_add_test(tc, test_recovery_never_contradicts);
	tcase_add_loop_test(tc, test_view_change_lost_in_crash_resent, 0, 2);
	tcase_add_test(tc, test_own_checkpoint_restored);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	tc = tcase_create("bounds");
	tcase_add_test(tc, test_repeated_checkpoint_verified_once);
	tcase_add_test(tc, test_climbing_view_changes_bounded);
	tcase_add_test(tc, test_new_view_shape_before_signature);
	tcase_add_test(tc, test_late_view_change_checked_before_answer);
	tcase_add_test(tc, test_fetch_batch_answers_budgeted);
	tcase_add_test(tc, test_queue_bytes_capped);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(core_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
