/*
 * replay_main.c - run the fuzz target once over each file named on the
 * command line (the seed corpus and every regression input), for builds
 * without libFuzzer (gcc). libFuzzer's own main does the same when given
 * files. Exit 0 when every input ran (a failure aborts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
            if (len == cap) {
                cap = cap ? 2 * cap : 65536;
                if (!(buf = realloc(buf, cap)))
                    abort();
            }
            size_t n = fread(buf + len, 1, cap - len, f);
            if (n == 0)
                break;
            len += n;
        }
        if (ferror(f)) {
            perror(argv[i]);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        printf("ran %s (%zu bytes)\n", argv[i], len);
    }
    return 0;
}
