/* The stack cache: the frame-size map (learned, BAD on a second size or a
 * misplaced frame), entries checked against a stack built in an array
 * (every return address re-read, nothing read at or above hi, the least
 * recently used way replaced, nothing after thread exit), and real
 * captures through lw_stack_here: the same ids with and without it. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "../../include/lw_format.h"
#include "lw.h"
#include "stack.h"
#include "stackcache.h"

/* A fake stack: the capture's CFA at mem[16], so its return address v[0]
 * at mem[15]; frame sizes 32 and 48 put v[1] at mem[19], v[2] at mem[25]. */
static uintptr_t mem[512];
#define CFA ((uintptr_t)&mem[16])
#define HI ((uintptr_t)&mem[512])
static const uintptr_t v[3] = {0x401000, 0x402000, 0x403000};
#define TAG lw_scache_tag(LW_KIND_HEAP, 64, 0)

static void init(void)
{
    cr_assert(lw_scache_init());
    memset(mem, 0, sizeof mem);
    mem[15] = v[0];
    mem[19] = v[1];
    mem[25] = v[2];
}

TestSuite(stackcache, .init = init);

static void learn_both(void)
{
    lw_scache_learned(v[0], 32, 0, 0);
    lw_scache_learned(v[1], 48, 0, 0);
}

Test(stackcache, sizes_are_learned_once_then_used)
{
    cr_assert_eq(lw_scache_frame_size(v[0]), LW_SCACHE_UNKNOWN);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 7, HI), LW_SCACHE_NEED_SIZES);
    learn_both();
    cr_assert_eq(lw_scache_frame_size(v[0]), 32);
    cr_assert_eq(lw_scache_frame_size(v[1]), 48);
    lw_scache_learned(v[0], 32, 0, 0); /* the same size again: still good */
    cr_assert_eq(lw_scache_frame_size(v[0]), 32);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 7, HI), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 7);
    /* another capture site, kind or depth, or another stack pointer: not it */
    cr_assert_eq(lw_scache_find(CFA, v[0] + 1, TAG, HI), 0);
    cr_assert_eq(lw_scache_find(CFA, v[0], lw_scache_tag(LW_KIND_MMAP, 64, 0), HI), 0);
    cr_assert_eq(lw_scache_find(CFA, v[0], lw_scache_tag(LW_KIND_HEAP, 32, 0), HI), 0);
    cr_assert_eq(lw_scache_find(CFA + 8, v[0], TAG, HI), 0);
    struct lw_scache_stats st;
    lw_scache_stats(&st);
    cr_assert_eq(st.hits, 1);
    cr_assert_eq(st.misses, 4);
    cr_assert_eq(st.added, 1);
    cr_assert_eq(st.sizes_known, 2);
}

Test(stackcache, every_return_address_is_checked)
{
    learn_both();
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_ADDED);
    mem[25] = v[2] + 4; /* the outermost frame differs: another stack */
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0);
    mem[25] = v[2];
    mem[19] = v[1] + 4;
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0);
    mem[19] = v[1];
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 9);
}

Test(stackcache, nothing_is_read_at_or_above_hi)
{
    learn_both();
    /* v[2]'s address is mem[25]: a stack ending there cannot hold it */
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, (uintptr_t)&mem[25]), LW_SCACHE_REFUSED);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, (uintptr_t)&mem[25]), 0);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, (uintptr_t)&mem[26]), 9);
}

Test(stackcache, two_sizes_make_a_frame_bad_for_good)
{
    lw_scache_learned(v[0], 32, 0, 0);
    lw_scache_learned(v[0], 40, 0, 0); /* alloca: the frame changed size */
    cr_assert_eq(lw_scache_frame_size(v[0]), LW_SCACHE_BAD);
    lw_scache_learned(v[0], 32, 0, 0);
    cr_assert_eq(lw_scache_frame_size(v[0]), LW_SCACHE_BAD);
    lw_scache_learned(v[1], 48, 0, 0);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_REFUSED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0);
}

Test(stackcache, a_size_that_misplaces_the_next_frame_becomes_bad)
{
    lw_scache_learned(v[0], 40, 0, 0); /* puts v[1] at mem[20], where it is not */
    lw_scache_learned(v[1], 48, 0, 0);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_REFUSED);
    cr_assert_eq(lw_scache_frame_size(v[0]), LW_SCACHE_BAD);
    cr_assert_eq(lw_scache_frame_size(v[1]), 48);
}

