/*
 * test_analysis.c - tools/analysis.c: ranking by bytes in use, and the
 * choice of snapshot among files and directories (root flag, parent rule,
 * start-time tiebreak, exec images, --pid, mixed processes, bad files).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "cli.h"
#include "fixture.h"
#include "reader.h"
#include "testutil.h"

static char err[1024];


/* Write a minimal snapshot into dir; returns its path (malloc'd). */
static char *put(const char *name, uint32_t pid, uint32_t ppid, uint32_t seq, uint32_t flags,
                 uint64_t start, const char *exe)
{
    struct fx_buf b;
    fx_minimal(&b, pid, ppid, seq, flags, start, exe);
    char *path = lwt_path(dir, name);
    cr_assert(fx_write_file(&b, path));
    fx_free(&b);
    return path;
}

static int select_dir(uint32_t pid, struct lw_selection *sel)
{
    char *paths[] = {dir};
    return lw_analysis_select(paths, 1, pid, NULL, sel, err, sizeof err);
}

static const char *base(const char *p)
{
    return strrchr(p, '/') + 1;
}

Test(analysis, rank_by_inuse_bytes)
{
    struct fx_buf b;
    char rerr[LW_READER_ERRLEN];
    fx_standard(&b);
    struct lw_snapshot *s = lw_reader_parse(b.data, b.len, "x", rerr);
    cr_assert_not_null(s, "%s", rerr);
    size_t n = 0;
    struct lw_ranked *r = lw_analysis_rank(s, &n);
    cr_assert_eq(n, 7);
    uint32_t want_ids[] = {1, 3, 4, 7, 2, 6, 5};
    uint64_t want_bytes[] = {4194304, 2097152, 1048576, 3000, 1000, 100, 0};
    uint64_t want_objs[] = {4, 1, 1, 3, 10, 1, 0};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(r[i].stack->id, want_ids[i], "rank %zu: id %u", i, r[i].stack->id);
        cr_assert_eq(r[i].inuse_bytes, want_bytes[i]);
        cr_assert_eq(r[i].inuse_objects, want_objs[i]);
    }
    free(r);
    lw_reader_free(s);
    fx_free(&b);
}

Test(analysis, rank_ties_and_overfreed_stacks)
{
    struct fx_buf b;
    char rerr[LW_READER_ERRLEN];
    struct lw_rec_process p = {.pid = 1};
    struct lw_rec_totals t = {0};
    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_stack(&b, 9, LW_KIND_HEAP, 0, 100, 1, 0, 0, NULL, 0);
    fx_stack(&b, 4, LW_KIND_HEAP, 0, 100, 2, 0, 0, NULL, 0);    /* more objects first */
    fx_stack(&b, 2, LW_KIND_HEAP, 0, 100, 1, 0, 0, NULL, 0);    /* same: lower id first */
    fx_stack(&b, 3, LW_KIND_HEAP, 0, 10, 1, 50, 3, NULL, 0);    /* freed more than allocated */
    fx_end(&b);
    struct lw_snapshot *s = lw_reader_parse(b.data, b.len, "x", rerr);
    cr_assert_not_null(s, "%s", rerr);
    size_t n;
    struct lw_ranked *r = lw_analysis_rank(s, &n);
    cr_assert_eq(r[0].stack->id, 4);
    cr_assert_eq(r[1].stack->id, 2);
    cr_assert_eq(r[2].stack->id, 9);
    cr_assert_eq(r[3].stack->id, 3);
    cr_assert_eq(r[3].inuse_bytes, 0);
    cr_assert_eq(r[3].inuse_objects, 0);
    free(r);
    lw_reader_free(s);
    fx_free(&b);
}

