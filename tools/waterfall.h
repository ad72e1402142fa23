/*
 * waterfall.h - explain the gap between "heap in use" and what the
 * container monitor shows, line by line: heap, allocator idle, the
 * program's mappings, released but resident (MADV_FREE), RSS, file page
 * cache, cgroup working set, cgroup usage. Each line has bytes (or "not
 * available") and a plain-language note of what it means and what to do.
 * Used by the report (with heap lines) and by `leakwatch inspect` (without).
 */
#ifndef LW_TOOLS_WATERFALL_H
#define LW_TOOLS_WATERFALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"
#include "reader.h"

/* What the kernel (and, with the preload, leakwatch) knows of a process. */
struct lw_kview {
    bool have_heap;            /* a snapshot: heap and ledger figures below are real */
    uint64_t heap_inuse;       /* malloc'd, not freed */
    uint64_t tracked_in_use;   /* program mmap'd bytes not advised MADV_FREE/DONTNEED */
    uint64_t ledger_released;  /* ledger: MADV_FREE bytes still resident (mmap + allocator) */
    uint64_t own_bytes;        /* leakwatch's own memory in the process (TOTALS metadata_bytes) */
    bool has_kproc;
    struct lw_rec_kernel_proc kproc;
    bool has_cgroup;
    struct lw_rec_kernel_cgroup cg;
    const char *cgroup_path;
    const struct lw_snap_page_cache *pc; /* largest first */
    size_t npc;
    bool has_alloc;
    struct lw_rec_alloc_stats alloc;
};

/* The view held by a snapshot (pointers into s). */
void lw_kview_from_snapshot(const struct lw_snapshot *s, struct lw_kview *v);

#define LW_WF_MAX 10

struct lw_wf_line {
    const char *name;  /* JSON "name": heap_in_use, allocator_idle, ... */
    const char *label; /* text label */
    uint64_t bytes;    /* LW_VALUE_NA: not available */
    bool part;         /* a part of memory (heap, idle, ...), not a total (rss, cgroup) */
    uint64_t rank_bytes; /* what "the largest part" compares: bytes, except for the page cache
                          * (mapped-only files, the program's code and libraries, left out) */
    char note[768];
};

struct lw_waterfall {
    struct lw_wf_line line[LW_WF_MAX];
    size_t n;
};

void lw_waterfall_build(const struct lw_kview *v, struct lw_waterfall *w);

/* The line called name, or NULL. */
const struct lw_wf_line *lw_waterfall_find(const struct lw_waterfall *w, const char *name);

/* The part line (heap, idle, mappings, released, page cache) with the most
 * bytes, or NULL when none has any. */
const struct lw_wf_line *lw_waterfall_largest(const struct lw_waterfall *w);

/* Growth from an earlier waterfall a to a later b. */
struct lw_wf_growth {
    const char *name, *label;
    int64_t delta;  /* b - a, bytes */
    bool valid;     /* both had the line with a value */
    bool part;
};

/* Fill out[] (cap entries) with the deltas of b's lines; *biggest gets the
 * index of the part line that grew most (SIZE_MAX when none grew).
 * Returns the number of entries. */
size_t lw_waterfall_delta(const struct lw_waterfall *a, const struct lw_waterfall *b,
                          struct lw_wf_growth *out, size_t cap, size_t *biggest);

/* The same for two parsed snapshots of one process, earlier a, later b:
 * their waterfalls' deltas, for the report's series view. The growth
 * entries' names point to static strings. */
size_t lw_waterfall_compare(const struct lw_snapshot *a, const struct lw_snapshot *b,
                            struct lw_wf_growth *out, size_t cap, size_t *biggest);

/* One sentence saying where the growth from a to b went; when it is not
 * the heap it says so first ("... is not heap: page cache grew ..."). */
void lw_waterfall_growth_text(FILE *f, const struct lw_waterfall *a, const struct lw_waterfall *b,
                              const char *since);

/* The kernel sections for people: the waterfall with the files under its
 * page cache line, the cgroup and its formula. */
void lw_kview_text(FILE *f, const struct lw_kview *v, const struct lw_waterfall *w);

/* The JSON members process_memory, cgroup, page_cache, waterfall (and
 * allocator_stats) inside the current object. */
void lw_kview_json(struct lw_json *j, const struct lw_kview *v, const struct lw_waterfall *w);

/* "12.3 MiB" (or "512 B"). */
const char *lw_human(uint64_t v, char *buf, size_t len);

#endif
