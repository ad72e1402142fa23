/*
 * track.c - the recording half of every hook (see track.h): capture the
 * stack, update the live table or region ledger, then the stack counters.
 * Runs on the program's threads on every allocation: no lock on the heap
 * path, no allocation through the host, errno preserved.
 */
#include "track.h"

#include <errno.h>
#include <sys/mman.h>

#include "../include/lw_format.h"
#include "age.h"
#include "lw.h"
#include "region.h"
#include "sample.h"
#include "stack.h"
#include "state.h"
#include "trigger.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PAGE_UP(n) (((uint64_t)(n) + LW_PAGE - 1) & ~(uint64_t)(LW_PAGE - 1))

/* Sampling mode: every block's usable size goes into the exact totals,
 * and into the heap threshold's count (which then watches the same exact
 * heap in use the report shows). */
static LW_COLD void heap_add_guarded(int64_t d)
{
    /* The sampled paths run unguarded; a crossing writes a snapshot. */
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    lw_trigger_heap_add(d);
    lw_tls.guard = g;
    errno = saved;
}

static inline void count_alloc_exact(uint64_t s)
{
    lw_sample_count_alloc(s);
    if (LW_UNLIKELY(lw_heap_watch))
        heap_add_guarded((int64_t)s);
}

static inline void count_free_exact(uint64_t s)
{
    lw_sample_count_free(s);
    if (LW_UNLIKELY(lw_heap_watch))
        heap_add_guarded(-(int64_t)s);
}

/* Sampling mode: a sampled block goes into the table with its usable size
 * and its stack gets the block's weights. false: dropped (no stack or no
 * room); the exact totals still count it. */
static LW_COLD bool sampled_alloc(void *p, uint64_t s, int skip)
{
    uint32_t id = lw_stack_here(LW_KIND_HEAP, lw_state.cfg.depth, skip + 1);
    struct lw_block b = {.size = s, .stack = id, .epoch = lw_age_stamp_now()};
    struct lw_block stale;
    enum lw_table_result r = id ? lw_table_insert((uintptr_t)p, &b, &stale) : LW_TABLE_DROPPED;
    uint64_t wb, wo;
    if (r == LW_TABLE_REPLACED) {
        lw_sample_weight((uintptr_t)p, stale.size, &wb, &wo);
        lw_stack_account_free(stale.stack, wb, wo);
        count_free_exact(stale.size);
        lw_sample_filter_del((uintptr_t)p);
        atomic_fetch_add_explicit(&lw_counters.stale_blocks, 1, memory_order_relaxed);
    }
    if (r == LW_TABLE_DROPPED) {
        atomic_fetch_add_explicit(&lw_counters.dropped_blocks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&lw_counters.dropped_bytes, s, memory_order_relaxed);
        return false;
    }
    lw_sample_filter_add((uintptr_t)p);
    lw_sample_weight((uintptr_t)p, s, &wb, &wo);
    lw_stack_account_alloc_n(id, wb, wo);
    return true;
}

/* A sampled block leaves the table: its stack loses its weights. */
static void sampled_gone(uintptr_t p, const struct lw_block *b)
{
    uint64_t wb, wo;
    lw_sample_weight(p, b->size, &wb, &wo);
    lw_stack_account_free(b->stack, wb, wo);
}

/* Sampling mode, every block: exact totals by usable size, and for the
 * few that are sampled a stack and a table entry. Inlined, so that
 * sampled_alloc's skip + 1 counts the only frame between it and
 * lw_track_alloc's caller chain. */
static inline __attribute__((always_inline)) void track_alloc_sampled(void *p, int skip)
{
    uint64_t s = lw_sample_size(p);
    count_alloc_exact(s);
    if (LW_UNLIKELY(lw_sample_decide(s, lw_state.cfg.sample))) {
        int saved = errno;
        uint8_t g = lw_tls.guard;
        lw_tls.guard = 1;
        sampled_alloc(p, s, skip);
        lw_tls.guard = g;
        errno = saved;
    }
}

