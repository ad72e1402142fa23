/*
 * test_candidates.c - tools/candidates.c and the series loading of
 * tools/analysis.c on a fixture series of one process (5 snapshots, 1 s
 * apart): a steady leak, a large pool allocated before the series (flat),
 * a pool filled once during the series, a churning stack, a growing thread
 * count, allocator mappings (left out) and a stack that vanishes. Exact
 * scores, order and reasons.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "candidates.h"
#include "cli.h"
#include "fixture.h"
#include "reader.h"
#include "testutil.h"

#define MiB 1048576ull
#define NSNAP 5
#define PID 321u
#define START 1700000000000000000ull

static char err[1024];

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
}

/* Snapshot i of the series (seq i, i seconds after the first). */
static void series_snapshot(struct fx_buf *b, uint32_t i, bool ages, bool threshold)
{
    struct lw_rec_process p = {
        .pid = PID, .ppid = 1, .time_ns = START + (i + 1) * 1000000000ull,
        .start_time_ns = START, .mono_ns = 5000000000ull + i * 1000000000ull, .seq = i,
        .trigger = threshold ? LW_TRIGGER_HEAP_THRESHOLD : LW_TRIGGER_SIGNAL, .max_depth = 64,
        .page_size = 4096,
    };
    static const uint64_t churn[NSNAP] = {1000, 3000, 2000, 4000, 3000};
    struct lw_rec_totals t;
    memset(&t, 0, sizeof t);
    fx_init(b, LW_SNAP_MAJOR, LW_SNAP_MINOR);
    fx_process(b, p, "/bin/svc", "svc", 4);
    /* heap: leak (1) + pool (2) + churn (3) + vanishing (6) + filled pool (7) */
    uint64_t leak = (i + 1) * MiB, fill = i ? 50 * MiB : 0, van = i < 3 ? 500 : 0;
    t.heap_inuse_bytes = leak + 100 * MiB + churn[i] + van + fill;
    t.heap_inuse_objects = 16 * (i + 1) + 1 + 1 + (i < 3) + (i ? 1 : 0);
    fx_totals(b, &t);
    uint64_t f1[] = {0x401000}, f2[] = {0x402000}, f3[] = {0x403000}, f4[] = {0x404000};
    /* 1: 1 MiB more every second in 16 blocks, and one 4 KiB block freed */
    fx_stack(b, 1, LW_KIND_HEAP, 0, leak + i * 4096, 16 * (i + 1) + i, i * 4096, i, f1, 1);
    fx_stack(b, 2, LW_KIND_HEAP, 0, 100 * MiB, 1, 0, 0, f2, 1);
    fx_stack(b, 3, LW_KIND_HEAP, 0, 10000 + churn[i], 10 + i, 10000, 9 + i, f3, 1);
    /* 4: two threads more every second, 8 MiB stacks, none exit */
    fx_stack(b, 4, LW_KIND_THREAD, 0, 2 * i * 8 * MiB, 2 * i, 0, 0, f4, 1);
    fx_stack(b, 5, LW_KIND_ALLOCATOR, 0, (i + 1) * 64 * MiB, i + 1, 0, 0, f4, 1);
    if (i < 3)
        fx_stack(b, 6, LW_KIND_HEAP, 0, 500, 1, 0, 0, f3, 1);
    fx_stack(b, 7, LW_KIND_HEAP, 0, fill, i ? 1 : 0, 0, 0, f2, 1);
    if (ages && i == NSNAP - 1) {
        struct lw_age_bucket bk[] = {{0, 3 * MiB, 48}, {2000000000ull, MiB, 16},
                                     {4000000000ull, MiB, 16}};
        fx_age(b, 1, bk, 3);
    }
    for (uint32_t k = 0; k < 2 * i; k++) {
        struct lw_rec_thread th = {4, 1000 + k, 0, 8 * MiB, k ? 65536 : 8192, 0};
        fx_thread(b, &th);
    }
    if (threshold) {
        struct lw_rec_trigger tr = {LW_TRIGGER_HEAP_THRESHOLD, LW_WATCH_HEAP, 150 * MiB,
                                    t.heap_inuse_bytes, 0, {0, 0}};
        fx_trigger(b, &tr);
    }
    fx_end(b);
}

