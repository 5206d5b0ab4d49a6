/*
 * fault.c - misbehaviour on command; see fault.h. Only in fault-injection
 * builds. Everything here is the glue lying on the core's behalf: the
 * core itself stays correct and pure.
 */
#include "fault.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "sig.h"
#include "wire.h"

#define REPLAY_SLOTS 256
#define REPLAY_FRAME_MAX (64 * 1024)
#define DELAY_BYTES_MAX (256u << 20)
#define CRASH_AFTER 200 /* WAL groups before a crash point fires */

enum {
	F_SILENT = 1 << 0,
	F_EQUIVOCATE = 1 << 1,
	F_WRONG_KEY = 1 << 2,
	F_WRONG_DIGEST = 1 << 3,
	F_REPLAY = 1 << 4,
	F_GARBAGE = 1 << 5,
	F_DELAY = 1 << 6,
	F_CORRUPT_CHUNKS = 1 << 7,
	F_CRASH_BEFORE_WAL = 1 << 8,
	F_CRASH_AFTER_WAL = 1 << 9,
	F_CRASH_VIEW_CHANGE = 1 << 10,
	F_CRASH_STATE_TRANSFER = 1 << 11,
	F_LYING_TAIL = 1 << 12,
	F_XFER_FIRST = 1 << 13,
	F_FETCH_FLOOD = 1 << 14,
};

#define FLOOD_REQUESTS 100 /* fetch-flood: FETCH_STATEs a tick a peer */
#define FLOOD_CHUNKS 8 /* ... for chunks 0 .. FLOOD_CHUNKS - 1 */

#define LIE_BYTES (256ULL << 20) /* lying-tail: the tail invented */
#define LIE_ENTRY_BYTES (12 + PBFT_OP_BYTES_MAX) /* one invented entry */
/* Where a ledger head (pbft-replica/service.c) keeps its tail's length:
 * after "PBFTSVC2", the count and the chain. */
#define HEAD_JLEN_AT (8 + 8 + PBFT_DIGEST_LEN)

static const struct {
	const char *name;
	unsigned bit;
} names[] = {{"silent", F_SILENT}, {"equivocate", F_EQUIVOCATE},
    {"wrong-key", F_WRONG_KEY}, {"wrong-digest", F_WRONG_DIGEST},
    {"replay", F_REPLAY}, {"garbage", F_GARBAGE}, {"delay", F_DELAY},
    {"corrupt-chunks", F_CORRUPT_CHUNKS},
    {"crash-before-wal", F_CRASH_BEFORE_WAL},
    {"crash-after-wal", F_CRASH_AFTER_WAL},
    {"crash-view-change", F_CRASH_VIEW_CHANGE},
    {"crash-state-transfer", F_CRASH_STATE_TRANSFER},
    {"lying-tail", F_LYING_TAIL}, {"xfer-first", F_XFER_FIRST},
    {"fetch-flood", F_FETCH_FLOOD}};

struct delayed {
	uint64_t due_ms;
	uint32_t to;
	size_t len;
	struct delayed *next;
	uint8_t frame[];
};

