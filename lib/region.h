/*
 * region.h - the ledger of mapped regions: every tracked sub-range with its
 * stack, kind (program or allocator) and state (mapped, MADV_FREE,
 * MADV_DONTNEED). A sorted interval array under one futex mutex, taken only
 * by mmap/munmap/mremap/madvise hooks and the writer, never by malloc/free:
 * the kernel serialises these calls on mmap_lock already. Memory comes
 * from lw_sys_map; nothing here calls the host's allocator.
 */
#ifndef LW_REGION_H
#define LW_REGION_H

#include <stdbool.h>
#include <stdint.h>

#include "../include/lw_format.h"

struct lw_region {
    uint64_t start, end;   /* this sub-range */
    uint64_t rstart, rend; /* the whole mapping it came from (mmap/mremap call) */
    uint32_t stack;
    uint32_t region_id;
    uint8_t kind;  /* LW_KIND_MMAP or LW_KIND_ALLOCATOR */
    uint8_t state; /* enum lw_region_state */
    uint16_t flags; /* LW_REGION_* */
    uint32_t prot;
};

struct lw_region_kind_stats {
    uint64_t regions_live;
    uint64_t map_calls;
    uint64_t unmap_calls;
};

void lw_region_lock(void);
void lw_region_unlock(void);

/* A new mapping [addr, addr+len) from stack (replaces anything recorded
 * there: MAP_FIXED). Takes the lock. */
void lw_region_map(uintptr_t addr, uint64_t len, uint32_t stack, uint8_t kind, uint32_t prot,
                   uint16_t flags);

/* Forget [addr, addr+len). Takes the lock / caller holds it. */
void lw_region_unmap(uintptr_t addr, uint64_t len);
void lw_region_unmap_locked(uintptr_t addr, uint64_t len);

/* Mark [addr, addr+len) (page-rounded by the caller) with state, where
 * tracked. Takes the lock. */
void lw_region_advise(uintptr_t addr, uint64_t len, uint8_t state);

/* mremap moved/resized [old, old+oldlen) to [new, new+newlen): the new
 * mapping belongs to stack; states of the surviving part move with it.
 * keep_old: MREMAP_DONTUNMAP. Caller holds the lock (across the syscall). */
void lw_region_remap_locked(uintptr_t old, uint64_t oldlen, uintptr_t new_addr, uint64_t newlen,
                            uint32_t stack, uint8_t kind, bool keep_old);

/* Visit every sub-range in address order; caller holds the lock. */
void lw_region_foreach_locked(void (*fn)(const struct lw_region *r, void *arg), void *arg);

/* Per-kind counters (kind 2 or 3); caller holds the lock. */
void lw_region_stats_locked(uint8_t kind, struct lw_region_kind_stats *st);
uint64_t lw_region_dropped(void);
uint64_t lw_region_count_locked(void);
/* Bytes of leakwatch memory the ledger uses; caller holds the lock. */
uint64_t lw_region_memory_locked(void);

/* fork: prepare takes the lock so the child's copy is whole. */
void lw_region_fork_prepare(void);
void lw_region_fork_parent(void);
void lw_region_fork_child(void);

#endif
