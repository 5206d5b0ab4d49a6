/*
 * rsim_check.c - the simulator's checks of what the real driver keeps on
 * its disk and in its memory; see rsim_check.h.
 */
#include "rsim_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"
#include "defaults.h"
#include "log.h"
#include "msg.h"
#include "pbft.h"
#include "replica.h"
#include "rsim.h"
#include "simfs.h"
#include "store.h"
#include "store_int.h"
#include "vfs.h"
#include "wire.h"

/* The core's record kinds (pbft-replica/core/pbft_int.h), first byte of
 * every record: only what the checks read. */
#define REC_VIEW 1 /* u64 view, u8 changing */
#define REC_PP 2 /* a pre-prepare frame */
#define REC_VOTE 3 /* a prepare or commit frame sent */
#define REC_CKPT 4 /* a checkpoint frame sent */
#define REC_STABLE 5 /* u64 seq, ... */
#define REC_VC 6 /* a view-change frame sent */
#define REC_CERT 7 /* u64 view, u64 seq, digest, ...: read as prepared */
#define REC_PREPARED 10 /* u64 view, u64 seq, digest */
#define REC_BOUND 12 /* u64 view, u64 seq */

#define SCRATCH "/rsim-check"

/* EXP_EITHER: the stable checkpoint's snapshot damaged with a later own
 * one on disk, from which the start may go on instead (restore_own in
 * pbft-replica/recover.c); if it does, the damaged one must not be what
 * it serves or runs on, which the checkpoint agreement check would see. */
enum expect { EXP_NONE, EXP_REFUSE, EXP_START, EXP_CUT, EXP_EITHER };

/* The damage done to a replica's disk before it starts again. */
struct damage {
	enum expect expect;
	char path[320];
	uint64_t off;
};

struct rchk {
	uint32_t n;
	char data_dir[256];
	uint64_t seed, every, covered;
	uint8_t *arena;
	size_t arena_len;
	/* the last frame checked, not checked again as the next peer's */
	uint32_t last_from;
	uint64_t last_hash;
	struct damage dmg[PBFT_REPLICAS_MAX];
	uint64_t amnesiac; /* a bit each */
	uint64_t counts[4]; /* rchk_corrupt_counts */
	/* per replica: the checkpoint it fetches, the Byzantine modes it
	 * asked (a bit each) */
	struct {
		uint64_t seq;
		uint32_t modes;
	} xfer[PBFT_REPLICAS_MAX];
	uint64_t xfer_mixed;
	/* retained memory: samples of MEM_METRICS values per replica */
	uint64_t *mem[PBFT_REPLICAS_MAX];
	size_t nmem[PBFT_REPLICAS_MAX], capmem[PBFT_REPLICAS_MAX];
	uint32_t nclients;
};

/* What a frame claims, for the records that must back it. */
struct want {
	uint8_t type;
	uint64_t view, seq;
	uint8_t digest[PBFT_DIGEST_LEN];
};

/* What the durable records say about it. */
struct found {
	const struct want *w;
	struct rchk *c;
	bool own; /* its own record (a VIEW-CHANGE's: of view or later) */
	bool claim; /* a COMMIT: a prepared claim that covers it */
	uint64_t view; /* the last view entry (0: none) */
	bool changing;
	bool bound; /* an early-vote bound */
	uint64_t bound_view, bound_seq;
	uint64_t stable;
};

static uint64_t
mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

struct rchk *
rchk_new(uint32_t n, uint32_t clients, const char *data_dir, uint64_t seed,
    uint32_t every)
{
	struct rchk *c = calloc(1, sizeof(*c));

	if (c == NULL)
		fatalx("out of memory");
	c->n = n;
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", data_dir);
	c->seed = seed;
	c->every = every;
	c->last_from = UINT32_MAX;
	c->nclients = clients;
	return c;
}

void
rchk_free(struct rchk *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < PBFT_REPLICAS_MAX; i++)
		free(c->mem[i]);
	free(c->arena);
	free(c);
}

