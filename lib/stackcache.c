/*
 * stackcache.c - the validated stack cache (see stackcache.h). Never
 * allocates through the host, never locks, never reads the stack outside
 * [cfa, hi) of the thread's own stack (plus the word at cfa - 16, in the
 * capturing function's own frame).
 *
 * Why a hit is the stack libunwind would give. An entry was made from
 * libunwind's frames v[0..n) for a capture whose CFA was cfa, and holds
 * for each frame after v[0] the address where its return address was
 * found: the previous frame's CFA - 8. A hit needs the same cfa and return
 * address and the same value at every one of those addresses. Frame by
 * frame: frame i runs at the same return address, so it is the same
 * function at the same call, and its stack pointer is the previous CFA,
 * the same. Its CFA is then the same too, for one of two reasons:
 *  - its rbp was not a frame pointer when it was learned. On x86-64 a
 *    frame whose CFA is not its stack pointer plus a constant (it grows
 *    with alloca or a variable-length array, or realigns its stack) keeps
 *    a frame pointer in rbp, at every call from that address: CFA - 16, or
 *    gcc's realignment (rbp inside the frame, the CFA stored at rbp - 8),
 *    which is BAD. So this frame's CFA is its stack pointer plus the size
 *    learned (the map below, from stepping libunwind), at every call from
 *    this address;
 *  - or its rbp was CFA - 16, the standard frame pointer (LW_SCACHE_FP): the
 *    size may vary, so the entry takes this frame's CFA from its rbp + 16,
 *    with rbp read where the frames below saved it, and checks that rbp
 *    on every hit. Each frame's save slot for its caller's rbp comes from
 *    the unwind tables (libunwind's save location), so it is fixed by its
 *    return address; a frame that does not save rbp leaves it as it was;
 *    the capturing function keeps a frame pointer (its caller's rbp at
 *    cfa - 16). So the rbp read is the one libunwind would use, and the CFA
 *    from it the cached one.
 * Where the stack ends. Cut at the depth asked, a stack depends on nothing
 * past its last return address. Ended by libunwind itself, it depends on
 * what libunwind read in the last frame: the word where its return
 * address would be (0, an address below 0x4000, code it cannot step
 * into) and, if that frame has no unwind tables, its rbp (the fallback
 * follows it). Such an entry learns the last frame's size too and checks
 * both words; the rest (that frame's unwind tables) is fixed by its
 * return address.
 * Why both: old return addresses lie all over a stack's dead words, so a
 * check that reads a word which is not this frame's own return address
 * would pass on a stale copy (a frame that shrank by alloca leaves its
 * caller's old return address behind). Signal frames (libunwind takes the
 * interrupted pc from the saved context, not from the stack) are BAD. Left
 * outside this argument: hand-written assembly whose unwind tables take
 * the CFA from a register other than rsp and rbp.
 *
 * The frame-size map is process-wide and insert-only: open addressing, a
 * key claimed with CAS (0 -> ip), its value stored by CAS from 0 (release);
 * a reader that finds the key loads the value with acquire and treats 0
 * as unknown. A value changes at most once more, to BAD, which is final:
 * every first store is a CAS from 0. Only lw_scache_invalidate (dlclose)
 * empties slots, and never while a writer is inside one: writers count
 * themselves in `writing` and stay out while `clearing` is set (each
 * stores its own word, then loads the other's, both sequentially
 * consistent: one of the two sees the other). Otherwise a writer that
 * claimed a slot just before it was emptied could leave its value in a
 * slot without a key, which the next key to claim it would then read as
 * its own. The per-thread cache is only ever touched by its thread: no
 * ordering needed.
 */
#include "stackcache.h"

#include <stdatomic.h>
#include <sched.h>
#include <stddef.h>

#include "lw.h"
#include "sys.h"

/* ---- frame sizes, process-wide ---- */
#define SIZE_SLOTS (1u << 16) /* 1 MiB; full: new frames are not cached */
#define SIZE_PROBES 32
#define SIZE_MAX_FRAME 65528u /* a larger frame is never cached through */

struct size_slot {
    _Atomic uint64_t ip;
    _Atomic uint32_t size;
    uint32_t pad;
};

static struct size_slot *sizes;
static _Atomic bool on;
static _Atomic uint32_t gen; /* bumped by lw_scache_invalidate: older entries are void */
static _Atomic uint64_t n_known, n_bad, n_misses, n_hits, n_added, n_refused;
static _Atomic uint32_t writing;  /* writers inside lw_scache_learned */
static _Atomic uint32_t clearing; /* lw_scache_invalidate calls emptying the map */

static inline uint64_t mix(uint64_t x)
{
    x *= UINT64_C(0x9E3779B97F4A7C15);
    return x ^ (x >> 29);
}