/* A stack the unwinder ended by itself after v[2] (its return address
 * word 0, say, or code without unwind tables): v[2]'s size is needed too,
 * and the entry holds only while what the unwinder stopped at, and v[2]'s
 * rbp, are what they were. */
Test(stackcache, a_stack_that_ended_checks_where_it_ended)
{
    learn_both();
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, true, 9, HI), LW_SCACHE_NEED_SIZES);
    lw_scache_learned(v[2], 16, 0, 0); /* v[2]'s CFA is mem[28]: it stopped at mem[27] */
    mem[14] = 777;                     /* v[2]'s rbp: nobody saved another */
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, true, 9, HI), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 9);
    mem[27] = 0x404000; /* now a return address: the stack would go on */
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0, "a stack that goes on matched one that ended");
    mem[27] = 0;
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 9);
    mem[14] = 778; /* an unwinder without tables for v[2] would follow rbp elsewhere */
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0);
    mem[14] = 777;
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 9);
    /* nothing of the kind is read for a stack cut at the depth asked */
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 10, (uintptr_t)&mem[27]), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, true, 10, (uintptr_t)&mem[27]), LW_SCACHE_REFUSED);
}

/* A frame that keeps a frame pointer (LW_SCACHE_FP) may change size
 * (alloca): the entry follows its rbp, read where the frames below saved
 * it, and a stale copy of the old return address where the frame used to
 * end is not a hit. rbp_at: where v[1]'s rbp lies. */
static void frame_pointer_case(uintptr_t *rbp_at)
{
    *rbp_at = (uintptr_t)&mem[24]; /* v[1]'s rbp: its CFA (mem[26]) - 16 */
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 9);
    /* v[1]'s frame grows by 64 bytes: its caller's return address moves
     * to mem[33]; the old one stays behind at mem[25], a stale copy */
    *rbp_at = (uintptr_t)&mem[32];
    mem[33] = v[2];
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0, "a stale return address made a hit");
    /* the same stack at the new size is an entry of its own */
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 10, HI), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 10);
    *rbp_at = (uintptr_t)&mem[24]; /* and back */
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 9);
    cr_assert_eq(lw_scache_frame_size(v[1]), 48 | LW_SCACHE_FP, "a size that varies with rbp stays");
}

Test(stackcache, frame_pointer_frames_follow_the_rbp_their_callee_saved)
{
    lw_scache_learned(v[0], 32, 0, 2); /* saves its caller's rbp at its CFA - 16: mem[18] */
    lw_scache_learned(v[1], 48, LW_SCACHE_FP, 0);
    frame_pointer_case(&mem[18]);
}

Test(stackcache, frame_pointer_frames_follow_an_rbp_passed_through)
{
    lw_scache_learned(v[0], 32, 0, 0); /* leaves rbp alone: it is where lw_stack_here saved it */
    lw_scache_learned(v[1], 48, LW_SCACHE_FP, 0);
    frame_pointer_case(&mem[14]);
}

Test(stackcache, a_frame_pointer_that_is_not_one_is_refused)
{
    lw_scache_learned(v[0], 32, 0, 0);
    lw_scache_learned(v[1], 48, LW_SCACHE_FP, 0);
    mem[14] = 12345; /* what lw_stack_here saved is no frame pointer of v[1] */
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_REFUSED);
}

Test(stackcache, flags_and_slots_are_part_of_the_observation)
{
    lw_scache_learned(v[0], 32, LW_SCACHE_FP, 0);
    cr_assert_eq(lw_scache_frame_size(v[0]), 32 | LW_SCACHE_FP);
    lw_scache_learned(v[0], 32, 0, 0); /* the same size, other flags: not one kind of frame */
    cr_assert_eq(lw_scache_frame_size(v[0]), LW_SCACHE_BAD);
    lw_scache_learned(v[1], 48, 0, 3);
    cr_assert_eq(LW_SCACHE_RBP_SLOT(lw_scache_frame_size(v[1])), 3);
    lw_scache_learned(v[1], 48, 0, 4);
    cr_assert_eq(lw_scache_frame_size(v[1]), LW_SCACHE_BAD);
    lw_scache_learned(v[2], 48, 0, 256); /* no such slot */
    cr_assert_eq(lw_scache_frame_size(v[2]), LW_SCACHE_BAD);
}