/* ---- durable before send ------------------------------------------------ */

/* The frame's fields the records are looked up by; false: not covered. */
static bool
want_of(struct rchk *c, const uint8_t *f, size_t len, struct want *w)
{
	struct wire_arena a;
	struct pbft_msg m;

	if (c->arena == NULL) {
		c->arena_len = wire_arena_bytes_for(PBFT_FRAME_BYTES_MAX);
		if ((c->arena = malloc(c->arena_len)) == NULL)
			fatalx("out of memory");
	}
	if (w == NULL)
		return false; /* only the arena wanted */
	wire_arena_init(&a, c->arena, c->arena_len);
	if (wire_decode(f, len, &m, &a) != WIRE_OK)
		return false;
	memset(w, 0, sizeof(*w));
	w->type = (uint8_t)m.type;
	switch (m.type) {
	case PBFT_MSG_PREPREPARE:
		w->view = m.u.preprepare.view;
		w->seq = m.u.preprepare.seq;
		memcpy(w->digest, m.u.preprepare.digest, PBFT_DIGEST_LEN);
		return true;
	case PBFT_MSG_PREPARE:
	case PBFT_MSG_COMMIT:
		w->view = m.u.prepare.view;
		w->seq = m.u.prepare.seq;
		memcpy(w->digest, m.u.prepare.digest, PBFT_DIGEST_LEN);
		return true;
	case PBFT_MSG_CHECKPOINT:
		w->seq = m.u.checkpoint.seq;
		memcpy(w->digest, m.u.checkpoint.digest, PBFT_DIGEST_LEN);
		return true;
	case PBFT_MSG_VIEW_CHANGE:
		w->view = m.u.view_change.view;
		return true;
	case PBFT_MSG_NEW_VIEW:
		w->view = m.u.new_view.view;
		return true;
	default:
		return false;
	}
}

/* A frame record (REC_PP, _VOTE, _CKPT, _VC): whether it is the wanted
 * frame's own (a VIEW-CHANGE: to its view or a later one). */
static bool
frame_rec_matches(struct found *fd, const uint8_t *f, size_t len)
{
	const struct want *w = fd->w;
	struct wire_arena a;
	struct pbft_msg m;

	wire_arena_init(&a, fd->c->arena, fd->c->arena_len);
	if (wire_decode(f, len, &m, &a) != WIRE_OK || m.type != w->type)
		return false;
	switch (m.type) {
	case PBFT_MSG_PREPREPARE:
		return m.u.preprepare.view == w->view &&
		    m.u.preprepare.seq == w->seq &&
		    memcmp(m.u.preprepare.digest, w->digest, PBFT_DIGEST_LEN) ==
		    0;
	case PBFT_MSG_PREPARE:
	case PBFT_MSG_COMMIT:
		return m.u.prepare.view == w->view &&
		    m.u.prepare.seq == w->seq &&
		    memcmp(m.u.prepare.digest, w->digest, PBFT_DIGEST_LEN) == 0;
	case PBFT_MSG_CHECKPOINT:
		return m.u.checkpoint.seq == w->seq &&
		    memcmp(m.u.checkpoint.digest, w->digest, PBFT_DIGEST_LEN) ==
		    0;
	case PBFT_MSG_VIEW_CHANGE:
		return m.u.view_change.view >= w->view;
	default:
		return false;
	}
}

/* The record kind that holds a frame of this type. */
static int
rec_kind_of(uint8_t type)
{
	switch (type) {
	case PBFT_MSG_PREPREPARE:
		return REC_PP;
	case PBFT_MSG_PREPARE:
	case PBFT_MSG_COMMIT:
		return REC_VOTE;
	case PBFT_MSG_CHECKPOINT:
		return REC_CKPT;
	case PBFT_MSG_VIEW_CHANGE:
		return REC_VC;
	default:
		return -1;
	}
}

