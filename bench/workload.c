/*
 * workload.c - the benchmark target: one program, several allocation
 * patterns chosen by the first argument (alloc-heavy, service, pair, realloc, mmap,
 * live, live-stacks). bench/run times it natively and under each interposer. It prints
 * its own figures as "bench.KEY VALUE" lines on stdout (allocations per
 * second, ns per pair, peak RSS at the end of main, CLOCK_MONOTONIC then).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mremap */
#endif
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

/* Keeps the compiler from eliding malloc/free pairs and recursion. */
static void *volatile bench_sink;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: fast, per-thread, deterministic. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void die(const char *what)
{
    fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("malloc");
    return p;
}

/* ------------------------------------------------------------------ */
/* alloc-heavy: 2 threads, deep varied stacks, ring working set,      */
/* cross-thread frees, realloc growth.                                */
/* ------------------------------------------------------------------ */

#define HEAVY_THREADS 2
#define HEAVY_RING 8192         /* live blocks kept per thread */
#define HEAVY_PATHS 4096        /* distinct recursion paths (stack shapes) */
#define HEAVY_OPS_PER_LEAF 8
#define HEAVY_HANDOFF 64        /* blocks per batch handed to the other thread */
#define HEAVY_QUEUE_CAP 65536
#define HEAVY_GROW_SLOTS 16
#define HEAVY_GROW_MAX (64 * 1024)

struct xqueue {
    pthread_mutex_t lock;
    size_t n;
    void *items[HEAVY_QUEUE_CAP];
};

struct heavy {
    int id;
    int varied; /* alloc-varied: a fresh size per allocation */
    uint64_t rng;
    uint64_t leaves;
    void **ring;
    size_t ring_pos;
    struct xqueue *inbox;
    struct xqueue *outbox;
    void *handoff[HEAVY_HANDOFF];
    int nhandoff;
    char *grow[HEAVY_GROW_SLOTS];
    size_t grow_n[HEAVY_GROW_SLOTS];
    uint64_t allocs, frees, reallocs, xfrees;
};

/* A size in the mix: 60% 16-128 B, 30% 128 B-1 KiB, 9% 1-4 KiB, 1% 8-64 KiB. */
static size_t heavy_mix(uint64_t r)
{
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 60)
        return 16 + r % 113;
    if (pick < 90)
        return 128 + r % 897;
    if (pick < 99)
        return 1024 + r % 3073;
    return 8192 + r % (56 * 1024 + 1);
}

/* Like real code, a call stack allocates a few sizes: each path has a base
 * size from the mix and uses it, twice it or it plus 16. With varied set
 * (mode alloc-varied), every allocation draws a fresh size from the mix, so
 * the (stack, size) pairs run into the millions. */
static size_t heavy_size(const struct heavy *h, uint32_t path, uint64_t r)
{
    if (h->varied)
        return heavy_mix(r);
    uint64_t x = (uint64_t)path * 0x9E3779B97F4A7C15ULL;
    size_t base = heavy_mix(x ^ (x >> 29));
    switch (r % 4) {
    case 0:
        return base * 2;
    case 1:
        return base + 16;
    default:
        return base;
    }
}

static void heavy_flush(struct heavy *h)
{
    if (!h->nhandoff)
        return;
    struct xqueue *q = h->outbox;
    pthread_mutex_lock(&q->lock);
    int i = 0;
    for (; i < h->nhandoff && q->n < HEAVY_QUEUE_CAP; i++)
        q->items[q->n++] = h->handoff[i];
    pthread_mutex_unlock(&q->lock);
    for (; i < h->nhandoff; i++) { /* queue full: free here */
        free(h->handoff[i]);
        h->frees++;
    }
    h->nhandoff = 0;
}

