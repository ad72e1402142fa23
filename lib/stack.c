/*
 * stack.c - stack capture and the stack table (see stack.h). The table is
 * three append-only arrays (counters, descriptions, frames) reserved once as
 * address space, plus a hash index that grows by copying; a lookup never
 * locks. Capture is gated against fork (libunwind's own mutexes) and
 * refused when the thread's stack is nearly full. Nothing here allocates,
 * except learn_stack: pthread_getattr_np, once per thread, straight to the
 * real allocator (guard set), never from inside it.
 *
 * Lookups never lock: a call site seen before (the hot path) finds its id
 * with acquire loads. Adding a stack never seen before takes `insert_lock`
 * (a futex mutex, held for a memcpy and, rarely, an index growth), so two
 * threads can never add the same stack twice nor lose one while the index
 * grows. No host code runs under it.
 *
 * Memory ordering. The inserter writes the description and frames, then
 * publishes kind (release) and the index slot (release store). A reader
 * that loads the slot (acquire) sees a complete description. Growth copies
 * every entry into an array twice as large and publishes its pointer
 * (release); old arrays stay mapped (readers may be in them) and keep their
 * entries, which are never removed, so a lookup in an old array is right.
 */
#include "stack.h"

#include <libunwind.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../include/lw_format.h"
#include "log.h"
#include "lw.h"
#include "stackcache.h"
#include "state.h"
#include "sys.h"

#define FRAME_POOL_MAX (UINT64_C(1) << 26) /* frames: 512 MiB of address space */
#define INDEX_INITIAL 4096u
#define OWN_MARGIN 16 /* <= LW_STACK_SLACK - 8 */
_Static_assert(OWN_MARGIN + 8 <= LW_STACK_SLACK, "capture slack");

struct desc {
    uint64_t frames_off;
    uint16_t nframes;
    _Atomic uint8_t kind; /* 0 until published */
    uint8_t flags;
    uint32_t pad;
};

/* An index slot: a stack's 128-bit hash, with the id in the low 24 bits
 * of the second half. tag 0: empty (ids start at 1). */
struct islot {
    _Atomic uint64_t tag; /* hash.b with its low 24 bits replaced by the id */
    _Atomic uint64_t a;   /* hash.a */
};

struct index {
    uint64_t cap;
    uint64_t map_len;
    struct index *older; /* kept mapped forever */
    struct islot slot[];
};

static struct lw_stack_counters *counters; /* [max_ids + 1] */
static struct desc *descs;                 /* [max_ids + 1] */
static uintptr_t *frame_pool;              /* [pool_max] */
static uint32_t max_ids;
static uint64_t pool_max;
static _Atomic uint32_t next_id;           /* last id handed out */
static _Atomic uint64_t frames_used;
static _Atomic(struct index *) cur_index;
static uint64_t index_used; /* under insert_lock */
static lw_mutex_t insert_lock = LW_MUTEX_INIT;
static _Atomic uint64_t dropped, unwind_failures;
static void fast_gate_init(void);
static uintptr_t own_lo, own_hi;

/* ---- per-thread tallies ----
 * Slot k's directory is tally_dirs[k * nchunks ...]: chunk pointers, each
 * mapped by the slot's thread on its first count of an id in that chunk
 * and published with release (readers load it with acquire: NULL means
 * no counts there). A slot has one writer at a time: its thread takes it
 * under tally_lock and gives it back under tally_lock after its last
 * count, so the next owner's counts follow the last one's. Counts are
 * single-instruction adds (lw_own_add: release on x86-64); readers load
 * them with acquire, frees of every slot before allocations of every slot
 * (the argument in lw_stack_read). */
LW_TLS _Atomic(struct lw_stack_tally *) *lw_stack_my_tallies;
static _Atomic(struct lw_stack_tally *) *tally_dirs; /* [LW_TALLY_SLOTS * nchunks] */
static uint32_t nchunks;
static _Atomic uint32_t tally_used;   /* slots ever handed out */
static _Atomic uint64_t tally_chunks; /* chunks mapped, for the metadata figure */
static uint32_t tally_free[LW_TALLY_SLOTS], tally_nfree; /* under tally_lock */
static lw_mutex_t tally_lock = LW_MUTEX_INIT;
#define CHUNK_IDS (1u << LW_TALLY_CHUNK_BITS)
/* At most 64 MiB of tallies (4096 chunks of 16 KiB): many threads times
 * many stacks would otherwise multiply the counters' memory by 64. */
#define TALLY_CHUNKS_MAX 4096u

static struct index *index_new(uint64_t cap)
{
    size_t len = sizeof(struct index) + cap * sizeof(struct islot);
    len = (len + LW_PAGE - 1) & ~(size_t)(LW_PAGE - 1);
    struct index *ix = lw_sys_map(len, false);
    if (ix) {
        ix->cap = cap;
        ix->map_len = len;
    }
    return ix;
}

