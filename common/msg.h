/*
 * msg.h - the messages of the pbft protocol as plain C structs.
 *
 * These are what the wire module (wire.h) decodes frames into and encodes
 * frames from, and what the consensus core (pbft-replica/core/pbft.h) consumes
 * and produces. Pointers inside a decoded message borrow from the frame buffer
 * or from the decoder's arena; they are valid until that buffer is reused.
 * Names follow Castro and Liskov (OSDI '99, TOCS 2002).
 *
 * Signatures. Messages that serve as proof to third parties carry an Ed25519
 * signature by their sender over the message's "signed bytes": the wire
 * encoding of the message with the signature field left out
 * (wire_signed_bytes()). Prepared certificates and checkpoint proofs carry only
 * (replica, signature) pairs, because every member signs the same fields.
 */
#ifndef PBFT_MSG_H
#define PBFT_MSG_H

#include <stdbool.h>
#include <stdint.h>

#define PBFT_DIGEST_LEN 32
#define PBFT_SIG_LEN 64
#define PBFT_PUBKEY_LEN 32

/* Hard limits that every decoder enforces before it reads or allocates. */
#define PBFT_REPLICAS_MAX 64 /* n */
#define PBFT_CLIENTS_MAX 4096 /* [client.NAME] sections */
#define PBFT_OP_BYTES_MAX (64 * 1024) /* one request's operation */
#define PBFT_REQ_MAC_LEN 16 /* one replica's entry in an authenticator */
/* signature, tree position and path of depth 8, n MACs (reqauth.h) */
#define PBFT_AUTH_BYTES_MAX                                                    \
	(PBFT_SIG_LEN + 3 + 32 * 8 + PBFT_REQ_MAC_LEN * PBFT_REPLICAS_MAX)
#define PBFT_RESULT_BYTES_MAX 4096 /* one reply's result */
#define PBFT_BATCH_REQS_MAX 4096 /* requests in one batch */
#define PBFT_BATCH_BYTES_MAX (4 * 1024 * 1024)
#define PBFT_WINDOW_MAX 4096 /* L = high mark - low mark */
#define PBFT_FRAME_BYTES_MAX (8 * 1024 * 1024) /* whole frame, header incl. */
#define PBFT_CHUNK_BYTES_MAX (1024 * 1024) /* state-transfer chunk */
#define PBFT_NAME_BYTES_MAX 64

#define PBFT_WIRE_VERSION 2

enum pbft_msg_type {
	PBFT_MSG_NONE = 0,
	/* channel handshake (not seen by the consensus core) */
	PBFT_MSG_HELLO = 1,
	PBFT_MSG_AUTH = 2,
	/* client <-> replica */
	PBFT_MSG_REQUEST = 10,
	PBFT_MSG_REPLY = 11,
	/* replica <-> replica, normal case (section 4.2) */
	PBFT_MSG_PREPREPARE = 20,
	PBFT_MSG_PREPARE = 21,
	PBFT_MSG_COMMIT = 22,
	/* garbage collection (section 4.3) */
	PBFT_MSG_CHECKPOINT = 23,
	/* view change (section 4.4) */
	PBFT_MSG_VIEW_CHANGE = 24,
	PBFT_MSG_NEW_VIEW = 25,
	/* fetching a batch body known only by digest (after a view change) */
	PBFT_MSG_FETCH_BATCH = 26,
	PBFT_MSG_BATCH = 27,
	/* state transfer (TOCS section 5.3) */
	PBFT_MSG_FETCH_STATE = 28,
	PBFT_MSG_STATE_CHUNK = 29,
	/* address discovery through a bootstrap peer (net layer only) */
	PBFT_MSG_ANNOUNCE = 30,
	/* a replica that made no progress says where it is (retransmission) */
	PBFT_MSG_STATUS = 31,
	PBFT_MSG_TYPE_MAX = 32,
};