static void heavy_drain(struct heavy *h)
{
    struct xqueue *q = h->inbox;
    void *local[HEAVY_HANDOFF * 4];
    size_t n;
    if (!__atomic_load_n(&q->n, __ATOMIC_RELAXED))
        return;
    do {
        pthread_mutex_lock(&q->lock);
        n = q->n < sizeof local / sizeof *local ? q->n : sizeof local / sizeof *local;
        q->n -= n;
        memcpy(local, q->items + q->n, n * sizeof *local);
        pthread_mutex_unlock(&q->lock);
        for (size_t i = 0; i < n; i++)
            free(local[i]);
        h->xfrees += n;
        h->frees += n;
    } while (n == sizeof local / sizeof *local);
}

/* The leaf: a batch of allocation operations, all at this call stack. */
static NOINLINE void heavy_ops(struct heavy *h, uint32_t path)
{
    for (int k = 0; k < HEAVY_OPS_PER_LEAF; k++) {
        uint64_t r = rng_next(&h->rng);
        unsigned op = (unsigned)(r % 100);
        r >>= 7;
        if (op < 4) { /* realloc growth of a long-lived buffer */
            unsigned g = (unsigned)(r % HEAVY_GROW_SLOTS);
            if (!h->grow[g] || h->grow_n[g] >= HEAVY_GROW_MAX) {
                free(h->grow[g]);
                if (h->grow[g])
                    h->frees++;
                h->grow_n[g] = 64;
                h->grow[g] = xmalloc(64);
                h->allocs++;
            } else {
                size_t n = h->grow_n[g] * 2;
                char *p = realloc(h->grow[g], n);
                if (!p)
                    die("realloc");
                p[n - 1] = 1;
                h->grow[g] = p;
                h->grow_n[g] = n;
                h->reallocs++;
            }
            continue;
        }
        size_t size = heavy_size(h, path, r);
        char *p = op < 9 ? calloc(1, size) : malloc(size);
        if (!p)
            die("malloc");
        memset(p, (int)k, size < 32 ? size : 32);
        h->allocs++;
        void *victim = h->ring[h->ring_pos];
        h->ring[h->ring_pos] = p;
        h->ring_pos = (h->ring_pos + 1) % HEAVY_RING;
        if (!victim)
            continue;
        if ((r >> 20) % 4 == 0) { /* a quarter is freed by the other thread */
            h->handoff[h->nhandoff++] = victim;
            if (h->nhandoff == HEAVY_HANDOFF)
                heavy_flush(h);
        } else {
            free(victim);
            h->frees++;
        }
    }
}

/* Six distinct recursive functions; the path (which one calls which, how
 * deep) is a function of a seed drawn from HEAVY_PATHS values, so the
 * program has thousands of distinct, repeating call stacks. */
typedef int (*heavy_fn)(struct heavy *, uint32_t, int);
static int heavy_a(struct heavy *h, uint32_t path, int depth);
static int heavy_b(struct heavy *h, uint32_t path, int depth);
static int heavy_c(struct heavy *h, uint32_t path, int depth);
static int heavy_d(struct heavy *h, uint32_t path, int depth);
static int heavy_e(struct heavy *h, uint32_t path, int depth);
static int heavy_f(struct heavy *h, uint32_t path, int depth);
static const heavy_fn heavy_fns[6] = {heavy_a, heavy_b, heavy_c, heavy_d, heavy_e, heavy_f};

static inline int heavy_next(struct heavy *h, uint32_t path, int depth)
{
    if (depth <= 0) {
        heavy_ops(h, path);
        return 1;
    }
    uint32_t x = path * 2654435761u + (uint32_t)depth * 40503u;
    x ^= x >> 15;
    return heavy_fns[x % 6](h, path, depth - 1) + 1;
}

#define HEAVY_DEFINE(name, salt)                                          \
    static NOINLINE int name(struct heavy *h, uint32_t path, int depth)   \
    {                                                                     \
        volatile int pad = (salt);                                        \
        int r = heavy_next(h, path ^ (salt), depth);                      \
        return r + pad - (salt);                                          \
    }
HEAVY_DEFINE(heavy_a, 0x11)
HEAVY_DEFINE(heavy_b, 0x22)
HEAVY_DEFINE(heavy_c, 0x33)
HEAVY_DEFINE(heavy_d, 0x44)
HEAVY_DEFINE(heavy_e, 0x55)
HEAVY_DEFINE(heavy_f, 0x66)

