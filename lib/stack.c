/*
 * stack.c - stack capture and the stack table (see stack.h). Must never
 * allocate through the host or take a lock: the table is three append-only
 * arrays (counters, descriptions, frames) reserved once as address space,
 * plus a hash index that grows by copying.
 *
 * Memory ordering.
 * - Ids come from fetch_add on next_id; frames from fetch_add on
 *   frames_used. The inserting thread alone writes its id's description and
 *   frames, then publishes with a release store of `kind` (0 = not ready)
 *   and a CAS of the index slot (release). A reader that loads the slot
 *   (acquire) sees a complete description; the writer thread checks
 *   `kind` (acquire) before it reads one.
 * - The index grows by copying into an array twice as large, then a release
 *   store of the index pointer. Old arrays stay mapped (readers may be in
 *   them) and keep their entries. An insert that lands in the old array
 *   while the copy runs may be missing from the new one; a later lookup
 *   then adds the same stack again under a second id. Counters stay exact
 *   per id, and the reporter merges stacks with equal kind and frames.
 */
#include "stack.h"

#include <libunwind.h>
#include <string.h>

#include "../include/lw_format.h"
#include "log.h"
#include "lw.h"
#include "sys.h"

#define FRAME_POOL_MAX (UINT64_C(1) << 26) /* frames: 512 MiB of address space */
#define INDEX_INITIAL 4096u
#define OWN_MARGIN 16

struct desc {
    uint64_t frames_off;
    uint16_t nframes;
    _Atomic uint8_t kind; /* 0 until published */
    uint8_t flags;
    uint32_t pad;
};

struct index {
    uint64_t cap;
    uint64_t map_len;
    struct index *older; /* kept mapped forever */
    _Atomic uint64_t slot[]; /* hash high bits << 24 | id; 0 empty */
};

static struct lw_stack_counters *counters; /* [max_ids + 1] */
static struct desc *descs;                 /* [max_ids + 1] */
static uintptr_t *frame_pool;              /* [pool_max] */
static uint32_t max_ids;
static uint64_t pool_max;
static _Atomic uint32_t next_id;           /* last id handed out */
static _Atomic uint64_t frames_used;
static _Atomic(struct index *) cur_index;
static _Atomic uint64_t index_used;
static _Atomic int index_growing;
static _Atomic uint64_t dropped, unwind_failures;
static uintptr_t own_lo, own_hi;

static struct index *index_new(uint64_t cap)
{
    size_t len = sizeof(struct index) + cap * sizeof(uint64_t);
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
    return true;
}

void lw_stack_set_own_range(uintptr_t lo, uintptr_t hi)
{
    own_lo = lo;
    own_hi = hi;
}

LW_NOINLINE int lw_stack_capture(uintptr_t *out, int max, int skip, bool *truncated)
{
    void *buf[LW_MAX_DEPTH + OWN_MARGIN + 8];
    skip += 1; /* buf[0] is the return into this function */
    int want = max + skip + OWN_MARGIN;
    if (want > (int)(sizeof buf / sizeof buf[0]))
        want = (int)(sizeof buf / sizeof buf[0]);
    int n = unw_backtrace(buf, want);
    int i = skip;
    while (i < n && (uintptr_t)buf[i] >= own_lo && (uintptr_t)buf[i] < own_hi)
        i++;
    int k = 0;
    for (; i < n && k < max; i++)
        out[k++] = (uintptr_t)buf[i];
    *truncated = i < n || (n == want && k == max);
    if (LW_UNLIKELY(k == 0))
        atomic_fetch_add_explicit(&unwind_failures, 1, memory_order_relaxed);
    return k;
}

static inline uint64_t hash_frames(uint8_t kind, const uintptr_t *f, int n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ ((uint64_t)kind << 8 | (uint64_t)n);
    for (int i = 0; i < n; i++) {
        h ^= f[i];
        h *= UINT64_C(0x100000001b3);
        h ^= h >> 29;
    }
    h *= UINT64_C(0x9E3779B97F4A7C15);
    return h ^ (h >> 32);
}

static inline bool same_stack(uint32_t id, uint8_t kind, const uintptr_t *f, int n)
{
    const struct desc *d = &descs[id];
    return atomic_load_explicit(&d->kind, memory_order_acquire) == kind && d->nframes == n &&
           memcmp(&frame_pool[d->frames_off], f, (size_t)n * sizeof *f) == 0;
}

