/*
 * recover.c - recovery on start: the log's records replayed into the core,
 * then the state restored from the snapshot of the stable checkpoint the
 * log names or of a newer own one (or fetched from the other replicas, when
 * that snapshot is missing or the service's file lost what it names), and
 * the start's record made durable before anything is sent; and the record
 * of a clean stop.
 */
#include <stdio.h>

#include "log.h"
#include "replica_int.h"

int
recover_record(void *arg, const uint8_t *rec, size_t len)
{
	struct replica *r = arg;

	return pbft_recover(r->core, rec, len);
}

/*
 * Start over from the certified state of the log's stable checkpoint: the
 * service goes back to empty until the fetched state is installed.
 */
static void
fetch_on_start(struct replica *r, const char *why)
{
	struct pbft_action a = {.type = PBFT_ACT_FETCH_STATE};
	uint64_t tail_len;

	if (r->svc->ops->reopen != NULL)
		(void)r->svc->ops->reopen(r->svc, NULL, 0, &tail_len);
	a.seq = pbft_recover_awaiting_state(r->core, a.digest);
	log_warnx("the log names checkpoint %llu but %s: fetching it from the "
	          "other replicas",
	    (unsigned long long)a.seq, why);
	r->fetch_on_start = a;
}

/* The service in the state of a snapshot image's part of it. 0 or -1. */
static int
restore_service(
    struct replica *r, const uint8_t *svc, size_t len, uint64_t *tail_len)
{
	const struct service_ops *ops = r->svc->ops;

	*tail_len = 0;
	return ops->reopen != NULL ? ops->reopen(r->svc, svc, len, tail_len)
	                           : ops->restore(r->svc, svc, len);
}

/*
 * The state of own checkpoint seq from its snapshot, if the snapshot is on
 * disk and holds the state the core signed; into snaps[0]. 0 or -1 (the
 * service may then be in another state: the caller restores it).
 */
static int
restore_own_one(struct replica *r, uint64_t seq)
{
	struct wbuf img;
	const uint8_t *ct, *rp, *svc;
	size_t ctlen, rplen, svclen;
	uint64_t tail_len;
	uint8_t sd[PBFT_DIGEST_LEN], digest[PBFT_DIGEST_LEN];
	char err[256];

	wbuf_init_dynamic(&img, STATE_HEAD_BYTES_MAX);
	if (store_snapshot_read(r->store, seq, &img, err, sizeof(err)) != 0 ||
	    image_split(img.p, img.len, &ct, &ctlen, &rp, &rplen, &svc,
	        &svclen) == -1 ||
	    replies_load(r->replies, r->cfg->nclients, rp, rplen, false) ==
	        -1 ||
	    restore_service(r, svc, svclen, &tail_len) == -1)
		goto fail;
	r->svc->ops->digest(r->svc, sd);
	replies_fold(r->crypto, sd, rp, rplen, digest);
	if (pbft_recover_own_state(r->core, seq, digest, ct, ctlen) == -1)
		goto fail;
	(void)replies_load(r->replies, r->cfg->nclients, rp, rplen, true);
	store_snapshot_on_disk(r->store, seq);
	log_info("restored the state of checkpoint %llu, our own above the "
	         "stable one (%zu bytes of snapshot, %llu of the service's "
	         "file)",
	    (unsigned long long)seq, img.len, (unsigned long long)tail_len);
	r->snaps[0].seq = seq;
	wbuf_clear(&r->snaps[0].img);
	r->snaps[0].img = img;
	r->snaps[0].tail_len = tail_len;
	return 0;
fail:
	wbuf_clear(&img);
	return -1;
}

/*
 * A replica that announced a checkpoint serves its state after a crash
 * too: the certificate of a checkpoint may hold only f+1 correct
 * replicas, and if all of them fell back to an older state at a restart
 * the certified one would be left with the faulty ones. So at a start the
 * state is that of the newest own checkpoint above the stable one whose
 * snapshot was durable (the log names it, the core checks its digest);
 * the service is back at the stable checkpoint's state otherwise. 1 if
 * restored there, 0 if not (the service as it was opened).
 */