static void *heavy_thread(void *arg)
{
    struct heavy *h = arg;
    h->ring = calloc(HEAVY_RING, sizeof *h->ring);
    if (!h->ring)
        die("calloc");
    for (uint64_t i = 0; i < h->leaves; i++) {
        uint32_t path = (uint32_t)(rng_next(&h->rng) % HEAVY_PATHS);
        int depth = 5 + (int)(path % 26); /* 5-30 frames of recursion */
        heavy_fns[path % 6](h, path, depth);
        if ((i & 3) == 0)
            heavy_drain(h);
    }
    heavy_flush(h);
    for (size_t i = 0; i < HEAVY_RING; i++)
        if (h->ring[i]) {
            free(h->ring[i]);
            h->frees++;
        }
    for (int g = 0; g < HEAVY_GROW_SLOTS; g++)
        if (h->grow[g]) {
            free(h->grow[g]);
            h->frees++;
        }
    free(h->ring);
    return NULL;
}

static int run_heavy(double scale, int varied)
{
    static struct xqueue queues[HEAVY_THREADS];
    struct heavy hs[HEAVY_THREADS];
    pthread_t tids[HEAVY_THREADS];
    uint64_t leaves = (uint64_t)(300000 * scale);

    memset(hs, 0, sizeof hs);
    for (int i = 0; i < HEAVY_THREADS; i++) {
        pthread_mutex_init(&queues[i].lock, NULL);
        hs[i].id = i;
        hs[i].varied = varied;
        hs[i].rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        hs[i].leaves = leaves;
        hs[i].inbox = &queues[i];
        hs[i].outbox = &queues[(i + 1) % HEAVY_THREADS];
    }
    uint64_t t0 = now_ns();
    for (int i = 0; i < HEAVY_THREADS; i++)
        if ((errno = pthread_create(&tids[i], NULL, heavy_thread, &hs[i])))
            die("pthread_create");
    uint64_t allocs = 0, frees = 0, reallocs = 0, xfrees = 0;
    for (int i = 0; i < HEAVY_THREADS; i++) {
        pthread_join(tids[i], NULL);
    }
    for (int i = 0; i < HEAVY_THREADS; i++) { /* what the other thread left */
        for (size_t k = 0; k < queues[i].n; k++) {
            free(queues[i].items[k]);
            hs[i].frees++;
            hs[i].xfrees++;
        }
        queues[i].n = 0;
        allocs += hs[i].allocs;
        frees += hs[i].frees;
        reallocs += hs[i].reallocs;
        xfrees += hs[i].xfrees;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("bench.threads %d\n", HEAVY_THREADS);
    printf("bench.allocs %" PRIu64 "\n", allocs);
    printf("bench.reallocs %" PRIu64 "\n", reallocs);
    printf("bench.frees %" PRIu64 "\n", frees);
    printf("bench.cross_thread_frees %" PRIu64 "\n", xfrees);
    printf("bench.secs %.6f\n", secs);
    printf("bench.allocs_per_s %.0f\n", (double)(allocs + reallocs) / secs);
    return allocs == frees ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* service: CPU-bound request loop, a few allocations per request.    */
/* ------------------------------------------------------------------ */

struct token {
    const char *s;
    unsigned len;
};

#define SERVICE_CACHE 256

struct service {
    uint64_t rng;
    uint64_t allocs;
    uint64_t digest;
    char *cache[SERVICE_CACHE];
};

static int token_cmp(const void *a, const void *b)
{
    const struct token *x = a, *y = b;
    unsigned n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (int)x->len - (int)y->len;
}

static NOINLINE char *service_read(struct service *sv, size_t *lenp)
{
    static const char alphabet[] = "etaoinshrdlucmfwypvbgkjqxz";
    size_t len = 320 + rng_next(&sv->rng) % 512;
    char *buf = xmalloc(len + 1);
    sv->allocs++;
    uint64_t r = rng_next(&sv->rng);
    for (size_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            r = rng_next(&sv->rng);
        unsigned c = (unsigned)(r & 31);
        r >>= 5;
        buf[i] = c < 5 ? ' ' : alphabet[c % 26];
    }
    buf[len] = 0;
    *lenp = len;
    return buf;
}

static NOINLINE struct token *service_parse(struct service *sv, const char *buf, size_t len,
                                            size_t *ntok)
{
    struct token *t = xmalloc((len / 2 + 1) * sizeof *t);
    sv->allocs++;
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && buf[i] == ' ')
            i++;
        size_t s = i;
        while (i < len && buf[i] != ' ')
            i++;
        if (i > s) {
            t[n].s = buf + s;
            t[n].len = (unsigned)(i - s);
            n++;
        }
    }
    *ntok = n;
    return t;
}

