/*
 * stack.h - call stack capture (libunwind) and the stack table: each
 * distinct (kind, frames) gets an id and four counters. Lookups are
 * lock-free; only the first sight of a new stack takes a mutex. Memory from
 * lw_sys_map only. Capture must run under the thread's guard: libunwind
 * maps memory on first use.
 */
#ifndef LW_STACK_H
#define LW_STACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lw.h"

#define LW_STACK_MAX_IDS ((UINT32_C(1) << 22) - 1) /* fits the table's 24-bit field */

struct lw_stack_counters {
    _Atomic uint64_t alloc_bytes;
    _Atomic uint64_t alloc_objects;
    _Atomic uint64_t free_bytes;
    _Atomic uint64_t free_objects;
    char pad[32];
} __attribute__((aligned(64)));

/* Map the tables. false: no memory (tracking must stay off). */
bool lw_stack_init(void);

/* Frames inside [lo, hi) are leakwatch's own and are cut from the top of
 * every captured stack. Unset (tests): only `skip` frames are cut. */
void lw_stack_set_own_range(uintptr_t lo, uintptr_t hi);

/* Capture the caller's stack into out[cap] (room for max + skip +
 * LW_STACK_SLACK entries keeps every frame): at most max are kept, after removing the
 * first `skip` and leakwatch's own leading frames. Frame 0 is then the
 * return address into the function that called the interposed function.
 * *truncated is set when frames beyond max were cut. Returns the count;
 * 0 (counted as an unwind failure) when the thread has less than
 * LW_STACK_HEADROOM bytes of stack left, or unwinding failed. */
#define LW_STACK_SLACK 24
#define LW_STACK_HEADROOM (12 * 1024)
int lw_stack_capture(uintptr_t *out, int cap, int max, int skip, bool *truncated);

/* Find or add the stack; returns its id (>= 1), or 0 if the table is full
 * (counted in lw_stack_dropped()). Lock-free for a stack seen before; adding
 * a new one takes a mutex no host code runs under. */
uint32_t lw_stack_intern(uint8_t kind, const uintptr_t *frames, int n, bool truncated);

/* Capture + intern in one call, the hot path's entry. */
uint32_t lw_stack_here(uint8_t kind, int max, int skip);

/* A stack's counts. Each thread (the first LW_TALLY_SLOTS at once) adds
 * its own into its own tally, with no locked instruction; threads beyond
 * them, and any thread whose tally memory could not be mapped, add to the
 * shared counters atomically. A stack's figures are the sum of all.
 * Every update must run under the thread's guard or in one instruction
 * (lw_own_add), so a signal handler cannot interleave with it. */
struct lw_stack_tally {
    _Atomic uint64_t alloc_bytes, alloc_objects, free_bytes, free_objects;
};
#define LW_TALLY_SLOTS 64
#define LW_TALLY_CHUNK_BITS 9 /* tallies of 512 ids per mapping (16 KiB) */

/* This thread's tally directory: chunk pointers by id >> LW_TALLY_CHUNK_BITS.
 * NULL: not assigned yet; LW_TALLY_SHARED: the shared counters only. */
extern LW_TLS _Atomic(struct lw_stack_tally *) *lw_stack_my_tallies;
#define LW_TALLY_SHARED ((_Atomic(struct lw_stack_tally *) *)1)

/* This thread's tally of id, assigning a slot or mapping a chunk first;
 * NULL: use the shared counters. */
struct lw_stack_tally *lw_stack_own_slow(uint32_t id);
/* The shared counters of id (1 <= id <= lw_stack_count()). */
struct lw_stack_counters *lw_stack_counters(uint32_t id);

static inline struct lw_stack_tally *lw_stack_own(uint32_t id)
{
    _Atomic(struct lw_stack_tally *) *d = lw_stack_my_tallies;
    if (LW_LIKELY((uintptr_t)d > (uintptr_t)LW_TALLY_SHARED)) {
        struct lw_stack_tally *ch =
            atomic_load_explicit(&d[id >> LW_TALLY_CHUNK_BITS], memory_order_relaxed);
        if (LW_LIKELY(ch != NULL))
            return &ch[id & ((1u << LW_TALLY_CHUNK_BITS) - 1)];
    }
    return lw_stack_own_slow(id);
}

static inline void lw_stack_account_alloc_n(uint32_t id, uint64_t bytes, uint64_t objects)
{
    struct lw_stack_tally *t = lw_stack_own(id);
    if (LW_LIKELY(t != NULL)) {
        lw_own_add(&t->alloc_bytes, bytes);
        lw_own_add(&t->alloc_objects, objects);
        return;
    }
    struct lw_stack_counters *c = lw_stack_counters(id);
    atomic_fetch_add_explicit(&c->alloc_bytes, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->alloc_objects, objects, memory_order_release);
}

static inline void lw_stack_account_alloc(uint32_t id, uint64_t bytes)
{
    lw_stack_account_alloc_n(id, bytes, 1);
}

static inline void lw_stack_account_free(uint32_t id, uint64_t bytes, uint64_t objects)
{
    /* release: a reader that sees this free (acquire) also sees the
     * block's alloc, which happened before it (lw_stack_read). */
    struct lw_stack_tally *t = lw_stack_own(id);
    if (LW_LIKELY(t != NULL)) {
        lw_own_add(&t->free_bytes, bytes);
        lw_own_add(&t->free_objects, objects);
        return;
    }
    struct lw_stack_counters *c = lw_stack_counters(id);
    atomic_fetch_add_explicit(&c->free_bytes, bytes, memory_order_release);
    atomic_fetch_add_explicit(&c->free_objects, objects, memory_order_release);
}

/* A stack's figures: the shared counters plus every thread's tally, the
 * frees read before the allocations (a free seen implies its allocation
 * seen: in use never negative), allocations clamped to at least the frees. */
struct lw_stack_totals {
    uint64_t alloc_bytes, alloc_objects, free_bytes, free_objects;
};
void lw_stack_read(uint32_t id, struct lw_stack_totals *out);

/* The thread is ending: its tally slot goes back for a later thread (its
 * counts stay in it); this thread uses the shared counters from now on. */
void lw_stack_thread_exit(void);

/* Ids handed out so far: 1..count are all valid stacks. */
uint32_t lw_stack_count(void);

/* Read-only description of a stack for the writer. false if id is not a
 * published stack. */
struct lw_stack_info {
    uint8_t kind;
    uint8_t flags; /* LW_STACK_TRUNCATED */
    uint16_t nframes;
    const uintptr_t *frames;
};
bool lw_stack_info(uint32_t id, struct lw_stack_info *out);

uint64_t lw_stack_dropped(void);
/* fork: prepare waits until no other thread is unwinding (libunwind's own
 * locks must not be inherited held); parent and child release. */
void lw_stack_fork_prepare(void);
void lw_stack_fork_parent(void);
void lw_stack_fork_child(void);

/* Turn the capture gate's fast mode off for good, before a seccomp filter
 * is installed: afterwards forks never call membarrier. Waits for every
 * thread inside a capture by its flag (not the caller's own). Idempotent. */
void lw_stack_fast_off(void);
/* Is the fast mode (per-thread flags, membarrier at fork) in use? */
bool lw_stack_fast_gate(void);
/* Bytes of leakwatch memory in use by the stack table (touched, not reserved). */
uint64_t lw_stack_memory_bytes(void);
uint64_t lw_stack_unwind_failures(void);

#endif
