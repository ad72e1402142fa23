/*
 * output_html.c - the report as one self-contained HTML page: the JSON
 * report (exactly what --format json writes, schema leakwatch-report/1,
 * minified) inside <script type="application/json" id="lw-data">, and an
 * inline renderer (tools/html/report.js, report.css, embedded at build
 * time) that draws whatever sections the JSON holds. Nothing is fetched
 * when the page is viewed.
 *
 * For a series (two snapshots of the process or more) the page's data
 * also holds what the JSON report does not: "diff", the last two
 * snapshots compared exactly as `leakwatch diff --format json` does
 * (tools/diff.c), and "growth_parts", where the growth from the first to
 * the last snapshot went, part by part of the waterfall, with the
 * sentence the text report prints. Both are members added at the end of
 * the report's top object.
 */
#include "output.h"

#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "progress.h"
#include "waterfall.h"

extern const char lw_html_css[];
extern const char lw_html_js[];

/* HTML text: escape the five special characters. */
static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

void lw_output_html_json(FILE *f, const char *json, size_t len)
{
    /* Minify (whitespace outside strings goes) and make it safe inside a
     * <script> element: '<' only occurs in strings, where \u003c means the
     * same character, so no "</script>" or "<!--" can appear. */
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            continue;
        }
        if (c == '<')
            fputs("\\u003c", f);
        else
            fputc(c, f);
    }
}

int lw_output_html_page(FILE *f, const char *title, const char *json, size_t len)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          /* No network at view time, whatever the page contains. */
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
          "<title>",
          f);
    html_text(f, title);
    fputs("</title>\n<style>\n", f);
    fputs(lw_html_css, f);
    fputs("</style>\n</head>\n<body>\n"
          /* Errors are collected before anything else runs (tests read them). */
          "<script>window.lwErrors=[];window.addEventListener('error',function(e){"
          "window.lwErrors.push(String(e.message||e));var s=document.getElementById('lw-status');"
          "if(s)s.setAttribute('data-errors',JSON.stringify(window.lwErrors));});</script>\n"
          "<noscript>This report needs JavaScript. The same data: leakwatch report "
          "--format json.</noscript>\n"
          "<main id=\"lw-app\"></main>\n"
          "<pre id=\"lw-status\" hidden></pre>\n"
          "<script type=\"application/json\" id=\"lw-data\">",
          f);
    lw_output_html_json(f, json, len);
    fputs("</script>\n<script>\n", f);
    fputs(lw_html_js, f);
    fputs("</script>\n</body>\n</html>\n", f);
    fflush(f);
    return ferror(f) ? -1 : 0;
}

/* "diff": the last two snapshots of the series, by lw_diff_compute. A
 * base that cannot be read any more is said on stderr; the page goes
 * without the diff. */
static void diff_member(struct lw_json *j, const struct lw_report *r)
{
    const struct lw_series *se = r->series;
    const char *bpath = se->points[se->npoints - 2].path;
    const char *npath = se->points[se->npoints - 1].path;
    char err[LW_READER_ERRLEN];
    struct lw_snapshot *base = lw_reader_load(bpath, err);
    if (!base) {
        fprintf(stderr, "leakwatch: html: no diff of the last two snapshots: %s\n", err);
        return;
    }
    /* Quiet: the last snapshot's symbolizer already warned about modules. */
    struct lw_sym_options quiet = {.quiet = true};
    lw_sym_t *bsym = r->sym ? lw_sym_new(base, &quiet) : NULL;
    if (r->sym && !bsym)
        abort();
    struct lw_diff d;
    lw_diff_compute(base, r->snap, bsym, r->sym, &d);
    struct lw_diff_json_in in = {bpath, npath, base, r->snap, bsym, r->sym, &d,
                                 r->top == SIZE_MAX ? 0 : r->top};
    lw_diff_json(j, "diff", &in);
    lw_diff_free(&d);
    lw_sym_free(bsym);
    lw_reader_free(base);
}