bool lw_stack_init(void)
{
    if (atomic_load(&cur_index))
        return true;
    /* Address space only; pages are touched as ids are handed out. Under
     * strict overcommit a smaller reservation may be all we get. */
    for (uint32_t ids = LW_STACK_MAX_IDS + 1; ids >= 4096; ids /= 4) {
        uint64_t pool = FRAME_POOL_MAX / ((LW_STACK_MAX_IDS + 1) / ids);
        struct lw_stack_counters *c = lw_sys_map((size_t)ids * sizeof *c, true);
        struct desc *d = lw_sys_map((size_t)ids * sizeof *d, true);
        uintptr_t *f = lw_sys_map(pool * sizeof *f, true);
        if (c && d && f) {
            counters = c;
            descs = d;
            frame_pool = f;
            max_ids = ids - 1;
            pool_max = pool;
            break;
        }
        lw_sys_unmap(c, (size_t)ids * sizeof *c);
        lw_sys_unmap(d, (size_t)ids * sizeof *d);
        lw_sys_unmap(f, pool * sizeof *f);
    }
    if (!counters)
        return false;
    struct index *ix = index_new(INDEX_INITIAL);
    if (!ix)
        return false;
    atomic_store(&cur_index, ix);
    fast_gate_init();
    lw_scache_init(); /* without it every stack is unwound */
    nchunks = (max_ids >> LW_TALLY_CHUNK_BITS) + 1;
    /* without them every count is an atomic add on the shared counters */
    tally_dirs = lw_sys_map((size_t)LW_TALLY_SLOTS * nchunks * sizeof *tally_dirs, true);
    return true;
}

void lw_stack_set_own_range(uintptr_t lo, uintptr_t hi)
{
    own_lo = lo;
    own_hi = hi;
}

/* ---- the capture gate ----
 * libunwind takes mutexes of its own on its slow path; a fork child would
 * inherit one locked if another thread were unwinding. A fork therefore
 * waits until no thread is inside unw_backtrace. Threads count themselves
 * in one of CAPTURE_SHARDS counters (their own cache line, so the hot path
 * has no shared write); fork sets FORKING in all of them and waits for the
 * counts to drain. A capture that starts during a fork waits for it to end
 * (at most 100 ms), uncounted; inside the allocator it does not wait (the
 * thread may hold the allocator's locks, which the allocator's own fork
 * handlers take) and records an empty stack. The same argument as the table gate:
 * every change is a read-modify-write of one counter, totally ordered. */
#define CAPTURE_SHARDS 16
#define FORKING 0x80000000u
static struct {
    _Atomic uint32_t n;
    char pad[60];
} capture_gate[CAPTURE_SHARDS] __attribute__((aligned(64)));
static _Atomic uint32_t capture_homes;

/* Leave: decrement, but never below zero. A fork child zeroes the counts;
 * a thread it interrupted mid-capture (fork in a signal handler) leaves
 * later and must not wrap the count into FORKING. */
static inline void gate_down(_Atomic uint32_t *g)
{
    uint32_t c = atomic_load_explicit(g, memory_order_relaxed);
    while ((c & ~FORKING) &&
           !atomic_compare_exchange_weak_explicit(g, &c, c - 1, memory_order_release,
                                                  memory_order_relaxed))
        ;
}

/* Wait out a fork (bounded). Inside the allocator we never wait: the
 * thread may hold the allocator's locks, which its own fork handlers take. */
static LW_COLD bool wait_fork(_Atomic uint32_t *g)
{
    if (lw_tls.in_alloc)
        return false;
    uint64_t deadline = lw_sys_monotonic_ns() + 100000000u;
    while ((atomic_load_explicit(g, memory_order_acquire) & FORKING) &&
           lw_sys_monotonic_ns() < deadline)
        sched_yield();
    return !(atomic_load_explicit(g, memory_order_acquire) & FORKING);
}

/* ---- the fast gate: one flag per thread and an asymmetric fence ----
 * The counters above cost two locked instructions per capture. Where the
 * kernel offers membarrier(PRIVATE_EXPEDITED), a thread instead sets its
 * own flag (a plain store to its own cache line), then reads `forking`
 * (a plain load); a fork sets `forking`, then calls membarrier, which runs
 * a full barrier on every CPU running a thread of this process, then reads
 * the flags. This is Dekker's protocol with the two fences on the rare
 * side only: either the thread's flag store precedes that barrier (so the
 * fork sees it and waits), or its load follows it (so it sees `forking`
 * and backs off). A thread not running is ordered by its context switch.
 * Threads beyond FAST_SLOTS (never reused), or a kernel without
 * membarrier, use the counters.
 *
 * Fast off, for good (lw_stack_fast_off), before the program installs a
 * seccomp filter, which may kill on membarrier: the same transition as the
 * table's (table.c, above `fast entry`). fast_on = false (seq_cst), one
 * membarrier, wait until every other thread's flag is 0; a capture loads
 * fast_on again after its flag store and backs off to the counters if it
 * is false. A thread whose re-check precedes the barrier in it has its
 * flag seen and waited for; one whose re-check follows it counts. Then
 * `mb_done`: forks run no membarrier any more. A fork counts itself in
 * `mb_users` before it reads mb_done, and the transition waits for that
 * count to be 0 after setting it, so no fork's membarrier runs after the
 * transition returned (when the filter may exist). */
#define FAST_SLOTS 4096
struct fast_slot {
    _Atomic uint32_t busy;
    char pad[60];
};
static struct fast_slot *fast_slots; /* NULL: the counters only */
static _Atomic bool fast_on;         /* fast_slots usable (membarrier registered) */
static _Atomic uint32_t fast_used;
static _Atomic bool mb_done;      /* no membarrier any more: the flags are unused */
static _Atomic uint32_t mb_users; /* forks between reading mb_done and their membarrier */
static _Atomic bool off_started;  /* lw_stack_fast_off is running or has run */
static _Atomic uint32_t forking_word; /* FORKING while a fork is being prepared */
static LW_TLS struct fast_slot *my_slot; /* NULL: not assigned yet */
static struct fast_slot no_slot;          /* assigned when none is left */