/* Write the series into dir; returns the selection of the directory. */
static void write_series(struct lw_selection *sel, bool ages)
{
    for (uint32_t i = 0; i < NSNAP; i++) {
        struct fx_buf b;
        char name[64];
        series_snapshot(&b, i, ages, false);
        snprintf(name, sizeof name, "svc.%u.%06u.signal.lwsnap", PID, i);
        char *path = lwt_path(dir, name);
        cr_assert(fx_write_file(&b, path));
        free(path);
        fx_free(&b);
    }
    char *paths[] = {dir};
    cr_assert_eq(lw_analysis_select(paths, 1, 0, NULL, sel, err, sizeof err), LW_EXIT_OK, "%s",
                 err);
}

static const char *namer(void *arg, const struct lw_snap_stack *st)
{
    (void)arg;
    return st->id == 4 ? "reader_start" : NULL;
}

Test(candidates, series_loads_in_seq_order, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct lw_selection sel;
    struct lw_series s;
    write_series(&sel, true);
    cr_assert_eq(sel.nseries, NSNAP);
    cr_assert_eq(lw_analysis_load_series(&sel, &s, err, sizeof err), LW_EXIT_OK, "%s", err);
    cr_assert_eq(s.npoints, NSNAP);
    for (uint32_t i = 0; i < NSNAP; i++) {
        cr_assert_eq(s.points[i].seq, i);
        cr_assert(near(s.points[i].t, (double)i), "t[%u] = %f", i, s.points[i].t);
        cr_assert_eq(s.points[i].threads_live, 2 * i);
    }
    cr_assert_eq(s.points[4].heap_inuse_bytes, 5 * MiB + 100 * MiB + 3000 + 50 * MiB);
    cr_assert_eq(s.last->proc.seq, 4);
    cr_assert_eq(s.nstacks, 7);
    const struct lw_series_stack *v = lw_analysis_series_find(&s, 6);
    cr_assert_not_null(v);
    cr_assert(v->vanished);
    cr_assert_eq(v->bytes[2], 500);
    cr_assert_eq(v->bytes[3], 0);
    cr_assert_eq(s.nkept, 3); /* seq 0-2 hold stack 6 */
    cr_assert_eq(v->stack->alloc_bytes, 500);
    const struct lw_series_stack *l = lw_analysis_series_find(&s, 1);
    cr_assert_eq(l->bytes[0], MiB);
    cr_assert_eq(l->objects[4], 80);
    cr_assert_eq(l->oldest_age_ns[4], 4000000000ull);
    cr_assert_eq(l->first_free_objects, 0);
    /* every id resolves in the ranked list; the vanished one last with 0 */
    size_t n;
    struct lw_ranked *r = lw_analysis_rank_series(&s, &n);
    cr_assert_eq(n, 7);
    cr_assert_eq(r[6].stack->id, 6);
    cr_assert_eq(r[6].inuse_bytes, 0);
    for (size_t i = 0; i < n; i++)
        if (r[i].stack->kind == LW_KIND_THREAD) {
            cr_assert_eq(r[i].inuse_bytes, 0); /* no heap bytes */
            cr_assert_eq(r[i].inuse_objects, 8);
        }
    free(r);
    lw_analysis_series_free(&s);
    lw_analysis_selection_free(&sel);
}

