/*
 * stackcache.h - call stacks seen before, without unwinding them again: a
 * per-thread cache of captured stacks, each checked on every use by
 * re-reading the return addresses it names (and the frame pointers of
 * frames that keep one) at the stack addresses where they were found, and
 * a process-wide map of what libunwind showed of each frame (its size,
 * whether it keeps a frame pointer, where it saves its caller's) that says
 * where those words lie. Never allocates through the host, never takes a
 * lock, never reads outside the thread's stack. libunwind stays the only
 * source of stacks: this only remembers them; stackcache.c says why a hit
 * is what libunwind would give.
 */
#ifndef LW_STACKCACHE_H
#define LW_STACKCACHE_H

#include <stdbool.h>
#include <stdint.h>

/* Raw frames a cached stack may have (leakwatch's own included). */
#define LW_SCACHE_FRAMES 48

/* What is known of the frame that returns to a given address: its size
 * (its CFA minus its stack pointer at the call, a multiple of 8, at most
 * 65528) with two flags in the low bits, and in bits 16-23 where it saved
 * its caller's rbp (CFA - 8 x slot; 0: it did not save it).
 * UNKNOWN: never learned; BAD: never cached through (a signal frame, a
 * realigned frame, rbp kept in a register, two different observations). */
#define LW_SCACHE_UNKNOWN 0u
#define LW_SCACHE_BAD UINT32_MAX
/* The frame keeps a frame pointer (its rbp was CFA - 16): its CFA may
 * come from rbp and its size change (alloca), so a cached stack follows
 * the rbp saved below it instead of trusting the size. */
#define LW_SCACHE_FP 1u
#define LW_SCACHE_SIZE(v) ((v) & 0xfff8u)
#define LW_SCACHE_RBP_SLOT(v) (((v) >> 16) & 0xffu)

/* Map the frame-size map. false: no memory (the cache stays off). */
bool lw_scache_init(void);
/* true once lw_scache_init succeeded and lw_scache_off was not called. */
bool lw_scache_on(void);
/* Turn the cache off for good (a check failed that must never fail). */
void lw_scache_off(void);

/* The size and flags of the frame that returns to ip, or UNKNOWN / BAD.
 * Lock-free. */
uint32_t lw_scache_frame_size(uintptr_t ip);
/* Record what libunwind showed of the frame that returns to ip: its size
 * (0, not a multiple of 8, or over 65528: BAD), LW_SCACHE_FP or 0, and the
 * slot where it saved its caller's rbp (0: none; over 255: BAD). A second,
 * different observation makes it BAD for good. */
void lw_scache_learned(uintptr_t ip, uint64_t size, uint32_t flags, uint64_t rbp_slot);

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
 * BAD. ended: the unwinder stopped after v[n-1] by itself (not at the
 * depth asked), so what it read in v[n-1]'s frame (its return address
 * word, its rbp) is checked too, and v[n-1]'s size is needed. The
 * capturing function must keep a frame pointer (its caller's rbp at
 * cfa - 16). hi: the top of the stack. */
enum lw_scache_add_result lw_scache_add(uintptr_t cfa, uint32_t tag, const uintptr_t *v, int n,
                                        bool ended, uint32_t id, uintptr_t hi);

/* Code may have been unloaded (dlclose): forget every frame learned and
 * every cached stack, in all threads. */
void lw_scache_invalidate(void);

/* The thread is ending: unmap its cache; it caches nothing from now on. */
void lw_scache_thread_exit(void);

struct lw_scache_stats {
    uint64_t hits, misses, added, refused, sizes_known, sizes_bad;
};
/* Counters (relaxed; for benchmarks and tests). */
void lw_scache_stats(struct lw_scache_stats *out);

#endif
