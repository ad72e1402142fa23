/* The region ledger's state machine: partial MADV_FREE/DONTNEED, munmap of
 * a middle part, mremap grow/shrink/move, MAP_FIXED replacement, with the
 * stack counters exact at every step. Addresses are synthetic. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../include/lw_format.h"
#include "region.h"
#include "stack.h"

#define P 4096u
#define BASE ((uintptr_t)0x7f0000000000)

static uint32_t s1, s2;

static void init(void)
{
    cr_assert(lw_stack_init());
    uintptr_t a[1] = {111}, b[1] = {222};
    s1 = lw_stack_intern(LW_KIND_MMAP, a, 1, false);
    s2 = lw_stack_intern(LW_KIND_MMAP, b, 1, false);
}

TestSuite(region, .init = init);

struct pieces {
    int n;
    struct lw_region r[64];
};
static void collect(const struct lw_region *r, void *arg)
{
    struct pieces *p = arg;
    if (p->n < 64)
        p->r[p->n++] = *r;
}
static struct pieces snap(void)
{
    struct pieces p;
    memset(&p, 0, sizeof p);
    lw_region_lock();
    lw_region_foreach_locked(collect, &p);
    lw_region_unlock();
    return p;
}
static void expect_piece(const struct pieces *p, int i, uint64_t start_page, uint64_t pages, int state)
{
    cr_assert_lt(i, p->n, "piece %d missing (have %d)", i, p->n);
    cr_assert_eq(p->r[i].start, BASE + start_page * P, "piece %d start", i);
    cr_assert_eq(p->r[i].end - p->r[i].start, pages * P, "piece %d size", i);
    cr_assert_eq(p->r[i].state, state, "piece %d state", i);
}
static uint64_t inuse(uint32_t id)
{
    struct lw_stack_totals c;
    lw_stack_read(id, &c);
    return c.alloc_bytes - c.free_bytes;
}
static uint64_t live_objects(uint32_t id)
{
    struct lw_stack_totals c;
    lw_stack_read(id, &c);
    return c.alloc_objects - c.free_objects;
}
static uint64_t regions_live(void)
{
    struct lw_region_kind_stats st;
    lw_region_lock();
    lw_region_stats_locked(LW_KIND_MMAP, &st);
    lw_region_unlock();
    return st.regions_live;
}

Test(region, partial_advice_splits_and_merges)
{
    lw_region_map(BASE, 10 * P, s1, LW_KIND_MMAP, 3, LW_REGION_ANON);
    struct pieces p = snap();
    cr_assert_eq(p.n, 1);
    expect_piece(&p, 0, 0, 10, LW_STATE_MAPPED);
    cr_assert_eq(inuse(s1), 10 * P);

    lw_region_advise(BASE + 2 * P, 3 * P, LW_STATE_MADV_FREE);
    p = snap();
    cr_assert_eq(p.n, 3);
    expect_piece(&p, 0, 0, 2, LW_STATE_MAPPED);
    expect_piece(&p, 1, 2, 3, LW_STATE_MADV_FREE);
    expect_piece(&p, 2, 5, 5, LW_STATE_MAPPED);

    lw_region_advise(BASE + 3 * P, P, LW_STATE_MADV_DONTNEED);
    p = snap();
    cr_assert_eq(p.n, 5);
    expect_piece(&p, 1, 2, 1, LW_STATE_MADV_FREE);
    expect_piece(&p, 2, 3, 1, LW_STATE_MADV_DONTNEED);
    expect_piece(&p, 3, 4, 1, LW_STATE_MADV_FREE);

    lw_region_advise(BASE, 10 * P, LW_STATE_MADV_FREE);
    p = snap();
    cr_assert_eq(p.n, 1, "one state again: one piece");
    expect_piece(&p, 0, 0, 10, LW_STATE_MADV_FREE);
    cr_assert_eq(inuse(s1), 10 * P, "advice does not unmap");
    cr_assert_eq(live_objects(s1), 1);
}

Test(region, advice_outside_tracked_ranges_changes_nothing)
{
    lw_region_map(BASE, 2 * P, s1, LW_KIND_MMAP, 3, 0);
    lw_region_advise(BASE + 4 * P, 4 * P, LW_STATE_MADV_FREE);
    lw_region_advise(BASE + P, 4 * P, LW_STATE_MADV_DONTNEED); /* half inside */
    struct pieces p = snap();
    cr_assert_eq(p.n, 2);
    expect_piece(&p, 0, 0, 1, LW_STATE_MAPPED);
    expect_piece(&p, 1, 1, 1, LW_STATE_MADV_DONTNEED);
}

