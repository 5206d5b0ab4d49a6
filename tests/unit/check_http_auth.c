/*
 * check_http_auth.c - the HTTP API's bearer tokens (pbftd/http_auth.c):
 * a good file loads and each of its tokens names its line; a wrong, a
 * truncated, an extended or a missing token, or another scheme, matches
 * nothing; files others or the group may read, malformed lines, short
 * tokens, symlinks and empty files are refused; a request from a page of
 * another origin, or without tokens one whose Host is not loopback, is
 * refused.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_http_auth.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tokens", dir);
}

static void
teardown(void)
{
	char link[160];

	snprintf(link, sizeof(link), "%s/link", dir);
	unlink(link);
	unlink(path);
	rmdir(dir);
}

static void
write_file(const char *text, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(test_good_file)
{
	struct http_tokens *t;
	char err[256];

	write_file("# who token\n\nci  aaaaaaaaaaaaaaaa-1\n"
	           "ops\tbbbbbbbbbbbbbbbb-2\n",
	    0600);
	t = http_tokens_load(path, err, sizeof(err));
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_str_eq(
	    http_tokens_check(t, "Bearer aaaaaaaaaaaaaaaa-1"), "ci");
	ck_assert_str_eq(
	    http_tokens_check(t, "bearer bbbbbbbbbbbbbbbb-2"), "ops");
	ck_assert_ptr_null(http_tokens_check(t, "Bearer aaaaaaaaaaaaaaaa-2"));
	ck_assert_ptr_null(http_tokens_check(t, "Bearer aaaaaaaaaaaaaaaa-"));
	ck_assert_ptr_null(http_tokens_check(t, "Bearer aaaaaaaaaaaaaaaa-11"));
	ck_assert_ptr_null(http_tokens_check(t, "Bearer "));
	ck_assert_ptr_null(http_tokens_check(t, "Basic aaaaaaaaaaaaaaaa-1"));
	ck_assert_ptr_null(http_tokens_check(t, "aaaaaaaaaaaaaaaa-1"));
	ck_assert_ptr_null(http_tokens_check(t, NULL));
	ck_assert_ptr_null(http_tokens_check(NULL, "Bearer x"));
	http_tokens_free(t);
}
END_TEST

static void
refused(const char *text, mode_t mode, const char *why)
{
	char err[256] = "";

	write_file(text, mode);
	ck_assert_ptr_null(http_tokens_load(path, err, sizeof(err)));
	ck_assert_msg(strstr(err, why) != NULL, "'%s' lacks '%s'", err, why);
}

START_TEST(test_refused)
{
	char link[160], err[256];

	refused("ci aaaaaaaaaaaaaaaa-1\n", 0640, "group or others");
	refused("ci aaaaaaaaaaaaaaaa-1\n", 0604, "group or others");
	refused("ci\n", 0600, "want NAME TOKEN");
	refused("ci aaaaaaaaaaaaaaaa-1 extra\n", 0600, "want NAME TOKEN");
	refused("ci short\n", 0600, "shorter than");
	refused("# nothing\n", 0600, "no tokens");
	write_file("ci aaaaaaaaaaaaaaaa-1\n", 0600);
	snprintf(link, sizeof(link), "%s/link", dir);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_ptr_null(http_tokens_load(link, err, sizeof(err)));
}
END_TEST

START_TEST(test_origin)
{
	/* Tokens set: any Host, but an Origin must be that Host's. */
	ck_assert(http_origin_ok("pbft.example:8443", NULL, false));
	ck_assert(http_origin_ok(
	    "pbft.example:8443", "https://pbft.example:8443", false));
	ck_assert(!http_origin_ok(
	    "pbft.example:8443", "https://evil.example", false));
	ck_assert(!http_origin_ok("pbft.example:8443", "null", false));
	ck_assert(!http_origin_ok(NULL, NULL, false));
	/* No tokens: Host must be loopback too. */
	ck_assert(http_origin_ok("127.0.0.1:8080", NULL, true));
	ck_assert(http_origin_ok("localhost:8080", NULL, true));
	ck_assert(http_origin_ok("LOCALHOST", NULL, true));
	ck_assert(http_origin_ok("[::1]:8080", NULL, true));
	ck_assert(http_origin_ok("127.1.2.3", NULL, true));
	ck_assert(
	    http_origin_ok("127.0.0.1:8080", "http://127.0.0.1:8080", true));
	ck_assert(
	    !http_origin_ok("127.0.0.1:8080", "http://evil.example", true));
	ck_assert(!http_origin_ok("evil.example:8080", NULL, true));
	ck_assert(!http_origin_ok("127.0.0.1.evil.example", NULL, true));
	ck_assert(!http_origin_ok("127.evil.example:8080", NULL, true));
	ck_assert(!http_origin_ok("localhost.evil.example", NULL, true));
	ck_assert(!http_origin_ok("127.0.0.1:80x", NULL, true));
	ck_assert(!http_origin_ok("[::1].evil", NULL, true));
	ck_assert(!http_origin_ok("", NULL, true));
}
END_TEST

static Suite *
http_auth_suite(void)
{
	Suite *s = suite_create("http_auth");
	TCase *tc = tcase_create("tokens");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_good_file);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_origin);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(http_auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
