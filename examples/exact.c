/*
 * exact.c - allocates exactly known amounts through every API leakwatch
 * interposes, each from its own named function, so tests can check the
 * report to the byte. Usage: exact [--report-allocator] MODE... | all
 * Prints nothing on stdout unless --report-allocator is given. Exit status
 * is non-zero if an API misbehaved (the numbers below would then be wrong).
 *
 * Expected live numbers at exit, per frame-0 function (P = page size):
 *   heap stacks            live objects  live bytes        allocations
 *   leak_malloc            100           4800  (100 x 48)  100
 *   leak_calloc            50            10000 (calloc(10,20) x 50)  50
 *   leak_realloc           20            100000 (20 x 5000; each block
 *                                        malloc(8), then realloc to 16, 64,
 *                                        1000, 5000)
 *   leak_reallocarray      30            3360  (reallocarray(NULL,7,16) x 30)  30
 *   leak_posix_memalign    10            1000  (align 64, 100 bytes)  10
 *   leak_aligned_alloc     10            5120  (align 256, 512 bytes)  10
 *   leak_memalign          10            3000  (align 128, 300 bytes)  10
 *   leak_valloc            5             5000  (1000 bytes)  5
 *   leak_pvalloc           4             8P    (2P bytes each)  4
 *   realloc_zero           0             0     (25 x malloc(100) then
 *                                        realloc(p, 0), which frees)  25
 *   churn                  0             0     (1000 blocks of 16+8*(i%64),
 *                                        264160 bytes, all freed)  1000
 *   xt_alloc               32            3072  (thread A allocates 64 x 96,
 *                                        thread B, xt_free, frees the even
 *                                        ones)  64
 *   mmap stacks            live mappings live bytes
 *   map_keep               3             48P   (3 x 16P)
 *   map_punch              1             12P   (16P, middle 4P unmapped)
 *   map_grow               1             6P    (4P, mremap to 8P (forced to
 *                                        move), shrink to 6P, moved again
 *                                        with MREMAP_MAYMOVE|MREMAP_FIXED)
 *   map_blocker, map_scratch  0          0     (helpers, fully unmapped)
 *   release_free           1             64P   (32P of it MADV_FREE'd)
 *   release_dontneed       1             64P   (16P of it MADV_DONTNEED'd)
 * Process totals for a single mapping mode equal that mode's numbers; for
 * "all": mapped 194P, MADV_FREE 32P, MADV_DONTNEED 16P.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef LW_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#define NOINLINE __attribute__((noinline))

/* Live blocks are kept in globals so the compiler cannot drop them. */
static void *keep_malloc[100], *keep_calloc[50], *keep_realloc[20], *keep_reallocarray[30];
static void *keep_pm[10], *keep_aa[10], *keep_ma[10], *keep_va[5], *keep_pva[4];
static void *xt_blocks[64];
static long page;

static void fail(const char *what)
{
    fprintf(stderr, "exact: %s failed: %s\n", what, strerror(errno));
    exit(1);
}

/* Write into a block so the allocation cannot be optimised away. */
static void touch(void *p, size_t n)
{
    if (!p)
        fail("allocation");
    memset(p, 0xa5, n);
}

NOINLINE static void leak_malloc(void)
{
    for (int i = 0; i < 100; i++) {
        keep_malloc[i] = malloc(48);
        touch(keep_malloc[i], 48);
    }
}

NOINLINE static void leak_calloc(void)
{
    for (int i = 0; i < 50; i++) {
        keep_calloc[i] = calloc(10, 20);
        touch(keep_calloc[i], 200);
    }
}

NOINLINE static void leak_realloc(void)
{
    static const size_t sizes[] = {16, 64, 1000, 5000};
    for (int i = 0; i < 20; i++) {
        void *p = malloc(8);
        touch(p, 8);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            p = realloc(p, sizes[s]);
            touch(p, sizes[s]);
        }
        keep_realloc[i] = p;
    }
}

NOINLINE static void leak_reallocarray(void)
{
    for (int i = 0; i < 30; i++) {
        keep_reallocarray[i] = reallocarray(NULL, 7, 16);
        touch(keep_reallocarray[i], 112);
    }
}