static NOINLINE uint64_t service_hash(const struct token *t, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; k < t[i].len; k++)
            h = (h ^ (unsigned char)t[i].s[k]) * 1099511628211ULL;
    return h;
}

static NOINLINE char *service_respond(struct service *sv, const struct token *t, size_t n,
                                      uint64_t h)
{
    char *resp = xmalloc(96);
    sv->allocs++;
    snprintf(resp, 96, "%zu tokens, first %.*s, last %.*s, hash %016" PRIx64, n,
             n ? (int)t[0].len : 0, n ? t[0].s : "", n ? (int)t[n - 1].len : 0,
             n ? t[n - 1].s : "", h);
    return resp;
}

static NOINLINE void service_handle(struct service *sv, uint64_t req)
{
    size_t len, ntok;
    char *buf = service_read(sv, &len);
    struct token *tok = service_parse(sv, buf, len, &ntok);
    qsort(tok, ntok, sizeof *tok, token_cmp);
    uint64_t h = service_hash(tok, ntok);
    char *resp = service_respond(sv, tok, ntok, h);
    sv->digest += (unsigned char)resp[0] + h;
    if ((req & 7) == 0) { /* one request in eight updates a small cache */
        unsigned slot = (unsigned)(h % SERVICE_CACHE);
        free(sv->cache[slot]);
        sv->cache[slot] = resp;
    } else {
        free(resp);
    }
    free(tok);
    free(buf);
}

static NOINLINE void service_dispatch(struct service *sv, uint64_t req)
{
    service_handle(sv, req);
    bench_sink = sv;
}

static NOINLINE void service_loop(struct service *sv, uint64_t requests)
{
    for (uint64_t i = 0; i < requests; i++)
        service_dispatch(sv, i);
}

static int run_service(double scale)
{
    struct service sv;
    memset(&sv, 0, sizeof sv);
    sv.rng = 0x1234567887654321ULL;
    uint64_t requests = (uint64_t)(100000 * scale);
    uint64_t t0 = now_ns();
    service_loop(&sv, requests);
    double secs = (double)(now_ns() - t0) / 1e9;
    for (int i = 0; i < SERVICE_CACHE; i++)
        free(sv.cache[i]);
    printf("bench.requests %" PRIu64 "\n", requests);
    printf("bench.allocs %" PRIu64 "\n", sv.allocs);
    printf("bench.secs %.6f\n", secs);
    printf("bench.requests_per_s %.0f\n", (double)requests / secs);
    printf("bench.allocs_per_s %.0f\n", (double)sv.allocs / secs);
    printf("bench.digest %016" PRIx64 "\n", sv.digest);
    return 0;
}

/* ------------------------------------------------------------------ */
/* pair: malloc+free at ~12 frames of stack depth.                    */
/* ------------------------------------------------------------------ */

static NOINLINE void pair_loop(uint64_t n)
{
    static const size_t sizes[4] = {24, 64, 40, 128};
    for (uint64_t i = 0; i < n; i++) {
        void *p = malloc(sizes[i & 3]);
        bench_sink = p;
        free(p);
    }
}

static NOINLINE int pair_descend(int depth, uint64_t n)
{
    if (depth <= 0) {
        pair_loop(n);
        return 0;
    }
    volatile int pad = depth; /* a real frame, not a tail call */
    return pair_descend(depth - 1, n) + pad - depth + 1;
}

