/*
 * sup_proto.c - encoding of the supervisor link's messages (sup_proto.h).
 * pbftd reads the replica's lines with jansson; nothing here does I/O.
 */
#include "sup_proto.h"

#include <stdio.h>
#include <string.h>

size_t
sup_count_status_reqs(const char *buf, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (buf[i] == SUP_STATUS_REQ_BYTE)
			k++;
	return k;
}

size_t
sup_status_line(char *buf, size_t len, size_t cap)
{
	if (len + 1 > cap || len + 1 > SUP_LINE_MAX)
		return 0;
	buf[len] = '\n';
	return len + 1;
}

/* How many bytes the UTF-8 sequence led by c takes (1 for anything else),
 * so that a cut never splits a character: jansson refuses such a line. */
static size_t
utf8_len(unsigned char c)
{
	return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

/* One character of reason, escaped for a JSON string, into esc: its
 * length in reason (*in) and in esc (the return value). */
static size_t
escape_char(const char *p, size_t *in, char esc[8])
{
	unsigned char c = (unsigned char)*p;
	size_t k = utf8_len(c);

	*in = 1;
	if (c == '"' || c == '\\')
		return (size_t)snprintf(esc, 8, "\\%c", c);
	if (c < 0x20)
		return (size_t)snprintf(esc, 8, "\\u%04x", c);
	for (size_t i = 1; i < k; i++)
		if (p[i] == '\0')
			return 0; /* a sequence cut short: end here */
	memcpy(esc, p, k);
	*in = k;
	return k;
}

size_t
sup_failed_line(char *out, size_t cap, const char *reason)
{
	static const char head[] = "{\"" SUP_FAILED_KEY "\":\"";
	static const char tail[] = "\"}\n"; /* with its NUL */
	size_t n = sizeof(head) - 1, used = 0, in, k;
	char esc[8];

	memcpy(out, head, n);
	while (reason[used] != '\0') {
		k = escape_char(reason + used, &in, esc);
		if (k == 0 || used + in > SUP_REASON_MAX ||
		    n + k + sizeof(tail) > cap)
			break;
		memcpy(out + n, esc, k);
		n += k;
		used += in;
	}
	memcpy(out + n, tail, sizeof(tail));
	return n + sizeof(tail) - 1;
}