Test(stackcache, impossible_sizes_are_bad)
{
    lw_scache_learned(0x500000, 0, 0, 0);
    lw_scache_learned(0x500010, 12, 0, 0);
    lw_scache_learned(0x500020, 70000, 0, 0);
    lw_scache_learned(0x500030, 65528, 0, 0);
    cr_assert_eq(lw_scache_frame_size(0x500000), LW_SCACHE_BAD);
    cr_assert_eq(lw_scache_frame_size(0x500010), LW_SCACHE_BAD);
    cr_assert_eq(lw_scache_frame_size(0x500020), LW_SCACHE_BAD);
    cr_assert_eq(lw_scache_frame_size(0x500030), 65528);
}

Test(stackcache, a_cfa_that_does_not_hold_the_return_address_turns_it_off)
{
    learn_both();
    mem[15] = 0;
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_REFUSED);
    cr_assert(!lw_scache_on());
    mem[15] = v[0];
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_REFUSED);
}

Test(stackcache, too_deep_is_refused)
{
    uintptr_t w[LW_SCACHE_FRAMES + 2] = {v[0]};
    cr_assert_eq(lw_scache_add(CFA, TAG, w, LW_SCACHE_FRAMES + 2, false, 9, HI), LW_SCACHE_REFUSED);
}

Test(stackcache, the_least_recently_used_way_goes)
{
    /* Five stacks that share cfa, return address and tag (one set of four
     * ways), differing in v[1]. */
    lw_scache_learned(v[0], 32, 0, 0);
    for (uintptr_t k = 0; k < 5; k++) {
        uintptr_t w[2] = {v[0], v[1] + k * 16};
        mem[19] = w[1];
        cr_assert_eq(lw_scache_add(CFA, TAG, w, 2, false, (uint32_t)(100 + k), HI), LW_SCACHE_ADDED);
        if (k == 1) { /* use the first again: the second is now the oldest */
            mem[19] = v[1];
            cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 100);
        }
    }
    uint32_t want[5] = {100, 0, 102, 103, 104};
    for (uintptr_t k = 0; k < 5; k++) {
        mem[19] = v[1] + k * 16;
        cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), want[k], "stack %lu", (unsigned long)k);
    }
}

Test(stackcache, an_unloaded_library_voids_everything_learned)
{
    learn_both();
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 9);
    lw_scache_invalidate(); /* dlclose */
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0, "an entry of unloaded code was used");
    cr_assert_eq(lw_scache_frame_size(v[0]), LW_SCACHE_UNKNOWN);
    cr_assert_eq(lw_scache_frame_size(v[1]), LW_SCACHE_UNKNOWN);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_NEED_SIZES);
    lw_scache_learned(v[0], 32, 0, 0); /* what the new code shows */
    lw_scache_learned(v[1], 48, 0, 0);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 11, HI), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 11);
}

static void *exiting_thread(void *arg)
{
    (void)arg;
    learn_both();
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_ADDED);
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 9);
    lw_scache_thread_exit();
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0);
    cr_assert_eq(lw_scache_add(CFA, TAG, v, 3, false, 9, HI), LW_SCACHE_REFUSED);
    return NULL;
}

Test(stackcache, nothing_after_thread_exit_and_caches_are_per_thread)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, exiting_thread, NULL), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    /* that thread's entry was its own: this thread has none */
    cr_assert_eq(lw_scache_find(CFA, v[0], TAG, HI), 0);
    struct lw_scache_stats st;
    lw_scache_stats(&st);
    cr_assert_eq(st.hits, 1, "the exiting thread's hit is counted");
}

/* ---- real captures ---- */
static __attribute__((noinline)) uint32_t here(void)
{
    uint32_t id = lw_stack_here(LW_KIND_HEAP, 64, 0);
    __asm__ volatile("" ::: "memory"); /* no tail call */
    return id;
}

static __attribute__((noinline)) uint32_t via_a(void)
{
    uint32_t id = here();
    __asm__ volatile("" ::: "memory");
    return id;
}

static __attribute__((noinline)) uint32_t via_b(void)
{
    uint32_t id = here();
    __asm__ volatile("" ::: "memory");
    return id;
}