Test(candidates, ranked_by_growth_with_exact_scores, .init = lwt_dir_setup,
     .fini = lwt_dir_teardown)
{
    struct lw_selection sel;
    struct lw_series s;
    write_series(&sel, true);
    cr_assert_eq(lw_analysis_load_series(&sel, &s, err, sizeof err), LW_EXIT_OK, "%s", err);
    size_t n;
    struct lw_candidate *c = lw_candidates_rank(&s, namer, NULL, &n);
    /* the flat pool (2), the allocator's mappings (5) and the vanished
     * stack (6) are no candidates */
    cr_assert_eq(n, 4);
    double total = 64.0 * MiB + 4.0 * MiB + 50.0 * MiB + 2000;
    uint32_t want_ids[] = {4, 1, 7, 3};
    double want_score[] = {64.0 * MiB / total, 4.0 * MiB / total, 50.0 * MiB / total / 16,
                           2000 / total / 4 / 2};
    int64_t want_growth[] = {64 * MiB, 4 * MiB, 50 * MiB, 2000};
    double want_slope[] = {16.0 * MiB, 1.0 * MiB, 10.0 * MiB, 500};
    uint32_t want_grown[] = {4, 4, 1, 2};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(c[i].stack, want_ids[i], "rank %zu is stack %u", i, c[i].stack);
        cr_assert(near(c[i].score, want_score[i]), "stack %u score %.12f, expected %.12f", c[i].stack, c[i].score,
                  want_score[i]);
        cr_assert_eq(c[i].growth_bytes, want_growth[i]);
        cr_assert(near(c[i].growth_bytes_per_s, want_slope[i]), "stack %u slope %f", c[i].stack, c[i].growth_bytes_per_s);
        cr_assert_eq(c[i].intervals_grown, want_grown[i]);
        cr_assert_eq(c[i].intervals, 4);
    }
    cr_assert_str_eq(c[0].reason, "+8 threads from reader_start in 4 of 4 intervals, none exited");
    cr_assert_eq(c[0].growth_threads, 8);
    cr_assert_str_eq(c[1].reason,
                     "+4.0 MiB in 4 of 4 intervals, 1.0 MiB/s, 3% of all growth, never fell, "
                     "keeps 1.0 MiB from before the series while freeing 4 younger blocks, "
                     "oldest block >= 4.0 s");
    cr_assert_eq(c[1].kept_bytes, MiB);
    cr_assert_eq(c[1].freed_objects, 4);
    cr_assert_str_eq(c[2].reason,
                     "+50.0 MiB in 1 of 4 intervals, 10.0 MiB/s, 42% of all growth, never fell");
    cr_assert_str_eq(c[3].reason, "+2.0 KiB in 2 of 4 intervals, 500 B/s, 0% of all growth, fell in 2");
    cr_assert_not(c[3].never_fell);
    free(c);
    lw_analysis_series_free(&s);
    lw_analysis_selection_free(&sel);
}

Test(candidates, a_steady_leak_beats_a_bigger_step, .init = lwt_dir_setup,
     .fini = lwt_dir_teardown)
{
    /* Without the thread stack's share the leak leads; the pool filled in
     * one interval is 12.5 times larger and still ranks below it. */
    struct lw_selection sel;
    struct lw_series s;
    write_series(&sel, false);
    cr_assert_eq(lw_analysis_load_series(&sel, &s, err, sizeof err), LW_EXIT_OK, "%s", err);
    size_t n;
    struct lw_candidate *c = lw_candidates_rank(&s, NULL, NULL, &n);
    size_t leak = n, pool = n;
    for (size_t i = 0; i < n; i++) {
        if (c[i].stack == 1)
            leak = i;
        if (c[i].stack == 7)
            pool = i;
        cr_assert_neq(c[i].stack, 2, "the flat pool is a candidate");
    }
    cr_assert_lt(leak, pool);
    /* no AGE records: no age in the reason */
    cr_assert_str_eq(c[leak].reason, "+4.0 MiB in 4 of 4 intervals, 1.0 MiB/s, 3% of all growth, "
                                     "never fell");
    cr_assert_str_eq(c[0].reason, "+8 threads from stack 4 in 4 of 4 intervals, none exited");
    free(c);
    lw_analysis_series_free(&s);
    lw_analysis_selection_free(&sel);
}

