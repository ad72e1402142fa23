/*
 * sample.c - sampling mode (see sample.h): per-thread countdowns and
 * random numbers, the weights of sampled blocks, the address filter and
 * the per-thread exact totals. No lock, no allocation, no libm (its
 * functions may set errno; ours are a few lines of series).
 *
 * Memory ordering of the totals. A thread's slot has one writer; it
 * stores each counter with release. The writer of a snapshot loads every
 * slot's free counters (acquire) before any alloc counter: a free the
 * program ordered after an alloc (the block was handed over) is seen only
 * with that alloc, so in-use never goes negative. The filter's counters
 * change only on sampled blocks, with CAS; a free reads its counter after
 * the program received the block, i.e. after the alloc's increment.
 */
#include "sample.h"

#include <malloc.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "state.h"
#include "sys.h"

#define THREADS 4096 /* threads with a slot of their own; later ones share one */
#define FILTER_LEN (1u << LW_SAMPLE_FILTER_BITS)

LW_TLS struct lw_sample_tls lw_sample_tls;
size_t (*lw_sample_usable)(void *p) = malloc_usable_size;
bool lw_sample_glibc;
_Atomic uint8_t *lw_sample_filter;

static struct lw_tally *slots; /* [THREADS + 1]; the last is shared */
struct lw_tally *lw_sample_shared;
static _Atomic uint32_t slots_used;
static _Atomic uint64_t thread_seq;

bool lw_sample_init(void)
{
    if (!lw_state.cfg.sample || slots)
        return true;
    struct lw_tally *s = lw_sys_map((THREADS + 1) * sizeof *s, true);
    _Atomic uint8_t *f = lw_sys_map(FILTER_LEN, true);
    if (!s || !f) {
        lw_sys_unmap(s, (THREADS + 1) * sizeof *s);
        lw_sys_unmap((void *)f, FILTER_LEN);
        return false;
    }
    lw_sample_filter = f;
    slots = s;
    lw_sample_shared = &s[THREADS];
    return true;
}


LW_COLD struct lw_tally *lw_sample_tally_slow(void)
{
    uint32_t i = atomic_fetch_add_explicit(&slots_used, 1, memory_order_relaxed);
    if (i >= THREADS) {
        atomic_store_explicit(&slots_used, THREADS, memory_order_relaxed);
        i = THREADS;
    }
    lw_sample_tls.tally = &slots[i];
    return lw_sample_tls.tally;
}

void lw_sample_totals(struct lw_sample_totals *out)
{
    memset(out, 0, sizeof *out);
    if (!slots)
        return;
    uint32_t n = atomic_load_explicit(&slots_used, memory_order_acquire);
    if (n > THREADS)
        n = THREADS;
    /* Slots 0..n-1 are threads' own, slot THREADS the shared one. A slot
     * taken after our load of n holds counts of blocks allocated after the
     * snapshot began: leaving it out is a consistent earlier view. */
    for (uint32_t k = 0; k <= n; k++) {
        struct lw_tally *t = &slots[k == n ? THREADS : k];
        out->free_bytes += atomic_load_explicit(&t->free_bytes, memory_order_acquire);
        out->free_objects += atomic_load_explicit(&t->free_objects, memory_order_acquire);
    }
    for (uint32_t k = 0; k <= n; k++) {
        struct lw_tally *t = &slots[k == n ? THREADS : k];
        out->alloc_bytes += atomic_load_explicit(&t->alloc_bytes, memory_order_acquire);
        out->alloc_objects += atomic_load_explicit(&t->alloc_objects, memory_order_acquire);
    }
    /* A free counted after our free loads but whose alloc we then saw
     * only makes in-use larger; the reverse cannot happen (see above). */
    if (out->alloc_bytes < out->free_bytes)
        out->alloc_bytes = out->free_bytes;
    if (out->alloc_objects < out->free_objects)
        out->alloc_objects = out->free_objects;
}

void lw_sample_fork_child(void)
{
    lw_sample_tls.rng = 0;
    lw_sample_tls.left = 0;
}

uint64_t lw_sample_memory_bytes(void)
{
    if (!slots)
        return 0;
    uint32_t n = atomic_load(&slots_used);
    n = n > THREADS ? THREADS : n;
    /* The filter's pages are touched at random: count it whole. */
    return ((uint64_t)n + 1) * sizeof(struct lw_tally) + FILTER_LEN;
}

/* ---- random numbers ---- */

static inline uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ln(u) for u in (0, 1]: u = m 2^e with m in [1, 2), ln m = 2 atanh(z),
 * z = (m-1)/(m+1) <= 1/3; 14 odd terms leave an error below 1e-15. */
