/*
 * logwriter.c - field scenario 1 ("memory leak" that is page cache) in C.
 * A service whose heap is flat (one 64 KiB line buffer, reused) writes a
 * metrics log: MIB mebibytes appended to PATH with write(2), then it keeps
 * the file open and runs on. The kernel keeps the written pages in the page
 * cache and charges them to the memory cgroup; a heap profile sees nothing.
 * Usage: logwriter PATH [MIB] [MILLISECONDS]   (defaults: 256 MiB, 200 ms)
 * Expected report: heap in use ~64 KiB, PATH in the page cache with ~MIB
 * cached (and mostly dirty until writeback), cgroup usage up by as much.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define CHUNK (64 * 1024)

NOINLINE static char *line_buffer(void)
{
    char *b = malloc(CHUNK);
    if (!b)
        abort();
    return b;
}

/* One metrics record per line, a chunk at a time. */
NOINLINE static void write_metrics(int fd, char *buf, long mib)
{
    long chunks = mib * (1024 * 1024 / CHUNK);
    for (long i = 0; i < chunks; i++) {
        int n = snprintf(buf, CHUNK, "ts=%ld breaker=closed calls=%ld\n", i, i * 7);
        memset(buf + n, '.', CHUNK - (size_t)n - 1);
        buf[CHUNK - 1] = '\n';
        for (size_t done = 0; done < CHUNK;) {
            ssize_t w = write(fd, buf + done, CHUNK - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                perror("logwriter: write");
                exit(1);
            }
            done += (size_t)w;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: logwriter PATH [MIB] [MILLISECONDS]\n");
        return 2;
    }
    long mib = argc > 2 ? strtol(argv[2], NULL, 10) : 256;
    long ms = argc > 3 ? strtol(argv[3], NULL, 10) : 200;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    char *buf = line_buffer();
    write_metrics(fd, buf, mib);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    free(buf);
    return 0; /* the log stays open until exit, as a service's would */
}
