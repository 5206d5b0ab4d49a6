/*
 * ctl_req.h - parsing one control-socket request line (common/ctl_proto.h)
 * into a checked command. Pure: no sockets, no daemon state, so that the
 * fuzz target (tests/fuzz/fuzz_ctl.c) exercises exactly what pbftd runs.
 */
#ifndef PBFTD_CTL_REQ_H
#define PBFTD_CTL_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "wbuf.h"

enum ctl_cmd {
	CTL_CMD_STATUS = 1,
	CTL_CMD_PEERS,
	CTL_CMD_OP, /* submit, put, get, del: op holds the encoded operation */
	CTL_CMD_RESTART,
	CTL_CMD_STOP,
	CTL_CMD_SHUTDOWN,
};

struct ctl_req {
	long long id; /* the request's id, echoed in the reply (0 if absent) */
	enum ctl_cmd cmd;
	char name[16]; /* the command as sent, for replies */
	int64_t node; /* restart, stop */
	struct wbuf op; /* CTL_CMD_OP; caller's buffer (PBFT_OP_BYTES_MAX) */
};

/*
 * Parses line[0..len). On success returns 0 and fills req (req->op must
 * be initialised by the caller; it is reset first). On failure returns -1
 * with a one-line reason in err and req->id set if the request had one.
 * Node ids are only checked to be non-negative; the caller knows n.
 */
int ctl_req_parse(const char *line, size_t len, struct ctl_req *req, char *err,
    size_t errlen);

#endif