static double ln01(double u)
{
    uint64_t bits;
    memcpy(&bits, &u, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & ~(UINT64_C(0x7ff) << 52)) | (UINT64_C(1023) << 52);
    double m;
    memcpy(&m, &bits, sizeof m);
    double z = (m - 1) / (m + 1), z2 = z * z, term = z, sum = 0;
    for (int k = 1; k < 30; k += 2) {
        sum += term / k;
        term *= z2;
    }
    return 2 * sum + e * 0.69314718055994530942;
}

/* An exponential gap of mean T bytes, at least 1. */
static int64_t draw_gap(uint64_t interval)
{
    uint64_t r = splitmix(&lw_sample_tls.rng);
    double u = ((double)(r >> 11) + 1.0) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double g = -ln01(u) * (double)interval;
    if (g < 1)
        g = 1;
    if (g > 9.0e18)
        g = 9.0e18;
    return (int64_t)g;
}

static LW_COLD void seed_thread(void)
{
    uint64_t n = atomic_fetch_add_explicit(&thread_seq, 1, memory_order_relaxed) + 1;
    uint64_t s = lw_state.cfg.sample_seed;
    if (!s)
        s = lw_sys_monotonic_ns() ^ ((uint64_t)syscall(SYS_gettid) << 32) ^
            (uint64_t)(uintptr_t)&lw_sample_tls;
    s ^= n * UINT64_C(0xD1B54A32D192ED03);
    lw_sample_tls.rng = s ? s : 1;
}

/* The countdown passed zero inside a block of s bytes (left already
 * reduced by s): it is sampled; draw the next gap. A fresh thread has
 * left 0 and no seed: draw its first gap and decide on that. */
LW_COLD bool lw_sample_decide_slow(uint64_t s)
{
    uint64_t interval = lw_state.cfg.sample;
    if (LW_UNLIKELY(!lw_sample_tls.rng)) {
        seed_thread();
        int64_t gap = draw_gap(interval);
        if (gap > (int64_t)s) {
            lw_sample_tls.left = gap - (int64_t)s;
            return false;
        }
    }
    lw_sample_tls.left = draw_gap(interval);
    return true;
}

/* ---- weights ---- */

double lw_sample_probability(uint64_t s, uint64_t interval)
{
    if (!interval || s >= interval)
        return 1.0;
    /* 1 - e^-x = x - x^2/2! + x^3/3! - ..., x < 1: no cancellation for
     * small x, and 20 terms leave an error below 1/20!. */
    double x = (double)s / (double)interval, term = x, sum = 0;
    for (int k = 1; k <= 20; k++) {
        sum += term;
        term *= -x / (k + 1);
    }
    return sum;
}

void lw_sample_weight(uintptr_t addr, uint64_t s, uint64_t *bytes, uint64_t *objects)
{
    uint64_t interval = lw_state.cfg.sample;
    if (!interval || s >= interval) {
        *bytes = s;
        *objects = 1;
        return;
    }
    double p = lw_sample_probability(s, interval);
    double wb = (double)s / p, wo = 1.0 / p;
    /* Rounding to integers, unbiased: up with probability equal to the
     * fraction, the coin being a hash of (address, size), so the free of
     * this block rounds the same way its allocation did. */
    uint64_t h = (uint64_t)addr ^ (s << 48) ^ UINT64_C(0x2545F4914F6CDD1D);
    uint64_t r1 = splitmix(&h), r2 = splitmix(&h);
    double u1 = (double)(r1 >> 11) * (1.0 / 9007199254740992.0);
    double u2 = (double)(r2 >> 11) * (1.0 / 9007199254740992.0);
    uint64_t ib = (uint64_t)wb, io = (uint64_t)wo;
    *bytes = ib + (u1 < wb - (double)ib);
    *objects = io + (u2 < wo - (double)io);
}

/* ---- filter ---- */

static inline _Atomic uint8_t *filter_cell(uintptr_t addr)
{
    uint64_t h = ((uint64_t)addr >> 4) * UINT64_C(0x9E3779B97F4A7C15);
    return &lw_sample_filter[h >> (64 - LW_SAMPLE_FILTER_BITS)];
}

/* A counter that reaches 255 stays there: its frees always look in the
 * table, which is right, only slower. */
void lw_sample_filter_add(uintptr_t addr)
{
    _Atomic uint8_t *c = filter_cell(addr);
    uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
    while (v != 255 &&
           !atomic_compare_exchange_weak_explicit(c, &v, (uint8_t)(v + 1), memory_order_release,
                                                  memory_order_relaxed))
        ;
}

void lw_sample_filter_del(uintptr_t addr)
{
    _Atomic uint8_t *c = filter_cell(addr);
    uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
    while (v != 255 && v != 0 &&
           !atomic_compare_exchange_weak_explicit(c, &v, (uint8_t)(v - 1), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}
