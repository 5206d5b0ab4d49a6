/*
 * http_tx.c - GET /v1/tx/{index}: one ledger entry, read from the ledger
 * journal of a replica this pbftd runs (DATA_DIR/node-N/ledger, records
 * u64 index | u32 length | bytes, little-endian; pbft-replica/service.h).
 *
 * It is that replica's copy, not an answer confirmed by f+1 replicas (the
 * client library has no read of the ledger by index yet); the reply says
 * which node it came from. To find an entry without reading the journal
 * from its start every time, the offset of every TX_MARK_EVERY-th entry is
 * kept, learnt by reading only what was appended since the last request;
 * the marks are dropped when the replica's pid or the file changes (a
 * restart or a restored image rewrites the journal). No HTTP here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_tx.h"
#include "pbftd.h"

#define TX_HDR 12
#define TX_MARK_EVERY 256
#define TX_BUF (64u * 1024)
#define TX_ENTRY_MAX (16u << 20)

struct tx_index {
	pid_t pid;
	dev_t dev;
	ino_t ino;
	uint64_t base; /* index of the first entry */
	uint64_t *marks; /* offset of entry base + k * TX_MARK_EVERY */
	size_t nmarks, cap;
	uint64_t end_off; /* first byte not yet indexed */
	uint64_t end_idx; /* index of the entry at end_off */
};

static struct tx_index tx_idx;

static uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
index_reset(struct tx_index *x, pid_t pid, const struct stat *sb)
{
	free(x->marks);
	memset(x, 0, sizeof(*x));
	x->pid = pid;
	x->dev = sb->st_dev;
	x->ino = sb->st_ino;
}

static int
add_mark(struct tx_index *x, uint64_t off)
{
	if (x->nmarks == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		uint64_t *m = realloc(x->marks, cap * sizeof(*m));

		if (m == NULL)
			return -1;
		x->marks = m;
		x->cap = cap;
	}
	x->marks[x->nmarks++] = off;
	return 0;
}

/* Indexes what was appended since the last call; -1 on a read error or a
 * journal that does not look like one. */
static int
index_extend(struct tx_index *x, int fd, uint64_t size)
{
	static uint8_t buf[TX_BUF];

	while (x->end_off + TX_HDR <= size) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)x->end_off);
		size_t at = 0;

		if (n < TX_HDR)
			return n < 0 ? -1 : 0;
		/* Headers only: a body is skipped, not read. */
		while (at + TX_HDR <= (size_t)n) {
			uint64_t idx = le64(buf + at);
			uint32_t len = le32(buf + at + 8);
			uint64_t off = x->end_off + at;

			if (off == 0)
				x->base = x->end_idx = idx;
			if (idx != x->end_idx || len > TX_ENTRY_MAX)
				return -1;
			if (off + TX_HDR + len > size)
				break; /* being written */
			if ((idx - x->base) % TX_MARK_EVERY == 0 &&
			    add_mark(x, off) == -1)
				return -1;
			x->end_idx++;
			at += TX_HDR + len;
		}
		if (at == 0)
			return 0;
		x->end_off += at;
	}
	return 0;
}

/* The entry idx, found from its mark; 0, 1 if absent, -1 on error. */
static int
entry_read(const struct tx_index *x, int fd, uint64_t idx, uint8_t **out,
    uint32_t *len)
{
	uint8_t hdr[TX_HDR];
	uint64_t off;

	if (idx < x->base || idx >= x->end_idx)
		return 1;
	off = x->marks[(idx - x->base) / TX_MARK_EVERY];
	for (int k = 0;; k++) {
		if (k == TX_MARK_EVERY ||
		    pread(fd, hdr, TX_HDR, (off_t)off) != TX_HDR)
			return -1;
		if (le64(hdr) == idx)
			break;
		off += TX_HDR + le32(hdr + 8);
	}
	*len = le32(hdr + 8);
	if ((*out = malloc(*len ? *len : 1)) == NULL ||
	    pread(fd, *out, *len, (off_t)(off + TX_HDR)) != (ssize_t)*len) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int
http_tx_read(
    struct pbftd *d, uint64_t idx, uint32_t *node, uint8_t **out, uint32_t *len)
{
	const struct child *c = NULL;
	char path[CFG_PATH_MAX + 32];
	struct stat sb;
	int fd, rc;

	for (uint32_t i = 0; i < d->cfg->n && c == NULL; i++)
		if (d->children[i].local &&
		    d->children[i].state == CHILD_RUNNING)
			c = &d->children[i];
	if (c == NULL)
		return -2;
	*node = c->id;
	snprintf(
	    path, sizeof(path), "%s/node-%u/ledger", d->cfg->data_dir, c->id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 1 : -1;
	if (fstat(fd, &sb) == -1) {
		close(fd);
		return -1;
	}
	if (tx_idx.pid != c->pid || tx_idx.dev != sb.st_dev ||
	    tx_idx.ino != sb.st_ino || (uint64_t)sb.st_size < tx_idx.end_off)
		index_reset(&tx_idx, c->pid, &sb);
	rc = index_extend(&tx_idx, fd, (uint64_t)sb.st_size);
	if (rc == -1)
		index_reset(&tx_idx, c->pid, &sb);
	else
		rc = entry_read(&tx_idx, fd, idx, out, len);
	close(fd);
	return rc;
}

void
http_tx_free(void)
{
	free(tx_idx.marks);
	memset(&tx_idx, 0, sizeof(tx_idx));
}
