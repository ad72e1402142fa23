/*
 * region.c - the mapped-region ledger (see region.h): a sorted array of
 * disjoint sub-ranges. Every operation runs under `lock`; none allocates
 * through the host (the array grows with lw_sys_map) or calls back into
 * the program. If the array cannot grow, the change is dropped and counted.
 */
#include "region.h"

#include <string.h>

#include "log.h"
#include "lw.h"
#include "stack.h"
#include "sys.h"

static lw_mutex_t lock = LW_MUTEX_INIT;
static struct lw_region *iv;
static size_t n_iv, cap_iv;
static size_t iv_map_len;
static uint32_t next_region_id;
static struct lw_region_kind_stats kstats[4];
static uint64_t dropped;
static struct lw_region *scratch; /* mremap: the old sub-ranges */
static size_t scratch_cap, scratch_map_len;

void lw_region_lock(void)
{
    lw_mutex_lock(&lock);
}

void lw_region_unlock(void)
{
    lw_mutex_unlock(&lock);
}

static LW_COLD void drop(void)
{
    dropped++;
    lw_log_warn(LW_WARN_REGIONS, "region ledger cannot grow (out of memory); some mapping "
                                 "changes are not recorded (counted as dropped)");
}

/* Make room for `need` entries in an array of lw_region mapped with
 * lw_sys_map, keeping the first `used`. false: no memory (nothing changes). */
static bool grow_array(struct lw_region **arr, size_t *cap, size_t *map_len, size_t used,
                       size_t need)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    size_t len = (n * sizeof **arr + LW_PAGE - 1) & ~(size_t)(LW_PAGE - 1);
    struct lw_region *fresh = lw_sys_map(len, false);
    if (!fresh)
        return false;
    if (used)
        memcpy(fresh, *arr, used * sizeof **arr);
    lw_sys_unmap(*arr, *map_len);
    *arr = fresh;
    *cap = len / sizeof **arr;
    *map_len = len;
    return true;
}

static bool reserve(size_t extra)
{
    return grow_array(&iv, &cap_iv, &iv_map_len, n_iv, n_iv + extra);
}

/* First index whose sub-range ends after a (ranges are disjoint and sorted,
 * so ends are sorted too). */