void *lw_track_alloc(void *p, size_t n, int skip)
{
    if (lw_state.cfg.sample) {
        track_alloc_sampled(p, skip);
        if (LW_UNLIKELY(atomic_load_explicit(&lw_trigger_pending, memory_order_relaxed)) && !lw_tls.guard)
            lw_trigger_serve();
        return p;
    }
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    /* The slot's cache miss overlaps the unwinding. (The stack's counters
     * are this thread's own tally: no miss worth a prefetch.) */
    lw_table_prefetch((uintptr_t)p);
    uint32_t id = lw_stack_here(LW_KIND_HEAP, lw_state.cfg.depth, skip);
    struct lw_block b = {.size = n, .stack = id, .epoch = lw_age_stamp_now()};
    struct lw_block stale;
    enum lw_table_result r = id ? lw_table_insert((uintptr_t)p, &b, &stale) : LW_TABLE_DROPPED;
    if (LW_LIKELY(r == LW_TABLE_INSERTED)) {
        lw_stack_account_alloc(id, n);
    } else if (r == LW_TABLE_REPLACED) {
        /* The allocator reused the address of a block whose free we did not
         * see: that block is gone. */
        lw_stack_account_free(stale.stack, stale.size, 1);
        lw_trigger_heap_add(-(int64_t)stale.size);
        atomic_fetch_add_explicit(&lw_counters.stale_blocks, 1, memory_order_relaxed);
        lw_stack_account_alloc(id, n);
    } else {
        atomic_fetch_add_explicit(&lw_counters.dropped_blocks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&lw_counters.dropped_bytes, n, memory_order_relaxed);
    }
    if (LW_LIKELY(r != LW_TABLE_DROPPED))
        lw_trigger_heap_add((int64_t)n); /* heap threshold: one branch when off */
    if (LW_UNLIKELY(atomic_load_explicit(&lw_trigger_pending, memory_order_relaxed)) && !g)
        lw_trigger_serve();
    lw_tls.guard = g;
    errno = saved;
    return p;
}

/* Sampling mode: take p out of the counts; *b gets its table entry if it
 * was sampled, else its usable size and stack 0. */
static inline void take_sampled(void *p, struct lw_block *b)
{
    if (LW_UNLIKELY(lw_sample_filter_maybe((uintptr_t)p)) && lw_table_remove((uintptr_t)p, b)) {
        lw_sample_filter_del((uintptr_t)p);
        return;
    }
    b->size = lw_sample_size(p);
    b->stack = 0;
    b->epoch = 0;
}

/* Sampling mode, a block the filter says may be sampled: the table. */
static LW_COLD void free_maybe_sampled(void *p)
{
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    struct lw_block b;
    take_sampled(p, &b);
    count_free_exact(b.size);
    if (b.stack)
        sampled_gone((uintptr_t)p, &b);
    lw_tls.guard = g;
    errno = saved;
}

void lw_track_free(void *p)
{
    if (lw_state.cfg.sample) {
        /* Unsampled (nearly every block): its usable size into this
         * thread's totals, no table, no lock, nothing that sets errno. */
        if (LW_LIKELY(!lw_sample_filter_maybe((uintptr_t)p)))
            count_free_exact(lw_sample_size(p));
        else
            free_maybe_sampled(p);
        if (LW_UNLIKELY(atomic_load_explicit(&lw_trigger_pending, memory_order_relaxed)) && !lw_tls.guard)
            lw_trigger_serve();
        return;
    }
    /* The real free reads the block's header next: start that miss now,
     * to overlap the table's. */
    __builtin_prefetch((const char *)p - 16, 1, 3);
    int saved = errno;
    struct lw_block b;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    if (lw_table_remove((uintptr_t)p, &b)) {
        lw_stack_account_free(b.stack, b.size, 1);
        lw_trigger_heap_add(-(int64_t)b.size);
    }
    if (LW_UNLIKELY(atomic_load_explicit(&lw_trigger_pending, memory_order_relaxed)) && !g)
        lw_trigger_serve();
    lw_tls.guard = g;
    errno = saved;
}

bool lw_track_take(void *p, struct lw_block *b)
{
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    bool found;
    if (lw_state.cfg.sample) {
        take_sampled(p, b); /* every block is in the totals */
        found = true;
    } else {
        found = lw_table_remove((uintptr_t)p, b);
    }
    lw_tls.guard = g;
    errno = saved;
    return found;
}

