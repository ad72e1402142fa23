/*
 * stackcache.c - the validated stack cache (see stackcache.h). Never
 * allocates through the host, never locks, never reads the stack outside
 * [cfa, hi) of the thread's own stack.
 *
 * Why a hit is the stack libunwind would give. An entry was made from
 * libunwind's frames v[0..n) for a capture whose CFA was cfa, and holds
 * for each frame after v[0] the address where its return address was
 * found: the previous frame's CFA - 8, the CFA being that frame's stack
 * pointer plus its size (the map below, learned by stepping libunwind
 * through the same frames), and every one of those addresses was read
 * and held the frame's value when the entry was made. A hit needs the
 * same cfa and return address and the same value at every one of those
 * addresses. Then, frame by frame: frame i runs at the same return
 * address, so it is the same function at the same call; its stack pointer
 * is the previous CFA, the same; its size at that call is fixed (a frame
 * whose size varies, alloca, has two sizes seen or misplaces a return
 * address and is marked BAD, never used), so its CFA and the address of
 * its caller's return address are the same, and that value was checked.
 * The stack libunwind would unwind is therefore the one cached, frame for
 * frame. The one gap: a frame that changes size (alloca) for which only
 * one size was ever seen, and the stack above it holding, at every shifted
 * address, exactly the return addresses of the cached stack. It needs the
 * whole rest of the stack to repeat at an offset; the usual outermost
 * frames (main, __libc_start_main) never do.
 *
 * The frame-size map is process-wide and insert-only: open addressing,
 * a key claimed with CAS (0 -> ip), then its size stored with release; a
 * reader that finds the key loads the size with acquire and treats 0 as
 * unknown. A size changes at most once more, to BAD (a store; BAD wins
 * over any later observation). The per-thread cache is only ever touched
 * by its thread: no ordering needed.
 */
#include "stackcache.h"

#include <stdatomic.h>
#include <stddef.h>

#include "lw.h"
#include "sys.h"

/* ---- frame sizes, process-wide ---- */
#define SIZE_SLOTS (1u << 16) /* 1 MiB; full: new frames are not cached */
#define SIZE_PROBES 32
#define SIZE_MAX_FRAME 65535u /* steps are 16-bit */

struct size_slot {
    _Atomic uint64_t ip;
    _Atomic uint32_t size;
    uint32_t pad;
};

static struct size_slot *sizes;
static _Atomic bool on;
static _Atomic uint64_t n_known, n_bad, n_misses, n_hits, n_added, n_refused;

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

void lw_scache_learned(uintptr_t ip, uint64_t size)
{
    if (!sizes || !ip)
        return;
    uint32_t s = size && !(size & 7) && size <= SIZE_MAX_FRAME ? (uint32_t)size : LW_SCACHE_BAD;
    uint32_t i = (uint32_t)(mix(ip) >> 48);
    for (int p = 0; p < SIZE_PROBES; p++, i = (i + 1) & (SIZE_SLOTS - 1)) {
        uint64_t k = atomic_load_explicit(&sizes[i].ip, memory_order_acquire);
        if (!k) {
            if (atomic_compare_exchange_strong_explicit(&sizes[i].ip, &k, ip, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                atomic_store_explicit(&sizes[i].size, s, memory_order_release);
                atomic_fetch_add_explicit(s == LW_SCACHE_BAD ? &n_bad : &n_known, 1,
                                          memory_order_relaxed);
                return;
            }
            /* k: the ip that took the slot first */
        }
        if (k == ip) {
            uint32_t old = atomic_load_explicit(&sizes[i].size, memory_order_acquire);
            if (old != s && old != LW_SCACHE_BAD) {
                /* Two sizes (or one racing its first store): never trust it. */
                atomic_store_explicit(&sizes[i].size, LW_SCACHE_BAD, memory_order_release);
                atomic_fetch_add_explicit(&n_bad, 1, memory_order_relaxed);
            }
            return;
        }
    }
}

/* ---- the per-thread cache ---- */
#define SETS 256
#define WAYS 4
#define HIT_BATCH 4096 /* hits and misses counted per thread, published in batches */

struct entry {
    uint64_t cfa; /* 0: empty */
    uint64_t ra;
    uint32_t tag;
    uint32_t id;
    uint32_t extent; /* every address read lies below cfa + extent */
    uint16_t n;      /* frames after ra */
    uint16_t pad;
    uint16_t step[LW_SCACHE_FRAMES]; /* frame sizes: step[i] moves to frame i + 1's CFA */
    uint64_t val[LW_SCACHE_FRAMES];  /* val[i]: the return address at that CFA - 8 */
};
_Static_assert(sizeof(struct entry) == 512, "an entry is 8 cache lines");

struct set {
    uint32_t key[WAYS]; /* 0: empty */
    uint32_t used[WAYS]; /* the thread's clock at the last hit or fill */
};

struct cache {
    uint32_t clock;
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

/* Reads return-address slots of the thread's own live stack, which no
 * sanitizer's instrumentation knows as an object. */
__attribute__((no_sanitize("address", "thread"))) static inline bool
still_there(const struct entry *e, uintptr_t cfa)
{
    uintptr_t c = cfa;
    for (uint32_t i = 0; i < e->n; i++) {
        c += e->step[i];
        if (*(const uintptr_t *)(c - 8) != e->val[i])
            return false;
    }
    return true;
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
            still_there(e, cfa)) {
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
lw_scache_add(uintptr_t cfa, uint32_t tag, const uintptr_t *v, int n, uint32_t id, uintptr_t hi)
{
    struct cache *c = mine;
    if (c == DEAD || !lw_scache_on() || id == 0 || n < 1 || n - 1 > LW_SCACHE_FRAMES ||
        cfa < 8 || hi <= cfa)
        goto refused;
    /* The first address is fixed by the capture itself; if it does not
     * hold v[0], the compiler's CFA is not what this file assumes: off. */
    if (*(const uintptr_t *)(cfa - 8) != v[0]) {
        lw_scache_off();
        goto refused;
    }
    uint16_t step[LW_SCACHE_FRAMES];
    uintptr_t at = cfa;
    for (int i = 1; i < n; i++) {
        uint32_t sz = lw_scache_frame_size(v[i - 1]);
        if (sz == LW_SCACHE_UNKNOWN)
            return LW_SCACHE_NEED_SIZES;
        if (sz == LW_SCACHE_BAD || hi - at <= sz)
            goto refused;
        at += sz;
        if (*(const uintptr_t *)(at - 8) != v[i]) {
            lw_scache_learned(v[i - 1], LW_SCACHE_BAD); /* its size misplaced the next frame */
            goto refused;
        }
        step[i - 1] = (uint16_t)sz;
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
    e->n = (uint16_t)(n - 1);
    for (int i = 0; i < n - 1; i++) {
        e->step[i] = step[i];
        e->val[i] = v[i + 1];
    }
    s->key[w] = key_of(h);
    s->used[w] = ++c->clock;
    atomic_fetch_add_explicit(&n_added, 1, memory_order_relaxed);
    return LW_SCACHE_ADDED;
refused:
    atomic_fetch_add_explicit(&n_refused, 1, memory_order_relaxed);
    return LW_SCACHE_REFUSED;
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
