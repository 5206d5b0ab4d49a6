/*
 * replay.c - runs a fuzz target's LLVMFuzzerTestOneInput over every file of
 * the directories given, so corpora and past findings are regression tests
 * in every build, with any compiler.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
main(int argc, char **argv)
{
	int files = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (d == NULL) {
			perror(argv[i]);
			return 2;
		}
		while ((e = readdir(d)) != NULL) {
			char path[4096];
			FILE *f;
			long len;
			uint8_t *buf;

			if (e->d_name[0] == '.')
				continue;
			snprintf(
			    path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if ((f = fopen(path, "rb")) == NULL)
				continue;
			fseek(f, 0, SEEK_END);
			len = ftell(f);
			rewind(f);
			buf = malloc(len > 0 ? (size_t)len : 1);
			if (buf == NULL ||
			    fread(buf, 1, (size_t)len, f) != (size_t)len) {
				fclose(f);
				free(buf);
				return 2;
			}
			fclose(f);
			LLVMFuzzerTestOneInput(buf, (size_t)len);
			free(buf);
			files++;
		}
		closedir(d);
	}
	printf("%d passed, 0 failed\n", files);
	return files > 0 ? 0 : 1;
}
