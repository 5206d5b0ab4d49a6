/*
 * admit.c - per-address admission of new connections; see admit.h.
 */
#include "admit.h"

#include <netinet/in.h>
#include <string.h>

void
admit_init(struct admit *a, const struct admit_limits *lim)
{
	memset(a, 0, sizeof(*a));
	a->lim = *lim;
}

static uint32_t
hash(const struct admit_addr *x)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (int i = 0; i < 16; i++)
		h = (h ^ x->b[i]) * 16777619u;
	return h;
}

/* The slot of addr, or a free or forgettable one for it; ADMIT_NONE. */
static uint32_t
find(struct admit *a, const struct admit_addr *addr)
{
	uint32_t h = hash(addr), spare = ADMIT_NONE;

	for (uint32_t i = 0; i < ADMIT_PROBE; i++) {
		uint32_t k = (h + i) % ADMIT_SLOTS;
		const struct admit_entry *e = &a->slot[k];

		if (e->used && admit_addr_eq(&e->addr, addr))
			return k;
		if (!e->used) {
			if (spare == ADMIT_NONE || a->slot[spare].used)
				spare = k; /* the first free one */
		} else if (e->conns == 0 &&
		    (spare == ADMIT_NONE ||
		        (a->slot[spare].used &&
		            e->last_ms < a->slot[spare].last_ms))) {
			spare = k; /* else the least recently used idle one */
		}
	}
	if (spare != ADMIT_NONE) {
		struct admit_entry *e = &a->slot[spare];

		memset(e, 0, sizeof(*e));
		e->used = true;
		e->addr = *addr;
		e->milli_tokens = (uint64_t)a->lim.rate * 1000;
	}
	return spare;
}

enum admit_verdict
admit_open(struct admit *a, const struct admit_addr *addr, bool replica,
    uint64_t now_ms, uint32_t *slot)
{
	uint32_t k = find(a, addr);
	uint64_t cap = (uint64_t)a->lim.rate * 1000;
	struct admit_entry *e;

	*slot = ADMIT_NONE;
	if (k == ADMIT_NONE)
		return ADMIT_TABLE;
	e = &a->slot[k];
	if (e->conns >= a->lim.conns + (replica ? a->lim.replica_conns : 0))
		return ADMIT_CONNS;
	if (now_ms > e->last_ms) {
		/* rate tokens a second: rate milli-tokens a millisecond */
		uint64_t add = (now_ms - e->last_ms) * a->lim.rate;

		e->milli_tokens = add >= cap || e->milli_tokens + add >= cap
		    ? cap
		    : e->milli_tokens + add;
	}
	e->last_ms = now_ms;
	if (e->milli_tokens < 1000)
		return ADMIT_RATE;
	e->milli_tokens -= 1000;
	e->conns++;
	*slot = k;
	return ADMIT_OK;
}

void
admit_close(struct admit *a, uint32_t slot)
{
	if (slot < ADMIT_SLOTS && a->slot[slot].conns > 0)
		a->slot[slot].conns--;
}

int
admit_addr_from(
    const struct sockaddr *sa, socklen_t len, struct admit_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		out->b[10] = out->b[11] = 0xff;
		memcpy(out->b + 12, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		memcpy(out->b, &s6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

bool
admit_addr_eq(const struct admit_addr *x, const struct admit_addr *y)
{
	return memcmp(x->b, y->b, 16) == 0;
}

bool
admit_addr_any(const struct admit_addr *x)
{
	static const struct admit_addr any6,
	    any4 = {.b = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}};

	return admit_addr_eq(x, &any6) || admit_addr_eq(x, &any4);
}