/* store_replay's callback: one durable record. */
static int
on_record(void *arg, const uint8_t *rec, size_t len)
{
	struct found *fd = arg;
	const struct want *w = fd->w;
	uint8_t kind = rec[0];

	if (kind == REC_VIEW && len >= 10) {
		fd->view = le64(rec + 1);
		fd->changing = rec[9] != 0;
	} else if (kind == REC_STABLE && len >= 9) {
		if (le64(rec + 1) > fd->stable)
			fd->stable = le64(rec + 1);
	} else if (kind == REC_BOUND && len >= 17) {
		fd->bound = true;
		fd->bound_view = le64(rec + 1);
		fd->bound_seq = le64(rec + 9);
	} else if ((kind == REC_PREPARED || kind == REC_CERT) &&
	    len >= 17 + PBFT_DIGEST_LEN && w->type == PBFT_MSG_COMMIT) {
		uint64_t v = le64(rec + 1);

		if (le64(rec + 9) == w->seq &&
		    (v > w->view ||
		        (v == w->view &&
		            memcmp(rec + 17, w->digest, PBFT_DIGEST_LEN) == 0)))
			fd->claim = true;
	} else if (kind == rec_kind_of(w->type) && !fd->own) {
		fd->own = frame_rec_matches(fd, rec + 1, len - 1);
	}
	return 0;
}

/* Entered view v (not only changing to it), or a later one. */
static bool
in_view(const struct found *fd, uint64_t v)
{
	return fd->view > v || (fd->view == v && (!fd->changing || v == 0));
}

/* Whether what the records say backs the frame; else why not. */
static bool
backed(const struct found *fd, char *why, size_t whylen)
{
	const struct want *w = fd->w;
	bool early_ok = in_view(fd, w->view) && fd->bound &&
	    fd->bound_view == w->view && fd->bound_seq >= w->seq;

	switch (w->type) {
	case PBFT_MSG_COMMIT:
		if (fd->claim || fd->own || fd->stable >= w->seq)
			return true;
		snprintf(why, whylen, "its prepared claim");
		return false;
	case PBFT_MSG_PREPREPARE:
	case PBFT_MSG_PREPARE:
		if (fd->own || fd->stable >= w->seq || early_ok ||
		    fd->view > w->view)
			return true;
		snprintf(why, whylen,
		    "view %llu's entry and an early-vote bound covering it "
		    "(durable: view %llu%s, bound %s%llu in view %llu)",
		    (unsigned long long)w->view, (unsigned long long)fd->view,
		    fd->changing ? " changing" : "", fd->bound ? "" : "none ",
		    (unsigned long long)fd->bound_seq,
		    (unsigned long long)fd->bound_view);
		return false;
	case PBFT_MSG_CHECKPOINT:
		if (fd->own || fd->stable >= w->seq)
			return true;
		snprintf(why, whylen, "its own checkpoint record");
		return false;
	case PBFT_MSG_VIEW_CHANGE:
		/* A retransmission released after the replica entered the
		 * view: the entry stands for the record (compaction drops
		 * it). */
		if (fd->own || in_view(fd, w->view))
			return true;
		snprintf(why, whylen, "its view-change record");
		return false;
	default: /* PBFT_MSG_NEW_VIEW */
		if (in_view(fd, w->view))
			return true;
		snprintf(why, whylen, "the entry into the view");
		return false;
	}
}

/*
 * Replays node id's durable image (a copy: the node's own files are not
 * touched) into fd. 0, or -1 with why set when it does not open or replay.
 */
static int
replay_durable(
    struct rchk *c, uint32_t id, struct found *fd, char *why, size_t whylen)
{
	char src[300], dst[300], err[256];
	struct store *st;
	int rc = -1;

	snprintf(src, sizeof(src), "%s/node-%u", c->data_dir, id);
	snprintf(dst, sizeof(dst), SCRATCH "/node-%u", id);
	if (vfs_mkdir(SCRATCH, 0700) == -1 ||
	    simfs_copy_durable(src, dst, "log.") == -1) {
		snprintf(why, whylen, "cannot copy its durable image");
		goto out;
	}
	st = store_open(SCRATCH, id, CFG_FSYNC_ALWAYS, err, sizeof(err));
	if (st == NULL) {
		snprintf(
		    why, whylen, "its durable log does not open: %.120s", err);
		goto out;
	}
	if (store_replay(st, on_record, fd, err, sizeof(err)) == -1)
		snprintf(why, whylen, "its durable log does not replay: %.120s",
		    err);
	else
		rc = 0;
	store_abandon(st);
out:
	simfs_remove(SCRATCH);
	return rc;
}