Test(region, unmapping_the_middle_then_the_rest)
{
    lw_region_map(BASE, 8 * P, s1, LW_KIND_MMAP, 3, 0);
    lw_region_unmap(BASE + 3 * P, 2 * P);
    struct pieces p = snap();
    cr_assert_eq(p.n, 2);
    expect_piece(&p, 0, 0, 3, LW_STATE_MAPPED);
    expect_piece(&p, 1, 5, 3, LW_STATE_MAPPED);
    cr_assert_eq(inuse(s1), 6 * P);
    cr_assert_eq(live_objects(s1), 1, "a mapping lives while any byte does");
    cr_assert_eq(regions_live(), 1);

    /* Something else maps into the hole; then the first mapping goes. */
    lw_region_map(BASE + 3 * P, 2 * P, s2, LW_KIND_MMAP, 3, 0);
    lw_region_unmap(BASE, 3 * P);
    cr_assert_eq(live_objects(s1), 1);
    lw_region_unmap(BASE + 5 * P, 3 * P);
    cr_assert_eq(live_objects(s1), 0);
    cr_assert_eq(inuse(s1), 0);
    cr_assert_eq(inuse(s2), 2 * P);
    cr_assert_eq(regions_live(), 1);
    p = snap();
    cr_assert_eq(p.n, 1);
    expect_piece(&p, 0, 3, 2, LW_STATE_MAPPED);
}

Test(region, unmap_spanning_several_mappings)
{
    lw_region_map(BASE, 2 * P, s1, LW_KIND_MMAP, 3, 0);
    lw_region_map(BASE + 2 * P, 2 * P, s1, LW_KIND_MMAP, 3, 0);
    lw_region_map(BASE + 4 * P, 2 * P, s2, LW_KIND_MMAP, 3, 0);
    lw_region_advise(BASE + P, 2 * P, LW_STATE_MADV_FREE);
    cr_assert_eq(regions_live(), 3);
    lw_region_unmap(BASE + P, 4 * P);
    cr_assert_eq(live_objects(s1), 1);
    cr_assert_eq(inuse(s1), P);
    cr_assert_eq(live_objects(s2), 1);
    cr_assert_eq(inuse(s2), P);
    cr_assert_eq(regions_live(), 2);
    lw_region_unmap(BASE, 8 * P);
    cr_assert_eq(regions_live(), 0);
    cr_assert_eq(live_objects(s1) + live_objects(s2), 0);
}

Test(region, map_fixed_replaces_what_was_there)
{
    lw_region_map(BASE, 4 * P, s1, LW_KIND_MMAP, 3, 0);
    lw_region_map(BASE + P, 2 * P, s2, LW_KIND_MMAP, 3, 0);
    cr_assert_eq(inuse(s1), 2 * P);
    cr_assert_eq(inuse(s2), 2 * P);
    struct pieces p = snap();
    cr_assert_eq(p.n, 3);
    cr_assert_eq(p.r[1].stack, s2);
}

