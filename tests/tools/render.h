/*
 * render.h - the standard fixture (fixture.c) rendered by one output
 * format into memory, symbolized against modules that do not exist (so:
 * addresses and module paths only). Shared by the output format tests.
 */
#ifndef LW_TEST_RENDER_H
#define LW_TEST_RENDER_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis.h"
#include "fixture.h"
#include "output.h"
#include "reader.h"
#include "symbolize.h"

/* The report's bytes (NUL-terminated; the caller frees), *len its length. */
static inline char *lwt_render_standard(const struct lw_output *fmt, size_t top, size_t *len)
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
    struct lw_report r = {.path = "demo.lwsnap", .snap = s, .stacks = rk, .nstacks = n,
                          .top = top, .sym = sym};
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    cr_assert_eq(fmt->write(f, &r), 0);
    fclose(f);
    lw_sym_free(sym);
    free(rk);
    lw_reader_free(s);
    fx_free(&b);
    if (len)
        *len = blen;
    return buf;
}

#endif