static __attribute__((noinline)) void both(uint32_t *a, uint32_t *b)
{
    *a = via_a();
    *b = via_b();
    __asm__ volatile("" ::: "memory");
}

Test(stackcache, real_captures_give_the_ids_libunwind_gives)
{
    cr_assert(lw_stack_init());
    atomic_store(&lw_state.init, LW_READY); /* lets the capture learn the stack's bounds */
    uint32_t a[2], b[2];
    for (int mode = 0; mode < 2; mode++) {
        lw_state.cfg.unwind = mode ? LW_UNWIND_LIBUNWIND : LW_UNWIND_UNCACHED;
        /* interleaved: the two share cfa and return address. One call
         * site for both() (a branch in this loop could be peeled off into
         * a second call site, a second stack). */
        uint32_t x[21], y[21];
        for (int i = 0; i < 21; i++)
            both(&x[i], &y[i]);
        a[mode] = x[0];
        b[mode] = y[0];
        for (int i = 1; i < 21; i++) {
            cr_assert_eq(x[i], a[mode], "mode %d call %d: %u, first %u", mode, i, x[i], a[mode]);
            cr_assert_eq(y[i], b[mode], "mode %d call %d: %u, first %u", mode, i, y[i], b[mode]);
        }
        cr_assert_neq(a[mode], 0);
        cr_assert_neq(a[mode], b[mode], "two call paths, two stacks");
    }
    cr_assert_eq(a[1], a[0], "the cached capture interned the same frames");
    cr_assert_eq(b[1], b[0]);
    struct lw_scache_stats st;
    lw_scache_stats(&st);
    cr_assert_geq(st.hits, 40, "hits %lu misses %lu added %lu refused %lu", (unsigned long)st.hits,
                  (unsigned long)st.misses, (unsigned long)st.added, (unsigned long)st.refused);
    cr_assert_geq(st.sizes_known, 3);
}

/* dlclose empties the frame-size map while other threads learn: no frame
 * may ever read another frame's size. Every frame here has one size, so
 * the only values a reader may see are "unknown" and that size (a value
 * left behind in a slot without a key, taken over by the next key, would
 * show up as another size or, once both are stored, as BAD). */
#define RACE_IPS 40000
#define RACE_NS (400u * 1000 * 1000)
static _Atomic int race_stop;
static _Atomic uint64_t race_wrong, race_reads;

static uintptr_t race_ip(unsigned i)
{
    return 0x500000 + 16 * (uintptr_t)i;
}

static uint32_t race_size(unsigned i)
{
    return 8 * (1 + i % 97);
}

static void *race_learner(void *arg)
{
    unsigned x = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    while (!atomic_load(&race_stop)) {
        x = x * 1103515245u + 12345u;
        unsigned i = (x >> 8) % RACE_IPS;
        lw_scache_learned(race_ip(i), race_size(i), 0, 0);
        for (unsigned k = 0; k < 4; k++) {
            unsigned j = (i + k * 131) % RACE_IPS;
            uint32_t got = lw_scache_frame_size(race_ip(j));
            if (got != LW_SCACHE_UNKNOWN && got != race_size(j))
                atomic_fetch_add(&race_wrong, 1);
            atomic_fetch_add_explicit(&race_reads, 1, memory_order_relaxed);
        }
    }
    return NULL;
}

Test(stackcache, emptying_the_map_never_hands_one_frame_another_frames_size)
{
    pthread_t t[2];
    for (uintptr_t k = 0; k < 2; k++)
        cr_assert_eq(pthread_create(&t[k], NULL, race_learner, (void *)k), 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned clears = 0;
    do {
        lw_scache_invalidate();
        clears++;
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while ((uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)b.tv_nsec - (uint64_t)a.tv_nsec <
             RACE_NS);
    atomic_store(&race_stop, 1);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    cr_assert(lw_scache_on(), "no learner was stuck: the cache stays on");
    cr_assert_gt(atomic_load(&race_reads), 10000);
    cr_assert_gt(clears, 100);
    cr_assert_eq(atomic_load(&race_wrong), 0, "%llu of %llu reads saw another frame's size (%u clears)",
                 (unsigned long long)atomic_load(&race_wrong),
                 (unsigned long long)atomic_load(&race_reads), clears);
}