void lw_track_put_back(void *p, const struct lw_block *b)
{
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    struct lw_block stale;
    if (lw_state.cfg.sample) {
        /* Unsampled (stack 0): nothing was taken out. */
        if (b->stack) {
            enum lw_table_result r = lw_table_insert((uintptr_t)p, b, &stale);
            if (r == LW_TABLE_INSERTED) {
                lw_sample_filter_add((uintptr_t)p);
            } else if (r == LW_TABLE_REPLACED) { /* its filter count stays */
                sampled_gone((uintptr_t)p, &stale);
                count_free_exact(stale.size);
                atomic_fetch_add_explicit(&lw_counters.stale_blocks, 1, memory_order_relaxed);
            } else {
                sampled_gone((uintptr_t)p, b);
                atomic_fetch_add_explicit(&lw_counters.dropped_blocks, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&lw_counters.dropped_bytes, b->size, memory_order_relaxed);
            }
        }
    } else if (lw_table_insert((uintptr_t)p, b, &stale) == LW_TABLE_DROPPED) {
        /* Cannot keep tracking it: count it as gone so totals stay exact. */
        lw_stack_account_free(b->stack, b->size, 1);
        atomic_fetch_add_explicit(&lw_counters.dropped_blocks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&lw_counters.dropped_bytes, b->size, memory_order_relaxed);
    }
    lw_tls.guard = g;
    errno = saved;
}

void lw_track_count_free(void *p, const struct lw_block *b)
{
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1; /* a counter's update must not be interleaved by a signal handler's */
    if (lw_state.cfg.sample) {
        count_free_exact(b->size);
        if (b->stack)
            sampled_gone((uintptr_t)p, b);
    } else {
        lw_stack_account_free(b->stack, b->size, 1);
        lw_trigger_heap_add(-(int64_t)b->size);
    }
    lw_tls.guard = g;
}

void lw_track_mmap(void *p, size_t len, int prot, int flags, int fd, bool by_allocator, int skip)
{
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    uint8_t kind = by_allocator ? LW_KIND_ALLOCATOR : LW_KIND_MMAP;
    uint32_t id = lw_stack_here(kind, lw_state.cfg.depth, skip);
    uint16_t rf = 0;
    if (flags & MAP_ANONYMOUS)
        rf |= LW_REGION_ANON;
    else if (fd >= 0)
        rf |= LW_REGION_FILE;
    if (flags & MAP_SHARED)
        rf |= LW_REGION_SHARED;
    lw_region_map((uintptr_t)p, PAGE_UP(len), id, kind, (uint32_t)prot, rf);
    lw_tls.guard = g;
    errno = saved;
}

int lw_track_munmap(int (*real)(void *, size_t), void *p, size_t len)
{
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    lw_region_lock();
    int r = real(p, len);
    int saved = errno;
    if (r == 0)
        lw_region_unmap_locked((uintptr_t)p, PAGE_UP(len));
    lw_region_unlock();
    lw_tls.guard = g;
    errno = saved;
    return r;
}

void lw_track_madvise(void *p, size_t len, int advice)
{
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    uint8_t state = advice == MADV_FREE ? LW_STATE_MADV_FREE : LW_STATE_MADV_DONTNEED;
    lw_region_advise((uintptr_t)p, PAGE_UP(len), state);
    lw_tls.guard = g;
    errno = saved;
}

void *lw_track_mremap(lw_mremap_fn real, void *old, size_t oldn, size_t newn, int flags,
                      void *new_addr, bool by_allocator)
{
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    uint8_t kind = by_allocator ? LW_KIND_ALLOCATOR : LW_KIND_MMAP;
    uint32_t id = lw_stack_here(kind, lw_state.cfg.depth, 0);
    lw_region_lock();
    void *r = real(old, oldn, newn, flags, new_addr);
    int saved = errno;
    if (r != MAP_FAILED) {
        /* old_size 0 duplicates a shared mapping; DONTUNMAP leaves the old
         * range mapped (emptied). Neither removes the old record. */
        bool keep_old = oldn == 0 || (flags & MREMAP_DONTUNMAP);
        lw_region_remap_locked((uintptr_t)old, PAGE_UP(oldn), (uintptr_t)r, PAGE_UP(newn), id,
                               kind, keep_old);
    }
    lw_region_unlock();
    lw_tls.guard = g;
    errno = saved;
    return r;
}