static int run_pair(double scale)
{
    uint64_t n = (uint64_t)(16000000 * scale);
    uint64_t t0 = now_ns();
    /* main, run_pair, 10 x pair_descend, pair_loop: frame 0 is pair_loop,
     * 12 frames up to main (plus libc's start frames). */
    pair_descend(10, n);
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("bench.pairs %" PRIu64 "\n", n);
    printf("bench.secs %.6f\n", secs);
    printf("bench.ns_per_pair %.1f\n", secs * 1e9 / (double)n);
    printf("bench.allocs_per_s %.0f\n", (double)n / secs);
    return 0;
}

/* ------------------------------------------------------------------ */
/* realloc: buffers grown by realloc in small steps (string builders, */
/* vectors), restarted when full, from call paths 7-13 frames deep.   */
/* ------------------------------------------------------------------ */

#define RE_BUFS 64
#define RE_CHUNK 1000 /* operations per descent */

struct re_state {
    uint64_t rng;
    char *buf[RE_BUFS];
    size_t len[RE_BUFS], cap[RE_BUFS];
    uint64_t reallocs, allocs, frees;
};

static NOINLINE void re_op(struct re_state *st)
{
    uint64_t r = rng_next(&st->rng);
    unsigned b = (unsigned)(r % RE_BUFS);
    r >>= 8;
    if (!st->buf[b] || st->len[b] >= st->cap[b]) { /* full: start a new one */
        if (st->buf[b]) {
            free(st->buf[b]);
            st->frees++;
        }
        st->buf[b] = xmalloc(32);
        st->len[b] = 32;
        st->cap[b] = 1024 + r % (63 * 1024);
        st->allocs++;
        return;
    }
    size_t n = st->len[b] + 16 + (r >> 16) % 300;
    char *p = realloc(st->buf[b], n);
    if (!p)
        die("realloc");
    p[n - 1] = 1;
    st->buf[b] = p;
    st->len[b] = n;
    st->reallocs++;
}

static NOINLINE int re_descend(struct re_state *st, int depth)
{
    if (depth <= 0) {
        for (int i = 0; i < RE_CHUNK; i++)
            re_op(st);
        return 0;
    }
    volatile int pad = depth; /* a real frame, not a tail call */
    return re_descend(st, depth - 1) + pad - depth + 1;
}

static int run_realloc(double scale)
{
    static struct re_state st = {.rng = 0x5eed};
    uint64_t chunks = (uint64_t)(4000 * scale) + 1;
    uint64_t t0 = now_ns();
    for (uint64_t c = 0; c < chunks; c++)
        re_descend(&st, 4 + (int)(c % 7)); /* 7 stack depths: 7 stacks per call site */
    double secs = (double)(now_ns() - t0) / 1e9;
    for (int b = 0; b < RE_BUFS; b++)
        free(st.buf[b]);
    printf("bench.reallocs %" PRIu64 "\n", st.reallocs);
    printf("bench.secs %.6f\n", secs);
    printf("bench.allocs_per_s %.0f\n", (double)(st.reallocs + st.allocs) / secs);
    return 0;
}

/* ------------------------------------------------------------------ */
/* mmap: mmap, touch, madvise FREE/DONTNEED, mremap, munmap.          */
/* ------------------------------------------------------------------ */

#define MMAP_RING 8

static NOINLINE void mmap_touch(char *p, size_t len, size_t page)
{
    for (size_t off = 0; off < len; off += page)
        p[off] = 1;
}

