/*
 * table.c - lock-free live-block table (see table.h). 64 shards, each an
 * open-addressing array of 16-byte slots with linear probing. Must never
 * allocate through the host, never block except while its own shard is
 * being rehashed, and never touch a slot array it has not entered.
 *
 * Slot: key = address (48 bits) | epoch << 48; val = size (40 bits) |
 * stack id << 40. key 0 is EMPTY, key 1 is TOMB (no block lives at 0 or 1).
 *
 * Memory ordering.
 * 1. Gate. Each shard has a 32-bit gate: low 31 bits count operations in
 *    flight, bit 31 (EXCL) marks a rehash or a foreach. An operation enters
 *    with fetch_add(1, acquire); if EXCL was set it leaves again and waits.
 *    It leaves with a release CAS decrement (never below 0). The excluder sets EXCL with
 *    fetch_or (acq_rel) and waits, with acquire loads, until the count is 0.
 *    All these are read-modify-writes of one variable, so they are totally
 *    ordered: an operation that entered before EXCL was set is counted and
 *    waited for; one that enters after sees EXCL and backs off. The
 *    excluder's acquire load of count 0 synchronises with every leaving
 *    operation's release, so it sees all their slot writes; its release of
 *    the gate (fetch_and, release) after storing the new array pointer
 *    synchronises with the next entering operation's acquire, which
 *    therefore sees the new array and every slot copied into it.
 * 2. Slots. An insert claims a slot with CAS on key (EMPTY or TOMB -> key,
 *    acq_rel), then stores val (relaxed). No one reads that val before the
 *    insert returns: the only reader of a block's val is its free, which
 *    the program orders after the malloc returned (happens-before through
 *    the program's own synchronisation), or an excluder, which waits for the
 *    insert to leave the gate. A remove reads val, then CASes key -> TOMB;
 *    if two threads free the same pointer at once only one CAS wins.
 * 3. Concurrent inserts of different addresses race only for free slots,
 *    which the CAS arbitrates; the loser probes on. An insert of address A
 *    scans to the first EMPTY slot to find a stale entry for A (a free we
 *    never saw), so A never appears twice; only A's owner inserts A.
 */
#include "table.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "lw.h"
#include "state.h"
#include "sys.h"

#define NSHARDS 64
#define SHARD_BITS 6
#define INITIAL_CAP 128u /* 2 KiB + header: one page per shard */
#define EXCL 0x80000000u
#define KEY_EMPTY 0u
#define KEY_TOMB 1u
#define ADDR_MASK (LW_TABLE_MAX_ADDR - 1)

struct slot {
    _Atomic uint64_t key;
    _Atomic uint64_t val;
};

struct slots {
    uint64_t cap; /* power of two */
    uint64_t map_len;
    struct slot s[];
};

struct shard {
    _Atomic uint32_t gate;
    _Atomic(struct slots *) tab;
    _Atomic int64_t used; /* live + tombstones: slots no longer EMPTY */
    _Atomic uint64_t mask; /* tab->cap - 1, for lw_table_prefetch (which must not read tab) */
    char pad[64 - 4 - 8 - 8 - 8 - 4];
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct shard) == 64, "one cache line per shard");
static struct shard shards[NSHARDS];
static _Atomic uint64_t n_rehash, n_purge, n_failed, max_pause;

static inline uint64_t hash_addr(uintptr_t a)
{
    uint64_t h = (uint64_t)(a >> 4) * UINT64_C(0x9E3779B97F4A7C15);
    return h ^ (h >> 31);
}

static inline struct shard *shard_of(uint64_t h)
{
    return &shards[h >> (64 - SHARD_BITS)];
}

static struct slots *slots_new(uint64_t cap)
{
    size_t len = sizeof(struct slots) + cap * sizeof(struct slot);
    len = (len + LW_PAGE - 1) & ~(size_t)(LW_PAGE - 1);
    struct slots *t = lw_sys_map(len, false);
    if (!t)
        return NULL;
    t->cap = cap;
    t->map_len = len;
    return t; /* zero pages: every key EMPTY */
}

