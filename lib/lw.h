/*
 * lw.h - what every module of the preloaded library shares: branch hints,
 * the per-thread state (initial-exec TLS, a few bytes) and the global
 * process state. Code in lib/ must never call the host's malloc, take a
 * lock on the malloc/free path, or use stdio.
 */
#ifndef LW_LW_H
#define LW_LW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define LW_LIKELY(x) __builtin_expect(!!(x), 1)
#define LW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LW_COLD __attribute__((cold, noinline))
#define LW_NOINLINE __attribute__((noinline))
#define LW_EXPORT __attribute__((visibility("default")))
#define LW_TLS __thread __attribute__((tls_model("initial-exec")))

#define LW_PAGE 4096u
#define LW_MAX_DEPTH 256

/* Add v to a counter that only this thread writes (other threads may read
 * it, with acquire loads). One instruction without a lock prefix: a signal
 * handler on this thread that adds to the same counter between our load
 * and store cannot exist, so no update is lost. On x86-64 the asm is a
 * compiler barrier and the CPU keeps stores in order: a release store. */
static inline void lw_own_add(_Atomic uint64_t *c, uint64_t v)
{
#if defined(__x86_64__)
    __asm__ volatile("addq %1, %0" : "+m"(*(uint64_t *)c) : "er"(v) : "memory");
#else
    atomic_fetch_add_explicit(c, v, memory_order_release);
#endif
}

/* Per-thread state: 40 bytes of initial-exec TLS. `guard` is set while the
 * thread runs leakwatch code (unwinder, writer, our own bookkeeping): hooks
 * reached then pass straight through. `in_alloc` is set while the thread is
 * inside the real allocator: mappings made then belong to the allocator, and
 * nested malloc calls (an allocator calling itself) pass through. */
struct lw_tls {
    uint8_t guard;
    uint8_t in_alloc;
    uint8_t internal;     /* leakwatch itself is calling something that allocates
                           * (dlsym, pthread_create, pthread_atfork...): not reentrancy */
    uint8_t capture_home; /* 1 + this thread's capture-gate shard; 0 not chosen yet */
    uint8_t pad[4];
    uintptr_t stack_lo, stack_hi; /* this thread's stack; lo 1: unknown */
    uintptr_t alt_lo, alt_hi;     /* its alternate signal stack (sigaltstack hook) */
};
extern LW_TLS struct lw_tls lw_tls;

/* Process-wide state, set once by lw_state_init (and again in a fork child). */
enum lw_init_state { LW_UNINIT = 0, LW_INITIALISING = 1, LW_READY = 2, LW_DISABLED = 3 };

struct lw_state {
    _Atomic int init;      /* enum lw_init_state */
    struct lw_config cfg;
    int pid;
    uint64_t start_time_ns;
    _Atomic uint32_t epoch;  /* snapshots written so far (blocks' ages: age.h) */
    _Atomic bool tracking;   /* false: hooks pass through (disabled, or a child told not to) */
    _Atomic bool forked;     /* this process is a fork child */
};
extern struct lw_state lw_state;

#endif