Test(analysis, dir_root_flag_wins_last_seq, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    free(put("parent.100.000000.signal.lwsnap", 100, 1, 0, 0, 1000, "/bin/parent"));
    free(put("app.200.000000.signal.lwsnap", 200, 100, 0, LW_PROC_ROOT, 2000, "/bin/app"));
    free(put("app.200.000002.exit.lwsnap", 200, 100, 2, LW_PROC_ROOT, 2000, "/bin/app"));
    free(put("app.200.000001.signal.lwsnap", 200, 100, 1, LW_PROC_ROOT, 2000, "/bin/app"));
    free(put("kid.300.000000.exit.lwsnap", 300, 200, 0, LW_PROC_FORKED, 3000, "/bin/app"));
    struct lw_selection sel;
    cr_assert_eq(select_dir(0, &sel), LW_EXIT_OK, "%s", err);
    cr_assert_str_eq(base(sel.path), "app.200.000002.exit.lwsnap");
    cr_assert_eq(sel.chosen.pid, 200);
    cr_assert_eq(sel.chosen.nsnaps, 3);
    cr_assert_str_eq(sel.chosen.exe, "/bin/app");
    cr_assert_eq(sel.nothers, 2);
    cr_assert_eq(sel.others[0].pid, 100); /* by start time */
    cr_assert_eq(sel.others[1].pid, 300);
    cr_assert_eq(sel.others[1].ppid, 200);
    cr_assert_str_eq(base(sel.others[1].last), "kid.300.000000.exit.lwsnap");
    cr_assert_str_eq(sel.dir, dir);
    /* the series is the chosen process's snapshots only, by seq */
    cr_assert_eq(sel.nseries, 3);
    cr_assert_str_eq(base(sel.series[0]), "app.200.000000.signal.lwsnap");
    cr_assert_str_eq(base(sel.series[1]), "app.200.000001.signal.lwsnap");
    cr_assert_str_eq(base(sel.series[2]), "app.200.000002.exit.lwsnap");
    lw_analysis_selection_free(&sel);
}

Test(analysis, dir_without_root_takes_the_orphan, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    /* 300's parent 200 is here; 200's parent 1 is not. 200 started after
     * 300 would be odd, but the parent rule decides, not the start time. */
    free(put("a.300.000000.exit.lwsnap", 300, 200, 0, 0, 1000, "/bin/kid"));
    free(put("b.200.000000.exit.lwsnap", 200, 1, 0, 0, 2000, "/bin/top"));
    struct lw_selection sel;
    cr_assert_eq(select_dir(0, &sel), LW_EXIT_OK, "%s", err);
    cr_assert_eq(sel.chosen.pid, 200);
    lw_analysis_selection_free(&sel);
}

Test(analysis, dir_orphans_tiebreak_on_start_time, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    free(put("x.500.000000.exit.lwsnap", 500, 1, 0, 0, 5000, "/bin/late"));
    free(put("y.400.000000.exit.lwsnap", 400, 2, 0, 0, 4000, "/bin/early"));
    struct lw_selection sel;
    cr_assert_eq(select_dir(0, &sel), LW_EXIT_OK, "%s", err);
    cr_assert_eq(sel.chosen.pid, 400);
    lw_analysis_selection_free(&sel);
}

Test(analysis, exec_image_of_the_root_is_preferred, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    /* `leakwatch run -- sh -c 'exec prog'`: same pid, two images. */
    free(put("sh.77.000000.exit.lwsnap", 77, 1, 0, LW_PROC_ROOT, 1000, "/bin/sh"));
    free(put("prog.77.000000.exit.lwsnap", 77, 1, 0, LW_PROC_ROOT, 1500, "/bin/prog"));
    struct lw_selection sel;
    cr_assert_eq(select_dir(0, &sel), LW_EXIT_OK, "%s", err);
    cr_assert_str_eq(sel.chosen.exe, "/bin/prog");
    cr_assert_eq(sel.nothers, 1);
    cr_assert_eq(sel.nseries, 1); /* the exec'd image is a process of its own */
    cr_assert(strstr(sel.series[0], "prog.77."));
    cr_assert_str_eq(sel.others[0].exe, "/bin/sh");
    lw_analysis_selection_free(&sel);
}

Test(analysis, pid_selects, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    free(put("a.10.000000.exit.lwsnap", 10, 1, 0, LW_PROC_ROOT, 1000, "/bin/a"));
    free(put("b.11.000004.exit.lwsnap", 11, 10, 4, 0, 1100, "/bin/b"));
    free(put("b.11.000001.exit.lwsnap", 11, 10, 1, 0, 1100, "/bin/b"));
    struct lw_selection sel;
    cr_assert_eq(select_dir(11, &sel), LW_EXIT_OK, "%s", err);
    cr_assert_str_eq(base(sel.path), "b.11.000004.exit.lwsnap");
    lw_analysis_selection_free(&sel);
    cr_assert_eq(select_dir(12, &sel), LW_EXIT_INPUT);
    cr_assert(strstr(err, ": no snapshot of pid 12 (pids here: 10 11)"), "%s", err);
}