static int
restore_own(struct replica *r)
{
	const struct service_ops *ops = r->svc->ops;
	uint64_t seqs[SNAPS_MAX];
	size_t n = pbft_recover_own_checkpoints(r->core, seqs, SNAPS_MAX);
	struct wbuf fresh;
	int rc = 0;

	if (n == 0)
		return 0;
	wbuf_init_dynamic(&fresh, STATE_HEAD_BYTES_MAX);
	if (ops->reopen == NULL && ops->snapshot(r->svc, &fresh) == -1)
		fatalx("cannot snapshot the service");
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = restore_own_one(r, seqs[i]) == 0;
	if (rc == 0 && ops->reopen == NULL &&
	    ops->restore(r->svc, fresh.p, fresh.len) == -1)
		fatalx("cannot restore the service's state");
	wbuf_clear(&fresh);
	return rc;
}

/* Keeps the snapshot of stable checkpoint seq to serve, when the state is
 * that of a later own checkpoint (whose tail extends its tail). */
static void
keep_stable_snapshot(struct replica *r, uint64_t seq)
{
	struct snap *s = snap_slot(r);
	const uint8_t *ct, *rp, *svc;
	size_t ctlen, rplen, svclen;
	char err[256] = "";

	if (seq == 0)
		return;
	store_snapshots_prune(r->store, seq);
	if (s->seq != 0)
		return;
	if (store_snapshot_read(r->store, seq, &s->img, err, sizeof(err)) !=
	        0 ||
	    image_split(s->img.p, s->img.len, &ct, &ctlen, &rp, &rplen, &svc,
	        &svclen) == -1 ||
	    r->svc->ops->head_tail(svc, svclen, &s->tail_len) != 0) {
		log_warn("the snapshot of stable checkpoint %llu is not usable "
		         "(%s): its state is not served to others until the "
		         "next stable checkpoint",
		    (unsigned long long)seq,
		    err[0] != '\0' ? err : "bad image");
		wbuf_reset(&s->img);
		return;
	}
	s->seq = seq;
}

/*
 * After the log replay: restore the service from the snapshot of the stable
 * checkpoint the log names, and give the core its client table.
 */
