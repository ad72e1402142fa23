/*
 * stackcache.h - call stacks seen before, without unwinding them again: a
 * per-thread cache of captured stacks, each checked on every use by
 * re-reading the return addresses it names at the stack addresses where
 * they were found, and a process-wide map of frame sizes (learned from
 * libunwind) that says where those addresses lie. Never allocates through
 * the host, never takes a lock, never reads outside the thread's stack.
 * libunwind stays the only source of stacks: this only remembers them.
 */
#ifndef LW_STACKCACHE_H
#define LW_STACKCACHE_H

#include <stdbool.h>
#include <stdint.h>

/* Raw frames a cached stack may have (leakwatch's own included). */
#define LW_SCACHE_FRAMES 48

/* Frame sizes: a frame's CFA minus its stack pointer at the call that
 * returns to ip. UNKNOWN: never learned; BAD: not one fixed size (a frame
 * that grows with alloca, a signal frame, two different observations). */
#define LW_SCACHE_UNKNOWN 0u
#define LW_SCACHE_BAD UINT32_MAX

/* Map the frame-size map. false: no memory (the cache stays off). */
bool lw_scache_init(void);
/* true once lw_scache_init succeeded and lw_scache_off was not called. */
bool lw_scache_on(void);
/* Turn the cache off for good (a check failed that must never fail). */
void lw_scache_off(void);

/* The size of the frame that returns to ip, or UNKNOWN / BAD. Lock-free. */
uint32_t lw_scache_frame_size(uintptr_t ip);
/* Record an observed size (0, or one that is not a multiple of 8 or over
 * 64 KiB: BAD). A second, different observation makes it BAD for good. */
void lw_scache_learned(uintptr_t ip, uint64_t size);

/* The key of a capture: which kind of stack, how deep, how many frames cut. */
static inline uint32_t lw_scache_tag(uint8_t kind, int max, int skip)
{
    return (uint32_t)kind | (uint32_t)(skip & 0xff) << 8 | (uint32_t)max << 16;
}

/* The id cached for a capture whose CFA (the capturing function's) is
 * cfa and whose return address is ra, if every return address it names
 * still lies where it did; 0 if none. hi: the top of the stack cfa lies
 * in (nothing at or above it is read). */
uint32_t lw_scache_find(uintptr_t cfa, uintptr_t ra, uint32_t tag, uintptr_t hi);

enum lw_scache_add_result {
    LW_SCACHE_ADDED,
    LW_SCACHE_NEED_SIZES, /* a frame's size is unknown: learn them, then add again */
    LW_SCACHE_REFUSED,    /* too deep, a BAD frame, no memory, or the cache is off */
};
/* Remember that the capture at cfa got stack id `id` from the raw frames
 * v[0..n) (v[0] the capturing function's return address, at cfa - 8; each
 * next one where the frame sizes say). Every address is checked against
 * the stack before the entry is kept; a size that misplaces one becomes
 * BAD. lo, hi: the stack's bounds. */
enum lw_scache_add_result lw_scache_add(uintptr_t cfa, uint32_t tag, const uintptr_t *v, int n,
                                        uint32_t id, uintptr_t hi);

/* The thread is ending: unmap its cache; it caches nothing from now on. */
void lw_scache_thread_exit(void);

struct lw_scache_stats {
    uint64_t hits, misses, added, refused, sizes_known, sizes_bad;
};
/* Counters (relaxed; for benchmarks and tests). */
void lw_scache_stats(struct lw_scache_stats *out);

#endif
