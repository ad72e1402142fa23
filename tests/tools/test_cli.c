/*
 * test_cli.c - the leakwatch binary end to end: golden text and JSON
 * reports of the standard fixture (tests/tools/golden/; the temporary
 * directory is replaced by TMP; LW_UPDATE_GOLDEN=1 rewrites them), exit
 * statuses and one-line messages for bad input and bad usage, --version,
 * and the "other processes" hint for a directory.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"
#include "testutil.h"



static char *write_standard(const char *name)
{
    struct fx_buf b;
    fx_standard(&b);
    char *path = lwt_path(dir, name);
    cr_assert(fx_write_file(&b, path));
    fx_free(&b);
    return path;
}

static void leakwatch(struct lwt_result *r, const char *const *args)
{
    const char *argv[32] = {lwt_bin()};
    size_t n = 1;
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    cr_assert_eq(lwt_run(argv, NULL, r), 0);
}

static void golden(const char *name, const char *got_raw)
{
    lwt_golden(name, got_raw);
}

Test(cli, golden_text_report, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *snap = write_standard("demo.4242.000003.exit.lwsnap");
    struct lwt_result r;
    const char *args[] = {"report", snap, NULL};
    leakwatch(&r, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    golden("report.txt", r.out);
    /* The modules do not exist here: one warning, one line. */
    cr_assert_str_eq(r.err, "leakwatch: warning: 2 module(s) could not be read (first: "
                            "/nonexistent/demo: No such file or directory); their frames show "
                            "as module+offset\n");
    lwt_result_free(&r);
    free(snap);
}

Test(cli, golden_json_report, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *snap = write_standard("demo.4242.000003.exit.lwsnap");
    struct lwt_result r;
    const char *args[] = {"report", "--format", "json", snap, NULL};
    leakwatch(&r, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    golden("report.json", r.out);
    lwt_result_free(&r);
    free(snap);
}

/* The standard fixture with the 1.2 kernel records: the waterfall in text
 * and JSON (tests/tools/golden/report-kernel.*). */
Test(cli, golden_kernel_reports, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct fx_buf b;
    fx_standard_kernel(&b);
    char *snap = lwt_path(dir, "demo.4242.000003.exit.lwsnap");
    cr_assert(fx_write_file(&b, snap));
    fx_free(&b);
    struct lwt_result r;
    const char *args[] = {"report", snap, NULL};
    leakwatch(&r, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    golden("report-kernel.txt", r.out);
    lwt_result_free(&r);
    const char *jargs[] = {"report", "--format", "json", snap, NULL};
    leakwatch(&r, jargs);
    cr_assert_eq(r.status, 0, "%s", r.err);
    golden("report-kernel.json", r.out);
    lwt_result_free(&r);
    free(snap);
}

Test(cli, top_and_output_file, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *snap = write_standard("demo.lwsnap");
    char *out = lwt_path(dir, "report.txt");
    struct lwt_result r;
    const char *args[] = {"report", "--top", "1", "-o", out, snap, NULL};
    leakwatch(&r, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "");
    char *txt = lwt_read(out, NULL);
    cr_assert_not_null(txt);
    cr_assert(strstr(txt, "Top 1 of 6 call stacks holding memory, by bytes in use\n"), "%s", txt);
    cr_assert(strstr(txt, "\n#1  4.0 MiB (4194304 bytes) in 4 blocks [heap]"), "%s", txt);
    cr_assert_null(strstr(txt, "#2"));
    cr_assert(strstr(txt, "(5 more; --top N shows more, --format json shows all)"), "%s", txt);
    free(txt);
    lwt_result_free(&r);

    const char *bad[] = {"report", "-o", "/nonexistent/dir/r.txt", snap, NULL};
    leakwatch(&r, bad);
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "leakwatch: cannot write /nonexistent/dir/r.txt: No such file or "
                            "directory\n");
    lwt_result_free(&r);
    free(out);
    free(snap);
}

Test(cli, bad_input_is_exit_1_with_one_line, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct fx_buf b;
    fx_standard(&b);
    char *cut = lwt_path(dir, "cut.lwsnap");
    b.len -= 10;
    cr_assert(fx_write_file(&b, cut));
    uint16_t major = 3;
    memcpy(b.data + 8, &major, 2);
    char *newer = lwt_path(dir, "newer.lwsnap");
    cr_assert(fx_write_file(&b, newer));
    fx_free(&b);

    struct lwt_result r;
    const char *a1[] = {"report", cut, NULL};
    leakwatch(&r, a1);
    cr_assert_eq(r.status, 1);
    char *want;
    cr_assert(asprintf(&want, "leakwatch: %s: truncated or corrupt: END record at offset", cut) > 0);
    cr_assert(strncmp(r.err, want, strlen(want)) == 0, "%s", r.err);
    cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "not one line: %s", r.err);
    cr_assert_str_eq(r.out, "");
    free(want);
    lwt_result_free(&r);

    const char *a2[] = {"report", newer, NULL};
    leakwatch(&r, a2);
    cr_assert_eq(r.status, 1);
    cr_assert(asprintf(&want,
                       "leakwatch: %s: snapshot format 3.x is newer than this leakwatch "
                       "understands (1.x); upgrade leakwatch\n",
                       newer) > 0);
    cr_assert_str_eq(r.err, want);
    free(want);
    lwt_result_free(&r);

    const char *a3[] = {"report", "/nonexistent/x.lwsnap", NULL};
    leakwatch(&r, a3);
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.err, "leakwatch: /nonexistent/x.lwsnap: No such file or directory\n");
    lwt_result_free(&r);

    char *empty = lwt_path(dir, "empty");
    cr_assert(mkdir(empty, 0700) == 0);
    const char *a4[] = {"report", empty, NULL};
    leakwatch(&r, a4);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "/empty: no snapshot (*.lwsnap) in this directory\n"), "%s", r.err);
    lwt_result_free(&r);
    free(empty);
    free(cut);
    free(newer);
}

