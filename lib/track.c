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
#include "stack.h"
#include "state.h"
#include "trigger.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PAGE_UP(n) (((uint64_t)(n) + LW_PAGE - 1) & ~(uint64_t)(LW_PAGE - 1))

void lw_track_alloc(void *p, size_t n, int skip)
{
    int saved = errno;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
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
}

void lw_track_free(void *p)
{
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
    bool found = lw_table_remove((uintptr_t)p, b);
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
    if (lw_table_insert((uintptr_t)p, b, &stale) == LW_TABLE_DROPPED) {
        /* Cannot keep tracking it: count it as gone so totals stay exact. */
        lw_stack_account_free(b->stack, b->size, 1);
        atomic_fetch_add_explicit(&lw_counters.dropped_blocks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&lw_counters.dropped_bytes, b->size, memory_order_relaxed);
    }
    lw_tls.guard = g;
    errno = saved;
}

void lw_track_count_free(const struct lw_block *b)
{
    lw_stack_account_free(b->stack, b->size, 1);
    lw_trigger_heap_add(-(int64_t)b->size);
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
