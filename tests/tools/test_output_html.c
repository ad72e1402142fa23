/*
 * test_output_html.c - tools/output_html.c and progress.c: the page of the
 * standard fixture embeds exactly the JSON report (minified) and the inline
 * script and style, references nothing outside itself, and no string in the
 * data can close the <script> element. Progress lines appear only after a
 * second, at most ten a second, and are erased (fake clock). A series of
 * two snapshots adds "growth_parts" and "diff" (the diff.c object) to the
 * page's data, and nothing else. The browser side is
 * tests/integration/test_html.py.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "candidates.h"
#include "cli.h"
#include "fixture.h"
#include "output.h"
#include "progress.h"
#include "reader.h"
#include "render.h"
#include "testutil.h"

static char *render(const struct lw_output *fmt)
{
    return lwt_render_standard(fmt, 0, NULL);
}

static char *minify(const char *json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lw_output_html_json(f, json, strlen(json));
    fclose(f);
    return buf;
}

Test(html, page_embeds_the_json_report)
{
    char *page = render(&lw_output_html);
    char *json = render(&lw_output_json);
    char *mini = minify(json);
    const char *open = "<script type=\"application/json\" id=\"lw-data\">";
    char *at = strstr(page, open);
    cr_assert_not_null(at);
    at += strlen(open);
    cr_assert_eq(strncmp(at, mini, strlen(mini)), 0, "embedded data is not the JSON report");
    cr_assert_eq(strncmp(at + strlen(mini), "</script>", 9), 0);
    cr_assert(strstr(mini, "{\"format\":\"leakwatch-report/1\",\"process\":{\"pid\":4242,"), "%s",
              mini);
    /* Spaces inside strings survive minifying. */
    cr_assert(strstr(mini, "\"cmdline\":[\"demo\",\"--size\",\"10 MB\",\"it's\"]"), "%s", mini);
    cr_assert(strstr(page, "<title>leakwatch: /usr/bin/demo (pid 4242)</title>"));
    /* The renderer and the style are inline. */
    cr_assert(strstr(page, "report.js - renders leakwatch's HTML report"));
    cr_assert(strstr(page, "report.css - the HTML report's look"));
    cr_assert(strstr(page, "<main id=\"lw-app\"></main>"));
    /* Nothing is loaded from elsewhere. */
    cr_assert_null(strstr(page, "<script src"));
    cr_assert_null(strstr(page, "<link"));
    cr_assert_null(strstr(page, "@import"));
    cr_assert_null(strstr(page, "url("));
    cr_assert_null(strstr(page, "https:"));
    cr_assert(strstr(page, "default-src 'none'"));
    /* One <script> for errors, one for data, one for the renderer. */
    size_t scripts = 0;
    for (const char *p = page; (p = strstr(p, "</script>")); p++)
        scripts++;
    cr_assert_eq(scripts, 3);
    free(mini);
    free(json);
    free(page);
}

Test(html, data_cannot_close_the_script)
{
    char *m = minify("{\n  \"a\": \"</script><!-- x\",\n  \"q\": \"say \\\"hi\\\" </b>\",\n"
                     "  \"n\": [1, 2]\n}\n");
    cr_assert_str_eq(m, "{\"a\":\"\\u003c/script>\\u003c!-- x\",\"q\":\"say \\\"hi\\\" \\u003c/b>\","
                        "\"n\":[1,2]}");
    free(m);
}

Test(html, title_is_escaped)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(lw_output_html_page(f, "a<b>&\"c'", "{}", 2), 0);
    fclose(f);
    cr_assert(strstr(buf, "<title>a&lt;b&gt;&amp;&quot;c&#39;</title>"), "%s", buf);
    free(buf);
}

/* Snapshot i (0 or 1) of pid 77: stack 1 grows 1 -> 3 MiB, 2 shrinks,
 * 3 vanishes, 4 is new. */
static void two_snapshot(uint32_t i)
{
    struct lw_rec_process p = {
        .pid = 77, .ppid = 1, .time_ns = 1700000000000000000ull + i * 1000000000ull,
        .start_time_ns = 1700000000000000000ull, .mono_ns = 9000000000ull + i * 1000000000ull,
        .seq = i, .trigger = LW_TRIGGER_INTERVAL, .max_depth = 64, .page_size = 4096,
    };
    struct fx_buf b;
    struct lw_rec_totals t;
    memset(&t, 0, sizeof t);
    uint64_t f1[] = {0x401000}, f2[] = {0x402000}, f3[] = {0x403000};
    fx_init(&b, LW_SNAP_MAJOR, LW_SNAP_MINOR);
    fx_process(&b, p, "/bin/svc", "svc", 4);
    t.heap_inuse_bytes = i ? (3u << 20) + 1024 + 700 : (1u << 20) + 2048 + 500;
    t.heap_inuse_objects = i ? 5 : 4;
    fx_totals(&b, &t);
    fx_stack(&b, 1, LW_KIND_HEAP, 0, i ? 3u << 20 : 1u << 20, i ? 3 : 1, 0, 0, f1, 1);
    fx_stack(&b, 2, LW_KIND_HEAP, 0, 2048, 2, i ? 1024 : 0, i ? 1 : 0, f2, 1);
    if (!i)
        fx_stack(&b, 3, LW_KIND_HEAP, 0, 500, 1, 0, 0, f3, 1);
    else
        fx_stack(&b, 4, LW_KIND_HEAP, 0, 700, 1, 0, 0, f3, 1);
    fx_end(&b);
    char name[64];
    snprintf(name, sizeof name, "svc.77.%06u.interval.lwsnap", i);
    char *path = lwt_path(dir, name);
    cr_assert(fx_write_file(&b, path));
    free(path);
    fx_free(&b);
}

