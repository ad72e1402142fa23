/* Sampling mode: the sampling probability and weights, the countdown's
 * statistics with a fixed seed, exact totals through lw_track_* with real
 * heap blocks (one thread and two threads freeing each other's), realloc's
 * take/put-back, and the address filter. Statistical checks use a fixed
 * seed (deterministic) and bounds of 5 standard deviations. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include "../../include/lw_format.h"
#include "lw.h"
#include "sample.h"
#include "stack.h"
#include "state.h"
#include "table.h"
#include "track.h"

#define T 65536u

static void init_sampled(void)
{
    char *env[] = {"LEAKWATCH_SAMPLE=64K", "LEAKWATCH_SAMPLE_SEED=12345", NULL};
    cr_assert(lw_core_init(env));
    cr_assert_eq(lw_state.cfg.sample, T);
}

TestSuite(sample, .init = init_sampled);

static double absd(double x)
{
    return x < 0 ? -x : x;
}

static double sqroot(double x) /* no libm in the test */
{
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 200; i++)
        r = (r + x / r) / 2;
    return r;
}

Test(sample, probability_is_one_minus_exp)
{
    /* 1 - e^-x for x = 1/2, 1/64, 1/65536, from a table of e^-x. */
    cr_assert(absd(lw_sample_probability(T / 2, T) - 0.3934693402873666) < 1e-14);
    cr_assert(absd(lw_sample_probability(T / 64, T) - 0.015503562994591593) < 1e-14);
    cr_assert(absd(lw_sample_probability(1, T) - 1.525867264777029e-05) < 1e-17);
    cr_assert_eq(lw_sample_probability(T, T), 1.0);
    cr_assert_eq(lw_sample_probability(5 * T, T), 1.0);
}

Test(sample, weights_are_deterministic_and_unbiased)
{
    /* Over many addresses, the integer weights average s/p and 1/p. */
    uint64_t sizes[] = {16, 1000, 40000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t s = sizes[k];
        double p = lw_sample_probability(s, T);
        double sb = 0, so = 0;
        int n = 200000;
        for (int i = 0; i < n; i++) {
            uint64_t b, o, b2, o2;
            uintptr_t addr = 0x7f0000001000u + (uintptr_t)i * 48;
            lw_sample_weight(addr, s, &b, &o);
            lw_sample_weight(addr, s, &b2, &o2);
            cr_assert(b == b2 && o == o2, "the free subtracts what the alloc added");
            cr_assert(o == (uint64_t)(1 / p) || o == (uint64_t)(1 / p) + 1);
            sb += (double)b;
            so += (double)o;
        }
        /* Rounding noise: each weight is off by < 1 from its exact value,
         * the mean by far less (coins average out). */
        cr_assert(absd(sb / n - s / p) < 0.01, "size %lu: mean bytes %f vs %f", (unsigned long)s,
                  sb / n, s / p);
        cr_assert(absd(so / n - 1 / p) < 0.01, "size %lu: mean objects %f vs %f",
                  (unsigned long)s, so / n, 1 / p);
    }
    uint64_t b, o;
    lw_sample_weight(0x1000, 3 * T, &b, &o);
    cr_assert(b == 3 * T && o == 1, "blocks >= the interval count as themselves");
}

Test(sample, countdown_samples_with_probability_p)
{
    /* 10^6 blocks of 1000 bytes: sampled ~ Binomial(n, p). */
    int n = 1000000, hits = 0;
    for (int i = 0; i < n; i++)
        hits += lw_sample_decide(1000, T);
    double p = lw_sample_probability(1000, T);
    double mean = n * p, sd = sqroot(n * p * (1 - p));
    cr_assert(absd(hits - mean) < 5 * sd, "%d samples, expected %.0f +- %.0f", hits, mean, sd);
    /* Mixed sizes: the probability depends on the size alone, not on the
     * blocks before it (memoryless). Alternate 100 and 20000 bytes. */
    int small = 0, large = 0;
    for (int i = 0; i < n; i++) {
        small += lw_sample_decide(100, T);
        large += lw_sample_decide(20000, T);
    }
    double ps = lw_sample_probability(100, T), pl = lw_sample_probability(20000, T);
    cr_assert(absd(small - n * ps) < 5 * sqroot(n * ps * (1 - ps)), "%d small", small);
    cr_assert(absd(large - n * pl) < 5 * sqroot(n * pl * (1 - pl)), "%d large", large);
    for (int i = 0; i < 100; i++)
        cr_assert(lw_sample_decide(T + (uint64_t)i, T), "at or above the interval: always");
}

#if defined(__SANITIZE_ADDRESS__)
#define LW_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LW_TEST_ASAN 1
#endif
#endif

