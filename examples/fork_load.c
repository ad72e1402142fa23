/*
 * fork_load.c - forks while other threads allocate, for the fork tests.
 *
 *   fork_load forks N          two threads allocate and free 1-9 MiB blocks
 *                              (the allocator maps and unmaps memory for
 *                              them) while main forks N children; each child
 *                              mallocs 100 bytes and _exits. Prints "done".
 *   fork_load signal-child N   main forks N children one by one and sends
 *                              each the snapshot signal (RTMIN+7) the moment
 *                              fork returns; each child then allocates for
 *                              300 ms (so the request is served) and exits.
 *
 * Built twice: with glibc's malloc and with jemalloc (fork_load_jemalloc),
 * whose own fork handlers take its locks.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;

static void *churn_big(void *arg)
{
    unsigned x = (unsigned)(uintptr_t)arg + 1;
    while (!stop) {
        x = x * 1103515245u + 12345u;
        size_t n = (size_t)((x >> 8) % (8u << 20)) + (1u << 20);
        char *p = malloc(n);
        if (p) {
            p[0] = 1;
            free(p);
        }
    }
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int forks(int n)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, churn_big, (void *)(uintptr_t)i);
    for (int k = 0; k < n; k++) {
        pid_t p = fork();
        if (p == 0) {
            void *q = malloc(100);
            (void)q;
            _exit(0);
        }
        int st;
        waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 1;
    }
    stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    puts("done");
    return 0;
}

static int signal_child(int n)
{
    for (int k = 0; k < n; k++) {
        pid_t p = fork();
        if (p == 0) {
            double end = now() + 0.3;
            while (now() < end) { /* keep calling malloc: the request is served */
                void *q = malloc(64);
                free(q);
            }
            _exit(0);
        }
        kill(p, SIGRTMIN + 7);
        int st;
        waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 1;
    }
    puts("done");
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[2]) : 10;
    if (argc > 1 && !strcmp(argv[1], "forks"))
        return forks(n);
    if (argc > 1 && !strcmp(argv[1], "signal-child"))
        return signal_child(n);
    fprintf(stderr, "usage: fork_load forks|signal-child [N]\n");
    return 2;
}