/* "growth_parts": the waterfall's lines, last minus first snapshot. */
static void growth_member(struct lw_json *j, const struct lw_series *se)
{
    struct lw_wf_growth g[LW_WF_MAX];
    size_t big;
    size_t n = lw_waterfall_delta(&se->first_wf, &se->last_wf, g, LW_WF_MAX, &big);
    lw_json_object_begin(j, "growth_parts", false);
    lw_json_u64(j, "from_seq", se->points[0].seq);
    lw_json_u64(j, "to_seq", se->points[se->npoints - 1].seq);
    lw_json_u64(j, "heap_from_bytes", se->points[0].heap_inuse_bytes);
    lw_json_u64(j, "heap_to_bytes", se->points[se->npoints - 1].heap_inuse_bytes);
    lw_json_array_begin(j, "lines", false);
    for (size_t i = 0; i < n; i++) {
        lw_json_object_begin(j, NULL, true);
        lw_json_string(j, "name", g[i].name);
        lw_json_string(j, "label", g[i].label);
        lw_json_bool(j, "part", g[i].part);
        if (g[i].valid)
            lw_json_i64(j, "delta_bytes", g[i].delta);
        else
            lw_json_null(j, "delta_bytes");
        lw_json_object_end(j);
    }
    lw_json_array_end(j);
    if (big == SIZE_MAX)
        lw_json_null(j, "largest_growth");
    else
        lw_json_string(j, "largest_growth", g[big].name);
    /* The text report's sentence ("Most of the growth ... is not heap: ..."). */
    char since[48], *text = NULL;
    size_t tlen = 0;
    snprintf(since, sizeof since, "since snapshot #%u", se->points[0].seq);
    FILE *m = open_memstream(&text, &tlen);
    if (!m)
        abort();
    lw_waterfall_growth_text(m, &se->first_wf, &se->last_wf, since);
    if (fclose(m) != 0)
        abort();
    while (tlen && text[tlen - 1] == '\n')
        tlen--;
    lw_json_string_n(j, "summary", text, tlen);
    free(text);
    lw_json_object_end(j);
}

/* The members the page adds for a series, as "{...}" in *out (malloc'd;
 * NULL when there are none). */
static int series_members(const struct lw_report *r, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!r->series || r->series->npoints < 2)
        return 0;
    FILE *m = open_memstream(out, len);
    if (!m)
        return -1;
    struct lw_json j;
    lw_json_init(&j, m, false);
    lw_json_object_begin(&j, NULL, false);
    growth_member(&j, r->series);
    diff_member(&j, r);
    lw_json_object_end(&j);
    return fclose(m) != 0 ? -1 : 0;
}

static int html_write(FILE *f, const struct lw_report *r)
{
    /* Symbolize first, with progress: the JSON writer then hits the cache. */
    if (r->sym) {
        struct lw_progress prog;
        lw_progress_begin(&prog, "html: symbolizing stacks", r->nstacks);
        for (size_t i = 0; i < r->nstacks; i++) {
            lw_progress_step(&prog, i);
            const struct lw_snap_stack *st = r->stacks[i].stack;
            for (uint16_t k = 0; k < st->nframes; k++)
                lw_sym_lookup(r->sym, st->frames[k]);
        }
        lw_progress_end(&prog);
    }
    char *json = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&json, &len);
    if (!m)
        return -1;
    int rc = lw_output_json.write(m, r);
    if (fclose(m) != 0)
        rc = -1;
    char *extra = NULL;
    size_t elen = 0;
    if (rc == 0)
        rc = series_members(r, &extra, &elen);
    if (rc == 0 && extra && elen > 2) {
        /* Splice: the report's closing brace becomes ",<members>}". */
        while (len && json[len - 1] != '}')
            len--;
        if (!len)
            abort(); /* the JSON writer always closes its object */
        char *both = malloc(len + elen);
        if (!both)
            abort();
        memcpy(both, json, len - 1);
        both[len - 1] = ',';
        memcpy(both + len, extra + 1, elen - 1);
        free(json);
        json = both;
        len = len + elen - 1;
    }
    free(extra);
    if (rc == 0) {
        char title[400];
        snprintf(title, sizeof title, "leakwatch: %s (pid %u)", r->snap->exe,
                 r->snap->proc.pid);
        rc = lw_output_html_page(f, title, json, len);
    }
    free(json);
    return rc;
}

const struct lw_output lw_output_html = {"html", html_write};
