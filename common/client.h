/*
 * client.h - the pbft client library: submit operations to a cluster and get
 * results that f+1 replicas agree on.
 *
 * The library keeps an authenticated connection (common/chan.h) to every
 * replica of the cluster described by a cluster.ini, signs each request with
 * the client's Ed25519 key, sends it to the replica it believes is the
 * primary (or to all replicas at once, below), and retransmits it to all
 * replicas with backoff until f+1 replicas have sent matching replies (same
 * sequence number, status and result) or the request times out. A result
 * is therefore never the word of a single, possibly faulty, replica. A
 * request submitted before the connections are up goes out as each one
 * comes up (to the primary, or to the backups while the primary's is not
 * up), not at the next retransmission.
 *
 * The primary is that of the highest view that f+1 replicas have named in
 * their replies (each replica's highest counts): at least one correct
 * replica is in that view or a later one, so a faulty replica cannot
 * steer the client to a primary of its choosing by naming a view.
 *
 * A primary that ignores what clients send it, and proposes a request only
 * once the backups forward it after the client's retransmission to all,
 * would cost each request a retransmission interval without ever letting
 * a view timer expire. So the rule: when a request needed a retransmission
 * to be answered (in the view it started in), the client sends its next
 * 16 requests to all replicas at once; the backups forward each to the
 * primary at once and start their view timers, so such a primary gains
 * nothing, and is suspected if it holds requests back. Then it sends to
 * the primary alone again. Each time a request needs a retransmission
 * again the next run is twice as long, up to 1024 requests; a request
 * answered by way of the primary alone without one makes it 16 again, as
 * does a new view (its primary gets a fresh chance). With a primary that
 * answers within the retransmission interval, no request needs a
 * retransmission and every request goes to the primary alone.
 *
 * It runs on a libev loop owned by the caller; callbacks run on that loop.
 * Its connections are those of conn.h: a replica that resets one costs a
 * reconnection, never a SIGPIPE, so the program need not ignore the signal.
 * Timestamps come from the wall clock in microseconds, kept strictly
 * increasing within a process, so they keep increasing across restarts of the
 * client as long as the clock does not step back.
 *
 * Typical use:
 *
 *     struct pbft_client *c = pbft_client_new(loop, &opts, err, sizeof(err));
 *     pbft_client_submit(c, op, op_len, done_cb, arg);
 *     ev_run(loop, 0);
 */
#ifndef PBFT_CLIENT_H
#define PBFT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pbft/client.h> /* the public half: results, submit, status */

#include "cfg.h"
#include "msg.h"

struct pbft_client_opts {
	const struct cluster_cfg *cfg; /* borrowed; must outlive the client */
	uint32_t client_id; /* index of a [client.NAME] section */
	void *key; /* EVP_PKEY private key; owned after new */
	uint32_t timeout_ms; /* per request; 0 = 30 s */
	uint32_t retransmit_ms; /* first retransmission; 0 = cfg's */
	uint32_t max_outstanding; /* 0 = 1024 */
	/*
	 * false (default): requests go out one at a time in timestamp order,
	 * the others wait in the library. Replicas execute a client's request
	 * only if its timestamp is newer than the last one executed, so a
	 * request overtaken by a later one (possible across a view change)
	 * would never run; sending one at a time rules that out.
	 * true: send at once, for load generators that accept the caveat.
	 */
	bool pipeline;
	/*
	 * While requests are unanswered, new ones are signed together at most
	 * this often (0 = 2000 us), or at most half as often as the recent
	 * latency when that is longer (up to 2.5 times this); a request
	 * submitted when none is unanswered is signed at once.
	 */
	uint32_t sign_interval_us;
	/*
	 * For the simulator (tests/sim/rsim.c); production leaves them zero.
	 * now_us: the clock in microseconds, for timestamps and timers alike
	 * (NULL: the system's wall and monotonic clocks). auth: writes the
	 * authenticator of req (at most PBFT_AUTH_BYTES_MAX bytes) into auth
	 * and returns its length, in place of the key's signature and the
	 * channels' MACs (key may then be NULL). Both get env_ctx.
	 */
	uint64_t (*now_us)(void *ctx);
	size_t (*auth)(
	    void *ctx, const struct pbft_request *req, uint8_t *auth);
	void *env_ctx;
};

/*
 * Creates a client and starts connecting; NULL with err set on failure.
 * Without a loop (NULL) the client has no watchers and is driven through
 * the three functions below; its links are then the simulator's
 * (client_link.h).
 */
struct pbft_client *pbft_client_new(struct ev_loop *loop,
    const struct pbft_client_opts *opts, char *err, size_t errlen);

/*
 * A client without a loop. pbft_client_tick: runs the timers that are due
 * (retransmissions, deadlines, the end of a sign interval).
 * pbft_client_before_wait: the step a loop takes before it waits (signs
 * and sends what was submitted); call it after every call into the client
 * (a submit, a tick, a link's callback). pbft_client_next_due: when the
 * next tick is wanted (opts.now_us's time), UINT64_MAX for no time.
 */
void pbft_client_tick(struct pbft_client *c);
void pbft_client_before_wait(struct pbft_client *c);
uint64_t pbft_client_next_due(const struct pbft_client *c);

/* Whether replica i is connected (false for an i of no replica). */
bool pbft_client_replica_connected(const struct pbft_client *c, uint32_t i);

/*
 * How long a client with requests unanswered holds new ones back from
 * signing: half latency_avg_us, within [base_us, 2.5 times base_us].
 */
uint64_t pbft_client_sign_interval_us(
    uint32_t base_us, uint64_t latency_avg_us);

#endif