static size_t lower(uint64_t a)
{
    size_t lo = 0, hi = n_iv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (iv[mid].end <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Make x a boundary if it falls inside a sub-range. */
static bool split_at(uint64_t x)
{
    size_t i = lower(x);
    if (i >= n_iv || iv[i].start >= x)
        return true;
    if (!reserve(1))
        return false;
    memmove(&iv[i + 1], &iv[i], (n_iv - i) * sizeof *iv);
    n_iv++;
    iv[i].end = x;
    iv[i + 1].start = x;
    return true;
}

static bool same_piece_kind(const struct lw_region *a, const struct lw_region *b)
{
    return a->region_id == b->region_id && a->state == b->state && a->stack == b->stack &&
           a->kind == b->kind && a->flags == b->flags && a->prot == b->prot &&
           a->rstart == b->rstart && a->rend == b->rend;
}

/* Join neighbours in [from, to] that are contiguous and alike. */
static void merge_around(size_t from, size_t to)
{
    if (from > 0)
        from--;
    if (to >= n_iv)
        to = n_iv ? n_iv - 1 : 0;
    size_t i = from;
    while (i + 1 < n_iv && i < to + 1) {
        if (iv[i].end == iv[i + 1].start && same_piece_kind(&iv[i], &iv[i + 1])) {
            iv[i].end = iv[i + 1].end;
            memmove(&iv[i + 1], &iv[i + 2], (n_iv - i - 2) * sizeof *iv);
            n_iv--;
            if (to > 0)
                to--;
        } else {
            i++;
        }
    }
}

/* Does region r keep a piece outside [a, b)? Its pieces lie in [rstart, rend). */
static bool alive_outside(const struct lw_region *r, uint64_t a, uint64_t b)
{
    for (size_t k = lower(r->rstart); k < n_iv && iv[k].start < r->rend; k++)
        if (iv[k].region_id == r->region_id && (iv[k].end <= a || iv[k].start >= b))
            return true;
    return false;
}

/* Remove [a, b), accounting the bytes (and mappings that die) as freed. */
static void remove_range(uint64_t a, uint64_t b)
{
    if (a >= b || !n_iv)
        return;
    if (!split_at(a) || !split_at(b)) {
        drop();
        return;
    }
    size_t i = lower(a), j = i;
    while (j < n_iv && iv[j].start < b)
        j++;
    if (i == j)
        return;
    bool counted[4] = {false, false, false, false};
    for (size_t k = i; k < j; k++) {
        const struct lw_region *x = &iv[k];
        lw_stack_account_free(x->stack, x->end - x->start, 0);
        if (!counted[x->kind & 3]) {
            kstats[x->kind & 3].unmap_calls++;
            counted[x->kind & 3] = true;
        }
        bool later = false;
        for (size_t m = k + 1; m < j && iv[m].start < x->rend; m++)
            if (iv[m].region_id == x->region_id)
                later = true;
        if (!later && !alive_outside(x, a, b)) {
            lw_stack_account_free(x->stack, 0, 1);
            kstats[x->kind & 3].regions_live--;
        }
    }
    memmove(&iv[i], &iv[j], (n_iv - j) * sizeof *iv);
    n_iv -= j - i;
}

static bool insert_piece(const struct lw_region *r)
{
    if (!reserve(1))
        return false;
    size_t i = lower(r->start);
    memmove(&iv[i + 1], &iv[i], (n_iv - i) * sizeof *iv);
    iv[i] = *r;
    n_iv++;
    return true;
}

static void new_mapping(uintptr_t addr, uint64_t len, uint32_t stack, uint8_t kind, uint32_t prot,
                        uint16_t flags)
{
    struct lw_region r = {
        .start = addr, .end = addr + len, .rstart = addr, .rend = addr + len, .stack = stack,
        .region_id = ++next_region_id, .kind = kind, .state = LW_STATE_MAPPED, .flags = flags,
        .prot = prot,
    };
    if (!insert_piece(&r)) {
        drop();
        return;
    }
    lw_stack_account_alloc(stack, len);
    kstats[kind & 3].regions_live++;
    kstats[kind & 3].map_calls++;
}

void lw_region_map(uintptr_t addr, uint64_t len, uint32_t stack, uint8_t kind, uint32_t prot,
                   uint16_t flags)
{
    if (!len)
        return;
    lw_mutex_lock(&lock);
    remove_range(addr, addr + len);
    if (stack)
        new_mapping(addr, len, stack, kind, prot, flags);
    else
        dropped++; /* no stack id: the stack table is full */
    lw_mutex_unlock(&lock);
}

void lw_region_unmap(uintptr_t addr, uint64_t len)
{
    lw_mutex_lock(&lock);
    remove_range(addr, addr + len);
    lw_mutex_unlock(&lock);
}

void lw_region_unmap_locked(uintptr_t addr, uint64_t len)
{
    remove_range(addr, addr + len);
}

static void set_state(uint64_t a, uint64_t b, uint8_t state)
{
    if (a >= b || !n_iv)
        return;
    size_t i = lower(a);
    if (i >= n_iv || iv[i].start >= b)
        return; /* nothing tracked there */
    if (!split_at(a) || !split_at(b)) {
        drop();
        return;
    }
    i = lower(a);
    size_t j = i;
    for (; j < n_iv && iv[j].start < b; j++)
        iv[j].state = state;
    merge_around(i, j);
}

void lw_region_advise(uintptr_t addr, uint64_t len, uint8_t state)
{
    lw_mutex_lock(&lock);
    set_state(addr, addr + len, state);
    lw_mutex_unlock(&lock);
}

void lw_region_remap_locked(uintptr_t old, uint64_t oldlen, uintptr_t new_addr, uint64_t newlen,
                            uint32_t stack, uint8_t kind, bool keep_old)
{
    /* Remember the old pieces' states before they go. */
    size_t ns = 0;
    for (size_t k = lower(old); k < n_iv && iv[k].start < old + oldlen; k++) {
        if (!grow_array(&scratch, &scratch_cap, &scratch_map_len, ns, ns + 1))
            break; /* the rest keeps state "mapped" */
        scratch[ns++] = iv[k];
    }
    if (!keep_old)
        remove_range(old, old + oldlen);
    remove_range(new_addr, new_addr + newlen);
    if (!stack)
        return;
    new_mapping(new_addr, newlen, stack, kind, ns ? scratch[0].prot : 0, ns ? scratch[0].flags : LW_REGION_ANON);
    for (size_t k = 0; k < ns; k++) {
        if (scratch[k].state == LW_STATE_MAPPED)
            continue;
        uint64_t s = scratch[k].start < old ? old : scratch[k].start;
        uint64_t e = scratch[k].end > old + oldlen ? old + oldlen : scratch[k].end;
        uint64_t ns_ = new_addr + (s - old), ne = new_addr + (e - old);
        if (ne > new_addr + newlen)
            ne = new_addr + newlen;
        set_state(ns_, ne, scratch[k].state);
    }
}

void lw_region_foreach_locked(void (*fn)(const struct lw_region *r, void *arg), void *arg)
{
    for (size_t k = 0; k < n_iv; k++)
        fn(&iv[k], arg);
}

void lw_region_stats_locked(uint8_t kind, struct lw_region_kind_stats *st)
{
    *st = kstats[kind & 3];
}

uint64_t lw_region_dropped(void)
{
    return dropped;
}

uint64_t lw_region_count_locked(void)
{
    return n_iv;
}

uint64_t lw_region_memory_locked(void)
{
    return iv_map_len + scratch_map_len;
}

void lw_region_fork_prepare(void)
{
    lw_mutex_lock(&lock);
}

void lw_region_fork_parent(void)
{
    lw_mutex_unlock(&lock);
}

void lw_region_fork_child(void)
{
    lw_mutex_reset(&lock);
}