#ifndef MEMBARRIER_CMD_PRIVATE_EXPEDITED
#define MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#endif

static bool membarrier_register(void)
{
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static void fast_gate_init(void)
{
    if (fast_slots || !lw_core_membarrier_ok || atomic_load(&off_started) || !membarrier_register())
        return;
    fast_slots = lw_sys_map(FAST_SLOTS * sizeof *fast_slots, true);
    atomic_store(&fast_on, fast_slots != NULL);
}

static LW_COLD struct fast_slot *fast_slot_assign(void)
{
    uint32_t i = atomic_fetch_add_explicit(&fast_used, 1, memory_order_relaxed);
    if (i >= FAST_SLOTS) {
        atomic_store_explicit(&fast_used, FAST_SLOTS, memory_order_relaxed);
        return my_slot = &no_slot;
    }
    return my_slot = &fast_slots[i];
}

/* Enter the gate; NULL: refused (a fork is on and we may not wait).
 * The token is given back to capture_leave. */
static inline void *capture_enter(void)
{
    struct fast_slot *f = my_slot;
    bool on = atomic_load_explicit(&fast_on, memory_order_relaxed);
    if (LW_UNLIKELY(!f) && on)
        f = fast_slot_assign();
    if (LW_LIKELY(on && f && f != &no_slot)) {
        for (;;) {
            atomic_store_explicit(&f->busy, 1, memory_order_relaxed);
            atomic_signal_fence(memory_order_seq_cst); /* the CPU's fence is the fork's membarrier */
            bool forking = atomic_load_explicit(&forking_word, memory_order_relaxed);
            bool still = atomic_load_explicit(&fast_on, memory_order_relaxed);
            if (LW_LIKELY(!forking && still))
                return f;
            atomic_store_explicit(&f->busy, 0, memory_order_release);
            if (!still)
                break; /* fast gates went off: count */
            if (!wait_fork(&forking_word))
                return NULL;
        }
    }
    if (LW_UNLIKELY(!lw_tls.capture_home))
        lw_tls.capture_home = (uint8_t)(atomic_fetch_add(&capture_homes, 1) % CAPTURE_SHARDS + 1);
    _Atomic uint32_t *g = &capture_gate[lw_tls.capture_home - 1].n;
    while (LW_UNLIKELY(atomic_fetch_add_explicit(g, 1, memory_order_acquire) & FORKING)) {
        gate_down(g); /* not counted while we wait: the fork waits for counts */
        if (!wait_fork(g))
            return NULL;
    }
    return g;
}

static inline void capture_leave(void *token)
{
    if (LW_LIKELY(token == (void *)my_slot))
        atomic_store_explicit(&((struct fast_slot *)token)->busy, 0, memory_order_release);
    else
        gate_down((_Atomic uint32_t *)token);
}

/* Decrement, never below 0 (a fork child zeroes mb_users). */
static void mb_users_leave(void)
{
    uint32_t u = atomic_load_explicit(&mb_users, memory_order_relaxed);
    while (u && !atomic_compare_exchange_weak_explicit(&mb_users, &u, u - 1, memory_order_release,
                                                       memory_order_relaxed))
        ;
}

void lw_stack_fast_off(void)
{
    if (atomic_exchange(&off_started, true)) { /* another thread does it: wait for it */
        while (!atomic_load(&mb_done))
            sched_yield();
        return;
    }
    atomic_store(&fast_on, false);
    if (fast_slots) {
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        uint32_t n = atomic_load(&fast_used);
        n = n > FAST_SLOTS ? FAST_SLOTS : n;
        for (uint32_t i = 0; i < n; i++)
            while (&fast_slots[i] != my_slot &&
                   atomic_load_explicit(&fast_slots[i].busy, memory_order_acquire))
                sched_yield();
    }
    atomic_store(&mb_done, true);
    while (atomic_load(&mb_users))
        sched_yield();
}

bool lw_stack_fast_gate(void)
{
    return atomic_load(&fast_on);
}

void lw_stack_fork_prepare(void)
{
    for (int i = 0; i < CAPTURE_SHARDS; i++)
        atomic_fetch_or(&capture_gate[i].n, FORKING);
    atomic_store(&forking_word, FORKING);
    atomic_fetch_add(&mb_users, 1);
    if (fast_slots && !atomic_load(&mb_done) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        /* Cannot happen once registered. If it did, a flag set just now
         * might be unseen by the wait below: later captures use the
         * counters. */
        atomic_store(&fast_on, false);
        lw_log_warn(LW_WARN_UNWIND, "membarrier failed: the capture gate falls back to counters");
    }
    mb_users_leave();
    /* Forking from inside our own code (a signal handler that interrupted
     * a hook) this thread may be counted itself: do not wait. Otherwise a
     * capture never blocks on us, so the wait ends; the bound is for a
     * thread stopped (SIGSTOP, a debugger) in the middle of one. */
    if (lw_tls.guard)
        return;
    uint64_t deadline = lw_sys_monotonic_ns() + 2000000000u;
    uint32_t nfast = atomic_load(&fast_used);
    nfast = nfast > FAST_SLOTS ? FAST_SLOTS : nfast;
    for (uint32_t i = 0; fast_slots && i < nfast; i++)
        while (atomic_load_explicit(&fast_slots[i].busy, memory_order_acquire) &&
               lw_sys_monotonic_ns() < deadline)
            sched_yield();
    for (int i = 0; i < CAPTURE_SHARDS; i++)
        while ((atomic_load(&capture_gate[i].n) & ~FORKING) && lw_sys_monotonic_ns() < deadline)
            sched_yield();
}

void lw_stack_fork_parent(void)
{
    atomic_store(&forking_word, 0);
    for (int i = 0; i < CAPTURE_SHARDS; i++)
        atomic_fetch_and(&capture_gate[i].n, ~FORKING);
}

/* Learn this thread's stack bounds, once (pthread_getattr_np may allocate:
 * the guard is set, so it goes straight to the allocator). */
static LW_COLD void learn_stack(void)
{
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    lw_tls.stack_lo = 1; /* unknown, unless we learn better */
    uint8_t was = lw_tls.internal;
    lw_tls.internal = 1; /* its allocations and frees are ours */
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        if (pthread_attr_getstack(&a, &addr, &size) == 0 && addr && size) {
            lw_tls.stack_lo = (uintptr_t)addr;
            lw_tls.stack_hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&a);
    }
    lw_tls.internal = was;
}