bool lw_scache_init(void)
{
    if (!sizes)
        sizes = lw_sys_map(SIZE_SLOTS * sizeof *sizes, true);
    atomic_store(&on, sizes != NULL);
    return sizes != NULL;
}

bool lw_scache_on(void)
{
    return atomic_load_explicit(&on, memory_order_relaxed);
}

void lw_scache_off(void)
{
    atomic_store(&on, false);
}

uint32_t lw_scache_frame_size(uintptr_t ip)
{
    if (!sizes || !ip)
        return LW_SCACHE_BAD;
    uint32_t i = (uint32_t)(mix(ip) >> 48);
    for (int p = 0; p < SIZE_PROBES; p++, i = (i + 1) & (SIZE_SLOTS - 1)) {
        uint64_t k = atomic_load_explicit(&sizes[i].ip, memory_order_acquire);
        if (k == ip)
            return atomic_load_explicit(&sizes[i].size, memory_order_acquire);
        if (!k)
            return LW_SCACHE_UNKNOWN;
    }
    return LW_SCACHE_BAD; /* its neighbourhood is full: never cached */
}

static void learned(uintptr_t ip, uint64_t size, uint32_t flags, uint64_t rbp_slot);

void lw_scache_learned(uintptr_t ip, uint64_t size, uint32_t flags, uint64_t rbp_slot)
{
    if (!sizes || !ip)
        return;
    atomic_fetch_add(&writing, 1);
    if (!atomic_load(&clearing)) /* else: the map is being emptied, learn it later */
        learned(ip, size, flags, rbp_slot);
    atomic_fetch_sub(&writing, 1);
}