static void fast_init(void);

bool lw_table_init(void)
{
    for (int i = 0; i < NSHARDS; i++) {
        if (atomic_load(&shards[i].tab))
            continue;
        struct slots *t = slots_new(INITIAL_CAP);
        if (!t)
            return false;
        atomic_store(&shards[i].tab, t);
        atomic_store(&shards[i].mask, t->cap - 1);
    }
    fast_init();
    return true;
}

static LW_COLD void wait_excl(struct shard *sh)
{
    for (int spins = 0; atomic_load_explicit(&sh->gate, memory_order_acquire) & EXCL; spins++) {
        if (spins < 64)
            __builtin_ia32_pause();
        else
            sched_yield();
    }
}

/* ---- fast entry: one flag per thread, membarrier on the excluder's side ----
 * The gate's count costs two locked instructions per operation. Where the
 * kernel has membarrier(PRIVATE_EXPEDITED), a thread instead stores 1 +
 * the shard's index into its own flag (its own cache line), then loads the
 * gate (acquire); it leaves by storing the flag's previous value
 * (release). The excluder sets EXCL (fetch_or), calls membarrier, which
 * runs a full barrier on every CPU running a thread of ours, then waits
 * (acquire) until no flag names its shard. Dekker's argument with both
 * fences on the rare side: either a thread's flag store precedes that
 * barrier, and the excluder sees the flag and waits for the release that
 * publishes the thread's slot writes; or its gate load follows it, sees
 * EXCL and backs off. The excluder's release of the gate, after the new
 * array is stored, synchronises with the acquire load of the next entry,
 * as for the counted path. Threads beyond FAST_SLOTS and kernels without
 * membarrier use the count.
 *
 * Fast off, for good (lw_table_fast_off), before the program installs a
 * seccomp filter, which may kill on membarrier. It stores fast_on = false
 * (seq_cst), runs one membarrier (still allowed), then waits until every
 * other thread's flag is 0. A fast entry loads fast_on again after its
 * flag store and compiler fence; if false it restores the flag and counts
 * instead. A thread whose re-check runs before that membarrier's barrier
 * in it has its earlier flag store visible to the wait, which waits for
 * its leave; one whose re-check runs after sees false. So when the wait
 * ends, no thread is inside by its flag and none will enter so again:
 * excluders need no membarrier, and `mb_done` tells them so. Until it is
 * set they still run theirs (fast_on may already be false while flags
 * are set). An excluder counts itself in `mb_users` before it reads
 * mb_done; the transition sets mb_done then waits for mb_users == 0
 * (Dekker, both sides seq_cst): an excluder either sees mb_done or has
 * finished its membarrier before the transition returns, i.e. before the
 * filter exists. The caller's own flag is not waited for: set, it belongs
 * to an operation a signal handler interrupted, which cannot go on until
 * we return; its store precedes the membarrier, so excluders see it. */
#define FAST_SLOTS 4096
struct fast_slot {
    _Atomic uint32_t in; /* 1 + shard index while inside an operation; 0 outside */
    char pad[60];
};
static struct fast_slot *fast_slots;
static _Atomic bool fast_on;
static _Atomic bool mb_done;       /* no membarrier any more: the flags are unused */
static _Atomic uint32_t mb_users;  /* excluders between reading mb_done and their membarrier */
static _Atomic bool off_started;   /* lw_table_fast_off is running or has run */
static _Atomic uint32_t fast_used;
static LW_TLS struct fast_slot *my_slot;
static struct fast_slot no_slot;

#ifndef MEMBARRIER_CMD_PRIVATE_EXPEDITED
#define MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#endif

