/*
 * check_cfg.c - the configuration parser's [cluster] keys: each value lands
 * in its field (numbers, sizes, durations, addresses, words), a bad value
 * is refused with the file, line and key named, a key given twice is
 * refused, and a key left out keeps its default.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "defaults.h"

static char dir[] = "/tmp/check_cfg.XXXXXX";
static char path[sizeof(dir) + 16];
static char err[512];

/* Four nodes with public keys (any 32 bytes will do for parsing). */
static const char nodes[] =
    "[node.0]\naddress = 127.0.0.1:7000\npublic_key = "
    "7ecd598f2264d551dda77a9485a2f8e3393fae23708ac453e91885e66f2a4950\n"
    "[node.1]\naddress = 127.0.0.1:7001\npublic_key = "
    "abd9839936ecc8d34f298a97f75fdc8efcabab5e610dda85acfa00512a3d7d33\n"
    "[node.2]\naddress = 127.0.0.1:7002\npublic_key = "
    "ab8880d3cdb3cd525d342db21d807724f74811ff8068b2aa437d62d22d689cb8\n"
    "[node.3]\naddress = 127.0.0.1:7003\npublic_key = "
    "ca5821eff455578fafd5deeb0551fa86b1a6e69cda665a3ad91722df8b601777\n";

/* Loads "[cluster]\n" CLUSTER nodes; NULL with err set on an error. */
static struct cluster_cfg *
load(const char *cluster)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "[cluster]\n%s%s", cluster, nodes);
	ck_assert_int_eq(fclose(fp), 0);
	err[0] = '\0';
	return cfg_load(path, err, sizeof(err));
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.ini", dir);
}

static void
teardown(void)
{
	unlink(path);
	rmdir(dir);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

START_TEST(test_defaults)
{
	struct cluster_cfg *c = load("");

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->n, 4);
	ck_assert_uint_eq(c->f, 1);
	ck_assert_uint_eq(
	    c->checkpoint_interval, PBFT_DEFAULT_CHECKPOINT_INTERVAL);
	ck_assert_uint_eq(c->window, PBFT_DEFAULT_WINDOW);
	ck_assert_uint_eq(c->batch_max, PBFT_DEFAULT_BATCH_REQS);
	ck_assert_uint_eq(c->batch_bytes_max, PBFT_DEFAULT_BATCH_BYTES);
	ck_assert_uint_eq(c->inflight_max, PBFT_DEFAULT_INFLIGHT);
	ck_assert_uint_eq(c->queue_bytes_max, PBFT_DEFAULT_QUEUE_BYTES);
	ck_assert_uint_eq(c->view_change_timeout_ms, 10000);
	ck_assert_uint_eq(
	    c->heartbeat_interval_ms, CFG_HEARTBEAT_INTERVAL_DEFAULT);
	ck_assert_uint_eq(c->dead_after_ms, CFG_DEAD_AFTER_DEFAULT);
	ck_assert_int_eq(c->fsync, CFG_FSYNC_BATCH);
	cfg_free(c);
}
END_TEST

