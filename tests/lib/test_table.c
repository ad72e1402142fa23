/* Live-block table: exact contents after inserts, removes, stale reuse,
 * growth, tombstone churn and cross-thread removal. */
#include <criterion/criterion.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "state.h"
#include "table.h"

#define A(i) ((uintptr_t)0x10000000 + (uintptr_t)(i) * 16)

static void init(void)
{
    cr_assert(lw_table_init());
}

TestSuite(table, .init = init);

Test(table, insert_lookup_remove)
{
    struct lw_block b = {.size = 123, .stack = 7, .epoch = 3}, out, stale;
    cr_assert_eq(lw_table_insert(A(1), &b, &stale), LW_TABLE_INSERTED);
    cr_assert(lw_table_lookup(A(1), &out));
    cr_assert_eq(out.size, 123);
    cr_assert_eq(out.stack, 7);
    cr_assert_eq(out.epoch, 3);
    cr_assert(!lw_table_lookup(A(2), &out));
    cr_assert(lw_table_remove(A(1), &out));
    cr_assert_eq(out.size, 123);
    cr_assert(!lw_table_remove(A(1), &out), "a second free of the same block finds nothing");
    cr_assert(!lw_table_lookup(A(1), &out));
}

Test(table, stale_entry_is_replaced_and_returned)
{
    struct lw_block b1 = {.size = 10, .stack = 1}, b2 = {.size = 20, .stack = 2}, stale, out;
    cr_assert_eq(lw_table_insert(A(5), &b1, &stale), LW_TABLE_INSERTED);
    cr_assert_eq(lw_table_insert(A(5), &b2, &stale), LW_TABLE_REPLACED);
    cr_assert_eq(stale.size, 10);
    cr_assert_eq(stale.stack, 1);
    cr_assert(lw_table_remove(A(5), &out));
    cr_assert_eq(out.size, 20);
    cr_assert(!lw_table_lookup(A(5), &out), "the address is in the table once");
}

Test(table, out_of_range_values_are_dropped)
{
    struct lw_block big = {.size = LW_TABLE_MAX_SIZE + 1, .stack = 1}, ok = {.size = 1, .stack = 1};
    struct lw_block bad_stack = {.size = 1, .stack = LW_TABLE_MAX_STACK + 1}, stale;
    cr_assert_eq(lw_table_insert(A(1), &big, &stale), LW_TABLE_DROPPED);
    cr_assert_eq(lw_table_insert(A(1), &bad_stack, &stale), LW_TABLE_DROPPED);
    cr_assert_eq(lw_table_insert(LW_TABLE_MAX_ADDR, &ok, &stale), LW_TABLE_DROPPED);
    cr_assert_eq(lw_table_insert(0, &ok, &stale), LW_TABLE_DROPPED);
    struct lw_block max = {.size = LW_TABLE_MAX_SIZE, .stack = LW_TABLE_MAX_STACK, .epoch = 99999};
    cr_assert_eq(lw_table_insert(LW_TABLE_MAX_ADDR - 16, &max, &stale), LW_TABLE_INSERTED);
    struct lw_block out;
    cr_assert(lw_table_lookup(LW_TABLE_MAX_ADDR - 16, &out));
    cr_assert_eq(out.size, LW_TABLE_MAX_SIZE);
    cr_assert_eq(out.stack, LW_TABLE_MAX_STACK);
    cr_assert_eq(out.epoch, 0xffff, "epochs saturate");
}

Test(table, grows_and_keeps_every_entry)
{
    const int n = 1000000;
    struct lw_block stale, out;
    for (int i = 0; i < n; i++) {
        struct lw_block b = {.size = (uint64_t)i, .stack = (uint32_t)(i % 1000) + 1};
        cr_assert_eq(lw_table_insert(A(i), &b, &stale), LW_TABLE_INSERTED);
    }
    for (int i = 0; i < n; i++) {
        cr_assert(lw_table_lookup(A(i), &out), "entry %d lost", i);
        cr_assert_eq(out.size, (uint64_t)i);
    }
    struct lw_table_stats st;
    lw_table_stats(&st);
    cr_assert_eq(st.live, (uint64_t)n);
    cr_assert_gt(st.rehashes, 0);
    cr_assert_leq(st.bytes / n, 64, "metadata per live block: %lu bytes", st.bytes / n);
}

Test(table, tombstone_churn_stays_bounded)
{
    struct lw_block stale, out, b = {.size = 8, .stack = 1};
    /* 1000 live at a time, 2 M distinct addresses over time. */
    for (int i = 0; i < 2000000; i++) {
        cr_assert_eq(lw_table_insert(A(i), &b, &stale), LW_TABLE_INSERTED);
        if (i >= 1000)
            cr_assert(lw_table_remove(A(i - 1000), &out));
    }
    struct lw_table_stats st;
    lw_table_stats(&st);
    cr_assert_eq(st.live, 1000);
    cr_assert_leq(st.slots, 64 * 1024, "slots: %lu", st.slots);
    cr_assert(!lw_table_lookup(A(5000000), &out), "a miss terminates");
}

