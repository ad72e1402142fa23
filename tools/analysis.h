/*
 * analysis.h - decide what to report and rank it. Picks the snapshot to
 * show among files or a directory (several processes may have written
 * there: the one `leakwatch run` started wins), and orders a snapshot's
 * call stacks by bytes in use (allocated minus freed). With several
 * snapshots of the chosen process, loads them as a series in time order
 * (lw_analysis_load_series) for candidates.c to rank by growth.
 */
#ifndef LW_TOOLS_ANALYSIS_H
#define LW_TOOLS_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "reader.h"
#include "waterfall.h"

struct lw_ranked {
    const struct lw_snap_stack *stack;
    uint64_t inuse_bytes;   /* alloc - free, 0 if free > alloc; 0 for thread stacks */
    uint64_t inuse_objects; /* same for objects; live threads for thread stacks */
};

/* All stacks of s, sorted by in-use bytes descending (ties: in-use
 * objects, then allocated bytes, descending; then id ascending). Thread
 * creation stacks hold no heap bytes: their in-use bytes are 0 and their
 * objects are live threads. The caller frees the array; *n gets its
 * length. NULL only when out of memory. */
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
    char **series;     /* every snapshot of the chosen process, by seq (owned);
                        * the last is `path` */
    size_t nseries;
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

/* One snapshot of a series: when, why, and the totals charted over time. */
struct lw_series_point {
    const char *path;      /* points into the selection */
    uint32_t seq;
    uint32_t trigger;      /* enum lw_trigger */
    uint64_t time_ns;      /* CLOCK_REALTIME */
    uint64_t mono_ns;      /* CLOCK_MONOTONIC */
    double t;              /* seconds since the first snapshot (monotonic clock) */
    uint64_t heap_inuse_bytes;
    uint64_t heap_inuse_objects;
    uint64_t mmap_bytes;   /* the program's own mappings */
    uint64_t released_resident_bytes; /* MADV_FREE'd and still resident, both kinds */
    uint64_t threads_live; /* sum over thread stacks */
    /* From the kernel records (waterfall.h); LW_VALUE_NA when not known. */
    uint64_t rss_bytes;
    uint64_t file_cache_bytes;  /* page cache of the process's files */
    uint64_t working_set_bytes; /* its memory cgroup's */
    bool has_ages;         /* the snapshot has AGE records */
};

/* One call stack across the series, by its id (ids are per process and
 * stable: the library's stack table is append-only). */
struct lw_series_stack {
    const struct lw_snap_stack *stack; /* from the last snapshot, or from the
                                        * last one it appears in if it vanished */
    bool vanished;           /* not in the last snapshot */
    uint64_t *bytes;         /* [npoints] live bytes (thread stacks: their stacks'
                              * configured size); 0 where absent */
    uint64_t *objects;       /* [npoints] live blocks / mappings / threads */
    uint64_t *oldest_age_ns; /* [npoints] min age of its oldest non-empty AGE
                              * bucket; 0 without AGE */
    uint64_t first_free_objects; /* free_objects in the first snapshot; 0 if absent there */
};

struct lw_series {
    size_t npoints;
    struct lw_series_point *points; /* by seq */
    struct lw_snapshot *last;       /* the last snapshot, loaded in full */
    size_t nstacks;
    struct lw_series_stack *stacks; /* by id */
    struct lw_snapshot **kept;      /* earlier snapshots holding vanished stacks */
    size_t nkept;
    uint64_t *mem;                  /* the per-point arrays */
    struct lw_waterfall first_wf, last_wf; /* of the first and the last snapshot */
};

/* Load the selection's snapshots (sel->series, one process, by seq) as a
 * series; a single snapshot gives a series of one point. The last is kept
 * in full (s->last); earlier ones are read and dropped, unless they hold a
 * stack the last one lacks. Returns LW_EXIT_OK, or LW_EXIT_INPUT with one
 * line naming the file in err. Free with lw_analysis_series_free. */
int lw_analysis_load_series(const struct lw_selection *sel, struct lw_series *s, char *err,
                            size_t errlen);

/* The series stack with this id, or NULL. O(log n). */
const struct lw_series_stack *lw_analysis_series_find(const struct lw_series *s, uint32_t id);

/* The last snapshot's stacks ranked as lw_analysis_rank does, then the
 * stacks that vanished before it, with 0 in use (so every id of the series
 * resolves). Caller frees; NULL only when out of memory. */
struct lw_ranked *lw_analysis_rank_series(const struct lw_series *s, size_t *n);

/* Free what lw_analysis_load_series made (including s->last); zeroes *s. */
void lw_analysis_series_free(struct lw_series *s);

#endif