static bool membarrier_register(void)
{
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static void fast_init(void)
{
    if (!fast_slots && lw_core_membarrier_ok && !atomic_load(&off_started) && membarrier_register()) {
        fast_slots = lw_sys_map(FAST_SLOTS * sizeof *fast_slots, true);
        atomic_store(&fast_on, fast_slots != NULL);
    }
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

/* How a thread entered a shard, for gate_leave. */
struct pass {
    struct fast_slot *f; /* NULL: counted in the gate */
    uint32_t prev;       /* the flag's value before */
};

static inline struct slots *gate_enter(struct shard *sh, struct pass *ps)
{
    struct fast_slot *f = my_slot;
    bool on = atomic_load_explicit(&fast_on, memory_order_relaxed);
    if (LW_UNLIKELY(!f) && on)
        f = fast_slot_assign();
    if (LW_LIKELY(on && f && f != &no_slot)) {
        uint32_t me = (uint32_t)(sh - shards) + 1;
        ps->f = f;
        ps->prev = atomic_load_explicit(&f->in, memory_order_relaxed);
        for (;;) {
            atomic_store_explicit(&f->in, me, memory_order_relaxed);
            atomic_signal_fence(memory_order_seq_cst); /* the CPU's fence is the excluder's membarrier */
            bool excl = atomic_load_explicit(&sh->gate, memory_order_acquire) & EXCL;
            bool still = atomic_load_explicit(&fast_on, memory_order_relaxed);
            if (LW_LIKELY(!excl && still))
                return atomic_load_explicit(&sh->tab, memory_order_relaxed);
            atomic_store_explicit(&f->in, ps->prev, memory_order_release);
            if (!still)
                break; /* fast gates went off: count */
            wait_excl(sh);
        }
    }
    ps->f = NULL;
    for (;;) {
        uint32_t g = atomic_fetch_add_explicit(&sh->gate, 1, memory_order_acquire);
        if (LW_LIKELY(!(g & EXCL)))
            return atomic_load_explicit(&sh->tab, memory_order_relaxed);
        atomic_fetch_sub_explicit(&sh->gate, 1, memory_order_release);
        wait_excl(sh);
    }
}

/* Leave: decrement, never below zero. A fork child zeroes every gate; a
 * thread it interrupted mid-operation (fork in a signal handler) leaves
 * later and must not wrap the count into EXCL. */
static inline void gate_leave(struct shard *sh, const struct pass *ps)
{
    if (LW_LIKELY(ps->f)) {
        atomic_store_explicit(&ps->f->in, ps->prev, memory_order_release);
        return;
    }
    uint32_t g = atomic_load_explicit(&sh->gate, memory_order_relaxed);
    while ((g & ~EXCL) &&
           !atomic_compare_exchange_weak_explicit(&sh->gate, &g, g - 1, memory_order_release,
                                                  memory_order_relaxed))
        ;
}

static void spin(int *spins)
{
    if ((*spins)++ < 64)
        __builtin_ia32_pause();
    else
        sched_yield();
}

/* Decrement, never below 0: a fork child zeroes mb_users, and a thread it
 * interrupted here (fork in a signal handler) leaves later. */
static void mb_users_leave(void)
{
    uint32_t u = atomic_load_explicit(&mb_users, memory_order_relaxed);
    while (u && !atomic_compare_exchange_weak_explicit(&mb_users, &u, u - 1, memory_order_release,
                                                       memory_order_relaxed))
        ;
}

/* Take the shard exclusively. false if another excluder holds it. */
static bool excl_try(struct shard *sh)
{
    uint32_t g = atomic_fetch_or_explicit(&sh->gate, EXCL, memory_order_acq_rel);
    if (g & EXCL)
        return false;
    atomic_fetch_add(&mb_users, 1);
    if (fast_slots && !atomic_load(&mb_done) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        /* Cannot happen once registered. Without the barrier a flag may be
         * unseen: new entries use the count from now on, and we wait for
         * every flag that is set before going on. */
        atomic_store(&fast_on, false);
    }
    mb_users_leave();
    int spins = 0;
    while (atomic_load_explicit(&sh->gate, memory_order_acquire) & ~EXCL)
        spin(&spins);
    uint32_t me = (uint32_t)(sh - shards) + 1;
    uint32_t n = atomic_load_explicit(&fast_used, memory_order_relaxed);
    n = n > FAST_SLOTS ? FAST_SLOTS : n;
    for (uint32_t i = 0; fast_slots && i < n; i++)
        while (atomic_load_explicit(&fast_slots[i].in, memory_order_acquire) == me)
            spin(&spins);
    return true;
}

static void excl_take(struct shard *sh)
{
    while (!excl_try(sh))
        wait_excl(sh);
}

static void excl_release(struct shard *sh)
{
    atomic_fetch_and_explicit(&sh->gate, ~EXCL, memory_order_release);
}

static inline uint64_t pack_val(const struct lw_block *b)
{
    return b->size | ((uint64_t)b->stack << 40);
}

static inline void unpack(uint64_t key, uint64_t val, struct lw_block *b)
{
    b->size = val & LW_TABLE_MAX_SIZE;
    b->stack = (uint32_t)(val >> 40);
    b->epoch = (uint32_t)(key >> 48);
}

/* Copy every live entry of `from` into `to` (exclusive: no concurrency). */
static void rehash_into(const struct slots *from, struct slots *to)
{
    uint64_t mask = to->cap - 1;
    for (uint64_t i = 0; i < from->cap; i++) {
        uint64_t k = atomic_load_explicit(&from->s[i].key, memory_order_relaxed);
        if (k == KEY_EMPTY || k == KEY_TOMB)
            continue;
        uint64_t j = hash_addr(k & ADDR_MASK) & mask;
        while (atomic_load_explicit(&to->s[j].key, memory_order_relaxed) != KEY_EMPTY)
            j = (j + 1) & mask;
        atomic_store_explicit(&to->s[j].key, k, memory_order_relaxed);
        atomic_store_explicit(&to->s[j].val,
                              atomic_load_explicit(&from->s[i].val, memory_order_relaxed),
                              memory_order_relaxed);
    }
}

static uint64_t count_live(const struct slots *t)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < t->cap; i++) {
        uint64_t k = atomic_load_explicit(&t->s[i].key, memory_order_relaxed);
        n += k != KEY_EMPTY && k != KEY_TOMB;
    }
    return n;
}

