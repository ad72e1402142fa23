/*
 * timeit.c - run one command and measure it for bench/run: wall time from
 * fork to reap, peak RSS (wait4's ru_maxrss: the largest process of the
 * tree the child reaped), exit status, and CLOCK_MONOTONIC at the reap.
 * NAME=VALUE arguments before "--" are set in the child's environment only,
 * so the preload applies to the measured command and not to this helper.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: timeit RESULT_FILE [NAME=VALUE...] -- CMD [ARGS...]\n");
        return 2;
    }
    const char *result = argv[1];
    int sep = 2;
    while (sep < argc && strcmp(argv[sep], "--"))
        sep++;
    if (sep >= argc - 1) {
        fprintf(stderr, "timeit: missing -- CMD\n");
        return 2;
    }

    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("timeit: fork");
        return 2;
    }
    if (pid == 0) {
        for (int i = 2; i < sep; i++)
            if (putenv(argv[i])) {
                perror("timeit: putenv");
                _exit(127);
            }
        execvp(argv[sep + 1], argv + sep + 1);
        fprintf(stderr, "timeit: %s: %s\n", argv[sep + 1], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("timeit: wait4");
            return 2;
        }
    uint64_t t1 = now_ns();

    FILE *f = fopen(result, "w");
    if (!f) {
        perror("timeit: result file");
        return 2;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(f, "wall_ns %" PRIu64 "\n", t1 - t0);
    fprintf(f, "maxrss_kb %ld\n", ru.ru_maxrss);
    fprintf(f, "status %d\n", code);
    fprintf(f, "end_mono_ns %" PRIu64 "\n", t1);
    fclose(f);
    return code;
}