Test(candidates, one_snapshot_has_none, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct fx_buf b;
    series_snapshot(&b, 4, true, false);
    char *path = lwt_path(dir, "one.lwsnap");
    cr_assert(fx_write_file(&b, path));
    fx_free(&b);
    struct lw_selection sel;
    struct lw_series s;
    char *paths[] = {path};
    cr_assert_eq(lw_analysis_select(paths, 1, 0, NULL, &sel, err, sizeof err), LW_EXIT_OK);
    cr_assert_eq(lw_analysis_load_series(&sel, &s, err, sizeof err), LW_EXIT_OK, "%s", err);
    cr_assert_eq(s.npoints, 1);
    size_t n = 99;
    cr_assert_null(lw_candidates_rank(&s, NULL, NULL, &n));
    cr_assert_eq(n, 0);
    lw_analysis_series_free(&s);
    lw_analysis_selection_free(&sel);
    free(path);
}

Test(candidates, files_in_any_order_and_duplicates, .init = lwt_dir_setup,
     .fini = lwt_dir_teardown)
{
    struct lw_selection sel;
    write_series(&sel, false);
    lw_analysis_selection_free(&sel);
    char *p3 = lwt_path(dir, "svc.321.000003.signal.lwsnap");
    char *p0 = lwt_path(dir, "svc.321.000000.signal.lwsnap");
    char *p1 = lwt_path(dir, "svc.321.000001.signal.lwsnap");
    char *paths[] = {p3, p0, p1};
    cr_assert_eq(lw_analysis_select(paths, 3, 0, NULL, &sel, err, sizeof err), LW_EXIT_OK);
    cr_assert_eq(sel.nseries, 3);
    cr_assert_str_eq(sel.series[0], p0);
    cr_assert_str_eq(sel.series[2], p3);
    cr_assert_str_eq(sel.path, p3);
    lw_analysis_selection_free(&sel);
    char *dup[] = {p1, p0, p1};
    cr_assert_eq(lw_analysis_select(dup, 3, 0, NULL, &sel, err, sizeof err), LW_EXIT_INPUT);
    cr_assert(strstr(err, "are both snapshot #1 of pid 321; give each once"), "%s", err);
    free(p0);
    free(p1);
    free(p3);
}

Test(candidates, a_stack_changing_kind_is_refused, .init = lwt_dir_setup,
     .fini = lwt_dir_teardown)
{
    struct lw_selection sel;
    struct lw_series s;
    write_series(&sel, false);
    /* rewrite seq 1 with stack 2 as an mmap stack */
    struct fx_buf b;
    struct lw_rec_process p = {.pid = PID, .start_time_ns = START, .seq = 1, .mono_ns = 1};
    struct lw_rec_totals t = {0};
    fx_init(&b, LW_SNAP_MAJOR, LW_SNAP_MINOR);
    fx_process(&b, p, "/bin/svc", "", 0);
    fx_totals(&b, &t);
    fx_stack(&b, 2, LW_KIND_MMAP, 0, 4096, 1, 0, 0, NULL, 0);
    fx_end(&b);
    cr_assert(fx_write_file(&b, sel.series[1]));
    fx_free(&b);
    cr_assert_eq(lw_analysis_load_series(&sel, &s, err, sizeof err), LW_EXIT_INPUT);
    cr_assert(strstr(err, "svc.321.000001.signal.lwsnap: stack 2 is a mmap stack here and a heap "
                          "stack in "),
              "%s", err);
    lw_analysis_selection_free(&sel);
}

/* The leakwatch binary on the series: golden text and JSON; with --top 1
 * every stack id named by a candidate or by "threads" is still listed. */