static int run_mmap(double scale)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    struct { char *p; size_t len; } ring[MMAP_RING];
    uint64_t rng = 42, maps = 0, advises = 0, unmaps = 0, remaps = 0;
    uint64_t iters = (uint64_t)(9000 * scale);
    memset(ring, 0, sizeof ring);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        unsigned slot = (unsigned)(i % MMAP_RING);
        if (ring[slot].p) {
            char *p = ring[slot].p;
            size_t len = ring[slot].len;
            if (len >= 4 * page && (i & 1)) { /* unmap a middle part first */
                if (munmap(p + page, page))
                    die("munmap");
                if (munmap(p, page) || munmap(p + 2 * page, len - 2 * page))
                    die("munmap");
                unmaps += 3;
            } else {
                if (munmap(p, len))
                    die("munmap");
                unmaps++;
            }
        }
        size_t len = (1 + rng_next(&rng) % 16) * 4 * page; /* 16-256 KiB */
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            die("mmap");
        maps++;
        mmap_touch(p, len, page);
        if ((i & 7) == 3) { /* grow, maybe moving */
            char *q = mremap(p, len, len * 2, MREMAP_MAYMOVE);
            if (q == MAP_FAILED)
                die("mremap");
            p = q;
            len *= 2;
            mmap_touch(p + len / 2, len / 2, page);
            remaps++;
        }
        if (madvise(p, len / 2, MADV_FREE))
            die("madvise(MADV_FREE)");
        if (madvise(p + len / 2, len / 4, MADV_DONTNEED))
            die("madvise(MADV_DONTNEED)");
        advises += 2;
        mmap_touch(p, len / 8, page); /* reuse part of the lazily freed range */
        ring[slot].p = p;
        ring[slot].len = len;
    }
    for (int s = 0; s < MMAP_RING; s++)
        if (ring[s].p) {
            munmap(ring[s].p, ring[s].len);
            unmaps++;
        }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("bench.maps %" PRIu64 "\n", maps);
    printf("bench.remaps %" PRIu64 "\n", remaps);
    printf("bench.madvises %" PRIu64 "\n", advises);
    printf("bench.unmaps %" PRIu64 "\n", unmaps);
    printf("bench.secs %.6f\n", secs);
    printf("bench.maps_per_s %.0f\n", (double)maps / secs);
    return 0;
}

/* ------------------------------------------------------------------ */
/* live N: allocate N blocks of B bytes, keep them all, exit.         */
/* ------------------------------------------------------------------ */

static NOINLINE void *live_alloc(size_t size)
{
    return malloc(size);
}

static int run_live(uint64_t n, size_t size)
{
    void **blocks = xmalloc((n ? n : 1) * sizeof *blocks);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        blocks[i] = live_alloc(size);
        if (!blocks[i])
            die("malloc");
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    bench_sink = blocks;
    printf("bench.live_blocks %" PRIu64 "\n", n);
    printf("bench.block_size %zu\n", size);
    printf("bench.secs %.6f\n", secs);
    printf("bench.ns_per_alloc %.1f\n", n ? secs * 1e9 / (double)n : 0.0);
    return 0; /* the blocks stay live: the exit snapshot holds them all */
}

static void usage(void);

/* ------------------------------------------------------------------ */
/* live-stacks N S [hold]: N live blocks of 32 B over S distinct call */
/* stacks; with "hold", then time malloc+free pairs on a second       */
/* thread while signal snapshots are written.                         */
/* ------------------------------------------------------------------ */

/* A stack is a path of STK_LEVELS digits, base 10: stk_fns[d0] calls
 * stk_fns[d1] ... and the last one calls malloc. Each function's call site
 * is its own return address, so the S paths are S distinct stacks. */
#define STK_LEVELS 4
#define STK_MAX 10000 /* 10^STK_LEVELS */

typedef void *(*stk_fn)(uint32_t path, int level);
static const stk_fn stk_fns[10];

static inline void *stk_next(uint32_t path, int level)
{
    if (level >= STK_LEVELS)
        return malloc(32);
    uint32_t d = path;
    for (int i = 0; i < level; i++)
        d /= 10;
    return stk_fns[d % 10](path, level + 1);
}

#define STK_DEFINE(name, salt)                                   \
    static NOINLINE void *name(uint32_t path, int level)         \
    {                                                            \
        volatile int pad = (salt); /* a real frame, no tail call */ \
        void *p = stk_next(path, level);                         \
        bench_sink = p;                                          \
        return (char *)p + pad - (salt);                         \
    }
