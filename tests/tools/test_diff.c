/*
 * test_diff.c - tools/diff.c: two snapshots of one process matched by
 * stack id (grown, shrunk, new, vanished, unchanged, threads); two
 * processes matched by frames: the same build of a module at another load
 * address matches by module-relative address, unsymbolized frames of
 * another build match by position only; the binary's JSON and text
 * (golden) and its usage errors.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diff.h"
#include "fixture.h"
#include "reader.h"
#include "testutil.h"

static char err[LW_READER_ERRLEN];

/* One process (pid 50, started at 1000), snapshot seq with these stacks. */
static struct lw_snapshot *one_process(uint32_t seq, bool later, struct fx_buf *b)
{
    struct lw_rec_process p = {.pid = 50, .start_time_ns = 1000, .time_ns = 2000 + seq,
                               .seq = seq, .trigger = LW_TRIGGER_SIGNAL, .max_depth = 64};
    struct lw_rec_totals t = {0};
    uint64_t f[] = {0x401000, 0x402000, 0x403000, 0x404000, 0x405000, 0x406000};
    fx_init(b, LW_SNAP_MAJOR, LW_SNAP_MINOR);
    fx_process(b, p, "/bin/p", "", 0);
    t.heap_inuse_bytes = later ? 5000 + 100 + 300 + 10 : 1000 + 900 + 10 + 40;
    t.heap_inuse_objects = later ? 5 + 1 + 3 + 1 : 1 + 9 + 1 + 1;
    fx_totals(b, &t);
    fx_stack(b, 1, LW_KIND_HEAP, 0, later ? 5000 : 1000, later ? 5 : 1, 0, 0, f, 1); /* grows */
    fx_stack(b, 2, LW_KIND_HEAP, 0, 1000, 10, later ? 900 : 100, later ? 9 : 1, f + 1, 1);
    if (later)
        fx_stack(b, 3, LW_KIND_HEAP, 0, 300, 3, 0, 0, f + 2, 1); /* new */
    fx_stack(b, 4, LW_KIND_HEAP, 0, 10, 1, 0, 0, f + 3, 1);      /* unchanged */
    fx_stack(b, 5, LW_KIND_THREAD, 0, (later ? 6 : 2) * 8192, later ? 6 : 2, 0, 0, f + 4, 1);
    if (!later)
        fx_stack(b, 6, LW_KIND_HEAP, 0, 40, 1, 0, 0, f + 5, 1); /* vanishes */
    fx_end(b);
    struct lw_snapshot *s = lw_reader_parse(b->data, b->len, "x", err);
    cr_assert_not_null(s, "%s", err);
    return s;
}

Test(diff, one_process_by_stack_id)
{
    struct fx_buf b1, b2;
    struct lw_snapshot *base = one_process(0, false, &b1), *new = one_process(4, true, &b2);
    struct lw_diff d;
    lw_diff_compute(base, new, NULL, NULL, &d);
    cr_assert(d.by_id);
    cr_assert_eq(d.nentries, 5);
    /* by delta bytes: 1 (+4000), 3 (+300, new), 5 (0 B, +4 threads), 6 (-40,
     * vanished), 2 (-800) */
    uint32_t want_id[] = {1, 3, 5, 6, 2};
    int64_t want_db[] = {4000, 300, 0, -40, -800};
    int64_t want_do[] = {4, 3, 4, -1, -8};
    enum lw_diff_status want_st[] = {LW_DIFF_GROWN, LW_DIFF_NEW, LW_DIFF_GROWN, LW_DIFF_VANISHED,
                                     LW_DIFF_SHRUNK};
    for (size_t i = 0; i < d.nentries; i++) {
        const struct lw_diff_entry *e = &d.entries[i];
        const struct lw_snap_stack *st = e->new ? e->new : e->base;
        cr_assert_eq(st->id, want_id[i], "entry %zu is stack %u", i, st->id);
        cr_assert_eq(e->delta_inuse_bytes, want_db[i], "stack %u", st->id);
        cr_assert_eq(e->delta_inuse_objects, want_do[i], "stack %u", st->id);
        cr_assert_eq(e->status, want_st[i], "stack %u", st->id);
    }
    cr_assert_eq(d.entries[0].base_inuse_bytes, 1000);
    cr_assert_eq(d.entries[0].new_inuse_bytes, 5000);
    cr_assert_eq(d.entries[4].base_inuse_objects, 9);
    cr_assert_eq(d.entries[4].new_inuse_objects, 1);
    cr_assert_eq(d.grown, 2);
    cr_assert_eq(d.shrunk, 1);
    cr_assert_eq(d.added, 1);
    cr_assert_eq(d.vanished, 1);
    cr_assert_eq(d.unchanged, 1);
    lw_diff_free(&d);
    lw_reader_free(base);
    lw_reader_free(new);
    fx_free(&b1);
    fx_free(&b2);
}