/*
 * The frames chosen, by the seed: every VIEW-CHANGE and NEW-VIEW (a few a
 * run), a CHECKPOINT in about every / 4, a PRE-PREPARE, PREPARE or COMMIT
 * in about every (hundreds a run). A broadcast is checked once.
 */
static bool
sampled(struct rchk *c, uint32_t from, const uint8_t *f, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL, every = c->every;

	if (c->every == 0 || len < WIRE_HDR_LEN)
		return false;
	switch (f[5]) {
	case PBFT_MSG_PREPREPARE:
	case PBFT_MSG_PREPARE:
	case PBFT_MSG_COMMIT:
		break;
	case PBFT_MSG_CHECKPOINT:
		every = every >= 4 ? every / 4 : 1;
		break;
	case PBFT_MSG_VIEW_CHANGE:
	case PBFT_MSG_NEW_VIEW:
		every = 1;
		break;
	default:
		return false;
	}
	for (size_t i = 0; i < len && i < 64; i++)
		h = (h ^ f[i]) * 0x100000001b3ULL;
	if (from == c->last_from && h == c->last_hash)
		return false; /* the same broadcast to the next peer */
	c->last_from = from;
	c->last_hash = h;
	return mix(c->seed ^ c->covered++) % every == 0;
}

/* A FETCH_STATE to a Byzantine replica of mode to_mode (RSIM_BYZ_COUNT:
 * a correct one stalled). */
static void
note_fetch(
    struct rchk *c, uint32_t from, int to_mode, const uint8_t *f, size_t len)
{
	struct wire_arena a;
	struct pbft_msg m;
	uint32_t lie = 1u << RSIM_BYZ_LIE_STATE;
	uint32_t mute = 1u << RSIM_BYZ_SILENT | 1u << RSIM_BYZ_COUNT;

	if (to_mode < 0 || to_mode > RSIM_BYZ_COUNT || len < WIRE_HDR_LEN ||
	    f[5] != PBFT_MSG_FETCH_STATE || from >= PBFT_REPLICAS_MAX)
		return; /* deaf (RSIM_BYZ_DEAF) is neither a liar nor mute */
	want_of(c, f, 0, NULL); /* the arena */
	wire_arena_init(&a, c->arena, c->arena_len);
	if (wire_decode(f, len, &m, &a) != WIRE_OK)
		return;
	if (c->xfer[from].seq != m.u.fetch_state.seq) {
		c->xfer[from].seq = m.u.fetch_state.seq;
		c->xfer[from].modes = 0;
	}
	if ((c->xfer[from].modes & lie) && (c->xfer[from].modes & mute))
		return; /* counted */
	c->xfer[from].modes |= 1u << to_mode;
	if ((c->xfer[from].modes & lie) && (c->xfer[from].modes & mute))
		c->xfer_mixed++;
}

int
rchk_reply_to(struct rchk *c, uint32_t from, uint32_t to, const uint8_t *frame,
    size_t len, char *why, size_t whylen)
{
	struct wire_arena a;
	struct pbft_msg m;

	if (len < WIRE_HDR_LEN || frame[5] != PBFT_MSG_REPLY)
		return 0;
	want_of(c, frame, 0, NULL); /* the arena */
	wire_arena_init(&a, c->arena, c->arena_len);
	if (wire_decode(frame, len, &m, &a) != WIRE_OK ||
	    m.u.reply.client == to)
		return 0;
	snprintf(why, whylen,
	    "replica %u sent client %u a reply to client %u (ts %llu)", from,
	    to, m.u.reply.client, (unsigned long long)m.u.reply.timestamp);
	return -1;
}