STK_DEFINE(stk_0, 0)
STK_DEFINE(stk_1, 1)
STK_DEFINE(stk_2, 2)
STK_DEFINE(stk_3, 3)
STK_DEFINE(stk_4, 4)
STK_DEFINE(stk_5, 5)
STK_DEFINE(stk_6, 6)
STK_DEFINE(stk_7, 7)
STK_DEFINE(stk_8, 8)
STK_DEFINE(stk_9, 9)
static const stk_fn stk_fns[10] = {stk_0, stk_1, stk_2, stk_3, stk_4,
                                   stk_5, stk_6, stk_7, stk_8, stk_9};

#define HOLD_ROUNDS 5
#define HOLD_BASE_NS 200000000u /* each baseline window: 200 ms */

struct holder {
    int sig;
    _Atomic int phase; /* 2k: baseline before write k, 2k+1: during write k, -1: stop */
    uint64_t max_ns[2 * HOLD_ROUNDS];
    uint64_t pairs[2 * HOLD_ROUNDS];
    uint64_t slow[2 * HOLD_ROUNDS]; /* pairs that took 100 us or more */
};

static void *hold_thread(void *arg)
{
    struct holder *h = arg;
    sigset_t set; /* the signal goes to another thread: only waits are timed */
    sigemptyset(&set);
    sigaddset(&set, h->sig);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        int ph = atomic_load_explicit(&h->phase, memory_order_relaxed);
        if (ph < 0)
            break;
        uint64_t t0 = now_ns();
        void *p = malloc(32);
        bench_sink = p;
        free(p);
        uint64_t d = now_ns() - t0;
        if (d > h->max_ns[ph])
            h->max_ns[ph] = d;
        h->pairs[ph]++;
        h->slow[ph] += d >= 100000;
    }
    return NULL;
}

/* Snapshot files (not .tmp) in DIR. */
static int count_snaps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        die("opendir LEAKWATCH_OUTPUT");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 7 && !strcmp(e->d_name + l - 7, ".lwsnap"))
            n++;
    }
    closedir(d);
    return n;
}

