/* Recording: exact per-stack accounting through lw_track_*, realloc's
 * take/put-back, stale reuse, and threads freeing each other's blocks. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "../../include/lw_format.h"
#include "lw.h"
#include "stack.h"
#include "state.h"
#include "table.h"
#include "track.h"

static void init(void)
{
    char *env[] = {NULL};
    cr_assert(lw_core_init(env));
}

TestSuite(track, .init = init);

struct sums {
    uint64_t inuse_bytes, inuse_objects, alloc_objects, free_objects;
};
static struct sums heap_sums(void)
{
    struct sums s = {0, 0, 0, 0};
    for (uint32_t id = 1; id <= lw_stack_count(); id++) {
        struct lw_stack_info si;
        if (!lw_stack_info(id, &si) || si.kind != LW_KIND_HEAP)
            continue;
        struct lw_stack_totals c;
        lw_stack_read(id, &c);
        s.inuse_bytes += c.alloc_bytes - c.free_bytes;
        s.alloc_objects += c.alloc_objects;
        s.free_objects += c.free_objects;
    }
    s.inuse_objects = s.alloc_objects - s.free_objects;
    return s;
}

/* How far into alloc_from_a its call can be; sanitizers make code larger. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ALLOC_FN_SPAN 1024
#else
#define ALLOC_FN_SPAN 128
#endif

static __attribute__((noinline)) uint32_t alloc_from_a(uintptr_t p, size_t n)
{
    lw_track_alloc((void *)p, n, 1);
    struct lw_block b;
    cr_assert(lw_table_lookup(p, &b));
    __asm__ volatile("" ::: "memory");
    return b.stack;
}

static __attribute__((noinline)) uint32_t alloc_from_b(uintptr_t p, size_t n)
{
    lw_track_alloc((void *)p, n, 1);
    struct lw_block b;
    cr_assert(lw_table_lookup(p, &b));
    __asm__ volatile("" ::: "memory");
    return b.stack;
}

Test(track, same_site_same_stack_and_exact_counts)
{
    uint32_t a[2];
    for (volatile int i = 0; i < 2; i++) /* one call site (volatile: not unrolled) */
        a[i] = alloc_from_a(0x1000 + (uintptr_t)i * 0x1000, (size_t)(i + 1) * 10);
    uint32_t a1 = a[0], a2 = a[1];
    uint32_t b1 = alloc_from_b(0x3000, 30);
    cr_assert_eq(a1, a2);
    cr_assert_neq(a1, b1);
    struct lw_stack_info si;
    cr_assert(lw_stack_info(a1, &si));
    cr_assert(si.frames[0] > (uintptr_t)alloc_from_a &&
                  si.frames[0] < (uintptr_t)alloc_from_a + ALLOC_FN_SPAN,
              "frame 0 is the function that allocated");
    lw_track_free((void *)0x1000);
    lw_track_free((void *)0x9999); /* never tracked: ignored */
    struct sums s = heap_sums();
    cr_assert_eq(s.inuse_bytes, 50);
    cr_assert_eq(s.inuse_objects, 2);
    cr_assert_eq(s.free_objects, 1);
}

Test(track, realloc_take_and_put_back)
{
    alloc_from_a(0x1000, 100);
    struct lw_block b;
    cr_assert(lw_track_take((void *)0x1000, &b));
    cr_assert_eq(heap_sums().inuse_bytes, 100, "nothing counted until the real realloc answers");
    lw_track_put_back((void *)0x1000, &b); /* it failed */
    cr_assert_eq(heap_sums().inuse_bytes, 100);
    cr_assert(lw_track_take((void *)0x1000, &b));
    lw_track_count_free((void *)0x1000, &b); /* it succeeded: moved */
    alloc_from_b(0x5000, 300);
    struct sums s = heap_sums();
    cr_assert_eq(s.inuse_bytes, 300);
    cr_assert_eq(s.inuse_objects, 1);
}

Test(track, address_reused_without_a_free_is_counted_once)
{
    alloc_from_a(0x1000, 100);
    alloc_from_b(0x1000, 7); /* the allocator reused it: its free went unseen */
    struct sums s = heap_sums();
    cr_assert_eq(s.inuse_bytes, 7);
    cr_assert_eq(s.inuse_objects, 1);
    cr_assert_eq(atomic_load(&lw_counters.stale_blocks), 1);
}

#define NT 2
#define PER 100000
static _Atomic uintptr_t box[NT][PER];
static _Atomic int box_n[NT];

static void *hammer(void *arg)
{
    int t = (int)(intptr_t)arg, seen = 0;
    for (int i = 0; i < PER; i++) {
        uintptr_t p = 0x10000000 + ((uintptr_t)t * PER + (uintptr_t)i) * 32;
        lw_track_alloc((void *)p, (size_t)(i % 64) + 1, 1);
        if (i % 4 != 0) { /* three in four go to the other thread */
            int k = atomic_load(&box_n[1 - t]);
            atomic_store(&box[1 - t][k], p);
            atomic_store(&box_n[1 - t], k + 1);
        }
        while (seen < atomic_load(&box_n[t]))
            lw_track_free((void *)atomic_load(&box[t][seen++]));
    }
    return NULL;
}

Test(track, cross_thread_frees_reconcile_to_the_byte)
{
    pthread_t th[NT];
    for (int t = 0; t < NT; t++)
        pthread_create(&th[t], NULL, hammer, (void *)(intptr_t)t);
    for (int t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++) /* frees handed over after the receiver stopped */
        for (int i = 0; i < atomic_load(&box_n[t]); i++)
            lw_track_free((void *)atomic_load(&box[t][i]));
    uint64_t kept_bytes = 0, kept = 0;
    for (int i = 0; i < PER; i += 4) {
        kept_bytes += (uint64_t)(i % 64) + 1;
        kept++;
    }
    struct sums s = heap_sums();
    cr_assert_eq(s.inuse_objects, NT * kept);
    cr_assert_eq(s.inuse_bytes, NT * kept_bytes);
    cr_assert_eq(s.alloc_objects, (uint64_t)NT * PER);
    struct lw_table_stats st;
    lw_table_stats(&st);
    cr_assert_eq(st.live, NT * kept, "table and counters agree");
}