uint64_t
rchk_xfer_mixed(const struct rchk *c)
{
	return c->xfer_mixed;
}

int
rchk_frame_out(struct rchk *c, uint32_t from, int to_mode, const uint8_t *frame,
    size_t len, char *why, size_t whylen)
{
	struct want w;
	struct found fd = {.w = &w, .c = c};
	char what[200];

	note_fetch(c, from, to_mode, frame, len);
	if (!sampled(c, from, frame, len) || !want_of(c, frame, len, &w))
		return 0;
	if (replay_durable(c, from, &fd, what, sizeof(what)) == -1) {
		snprintf(why, whylen,
		    "replica %u sent %s (view %llu, seq %llu): %s", from,
		    wire_type_name(w.type), (unsigned long long)w.view,
		    (unsigned long long)w.seq, what);
		return -1;
	}
	if (!backed(&fd, what, sizeof(what))) {
		snprintf(why, whylen,
		    "replica %u sent %s (view %llu, seq %llu) before %s was "
		    "durable",
		    from, wire_type_name(w.type), (unsigned long long)w.view,
		    (unsigned long long)w.seq, what);
		return -1;
	}
	return 0;
}

/* ---- disk damage -------------------------------------------------------- */

/* What the store replays from a node's durable log. */
struct log_sum {
	bool ok;
	char err[200];
	int live;
	uint64_t nrec, hash, stable, synced_last, end, base;
};

static int
on_sum_record(void *arg, const uint8_t *rec, size_t len)
{
	struct log_sum *ls = arg;
	const uint8_t *hdr = rec - REC_HDR_LEN; /* store.h: the record's */

	ls->nrec++;
	ls->hash = mix(ls->hash ^ len);
	for (size_t i = 0; i < len; i++)
		ls->hash = (ls->hash ^ rec[i]) * 0x100000001b3ULL;
	ls->synced_last = le64(hdr + 8);
	if (rec[0] == REC_STABLE && len >= 9 && le64(rec + 1) > ls->stable)
		ls->stable = le64(rec + 1);
	return 0;
}

/* Replays a copy of node id's durable log into ls. */
static void
log_summary(struct rchk *c, uint32_t id, struct log_sum *ls)
{
	char src[300], dst[300];
	struct store *st;

	memset(ls, 0, sizeof(*ls));
	snprintf(src, sizeof(src), "%s/node-%u", c->data_dir, id);
	snprintf(dst, sizeof(dst), SCRATCH "/node-%u", id);
	if (vfs_mkdir(SCRATCH, 0700) == -1 ||
	    simfs_copy_durable(src, dst, "log.") == -1) {
		snprintf(ls->err, sizeof(ls->err), "cannot copy");
		goto out;
	}
	st =
	    store_open(SCRATCH, id, CFG_FSYNC_ALWAYS, ls->err, sizeof(ls->err));
	if (st == NULL)
		goto out;
	if (store_replay(st, on_sum_record, ls, ls->err, sizeof(ls->err)) ==
	    0) {
		ls->ok = true;
		ls->live = st->live;
		ls->end = st->wal_off;
		ls->base = st->base;
	}
	store_abandon(st);
out:
	simfs_remove(SCRATCH);
}

struct pick {
	char names[16][64];
	uint32_t n;
};

static void
on_name(void *arg, const char *name)
{
	struct pick *p = arg;

	if (p->n < 16 && strlen(name) < sizeof(p->names[0]) &&
	    (strncmp(name, "log.", 4) == 0 ||
	        strncmp(name, "snapshot-", 9) == 0 ||
	        strcmp(name, "ledger") == 0))
		snprintf(p->names[p->n++], sizeof(p->names[0]), "%s", name);
}

/* Whether names holds the snapshot of a checkpoint after seq. */
static bool
later_snapshot(const struct pick *pk, uint64_t seq)
{
	unsigned long long s;

	for (uint32_t i = 0; i < pk->n; i++)
		if (sscanf(pk->names[i], "snapshot-%llu", &s) == 1 && s > seq)
			return true;
	return false;
}