/* Random inserts and removes against a reference bitmap: every live
 * address is found with its value, every removed one is absent, through
 * many in-place purges and growths. */
Test(table, random_churn_matches_a_model)
{
    enum { N = 400000 }; /* N / 8 live: shards beyond ROOMY_CAP, which purge */
    static unsigned char live[N];
    uint64_t x = 88172645463325252u, nlive = 0;
    struct lw_block b, out, stale;
    for (int step = 0; step < 10000000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t i = (uint32_t)(x % N);
        /* keep about N/8 live: insert when below, remove when above */
        bool ins = !live[i] && (nlive < N / 8 || (x >> 40) % 4 == 0);
        if (ins) {
            b.size = i;
            b.stack = (i % 1000) + 1;
            b.epoch = 0;
            cr_assert_eq(lw_table_insert(A(i), &b, &stale), LW_TABLE_INSERTED, "step %d", step);
            live[i] = 1;
            nlive++;
        } else if (live[i] && nlive > N / 16) {
            cr_assert(lw_table_remove(A(i), &out), "step %d: %u lost", step, i);
            cr_assert_eq(out.size, i);
            live[i] = 0;
            nlive--;
        }
    }
    for (uint32_t i = 0; i < N; i++) {
        bool found = lw_table_lookup(A(i), &out);
        cr_assert_eq(found, live[i] != 0, "address %u: found %d, live %d", i, found, live[i]);
        if (found)
            cr_assert_eq(out.size, i);
    }
    struct lw_table_stats st;
    lw_table_stats(&st);
    cr_assert_eq(st.live, nlive);
    cr_assert_gt(st.purges, 0, "tombstones were dropped in place");
}

struct visit {
    uint64_t n, bytes;
};
static void count(uintptr_t a, const struct lw_block *b, void *arg)
{
    (void)a;
    struct visit *v = arg;
    v->n++;
    v->bytes += b->size;
}

Test(table, foreach_visits_exactly_the_live_blocks)
{
    struct lw_block stale, out;
    for (int i = 0; i < 5000; i++) {
        struct lw_block b = {.size = 3, .stack = 1};
        lw_table_insert(A(i), &b, &stale);
    }
    for (int i = 0; i < 5000; i += 2)
        lw_table_remove(A(i), &out);
    struct visit v = {0, 0};
    lw_table_foreach(count, &v);
    cr_assert_eq(v.n, 2500);
    cr_assert_eq(v.bytes, 7500);
}

/* Threads: each allocates its own addresses and hands every other block to
 * the next thread, which frees it. */
#define NT 4
#define PER 200000
static _Atomic uintptr_t handoff[NT][PER / 2];
static _Atomic int handoff_n[NT];
static _Atomic int removed_ok;

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    struct lw_block stale, out;
    int got = 0;
    for (int i = 0; i < PER; i++) {
        uintptr_t a = A((uintptr_t)t * PER + (uintptr_t)i);
        struct lw_block b = {.size = 1, .stack = (uint32_t)t + 1};
        if (lw_table_insert(a, &b, &stale) != LW_TABLE_INSERTED)
            return (void *)1;
        if (i & 1) {
            int k = atomic_load(&handoff_n[(t + 1) % NT]);
            atomic_store(&handoff[(t + 1) % NT][k], a);
            atomic_store(&handoff_n[(t + 1) % NT], k + 1);
        }
        /* free what the previous thread handed to us */
        while (got < atomic_load(&handoff_n[t])) {
            uintptr_t h = atomic_load(&handoff[t][got++]);
            if (lw_table_remove(h, &out) && out.stack == (uint32_t)((t + NT - 1) % NT) + 1)
                atomic_fetch_add(&removed_ok, 1);
        }
    }
    return NULL;
}

Test(table, cross_thread_frees_reconcile)
{
    pthread_t th[NT];
    for (int t = 0; t < NT; t++)
        pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < NT; t++) {
        void *r;
        pthread_join(th[t], &r);
        cr_assert_null(r);
    }
    /* drain what was handed over after its receiver finished */
    struct lw_block out;
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < atomic_load(&handoff_n[t]); i++)
            if (lw_table_remove(atomic_load(&handoff[t][i]), &out))
                atomic_fetch_add(&removed_ok, 1);
    cr_assert_eq(atomic_load(&removed_ok), NT * PER / 2);
    struct lw_table_stats st;
    lw_table_stats(&st);
    cr_assert_eq(st.live, (uint64_t)NT * PER / 2);
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < PER; i += 2)
            cr_assert(lw_table_lookup(A((uintptr_t)t * PER + (uintptr_t)i), &out));
}