/* Channel handshake; see common/chan.h for the protocol around these. */
enum pbft_role {
	PBFT_ROLE_REPLICA = 1,
	PBFT_ROLE_CLIENT = 2,
};

struct pbft_hello {
	uint8_t role; /* enum pbft_role */
	uint32_t id; /* replica index or client index */
	uint8_t eph_pub[32]; /* ephemeral X25519 public key */
	uint8_t nonce[32];
};

struct pbft_auth {
	uint8_t sig[PBFT_SIG_LEN]; /* Ed25519 over the transcript hash */
};

/*
 * A client request <REQUEST, o, t, c>. auth authenticates (client, timestamp,
 * op) to the replicas: the client's Ed25519 signature over a hash tree of
 * the requests it sent together, this request's path in that tree, and
 * optionally n MACs, entry i keyed with the request key of the client's
 * channel to replica i (common/reqauth.h). The core asks its crypto
 * interface, never parses it.
 */
struct pbft_request {
	uint32_t client;
	uint64_t timestamp;
	uint32_t op_len;
	const uint8_t *op;
	uint16_t auth_len;
	const uint8_t *auth;
};

/* <REPLY, v, t, c, i, r>, sent over the authenticated client channel. */
struct pbft_reply {
	uint64_t view;
	uint64_t timestamp;
	uint32_t client;
	uint32_t replica;
	uint64_t seq; /* sequence number that executed it */
	uint8_t status; /* 0 ok; nonzero: service error code */
	uint32_t result_len;
	const uint8_t *result;
};

/*
 * <PRE-PREPARE, v, n, d> plus the batch. batch is the encoded batch
 * (wire_encode_batch) and digest = H(batch); a null request has batch_len 0
 * and an all-zero digest. Unsigned: the authenticated channel
 * (common/chan.h) names the primary that sent it, and no message shows a
 * pre-prepare to a third party (a VIEW-CHANGE carries claims, not proofs).
 */
struct pbft_preprepare {
	uint64_t view;
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t replica;
	uint32_t batch_len;
	const uint8_t *batch;
};

/*
 * <PREPARE, v, n, d, i> and <COMMIT, v, n, d, i> have the same shape.
 * Unsigned, as pre-prepares are: the authenticated channel is proof enough
 * of the sender, as MACs are in Castro and Liskov's TOCS protocol.
 */
struct pbft_vote {
	uint64_t view;
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t replica;
};

/* <CHECKPOINT, n, d, i>: d is the digest of the state after executing n. */
struct pbft_checkpoint {
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t replica;
	uint8_t sig[PBFT_SIG_LEN];
};

/* One member's signature inside a checkpoint proof. */
struct pbft_sigpair {
	uint32_t replica;
	uint8_t sig[PBFT_SIG_LEN];
};

/*
 * One claim of a VIEW-CHANGE: the batch with this digest prepared (P) or was
 * pre-prepared (Q) at seq in view.
 */
struct pbft_vc_entry {
	uint64_t view;
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN];
};

/*
 * <VIEW-CHANGE, v+1, n, C, P, Q, i>: new view, last stable checkpoint (seq
 * and state digest) with its proof C (2f+1 checkpoint signatures), and for
 * the seqs above it P, the latest view each prepared in at this replica
 * (one entry per seq), and Q, the views in which it accepted a pre-prepare
 * for each digest (the latest per digest, at most PBFT_Q_PER_SEQ per seq).
 * The entries are claims, not proofs: the new primary counts them (TOCS
 * 2002, section 4.5), and only the whole message is signed.
 */
#define PBFT_Q_PER_SEQ 4
struct pbft_view_change {
	uint64_t view; /* the view being moved to */
	uint64_t stable_seq;
	uint8_t stable_digest[PBFT_DIGEST_LEN];
	uint32_t nckpt;
	const struct pbft_sigpair *ckpt;
	uint32_t nprepared;
	const struct pbft_vc_entry *prepared; /* P, by increasing seq */
	uint32_t npreprepared;
	const struct pbft_vc_entry *preprepared; /* Q, by (seq, view) */
	uint32_t replica;
	uint8_t sig[PBFT_SIG_LEN];
};