/* The byte of the live log at off, moved out of the last flush's records
 * (whose damage looks like a torn write): 0 .. where they start. */
static uint64_t
off_in_log(const struct log_sum *ls, uint64_t off)
{
	uint64_t tail = ls->synced_last > ls->base ? ls->synced_last : ls->base;

	if (ls->nrec == 0 || off < tail || off >= ls->end)
		return off;
	return off % tail;
}

/* What the start must do now that log file name is damaged. */
static int
log_expect(struct rchk *c, uint32_t id, const struct log_sum *before,
    struct damage *d, char *why, size_t whylen)
{
	struct log_sum after;

	log_summary(c, id, &after);
	if (!after.ok) {
		d->expect = EXP_REFUSE;
		return 0;
	}
	if (after.nrec == before->nrec && after.hash == before->hash) {
		d->expect = EXP_START;
		return 0;
	}
	snprintf(why, whylen,
	    "replica %u's log replays %llu records, %llu before the byte at "
	    "%llu of %s was damaged: not noticed",
	    id, (unsigned long long)after.nrec,
	    (unsigned long long)before->nrec, (unsigned long long)d->off,
	    d->path);
	return -1;
}

int
rchk_corrupt(
    struct rchk *c, uint32_t id, uint64_t rnd, char *why, size_t whylen)
{
	struct damage *d = &c->dmg[id];
	struct log_sum before;
	struct pick pk = {.n = 0};
	char dir[300];
	const char *name;
	struct stat sb;
	uint64_t seq;

	d->expect = EXP_NONE;
	snprintf(dir, sizeof(dir), "%s/node-%u", c->data_dir, id);
	log_summary(c, id, &before);
	if (!before.ok || vfs_list(dir, on_name, &pk) == -1 || pk.n == 0)
		return 0;
	name = pk.names[rnd % pk.n];
	snprintf(d->path, sizeof(d->path), "%s/%s", dir, name);
	if (vfs_stat(d->path, &sb) == -1 || sb.st_size == 0)
		return 0;
	d->off = mix(rnd) % (uint64_t)sb.st_size;
	if (strncmp(name, "log.", 4) == 0 && name[4] - '0' == before.live)
		d->off = off_in_log(&before, d->off);
	if (simfs_corrupt(d->path, d->off) == -1)
		return 0;
	c->counts[0]++;
	if (strncmp(name, "log.", 4) == 0)
		return log_expect(c, id, &before, d, why, whylen);
	if (strcmp(name, "ledger") == 0)
		d->expect = EXP_CUT;
	else if (sscanf(name, "snapshot-%llu", (unsigned long long *)&seq) ==
	        1 &&
	    seq == before.stable)
		d->expect = later_snapshot(&pk, seq) ? EXP_EITHER : EXP_REFUSE;
	else
		d->expect = EXP_START;
	return 1;
}

int
rchk_refused(
    struct rchk *c, uint32_t id, const char *err, char *why, size_t whylen)
{
	struct damage *d = &c->dmg[id];
	enum expect e = d->expect;

	d->expect = EXP_NONE;
	if (e == EXP_NONE)
		return 0;
	if (e != EXP_REFUSE && e != EXP_EITHER) {
		snprintf(why, whylen,
		    "replica %u refuses to start over the byte at %llu of %s, "
		    "which does not matter: %.200s",
		    id, (unsigned long long)d->off, d->path, err);
		return -1;
	}
	c->counts[1]++;
	c->amnesiac |= 1ULL << id;
	return 1;
}

