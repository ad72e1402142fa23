/*
 * output_html.c - the report as one self-contained HTML page: the JSON
 * report (exactly what --format json writes, schema leakwatch-report/1,
 * minified) inside <script type="application/json" id="lw-data">, and an
 * inline renderer (tools/html/report.js, report.css, embedded at build
 * time) that draws whatever sections the JSON holds. Nothing is fetched
 * when the page is viewed.
 */
#include "output.h"

#include <stdlib.h>
#include <string.h>

#include "progress.h"

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
