/*
 * table.h - the live-block table: heap address -> (size, stack id, epoch).
 * Lock-free open addressing in 64 shards; a shard rehashes (grows or drops
 * its tombstones) on its own, pausing only operations on that shard.
 * Never allocates through the host: memory comes from lw_sys_map.
 */
#ifndef LW_TABLE_H
#define LW_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#define LW_TABLE_MAX_SIZE ((UINT64_C(1) << 40) - 1) /* larger blocks are dropped */
#define LW_TABLE_MAX_STACK ((UINT32_C(1) << 24) - 1)
#define LW_TABLE_MAX_ADDR (UINT64_C(1) << 48)

struct lw_block {
    uint64_t size;
    uint32_t stack;
    uint32_t epoch; /* 16 bits stored; saturates at 0xffff */
};

enum lw_table_result {
    LW_TABLE_INSERTED = 0,
    LW_TABLE_REPLACED = 1, /* a stale entry for the address was overwritten: *stale has it */
    LW_TABLE_DROPPED = 2,  /* no room (or a value out of range): not tracked */
};

/* Map the initial shards. false: no memory (tracking must stay off). */
bool lw_table_init(void);

/* Record a live block. The caller owns addr (the allocator just returned
 * it), so no other thread inserts or removes the same address meanwhile. */
enum lw_table_result lw_table_insert(uintptr_t addr, const struct lw_block *b, struct lw_block *stale);

/* Start loading addr's home slot into the cache (a hint: no gate, never
 * faults). An insert made a hundred nanoseconds later finds it there. */
void lw_table_prefetch(uintptr_t addr);

/* Remove addr; true and *out filled if it was tracked. */
bool lw_table_remove(uintptr_t addr, struct lw_block *out);

/* Look addr up without removing it (tests, diagnostics). */
bool lw_table_lookup(uintptr_t addr, struct lw_block *out);

/* Visit every live block, one shard at a time (that shard pauses). */
void lw_table_foreach(void (*fn)(uintptr_t addr, const struct lw_block *b, void *arg), void *arg);

struct lw_table_stats {
    uint64_t live;           /* entries (counted by a scan: not for the hot path) */
    uint64_t slots;          /* capacity over all shards */
    uint64_t bytes;          /* memory of the slot arrays */
    uint64_t rehashes;       /* into a new array (grow, shrink) */
    uint64_t purges;         /* tombstones dropped in place */
    uint64_t max_pause_ns;   /* longest time one shard was paused by a rehash */
    uint64_t failed_grows;
    bool fast_gates;         /* threads enter shards by flag + membarrier (else counted) */
};
void lw_table_stats(struct lw_table_stats *st);

/* In a fork child: forget pauses and in-flight operations of threads that
 * do not exist in the child. */
void lw_table_fork_child(void);

/* Turn the fast gates off for good, before a seccomp filter is installed:
 * afterwards the table never calls membarrier. Waits for every thread
 * inside an operation by its flag (not the caller's own). Idempotent. */
void lw_table_fast_off(void);

#endif