START_TEST(test_every_kind_lands)
{
	struct cluster_cfg *c = load("name = east-1\n"
	                             "checkpoint_interval = 50\n"
	                             "window = 150\n"
	                             "view_change_timeout = 3s\n"
	                             "batch_max = 77\n"
	                             "batch_bytes_max = 4096\n"
	                             "batch_timeout = 0\n"
	                             "inflight_max = 9\n"
	                             "request_timeout = 2m\n"
	                             "metrics_listen = 127.0.0.1:9100\n"
	                             "fsync = always\n"
	                             "client_max_keys = 12\n"
	                             "client_max_bytes = 34\n"
	                             "queue_bytes_max = 3MiB\n"
	                             "min_free = 2GiB\n"
	                             "handshake_rate = 5\n"
	                             "handshakes_max = 6\n"
	                             "connections_per_address = 7\n"
	                             "accept_from = replicas\n"
	                             "replica_source = any\n"
	                             "heartbeat_interval = 250ms\n"
	                             "dead_after = 10m\n");

	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_str_eq(c->name, "east-1");
	ck_assert_uint_eq(c->checkpoint_interval, 50);
	ck_assert_uint_eq(c->window, 150);
	ck_assert_uint_eq(c->view_change_timeout_ms, 3000);
	ck_assert_uint_eq(c->batch_max, 77);
	ck_assert_uint_eq(c->batch_bytes_max, 4096);
	ck_assert_uint_eq(c->batch_timeout_ms, 0);
	ck_assert_uint_eq(c->inflight_max, 9);
	ck_assert_uint_eq(c->request_timeout_ms, 120000);
	ck_assert_str_eq(c->metrics_listen, "127.0.0.1:9100");
	ck_assert_int_eq(c->fsync, CFG_FSYNC_ALWAYS);
	ck_assert_uint_eq(c->client_max_keys, 12);
	ck_assert_uint_eq(c->client_max_bytes, 34);
	ck_assert_uint_eq(c->queue_bytes_max, 3ULL << 20);
	ck_assert_uint_eq(c->min_free_bytes, 2ULL << 30);
	ck_assert_uint_eq(c->handshake_rate, 5);
	ck_assert_uint_eq(c->handshakes_max, 6);
	ck_assert_uint_eq(c->conns_per_address, 7);
	ck_assert_int_eq(c->accept_from, CFG_ACCEPT_REPLICAS);
	ck_assert_int_eq(c->replica_source, CFG_SOURCE_ANY);
	ck_assert_uint_eq(c->heartbeat_interval_ms, 250);
	ck_assert_uint_eq(c->dead_after_ms, 600000);
	cfg_free(c);
	/* A plain byte count is a size too. */
	c = load("queue_bytes_max = 2097152\n");
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->queue_bytes_max, 2097152);
	cfg_free(c);
}
END_TEST

/* Each bad value is refused on its line (2: after "[cluster]"), and the
 * message names the key. */
START_TEST(test_bad_values)
{
	static const char *bad[] = {"checkpoint_interval = 0\n",
	    "window = 100000\n", "view_change_timeout = 0\n",
	    "batch_max = -1\n", "batch_bytes_max = 1023\n",
	    "batch_timeout = soon\n", "inflight_max = 65\n",
	    "request_timeout = 1h\n", "metrics_listen = 127.0.0.1\n",
	    "fsync = sometimes\n", "client_max_keys = 1x\n",
	    "queue_bytes_max = 1023KiB\n", "queue_bytes_max = 2TiB\n",
	    "min_free = 1PiB\n", "handshake_rate = 100001\n",
	    "connections_per_address = 0\n", "accept_from = all\n",
	    "replica_source = none\n", "f = 22\n", "name = a b\n",
	    "log_level = loud\n", "heartbeat_interval = 9ms\n",
	    "heartbeat_interval = 0\n", "dead_after = 601s\n",
	    "dead_after = 1s\nheartbeat_interval = 600ms\n"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cluster_cfg *c = load(bad[i]);
		char key[64], want[128];

		ck_assert_msg(c == NULL, "accepted: %s", bad[i]);
		sscanf(bad[i], "%63s", key);
		snprintf(want, sizeof(want), "t.ini:2: ");
		ck_assert_msg(strstr(err, want) != NULL, "%s: %s", bad[i], err);
		ck_assert_msg(
		    strstr(err, key) != NULL || strcmp(key, "name") == 0,
		    "%s: the message does not name the key: %s", bad[i], err);
	}
}
END_TEST

START_TEST(test_duplicate_and_unknown)
{
	ck_assert_ptr_null(load("batch_max = 5\nbatch_max = 6\n"));
	ck_assert_msg(strstr(err, "t.ini:3: duplicate key 'batch_max'") != NULL,
	    "%s", err);
	ck_assert_ptr_null(load("frobnicate = 1\n"));
	ck_assert_msg(
	    strstr(err, "unknown key 'frobnicate'") != NULL, "%s", err);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc = tcase_create("cluster");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_every_kind_lands);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_duplicate_and_unknown);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