static void report_of(const char *fmt, const char *top, struct lwt_result *r)
{
    const char *argv[] = {lwt_bin(), "report", "--format", fmt, "--top", top, dir, NULL};
    cr_assert_eq(lwt_run(argv, NULL, r), 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
}

Test(candidates, golden_series_reports, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct lw_selection sel;
    write_series(&sel, true);
    lw_analysis_selection_free(&sel);
    struct lwt_result r;
    report_of("text", "3", &r);
    lwt_golden("series.txt", r.out);
    lwt_result_free(&r);
    report_of("json", "1", &r);
    lwt_golden("series.json", r.out);
    /* listed: stack 5 (the top 1), 4 (thread), 1, 7, 3 (candidates); not 2, 6 */
    for (int id = 1; id <= 7; id++) {
        char key[32];
        snprintf(key, sizeof key, "\"id\": %d,", id);
        bool want = id != 2 && id != 6;
        cr_assert_eq(strstr(r.out, key) != NULL, want, "stack %d listed: %d", id, !want);
    }
    lwt_result_free(&r);
}

/* One snapshot (a heap threshold one): the age profile instead of
 * candidates, the threshold in the header, resident thread stacks. */
Test(candidates, golden_single_snapshot_report, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct fx_buf b;
    series_snapshot(&b, 4, true, true);
    char *path = lwt_path(dir, "svc.321.000004.heap-threshold.lwsnap");
    cr_assert(fx_write_file(&b, path));
    fx_free(&b);
    struct lwt_result r;
    const char *text[] = {lwt_bin(), "report", "--top", "2", path, NULL};
    cr_assert_eq(lwt_run(text, NULL, &r), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    lwt_golden("single.txt", r.out);
    cr_assert(strstr(r.out, "\nAge of the live heap blocks\n"
                            "  0.0 s to 2.0 s old            3.0 MiB in 48 blocks\n"
                            "  2.0 s to 4.0 s old            1.0 MiB in 16 blocks\n"
                            "  4.0 s old or more             1.0 MiB in 16 blocks\n"),
              "%s", r.out);
    lwt_result_free(&r);
    const char *json[] = {lwt_bin(), "report", "--format", "json", "--top", "2", path, NULL};
    cr_assert_eq(lwt_run(json, NULL, &r), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    lwt_golden("single.json", r.out);
    cr_assert(strstr(r.out, "\"leak_candidates\": [],"), "%s", r.out);
    cr_assert(strstr(r.out, "\"threshold\": {\"source\": \"heap\", \"threshold_bytes\": 157286400"),
              "%s", r.out);
    /* 8 threads, 7 measured at 64 KiB and one at 8 KiB */
    cr_assert(strstr(r.out, "\"stack_bytes\": 67108864, \"resident_bytes\": 466944}"), "%s",
              r.out);
    lwt_result_free(&r);
    free(path);
}

/* Two snapshots where nothing grew: no candidates, and the text says so. */
Test(candidates, a_flat_series_has_none, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    for (uint32_t seq = 0; seq < 2; seq++) {
        struct fx_buf b;
        struct lw_rec_process p = {.pid = 77, .start_time_ns = START, .time_ns = START + seq + 1,
                                   .mono_ns = 10 + seq * 1000000000ull, .seq = seq,
                                   .trigger = LW_TRIGGER_SIGNAL, .max_depth = 64};
        struct lw_rec_totals t = {.heap_inuse_bytes = 4096, .heap_inuse_objects = 1,
                                  .heap_alloc_bytes = 4096 + seq * 100,
                                  .heap_alloc_objects = 1 + seq, .heap_free_bytes = seq * 100,
                                  .heap_free_objects = seq};
        uint64_t fr[] = {0x401000};
        fx_init(&b, LW_SNAP_MAJOR, LW_SNAP_MINOR);
        fx_process(&b, p, "/bin/flat", "", 0);
        fx_totals(&b, &t);
        fx_stack(&b, 1, LW_KIND_HEAP, 0, 4096, 1, 0, 0, fr, 1);
        fx_stack(&b, 2, LW_KIND_HEAP, 0, seq * 100, seq, seq * 100, seq, fr, 1); /* churn */
        fx_end(&b);
        char name[64];
        snprintf(name, sizeof name, "flat.77.%06u.signal.lwsnap", seq);
        char *path = lwt_path(dir, name);
        cr_assert(fx_write_file(&b, path));
        free(path);
        fx_free(&b);
    }
    struct lwt_result r;
    const char *argv[] = {lwt_bin(), "report", dir, NULL};
    cr_assert_eq(lwt_run(argv, NULL, &r), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\nGrowth over 2 snapshots (#0 to #1, 1.0 s): heap in use 4.0 KiB -> "
                            "4.0 KiB\n  No part of memory grew since snapshot #0.\n"
                            "  no call stack grew: no leak candidates\n"),
              "%s", r.out);
    lwt_result_free(&r);
}
