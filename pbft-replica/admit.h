/*
 * admit.h - who may open a connection to a replica, decided before the
 * connection costs any cryptography: a token bucket of new connections and
 * a count of open ones per source address.
 *
 * Sans-I/O: the caller passes the address and the time, and closes what is
 * refused; net.c does that on accept. The table is fixed in size
 * (ADMIT_SLOTS addresses): an address with no open connection is forgotten
 * when its slot is needed, which costs an attacker nothing it could not
 * have by using a fresh address, and a table full of addresses that all
 * hold connections refuses the newcomer (there are far fewer connection
 * slots than table slots, so that does not happen in practice).
 * Not here: what the connection then says (net.c checks the HELLO).
 */
#ifndef PBFT_ADMIT_H
#define PBFT_ADMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADMIT_SLOTS 4096
#define ADMIT_PROBE 16 /* slots looked at per address */
#define ADMIT_NONE UINT32_MAX

/* An IPv6 address; IPv4 ones as IPv4-mapped (::ffff:a.b.c.d). */
struct admit_addr {
	uint8_t b[16];
};

struct admit_limits {
	uint32_t rate; /* new connections a second per address; the burst */
	uint32_t conns; /* open connections per address */
	uint32_t replica_conns; /* more for an address of a replica */
};

enum admit_verdict {
	ADMIT_OK = 0,
	ADMIT_RATE, /* the address's bucket is empty */
	ADMIT_CONNS, /* the address holds its share of connections */
	ADMIT_TABLE, /* no slot for the address */
};

struct admit_entry {
	struct admit_addr addr;
	bool used;
	uint32_t conns;
	uint64_t milli_tokens; /* 1000 per connection */
	uint64_t last_ms;
};

struct admit {
	struct admit_limits lim;
	struct admit_entry slot[ADMIT_SLOTS];
};

void admit_init(struct admit *a, const struct admit_limits *lim);
/*
 * A new connection from addr at now_ms (replica: addr is a replica's).
 * ADMIT_OK takes a token and counts the connection, *slot says where
 * (pass it to admit_close); any other verdict changes nothing.
 */
enum admit_verdict admit_open(struct admit *a, const struct admit_addr *addr,
    bool replica, uint64_t now_ms, uint32_t *slot);
/* The connection admitted in slot closed (ADMIT_NONE: nothing). */
void admit_close(struct admit *a, uint32_t slot);
/* 0, or -1 for a family other than IPv4 and IPv6. */
int admit_addr_from(
    const struct sockaddr *sa, socklen_t len, struct admit_addr *out);
bool admit_addr_eq(const struct admit_addr *x, const struct admit_addr *y);
/* 0.0.0.0, :: or ::ffff:0.0.0.0 (a wildcard listen address). */
bool admit_addr_any(const struct admit_addr *x);

#endif