int
rchk_started(struct rchk *c, uint32_t id, char *why, size_t whylen)
{
	struct damage *d = &c->dmg[id];
	enum expect e = d->expect;
	struct stat sb;

	d->expect = EXP_NONE;
	if (e == EXP_START || e == EXP_EITHER)
		c->counts[2]++;
	if (e == EXP_REFUSE) {
		snprintf(why, whylen,
		    "replica %u started on a damaged %s (the byte at %llu) "
		    "without noticing",
		    id, d->path, (unsigned long long)d->off);
		return -1;
	}
	if (e != EXP_CUT)
		return 0;
	if (vfs_stat(d->path, &sb) == 0 && (uint64_t)sb.st_size > d->off) {
		snprintf(why, whylen,
		    "replica %u started with the damaged byte at %llu of its "
		    "journal %s in what it keeps",
		    id, (unsigned long long)d->off, d->path);
		return -1;
	}
	c->counts[3]++;
	return 0;
}

bool
rchk_amnesiac(const struct rchk *c, uint32_t id)
{
	return (c->amnesiac >> id & 1) != 0;
}

uint32_t
rchk_amnesiacs(const struct rchk *c)
{
	return (uint32_t)__builtin_popcountll(c->amnesiac);
}

void
rchk_corrupt_counts(const struct rchk *c, uint64_t out[4])
{
	memcpy(out, c->counts, sizeof(c->counts));
}

/* ---- retained memory ---------------------------------------------------- */

enum {
	M_LOG, /* the live log's bytes since its compaction */
	M_STORE, /* the store's buffers: records pending, a compaction's */
	M_HELD, /* frames held for the log */
	M_QBYTES, /* the primary's queued request bytes */
	M_QREQS,
	M_PENDING, /* a backup's requests waiting */
	M_REPLIES, /* reply slots */
	M_SNAPS, /* checkpoint images held */
	M_SNAP_BYTES,
	M_XFER, /* a transfer's image head */
	M_ACTIONS,
	MEM_METRICS,
};

static const char *const mem_names[MEM_METRICS] = {"log bytes", "store buffers",
    "held frames", "queued bytes", "queued requests", "pending requests",
    "reply slots", "checkpoint images", "checkpoint image bytes",
    "transfer bytes", "action list bytes"};

/* Growth allowed beyond twice the first half's mean: bytes, or a count. */
static uint64_t
mem_margin(int k)
{
	return k == M_HELD || k == M_QREQS || k == M_PENDING ||
	        k == M_REPLIES || k == M_SNAPS
	    ? 16
	    : 64 * 1024;
}

static void
mem_take(struct rchk *c, uint32_t id, struct replica *r, size_t held,
    uint64_t v[MEM_METRICS])
{
	struct store *st = replica_store(r);
	struct store_stats ss;
	struct replica_mem rm;

	replica_mem_stats(r, &rm);
	store_get_stats(st, &ss);
	v[M_LOG] = ss.bytes;
	v[M_STORE] = st->pending.cap + st->cpt_recs.cap + st->cpt_tail.cap +
	    st->cpt_held.cap;
	v[M_HELD] = held;
	v[M_QBYTES] = rm.core_queued_bytes;
	v[M_QREQS] = rm.core_queued_reqs;
	v[M_PENDING] = rm.core_pending_reqs;
	v[M_REPLIES] = rm.reply_slots;
	v[M_SNAPS] = rm.snaps;
	v[M_SNAP_BYTES] = rm.snap_bytes;
	v[M_XFER] = rm.xfer_bytes;
	v[M_ACTIONS] = rm.actions;
	if (c->nmem[id] == c->capmem[id]) {
		c->capmem[id] = c->capmem[id] ? 2 * c->capmem[id] : 64;
		c->mem[id] = realloc(
		    c->mem[id], c->capmem[id] * MEM_METRICS * sizeof(uint64_t));
		if (c->mem[id] == NULL)
			fatalx("out of memory");
	}
	memcpy(c->mem[id] + c->nmem[id]++ * MEM_METRICS, v,
	    MEM_METRICS * sizeof(uint64_t));
}

/*
 * The bounds by design: one reply slot and one waiting request a client;
 * SNAPS_MAX (pbft-replica/replica_int.h: 4) checkpoint images; the
 * primary's queue within the core's limits (pbft_config_default, the
 * queue bytes as the simulator configures them: the default).
 */
