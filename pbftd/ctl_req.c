/*
 * ctl_req.c - control request parsing; see ctl_req.h.
 */
#include "ctl_req.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ctl_proto.h"
#include "svcop.h"

/* A string argument: present, a JSON string, without NUL bytes. */
static const char *
str_arg(const json_t *args, const char *key, size_t *len)
{
	const json_t *v = json_object_get(args, key);
	const char *s = json_string_value(v);

	if (s == NULL)
		return NULL;
	*len = json_string_length(v);
	return strlen(s) == *len ? s : NULL;
}

static int
parse_op(const char *cmd, const json_t *args, struct wbuf *op)
{
	size_t dlen = 0, klen = 0, vlen = 0;
	const char *data = str_arg(args, "data", &dlen);
	const char *key = str_arg(args, "key", &klen);
	const char *val = str_arg(args, "value", &vlen);

	if (strcmp(cmd, "submit") == 0 && data != NULL)
		return ledger_op_submit(op, data, dlen);
	if (strcmp(cmd, "put") == 0 && key != NULL && val != NULL)
		return ledger_op_put(op, key, klen, val, vlen);
	if (strcmp(cmd, "get") == 0 && key != NULL)
		return ledger_op_get(op, key, klen);
	if (strcmp(cmd, "del") == 0 && key != NULL)
		return ledger_op_del(op, key, klen);
	return -1;
}

int
ctl_req_parse(
    const char *line, size_t len, struct ctl_req *req, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j, *args;
	const char *cmd;
	int rc = -1;

	req->id = 0;
	req->node = -1;
	req->name[0] = '\0';
	wbuf_reset(&req->op);
	if (len > CTL_LINE_MAX) {
		snprintf(err, errlen, "line too long");
		return -1;
	}
	j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j)) {
		snprintf(err, errlen, "%s",
		    j == NULL ? "malformed JSON" : "request must be an object");
		json_decref(j);
		return -1;
	}
	req->id = (long long)json_integer_value(json_object_get(j, "id"));
	cmd = json_string_value(json_object_get(j, "cmd"));
	args = json_object_get(j, "args");
	if (json_integer_value(json_object_get(j, "v")) != CTL_PROTO_VERSION) {
		snprintf(err, errlen, "unsupported protocol version");
		goto out;
	}
	if (cmd == NULL) {
		snprintf(err, errlen, "missing cmd");
		goto out;
	}
	if (args != NULL && !json_is_object(args)) {
		snprintf(err, errlen, "args must be an object");
		goto out;
	}
	snprintf(req->name, sizeof(req->name), "%s", cmd);
	if (strcmp(cmd, "status") == 0) {
		req->cmd = CTL_CMD_STATUS;
	} else if (strcmp(cmd, "peers") == 0) {
		req->cmd = CTL_CMD_PEERS;
	} else if (strcmp(cmd, "shutdown") == 0) {
		req->cmd = CTL_CMD_SHUTDOWN;
	} else if (strcmp(cmd, "submit") == 0 || strcmp(cmd, "put") == 0 ||
	    strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0) {
		req->cmd = CTL_CMD_OP;
		if (parse_op(cmd, args, &req->op) == -1 ||
		    wbuf_failed(&req->op)) {
			snprintf(err, errlen, "bad or missing arguments");
			goto out;
		}
	} else if (strcmp(cmd, "restart") == 0 || strcmp(cmd, "stop") == 0) {
		const json_t *n = json_object_get(args, "node");

		req->cmd =
		    strcmp(cmd, "stop") == 0 ? CTL_CMD_STOP : CTL_CMD_RESTART;
		if (!json_is_integer(n) || json_integer_value(n) < 0) {
			snprintf(err, errlen, "no such local node");
			goto out;
		}
		req->node = (int64_t)json_integer_value(n);
	} else {
		char shown[65];
		size_t i;

		/* Echo it printable: replies and logs stay one line. */
		for (i = 0; cmd[i] != '\0' && i < sizeof(shown) - 1; i++)
			shown[i] =
			    cmd[i] < 0x20 || cmd[i] == 0x7f ? '?' : cmd[i];
		shown[i] = '\0';
		snprintf(err, errlen, "unknown command '%s'", shown);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}
