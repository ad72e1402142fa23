/* Stack capture (frame 0 is the caller, depth limit) and the stack table
 * (deduplication, kinds, growth, threads). */
#include <criterion/criterion.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../include/lw_format.h"
#include "stack.h"
#include "state.h"

static void init(void)
{
    cr_assert(lw_stack_init());
}

TestSuite(stack, .init = init);

static __attribute__((noinline)) int capture_here(uintptr_t *out, int max, uintptr_t *ra, bool *trunc)
{
    *ra = (uintptr_t)__builtin_return_address(0);
    int n = lw_stack_capture(out, max + 1 + LW_STACK_SLACK, max, 0, trunc);
    __asm__ volatile("" ::: "memory"); /* no tail call */
    return n;
}

Test(stack, frame0_is_the_caller)
{
    uintptr_t f[64 + 1 + LW_STACK_SLACK], ra;
    bool trunc;
    int n = capture_here(f, 64, &ra, &trunc);
    cr_assert_geq(n, 3);
    cr_assert(f[0] > (uintptr_t)capture_here && f[0] < (uintptr_t)capture_here + 256,
              "frame 0 %#lx is not inside capture_here %p", f[0], (void *)capture_here);
    cr_assert_eq(f[1], ra, "frame 1 is the return into capture_here's caller");
    cr_assert(!trunc);
}

static __attribute__((noinline)) int recurse(int d, uintptr_t *out, int max, bool *trunc)
{
    int n;
    if (d == 0) {
        uintptr_t ra;
        n = capture_here(out, max, &ra, trunc);
    } else {
        n = recurse(d - 1, out, max, trunc);
    }
    __asm__ volatile("" ::: "memory");
    return n;
}

Test(stack, depth_limit_is_honoured)
{
    uintptr_t f[256 + LW_STACK_SLACK];
    bool trunc;
    int n = recurse(50, f, 10, &trunc);
    cr_assert_eq(n, 10);
    cr_assert(trunc, "cut frames are flagged");
    n = recurse(50, f, 200, &trunc);
    cr_assert_geq(n, 52);
    cr_assert_lt(n, 200);
    cr_assert(!trunc);
    /* the 51 recursive frames share one return address, as they should */
    cr_assert_eq(f[2], f[30]);
}

Test(stack, intern_deduplicates_by_kind_and_frames)
{
    uintptr_t a[3] = {1, 2, 3}, b[3] = {1, 2, 4};
    uint32_t x = lw_stack_intern(LW_KIND_HEAP, a, 3, false);
    uint32_t y = lw_stack_intern(LW_KIND_HEAP, a, 3, false);
    uint32_t z = lw_stack_intern(LW_KIND_MMAP, a, 3, false);
    uint32_t w = lw_stack_intern(LW_KIND_HEAP, b, 3, false);
    uint32_t v = lw_stack_intern(LW_KIND_HEAP, a, 2, false);
    cr_assert_gt(x, 0);
    cr_assert_eq(x, y);
    cr_assert_neq(x, z);
    cr_assert_neq(x, w);
    cr_assert_neq(x, v);
    cr_assert_eq(lw_stack_count(), 4);
    struct lw_stack_info si;
    cr_assert(lw_stack_info(z, &si));
    cr_assert_eq(si.kind, LW_KIND_MMAP);
    cr_assert_eq(si.nframes, 3);
    cr_assert_eq(si.frames[2], 3);
    cr_assert(!lw_stack_info(0, &si));
    cr_assert(!lw_stack_info(99, &si));
}

Test(stack, counters_add_up)
{
    uintptr_t a[1] = {42};
    uint32_t id = lw_stack_intern(LW_KIND_HEAP, a, 1, false);
    lw_stack_account_alloc(id, 100);
    lw_stack_account_alloc(id, 50);
    lw_stack_account_free(id, 100, 1);
    struct lw_stack_totals c;
    lw_stack_read(id, &c);
    cr_assert_eq(c.alloc_bytes, 150);
    cr_assert_eq(c.alloc_objects, 2);
    cr_assert_eq(c.free_bytes, 100);
    cr_assert_eq(c.free_objects, 1);
}