struct fault {
	unsigned on;
	uint32_t id, n;
	uint32_t delay_ms;
	uint32_t xfer_first;
	uint8_t *lie; /* lying-tail: a chunk of the lie */
	struct pbft_fetch_state flood; /* fetch-flood: .seq 0 until known */
	char dir[4096];
	void *key, *wrong_key;
	uint64_t rng;
	uint64_t wal_groups;
	struct wbuf enc, sb;
	/* replay ring */
	uint8_t *ring[REPLAY_SLOTS];
	size_t ring_len[REPLAY_SLOTS];
	uint32_t ring_next;
	/* delay queue (FIFO: every frame waits the same time) */
	struct delayed *head, *tail;
	size_t delayed_bytes;
	struct pbft_request reqs[PBFT_BATCH_REQS_MAX];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
rnd(struct fault *f)
{
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return f->rng;
}

struct fault *
fault_new(const char *spec, uint32_t id, uint32_t n, const char *node_dir,
    void *key, bool *bad, char *err, size_t errlen)
{
	char buf[512], *save = NULL;
	unsigned on = 0;
	unsigned long delay = 0, first = UINT32_MAX;
	struct fault *f;
	uint8_t seed[32];

	*bad = false;
	if (strlen(spec) >= sizeof(buf)) {
		*bad = true;
		snprintf(err, errlen, "PBFT_FAULTS too long");
		return NULL;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		char *end, *arg;
		unsigned long who = strtoul(t, &end, 10);
		unsigned bit = 0;

		if (end == t || *end != ':') {
			*bad = true;
			snprintf(err, errlen, "'%s': want ID:NAME", t);
			return NULL;
		}
		if ((arg = strchr(end + 1, '=')) != NULL)
			*arg++ = '\0';
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(end + 1, names[i].name) == 0)
				bit = names[i].bit;
		if (bit == 0 ||
		    ((bit == F_DELAY || bit == F_XFER_FIRST) && arg == NULL)) {
			*bad = true;
			snprintf(err, errlen, "unknown fault '%s'", end + 1);
			return NULL;
		}
		if (who != id)
			continue;
		on |= bit;
		if (bit == F_DELAY)
			delay = strtoul(arg, NULL, 10);
		if (bit == F_XFER_FIRST)
			first = strtoul(arg, NULL, 10);
	}
	if (on == 0 || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->on = on;
	f->id = id;
	f->n = n;
	f->delay_ms = (uint32_t)(delay > 60000 ? 60000 : delay);
	f->xfer_first = first < n ? (uint32_t)first : UINT32_MAX;
	snprintf(f->dir, sizeof(f->dir), "%s", node_dir);
	f->key = key;
	f->rng = now_ms() * 2654435761u + id + 1;
	memset(seed, 0xee, sizeof(seed));
	f->wrong_key = sig_keygen(seed);
	wbuf_init_dynamic(&f->enc, PBFT_FRAME_BYTES_MAX);
	wbuf_init_dynamic(&f->sb, PBFT_FRAME_BYTES_MAX);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (on & names[i].bit)
			log_warnx("FAULT INJECTION: %s", names[i].name);
	return f;
}

void
fault_free(struct fault *f)
{
	if (f == NULL)
		return;
	for (int i = 0; i < REPLAY_SLOTS; i++)
		free(f->ring[i]);
	while (f->head != NULL) {
		struct delayed *d = f->head;

		f->head = d->next;
		free(d);
	}
	sig_key_free(f->wrong_key);
	free(f->lie);
	wbuf_clear(&f->enc);
	wbuf_clear(&f->sb);
	free(f);
}

/* The top-level signature field of msg, or NULL. */
static uint8_t *
sig_of(struct pbft_msg *m)
{
	switch (m->type) {
	case PBFT_MSG_CHECKPOINT:
		return m->u.checkpoint.sig;
	case PBFT_MSG_VIEW_CHANGE:
		return m->u.view_change.sig;
	case PBFT_MSG_NEW_VIEW:
		return m->u.new_view.sig;
	default:
		return NULL;
	}
}

static void
resign(struct fault *f, struct pbft_msg *m, void *key)
{
	uint8_t *sig = sig_of(m);

	if (sig == NULL)
		return;
	wbuf_reset(&f->sb);
	if (wire_signed_bytes(&f->sb, m) == 0)
		(void)sig_sign(key, f->sb.p, f->sb.len, sig);
}

/* Encodes m and sends it (through the delay queue if asked). */
static void
emit(struct fault *f, struct net *net, uint32_t to, const struct pbft_msg *m)
{
	wbuf_reset(&f->enc);
	if (wire_encode(&f->enc, m) == -1)
		return;
	if (f->on & F_REPLAY && f->enc.len <= REPLAY_FRAME_MAX) {
		uint32_t s = f->ring_next++ % REPLAY_SLOTS;
		uint8_t *p = realloc(f->ring[s], f->enc.len);

		if (p != NULL) {
			memcpy(p, f->enc.p, f->enc.len);
			f->ring[s] = p;
			f->ring_len[s] = f->enc.len;
		}
	}
	for (uint32_t i = 0; i < f->n; i++) {
		struct delayed *d;

		if (i == f->id || (to != UINT32_MAX && i != to))
			continue;
		if (!(f->on & F_DELAY)) {
			net_send_raw(net, i, f->enc.p, f->enc.len);
			continue;
		}
		if (f->delayed_bytes + f->enc.len > DELAY_BYTES_MAX ||
		    (d = malloc(sizeof(*d) + f->enc.len)) == NULL)
			continue; /* lost, as on a congested link */
		d->due_ms = now_ms() + f->delay_ms;
		d->to = i;
		d->len = f->enc.len;
		d->next = NULL;
		memcpy(d->frame, f->enc.p, f->enc.len);
		f->delayed_bytes += d->len;
		if (f->tail != NULL)
			f->tail->next = d;
		else
			f->head = d;
		f->tail = d;
	}
}

/* A different, validly signed batch for the same (view, seq). */
static void
equivocate(struct fault *f, struct net *net, const struct pbft_msg *m)
{
	struct pbft_msg alt = *m;
	struct wbuf batch, auth;
	uint32_t count = 0;

	wbuf_init_dynamic(&batch, PBFT_BATCH_BYTES_MAX);
	wbuf_init_dynamic(&auth, WIRE_BATCH_AUTH_BYTES_MAX);
	if (wire_decode_batch(m->u.preprepare.batch, m->u.preprepare.batch_len,
	        f->reqs, PBFT_BATCH_REQS_MAX, &count, &auth) != WIRE_OK)
		count = 0;
	/* Drop the last request; a batch of one becomes an empty one. */
	if (wire_encode_batch(&batch, f->reqs, count > 0 ? count - 1 : 0) ==
	    -1) {
		wbuf_clear(&batch);
		wbuf_clear(&auth);
		return;
	}
	alt.u.preprepare.batch = batch.p;
	alt.u.preprepare.batch_len = (uint32_t)batch.len;
	sig_sha256(batch.p, batch.len, alt.u.preprepare.digest);
	resign(f, &alt, f->key);
	for (uint32_t i = 0; i < f->n; i++) {
		if (i == f->id)
			continue;
		emit(f, net, i, i % 2 ? &alt : m);
	}
	wbuf_clear(&batch);
	wbuf_clear(&auth);
}

bool
fault_send(
    struct fault *f, struct net *net, uint32_t to, const struct pbft_msg *m)
{
	struct pbft_msg copy;

