/*
 * candidates.h - rank the call stacks of a series (analysis.h) as leak
 * candidates by growth: live bytes that grow across snapshots (in how many
 * intervals, at what slope, what share of all growth), stacks whose live
 * bytes never fall, blocks kept from before the series while the same
 * stack frees younger ones (AGE records), and thread counts that grow
 * from one creation stack. Each candidate carries a one-line reason.
 */
#ifndef LW_TOOLS_CANDIDATES_H
#define LW_TOOLS_CANDIDATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"

struct lw_candidate {
    const struct lw_series_stack *ss;
    uint32_t stack;            /* its id */
    double score;              /* share x grown_fraction^2 x trend (candidates.c), in [0, 1] */
    int64_t growth_bytes;      /* last - first live bytes (thread stacks: configured sizes) */
    double growth_bytes_per_s; /* least-squares slope of live bytes over time */
    double growth_share;       /* growth_bytes / the growth of every candidate */
    uint32_t intervals_grown;  /* intervals whose live bytes (threads: count) rose */
    uint32_t intervals_fell;
    uint32_t intervals;        /* snapshots - 1 */
    bool never_fell;
    int64_t growth_threads;    /* thread stacks: live threads, last - first */
    uint64_t exited;           /* thread stacks: threads that exited during the series */
    uint64_t freed_objects;    /* heap: blocks freed during the series */
    uint64_t kept_bytes;       /* heap: live bytes older than the series (AGE) */
    uint64_t oldest_age_ns;    /* heap: its oldest live block, at least (AGE) */
    char reason[192];          /* one line */
};

/* Optional: the function a stack's reason names ("reader_start"); return
 * NULL to say "stack N". */
typedef const char *(*lw_candidate_namer)(void *arg, const struct lw_snap_stack *st);

/* Rank s's stacks (heap, mmap and thread; allocator mappings repeat heap
 * growth and are left out) that grew between the first and the last
 * snapshot and rose in at least one interval, best first (score, then
 * growth, then id). A series of one point has none. Returns the array
 * (malloc'd, *n entries; NULL with *n 0 when there are none). Aborts when
 * out of memory. */
struct lw_candidate *lw_candidates_rank(const struct lw_series *s, lw_candidate_namer namer,
                                        void *namer_arg, size_t *n);

#endif
