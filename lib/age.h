/*
 * age.h - the allocation clock and the AGE records. Every live block keeps
 * a 16-bit stamp of when it was allocated (the table's epoch field). The
 * clock is CLOCK_MONOTONIC_COARSE (vDSO, a few ns) since tracking started,
 * in ticks of 2^27 ns (0.134 s), folded so that 16 bits last for months:
 * stamps 0-8191 are one tick each (the first 18.3 minutes), each next run
 * of 8192 stamps is 4 times coarser (0.54 s, 2.1 s, 8.6 s, 34 s, 2.3 min,
 * 9.2 min, 37 min per stamp), saturating after ~278 days. A block's age
 * at a snapshot is known to the resolution of the stamp it got.
 * Reading the coarse clock costs 3-5 ns on this project's VM when idle
 * (12-30 ns under heavy load), up to a tenth of a malloc+free pair: when the writer thread runs, it publishes the current
 * stamp at every tick and the hot path only loads it (~1 ns); without a
 * writer thread (single-threaded programs) the hot path reads the clock.
 */
#ifndef LW_AGE_H
#define LW_AGE_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "lw.h"

#define LW_AGE_TICK_SHIFT 27 /* a tick is 2^27 ns */
#define LW_AGE_SEG_BITS 13   /* 8192 stamps per segment */
#define LW_AGE_SEGS 8

extern uint64_t lw_age_base_ns; /* CLOCK_MONOTONIC_COARSE when tracking started */

/* First tick of segment k: 8192 * (4^k - 1) / 3. */
static inline uint64_t lw_age_seg_start(unsigned k)
{
    return ((UINT64_C(1) << (2 * k)) - 1) / 3 << LW_AGE_SEG_BITS;
}

/* The stamp of tick t (ticks since tracking started). */
static inline uint32_t lw_age_stamp_of_tick(uint64_t t)
{
    unsigned k = 0;
    while (k + 1 < LW_AGE_SEGS && t >= lw_age_seg_start(k + 1))
        k++;
    uint64_t within = (t - lw_age_seg_start(k)) >> (2 * k);
    if (within >= (UINT64_C(1) << LW_AGE_SEG_BITS))
        return 0xffff;
    return (uint32_t)((k << LW_AGE_SEG_BITS) | within);
}

/* The current stamp + 1 as the writer thread published it; 0: none. */
extern _Atomic uint32_t lw_age_published;

/* The stamp for now, from the clock. */
static inline uint32_t lw_age_stamp_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return lw_age_stamp_of_tick((ns - lw_age_base_ns) >> LW_AGE_TICK_SHIFT);
}

/* The stamp for a block allocated now: the hot path. */
static inline uint32_t lw_age_stamp_now(void)
{
    uint32_t p = atomic_load_explicit(&lw_age_published, memory_order_relaxed);
    if (LW_LIKELY(p))
        return p - 1;
    return lw_age_stamp_clock();
}

/* Writer thread: publish the current stamp; returns ns to the next tick. */
uint64_t lw_age_publish(void);

/* The middle of the span of time a stamp stands for, in ns since tracking
 * started. */
uint64_t lw_age_stamp_mid_ns(uint32_t stamp);

/* Set the clock's origin and reserve the scan's scratch. false: no memory. */
bool lw_age_init(void);
void lw_age_fork_child(void);

struct lw_out;
struct lw_rec_totals;
/* Scan the live table and write one AGE record per heap stack with live
 * blocks, for the stacks the snapshot holds (lw_snapshot_has_stack: a
 * stack added while the STACK records were written is not in the file,
 * though blocks of its may be in the table by now). Writer only. */
void lw_age_write(struct lw_out *o);
/* Stacks the scratch holds (one pass of the table covers that many). */
uint32_t lw_age_capacity(void);
/* Memory the age scan keeps reserved. */
uint64_t lw_age_memory_bytes(void);
/* Grow the scratch, ahead of need, when the stack table has outgrown it
 * (to 1.5x the stacks, doubling). Called after each write and by the
 * helper threads and the heap-threshold path from time to time, so that a
 * write finds it large enough and scans the table once; a write that finds
 * it too small makes more passes instead of asking for memory. Not
 * thread-safe: callers hold the writer's lock (lw_snapshot_reserve). */
void lw_age_grow(void);

#endif