/* The bounds of the stack sp runs on: the alternate signal stack, or the
 * thread's own. false if neither (a coroutine's stack, or bounds not
 * learnt yet). */
static inline bool stack_bounds(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
    /* The alternate stack first: it is the narrower range, and it may lie
     * inside the thread's own stack (a local buffer given to sigaltstack). */
    if (sp > lw_tls.alt_lo && sp <= lw_tls.alt_hi) {
        *lo = lw_tls.alt_lo;
        *hi = lw_tls.alt_hi;
        return true;
    }
    /* pthread_getattr_np allocates and reads /proc: never from inside the
     * allocator (a mapping it makes while holding its own locks), nor on an
     * alternate stack (handled above), nor during start-up. */
    if (LW_UNLIKELY(!lw_tls.stack_lo) && !lw_tls.in_alloc &&
        atomic_load_explicit(&lw_state.init, memory_order_relaxed) == LW_READY)
        learn_stack();
    if (sp > lw_tls.stack_lo && sp <= lw_tls.stack_hi) {
        *lo = lw_tls.stack_lo;
        *hi = lw_tls.stack_hi;
        return true;
    }
    return false;
}

/* Unwinding takes ~6 KiB of stack (libunwind's context, cursor, DWARF
 * state, and our buffer). A thread with a tiny stack, or a signal handler
 * on a small alternate stack, would overflow it: there we record no stack. */
static inline bool enough_stack(uintptr_t sp, bool known, uintptr_t lo)
{
    return !known || sp - lo >= LW_STACK_HEADROOM;
    /* unknown: another stack (a coroutine's): assume it is large enough */
}

/* LEAKWATCH_UNWIND=fp: follow the frame-pointer chain ([fp] the caller's
 * frame pointer, [fp + 8] the return address). Bounded so a bad frame
 * pointer never faults: every frame read lies in [fp0, hi), the live part
 * of the stack we run on (mapped: it holds our own callers' frames), and
 * frames must climb strictly. Code built without frame pointers gives
 * wrong or short stacks here, silently: hence an explicit option only.
 * buf[0] is a placeholder, as unw_backtrace's frame of this function. */
