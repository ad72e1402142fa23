/*
 * tablebench.c - the live-block table alone (lib/table.c linked directly, no
 * preload): insert and remove cost as the table fills to N live blocks, the
 * cost of a free+malloc pair at N live, the longest pause a shard rehash
 * caused, table bytes per live block, and throughput of 1 and 2 threads
 * hammering it with cross-thread frees. Prints "table.KEY VALUE" lines for
 * bench/run. Never a test.
 *
 * usage: tablebench fill N          fill to N live, churn at N live
 *        tablebench threads N OPS   1 then 2 threads (N live in all, halved
 *                                   between the two), OPS pairs each, twice
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state.h"
#include "table.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Addresses as an allocator hands them out: 16-byte aligned, from a few
 * regions, reused after a free. Each thread owns a disjoint range. */
static inline uintptr_t addr_of(uint64_t thread, uint64_t i)
{
    return ((uintptr_t)0x10000000000u * (thread + 1)) + (uintptr_t)i * 48;
}

static void fill(uint64_t n)
{
    struct lw_block b = {.size = 32, .stack = 1, .epoch = 0}, stale;
    /* Insert cost per decade of fill: flat means the growth is amortised
     * and probing stays short. */
    uint64_t t0 = now_ns(), mark = n / 10 ? n / 10 : 1, tl = t0;
    double first = 0, last = 0;
    for (uint64_t i = 0; i < n; i++) {
        lw_table_insert(addr_of(0, i), &b, &stale);
        if ((i + 1) % mark == 0) {
            uint64_t t = now_ns();
            double per = (double)(t - tl) / (double)mark;
            if (i + 1 == mark)
                first = per;
            last = per;
            tl = t;
        }
    }
    uint64_t t1 = now_ns();
    struct lw_table_stats st;
    lw_table_stats(&st);
    printf("table.live %" PRIu64 "\n", st.live);
    printf("table.fast_gates %d\n", st.fast_gates);
    printf("table.insert_ns %.1f\n", (double)(t1 - t0) / (double)n);
    printf("table.insert_first_tenth_ns %.1f\n", first);
    printf("table.insert_last_tenth_ns %.1f\n", last);
    printf("table.bytes_per_live %.1f\n", (double)st.bytes / (double)(st.live ? st.live : 1));
    printf("table.fill_max_pause_us %.1f\n", (double)st.max_pause_ns / 1e3);
    /* Churn at n live: remove a random live block, insert a new one at a
     * fresh address (as malloc after free would, mostly). */
    uint64_t ops = n < 2000000 ? 2000000 : n, s = 88172645463325252ULL;
    uint64_t *live = malloc(sizeof *live * (size_t)n);
    for (uint64_t i = 0; i < n; i++)
        live[i] = i;
    uint64_t next = n;
    t0 = now_ns();
    for (uint64_t k = 0; k < ops; k++) {
        uint64_t j = rng(&s) % n;
        struct lw_block out;
        lw_table_remove(addr_of(0, live[j]), &out);
        live[j] = next++;
        lw_table_insert(addr_of(0, live[j]), &b, &stale);
    }
    t1 = now_ns();
    /* A free of a block the table never saw (sampling mode's unsampled
     * blocks when the filter cannot tell): a miss. */
    uint64_t t2 = now_ns();
    for (uint64_t k = 0; k < ops; k++) {
        struct lw_block out;
        lw_table_remove(addr_of(7, rng(&s) % n), &out);
    }
    uint64_t t3 = now_ns();
    lw_table_stats(&st);
    printf("table.churn_pair_ns %.1f\n", (double)(t1 - t0) / (double)ops);
    printf("table.miss_ns %.1f\n", (double)(t3 - t2) / (double)ops);
    printf("table.max_pause_us %.1f\n", (double)st.max_pause_ns / 1e3);
    printf("table.rehashes %" PRIu64 "\n", st.rehashes + st.purges);
    printf("table.bytes_per_live_after_churn %.1f\n",
           (double)st.bytes / (double)(st.live ? st.live : 1));
    free(live);
}

/* Two threads: each allocates (inserts) blocks and hands every fourth to
 * the other, which frees (removes) it; the rest it frees itself. */
struct worker {
    int id, slot, nthreads; /* id: address range; slot: mailbox */
    uint64_t ops, live;
    pthread_barrier_t *bar;
    _Atomic uint64_t *mail; /* [2][MAIL]: addresses handed over */
    uint64_t elapsed;
};
#define MAIL 4096

