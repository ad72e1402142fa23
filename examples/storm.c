/*
 * storm.c - load for the storm tests (tests/integration/test_storms.py).
 * Usage:
 *   storm signals THREADS   THREADS threads malloc/free in tight loops
 *                           (sizes 16-1008, realloc too) until standard
 *                           input closes, while the test sends the
 *                           snapshot signal hundreds of times; prints
 *                           "keep N", the blocks left live by storm_keep
 *   storm threads N         N threads created and joined, up to 32 at a
 *                           time; each allocates and frees 100 blocks and
 *                           leaves one 64-byte block live (thread_keep);
 *                           prints "threads N"
 * Known live blocks at exit:
 *   storm_keep   1000 x 100 bytes = 100000 (signals)
 *   thread_keep  N x 64 bytes (threads)
 *   churn        nothing (every block it allocates is freed)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define KEEP 1000
#define MAX_THREADS 64
#define WAVE 32

static atomic_bool stop;
static void *kept[KEEP];
static void **thread_blocks;

NOINLINE static void storm_keep(void)
{
    for (int i = 0; i < KEEP; i++) {
        kept[i] = malloc(100);
        if (!kept[i])
            abort();
        memset(kept[i], 1, 100);
    }
}

/* Allocate and free without pause; a few blocks live at a time. */
NOINLINE static void *churn(void *arg)
{
    unsigned long n = (unsigned long)(uintptr_t)arg * 7919;
    void *ring[8] = {0};
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        unsigned slot = n % 8;
        free(ring[slot]);
        size_t len = 16 + (n % 63) * 16;
        char *p = malloc(len);
        if (!p)
            abort();
        p[0] = (char)n;
        if (n % 5 == 0) {
            char *q = realloc(p, len * 2);
            if (!q)
                abort();
            p = q;
        }
        ring[slot] = p;
        n++;
    }
    for (int i = 0; i < 8; i++)
        free(ring[i]);
    return NULL;
}

static int signals_mode(int nthreads)
{
    if (nthreads < 1 || nthreads > MAX_THREADS)
        return 2;
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i) != 0)
            return 1;
    storm_keep();
    /* Run until the test closes our standard input. */
    char buf[256];
    while (read(0, buf, sizeof buf) > 0)
        ;
    atomic_store(&stop, 1);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    printf("keep %d\n", KEEP);
    return 0;
}

NOINLINE static void thread_keep(long i)
{
    thread_blocks[i] = malloc(64);
    if (!thread_blocks[i])
        abort();
    memset(thread_blocks[i], 2, 64);
}

static void *short_lived(void *arg)
{
    long i = (long)(intptr_t)arg;
    void *tmp[100];
    for (int k = 0; k < 100; k++)
        if (!(tmp[k] = malloc((size_t)(16 + k))))
            abort();
    for (int k = 0; k < 100; k++)
        free(tmp[k]);
    thread_keep(i);
    return NULL;
}

static int threads_mode(long n)
{
    if (n < 1 || n > 1000000)
        return 2;
    thread_blocks = calloc((size_t)n, sizeof *thread_blocks);
    if (!thread_blocks)
        return 1;
    pthread_t t[WAVE];
    for (long done = 0; done < n;) {
        int w = 0;
        for (; w < WAVE && done + w < n; w++)
            if (pthread_create(&t[w], NULL, short_lived, (void *)(intptr_t)(done + w)) != 0) {
                perror("storm: pthread_create");
                return 1;
            }
        for (int k = 0; k < w; k++)
            pthread_join(t[k], NULL);
        done += w;
    }
    printf("threads %ld\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "signals"))
        return signals_mode(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "threads"))
        return threads_mode(atol(argv[2]));
    fprintf(stderr, "usage: storm signals THREADS | storm threads N\n");
    return 2;
}