/* Drop the tombstones of t without a new array (exclusive access). Start
 * right after a slot that was EMPTY before the purge: a cluster boundary,
 * so every entry met has its home in the part already processed. Each
 * tombstone met becomes EMPTY; each entry is lifted and put back at the
 * first EMPTY from its home, which is at or before where it was. Slots
 * change only at the position being processed, so an entry placed earlier
 * keeps an unbroken probe path. false if no EMPTY slot exists. */
static bool purge_in_place(struct slots *t)
{
    uint64_t mask = t->cap - 1, start = UINT64_MAX;
    for (uint64_t i = 0; i < t->cap && start == UINT64_MAX; i++)
        if (atomic_load_explicit(&t->s[i].key, memory_order_relaxed) == KEY_EMPTY)
            start = i;
    if (start == UINT64_MAX)
        return false;
    for (uint64_t n = 1; n <= t->cap; n++) {
        uint64_t i = (start + n) & mask;
        uint64_t k = atomic_load_explicit(&t->s[i].key, memory_order_relaxed);
        if (k == KEY_EMPTY)
            continue;
        atomic_store_explicit(&t->s[i].key, KEY_EMPTY, memory_order_relaxed);
        if (k == KEY_TOMB)
            continue;
        uint64_t v = atomic_load_explicit(&t->s[i].val, memory_order_relaxed);
        uint64_t j = hash_addr(k & ADDR_MASK) & mask;
        while (atomic_load_explicit(&t->s[j].key, memory_order_relaxed) != KEY_EMPTY)
            j = (j + 1) & mask;
        atomic_store_explicit(&t->s[j].val, v, memory_order_relaxed);
        atomic_store_explicit(&t->s[j].key, k, memory_order_relaxed);
    }
    return true;
}

