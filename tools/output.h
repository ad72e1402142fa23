/*
 * output.h - the report formats behind one interface. A format gets the
 * whole report (the snapshot, its ranked stacks, a symbolizer, the other
 * processes found) and writes it to a stream: output_text.c for people,
 * output_json.c for programs (schema "leakwatch-report/1").
 */
#ifndef LW_TOOLS_OUTPUT_H
#define LW_TOOLS_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include "analysis.h"
#include "candidates.h"
#include "json.h"
#include "reader.h"
#include "symbolize.h"

struct lw_report {
    const char *path;                /* the snapshot file */
    const struct lw_snapshot *snap;
    const struct lw_ranked *stacks;  /* every stack, ranked (lw_analysis_rank) */
    size_t nstacks;
    size_t top;                      /* stacks to show; 0: the format's default */
    lw_sym_t *sym;                   /* may be NULL: frames stay addresses */
    const struct lw_selection *sel;  /* other processes; may be NULL */
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