int
restore_snapshot(struct replica *r, char *err, size_t errlen)
{
	const struct service_ops *ops = r->svc->ops;
	struct pbft_status st;
	struct wbuf img;
	const uint8_t *ct, *rp, *svc;
	size_t ctlen, rplen, svclen;
	uint64_t tail_len = 0;
	int rc;

	pbft_get_status(r->core, &st);
	if (restore_own(r) == 1) {
		keep_stable_snapshot(r, st.stable_checkpoint);
		return 0;
	}
	if (st.stable_checkpoint == 0) {
		if (ops->reopen != NULL &&
		    ops->reopen(r->svc, NULL, 0, &tail_len) == -1) {
			snprintf(err, errlen,
			    "%s: cannot reset the service's file",
			    store_dir(r->store));
			return -1;
		}
		return 0;
	}
	wbuf_init_dynamic(&img, STATE_HEAD_BYTES_MAX);
	rc = store_snapshot_read(
	    r->store, st.stable_checkpoint, &img, err, errlen);
	if (rc == 1) {
		/* Crashed while fetching that state: fetch it again. The
		 * log only names checkpoints that 2f+1 replicas certified. */
		wbuf_clear(&img);
		store_snapshots_prune(r->store, st.stable_checkpoint);
		fetch_on_start(r,
		    "its snapshot is missing (a state transfer "
		    "was cut short)");
		return 0;
	}
	if (rc != 0 ||
	    image_split(img.p, img.len, &ct, &ctlen, &rp, &rplen, &svc,
	        &svclen) == -1 ||
	    replies_load(r->replies, r->cfg->nclients, rp, rplen, false) ==
	        -1) {
		if (rc == 0)
			snprintf(err, errlen, "%s: snapshot %llu is malformed",
			    store_dir(r->store),
			    (unsigned long long)st.stable_checkpoint);
		wbuf_clear(&img);
		return -1;
	}
	if (ops->reopen != NULL &&
	    ops->reopen(r->svc, svc, svclen, &tail_len) == -1) {
		/* The service's file lost what the snapshot names (e.g. the
		 * disk lost unsynced data, or someone removed the file). */
		wbuf_clear(&img);
		fetch_on_start(r,
		    "the service's file does not hold the state "
		    "its snapshot names");
		return 0;
	}
	if ((ops->reopen == NULL && ops->restore(r->svc, svc, svclen) == -1) ||
	    pbft_recover_state(r->core, st.stable_checkpoint, ct, ctlen) ==
	        -1) {
		snprintf(err, errlen, "%s: snapshot %llu is malformed",
		    store_dir(r->store),
		    (unsigned long long)st.stable_checkpoint);
		wbuf_clear(&img);
		return -1;
	}
	(void)replies_load(r->replies, r->cfg->nclients, rp, rplen, true);
	store_snapshots_prune(r->store, st.stable_checkpoint);
	log_info("restored the state of checkpoint %llu (%zu bytes of "
	         "snapshot, %llu of the service's file)",
	    (unsigned long long)st.stable_checkpoint, img.len,
	    (unsigned long long)tail_len);
	r->snaps[0].seq = st.stable_checkpoint;
	wbuf_clear(&r->snaps[0].img);
	r->snaps[0].img = img;
	r->snaps[0].tail_len = tail_len;
	return 0;
}

/*
 * The start's record, durable before anything is sent. After a crash (the
 * log does not end with a clean stop's record) the core is mute where it
 * may have sent pre-prepares or prepares that the crash made it forget: in
 * the views below its own, and in its own up to its durable early-vote
 * bound.
 */
int
record_start(struct replica *r, char *err, size_t errlen)
{
	uint8_t rec[PBFT_BOOT_RECORD_LEN];
	size_t len = pbft_boot_record(r->core, rec);
	struct pbft_status st;

	if (store_append(r->store, rec, len) == -1 ||
	    store_sync(r->store) == -1) {
		snprintf(err, errlen,
		    "write-ahead log: cannot record the start: %s",
		    store_last_error(r->store));
		return -1;
	}
	r->started = true;
	pbft_get_status(r->core, &st);
	if (st.muted && st.mute_seq == UINT64_MAX)
		log_warnx("the last run did not stop cleanly: sending no "
		          "pre-prepare or prepare in view %llu (votes of that "
		          "run may be lost); back to normal from the next "
		          "view change",
		    (unsigned long long)st.view);
	else if (st.muted)
		log_warnx("the last run did not stop cleanly: sending no "
		          "pre-prepare or prepare in view %llu up to seq %llu "
		          "(votes of that run may be lost up to there, its "
		          "durable bound)",
		    (unsigned long long)st.view,
		    (unsigned long long)st.mute_seq);
	return 0;
}

/*
 * A stop on purpose: every record durable, then the record that says so,
 * so that the next start need not be mute. Nothing is sent after it.
 */
void
record_stop(struct replica *r)
{
	uint8_t rec[PBFT_CLEAN_RECORD_LEN];

	bg_settle(r); /* records naming a snapshot wait for it */
	if (r->stable_wait != 0 || store_sync(r->store) == -1 ||
	    store_append(r->store, rec, pbft_clean_record(rec)) == -1 ||
	    store_sync(r->store) == -1)
		log_warnx("write-ahead log: cannot record the clean stop; the "
		          "next start is mute until a view change");
}
