/* gen_corpus.c - writes one valid frame per message type into a directory. */
#include <stdio.h>

#include "samples.h"

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	for (int i = 0; i < SAMPLES_COUNT; i++) {
		struct wbuf wb;
		char path[4096];
		FILE *f;

		wbuf_init_dynamic(&wb, 1 << 20);
		if (sample_frame(i, &wb) == -1)
			return 1;
		snprintf(path, sizeof(path), "%s/sample-%02d", argv[1], i);
		if ((f = fopen(path, "wb")) == NULL ||
		    fwrite(wb.p, 1, wb.len, f) != wb.len || fclose(f) != 0)
			return 1;
		wbuf_clear(&wb);
	}
	return 0;
}