Test(html, a_series_adds_its_diff_and_growth, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char err[LW_READER_ERRLEN];
    two_snapshot(0);
    two_snapshot(1);
    char *paths[] = {dir};
    struct lw_selection sel;
    struct lw_series se;
    cr_assert_eq(lw_analysis_select(paths, 1, 0, NULL, &sel, err, sizeof err), LW_EXIT_OK, "%s",
                 err);
    cr_assert_eq(lw_analysis_load_series(&sel, &se, err, sizeof err), LW_EXIT_OK, "%s", err);
    size_t n, nc;
    struct lw_ranked *rk = lw_analysis_rank_series(&se, &n);
    struct lw_candidate *c = lw_candidates_rank(&se, NULL, NULL, &nc);
    struct lw_report r = {.path = sel.path, .snap = se.last, .stacks = rk, .nstacks = n,
                          .sel = &sel, .series = &se, .cands = c, .ncands = nc};
    char *page = NULL, *json = NULL;
    size_t plen = 0, jlen = 0;
    FILE *f = open_memstream(&page, &plen);
    cr_assert_eq(lw_output_html.write(f, &r), 0);
    fclose(f);
    f = open_memstream(&json, &jlen);
    cr_assert_eq(lw_output_json.write(f, &r), 0);
    fclose(f);
    char *mini = minify(json);
    /* The JSON report, its closing brace replaced by the page's members. */
    const char *open = "<script type=\"application/json\" id=\"lw-data\">";
    char *at = strstr(page, open);
    cr_assert_not_null(at);
    at += strlen(open);
    size_t mlen = strlen(mini);
    cr_assert_eq(strncmp(at, mini, mlen - 1), 0);
    at += mlen - 1;
    const char *growth =
        ",\"growth_parts\":{\"from_seq\":0,\"to_seq\":1,\"heap_from_bytes\":1051124,"
        "\"heap_to_bytes\":3147452,\"lines\":[{\"name\":\"heap_in_use\",\"label\":\"heap in use\","
        "\"part\":true,\"delta_bytes\":2096328}";
    cr_assert_eq(strncmp(at, growth, strlen(growth)), 0, "%.400s", at);
    cr_assert(strstr(at, "\"largest_growth\":\"heap_in_use\",\"summary\":\"Most of the growth "
                         "since snapshot #0 is heap: +2.0 MiB.\"},"
                         "\"diff\":{\"format\":\"leakwatch-diff/1\","),
              "%s", at);
    cr_assert(strstr(at, "\"matched_by\":\"stack id\",\"heap\":{\"delta_inuse_bytes\":2096328,"
                         "\"delta_inuse_objects\":1},"
                         "\"counts\":{\"grown\":1,\"shrunk\":1,\"new\":1,\"vanished\":1,"
                         "\"unchanged\":0},"
                         "\"stacks\":[{\"status\":\"grown\",\"kind\":\"heap\","
                         "\"base_id\":1,\"new_id\":1,\"delta_inuse_bytes\":2097152,"
                         "\"delta_inuse_objects\":2,"),
              "%s", at);
    /* Largest growth first, the vanished stack (-500) and the shrunk one (-1024) last. */
    char *v = strstr(at, "\"status\":\"vanished\""), *sh = strstr(at, "\"status\":\"shrunk\"");
    char *nw = strstr(at, "\"status\":\"new\"");
    cr_assert(nw && v && sh && nw < v && v < sh);
    cr_assert_eq(strncmp(strstr(at, "</script>") - 2, "}}", 2), 0);
    free(mini);
    free(json);
    free(page);
    free(c);
    free(rk);
    lw_analysis_series_free(&se);
    lw_analysis_selection_free(&sel);
}

static uint64_t fake_now;
static uint64_t clock_fn(void)
{
    return fake_now;
}

Test(progress, only_after_a_second_and_erased)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct lw_progress p;
    fake_now = 5000000000ull;
    lw_progress_begin_to(&p, f, clock_fn, "symbolizing", 100);
    lw_progress_step(&p, 1);
    fake_now += 999000000ull; /* 0.999 s: still quiet */
    lw_progress_step(&p, 50);
    fflush(f);
    cr_assert_eq(len, 0);
    fake_now += 2000000ull; /* 1.001 s */
    lw_progress_step(&p, 60);
    fake_now += 50000000ull; /* 50 ms later: too soon for another line */
    lw_progress_step(&p, 61);
    fake_now += 60000000ull; /* 110 ms after the first line */
    lw_progress_step(&p, 70);
    lw_progress_end(&p);
    fclose(f);
    cr_assert_str_eq(buf, "\rleakwatch: symbolizing 60/100\rleakwatch: symbolizing 70/100\r\033[K");
    free(buf);
}

Test(progress, fast_work_prints_nothing)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct lw_progress p;
    fake_now = 1;
    lw_progress_begin_to(&p, f, clock_fn, "x", 10);
    for (size_t i = 0; i < 10; i++) {
        fake_now += 10000000ull;
        lw_progress_step(&p, i);
    }
    lw_progress_end(&p);
    fclose(f);
    cr_assert_eq(len, 0);
    free(buf);
    /* Silent (stderr not a terminal): nothing, however long it takes. */
    lw_progress_begin_to(&p, NULL, clock_fn, "x", 10);
    fake_now += 10000000000ull;
    lw_progress_step(&p, 5);
    lw_progress_end(&p);
}