/* One pre-prepare of the new view's O set. */
struct pbft_nv_preprepare {
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN]; /* all zero for a null request */
};

/*
 * <NEW-VIEW, v+1, V, O>: the view changes the new primary chose by (2f+1 or
 * more) and the re-proposed O set; the signature covers all of it.
 */
struct pbft_new_view {
	uint64_t view;
	uint32_t nvc;
	const struct pbft_view_change *vcs;
	uint32_t npp;
	const struct pbft_nv_preprepare *pps;
	uint32_t replica;
	uint8_t sig[PBFT_SIG_LEN];
};

/* Asks a peer for the batch with this digest; the answer is checked by hash. */
struct pbft_fetch_batch {
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t replica;
};

struct pbft_batch {
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t replica;
	uint32_t batch_len;
	const uint8_t *batch;
};

/* State transfer: ask for chunk `index` of the snapshot at stable seq. */
struct pbft_fetch_state {
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN];
	uint32_t index;
	uint32_t replica;
};

struct pbft_state_chunk {
	uint64_t seq;
	uint8_t digest[PBFT_DIGEST_LEN]; /* the checkpoint's state digest */
	uint32_t index;
	uint32_t count; /* chunks in the whole snapshot */
	uint64_t total_len; /* snapshot bytes */
	uint32_t replica;
	uint32_t data_len;
	const uint8_t *data;
};

/*
 * <ANNOUNCE, i, e, host, port>: replica i can be reached at host:port,
 * signed by i so that any peer may relay it. epoch orders a replica's own
 * announcements (a higher one replaces a lower one). host is 1..255 bytes
 * of letters, digits and ".-:_%" (an IPv6 address without brackets).
 */
#define PBFT_HOST_BYTES_MAX 255
struct pbft_announce {
	uint32_t replica;
	uint64_t epoch;
	uint8_t host_len;
	const uint8_t *host;
	uint16_t port;
	uint8_t sig[PBFT_SIG_LEN];
};

/*
 * <STATUS, v, low, e, i, flags>: replica i is in view v (or changing to it,
 * with PBFT_STATUS_CHANGING), has stable checkpoint low and executed up to
 * e. Sent when it made no progress for a retransmission period, or asked
 * for. Peers answer with what it lacks: their part of a newer stable
 * checkpoint's proof, the NEW-VIEW of a later view, or their messages for
 * the batches after e; with PBFT_STATUS_ASK, also their own STATUS (a
 * replica whose view timer expired asks before it suspects the primary,
 * to learn whether it can reach a quorum at all). Not signed: it proves
 * nothing to third parties, and the channel proves who sent it.
 */
#define PBFT_STATUS_ASK 0x1
#define PBFT_STATUS_CHANGING 0x2
/* back from a crash, it may not vote on the batch after e in view v */
#define PBFT_STATUS_MUTED 0x4
struct pbft_status_msg {
	uint64_t view;
	uint64_t low;
	uint64_t last_exec;
	uint32_t replica;
	uint8_t flags; /* PBFT_STATUS_* */
};

struct pbft_msg {
	enum pbft_msg_type type;
	union {
		struct pbft_hello hello;
		struct pbft_auth auth;
		struct pbft_request request;
		struct pbft_reply reply;
		struct pbft_preprepare preprepare;
		struct pbft_vote prepare;
		struct pbft_vote commit;
		struct pbft_checkpoint checkpoint;
		struct pbft_view_change view_change;
		struct pbft_new_view new_view;
		struct pbft_fetch_batch fetch_batch;
		struct pbft_batch batch;
		struct pbft_fetch_state fetch_state;
		struct pbft_state_chunk state_chunk;
		struct pbft_announce announce;
		struct pbft_status_msg status;
	} u;
};

#endif