/* Per-thread tallies: 70 threads at once (more than LW_TALLY_SLOTS: the
 * rest count in the shared counters), each allocating on one stack and
 * freeing what the previous thread allocated; half give their slot back
 * at exit, and a second wave of threads takes those slots over. Every
 * count is in the sum, and the shared counters hold the overflow's. */
#define TALLY_THREADS 70
static uint32_t tally_id;
static pthread_barrier_t tally_barrier;
static bool tally_slot[2000]; /* by k: the thread had a slot of its own */

static void *tally_thread(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    lw_stack_account_alloc(tally_id, 100 + k); /* assigns this thread a slot, or none */
    tally_slot[k] = (uintptr_t)lw_stack_my_tallies > (uintptr_t)LW_TALLY_SHARED;
    pthread_barrier_wait(&tally_barrier);     /* all 70 hold theirs at once */
    lw_stack_account_free(tally_id, 100 + k, 1);
    if (k % 2)
        lw_stack_thread_exit();
    return NULL;
}

static void tally_wave(uintptr_t base)
{
    pthread_t t[TALLY_THREADS];
    cr_assert_eq(pthread_barrier_init(&tally_barrier, NULL, TALLY_THREADS), 0);
    for (uintptr_t k = 0; k < TALLY_THREADS; k++)
        cr_assert_eq(pthread_create(&t[k], NULL, tally_thread, (void *)(base + k)), 0);
    for (int k = 0; k < TALLY_THREADS; k++)
        pthread_join(t[k], NULL);
    pthread_barrier_destroy(&tally_barrier);
}

Test(stack, tallies_of_all_threads_add_up)
{
    uintptr_t a[1] = {43};
    tally_id = lw_stack_intern(LW_KIND_HEAP, a, 1, false);
    tally_wave(0);
    tally_wave(1000); /* 35 slots were given back: taken again */
    uint64_t bytes = 0;
    for (uintptr_t k = 0; k < TALLY_THREADS; k++)
        bytes += (100 + k) + (100 + 1000 + k);
    struct lw_stack_totals c;
    lw_stack_read(tally_id, &c);
    cr_assert_eq(c.alloc_objects, 2 * TALLY_THREADS);
    cr_assert_eq(c.free_objects, 2 * TALLY_THREADS);
    cr_assert_eq(c.alloc_bytes, bytes);
    cr_assert_eq(c.free_bytes, bytes);
    /* the first wave took all 64 slots, the other 6 threads counted in the
     * shared counters; the second wave got exactly the slots given back */
    int first = 0, back = 0, second = 0;
    for (int k = 0; k < TALLY_THREADS; k++) {
        first += tally_slot[k];
        back += tally_slot[k] && k % 2;
        second += tally_slot[1000 + k];
    }
    cr_assert_eq(first, LW_TALLY_SLOTS);
    cr_assert_eq(second, back);
    struct lw_stack_counters *sh = lw_stack_counters(tally_id);
    cr_assert_eq(atomic_load(&sh->alloc_objects), (uint64_t)(2 * TALLY_THREADS - first - second));
}

Test(stack, index_grows_and_finds_everything)
{
    const int n = 100000;
    static uint32_t ids[100000];
    for (int i = 0; i < n; i++) {
        uintptr_t f[4] = {(uintptr_t)i, 7, 8, (uintptr_t)i * 3};
        ids[i] = lw_stack_intern(LW_KIND_HEAP, f, 4, false);
        cr_assert_gt(ids[i], 0);
    }
    for (int i = 0; i < n; i++) {
        uintptr_t f[4] = {(uintptr_t)i, 7, 8, (uintptr_t)i * 3};
        cr_assert_eq(lw_stack_intern(LW_KIND_HEAP, f, 4, false), ids[i], "stack %d", i);
    }
    cr_assert_eq(lw_stack_count(), (uint32_t)n, "single-threaded: no duplicates");
    cr_assert_lt(lw_stack_memory_bytes(), 64u << 20);
}