static inline int fp_walk(void **buf, int want, uintptr_t fp, uintptr_t hi)
{
    int n = 0;
    buf[n++] = NULL;
    while (n < want) {
        if ((fp & 7) || hi < 16 || fp > hi - 16)
            break;
        const uintptr_t *f = (const uintptr_t *)fp;
        uintptr_t next = f[0], ret = f[1];
        if (ret < 4096)
            break;
        buf[n++] = (void *)ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

/* The capture, inlined into its caller: raw[0] is the return address of
 * unw_backtrace into the caller itself, so a caller that is one of our
 * frames costs no unwinding step of its own (each is 10-25 ns). The raw
 * frames stay in raw[0..*nraw); the kept ones go to out (which may be raw
 * itself: they only ever move down). */
static inline __attribute__((always_inline)) int capture_here(uintptr_t *raw, int cap, uintptr_t *out,
                                                              int max, int skip, bool *truncated,
                                                              int *nraw, bool *ended)
{
    void **buf = (void **)raw;
    skip += 1; /* buf[0] is the return into this function */
    int want = max + skip + OWN_MARGIN;
    if (want > cap)
        want = cap;
    *truncated = false;
    *nraw = 0;
    *ended = false;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0), lo = 0, hi = 0;
    bool known = stack_bounds(sp, &lo, &hi);
    /* The caller's buffers lie below its frame address: headroom counts
     * from the lowest of them. */
    uintptr_t low = sp;
    if ((uintptr_t)raw >= lo && (uintptr_t)raw < low)
        low = (uintptr_t)raw;
    if ((uintptr_t)out >= lo && (uintptr_t)out < low)
        low = (uintptr_t)out;
    int n;
    if (lw_state.cfg.unwind == LW_UNWIND_FP && known) {
        n = fp_walk(buf, want, sp, hi); /* reads memory only: no gate, no headroom */
    } else {
        void *gate = NULL;
        if (LW_UNLIKELY(!enough_stack(low, known, lo) || !(gate = capture_enter()))) {
            atomic_fetch_add_explicit(&unwind_failures, 1, memory_order_relaxed);
            return 0;
        }
        n = unw_backtrace(buf, want);
        capture_leave(gate);
    }
    *nraw = n;
    *ended = n < want; /* the unwinder stopped by itself, not at the depth asked */
    int i = skip;
    while (i < n && (uintptr_t)buf[i] >= own_lo && (uintptr_t)buf[i] < own_hi)
        i++;
    int k = 0;
    for (; i < n && k < max; i++) {
        /* Our frames further out too: the thread-start wrapper under every
         * thread's routine, the pthread_create hook under glibc's. */
        uintptr_t a = (uintptr_t)buf[i];
        if (LW_UNLIKELY(a >= own_lo && a < own_hi))
            continue;
        out[k++] = a; /* k <= i: moving down in place is safe */
    }
    *truncated = i < n || (n == want && k == max);
    if (LW_UNLIKELY(k == 0))
        atomic_fetch_add_explicit(&unwind_failures, 1, memory_order_relaxed);
    return k;
}

LW_NOINLINE int lw_stack_capture(uintptr_t *out, int cap, int max, int skip, bool *truncated)
{
    int nraw;
    bool ended;
    return capture_here(out, cap, out, max, skip, truncated, &nraw, &ended);
}

/* Stacks are identified by a 128-bit hash of (kind, frames): the index
 * compares hashes and never reads the frames back, so a lookup touches one
 * cache line instead of three. 104 of the bits are compared (24 hold the
 * id); two different stacks collide with probability about n^2 / 2^105,
 * below 1e-17 for ten million stacks. Two lanes of multiply-fold mixing with
 * different constants. */
struct h128 {
    uint64_t a, b;
};

static inline uint64_t fold_mul(uint64_t x, uint64_t k)
{
    __uint128_t r = (__uint128_t)x * k;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline struct h128 hash_frames(uint8_t kind, const uintptr_t *f, int n)
{
    uint64_t a = UINT64_C(0x243f6a8885a308d3) ^ ((uint64_t)kind << 16 | (uint64_t)n);
    uint64_t b = UINT64_C(0x13198a2e03707344) ^ ((uint64_t)n << 8 | (uint64_t)kind);
    /* Two frames per multiply in each lane (as wyhash): half the chain of
     * dependent multiplies. The constants keep a zero frame from zeroing
     * a factor. */
    int i = 0;
    for (; i + 1 < n; i += 2) {
        a = fold_mul(a ^ f[i] ^ UINT64_C(0xa4093822299f31d1), f[i + 1] ^ UINT64_C(0x3f84d5b5b5470917));
        b = fold_mul(b ^ f[i + 1] ^ UINT64_C(0x082efa98ec4e6c89), f[i] ^ UINT64_C(0x452821e638d01377));
    }
    if (i < n) {
        a = fold_mul(a ^ f[i], UINT64_C(0xa4093822299f31d1));
        b = fold_mul(b ^ f[i] ^ UINT64_C(0x082efa98ec4e6c89), UINT64_C(0x452821e638d01377));
    }
    struct h128 h = {fold_mul(a, UINT64_C(0xbe5466cf34e90c6d)),
                     fold_mul(b, UINT64_C(0xc0ac29b7c97c50dd))};
    return h;
}

#define ID_BITS UINT64_C(0xffffff)

/* Find a stack's hash in ix; its id, or 0 if absent. Lock-free. */
static uint32_t lookup(const struct index *ix, struct h128 h)
{
    uint64_t want = h.b & ~ID_BITS, mask = ix->cap - 1;
    uint64_t i = h.a & mask;
    for (uint64_t probes = 0; probes < ix->cap; probes++, i = (i + 1) & mask) {
        uint64_t tag = atomic_load_explicit(&ix->slot[i].tag, memory_order_acquire);
        if (!tag)
            return 0;
        if ((tag & ~ID_BITS) == want && atomic_load_explicit(&ix->slot[i].a, memory_order_relaxed) == h.a)
            return (uint32_t)(tag & ID_BITS);
    }
    return 0;
}

/* Put an entry into ix (insert_lock held, or ix not yet published): the
 * hash half first, then the tag with release, which publishes both. */
static void place(struct index *ix, uint64_t a, uint64_t tag)
{
    uint64_t mask = ix->cap - 1, i = a & mask;
    while (atomic_load_explicit(&ix->slot[i].tag, memory_order_relaxed))
        i = (i + 1) & mask;
    atomic_store_explicit(&ix->slot[i].a, a, memory_order_relaxed);
    atomic_store_explicit(&ix->slot[i].tag, tag, memory_order_release);
}

/* Copy every entry into an index twice as large and publish it
 * (insert_lock held). On failure the old index just gets fuller. */
static LW_COLD void index_grow(struct index *from)
{
    struct index *to = index_new(from->cap * 2);
    if (!to)
        return;
    to->older = from;
    for (uint64_t i = 0; i < from->cap; i++) {
        uint64_t tag = atomic_load_explicit(&from->slot[i].tag, memory_order_relaxed);
        if (tag)
            place(to, atomic_load_explicit(&from->slot[i].a, memory_order_relaxed), tag);
    }
    atomic_store_explicit(&cur_index, to, memory_order_release);
}

uint32_t lw_stack_intern(uint8_t kind, const uintptr_t *frames, int n, bool truncated)
{
    struct h128 h = hash_frames(kind, frames, n);
    uint32_t id = lookup(atomic_load_explicit(&cur_index, memory_order_acquire), h);
    if (LW_LIKELY(id))
        return id;

    lw_mutex_lock(&insert_lock);
    struct index *ix = atomic_load_explicit(&cur_index, memory_order_relaxed);
    id = lookup(ix, h); /* added while we waited? */
    if (!id) {
        uint32_t next = atomic_load_explicit(&next_id, memory_order_relaxed) + 1;
        uint64_t off = atomic_load_explicit(&frames_used, memory_order_relaxed);
        if (next > max_ids || off + (uint64_t)n > pool_max || index_used + 1 >= ix->cap) {
            atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
            lw_mutex_unlock(&insert_lock);
            lw_log_warn(LW_WARN_STACKS, "stack table full: further new call stacks are not "
                                        "recorded (counted as dropped)");
            return 0;
        }
        memcpy(&frame_pool[off], frames, (size_t)n * sizeof *frames);
        descs[next].frames_off = off;
        descs[next].nframes = (uint16_t)n;
        descs[next].flags = truncated ? LW_STACK_TRUNCATED : 0;
        atomic_store_explicit(&descs[next].kind, kind, memory_order_release);
        atomic_store_explicit(&frames_used, off + (uint64_t)n, memory_order_relaxed);
        atomic_store_explicit(&next_id, next, memory_order_release);
        place(ix, h.a, (h.b & ~ID_BITS) | next);
        if (++index_used * 2 > ix->cap)
            index_grow(ix);
        id = next;
    }
    lw_mutex_unlock(&insert_lock);
    return id;
}

/* Learning frame sizes steps libunwind's slow path (DWARF parsed per
 * frame, tens of microseconds): it needs more stack than a capture. */
#define LEARN_HEADROOM (32 * 1024)

/* Teach the stack cache about the frames v[0..need) of the stack v[0..n)
 * (v[0] the return address of lw_stack_here, whose CFA is cfa; need is n
 * when libunwind stopped after v[n-1] by itself, else n - 1): step
 * libunwind from here, find the frame that returns to v[0] with its stack
 * pointer at cfa, and from there, for each frame: its size (the next
 * frame's stack pointer, or for the last frame the CFA libunwind worked
 * out before it stopped, minus its own), whether it keeps a frame pointer
 * (its rbp is its CFA - 16: LW_SCACHE_FP; a realigned frame, whose rbp
 * points into it with the CFA stored at rbp - 8: BAD), and where it saved
 * its caller's rbp (libunwind's save location, when it lies in this
 * frame). A signal frame is BAD. Frames it stepped past without placing
 * become BAD, so no stack asks twice; if it could not step at all (a fork
 * going on), nothing is marked. */
__attribute__((no_sanitize("address"))) static LW_COLD void learn_sizes(uintptr_t cfa, const uintptr_t *v,
                                                                        int n, int need)
{
    void *gate = capture_enter();
    if (!gate)
        return;
    unw_context_t uc;
    unw_cursor_t cur;
    bool stepped = false;
    if (unw_getcontext(&uc) == 0 && unw_init_local(&cur, &uc) == 0) {
        stepped = true;
        int k = -1; /* index in v of the previous frame, once found */
        unw_word_t prev_sp = 0, prev_rbp = 0;
        for (int steps = 0; steps < n + 8; steps++) {
            /* After a step that ended the stack, ip is 0 and rbp may be
             * unreadable; the stack pointer is the last frame's CFA. */
            unw_word_t ip = 0, sp, rbp = 0;
            if (unw_get_reg(&cur, UNW_REG_SP, &sp) < 0)
                break;
            bool have = unw_get_reg(&cur, UNW_REG_IP, &ip) >= 0 &&
                        unw_get_reg(&cur, UNW_X86_64_RBP, &rbp) >= 0;
            if (k >= 0) {
                /* v[k]'s frame spans [prev_sp, sp): sp is its CFA. */
                uint32_t flags = 0;
                uint64_t size = sp > prev_sp ? sp - prev_sp : 0, slot = 0;
                if (prev_rbp == sp - 16)
                    flags |= LW_SCACHE_FP;
                else if (prev_rbp >= prev_sp + 8 && prev_rbp < sp &&
                         *(const unw_word_t *)(prev_rbp - 8) == sp)
                    size = 0; /* a realigned frame (gcc's DRAP keeps its CFA at rbp - 8): BAD */
                /* Where the caller's rbp is: saved by v[k] (inside its
                 * frame), or further down (v[k] left rbp alone). */
                unw_save_loc_t loc;
                if (unw_get_save_loc(&cur, UNW_X86_64_RBP, &loc) < 0 || loc.type == UNW_SLT_REG)
                    size = 0; /* kept in another register: BAD */
                else if (loc.type == UNW_SLT_MEMORY && loc.u.addr >= prev_sp && loc.u.addr < sp)
                    slot = (sp - loc.u.addr) % 8 ? 256 : (sp - loc.u.addr) / 8; /* 256: BAD */
                lw_scache_learned(v[k], size, flags, slot);
                if (++k >= need || ip != v[k])
                    break;
            } else if (have && ip == v[0] && sp == cfa) {
                k = 0;
            }
            if (!have)
                break;
            if (unw_is_signal_frame(&cur) > 0) {
                lw_scache_learned(ip, 0, 0, 0); /* the pc above it is not on the stack: BAD */
                break;
            }
            prev_sp = sp;
            prev_rbp = rbp;
            int r = unw_step(&cur);
            /* A step that ends the stack still leaves the last frame's
             * CFA, when that is the frame asked for. */
            if (r < 0 || (r == 0 && k != need - 1))
                break;
        }
    }
    capture_leave(gate);
    if (!stepped)
        return;
    for (int i = 0; i < need; i++)
        if (lw_scache_frame_size(v[i]) == LW_SCACHE_UNKNOWN)
            lw_scache_learned(v[i], 0, 0, 0); /* BAD */
}

/* A stack libunwind just gave: into the thread's cache, learning the frame
 * sizes it needs first (once per frame, process-wide). */
static LW_COLD void cache_fill(uintptr_t cfa, uint32_t tag, const uintptr_t *raw, int nraw,
                               bool ended, uint32_t id, uintptr_t lo, uintptr_t hi)
{
    if (nraw < 2)
        return;
    const uintptr_t *v = raw + 1; /* raw[0] lies in lw_stack_here itself */
    int n = nraw - 1;
    if (lw_scache_add(cfa, tag, v, n, ended, id, hi) == LW_SCACHE_NEED_SIZES &&
        cfa - lo >= LEARN_HEADROOM) {
        learn_sizes(cfa, v, n, ended ? n : n - 1);
        lw_scache_add(cfa, tag, v, n, ended, id, hi);
    }
}

LW_NOINLINE uint32_t lw_stack_here(uint8_t kind, int max, int skip)
{
    /* A stack seen before on this thread, with every return address where
     * it was: its id without unwinding (stackcache.c says why that is the
     * stack libunwind would give). */
    uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
    uint32_t tag = lw_scache_tag(kind, max, skip);
    bool cached = lw_state.cfg.unwind == LW_UNWIND_LIBUNWIND && lw_scache_on();
    uintptr_t lo = 0, hi = 0;
    if (cached) {
        if (LW_UNLIKELY(!stack_bounds(cfa, &lo, &hi))) {
            cached = false; /* a stack of unknown bounds (a coroutine's): never read */
        } else {
            uint32_t id = lw_scache_find(cfa, (uintptr_t)__builtin_return_address(0), tag, hi);
            if (LW_LIKELY(id))
                return id;
        }
    }
    uintptr_t raw[max + skip + 1 + LW_STACK_SLACK]; /* sized by the depth option */
    uintptr_t frames[max];
    bool truncated = false, ended;
    int nraw;
    /* capture_here's frame is this function's own: skip as given. */
    int n = capture_here(raw, (int)(sizeof raw / sizeof raw[0]), frames, max, skip, &truncated, &nraw,
                         &ended);
    uint32_t id = lw_stack_intern(kind, frames, n, truncated);
    if (cached && id)
        cache_fill(cfa, tag, raw, nraw, ended, id, lo, hi);
    return id;
}

static LW_COLD _Atomic(struct lw_stack_tally *) *tally_take(void)
{
    if (!tally_dirs)
        return LW_TALLY_SHARED;
    uint32_t k = LW_TALLY_SLOTS;
    lw_mutex_lock(&tally_lock);
    if (tally_nfree)
        k = tally_free[--tally_nfree];
    else if (atomic_load_explicit(&tally_used, memory_order_relaxed) < LW_TALLY_SLOTS)
        k = atomic_fetch_add_explicit(&tally_used, 1, memory_order_release);
    lw_mutex_unlock(&tally_lock);
    return k < LW_TALLY_SLOTS ? &tally_dirs[(size_t)k * nchunks] : LW_TALLY_SHARED;
}

struct lw_stack_tally *lw_stack_own_slow(uint32_t id)
{
    _Atomic(struct lw_stack_tally *) *d = lw_stack_my_tallies;
    if (!d)
        lw_stack_my_tallies = d = tally_take();
    if (d == LW_TALLY_SHARED || id > max_ids)
        return NULL;
    _Atomic(struct lw_stack_tally *) *slot = &d[id >> LW_TALLY_CHUNK_BITS];
    struct lw_stack_tally *ch = atomic_load_explicit(slot, memory_order_relaxed);
    if (!ch) {
        if (atomic_load_explicit(&tally_chunks, memory_order_relaxed) >= TALLY_CHUNKS_MAX)
            return NULL; /* enough memory for tallies: the shared counters */
        ch = lw_sys_map(CHUNK_IDS * sizeof *ch, true);
        if (!ch)
            return NULL; /* this count goes to the shared counters */
        atomic_fetch_add_explicit(&tally_chunks, 1, memory_order_relaxed);
        atomic_store_explicit(slot, ch, memory_order_release);
    }
    return &ch[id & (CHUNK_IDS - 1)];
}

void lw_stack_thread_exit(void)
{
    _Atomic(struct lw_stack_tally *) *d = lw_stack_my_tallies;
    lw_stack_my_tallies = LW_TALLY_SHARED;
    if ((uintptr_t)d <= (uintptr_t)LW_TALLY_SHARED)
        return;
    lw_mutex_lock(&tally_lock);
    tally_free[tally_nfree++] = (uint32_t)((size_t)(d - tally_dirs) / nchunks);
    lw_mutex_unlock(&tally_lock);
}

/* Sum one pair of fields (byte offset off of bytes, then objects) over the
 * shared counters and every slot's tally of id. */
static void sum_side(uint32_t id, uint32_t slots, size_t shared_off, size_t tally_off,
                     uint64_t *bytes, uint64_t *objects)
{
    const struct lw_stack_counters *c = &counters[id];
    const _Atomic uint64_t *cb = (const _Atomic uint64_t *)((const char *)c + shared_off);
    uint64_t b = atomic_load_explicit(&cb[0], memory_order_acquire);
    uint64_t o = atomic_load_explicit(&cb[1], memory_order_acquire);
    for (uint32_t k = 0; k < slots; k++) {
        struct lw_stack_tally *ch = atomic_load_explicit(
            &tally_dirs[(size_t)k * nchunks + (id >> LW_TALLY_CHUNK_BITS)], memory_order_acquire);
        if (!ch)
            continue;
        const _Atomic uint64_t *t =
            (const _Atomic uint64_t *)((const char *)&ch[id & (CHUNK_IDS - 1)] + tally_off);
        b += atomic_load_explicit(&t[0], memory_order_acquire);
        o += atomic_load_explicit(&t[1], memory_order_acquire);
    }
    *bytes = b;
    *objects = o;
}

/* Frees first, everywhere: a free this reader sees (acquire on its
 * release) happened after its block's allocation, which is then seen by
 * the later loads of the allocation counts, whichever slot holds them. A
 * count added while we read is simply in or out of this reading. */
void lw_stack_read(uint32_t id, struct lw_stack_totals *out)
{
    uint32_t slots = tally_dirs ? atomic_load_explicit(&tally_used, memory_order_acquire) : 0;
    if (slots > LW_TALLY_SLOTS)
        slots = LW_TALLY_SLOTS;
    sum_side(id, slots, offsetof(struct lw_stack_counters, free_bytes),
             offsetof(struct lw_stack_tally, free_bytes), &out->free_bytes, &out->free_objects);
    if (tally_dirs) { /* a slot taken meanwhile holds allocations too */
        slots = atomic_load_explicit(&tally_used, memory_order_acquire);
        if (slots > LW_TALLY_SLOTS)
            slots = LW_TALLY_SLOTS;
    }
    sum_side(id, slots, offsetof(struct lw_stack_counters, alloc_bytes),
             offsetof(struct lw_stack_tally, alloc_bytes), &out->alloc_bytes, &out->alloc_objects);
    if (out->alloc_bytes < out->free_bytes)
        out->alloc_bytes = out->free_bytes;
    if (out->alloc_objects < out->free_objects)
        out->alloc_objects = out->free_objects;
}

struct lw_stack_counters *lw_stack_counters(uint32_t id)
{
    return &counters[id];
}

uint32_t lw_stack_count(void)
{
    uint32_t n = atomic_load_explicit(&next_id, memory_order_acquire);
    return n > max_ids ? max_ids : n;
}

bool lw_stack_info(uint32_t id, struct lw_stack_info *out)
{
    if (id == 0 || id > lw_stack_count())
        return false;
    const struct desc *d = &descs[id];
    uint8_t kind = atomic_load_explicit(&d->kind, memory_order_acquire);
    if (!kind)
        return false;
    out->kind = kind;
    out->flags = d->flags;
    out->nframes = d->nframes;
    out->frames = &frame_pool[d->frames_off];
    return true;
}

uint64_t lw_stack_dropped(void)
{
    return atomic_load(&dropped);
}

uint64_t lw_stack_unwind_failures(void)
{
    return atomic_load(&unwind_failures);
}

void lw_stack_fork_child(void)
{
    /* A thread that held the lock is gone; what it published is whole. */
    lw_mutex_reset(&insert_lock);
    /* The other threads' tally slots keep their counts and are never
     * handed out again (they are not on the free list); this thread keeps
     * its own. A slot given back during the fork is whole (its owner had
     * finished counting). */
    lw_mutex_reset(&tally_lock);
    tally_nfree = 0; /* a thread may have been pushing onto it: drop the list */
    /* Only this thread exists. If it was mid-capture (fork in a signal
     * handler) its later leave finds 0 and stays there. */
    for (int i = 0; i < CAPTURE_SHARDS; i++)
        atomic_store(&capture_gate[i].n, 0);
    uint32_t nfast = atomic_load(&fast_used);
    nfast = nfast > FAST_SLOTS ? FAST_SLOTS : nfast;
    for (uint32_t i = 0; fast_slots && i < nfast; i++)
        atomic_store(&fast_slots[i].busy, 0);
    /* Once the fast gate goes off, no membarrier of any kind (a filter may
     * forbid it); a transition the fork interrupted ends here (no other
     * thread, no flag set). Otherwise the registration may not survive
     * into the child's new mm: renew it, or use the counters (only this
     * thread exists: a safe moment). */
    atomic_store(&mb_users, 0);
    if (atomic_load(&off_started)) {
        atomic_store(&fast_on, false);
        atomic_store(&mb_done, true);
    } else if (atomic_load(&fast_on) && !membarrier_register()) {
        atomic_store(&fast_on, false);
    }
    atomic_store(&forking_word, 0);
}

uint64_t lw_stack_memory_bytes(void)
{
    uint64_t ids = lw_stack_count();
    uint64_t bytes = (ids + 1) * (sizeof(struct lw_stack_counters) + sizeof(struct desc)) +
                     atomic_load(&frames_used) * sizeof(uintptr_t);
    for (struct index *ix = atomic_load(&cur_index); ix; ix = ix->older)
        bytes += ix->map_len;
    bytes += atomic_load(&tally_chunks) * CHUNK_IDS * sizeof(struct lw_stack_tally);
    return bytes;
}