Test(region, mremap_grow_in_place_keeps_states)
{
    lw_region_map(BASE, 4 * P, s1, LW_KIND_MMAP, 3, LW_REGION_ANON);
    lw_region_advise(BASE + P, P, LW_STATE_MADV_FREE);
    lw_region_lock();
    lw_region_remap_locked(BASE, 4 * P, BASE, 8 * P, s2, LW_KIND_MMAP, false);
    lw_region_unlock();
    struct pieces p = snap();
    cr_assert_eq(p.n, 3);
    expect_piece(&p, 0, 0, 1, LW_STATE_MAPPED);
    expect_piece(&p, 1, 1, 1, LW_STATE_MADV_FREE);
    expect_piece(&p, 2, 2, 6, LW_STATE_MAPPED);
    cr_assert_eq(p.r[0].stack, s2, "the mapping now belongs to the mremap caller");
    cr_assert_eq(inuse(s1), 0);
    cr_assert_eq(live_objects(s1), 0);
    cr_assert_eq(inuse(s2), 8 * P);
    cr_assert_eq(live_objects(s2), 1);
    cr_assert_eq(regions_live(), 1);
}

Test(region, mremap_move_and_shrink)
{
    lw_region_map(BASE, 6 * P, s1, LW_KIND_MMAP, 3, 0);
    lw_region_advise(BASE + 4 * P, 2 * P, LW_STATE_MADV_DONTNEED);
    lw_region_lock();
    lw_region_remap_locked(BASE, 6 * P, BASE + 100 * P, 5 * P, s1, LW_KIND_MMAP, false);
    lw_region_unlock();
    struct pieces p = snap();
    cr_assert_eq(p.n, 2);
    expect_piece(&p, 0, 100, 4, LW_STATE_MAPPED);
    expect_piece(&p, 1, 104, 1, LW_STATE_MADV_DONTNEED);
    cr_assert_eq(inuse(s1), 5 * P);
    cr_assert_eq(live_objects(s1), 1);
}

Test(region, mremap_dontunmap_keeps_the_old_range)
{
    lw_region_map(BASE, 2 * P, s1, LW_KIND_MMAP, 3, 0);
    lw_region_lock();
    lw_region_remap_locked(BASE, 2 * P, BASE + 10 * P, 2 * P, s2, LW_KIND_MMAP, true);
    lw_region_unlock();
    cr_assert_eq(inuse(s1), 2 * P);
    cr_assert_eq(inuse(s2), 2 * P);
    cr_assert_eq(regions_live(), 2);
}

Test(region, allocator_kind_is_counted_apart)
{
    uintptr_t f[1] = {333};
    uint32_t sa = lw_stack_intern(LW_KIND_ALLOCATOR, f, 1, false);
    lw_region_map(BASE, 4 * P, sa, LW_KIND_ALLOCATOR, 3, 0);
    lw_region_map(BASE + 8 * P, 4 * P, s1, LW_KIND_MMAP, 3, 0);
    struct lw_region_kind_stats a, m;
    lw_region_lock();
    lw_region_stats_locked(LW_KIND_ALLOCATOR, &a);
    lw_region_stats_locked(LW_KIND_MMAP, &m);
    lw_region_unlock();
    cr_assert_eq(a.regions_live, 1);
    cr_assert_eq(m.regions_live, 1);
    cr_assert_eq(a.map_calls, 1);
}

Test(region, many_pieces_grow_the_array)
{
    lw_region_map(BASE, 4000 * P, s1, LW_KIND_MMAP, 3, 0);
    for (int i = 0; i < 4000; i += 2)
        lw_region_advise(BASE + (uint64_t)i * P, P, LW_STATE_MADV_FREE);
    struct pieces p = snap();
    cr_assert_eq(p.n, 64, "collector capped: there are more");
    lw_region_lock();
    uint64_t n = lw_region_count_locked();
    lw_region_unlock();
    cr_assert_eq(n, 4000);
    cr_assert_eq(lw_region_dropped(), 0);
    lw_region_unmap(BASE, 4000 * P);
    cr_assert_eq(live_objects(s1), 0);
}