NOINLINE static void leak_posix_memalign(void)
{
    for (int i = 0; i < 10; i++) {
        int err = posix_memalign(&keep_pm[i], 64, 100);
        if (err != 0 || ((uintptr_t)keep_pm[i] & 63) != 0)
            fail("posix_memalign");
        touch(keep_pm[i], 100);
    }
}

NOINLINE static void leak_aligned_alloc(void)
{
    for (int i = 0; i < 10; i++) {
        keep_aa[i] = aligned_alloc(256, 512);
        touch(keep_aa[i], 512);
        if ((uintptr_t)keep_aa[i] & 255)
            fail("aligned_alloc alignment");
    }
}

NOINLINE static void leak_memalign(void)
{
    for (int i = 0; i < 10; i++) {
        keep_ma[i] = memalign(128, 300);
        touch(keep_ma[i], 300);
        if ((uintptr_t)keep_ma[i] & 127)
            fail("memalign alignment");
    }
}

NOINLINE static void leak_valloc(void)
{
    for (int i = 0; i < 5; i++) {
        keep_va[i] = valloc(1000);
        touch(keep_va[i], 1000);
    }
}

NOINLINE static void leak_pvalloc(void)
{
    for (int i = 0; i < 4; i++) {
        keep_pva[i] = pvalloc(2 * page);
        touch(keep_pva[i], 2 * page);
    }
}

/* realloc(p, 0) frees p in glibc and returns NULL: nothing stays live. */
NOINLINE static void realloc_zero(void)
{
    for (int i = 0; i < 25; i++) {
        void *p = malloc(100);
        touch(p, 100);
        void *q = realloc(p, 0);
        free(q); /* NULL with glibc; a minimal block with some allocators */
    }
}

NOINLINE static void churn(void)
{
    void *blocks[64];
    for (int i = 0; i < 1000; i++) {
        size_t n = 16 + 8 * (size_t)(i % 64);
        blocks[i % 64] = malloc(n);
        touch(blocks[i % 64], n);
        if (i % 64 == 63)
            for (int j = 0; j < 64; j++)
                free(blocks[j]);
    }
    for (int j = 0; j < 1000 % 64; j++)
        free(blocks[j]);
}

NOINLINE static void *xt_alloc(void *arg)
{
    (void)arg;
    for (int i = 0; i < 64; i++) {
        xt_blocks[i] = malloc(96);
        touch(xt_blocks[i], 96);
    }
    return NULL;
}

NOINLINE static void *xt_free(void *arg)
{
    (void)arg;
    for (int i = 0; i < 64; i += 2) {
        free(xt_blocks[i]);
        xt_blocks[i] = NULL;
    }
    return NULL;
}

/* Thread A allocates, thread B frees half of it: frees on another thread. */
static void cross_thread(void)
{
    pthread_t a, b;
    if (pthread_create(&a, NULL, xt_alloc, NULL) != 0)
        fail("pthread_create");
    pthread_join(a, NULL);
    if (pthread_create(&b, NULL, xt_free, NULL) != 0)
        fail("pthread_create");
    pthread_join(b, NULL);
}

NOINLINE static void map_keep(void)
{
    for (int i = 0; i < 3; i++) {
        char *p = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            fail("mmap");
        p[0] = 1;
    }
}

NOINLINE static void map_punch(void)
{
    char *p = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail("mmap");
    if (munmap(p + 6 * page, 4 * page) != 0)
        fail("munmap of the middle");
}

/* A one-page mapping right after [p, p+len), so growing in place is
 * impossible; returns NULL if something is already there (which blocks
 * just as well). */
NOINLINE static void *map_blocker(char *end)
{
    void *b = mmap(end, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    if (b != end) { /* old kernel ignoring the flag: give it back */
        munmap(b, page);
        return NULL;
    }
    return b;
}

/* A free address range of len bytes (mapped, then unmapped at once). */
NOINLINE static char *map_scratch(size_t len)
{
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || munmap(p, len) != 0)
        fail("scratch mmap");
    return p;
}