	if (f == NULL)
		return false;
	if (f->on & F_SILENT)
		return true;
	if (m->type == PBFT_MSG_VIEW_CHANGE)
		fault_point(f, FAULT_VIEW_CHANGE);
	if (m->type == PBFT_MSG_CHECKPOINT &&
	    m->u.checkpoint.replica == f->id) {
		f->flood.seq = m->u.checkpoint.seq;
		memcpy(
		    f->flood.digest, m->u.checkpoint.digest, PBFT_DIGEST_LEN);
		f->flood.replica = f->id;
	}
	if (f->on & F_EQUIVOCATE && m->type == PBFT_MSG_PREPREPARE &&
	    to == UINT32_MAX && m->u.preprepare.replica == f->id) {
		equivocate(f, net, m);
		return true;
	}
	copy = *m;
	if (f->on & F_WRONG_DIGEST) {
		uint8_t *d = copy.type == PBFT_MSG_PREPARE
		    ? copy.u.prepare.digest
		    : copy.type == PBFT_MSG_COMMIT ? copy.u.commit.digest
		    : copy.type == PBFT_MSG_CHECKPOINT
		    ? copy.u.checkpoint.digest
		    : NULL;

		if (d != NULL) {
			d[0] ^= 0x55;
			resign(f, &copy, f->key);
		}
	}
	if (f->on & F_WRONG_KEY)
		resign(f, &copy, f->wrong_key);
	if (!(f->on & (F_WRONG_DIGEST | F_WRONG_KEY | F_REPLAY | F_DELAY)))
		return false;
	emit(f, net, to, &copy);
	return true;
}

bool
fault_drop_replies(const struct fault *f)
{
	return f != NULL && (f->on & F_SILENT);
}

bool
fault_corrupt_chunks(const struct fault *f)
{
	return f != NULL && (f->on & F_CORRUPT_CHUNKS);
}

uint32_t
fault_xfer_first(const struct fault *f)
{
	return f != NULL && (f->on & F_XFER_FIRST) ? f->xfer_first : UINT32_MAX;
}

/* Byte o of the invented tail: entries of the right format, indexes from
 * 0 on, every one as long as an operation may be, filled with 0xa5. */
static uint8_t
lie_byte(uint64_t o)
{
	uint64_t k = o / LIE_ENTRY_BYTES, pos = o % LIE_ENTRY_BYTES;

	if (pos < 8)
		return (uint8_t)(k >> (8 * pos));
	if (pos < 12)
		return (
		    uint8_t)((uint64_t)PBFT_OP_BYTES_MAX >> (8 * (pos - 8)));
	return 0xa5;
}

bool
fault_lying_chunk(struct fault *f, struct pbft_state_chunk *c,
    const uint8_t *img, size_t img_len, uint64_t tail_len)
{
	uint64_t jlen = tail_len + LIE_BYTES, total = img_len + jlen;
	uint64_t off = (uint64_t)c->index * PBFT_CHUNK_BYTES_MAX, at;
	size_t n, ct;

	if (f == NULL || !(f->on & F_LYING_TAIL) || off >= total ||
	    img_len < 4 ||
	    (f->lie == NULL && (f->lie = malloc(PBFT_CHUNK_BYTES_MAX)) == NULL))
		return false;
	n = total - off < PBFT_CHUNK_BYTES_MAX ? (size_t)(total - off)
	                                       : PBFT_CHUNK_BYTES_MAX;
	for (size_t i = 0; i < n; i++)
		f->lie[i] = off + i < img_len ? img[off + i]
		                              : lie_byte(off + i - img_len);
	/* The head names the longer tail. */
	ct = (size_t)img[0] | (size_t)img[1] << 8 | (size_t)img[2] << 16 |
	    (size_t)img[3] << 24;
	at = 4 + ct + HEAD_JLEN_AT;
	for (int i = 0; i < 8; i++)
		if (at + (uint64_t)i >= off && at + (uint64_t)i < off + n)
			f->lie[at + (uint64_t)i - off] =
			    (uint8_t)(jlen >> (8 * i));
	c->count = (uint32_t)((total + PBFT_CHUNK_BYTES_MAX - 1) /
	    PBFT_CHUNK_BYTES_MAX);
	c->total_len = total;
	c->data_len = (uint32_t)n;
	c->data = f->lie;
	return true;
}

void
fault_tick(struct fault *f, struct net *net)
{
	uint64_t now;

	if (f == NULL)
		return;
	now = now_ms();
	while (f->head != NULL && f->head->due_ms <= now) {
		struct delayed *d = f->head;

		f->head = d->next;
		if (f->head == NULL)
			f->tail = NULL;
		f->delayed_bytes -= d->len;
		net_send_raw(net, d->to, d->frame, d->len);
		free(d);
	}
	if (f->on & F_REPLAY && f->ring_next > 0) {
		uint32_t have =
		    f->ring_next < REPLAY_SLOTS ? f->ring_next : REPLAY_SLOTS;

		for (int k = 0; k < 20; k++) {
			uint32_t s = (uint32_t)(rnd(f) % have);
			uint32_t to = (uint32_t)(rnd(f) % f->n);

			net_send_raw(net, to, f->ring[s], f->ring_len[s]);
		}
	}
	if (f->on & F_FETCH_FLOOD && f->flood.seq != 0) {
		struct pbft_msg m = {.type = PBFT_MSG_FETCH_STATE};

		m.u.fetch_state = f->flood;
		for (int k = 0; k < FLOOD_REQUESTS; k++) {
			m.u.fetch_state.index = (uint32_t)(k % FLOOD_CHUNKS);
			net_send(net, (f->id + 1) % f->n, &m, true);
		}
	}
	if (f->on & F_GARBAGE) {
		uint8_t junk[256];

		for (int k = 0; k < 50; k++) {
			size_t len = 8 + rnd(f) % (sizeof(junk) - 8);

			for (size_t i = 0; i < len; i++)
				junk[i] = (uint8_t)rnd(f);
			/* Sometimes a plausible header with a lying length. */
			if (k % 2 == 0) {
				junk[0] = (uint8_t)(len - 4);
				junk[1] = junk[2] = junk[3] = 0;
				junk[4] = PBFT_WIRE_VERSION;
			}
			for (uint32_t i = 0; i < f->n; i++)
				net_send_raw(net, i, junk, len);
		}
	}
}

/* Crashes at most once per data directory: a marker file remembers. */
void
fault_point(struct fault *f, enum fault_point p)
{
	static const unsigned bits[] = {F_CRASH_BEFORE_WAL, F_CRASH_AFTER_WAL,
	    F_CRASH_VIEW_CHANGE, F_CRASH_STATE_TRANSFER};
	static const char *what[] = {"crash-before-wal", "crash-after-wal",
	    "crash-view-change", "crash-state-transfer"};
	char marker[4200];
	int fd;

	if (f == NULL)
		return;
	if (p == FAULT_BEFORE_WAL)
		f->wal_groups++;
	if (!(f->on & bits[p]))
		return;
	if (p == FAULT_BEFORE_WAL && f->wal_groups < CRASH_AFTER)
		return;
	if (p == FAULT_AFTER_WAL && f->wal_groups < CRASH_AFTER)
		return;
	snprintf(marker, sizeof(marker), "%s/fault-%s.done", f->dir, what[p]);
	if (access(marker, F_OK) == 0)
		return;
	if ((fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) != -1) {
		fsync(fd);
		close(fd);
	}
	log_warnx("FAULT INJECTION: %s: aborting now", what[p]);
	abort();
}
