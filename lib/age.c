/*
 * age.c - the allocation clock's origin and the AGE records (see age.h).
 * The scan runs in the writer: one pass over the live table per
 * `cap_stacks` stack ids, accumulating bytes and objects per (stack, age
 * bucket) in scratch that is mapped and touched before any write needs it.
 * When a snapshot finds more stacks than the scratch holds, it makes more
 * passes, and the scratch grows afterwards for the next one. Never
 * allocates through the host.
 */
#include "age.h"

#include <string.h>

#include "../include/lw_format.h"
#include "snapshot.h"
#include "stack.h"
#include "sys.h"
#include "table.h"

uint64_t lw_age_base_ns;
_Atomic uint32_t lw_age_published;

uint64_t lw_age_publish(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - lw_age_base_ns;
    atomic_store_explicit(&lw_age_published, lw_age_stamp_of_tick(ns >> LW_AGE_TICK_SHIFT) + 1,
                          memory_order_relaxed);
    uint64_t tick = UINT64_C(1) << LW_AGE_TICK_SHIFT;
    return tick - (ns & (tick - 1)) + 1000000u; /* just past the boundary (the coarse clock lags) */
}

/* Bucket lower bounds, seconds. */
static const uint32_t bucket_s[] = {0,   1,    2,    5,    10,    30,    60,     120,
                                    300, 600,  1800, 3600, 10800, 43200, 86400, 259200};
#define NB ((uint32_t)(sizeof bucket_s / sizeof bucket_s[0]))
#define INITIAL_STACKS 256u

struct cell {
    uint64_t bytes, objects;
};

static struct cell *scratch; /* [cap_stacks][NB] */
static size_t scratch_len;
static uint32_t cap_stacks;
static uint32_t want_stacks; /* what the last write needed */
static uint32_t failed_at;   /* a grow for this many stacks failed: wait for twice as many */

static struct cell *map_cells(uint32_t stacks, size_t *len)
{
    size_t l = (size_t)stacks * NB * sizeof(struct cell);
    l = (l + LW_PAGE - 1) & ~(size_t)(LW_PAGE - 1);
    struct cell *c = lw_sys_map(l, false);
    if (c)
        memset(c, 0, l); /* touched now, not when memory is short */
    *len = l;
    return c;
}

uint64_t lw_age_stamp_mid_ns(uint32_t stamp)
{
    unsigned k = stamp >> LW_AGE_SEG_BITS;
    uint64_t within = stamp & ((1u << LW_AGE_SEG_BITS) - 1);
    uint64_t span = UINT64_C(1) << (2 * k);
    uint64_t tick = lw_age_seg_start(k) + within * span;
    return (tick << LW_AGE_TICK_SHIFT) + (span << LW_AGE_TICK_SHIFT) / 2;
}

bool lw_age_init(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    lw_age_base_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (scratch)
        return true;
    scratch = map_cells(INITIAL_STACKS, &scratch_len);
    cap_stacks = INITIAL_STACKS;
    return scratch != NULL;
}

void lw_age_fork_child(void)
{
    /* Blocks inherited from the parent keep their stamps: same origin. The
     * writer thread that published stamps is gone: read the clock again. */
    atomic_store(&lw_age_published, 0);
}

/* Ages only grow with older stamps, so each bucket is a range of stamps:
 * bucket b holds the stamps <= edge[b] (and > edge[b+1]), edge[b] being
 * the newest stamp at least bucket_s[b] old. Computed once per snapshot;
 * a block then costs a few compares, no division. */
struct scan {
    uint32_t lo, hi;     /* stack ids [lo, hi) */
    int32_t edge[NB];    /* -1: no stamp is that old */
};

static int32_t newest_stamp_older_than(uint64_t now, uint64_t age)
{
    if (now < age)
        return -1;
    uint64_t when = now - age;
    int32_t lo = 0, hi = 0xffff, best = -1; /* mid_ns is increasing in the stamp */
    while (lo <= hi) {
        int32_t m = (lo + hi) / 2;
        if (lw_age_stamp_mid_ns((uint32_t)m) <= when) {
            best = m;
            lo = m + 1;
        } else {
            hi = m - 1;
        }
    }
    return best;
}

static void scan_one(uintptr_t addr, const struct lw_block *b, void *arg)
{
    (void)addr;
    const struct scan *s = arg;
    if (b->stack < s->lo || b->stack >= s->hi)
        return;
    int32_t st = (int32_t)b->epoch;
    uint32_t k = 0;
    while (k + 1 < NB && st <= s->edge[k + 1])
        k++;
    struct cell *c = &scratch[(size_t)(b->stack - s->lo) * NB + k];
    c->bytes += b->size;
    c->objects++;
}

void lw_age_write(struct lw_out *o)
{
    if (!scratch)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now_abs = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint32_t n = lw_stack_count();
    want_stacks = n;
    struct scan s;
    for (uint32_t b = 0; b < NB; b++)
        s.edge[b] = b ? newest_stamp_older_than(now_abs - lw_age_base_ns,
                                                (uint64_t)bucket_s[b] * 1000000000u)
                      : 0xffff;
    for (uint32_t lo = 1; lo <= n && !o->err; lo += cap_stacks) {
        s.lo = lo;
        s.hi = lo + cap_stacks;
        if (s.hi > n + 1)
            s.hi = n + 1;
        memset(scratch, 0, (size_t)(s.hi - s.lo) * NB * sizeof(struct cell));
        lw_table_foreach(scan_one, &s);
        for (uint32_t id = s.lo; id < s.hi; id++) {
            struct lw_stack_info si;
            if (!lw_stack_info(id, &si) || si.kind != LW_KIND_HEAP || !lw_snapshot_has_stack(id))
                continue;
            const struct cell *c = &scratch[(size_t)(id - s.lo) * NB];
            uint32_t used = 0;
            for (uint32_t b = 0; b < NB; b++)
                used += c[b].objects != 0;
            if (!used)
                continue;
            struct lw_rec_age r = {.stack = id, .nbuckets = used};
            lw_out_begin(o, LW_REC_AGE, (uint32_t)(sizeof r + used * sizeof(struct lw_age_bucket)));
            lw_out_bytes(o, &r, sizeof r);
            for (uint32_t b = 0; b < NB; b++) {
                if (!c[b].objects)
                    continue;
                struct lw_age_bucket ab = {(uint64_t)bucket_s[b] * 1000000000u, c[b].bytes,
                                           c[b].objects};
                lw_out_bytes(o, &ab, sizeof ab);
            }
            lw_out_end(o);
        }
    }
}

void lw_age_grow(void)
{
    uint32_t n = lw_stack_count();
    if (n > want_stacks)
        want_stacks = n;
    if (want_stacks <= cap_stacks || (failed_at && want_stacks < failed_at * 2))
        return;
    uint32_t cap = cap_stacks;
    while (cap < want_stacks + want_stacks / 2)
        cap *= 2;
    size_t len;
    struct cell *c = map_cells(cap, &len);
    if (!c) {
        failed_at = want_stacks; /* keep the small one: more passes, same result */
        return;
    }
    lw_sys_unmap(scratch, scratch_len);
    scratch = c;
    scratch_len = len;
    cap_stacks = cap;
}

uint32_t lw_age_capacity(void)
{
    return cap_stacks;
}

uint64_t lw_age_memory_bytes(void)
{
    return scratch_len;
}