NOINLINE static void map_grow(void)
{
    char *p = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail("mmap");
    for (long i = 0; i < 4; i++)
        p[i * page] = (char)('a' + i);

    /* grow: must move, the page after it is taken */
    void *blocker = map_blocker(p + 4 * page);
    char *q = mremap(p, 4 * page, 8 * page, MREMAP_MAYMOVE);
    if (q == MAP_FAILED || q == p)
        fail("mremap grow with move");
    if (blocker)
        munmap(blocker, page);
    q[7 * page] = 'h';

    /* shrink in place */
    char *r = mremap(q, 8 * page, 6 * page, 0);
    if (r != q)
        fail("mremap shrink");

    /* move to a chosen free address */
    char *target = map_scratch(6 * page);
    char *s = mremap(r, 6 * page, 6 * page, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    if (s != target)
        fail("mremap move");
    for (long i = 0; i < 4; i++)
        if (s[i * page] != (char)('a' + i))
            fail("mremap kept the contents");
}

NOINLINE static void release_free(void)
{
    char *p = mmap(NULL, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail("mmap");
    memset(p, 0x5a, 64 * page);
    if (madvise(p + 16 * page, 32 * page, MADV_FREE) != 0)
        fail("madvise(MADV_FREE)");
}

NOINLINE static void release_dontneed(void)
{
    char *p = mmap(NULL, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fail("mmap");
    memset(p, 0x5a, 64 * page);
    if (madvise(p, 16 * page, MADV_DONTNEED) != 0)
        fail("madvise(MADV_DONTNEED)");
}

/* Say which allocator served malloc, with evidence the tests can check. */
static void report_allocator(void)
{
#ifdef LW_WITH_JEMALLOC
    uint64_t before = 0, after = 0;
    size_t len = sizeof before;
    uint64_t epoch = 1;
    mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
    if (mallctl("thread.allocated", &before, &len, NULL, 0) != 0)
        fail("mallctl(thread.allocated)");
    void *volatile p = malloc(1 << 20);
    touch(p, 1 << 20);
    len = sizeof after;
    mallctl("thread.allocated", &after, &len, NULL, 0);
    free(p);
    printf("allocator jemalloc thread.allocated+=%llu\n", (unsigned long long)(after - before));
#else
    printf("allocator libc\n");
#endif
    /* glibc and jemalloc answer differently for a 1-byte block. */
    void *volatile b = malloc(1);
    printf("usable_size(1)=%zu\n", malloc_usable_size(b));
    free(b);
}

struct mode {
    const char *name;
    void (*run)(void);
};

static const struct mode modes[] = {
    {"malloc", leak_malloc},
    {"calloc", leak_calloc},
    {"realloc", leak_realloc},
    {"reallocarray", leak_reallocarray},
    {"posix_memalign", leak_posix_memalign},
    {"aligned_alloc", leak_aligned_alloc},
    {"memalign", leak_memalign},
    {"valloc", leak_valloc},
    {"pvalloc", leak_pvalloc},
    {"realloc_zero", realloc_zero},
    {"churn", churn},
    {"cross_thread", cross_thread},
    {"map_keep", map_keep},
    {"map_punch", map_punch},
    {"map_grow", map_grow},
    {"release_free", release_free},
    {"release_dontneed", release_dontneed},
};
#define NMODES (sizeof modes / sizeof modes[0])

int main(int argc, char **argv)
{
    page = sysconf(_SC_PAGESIZE);
    if (argc < 2) {
        fprintf(stderr, "usage: exact [--report-allocator] MODE... | all\nmodes:");
        for (size_t i = 0; i < NMODES; i++)
            fprintf(stderr, " %s", modes[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--report-allocator") == 0) {
            report_allocator();
            continue;
        }
        int found = 0;
        for (size_t i = 0; i < NMODES; i++) {
            if (strcmp(argv[a], "all") == 0 || strcmp(argv[a], modes[i].name) == 0) {
                modes[i].run();
                found = 1;
            }
        }
        if (!found) {
            fprintf(stderr, "exact: unknown mode '%s'\n", argv[a]);
            return 2;
        }
    }
    return 0;
}
