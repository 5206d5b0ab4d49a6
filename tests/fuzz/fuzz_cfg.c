/*
 * fuzz_cfg.c - libFuzzer target for the configuration parser
 * (common/cfg.c): the input is written to a file and loaded; it must load
 * or fail with "FILE:LINE: reason" (or "FILE: reason"), never crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cluster_cfg *c;
	char err[CFG_ERR_LEN];
	FILE *f;

	if (path[0] == '\0')
		snprintf(
		    path, sizeof(path), "/tmp/fuzz-cfg-%d.ini", (int)getpid());
	if ((f = fopen(path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	err[0] = '\0';
	c = cfg_load(path, err, sizeof(err));
	if (c == NULL) {
		if (strncmp(err, path, strlen(path)) != 0)
			abort(); /* errors name the file */
	} else {
		if (c->n == 0 || c->n > PBFT_REPLICAS_MAX ||
		    c->n < 3 * c->f + 1)
			abort();
		cfg_free(c);
	}
	return 0;
}