/* A process of the same program: module "app" (build-id AA or BB) at
 * `bias`, module "libz" without a build-id at `zbias`. Stack 1 calls
 * from app+0x1100 and app+0x1200, stack 2 from libz+0x500. */
static struct lw_snapshot *run_of(uint32_t pid, uint64_t bias, uint64_t zbias, uint8_t bid,
                                  uint64_t s1_bytes, struct fx_buf *b)
{
    struct lw_rec_process p = {.pid = pid, .start_time_ns = pid * 1000ull, .time_ns = 9,
                               .trigger = LW_TRIGGER_EXIT, .max_depth = 64};
    struct lw_rec_totals t = {.heap_inuse_bytes = s1_bytes + 64, .heap_inuse_objects = 2};
    fx_init(b, LW_SNAP_MAJOR, LW_SNAP_MINOR);
    fx_process(b, p, "/nonexistent/app", "", 0);
    fx_totals(b, &t);
    struct lw_rec_segment seg = {bias + 0x1000, 0x2000, 0x1000, 5, 0};
    uint8_t id[4] = {bid, bid, bid, bid};
    fx_module(b, bias, LW_MOD_MAIN, &seg, 1, "/nonexistent/app", id, 4);
    struct lw_rec_segment zseg = {zbias, 0x1000, 0, 5, 0};
    fx_module(b, zbias, 0, &zseg, 1, "/nonexistent/libz.so", NULL, 0);
    uint64_t f1[] = {bias + 0x1100, bias + 0x1200}, f2[] = {zbias + 0x500};
    fx_stack(b, 1, LW_KIND_HEAP, 0, s1_bytes, 1, 0, 0, f1, 2);
    fx_stack(b, 2, LW_KIND_HEAP, 0, 64, 1, 0, 0, f2, 1);
    fx_end(b);
    struct lw_snapshot *s = lw_reader_parse(b->data, b->len, "run", err);
    cr_assert_not_null(s, "%s", err);
    return s;
}

static void cross(uint8_t bid2, struct lw_diff *d, struct lw_snapshot **a, struct lw_snapshot **c,
                  struct fx_buf *b1, struct fx_buf *b2)
{
    struct lw_sym_options q = {.quiet = true};
    *a = run_of(100, 0x555500000000, 0x7f0000000000, 0xaa, 1000, b1);
    *c = run_of(200, 0x566600000000, 0x7f1100000000, bid2, 3000, b2);
    lw_sym_t *s1 = lw_sym_new(*a, &q), *s2 = lw_sym_new(*c, &q);
    lw_diff_compute(*a, *c, s1, s2, d);
    lw_sym_free(s1);
    lw_sym_free(s2);
}