Test(sample, glibc_header_size_is_malloc_usable_size)
{
#ifdef LW_TEST_ASAN
    cr_skip_test("ASan's malloc has no glibc chunk header to read");
#endif
    size_t sizes[] = {0, 1, 8, 24, 25, 100, 1000, 4096, 65536, 200000, 1 << 22};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(sizes[i]);
        lw_sample_glibc = true;
        uint64_t a = lw_sample_size(p);
        lw_sample_glibc = false;
        uint64_t b = lw_sample_size(p);
        cr_assert_eq(a, malloc_usable_size(p), "size %zu", sizes[i]);
        cr_assert_eq(b, malloc_usable_size(p));
        free(p);
    }
}

struct live {
    void **p;
    int n;
};

static __attribute__((noinline)) void *alloc_site(size_t n)
{
    void *p = malloc(n);
    lw_track_alloc(p, n, 0);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void drop(void *p)
{
    lw_track_free(p);
    free(p);
}

static uint64_t heap_stack_inuse_bytes(void)
{
    uint64_t s = 0;
    for (uint32_t id = 1; id <= lw_stack_count(); id++) {
        struct lw_stack_info si;
        if (!lw_stack_info(id, &si) || si.kind != LW_KIND_HEAP)
            continue;
        struct lw_stack_totals c;
        lw_stack_read(id, &c);
        s += c.alloc_bytes - c.free_bytes;
    }
    return s;
}

Test(sample, totals_exact_estimates_within_bound)
{
    enum { N = 100000 };
    void **v = calloc(N, sizeof *v);
    uint64_t alloc_b = 0, free_b = 0, live_n = 0, var = 0;
    for (int i = 0; i < N; i++) {
        size_t n = 16 + (size_t)(i * 7919) % 3000;
        v[i] = alloc_site(n);
        alloc_b += malloc_usable_size(v[i]);
    }
    for (int i = 0; i < N; i += 2) {
        free_b += malloc_usable_size(v[i]);
        drop(v[i]);
        v[i] = NULL;
    }
    struct lw_sample_totals t;
    lw_sample_totals(&t);
    cr_assert_eq(t.alloc_bytes, alloc_b, "allocated bytes exact");
    cr_assert_eq(t.alloc_objects, N);
    cr_assert_eq(t.free_bytes, free_b, "freed bytes exact");
    cr_assert_eq(t.free_objects, N / 2);
    /* The estimate of bytes in use: sum over live blocks of s/p * X,
     * X ~ Bernoulli(p): variance sum of s^2 (1-p)/p. */
    uint64_t live_b = 0;
    for (int i = 1; i < N; i += 2) {
        uint64_t s = malloc_usable_size(v[i]);
        double p = lw_sample_probability(s, T);
        live_b += s;
        live_n++;
        var += (uint64_t)((double)s * (double)s * (1 - p) / p);
    }
    double est = (double)heap_stack_inuse_bytes(), sd = sqroot((double)var);
    cr_assert(absd(est - (double)live_b) < 5 * sd, "estimate %.0f, exact %lu, sd %.0f", est,
              (unsigned long)live_b, sd);
    struct lw_table_stats ts;
    lw_table_stats(&ts);
    cr_assert(ts.live < live_n / 20, "the table holds the sampled blocks only: %lu of %lu",
              (unsigned long)ts.live, (unsigned long)live_n);
    for (int i = 1; i < N; i += 2)
        drop(v[i]);
    lw_sample_totals(&t);
    cr_assert_eq(t.alloc_bytes, t.free_bytes, "everything freed: nothing in use");
    cr_assert_eq(heap_stack_inuse_bytes(), 0, "every sampled block's weight came back off");
    lw_table_stats(&ts);
    cr_assert_eq(ts.live, 0);
    free(v);
}

Test(sample, large_blocks_exact_per_stack)
{
    void *p[5];
    for (int i = 0; i < 5; i++)
        p[i] = alloc_site(T + 1000u * (unsigned)i);
    uint32_t id = 0;
    uint64_t want = 0;
    for (int i = 0; i < 5; i++) {
        struct lw_block b;
        cr_assert(lw_table_lookup((uintptr_t)p[i], &b), "a block >= the interval is always sampled");
        cr_assert(id == 0 || b.stack == id);
        id = b.stack;
        want += malloc_usable_size(p[i]);
    }
    struct lw_stack_totals c;
    lw_stack_read(id, &c);
    cr_assert_eq(c.alloc_bytes, want);
    cr_assert_eq(c.alloc_objects, 5);
    for (int i = 0; i < 5; i++)
        drop(p[i]);
    lw_stack_read(id, &c);
    cr_assert_eq(c.free_bytes, want);
}

Test(sample, realloc_take_put_back_and_move)
{
    void *small = alloc_site(100), *big = alloc_site(2 * T);
    uint64_t us = malloc_usable_size(small), ub = malloc_usable_size(big);
    struct lw_block b;
    /* failed realloc of both: nothing changes */
    cr_assert(lw_track_take(small, &b));
    cr_assert_eq(b.size, us);
    lw_track_put_back(small, &b);
    cr_assert(lw_track_take(big, &b));
    cr_assert_neq(b.stack, 0, "the big block was sampled");
    lw_track_put_back(big, &b);
    struct lw_block again;
    cr_assert(lw_table_lookup((uintptr_t)big, &again), "put back into the table");
    struct lw_sample_totals t;
    lw_sample_totals(&t);
    cr_assert_eq(t.alloc_bytes - t.free_bytes, us + ub);
    /* successful realloc of the big block */
    volatile uintptr_t old = (uintptr_t)big; /* the old address, only compared after realloc */
    cr_assert(lw_track_take((void *)old, &b));
    void *moved = realloc((void *)old, 3 * T);
    lw_track_count_free((void *)old, &b);
    lw_track_alloc(moved, 3 * T, 0);
    lw_sample_totals(&t);
    cr_assert_eq(t.alloc_bytes - t.free_bytes, us + malloc_usable_size(moved));
    cr_assert_eq(t.alloc_objects - t.free_objects, 2);
    drop(small);
    drop(moved);
    lw_sample_totals(&t);
    cr_assert_eq(t.alloc_bytes, t.free_bytes);
    cr_assert_eq(heap_stack_inuse_bytes(), 0);
}

struct xt {
    void **v;
    int n;
};

static void *free_odd(void *arg)
{
    struct xt *x = arg;
    for (int i = 1; i < x->n; i += 2)
        drop(x->v[i]);
    return NULL;
}

static void *alloc_some(void *arg)
{
    struct xt *x = arg;
    for (int i = 0; i < x->n; i++)
        x->v[i] = alloc_site(8 + (size_t)(i % 500) * 8);
    return NULL;
}

Test(sample, cross_thread_frees_keep_totals_exact)
{
    enum { N = 50000 };
    struct xt x = {calloc(N, sizeof(void *)), N};
    pthread_t th;
    pthread_create(&th, NULL, alloc_some, &x);
    pthread_join(th, NULL);
    uint64_t all = 0, odd = 0;
    for (int i = 0; i < N; i++) {
        all += malloc_usable_size(x.v[i]);
        if (i & 1)
            odd += malloc_usable_size(x.v[i]);
    }
    pthread_create(&th, NULL, free_odd, &x);
    pthread_join(th, NULL);
    struct lw_sample_totals t;
    lw_sample_totals(&t);
    cr_assert_eq(t.alloc_bytes, all);
    cr_assert_eq(t.free_bytes, odd);
    cr_assert_eq(t.alloc_objects - t.free_objects, N / 2);
    for (int i = 0; i < N; i += 2)
        drop(x.v[i]);
    lw_sample_totals(&t);
    cr_assert_eq(t.alloc_bytes, t.free_bytes);
    cr_assert_eq(heap_stack_inuse_bytes(), 0);
    free(x.v);
}

Test(sample, filter_counts_and_saturates)
{
    uintptr_t a = 0x55550000;
    cr_assert(!lw_sample_filter_maybe(a));
    lw_sample_filter_add(a);
    lw_sample_filter_add(a);
    cr_assert(lw_sample_filter_maybe(a));
    lw_sample_filter_del(a);
    cr_assert(lw_sample_filter_maybe(a), "still one");
    lw_sample_filter_del(a);
    cr_assert(!lw_sample_filter_maybe(a));
    for (int i = 0; i < 300; i++)
        lw_sample_filter_add(a);
    for (int i = 0; i < 300; i++)
        lw_sample_filter_del(a);
    cr_assert(lw_sample_filter_maybe(a), "saturated: sticky, never a false negative");
}

Test(sample, full_mode_is_the_default, .init = NULL)
{
    char *env[] = {NULL};
    cr_assert(lw_core_init(env));
    cr_assert_eq(lw_state.cfg.sample, 0);
    void *p = alloc_site(100);
    struct lw_block b;
    cr_assert(lw_table_lookup((uintptr_t)p, &b), "full mode: every block in the table");
    cr_assert_eq(b.size, 100, "full mode: requested sizes");
    drop(p);
}

Test(sample, fork_child_draws_a_fresh_stream)
{
    for (int i = 0; i < 1000; i++)
        lw_sample_decide(5000, T);
    uint64_t parent = lw_sample_tls.rng;
    cr_assert_neq(parent, 0, "seeded");
    lw_sample_fork_child();
    cr_assert_eq(lw_sample_tls.rng, 0);
    for (int i = 0; i < 1000; i++)
        lw_sample_decide(5000, T);
    cr_assert_neq(lw_sample_tls.rng, 0, "reseeded on the next decision");
    cr_assert_neq(lw_sample_tls.rng, parent);
}
