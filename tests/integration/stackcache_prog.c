/*
 * stackcache_prog - call stacks built to confuse a stack cache: 64 paths of
 * six calls each through step_a or step_b (the same frame size) all reach
 * leaf() at the same depth, so every allocation has the same stack
 * pointer and return address at malloc and differs only further out. Path p
 * allocates 16 + p bytes, (p % 5) + 1 times per round, in a scrambled order
 * each round, and keeps every block: its stack must hold exactly that.
 *
 * Modes (argv[1]):
 *   paths   the 64 paths from main, then again from a second thread
 *           (each thread has its own cache)
 *   alloca  each path under a frame whose size changes with alloca (its
 *           callees' stack pointers move round to round)
 *   signal  every allocation made by a SIGUSR1 handler, raised at the leaf
 *   deep    each path under 40 more frames (beyond what the cache holds)
 * It prints "path P BYTES OBJECTS" for each path, the truth.
 */
#include <alloca.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
#define LEVELS 6
#define PATHS (1u << LEVELS)
#define ROUNDS 20

static void *volatile sink;
static unsigned long long objects[PATHS];
static unsigned pending_path; /* for the signal handler */

static NOINLINE void alloc_for(unsigned path)
{
    void *p = malloc(16 + path);
    if (!p)
        abort();
    memset(p, (int)path, 16 + path);
    sink = p; /* kept: never freed */
    objects[path]++;
}

static NOINLINE void leaf(unsigned path, int raise_it)
{
    if (raise_it) {
        pending_path = path;
        raise(SIGUSR1);
    } else {
        alloc_for(path);
    }
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void step_a(unsigned path, int level, int raise_it);
static NOINLINE void step_b(unsigned path, int level, int raise_it);

/* Two functions, one body: the same frame, different return addresses. */
#define STEP(name)                                                                                 \
    static NOINLINE void name(unsigned path, int level, int raise_it)                              \
    {                                                                                              \
        if (level == LEVELS)                                                                       \
            leaf(path, raise_it);                                                                  \
        else if ((path >> level) & 1)                                                              \
            step_a(path, level + 1, raise_it);                                                     \
        else                                                                                       \
            step_b(path, level + 1, raise_it);                                                     \
        __asm__ volatile("" ::: "memory");                                                         \
    }
STEP(step_a)
STEP(step_b)

static NOINLINE void with_alloca(unsigned path, unsigned round)
{
    size_t n = 32 + 48 * ((path + round) % 9);
    char *b = alloca(n);
    memset(b, 1, n);
    sink = b;
    step_a(path, 0, 0);
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void deep(unsigned path, int more)
{
    if (more)
        deep(path, more - 1);
    else
        step_a(path, 0, 0);
    __asm__ volatile("" ::: "memory");
}

static void on_usr1(int sig)
{
    (void)sig;
    alloc_for(pending_path);
}

static const char *mode;

static NOINLINE void one(unsigned path, unsigned round)
{
    if (!strcmp(mode, "alloca"))
        with_alloca(path, round);
    else if (!strcmp(mode, "deep"))
        deep(path, 40);
    else
        step_a(path, 0, !strcmp(mode, "signal"));
}

static void *run_rounds(void *arg)
{
    (void)arg;
    unsigned long long x = 12345;
    for (unsigned round = 0; round < ROUNDS; round++) {
        /* every path (p % 5) + 1 times, visited in a scrambled order */
        unsigned order[PATHS * 5], n = 0;
        for (unsigned p = 0; p < PATHS; p++)
            for (unsigned k = 0; k <= p % 5; k++)
                order[n++] = p;
        for (unsigned i = n - 1; i > 0; i--) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned j = (unsigned)((x >> 33) % (i + 1));
            unsigned t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (unsigned i = 0; i < n; i++)
            one(order[i], round);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "paths";
    if (strcmp(mode, "paths") && strcmp(mode, "alloca") && strcmp(mode, "signal") &&
        strcmp(mode, "deep")) {
        fprintf(stderr, "usage: stackcache_prog paths|alloca|signal|deep\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    run_rounds(NULL);
    if (!strcmp(mode, "paths")) {
        pthread_t t;
        if (pthread_create(&t, NULL, run_rounds, NULL) || pthread_join(t, NULL))
            return 1;
    }
    for (unsigned p = 0; p < PATHS; p++)
        printf("path %u %llu %llu\n", p, objects[p] * (16 + p), objects[p]);
    return 0;
}