/* Copy every entry of `from` into a new index twice as large. */
static LW_COLD void index_grow(struct index *from)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&index_growing, &expect, 1))
        return;
    if (atomic_load_explicit(&cur_index, memory_order_acquire) != from)
        goto out;
    struct index *to = index_new(from->cap * 2);
    if (!to)
        goto out;
    to->older = from;
    uint64_t mask = to->cap - 1, moved = 0;
    for (int pass = 0; pass < 2; pass++) {
        /* The second pass, after publishing, picks up entries added to the
         * old array while the first pass ran. */
        for (uint64_t i = 0; i < from->cap; i++) {
            uint64_t s = atomic_load_explicit(&from->slot[i], memory_order_acquire);
            if (!s)
                continue;
            uint64_t j = (s >> 24) & mask;
            for (;;) {
                uint64_t t = atomic_load_explicit(&to->slot[j], memory_order_acquire);
                if (t == s)
                    break;
                if (!t) {
                    uint64_t zero = 0;
                    if (atomic_compare_exchange_strong_explicit(&to->slot[j], &zero, s,
                                                                memory_order_release,
                                                                memory_order_acquire)) {
                        moved++;
                        break;
                    }
                    continue;
                }
                j = (j + 1) & mask;
            }
        }
        if (pass == 0) {
            atomic_store_explicit(&index_used, moved, memory_order_relaxed);
            atomic_store_explicit(&cur_index, to, memory_order_release);
        }
    }
out:
    atomic_store(&index_growing, 0);
}

uint32_t lw_stack_intern(uint8_t kind, const uintptr_t *frames, int n, bool truncated)
{
    uint64_t h = hash_frames(kind, frames, n);
    uint64_t tag = h & ~UINT64_C(0xffffff);
    struct index *ix = atomic_load_explicit(&cur_index, memory_order_acquire);
    uint64_t mask = ix->cap - 1;
    uint64_t i = (h >> 24) & mask;
    uint32_t mine = 0;

    for (uint64_t probes = 0; probes < ix->cap; probes++, i = (i + 1) & mask) {
        uint64_t s = atomic_load_explicit(&ix->slot[i], memory_order_acquire);
        if (s) {
            if ((s & ~UINT64_C(0xffffff)) == tag && same_stack((uint32_t)(s & 0xffffff), kind, frames, n))
                return (uint32_t)(s & 0xffffff);
            continue;
        }
        if (!mine) {
            /* Not present: build our record, then try to publish it here. */
            uint32_t id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
            uint64_t off = atomic_fetch_add_explicit(&frames_used, (uint64_t)n, memory_order_relaxed);
            if (id > max_ids || off + (uint64_t)n > pool_max) {
                atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
                lw_log_warn(LW_WARN_STACKS, "stack table full: further new call stacks are not "
                                            "recorded (counted as dropped)");
                return 0;
            }
            memcpy(&frame_pool[off], frames, (size_t)n * sizeof *frames);
            descs[id].frames_off = off;
            descs[id].nframes = (uint16_t)n;
            descs[id].flags = truncated ? LW_STACK_TRUNCATED : 0;
            atomic_store_explicit(&descs[id].kind, kind, memory_order_release);
            mine = id;
        }
        uint64_t expect = 0;
        if (atomic_compare_exchange_strong_explicit(&ix->slot[i], &expect, tag | mine,
                                                    memory_order_release, memory_order_acquire)) {
            uint64_t used = atomic_fetch_add_explicit(&index_used, 1, memory_order_relaxed) + 1;
            if (LW_UNLIKELY(used * 2 > ix->cap))
                index_grow(ix);
            return mine;
        }
        /* Someone filled the slot first: it may be this very stack. */
        if ((expect & ~UINT64_C(0xffffff)) == tag &&
            same_stack((uint32_t)(expect & 0xffffff), kind, frames, n)) {
            atomic_store_explicit(&descs[mine].kind, 0, memory_order_release); /* a hole */
            return (uint32_t)(expect & 0xffffff);
        }
    }
    /* Index full (growth failed): the record exists but cannot be found again. */
    return mine;
}

LW_NOINLINE uint32_t lw_stack_here(uint8_t kind, int max, int skip)
{
    uintptr_t frames[LW_MAX_DEPTH];
    bool truncated = false;
    int n = lw_stack_capture(frames, max, skip + 1, &truncated);
    return lw_stack_intern(kind, frames, n, truncated);
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

uint64_t lw_stack_memory_bytes(void)
{
    uint64_t ids = lw_stack_count();
    uint64_t bytes = (ids + 1) * (sizeof(struct lw_stack_counters) + sizeof(struct desc)) +
                     atomic_load(&frames_used) * sizeof(uintptr_t);
    for (struct index *ix = atomic_load(&cur_index); ix; ix = ix->older)
        bytes += ix->map_len;
    return bytes;
}