Test(cli, usage_errors_are_exit_2)
{
    struct lwt_result r;
    const char *cases[][4] = {
        {"frobnicate", NULL},
        {"report", NULL},
        {"report", "--format", "xml", NULL},
        {"report", "--top", "-1", NULL},
        {"report", "--pid", "abc", NULL},
        {"report", "--nope", NULL},
        {"report", "--format", NULL},
        {"run", "--depth", NULL},
    };
    const char *msgs[] = {
        "leakwatch: unknown verb 'frobnicate' (see leakwatch --help)\n",
        "leakwatch: report: no snapshot or directory given (see leakwatch report --help)\n",
        "leakwatch: report: --format xml: unknown format (text, json, pprof, folded or html)\n",
        "leakwatch: report: --top -1: not a number of stacks\n",
        "leakwatch: report: --pid abc: not a process id\n",
        "leakwatch: report: bad option '--nope' (see leakwatch report --help)\n",
        "leakwatch: report: --format needs a value (see leakwatch report --help)\n",
        "leakwatch: run: --depth needs a value (see leakwatch run --help)\n",
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        leakwatch(&r, cases[i]);
        cr_assert_eq(r.status, 2, "case %zu", i);
        cr_assert_str_eq(r.err, msgs[i]);
        lwt_result_free(&r);
    }
    const char *none[] = {NULL};
    leakwatch(&r, none);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "Usage: leakwatch VERB"));
    lwt_result_free(&r);
}

Test(cli, version_and_help)
{
    struct lwt_result r;
    const char *v[] = {"--version", NULL};
    leakwatch(&r, v);
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out, "leakwatch 0.1.0\n");
    lwt_result_free(&r);
    const char *h[] = {"report", "--help", NULL};
    leakwatch(&r, h);
    cr_assert_eq(r.status, 0);
    const char *opts[] = {"--format FMT", "--top N", "--pid PID", "-o FILE", "--debuginfod",
                          "Exit status:"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        cr_assert(strstr(r.out, opts[i]), "missing %s", opts[i]);
    lwt_result_free(&r);
    const char *top[] = {"--help", NULL};
    leakwatch(&r, top);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "  2  usage error"), "%s", r.out);
    lwt_result_free(&r);
}

Test(cli, directory_lists_other_processes, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct fx_buf b;
    fx_minimal(&b, 4243, 4242, 0, LW_PROC_FORKED, 2000, "/usr/bin/child");
    char *kid = lwt_path(dir, "child.4243.000000.exit.lwsnap");
    cr_assert(fx_write_file(&b, kid));
    fx_free(&b);
    char *root = write_standard("demo.4242.000003.exit.lwsnap");

    struct lwt_result r;
    const char *args[] = {"report", dir, NULL};
    leakwatch(&r, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "  process   pid 4242 (parent 4200): /usr/bin/demo\n"), "%s", r.out);
    char *want;
    cr_assert(asprintf(&want,
                       "\nOther processes in this directory:\n"
                       "  pid 4243 (fork child of 4242) /usr/bin/child, 1 snapshot: "
                       "leakwatch report --pid 4243 %s\n",
                       dir) > 0);
    cr_assert(strstr(r.out, want), "%s", r.out);
    free(want);
    lwt_result_free(&r);

    const char *js[] = {"report", "--format", "json", "--pid", "4243", dir, NULL};
    leakwatch(&r, js);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"pid\": 4243,"), "%s", r.out);
    cr_assert(strstr(r.err, "leakwatch: reported pid 4243; 1 other process(es) also wrote "
                            "snapshots:\n"),
              "%s", r.err);
    lwt_result_free(&r);
    free(kid);
    free(root);
}
