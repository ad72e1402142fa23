/*
 * analysis.h - decide what to report and rank it. Picks the snapshot to
 * show among files or a directory (several processes may have written
 * there: the one `leakwatch run` started wins), and orders a snapshot's
 * call stacks by bytes in use (allocated minus freed).
 */
#ifndef LW_TOOLS_ANALYSIS_H
#define LW_TOOLS_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "reader.h"

struct lw_ranked {
    const struct lw_snap_stack *stack;
    uint64_t inuse_bytes;   /* alloc - free, 0 if free > alloc */
    uint64_t inuse_objects; /* same for objects */
};

/* All stacks of s, sorted by in-use bytes descending (ties: in-use
 * objects, then allocated bytes, descending; then id ascending). The
 * caller frees the array; *n gets its length. NULL only when out of memory. */
struct lw_ranked *lw_analysis_rank(const struct lw_snapshot *s, size_t *n);

/* One process (one exec image: pid + tracking start) seen among the inputs. */
struct lw_proc_summary {
    uint32_t pid, ppid;
    uint32_t flags;         /* LW_PROC_* of its last snapshot */
    uint64_t start_time_ns;
    char exe[256];          /* executable path (may be cut short) */
    size_t nsnaps;          /* its snapshots among the inputs */
    char *last;             /* path of its last snapshot (highest seq) */
};

struct lw_selection {
    char *path;        /* the snapshot to report (owned) */
    const char *dir;   /* the directory given, or NULL (points into the arguments) */
    struct lw_proc_summary chosen;
    struct lw_proc_summary *others; /* every other process, by start time */
    size_t nothers;
    size_t skipped;    /* unreadable files skipped in a directory */
};

/* Choose the snapshot to report from `paths` (snapshot files of one
 * process, or exactly one directory). pid != 0 selects that process.
 * Directory: the process flagged LW_PROC_ROOT, else the one whose parent
 * is not among the others (earliest start); its last snapshot. Files: all
 * must be of one pid; the last is chosen. Returns LW_EXIT_OK, or
 * LW_EXIT_INPUT / LW_EXIT_USAGE with a one-line message in err (no
 * "leakwatch:" prefix). Unreadable files in a directory are skipped with a
 * warning on `warn` (may be NULL). Free with lw_analysis_selection_free. */
int lw_analysis_select(char *const *paths, size_t npaths, uint32_t pid, FILE *warn,
                       struct lw_selection *out, char *err, size_t errlen);

/* Free what lw_analysis_select allocated; *sel is zeroed. */
void lw_analysis_selection_free(struct lw_selection *sel);

#endif