static int snap_signal(void)
{
    const char *s = getenv("LEAKWATCH_SIGNAL");
    if (!s || !*s)
        return SIGRTMIN + 7;
    if (!strncmp(s, "RTMIN+", 6))
        return SIGRTMIN + atoi(s + 6);
    if (!strcmp(s, "USR1"))
        return SIGUSR1;
    if (!strcmp(s, "USR2"))
        return SIGUSR2;
    return atoi(s);
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static int run_hold(void)
{
    const char *dir = getenv("LEAKWATCH_OUTPUT");
    if (!dir || !*dir) {
        fprintf(stderr, "workload: live-stacks hold needs LEAKWATCH_OUTPUT (run under leakwatch)\n");
        return 1;
    }
    static struct holder h;
    h.sig = snap_signal();
    pthread_t tid;
    if ((errno = pthread_create(&tid, NULL, hold_thread, &h)))
        die("pthread_create");
    uint64_t write_ns[HOLD_ROUNDS];
    for (int k = 0; k < HOLD_ROUNDS; k++) {
        atomic_store(&h.phase, 2 * k);
        sleep_ns(HOLD_BASE_NS);
        int before = count_snaps(dir);
        atomic_store(&h.phase, 2 * k + 1);
        uint64_t t0 = now_ns();
        kill(getpid(), h.sig);
        while (count_snaps(dir) <= before) {
            if (now_ns() - t0 > 10000000000u) {
                atomic_store(&h.phase, -1);
                pthread_join(tid, NULL);
                fprintf(stderr, "workload: no snapshot 10 s after signal %d\n", h.sig);
                return 1;
            }
            sleep_ns(100000);
        }
        write_ns[k] = now_ns() - t0;
    }
    atomic_store(&h.phase, -1);
    pthread_join(tid, NULL);
    uint64_t base_max = 0, write_max = 0, base_pairs = 0, write_pairs = 0, base_slow = 0,
             write_slow = 0;
    printf("bench.hold_rounds %d\n", HOLD_ROUNDS);
    for (int k = 0; k < HOLD_ROUNDS; k++) {
        if (h.max_ns[2 * k] > base_max)
            base_max = h.max_ns[2 * k];
        if (h.max_ns[2 * k + 1] > write_max)
            write_max = h.max_ns[2 * k + 1];
        base_pairs += h.pairs[2 * k];
        write_pairs += h.pairs[2 * k + 1];
        base_slow += h.slow[2 * k];
        write_slow += h.slow[2 * k + 1];
        printf("bench.hold_round%d base_max_us %.1f write_max_us %.1f write_ms %.1f write_pairs %" PRIu64 "\n",
               k, h.max_ns[2 * k] / 1e3, h.max_ns[2 * k + 1] / 1e3, write_ns[k] / 1e6,
               h.pairs[2 * k + 1]);
    }
    uint64_t wmin = write_ns[0], wmax = write_ns[0];
    for (int k = 1; k < HOLD_ROUNDS; k++) {
        if (write_ns[k] < wmin)
            wmin = write_ns[k];
        if (write_ns[k] > wmax)
            wmax = write_ns[k];
    }
    printf("bench.hold_base_max_us %.1f\n", base_max / 1e3);
    printf("bench.hold_write_max_us %.1f\n", write_max / 1e3);
    printf("bench.hold_base_pairs %" PRIu64 "\n", base_pairs);
    printf("bench.hold_write_pairs %" PRIu64 "\n", write_pairs);
    printf("bench.hold_base_slow %" PRIu64 "\n", base_slow);
    printf("bench.hold_write_slow %" PRIu64 "\n", write_slow);
    printf("bench.hold_write_ms_min %.1f\n", wmin / 1e6);
    printf("bench.hold_write_ms_max %.1f\n", wmax / 1e6);
    return 0;
}

static int run_live_stacks(uint64_t n, uint32_t nstacks, int hold)
{
    if (nstacks < 1 || nstacks > STK_MAX)
        usage();
    void **blocks = xmalloc((n ? n : 1) * sizeof *blocks);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        blocks[i] = stk_next((uint32_t)(i % nstacks), 0);
        if (!blocks[i])
            die("malloc");
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    bench_sink = blocks;
    printf("bench.live_blocks %" PRIu64 "\n", n);
    printf("bench.call_stacks %" PRIu32 "\n", nstacks);
    printf("bench.secs %.6f\n", secs);
    fflush(stdout);
    return hold ? run_hold() : 0; /* the blocks stay live until exit */
}

static void usage(void)
{
    fprintf(stderr,
            "usage: workload alloc-heavy|alloc-varied|service|pair|realloc|mmap [SCALE]\n"
            "       workload live N [SIZE]\n"
            "       workload live-stacks N STACKS [hold]\n"
            "SCALE multiplies the default amount of work (default 1.0).\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    double scale = argc > 2 ? strtod(argv[2], NULL) : 1.0;
    int rc;

    if (scale <= 0)
        usage();
    if (!strcmp(mode, "alloc-heavy"))
        rc = run_heavy(scale, 0);
    else if (!strcmp(mode, "alloc-varied"))
        rc = run_heavy(scale, 1);
    else if (!strcmp(mode, "service"))
        rc = run_service(scale);
    else if (!strcmp(mode, "pair"))
        rc = run_pair(scale);
    else if (!strcmp(mode, "realloc"))
        rc = run_realloc(scale);
    else if (!strcmp(mode, "mmap"))
        rc = run_mmap(scale);
    else if (!strcmp(mode, "live-stacks") && argc > 3)
        rc = run_live_stacks(strtoull(argv[2], NULL, 10), (uint32_t)strtoul(argv[3], NULL, 10),
                             argc > 4 && !strcmp(argv[4], "hold"));
    else if (!strcmp(mode, "live") && argc > 2)
        rc = run_live(strtoull(argv[2], NULL, 10), argc > 3 ? strtoul(argv[3], NULL, 10) : 32);
    else
        usage();

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench.peak_rss_kb %ld\n", ru.ru_maxrss);
    printf("bench.main_end_mono_ns %" PRIu64 "\n", now_ns());
    fflush(stdout);
    return rc;
}
