/*
 * cache_pool.c - a large pool allocated once at start beside a small cache
 * that is never evicted. By bytes in use the pool (pool_init, 32 MiB) is
 * far ahead of the cache (cache_put, 200 entries of 1 KiB a round); only
 * growth across snapshots shows which one is the leak. Lookups churn
 * (malloc/free of temporary keys) in between.
 *
 *   cache_pool [--rounds N] [--step]   (--step as in session_leak.c)
 *
 * Built twice: cache_pool_v2 (-DCACHE_POOL_V2) is "the next release", with
 * code added in front, so its addresses and build-id differ while its
 * functions keep their names (for `leakwatch diff` across a deploy).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define POOL_BLOCKS 512
#define POOL_BLOCK (64 * 1024)
#define PUTS_PER_ROUND 200
#define ENTRY 1024

struct entry {
    struct entry *next;
    char value[ENTRY - sizeof(struct entry *)];
};

static void *pool[POOL_BLOCKS];
static struct entry *cache;

#ifdef CACHE_POOL_V2
/* The new release's addition: moves every function after it. */
NOINLINE static unsigned checksum(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}
#endif

NOINLINE static void pool_init(void)
{
    for (int i = 0; i < POOL_BLOCKS; i++) {
        pool[i] = malloc(POOL_BLOCK);
        if (!pool[i])
            abort();
        memset(pool[i], 0, POOL_BLOCK);
    }
}

/* Remember a value forever: nothing ever evicts. */
NOINLINE static void cache_put(int key)
{
    struct entry *e = malloc(sizeof *e);
    if (!e)
        abort();
    snprintf(e->value, sizeof e->value, "value of %d", key);
    e->next = cache;
    cache = e;
}

/* A lookup builds a temporary key and frees it. */
NOINLINE static int cache_get(int key)
{
    char *k = malloc(32 + (size_t)(key % 200));
    if (!k)
        abort();
    snprintf(k, 32, "value of %d", key);
    int hit = 0;
    for (struct entry *e = cache; e && !hit; e = e->next)
        hit = !strcmp(e->value, k);
    free(k);
    return hit;
}

NOINLINE static void *idle_tick(void)
{
    return malloc(16);
}

static void pause_step(int step, int round)
{
    if (!step) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        return;
    }
    /* Wait for a line, with a timer tick every 20 ms that allocates, as a
     * service's timers do: the snapshot asked for meanwhile is written
     * whether or not the library needs an allocation call to start its
     * writer (leakwatch before its idle-program fix did). */
    char line[64];
    printf("round %d\n", round);
    fflush(stdout);
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    while (poll(&pfd, 1, 20) == 0)
        free(idle_tick());
    if (!fgets(line, sizeof line, stdin))
        exit(0);
}

int main(int argc, char **argv)
{
    int rounds = 10, step = 0, key = 0, hits = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--step"))
            step = 1;
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
    }
    printf("cache_pool: pid %d\n", (int)getpid());
    fflush(stdout);
    pool_init();
    pause_step(step, 0);
    for (int r = 1; r <= rounds; r++) {
        for (int i = 0; i < PUTS_PER_ROUND; i++) {
            cache_put(key);
            hits += cache_get(key - 1 - i % 50);
            key++;
        }
        pause_step(step, r);
    }
#ifdef CACHE_POOL_V2
    printf("cache_pool v2: checksum %08x\n", checksum(cache ? cache->value : ""));
#endif
    printf("cache_pool: %d entries cached, %d hits\n", key, hits);
    return 0;
}