Test(analysis, bad_files_in_dir_are_skipped, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    free(put("good.10.000000.exit.lwsnap", 10, 1, 0, 0, 1000, "/bin/a"));
    char *junk = lwt_path(dir, "junk.10.000001.exit.lwsnap");
    FILE *f = fopen(junk, "w");
    fputs("garbage", f);
    fclose(f);
    char *tmp = lwt_path(dir, ".tmp.lwsnap"); /* a write in progress: ignored */
    f = fopen(tmp, "w");
    fclose(f);
    char *wbuf = NULL;
    size_t wlen = 0;
    FILE *warn = open_memstream(&wbuf, &wlen);
    struct lw_selection sel;
    char *paths[] = {dir};
    cr_assert_eq(lw_analysis_select(paths, 1, 0, warn, &sel, err, sizeof err), LW_EXIT_OK, "%s",
                 err);
    fclose(warn);
    cr_assert_eq(sel.skipped, 1);
    cr_assert(strstr(wbuf, "leakwatch: warning: skipping "), "%s", wbuf);
    cr_assert(strstr(wbuf, "junk.10.000001.exit.lwsnap: not a leakwatch snapshot (bad magic)\n"),
              "%s", wbuf);
    cr_assert_null(strstr(wbuf, ".tmp"));
    cr_assert_str_eq(base(sel.path), "good.10.000000.exit.lwsnap");
    lw_analysis_selection_free(&sel);
    free(wbuf);
    free(junk);
    free(tmp);
}

Test(analysis, empty_dir_is_an_input_error, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct lw_selection sel;
    cr_assert_eq(select_dir(0, &sel), LW_EXIT_INPUT);
    cr_assert(strstr(err, ": no snapshot (*.lwsnap) in this directory"), "%s", err);
    cr_assert(strncmp(err, dir, strlen(dir)) == 0, "%s", err);
}

Test(analysis, files_of_one_process_report_the_last, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *a = put("a.lwsnap", 10, 1, 5, 0, 1000, "/bin/a");
    char *b = put("b.lwsnap", 10, 1, 7, 0, 1000, "/bin/a");
    char *c = put("c.lwsnap", 10, 1, 6, 0, 1000, "/bin/a");
    char *paths[] = {a, b, c};
    struct lw_selection sel;
    cr_assert_eq(lw_analysis_select(paths, 3, 0, NULL, &sel, err, sizeof err), LW_EXIT_OK, "%s",
                 err);
    cr_assert_str_eq(sel.path, b);
    cr_assert_eq(sel.chosen.nsnaps, 3);
    cr_assert_null(sel.dir);
    lw_analysis_selection_free(&sel);
    free(a);
    free(b);
    free(c);
}

Test(analysis, files_of_different_processes_refused, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *a = put("a.lwsnap", 10, 1, 0, 0, 1000, "/bin/a");
    char *b = put("b.lwsnap", 11, 1, 0, 0, 1000, "/bin/b");
    char *paths[] = {a, b};
    struct lw_selection sel;
    cr_assert_eq(lw_analysis_select(paths, 2, 0, NULL, &sel, err, sizeof err), LW_EXIT_INPUT);
    cr_assert(strstr(err, "(pid 10) and "), "%s", err);
    cr_assert(strstr(err, "(pid 11) are snapshots of different processes"), "%s", err);
    /* --pid picks one of them instead. */
    cr_assert_eq(lw_analysis_select(paths, 2, 11, NULL, &sel, err, sizeof err), LW_EXIT_OK, "%s",
                 err);
    cr_assert_str_eq(sel.path, b);
    lw_analysis_selection_free(&sel);
    free(a);
    free(b);
}

Test(analysis, dir_and_file_together_is_usage_error, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *a = put("a.lwsnap", 10, 1, 0, 0, 1000, "/bin/a");
    char *paths[] = {a, dir};
    struct lw_selection sel;
    cr_assert_eq(lw_analysis_select(paths, 2, 0, NULL, &sel, err, sizeof err), LW_EXIT_USAGE);
    cr_assert(strstr(err, "is a directory: give one directory, or snapshot files, not both"), "%s",
              err);
    free(a);
}

Test(analysis, missing_file_is_input_error)
{
    char *paths[] = {"/nonexistent/a.lwsnap"};
    struct lw_selection sel;
    cr_assert_eq(lw_analysis_select(paths, 1, 0, NULL, &sel, err, sizeof err), LW_EXIT_INPUT);
    cr_assert_str_eq(err, "/nonexistent/a.lwsnap: No such file or directory");
}
