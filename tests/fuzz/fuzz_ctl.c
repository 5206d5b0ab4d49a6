/*
 * fuzz_ctl.c - libFuzzer target for pbftd's control-request parser
 * (pbftd/ctl_req.c): any line must parse or fail with a reason, never
 * crash or leak; a parsed request is internally consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_req.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_req req;
	char err[160];

	wbuf_init_dynamic(&req.op, PBFT_OP_BYTES_MAX + 64);
	err[0] = '\0';
	if (ctl_req_parse((const char *)data, size, &req, err, sizeof(err)) ==
	    0) {
		if (req.cmd == CTL_CMD_OP &&
		    (req.op.len == 0 || req.op.len > PBFT_OP_BYTES_MAX))
			abort();
		if ((req.cmd == CTL_CMD_RESTART || req.cmd == CTL_CMD_STOP) &&
		    req.node < 0)
			abort();
	} else if (err[0] == '\0' || strchr(err, '\n') != NULL) {
		abort(); /* every failure has a one-line reason */
	}
	wbuf_clear(&req.op);
	return 0;
}
