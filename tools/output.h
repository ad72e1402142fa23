/*
 * output.h - the report formats behind one interface. A format gets the
 * whole report (the snapshot, its ranked stacks, a symbolizer, the other
 * processes found) and writes it to a stream: output_text.c for people,
 * output_json.c for programs (schema "leakwatch-report/1"), output_pprof.c
 * for pprof, output_folded.c for flame graph tools, output_html.c for a
 * browser.
 */
#ifndef LW_TOOLS_OUTPUT_H
#define LW_TOOLS_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "analysis.h"
#include "candidates.h"
#include "json.h"
#include "reader.h"
#include "symbolize.h"

/* --value: the number a one-value format (folded) gives each stack. */
enum lw_value {
    LW_VALUE_INUSE_BYTES = 0, /* default */
    LW_VALUE_INUSE_OBJECTS,
    LW_VALUE_ALLOC_BYTES,
    LW_VALUE_ALLOC_OBJECTS,
};

/* The enum for a --value name ("inuse_bytes", ...); false if unknown. */
bool lw_output_value_parse(const char *name, enum lw_value *out);

struct lw_report {
    const char *path;                /* the snapshot file */
    const struct lw_snapshot *snap;
    const struct lw_ranked *stacks;  /* every stack, ranked (lw_analysis_rank) */
    size_t nstacks;
    size_t top;                      /* stacks to show; 0: the format's default */
    lw_sym_t *sym;                   /* may be NULL: frames stay addresses */
    const struct lw_selection *sel;  /* other processes; may be NULL */
    enum lw_value value;             /* --value: what folded stacks count */
    const struct lw_series *series;  /* the snapshots of this process; may be NULL */
    const struct lw_candidate *cands; /* leak candidates, best first */
    size_t ncands;
};

struct lw_output {
    const char *name; /* as given to --format */
    /* Write the report; returns 0, or -1 if the stream reported an error. */
    int (*write)(FILE *f, const struct lw_report *r);
};

extern const struct lw_output lw_output_text;
extern const struct lw_output lw_output_json;
extern const struct lw_output lw_output_pprof;  /* gzipped profile.proto */
extern const struct lw_output lw_output_folded; /* folded stacks for flame graphs */
extern const struct lw_output lw_output_html;   /* one self-contained page */

/* The HTML page around a JSON report json[len] (output_html.c; tests use it
 * to render hand-made JSON). Returns 0, or -1 on a stream error. */
int lw_output_html_page(FILE *f, const char *title, const char *json, size_t len);
/* json[len] minified and safe inside a <script> element. */
void lw_output_html_json(FILE *f, const char *json, size_t len);

/* True for formats that write binary data (refused on a terminal without -o). */
bool lw_output_is_binary(const struct lw_output *fmt);

/* The format called name, or NULL. */
const struct lw_output *lw_output_find(const char *name);

/* A stack's frames as the "frames" array of the JSON report (sym NULL:
 * addresses only). Shared by report and diff. */
void lw_output_json_frames(struct lw_json *j, lw_sym_t *sym, const struct lw_snap_stack *st);

/* A stack's frames as indented text lines, as in the text report. */
void lw_output_text_frames(FILE *f, lw_sym_t *sym, const struct lw_snap_stack *st,
                           uint32_t max_depth);

/* "2024-05-01T12:00:00.123Z" for ns since the epoch (UTC, milliseconds). */
void lw_output_iso_time(uint64_t ns, char *buf, size_t len);

/* The report as a shell command that shows another process (for the
 * "other processes" hint): writes "leakwatch report --pid N DIR" or
 * "leakwatch report FILE" to f. */
void lw_output_other_command(FILE *f, const struct lw_selection *sel,
                             const struct lw_proc_summary *p);

#endif