#define NT 4
#define NS 20000
static uint32_t got[NT][NS];
static void *intern_worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int k = 0; k < NS; k++) {
        int i = (k * 7 + t * 13) % NS; /* each thread in its own order */
        uintptr_t f[2] = {(uintptr_t)i + 1000, 99};
        got[t][i] = lw_stack_intern(LW_KIND_HEAP, f, 2, false);
    }
    return NULL;
}

Test(stack, threads_agree_on_what_each_id_is)
{
    pthread_t th[NT];
    for (int t = 0; t < NT; t++)
        pthread_create(&th[t], NULL, intern_worker, (void *)(intptr_t)t);
    for (int t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < NS; i++) {
            struct lw_stack_info si;
            cr_assert(lw_stack_info(got[t][i], &si), "id %u", got[t][i]);
            cr_assert_eq(si.nframes, 2);
            cr_assert_eq(si.frames[0], (uintptr_t)i + 1000);
        }
    for (int i = 0; i < NS; i++)
        for (int t = 1; t < NT; t++)
            cr_assert_eq(got[t][i], got[0][i], "stack %d: threads disagree", i);
    cr_assert_eq(lw_stack_count(), NS, "no stack added twice");
}

/* ---- the fast capture gate going off (before a seccomp filter) ---- */

static void init_fast(void)
{
    lw_core_membarrier_ok = true;
    cr_assert(lw_stack_init());
    if (!lw_stack_fast_gate())
        cr_skip_test("membarrier(PRIVATE_EXPEDITED) is not available here");
}

/* A seccomp filter that kills the process on membarrier: from here on, a
 * membarrier of ours ends the test (criterion reports the crash). */
static void forbid_membarrier(void)
{
    static struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

#define CAPTURES 20000
static _Atomic int captured_ok, capturers_done;

static bool capture_is_right(void)
{
    uintptr_t f[8 + 1 + LW_STACK_SLACK], ra;
    bool trunc;
    int n = capture_here(f, 8, &ra, &trunc);
    return n >= 2 && f[0] > (uintptr_t)capture_here && f[0] < (uintptr_t)capture_here + 256 &&
           f[1] == ra;
}

static void *capturer(void *arg)
{
    (void)arg;
    for (int i = 0; i < CAPTURES; i++)
        if (capture_is_right())
            atomic_fetch_add(&captured_ok, 1);
    atomic_fetch_add(&capturers_done, 1);
    for (;;) /* never exits: libunwind's thread-exit destructor crashes under TSan */
        pause();
    return NULL;
}

static void *switch_off(void *arg)
{
    (void)arg;
    while (atomic_load(&captured_ok) < NT * CAPTURES / 4)
        sched_yield();
    lw_stack_fast_off();
    return NULL;
}

/* Captures in four threads while forks are prepared and the fast mode goes
 * off: every capture is whole; afterwards no fork (prepare, parent, child)
 * calls membarrier, shown by a filter that kills on it. */
Test(stack_fast, fast_gate_goes_off_mid_run, .init = init_fast)
{
    pthread_t th[NT], off;
    pthread_create(&off, NULL, switch_off, NULL);
    for (int t = 0; t < NT; t++)
        pthread_create(&th[t], NULL, capturer, NULL);
    int forks = 0;
    while (atomic_load(&capturers_done) < NT) {
        lw_stack_fork_prepare(); /* the exclusion a fork runs, without the fork */
        lw_stack_fork_parent();
        forks++;
        usleep(1000); /* paced: a capture waits out a fork only so long (wait_fork) */
    }
    pthread_join(off, NULL);
    cr_assert_eq(atomic_load(&captured_ok), NT * CAPTURES, "every capture is whole: %d of %d (%d forks)", atomic_load(&captured_ok), NT * CAPTURES, forks);
    cr_assert_not(lw_stack_fast_gate(), "the gate counts now");

    forbid_membarrier();
    lw_stack_fast_off(); /* again: a no-op */
    lw_stack_fork_prepare();
    pid_t pid = fork();
    if (pid == 0) {
        lw_stack_fork_child();
        _exit(capture_is_right() && !lw_stack_fast_gate() ? 0 : 1);
    }
    lw_stack_fork_parent();
    cr_assert_gt(pid, 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %#x (SIGSYS: a membarrier)", st);
    cr_assert(capture_is_right());
}