/* Grow, shrink or clean a shard whose live + tombstones passed 3/4 of
 * capacity. Load after it is at most 1/2. The capacity stays unless it is
 * too small or eight times too large (hysteresis: churn around one size
 * must not map and unmap arrays, each a TLB shootdown on every core).
 * A clean comes every 3/4 capacity - live inserts into fresh slots, and
 * each stops the shard's other users and costs a membarrier (an IPI to
 * every core running the program): small shards, where room is cheap,
 * keep load at most 1/8 instead, and clean about seven times less often
 * (bench/tablebench at 10 k live: 9.5 k cleans instead of 66 k). */
#define ROOMY_CAP 4096u /* slots (64 KiB): 4 MiB at most over all shards */
static LW_COLD void maybe_rehash(struct shard *sh)
{
    if (!excl_try(sh))
        return;
    uint64_t t0 = lw_sys_monotonic_ns();
    struct slots *old = atomic_load_explicit(&sh->tab, memory_order_relaxed);
    int64_t live = (int64_t)count_live(old);
    if ((uint64_t)atomic_load_explicit(&sh->used, memory_order_relaxed) * 4 >= old->cap * 3) {
        uint64_t need = (uint64_t)live * 2 + 2, cap = old->cap;
        if (need * 4 <= ROOMY_CAP)
            need *= 4;
        if (cap < need || (cap > INITIAL_CAP && cap >= need * 8)) {
            cap = INITIAL_CAP;
            while (cap < need * (old->cap < need ? 1 : 2)) /* a shrink leaves room: load 1/4 */
                cap <<= 1;
        }
        if (cap == old->cap && purge_in_place(old)) {
            atomic_store_explicit(&sh->used, live, memory_order_relaxed);
            atomic_fetch_add_explicit(&n_purge, 1, memory_order_relaxed);
            goto done;
        }
        struct slots *nt = slots_new(cap);
        if (nt) {
            rehash_into(old, nt);
            atomic_store_explicit(&sh->tab, nt, memory_order_release);
            atomic_store_explicit(&sh->mask, nt->cap - 1, memory_order_relaxed);
            atomic_store_explicit(&sh->used, live, memory_order_relaxed);
            lw_sys_unmap(old, old->map_len);
            atomic_fetch_add_explicit(&n_rehash, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&n_failed, 1, memory_order_relaxed);
            lw_log_warn(LW_WARN_TABLE, "cannot grow the live-block table (out of memory); "
                                       "new blocks may go untracked (counted as dropped)");
        }
    }
done:;
    uint64_t pause = lw_sys_monotonic_ns() - t0;
    uint64_t m = atomic_load_explicit(&max_pause, memory_order_relaxed);
    while (pause > m &&
           !atomic_compare_exchange_weak_explicit(&max_pause, &m, pause, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    excl_release(sh);
}

enum lw_table_result lw_table_insert(uintptr_t addr, const struct lw_block *b, struct lw_block *stale)
{
    if (LW_UNLIKELY(addr < 2 || addr >= LW_TABLE_MAX_ADDR || b->size > LW_TABLE_MAX_SIZE ||
                    b->stack > LW_TABLE_MAX_STACK))
        return LW_TABLE_DROPPED;
    uint64_t h = hash_addr(addr);
    struct shard *sh = shard_of(h);
    uint32_t epoch = b->epoch > 0xffff ? 0xffff : b->epoch;
    uint64_t key = (uint64_t)addr | ((uint64_t)epoch << 48);
    uint64_t val = pack_val(b);
    enum lw_table_result res = LW_TABLE_DROPPED;
    bool grow = false;

    struct pass ps;
    struct slots *t = gate_enter(sh, &ps);
    uint64_t mask = t->cap - 1;
retry:;
    uint64_t tomb = UINT64_MAX;
    uint64_t i = h & mask;
    for (uint64_t n = 0; n < t->cap; n++, i = (i + 1) & mask) {
        uint64_t k = atomic_load_explicit(&t->s[i].key, memory_order_acquire);
        if (k == KEY_TOMB) {
            if (tomb == UINT64_MAX)
                tomb = i;
            continue;
        }
        if (k == KEY_EMPTY) {
            uint64_t at = tomb != UINT64_MAX ? tomb : i;
            uint64_t expect = tomb != UINT64_MAX ? KEY_TOMB : KEY_EMPTY;
            if (!atomic_compare_exchange_strong_explicit(&t->s[at].key, &expect, key,
                                                         memory_order_acq_rel,
                                                         memory_order_relaxed))
                goto retry; /* another insert took it: probe again */
            atomic_store_explicit(&t->s[at].val, val, memory_order_relaxed);
            if (expect == KEY_EMPTY) {
                int64_t used = atomic_fetch_add_explicit(&sh->used, 1, memory_order_relaxed) + 1;
                grow = (uint64_t)used * 4 >= t->cap * 3;
            }
            res = LW_TABLE_INSERTED;
            break;
        }
        if ((k & ADDR_MASK) == addr) {
            /* A stale entry: the block was freed behind our back and the
             * allocator handed the address out again. Take its place. */
            unpack(k, atomic_load_explicit(&t->s[i].val, memory_order_relaxed), stale);
            atomic_store_explicit(&t->s[i].val, val, memory_order_relaxed);
            atomic_store_explicit(&t->s[i].key, key, memory_order_release);
            res = LW_TABLE_REPLACED;
            break;
        }
    }
    if (res == LW_TABLE_DROPPED && tomb != UINT64_MAX) {
        /* No EMPTY slot left at all: reuse the tombstone we saw. */
        uint64_t expect = KEY_TOMB;
        if (atomic_compare_exchange_strong_explicit(&t->s[tomb].key, &expect, key,
                                                    memory_order_acq_rel, memory_order_relaxed)) {
            atomic_store_explicit(&t->s[tomb].val, val, memory_order_relaxed);
            res = LW_TABLE_INSERTED;
        }
        grow = true;
    } else if (res == LW_TABLE_DROPPED) {
        grow = true;
    }
    gate_leave(sh, &ps);
    if (LW_UNLIKELY(grow))
        maybe_rehash(sh);
    return res;
}

void lw_table_prefetch(uintptr_t addr)
{
    uint64_t h = hash_addr(addr);
    /* No gate: a rehash may replace the array meanwhile, so we read
     * neither it nor its header (it may be unmapped by now), only the
     * pointer and the mask, maybe of two generations. A prefetch of a
     * wrong or unmapped address is harmless: prefetching never faults. */
    struct shard *sh = shard_of(h);
    struct slots *t = atomic_load_explicit(&sh->tab, memory_order_relaxed);
    uint64_t mask = atomic_load_explicit(&sh->mask, memory_order_relaxed);
    __builtin_prefetch((const char *)t + sizeof *t + (h & mask) * sizeof(struct slot), 1, 3);
}

/* Find addr's slot in t (entered); -1 if absent. *key gets its key. */
static inline int64_t find(const struct slots *t, uint64_t h, uintptr_t addr, uint64_t *key)
{
    uint64_t mask = t->cap - 1, i = h & mask;
    for (uint64_t n = 0; n < t->cap; n++, i = (i + 1) & mask) {
        uint64_t k = atomic_load_explicit(&t->s[i].key, memory_order_acquire);
        if (k == KEY_EMPTY)
            return -1;
        if (k != KEY_TOMB && (k & ADDR_MASK) == addr) {
            *key = k;
            return (int64_t)i;
        }
    }
    return -1;
}

/* Remove (take) or read addr's entry. */
static bool find_entry(uintptr_t addr, struct lw_block *out, bool take)
{
    if (LW_UNLIKELY(addr < 2 || addr >= LW_TABLE_MAX_ADDR))
        return false;
    uint64_t h = hash_addr(addr), k;
    struct shard *sh = shard_of(h);
    bool found = false;
    struct pass ps;
    struct slots *t = gate_enter(sh, &ps);
    int64_t i = find(t, h, addr, &k);
    if (i >= 0) {
        uint64_t v = atomic_load_explicit(&t->s[i].val, memory_order_relaxed);
        /* A CAS: of two threads freeing one pointer at once, one wins. */
        found = !take || atomic_compare_exchange_strong_explicit(&t->s[i].key, &k, KEY_TOMB,
                                                                 memory_order_acq_rel,
                                                                 memory_order_relaxed);
        if (found)
            unpack(k, v, out);
    }
    gate_leave(sh, &ps);
    return found;
}

bool lw_table_remove(uintptr_t addr, struct lw_block *out)
{
    return find_entry(addr, out, true);
}

bool lw_table_lookup(uintptr_t addr, struct lw_block *out)
{
    return find_entry(addr, out, false);
}

void lw_table_foreach(void (*fn)(uintptr_t addr, const struct lw_block *b, void *arg), void *arg)
{
    for (int s = 0; s < NSHARDS; s++) {
        struct shard *sh = &shards[s];
        excl_take(sh);
        struct slots *t = atomic_load_explicit(&sh->tab, memory_order_relaxed);
        for (uint64_t i = 0; t && i < t->cap; i++) {
            uint64_t k = atomic_load_explicit(&t->s[i].key, memory_order_relaxed);
            if (k == KEY_EMPTY || k == KEY_TOMB)
                continue;
            struct lw_block b;
            unpack(k, atomic_load_explicit(&t->s[i].val, memory_order_relaxed), &b);
            fn((uintptr_t)(k & ADDR_MASK), &b, arg);
        }
        excl_release(sh);
    }
}

void lw_table_stats(struct lw_table_stats *st)
{
    memset(st, 0, sizeof *st);
    for (int s = 0; s < NSHARDS; s++) {
        struct pass ps;
        struct slots *t = gate_enter(&shards[s], &ps);
        if (t) {
            st->live += count_live(t);
            st->slots += t->cap;
            st->bytes += t->map_len;
        }
        gate_leave(&shards[s], &ps);
    }
    st->rehashes = atomic_load(&n_rehash);
    st->purges = atomic_load(&n_purge);
    st->failed_grows = atomic_load(&n_failed);
    st->max_pause_ns = atomic_load(&max_pause);
    st->fast_gates = atomic_load(&fast_on);
}

void lw_table_fork_child(void)
{
    /* Threads counted in a gate, or rehashing, do not exist here. A rehash
     * only publishes a complete array, so the published one is whole. If
     * this thread was mid-operation (fork in a signal handler), its leave
     * finds 0 and stays there. */
    for (int s = 0; s < NSHARDS; s++)
        atomic_store_explicit(&shards[s].gate, 0, memory_order_relaxed);
    uint32_t n = atomic_load(&fast_used);
    n = n > FAST_SLOTS ? FAST_SLOTS : n;
    for (uint32_t i = 0; fast_slots && i < n; i++)
        atomic_store_explicit(&fast_slots[i].in, 0, memory_order_relaxed);
    /* Once the fast gates go off, no membarrier of any kind: a filter may
     * forbid it. A transition the fork interrupted ends here (no other
     * thread, no flag set). Otherwise the registration may not carry over
     * to the child's new mm. */
    atomic_store(&mb_users, 0);
    if (atomic_load(&off_started)) {
        atomic_store(&fast_on, false);
        atomic_store(&mb_done, true);
    } else if (atomic_load(&fast_on) && !membarrier_register()) {
        atomic_store(&fast_on, false);
    }
}

void lw_table_fast_off(void)
{
    if (atomic_exchange(&off_started, true)) { /* another thread does it: wait for it */
        int spins = 0;
        while (!atomic_load(&mb_done))
            spin(&spins);
        return;
    }
    int spins = 0;
    atomic_store(&fast_on, false);
    if (fast_slots) {
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        uint32_t n = atomic_load(&fast_used);
        n = n > FAST_SLOTS ? FAST_SLOTS : n;
        for (uint32_t i = 0; i < n; i++)
            while (&fast_slots[i] != my_slot &&
                   atomic_load_explicit(&fast_slots[i].in, memory_order_acquire))
                spin(&spins);
    }
    atomic_store(&mb_done, true);
    while (atomic_load(&mb_users))
        spin(&spins);
}