/* The same concurrent workload with threads entering shards by their own
 * flag and the excluder (growth, purges) running membarrier. */
static void init_fast(void)
{
    lw_core_membarrier_ok = true;
    cr_assert(lw_table_init());
    struct lw_table_stats st;
    lw_table_stats(&st);
    if (!st.fast_gates)
        cr_skip_test("membarrier(PRIVATE_EXPEDITED) is not available here");
}

Test(table_fast, cross_thread_frees_reconcile, .init = init_fast)
{
    pthread_t th[NT];
    for (int t = 0; t < NT; t++)
        pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < NT; t++) {
        void *r;
        pthread_join(th[t], &r);
        cr_assert_null(r);
    }
    struct lw_block out;
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < atomic_load(&handoff_n[t]); i++)
            if (lw_table_remove(atomic_load(&handoff[t][i]), &out))
                atomic_fetch_add(&removed_ok, 1);
    cr_assert_eq(atomic_load(&removed_ok), NT * PER / 2);
    struct lw_table_stats st;
    lw_table_stats(&st);
    cr_assert(st.fast_gates);
    cr_assert_eq(st.live, (uint64_t)NT * PER / 2);
    cr_assert_gt(st.rehashes, 0, "the shards grew while the threads ran");
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < PER; i += 2)
            cr_assert(lw_table_lookup(A((uintptr_t)t * PER + (uintptr_t)i), &out));
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

/* The fast gates go off (as before a seccomp filter) while the threads
 * run and the shards grow: nothing is lost or doubled, and afterwards the
 * table never calls membarrier, shown by a filter that kills on it while
 * the shards grow again and foreach excludes every shard. */
static void *switch_off(void *arg)
{
    (void)arg;
    while (atomic_load(&removed_ok) < NT * PER / 8)
        sched_yield();
    struct lw_table_stats st;
    lw_table_stats(&st);
    lw_table_fast_off();
    return (void *)(uintptr_t)st.rehashes;
}

static void count_visit(uintptr_t addr, const struct lw_block *b, void *arg)
{
    (void)addr;
    *(uint64_t *)arg += b->size;
}

Test(table_fast, fast_gates_go_off_mid_run, .init = init_fast)
{
    pthread_t th[NT], off;
    pthread_create(&off, NULL, switch_off, NULL);
    for (int t = 0; t < NT; t++)
        pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < NT; t++) {
        void *r;
        pthread_join(th[t], &r);
        cr_assert_null(r);
    }
    void *before;
    pthread_join(off, &before);
    struct lw_table_stats st;
    lw_table_stats(&st);
    cr_assert_not(st.fast_gates, "the gates count now");
    cr_assert_gt(st.rehashes, (uint64_t)(uintptr_t)before, "the shards grew after the switch began");
    struct lw_block out;
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < atomic_load(&handoff_n[t]); i++)
            if (lw_table_remove(atomic_load(&handoff[t][i]), &out))
                atomic_fetch_add(&removed_ok, 1);
    cr_assert_eq(atomic_load(&removed_ok), NT * PER / 2);
    lw_table_stats(&st);
    cr_assert_eq(st.live, (uint64_t)NT * PER / 2);

    forbid_membarrier();
    uint64_t grown = st.rehashes;
    lw_table_fast_off(); /* again: a no-op */
    for (uint32_t i = 0; i < 1000000; i++) {
        struct lw_block b = {.size = 3, .stack = 1}, stale;
        cr_assert_eq(lw_table_insert(A(NT * PER + i), &b, &stale), LW_TABLE_INSERTED);
    }
    uint64_t bytes = 0;
    lw_table_foreach(count_visit, &bytes);
    cr_assert_eq(bytes, (uint64_t)NT * PER / 2 + 1000000 * 3);
    lw_table_stats(&st);
    cr_assert_not(st.fast_gates);
    cr_assert_gt(st.rehashes, grown, "the shards grew under the filter");
    cr_assert_eq(st.live, (uint64_t)NT * PER / 2 + 1000000);
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < PER; i += 2)
            cr_assert(lw_table_lookup(A((uintptr_t)t * PER + (uintptr_t)i), &out));
}

Test(table_fast, fast_off_before_init_keeps_them_off)
{
    lw_table_fast_off();
    lw_core_membarrier_ok = true;
    cr_assert(lw_table_init());
    struct lw_table_stats st;
    lw_table_stats(&st);
    cr_assert_not(st.fast_gates);
    forbid_membarrier();
    for (uint32_t i = 0; i < 100000; i++) {
        struct lw_block b = {.size = 1, .stack = 1}, stale;
        cr_assert_eq(lw_table_insert(A(i), &b, &stale), LW_TABLE_INSERTED);
    }
    lw_table_stats(&st);
    cr_assert_eq(st.live, 100000);
    cr_assert_gt(st.rehashes, 0);
}