static int
mem_bounds(const struct rchk *c, uint32_t id, const uint64_t v[MEM_METRICS],
    char *why, size_t whylen)
{
	struct pbft_config pc;
	uint64_t bound[MEM_METRICS];

	pbft_config_default(&pc, c->n, id, c->nclients);
	for (int k = 0; k < MEM_METRICS; k++)
		bound[k] = UINT64_MAX;
	bound[M_REPLIES] = c->nclients;
	bound[M_PENDING] = c->nclients;
	bound[M_SNAPS] = 4;
	bound[M_QREQS] = pc.queue_reqs_max;
	bound[M_QBYTES] = PBFT_DEFAULT_QUEUE_BYTES;
	for (int k = 0; k < MEM_METRICS; k++)
		if (v[k] > bound[k]) {
			snprintf(why, whylen,
			    "replica %u holds %llu %s (at most %llu)", id,
			    (unsigned long long)v[k], mem_names[k],
			    (unsigned long long)bound[k]);
			return -1;
		}
	return 0;
}

int
rchk_mem(struct rchk *c, uint32_t id, struct replica *r, size_t held,
    const uint8_t *frame, size_t len, char *why, size_t whylen)
{
	uint64_t v[MEM_METRICS];

	if (r == NULL || len < WIRE_HDR_LEN ||
	    frame[5] != PBFT_MSG_CHECKPOINT || id >= PBFT_REPLICAS_MAX)
		return 0;
	mem_take(c, id, r, held, v);
	return mem_bounds(c, id, v, why, whylen);
}

/* The largest value of metric k among samples [a, b) of replica id. */
static uint64_t
mem_max(const struct rchk *c, uint32_t id, int k, size_t a, size_t b)
{
	uint64_t m = 0;

	for (size_t i = a; i < b; i++)
		if (c->mem[id][i * MEM_METRICS + k] > m)
			m = c->mem[id][i * MEM_METRICS + k];
	return m;
}

/* Their mean. */
static uint64_t
mem_mean(const struct rchk *c, uint32_t id, int k, size_t a, size_t b)
{
	uint64_t sum = 0;

	for (size_t i = a; i < b; i++)
		sum += c->mem[id][i * MEM_METRICS + k];
	return b > a ? sum / (b - a) : 0;
}

/*
 * What grows in proportion to the run has a mean over the second half of
 * the samples three times the first half's: twice (and a margin) is
 * caught; bursts (a slow disk, a view change) move the means little.
 */
int
rchk_mem_end(struct rchk *c, char *why, size_t whylen)
{
	for (uint32_t id = 0; id < c->n; id++) {
		size_t half = c->nmem[id] / 2;

		if (c->nmem[id] < 20)
			continue; /* too few checkpoints to tell */
		for (int k = 0; k < MEM_METRICS; k++) {
			uint64_t m1 = mem_mean(c, id, k, 0, half);
			uint64_t m2 = mem_mean(c, id, k, half, c->nmem[id]);

			if (m2 <= 2 * m1 + mem_margin(k))
				continue;
			snprintf(why, whylen,
			    "replica %u's %s grow with the run: %llu on "
			    "average over its first %zu checkpoints, %llu "
			    "over the next %zu",
			    id, mem_names[k], (unsigned long long)m1, half,
			    (unsigned long long)m2, c->nmem[id] - half);
			return -1;
		}
	}
	return 0;
}

void
rchk_mem_print(const struct rchk *c)
{
	size_t samples = 0;

	for (uint32_t id = 0; id < c->n; id++)
		samples += c->nmem[id];
	printf("retained memory, largest of %zu samples:", samples);
	for (int k = 0; k < MEM_METRICS; k++) {
		uint64_t m = 0;

		for (uint32_t id = 0; id < c->n; id++) {
			uint64_t x = mem_max(c, id, k, 0, c->nmem[id]);

			m = x > m ? x : m;
		}
		printf("%s %s %llu", k ? "," : "", mem_names[k],
		    (unsigned long long)m);
	}
	printf("\n");
}