Test(diff, two_runs_of_one_build_match_by_module_offset)
{
    struct fx_buf b1, b2;
    struct lw_snapshot *a, *c;
    struct lw_diff d;
    cross(0xaa, &d, &a, &c, &b1, &b2);
    cr_assert_not(d.by_id);
    cr_assert_eq(d.nentries, 1); /* stack 1 grew; libz's stack matched and unchanged */
    cr_assert_eq(d.entries[0].status, LW_DIFF_GROWN);
    cr_assert_eq(d.entries[0].delta_inuse_bytes, 2000);
    cr_assert_eq(d.entries[0].base->id, 1);
    cr_assert_eq(d.entries[0].new->id, 1);
    cr_assert_eq(d.unchanged, 1);
    lw_diff_free(&d);
    lw_reader_free(a);
    lw_reader_free(c);
    fx_free(&b1);
    fx_free(&b2);
}

Test(diff, another_build_without_symbols_matches_by_position)
{
    /* app was rebuilt (build-id BB) and cannot be symbolized: its offsets
     * say nothing about the old build, so its frames match any frame of
     * app (stack 1 grew by 2000); libz (no build-id on either side) still
     * matches by name and offset. */
    struct fx_buf b1, b2;
    struct lw_snapshot *a, *c;
    struct lw_diff d;
    cross(0xbb, &d, &a, &c, &b1, &b2);
    cr_assert_eq(d.nentries, 1);
    cr_assert_eq(d.entries[0].status, LW_DIFF_GROWN);
    cr_assert_eq(d.entries[0].delta_inuse_bytes, 2000);
    cr_assert_eq(d.entries[0].nbase, 1);
    cr_assert_eq(d.unchanged, 1);
    lw_diff_free(&d);
    lw_reader_free(a);
    lw_reader_free(c);
    fx_free(&b1);
    fx_free(&b2);
}

static void leakwatch(struct lwt_result *r, const char *const *args)
{
    const char *argv[16] = {lwt_bin()};
    size_t n = 1;
    for (; *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    cr_assert_eq(lwt_run(argv, NULL, r), 0);
}

Test(diff, binary_golden_and_errors, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct fx_buf b1, b2;
    lw_reader_free(one_process(0, false, &b1));
    lw_reader_free(one_process(4, true, &b2));
    char *p1 = lwt_path(dir, "p.50.000000.signal.lwsnap");
    char *p2 = lwt_path(dir, "p.50.000004.signal.lwsnap");
    cr_assert(fx_write_file(&b1, p1));
    cr_assert(fx_write_file(&b2, p2));
    struct lwt_result r;
    leakwatch(&r, (const char *[]){"diff", p1, p2, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    lwt_golden("diff.txt", r.out);
    lwt_result_free(&r);
    leakwatch(&r, (const char *[]){"diff", "--format", "json", p1, p2, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    lwt_golden("diff.json", r.out);
    lwt_result_free(&r);
    /* a directory means its last snapshot: p2 against itself changes nothing */
    leakwatch(&r, (const char *[]){"diff", dir, p2, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "call stacks: 0 grew, 0 shrank, 0 new, 0 vanished, 5 unchanged"), "%s",
              r.out);
    cr_assert(strstr(r.out, "\nNo call stack changed.\n"), "%s", r.out);
    lwt_result_free(&r);
    leakwatch(&r, (const char *[]){"diff", p1, NULL});
    cr_assert_eq(r.status, LW_EXIT_USAGE);
    cr_assert_str_eq(r.err, "leakwatch: diff: give two snapshots, BASE and NEW (see leakwatch "
                            "diff --help)\n");
    lwt_result_free(&r);
    leakwatch(&r, (const char *[]){"diff", "--format", "xml", p1, p2, NULL});
    cr_assert_eq(r.status, LW_EXIT_USAGE);
    lwt_result_free(&r);
    char *missing = lwt_path(dir, "nope.lwsnap");
    leakwatch(&r, (const char *[]){"diff", p1, missing, NULL});
    cr_assert_eq(r.status, LW_EXIT_INPUT);
    cr_assert(strstr(r.err, "nope.lwsnap: No such file or directory\n"), "%s", r.err);
    lwt_result_free(&r);
    free(missing);
    free(p1);
    free(p2);
    fx_free(&b1);
    fx_free(&b2);
}