static void learned(uintptr_t ip, uint64_t size, uint32_t flags, uint64_t rbp_slot)
{
    uint32_t s = size && !(size & 7) && size <= SIZE_MAX_FRAME && rbp_slot <= 0xff
                     ? (uint32_t)size | (flags & LW_SCACHE_FP) | (uint32_t)rbp_slot << 16
                     : LW_SCACHE_BAD;
    uint32_t i = (uint32_t)(mix(ip) >> 48);
    for (int p = 0; p < SIZE_PROBES; p++, i = (i + 1) & (SIZE_SLOTS - 1)) {
        uint64_t k = atomic_load_explicit(&sizes[i].ip, memory_order_acquire);
        if (!k && atomic_compare_exchange_strong_explicit(&sizes[i].ip, &k, ip, memory_order_acq_rel,
                                                          memory_order_acquire))
            k = ip; /* ours: its value is still 0 */
        if (k != ip)
            continue; /* another ip's slot */
        uint32_t old = LW_SCACHE_UNKNOWN;
        if (atomic_compare_exchange_strong_explicit(&sizes[i].size, &old, s, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            atomic_fetch_add_explicit(s == LW_SCACHE_BAD ? &n_bad : &n_known, 1,
                                      memory_order_relaxed);
        } else if (old != s && old != LW_SCACHE_BAD) {
            /* Two observations differ: never trust it again. */
            atomic_store_explicit(&sizes[i].size, LW_SCACHE_BAD, memory_order_release);
            atomic_fetch_add_explicit(&n_bad, 1, memory_order_relaxed);
        }
        return;
    }
}

/* ---- the per-thread cache ---- */
#define SETS 256
#define WAYS 4
#define HIT_BATCH 4096 /* hits and misses counted per thread, published in batches */

/* A cached stack: the words that must still hold what they held, at fixed
 * offsets from cfa (the entry's key, so its expected values are absolute):
 * each frame's return address, and for a frame-pointer frame its rbp
 * (its CFA - 16). */
#define CHECKS (2 * LW_SCACHE_FRAMES)
struct entry {
    uint64_t cfa; /* 0: empty */
    uint64_t ra;
    uint32_t tag;
    uint32_t id;
    uint32_t extent; /* every address read lies below cfa + extent */
    uint32_t n;      /* checks */
    uint32_t gen;    /* made in this generation */
    uint32_t pad[7];
    int32_t off[CHECKS];
    uint64_t val[CHECKS];
};
_Static_assert(sizeof(struct entry) % 64 == 0, "entries start on cache lines");

struct set {
    uint32_t key[WAYS];  /* 0: empty */
    uint64_t used[WAYS]; /* the thread's clock at the last hit or fill */
};

struct cache {
    uint64_t clock;
    uint32_t hits, misses; /* not yet added to n_hits, n_misses */
    uint64_t map_len;
    struct set sets[SETS];
    struct entry e[SETS * WAYS];
};

#define DEAD ((struct cache *)1) /* the thread is ending: no cache */
static LW_TLS struct cache *mine;

static inline uint64_t key_hash(uintptr_t cfa, uintptr_t ra, uint32_t tag)
{
    return mix((cfa >> 3) ^ mix(ra ^ tag));
}

static inline uint32_t set_of(uint64_t h)
{
    return (uint32_t)(h >> 56);
}

static inline uint32_t key_of(uint64_t h)
{
    return (uint32_t)h | 1;
}

/* Every address is fixed relative to cfa (lw_scache_add worked them out),
 * so the loads do not wait for each other. They read the thread's own
 * live stack, which no sanitizer knows as an object. */
__attribute__((no_sanitize("address", "thread"))) static inline bool
still_there(const struct entry *e, uintptr_t cfa)
{
#define WORD_DIFFERS(k) (*(const uintptr_t *)(cfa + (intptr_t)e->off[k]) ^ e->val[k])
    /* Four words per branch: a hit reads them all anyway. */
    uint32_t i = 0, n = e->n;
    for (; i + 4 <= n; i += 4)
        if (WORD_DIFFERS(i) | WORD_DIFFERS(i + 1) | WORD_DIFFERS(i + 2) | WORD_DIFFERS(i + 3))
            return false;
    uint64_t diff = 0;
    for (; i < n; i++)
        diff |= WORD_DIFFERS(i);
    return diff == 0;
#undef WORD_DIFFERS
}

uint32_t lw_scache_find(uintptr_t cfa, uintptr_t ra, uint32_t tag, uintptr_t hi)
{
    struct cache *c = mine;
    if (LW_UNLIKELY((uintptr_t)c <= (uintptr_t)DEAD))
        return 0;
    uint64_t h = key_hash(cfa, ra, tag);
    struct set *s = &c->sets[set_of(h)];
    uint32_t k = key_of(h);
    for (int w = 0; w < WAYS; w++) {
        if (s->key[w] != k)
            continue;
        const struct entry *e = &c->e[set_of(h) * WAYS + (uint32_t)w];
        if (e->cfa == cfa && e->ra == ra && e->tag == tag && hi - cfa >= e->extent &&
            e->gen == atomic_load_explicit(&gen, memory_order_acquire) && still_there(e, cfa)) {
            s->used[w] = ++c->clock;
            if (LW_UNLIKELY(++c->hits == HIT_BATCH)) {
                atomic_fetch_add_explicit(&n_hits, HIT_BATCH, memory_order_relaxed);
                c->hits = 0;
            }
            return e->id;
        }
    }
    if (LW_UNLIKELY(++c->misses == HIT_BATCH)) {
        atomic_fetch_add_explicit(&n_misses, HIT_BATCH, memory_order_relaxed);
        c->misses = 0;
    }
    return 0;
}

static LW_COLD struct cache *cache_map(void)
{
    size_t len = (sizeof(struct cache) + LW_PAGE - 1) & ~(size_t)(LW_PAGE - 1);
    struct cache *c = lw_sys_map(len, true);
    if (!c)
        return NULL;
    c->map_len = len;
    mine = c;
    return c;
}

__attribute__((no_sanitize("address", "thread"))) enum lw_scache_add_result
lw_scache_add(uintptr_t cfa, uint32_t tag, const uintptr_t *v, int n, bool ended, uint32_t id,
              uintptr_t hi)
{
    struct cache *c = mine;
    /* Frames whose size is needed: all but the last, unless the unwinder
     * stopped there by itself. At most two checks each. */
    int sized = ended ? n : n - 1;
    if (c == DEAD || !lw_scache_on() || id == 0 || n < 1 || sized > LW_SCACHE_FRAMES ||
        cfa < 16 || hi <= cfa)
        goto refused;
    /* The first address is fixed by the capture itself; if it does not
     * hold v[0], the compiler's CFA is not what this file assumes: off. */
    if (*(const uintptr_t *)(cfa - 8) != v[0]) {
        lw_scache_off();
        goto refused;
    }
    /* Read first: if code is unloaded while this entry is made, it is
     * made in the older generation and never used. */
    uint32_t g = atomic_load_explicit(&gen, memory_order_acquire);
    int32_t off[CHECKS];
    uint64_t val[CHECKS];
    uint32_t nc = 0;
    uintptr_t at = cfa, rbp_at = cfa - 16; /* the capturing function keeps a frame pointer */
    for (int i = 1; i <= sized; i++) {
        uint32_t fv = lw_scache_frame_size(v[i - 1]);
        if (fv == LW_SCACHE_UNKNOWN)
            return LW_SCACHE_NEED_SIZES;
        if (fv == LW_SCACHE_BAD)
            goto refused;
        uint32_t sz = LW_SCACHE_SIZE(fv), slot = LW_SCACHE_RBP_SLOT(fv);
        uintptr_t callee = at;
        uintptr_t rbp = *(const uintptr_t *)rbp_at; /* this frame's rbp */
        if ((fv & LW_SCACHE_FP) || i == n) {
            /* A frame-pointer frame's CFA is its rbp + 16, whatever its
             * size this time; the last frame's rbp is what an unwinder
             * without unwind tables for it would have followed. */
            off[nc] = (int32_t)(rbp_at - cfa);
            val[nc++] = rbp;
        }
        if (fv & LW_SCACHE_FP) {
            if (rbp + 16 <= callee || rbp + 16 - callee > SIZE_MAX_FRAME || (rbp & 7))
                goto refused;
            sz = (uint32_t)(rbp + 16 - callee);
        }
        if (hi - at <= sz || 8 * slot > sz)
            goto refused;
        at += sz;
        /* Frame i's return address; past the last frame, the word the
         * unwinder stopped at (0, a bad address, code it could not step
         * into), whatever it holds. */
        uintptr_t word = *(const uintptr_t *)(at - 8);
        if (i < n && word != v[i]) {
            if (!(fv & LW_SCACHE_FP))
                lw_scache_learned(v[i - 1], 0, 0, 0); /* its size misplaced the next frame: BAD */
            goto refused;
        }
        off[nc] = (int32_t)(at - 8 - cfa);
        val[nc++] = word;
        if (slot)
            rbp_at = at - 8 * slot;
    }
    if (!c && !(c = cache_map()))
        goto refused;

    uint64_t h = key_hash(cfa, v[0], tag);
    struct set *s = &c->sets[set_of(h)];
    int w = 0;
    for (int i = 1; i < WAYS; i++) /* the least recently used way */
        if (s->used[i] < s->used[w])
            w = i;
    struct entry *e = &c->e[set_of(h) * WAYS + (uint32_t)w];
    e->cfa = cfa;
    e->ra = v[0];
    e->tag = tag;
    e->id = id;
    e->extent = (uint32_t)(at - cfa);
    e->n = nc;
    e->gen = g;
    for (uint32_t i = 0; i < nc; i++) {
        e->off[i] = off[i];
        e->val[i] = val[i];
    }
    s->key[w] = key_of(h);
    s->used[w] = ++c->clock;
    atomic_fetch_add_explicit(&n_added, 1, memory_order_relaxed);
    return LW_SCACHE_ADDED;
refused:
    atomic_fetch_add_explicit(&n_refused, 1, memory_order_relaxed);
    return LW_SCACHE_REFUSED;
}

void lw_scache_invalidate(void)
{
    if (!sizes)
        return;
    atomic_fetch_add(&clearing, 1);
    /* Writers inside now finish; later ones stay out. A learn takes tens
     * of microseconds; one that does not end (a thread stopped inside it,
     * a fork child's copy of another thread's count) turns the cache off
     * rather than hang the program's dlclose. */
    uint64_t start = lw_sys_monotonic_ns();
    while (atomic_load(&writing)) {
        if (lw_sys_monotonic_ns() - start > 200 * 1000 * 1000) {
            lw_scache_off();
            atomic_fetch_add_explicit(&gen, 1, memory_order_acq_rel);
            return; /* clearing stays set: nothing is learned again */
        }
        sched_yield();
    }
    /* Values first, then keys: a reader finds either no key (unknown) or
     * a key whose value is 0 (unknown). Slots never used are not written
     * (their pages stay untouched). */
    for (uint32_t i = 0; i < SIZE_SLOTS; i++) {
        if (!atomic_load_explicit(&sizes[i].ip, memory_order_relaxed))
            continue;
        atomic_store_explicit(&sizes[i].size, LW_SCACHE_UNKNOWN, memory_order_release);
        atomic_store_explicit(&sizes[i].ip, 0, memory_order_release);
    }
    atomic_fetch_add_explicit(&gen, 1, memory_order_acq_rel);
    atomic_fetch_sub(&clearing, 1);
}

void lw_scache_thread_exit(void)
{
    struct cache *c = mine;
    mine = DEAD;
    if ((uintptr_t)c > (uintptr_t)DEAD) {
        atomic_fetch_add_explicit(&n_hits, c->hits, memory_order_relaxed);
        atomic_fetch_add_explicit(&n_misses, c->misses, memory_order_relaxed);
        lw_sys_unmap(c, c->map_len);
    }
}

void lw_scache_stats(struct lw_scache_stats *out)
{
    struct cache *c = mine;
    bool live = (uintptr_t)c > (uintptr_t)DEAD;
    out->hits = atomic_load_explicit(&n_hits, memory_order_relaxed) + (live ? c->hits : 0);
    out->misses = atomic_load_explicit(&n_misses, memory_order_relaxed) + (live ? c->misses : 0);
    out->added = atomic_load_explicit(&n_added, memory_order_relaxed);
    out->refused = atomic_load_explicit(&n_refused, memory_order_relaxed);
    out->sizes_known = atomic_load_explicit(&n_known, memory_order_relaxed);
    out->sizes_bad = atomic_load_explicit(&n_bad, memory_order_relaxed);
}