static void *work(void *arg)
{
    struct worker *w = arg;
    struct lw_block b = {.size = 64, .stack = 1, .epoch = 0}, stale, out;
    uint64_t s = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->id + 1), next = w->live;
    uint64_t *mine = malloc(sizeof *mine * (size_t)w->live);
    for (uint64_t i = 0; i < w->live; i++) {
        mine[i] = addr_of((uint64_t)w->id, i);
        lw_table_insert(mine[i], &b, &stale);
    }
    _Atomic uint64_t *in = w->mail + (size_t)w->slot * MAIL;
    _Atomic uint64_t *to = w->mail + (size_t)((w->slot + 1) % w->nthreads) * MAIL;
    pthread_barrier_wait(w->bar);
    uint64_t t0 = now_ns();
    for (uint64_t k = 0; k < w->ops; k++) {
        uint64_t j = rng(&s) % w->live;
        uint64_t a = mine[j];
        if (w->nthreads > 1 && (k & 3) == 0) {
            /* hand a to the other thread (if it has not taken the last
             * one from that slot yet, that one comes back: ours, freed
             * here); then free what it handed us: a cross-thread free */
            uint64_t back = atomic_exchange_explicit(&to[k / 4 % MAIL], a, memory_order_acq_rel);
            if (back)
                lw_table_remove(back, &out);
            uint64_t mail = atomic_exchange_explicit(&in[k / 4 % MAIL], 0, memory_order_acq_rel);
            if (mail)
                lw_table_remove(mail, &out);
        } else {
            lw_table_remove(a, &out);
        }
        mine[j] = addr_of((uint64_t)w->id, next++);
        lw_table_insert(mine[j], &b, &stale);
    }
    w->elapsed = now_ns() - t0;
    /* Leave the table as we found it: the next run starts from the same
     * state (what is still in a mailbox, the caller removes). */
    for (uint64_t i = 0; i < w->live; i++)
        lw_table_remove(mine[i], &out);
    free(mine);
    return NULL;
}

static double run_threads(int nthreads, uint64_t live, uint64_t ops)
{
    pthread_t th[2];
    struct worker w[2];
    pthread_barrier_t bar;
    _Atomic uint64_t *mail = calloc(2 * MAIL, sizeof *mail);
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        /* address ranges 0 (one thread), 1 and 2 (two): never reused */
        w[i] = (struct worker){.id = i + (nthreads - 1), .slot = i, .nthreads = nthreads,
                               .ops = ops, .live = live, .bar = &bar, .mail = mail};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    uint64_t longest = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        if (w[i].elapsed > longest)
            longest = w[i].elapsed;
    }
    pthread_barrier_destroy(&bar);
    struct lw_block out;
    for (int i = 0; i < 2 * MAIL; i++)
        if (mail[i])
            lw_table_remove(mail[i], &out);
    free(mail);
    struct lw_table_stats st;
    lw_table_stats(&st);
    if (st.live != 0) {
        fprintf(stderr, "tablebench: %" PRIu64 " blocks left in the table after a run\n", st.live);
        exit(1);
    }
    return (double)ops * nthreads / ((double)longest / 1e9); /* pairs per second */
}

int main(int argc, char **argv)
{
    /* As in a program without a seccomp filter; TABLEBENCH_COUNTED=1
     * measures the counted gate instead. */
    const char *counted = getenv("TABLEBENCH_COUNTED");
    lw_core_membarrier_ok = !(counted && *counted == '1');
    if (!lw_table_init()) {
        fprintf(stderr, "tablebench: cannot map the table\n");
        return 1;
    }
    if (argc >= 3 && !strcmp(argv[1], "fill")) {
        fill(strtoull(argv[2], NULL, 10));
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "threads")) {
        uint64_t live = strtoull(argv[2], NULL, 10), ops = strtoull(argv[3], NULL, 10);
        /* The same table each time: LIVE blocks in all, held by one thread
         * or half by each of two, and every run leaves it empty. Two
         * rounds, alternating, the best of each kept: the first run also
         * grows the table's arrays, which stay. */
        double one = 0, two = 0;
        for (int round = 0; round < 2; round++) {
            double r1 = run_threads(1, live, ops), r2 = run_threads(2, live / 2, ops);
            one = r1 > one ? r1 : one;
            two = r2 > two ? r2 : two;
        }
        printf("table.pairs_per_s_1thread %.0f\n", one);
        printf("table.pairs_per_s_2threads %.0f\n", two);
        printf("table.scaling %.2f\n", two / one);
        struct lw_table_stats st;
        lw_table_stats(&st);
        printf("table.max_pause_us %.1f\n", (double)st.max_pause_ns / 1e3);
        printf("table.rehashes %" PRIu64 "\n", st.rehashes + st.purges);
        printf("table.fast_gates %d\n", st.fast_gates);
        return 0;
    }
    fprintf(stderr, "usage: tablebench fill N | tablebench threads LIVE OPS\n");
    return 2;
}
