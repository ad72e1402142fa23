/*
 * test_output_html.c - tools/output_html.c and progress.c: the page of the
 * standard fixture embeds exactly the JSON report (minified) and the inline
 * script and style, references nothing outside itself, and no string in the
 * data can close the <script> element. Progress lines appear only after a
 * second, at most ten a second, and are erased (fake clock). The browser
 * side is tests/integration/test_html.py.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "fixture.h"
#include "output.h"
#include "progress.h"
#include "reader.h"

static char *render(const struct lw_output *fmt)
{
    struct fx_buf b;
    char err[LW_READER_ERRLEN];
    fx_standard(&b);
    struct lw_snapshot *s = lw_reader_parse(b.data, b.len, "demo.lwsnap", err);
    cr_assert_not_null(s, "%s", err);
    size_t n;
    struct lw_ranked *rk = lw_analysis_rank(s, &n);
    struct lw_sym_options so = {.quiet = true};
    lw_sym_t *sym = lw_sym_new(s, &so);
    struct lw_report r = {.path = "demo.lwsnap", .snap = s, .stacks = rk, .nstacks = n, .sym = sym};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(fmt->write(f, &r), 0);
    fclose(f);
    lw_sym_free(sym);
    free(rk);
    lw_reader_free(s);
    fx_free(&b);
    return buf;
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
