/*
 * sample.h - sampling mode (LEAKWATCH_SAMPLE=T): which heap blocks get a
 * stack and a table entry, their weights, and the exact heap totals that
 * count every block without storing it. Per-thread state, no locks, no
 * allocation; the only shared writes are on sampled blocks (rare).
 *
 * The estimator (Poisson sampling by bytes, as tcmalloc's): each thread
 * draws exponential gaps of mean T bytes; a block of s usable bytes is
 * sampled when a sample point falls inside it, probability p = 1 - e^(-s/T)
 * independently of everything before (the exponential has no memory).
 * Blocks of s >= T are always sampled (p = 1). A sampled block adds s/p
 * bytes and 1/p objects to its stack (Horvitz-Thompson: unbiased for every
 * stack's bytes and objects, allocated and in use); its free subtracts the
 * same integers, recomputed from its address and size.
 */
#ifndef LW_SAMPLE_H
#define LW_SAMPLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lw.h"

/* One thread's exact heap counters (usable sizes). Single writer: the
 * thread that owns the slot, plain release stores; the shared overflow
 * slot (threads beyond LW_SAMPLE_THREADS) uses atomic adds. */
struct lw_tally {
    _Atomic uint64_t alloc_bytes, alloc_objects, free_bytes, free_objects;
    char pad[32];
} __attribute__((aligned(64)));

struct lw_sample_tls {
    int64_t left;           /* bytes until this thread's next sample point */
    uint64_t rng;           /* 0: not seeded yet */
    struct lw_tally *tally; /* NULL: not assigned yet */
};
extern LW_TLS struct lw_sample_tls lw_sample_tls;

/* The allocator's usable size of a live block (malloc_usable_size of the
 * real allocator; hooks.c sets it at start-up, tests keep libc's). */
extern size_t (*lw_sample_usable)(void *p);
/* true: the allocator is glibc's, whose usable size is read from the
 * block's own header (glibc's malloc_usable_size also reads the next
 * chunk's header, a cache miss on every call: a quarter of a sampled run). */
extern bool lw_sample_glibc;

/* Usable size of the live block p. For glibc: the chunk size word before
 * p, minus that word (and the prev_size word for a chunk of its own
 * mapping), exactly what glibc's malloc_usable_size returns for a block
 * in use. */
static inline uint64_t lw_sample_size(void *p)
{
    if (LW_LIKELY(lw_sample_glibc)) {
        uint64_t h = *(const uint64_t *)((uintptr_t)p - sizeof(uint64_t));
        return (h & ~(uint64_t)7) - ((h & 2) ? 16 : 8);
    }
    return lw_sample_usable(p);
}

/* Map the filter and the per-thread counters when cfg.sample is set.
 * false: no memory. Idempotent. */
bool lw_sample_init(void);

struct lw_tally *lw_sample_tally_slow(void);

static inline struct lw_tally *lw_sample_tally(void)
{
    struct lw_tally *t = lw_sample_tls.tally;
    return LW_LIKELY(t != NULL) ? t : lw_sample_tally_slow();
}

extern struct lw_tally *lw_sample_shared; /* the overflow slot */

static inline void lw_tally_add(struct lw_tally *t, size_t off, uint64_t v)
{
    _Atomic uint64_t *c = (_Atomic uint64_t *)((char *)t + off);
    if (LW_UNLIKELY(t == lw_sample_shared))
        atomic_fetch_add_explicit(c, v, memory_order_release);
    else
        lw_own_add(c, v); /* unguarded path: a load and a store could lose a signal handler's add */
}

/* Count an allocation of s usable bytes in this thread's totals. */
static inline void lw_sample_count_alloc(uint64_t s)
{
    struct lw_tally *t = lw_sample_tally();
    lw_tally_add(t, offsetof(struct lw_tally, alloc_bytes), s);
    lw_tally_add(t, offsetof(struct lw_tally, alloc_objects), 1);
}

static inline void lw_sample_count_free(uint64_t s)
{
    struct lw_tally *t = lw_sample_tally();
    lw_tally_add(t, offsetof(struct lw_tally, free_bytes), s);
    lw_tally_add(t, offsetof(struct lw_tally, free_objects), 1);
}

bool lw_sample_decide_slow(uint64_t s);

/* Is an allocation of s usable bytes sampled? Advances this thread's
 * countdown. interval: lw_state.cfg.sample (> 0). */
static inline bool lw_sample_decide(uint64_t s, uint64_t interval)
{
    if (s >= interval)
        return true;
    lw_sample_tls.left -= (int64_t)s;
    if (LW_LIKELY(lw_sample_tls.left > 0))
        return false;
    return lw_sample_decide_slow(s);
}

/* The integer weights of a sampled block (see the top of this file):
 * deterministic in (addr, s), so its free subtracts what its alloc added. */
void lw_sample_weight(uintptr_t addr, uint64_t s, uint64_t *bytes, uint64_t *objects);

/* Probability that a block of s bytes is sampled (tests, docs). */
double lw_sample_probability(uint64_t s, uint64_t interval);

/* The filter: a counting hash of the addresses of live sampled blocks. A
 * free whose address maps to a zero counter cannot be a sampled block, so
 * it skips the table. add/del: when a sampled block enters/leaves the
 * table (before the allocation returns / before the real free). */
void lw_sample_filter_add(uintptr_t addr);
void lw_sample_filter_del(uintptr_t addr);
extern _Atomic uint8_t *lw_sample_filter;
#define LW_SAMPLE_FILTER_BITS 16

static inline bool lw_sample_filter_maybe(uintptr_t addr)
{
    uint64_t h = ((uint64_t)addr >> 4) * UINT64_C(0x9E3779B97F4A7C15);
    return atomic_load_explicit(&lw_sample_filter[h >> (64 - LW_SAMPLE_FILTER_BITS)],
                                memory_order_relaxed) != 0;
}

/* Sum of every thread's counters: frees first (acquire), then allocs, so
 * a free seen has its alloc seen (in-use never negative). */
struct lw_sample_totals {
    uint64_t alloc_bytes, alloc_objects, free_bytes, free_objects;
};
void lw_sample_totals(struct lw_sample_totals *out);

/* In a fork child: draw a fresh random stream (the parent goes on with
 * the one both inherited; sharing it would correlate their samples). */
void lw_sample_fork_child(void);

/* Bytes of leakwatch memory sampling uses (touched pages). */
uint64_t lw_sample_memory_bytes(void);

#endif
