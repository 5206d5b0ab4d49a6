/*
 * check_sup_proto.c - the supervisor link's encoders (common/sup_proto.c):
 * what the replica writes is what pbftd reads. A failed line parses, with
 * jansson as pbftd parses it, back to its reason, whatever the reason holds
 * (quotes, backslashes, control bytes, UTF-8) and wherever it is cut (the
 * line's buffer, SUP_REASON_MAX); a status line ends in its newline and
 * never exceeds SUP_LINE_MAX; status requests are counted by their byte.
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sup_proto.h"

/* The reason pbftd reads from line (len bytes, newline last), or NULL. */
static char *
read_reason(const char *line, size_t len)
{
	json_t *j;
	const char *s;
	char *out = NULL;

	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(line[len - 1], '\n');
	ck_assert_ptr_null(memchr(line, '\n', len - 1));
	j = json_loadb(line, len, 0, NULL);
	if (j != NULL &&
	    (s = json_string_value(json_object_get(j, SUP_FAILED_KEY))) != NULL)
		out = strdup(s);
	json_decref(j);
	return out;
}

START_TEST(test_failed_round_trip)
{
	static const char *reasons[] = {"", "plain words",
	    "a \"quoted\" path\\with\\backslashes", "control\n\t\x01\x1f bytes",
	    "UTF-8: d\xc3\xa9j\xc3\xa0 \xe2\x82\xac",
	    "/var/lib/pbft/node-1/log: Input/output error"};
	char line[2200], *got;
	size_t len;

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		len = sup_failed_line(line, sizeof(line), reasons[i]);
		ck_assert_uint_eq(len, strlen(line));
		got = read_reason(line, len);
		ck_assert_ptr_nonnull(got);
		ck_assert_str_eq(got, reasons[i]);
		free(got);
	}
}
END_TEST

/* Cut at every buffer size: always one line that parses, holding a prefix
 * of the reason that never splits a character. */
START_TEST(test_failed_cut)
{
	const char *reason =
	    "\xc3\xa9t\xc3\xa9 \"x\"\n \xe2\x82\xac\xe2\x82\xac";
	char line[64], *got;
	size_t len;

	for (size_t cap = 16; cap <= sizeof(line); cap++) {
		len = sup_failed_line(line, cap, reason);
		ck_assert_uint_lt(len, cap);
		got = read_reason(line, len);
		ck_assert_msg(got != NULL, "cap %zu: %s", cap, line);
		ck_assert_msg(strncmp(got, reason, strlen(got)) == 0,
		    "cap %zu: '%s' is not a prefix", cap, got);
		free(got);
	}
}
END_TEST

START_TEST(test_failed_reason_max)
{
	char reason[SUP_REASON_MAX + 100], line[4096], *got;
	size_t len;

	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	len = sup_failed_line(line, sizeof(line), reason);
	got = read_reason(line, len);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(strlen(got), SUP_REASON_MAX);
	free(got);
	/* A reason that ends inside a character: the partial one is left
	 * out. */
	len = sup_failed_line(line, sizeof(line), "ab\xe2\x82");
	got = read_reason(line, len);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, "ab");
	free(got);
}
END_TEST

START_TEST(test_status_line)
{
	static char buf[SUP_LINE_MAX + 8];

	memcpy(buf, "{\"view\":3}", 10);
	ck_assert_uint_eq(sup_status_line(buf, 10, sizeof(buf)), 11);
	ck_assert_int_eq(buf[10], '\n');
	/* No room for the newline in buf. */
	ck_assert_uint_eq(sup_status_line(buf, 10, 10), 0);
	/* The longest line is SUP_LINE_MAX bytes, newline included. */
	memset(buf, ' ', sizeof(buf));
	ck_assert_uint_eq(
	    sup_status_line(buf, SUP_LINE_MAX - 1, sizeof(buf)), SUP_LINE_MAX);
	ck_assert_uint_eq(sup_status_line(buf, SUP_LINE_MAX, sizeof(buf)), 0);
}
END_TEST

START_TEST(test_count_status_reqs)
{
	char buf[64];
	size_t n = 0;

	for (int i = 0; i < 5; i++) {
		memcpy(buf + n, SUP_STATUS_REQ, strlen(SUP_STATUS_REQ));
		n += strlen(SUP_STATUS_REQ);
	}
	ck_assert_uint_eq(sup_count_status_reqs(buf, n), 5);
	/* A read that ends between a request and its newline. */
	ck_assert_uint_eq(sup_count_status_reqs(buf, 3), 2);
	ck_assert_uint_eq(sup_count_status_reqs("\n\nx", 3), 0);
	ck_assert_uint_eq(sup_count_status_reqs(buf, 0), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sup_proto");
	TCase *tc = tcase_create("encode");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_failed_round_trip);
	tcase_add_test(tc, test_failed_cut);
	tcase_add_test(tc, test_failed_reason_max);
	tcase_add_test(tc, test_status_line);
	tcase_add_test(tc, test_count_status_reqs);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
