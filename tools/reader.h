/*
 * reader.h - load a .lwsnap snapshot into memory and validate all of it.
 * The parser works on a byte buffer (so a fuzzer can drive it), checks every
 * length against the file and the record structs, and makes exactly one
 * allocation whose size is computed from the file itself (bounded by a small
 * multiple of the file size). Errors are one line: "FILE: problem".
 */
#ifndef LW_TOOLS_READER_H
#define LW_TOOLS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lw_format.h"

struct lw_snap_module {
    uint64_t base;
    uint32_t flags; /* LW_MOD_* */
    uint32_t nsegs;
    const struct lw_rec_segment *segs;
    const char *path; /* NUL-terminated copy */
    const uint8_t *build_id;
    uint32_t build_id_len;
};

struct lw_snap_stack {
    uint32_t id;
    uint8_t kind;  /* enum lw_kind */
    uint8_t flags; /* LW_STACK_* */
    uint16_t nframes;
    uint64_t alloc_bytes;
    uint64_t alloc_objects;
    uint64_t free_bytes;
    uint64_t free_objects;
    const uint64_t *frames; /* nframes return addresses, frame 0 innermost */
};

/* AGE record (1.2): a heap stack's live blocks by age. */
struct lw_snap_age {
    uint32_t stack;
    uint32_t nbuckets;
    const struct lw_age_bucket *buckets; /* min_age_ns strictly ascending */
};

/* A PAGE_CACHE record (1.2). */
struct lw_snap_page_cache {
    struct lw_rec_page_cache rec;
    const char *path; /* NUL-terminated copy */
};

struct lw_snapshot {
    const char *name; /* file name used in messages (copy) */
    uint16_t major, minor;
    struct lw_rec_process proc;
    const char *exe;   /* NUL-terminated copy of the executable path */
    const char **argv; /* argc command-line arguments (copies) */
    size_t argc;
    struct lw_rec_totals totals;
    const struct lw_snap_module *modules;
    size_t nmodules;
    const struct lw_snap_stack *stacks; /* in file order */
    size_t nstacks;
    const struct lw_rec_region *regions;
    size_t nregions;
    /* 1.2, tags 9-11 (absent in older files: counts 0, has_trigger false) */
    const struct lw_rec_thread *threads; /* live threads, file order */
    size_t nthreads;
    const struct lw_snap_age *ages; /* AGE records, by stack id */
    size_t nages;
    bool has_trigger;
    struct lw_rec_trigger trigger; /* valid when has_trigger */
    size_t unknown_records; /* records with a tag this reader does not know */
    const uint32_t *by_id;  /* internal: indexes of stacks sorted by id */
    void *mem;              /* the one allocation holding everything */
    /* 1.2 kernel records; absent in older snapshots (has_* false, n 0). */
    bool has_kproc, has_cgroup, has_alloc_stats;
    struct lw_rec_kernel_proc kproc;
    struct lw_rec_kernel_cgroup cgroup;
    const char *cgroup_path;                    /* NUL-terminated copy, or NULL */
    const struct lw_snap_page_cache *page_cache; /* in file order (largest first) */
    size_t npage_cache;
    struct lw_rec_alloc_stats alloc_stats;
};

/* Longest message the reader produces, including the file name. */
#define LW_READER_ERRLEN 1024

/* Parse a snapshot held in buf[0..len). `name` is used in messages only.
 * On success returns a snapshot (free with lw_reader_free); on failure
 * returns NULL and writes "NAME: problem" into err (LW_READER_ERRLEN bytes).
 * Never reads outside buf; allocates O(len). */
struct lw_snapshot *lw_reader_parse(const void *buf, size_t len, const char *name, char *err);

/* Read and parse the file at path; same contract as lw_reader_parse. */
struct lw_snapshot *lw_reader_load(const char *path, char *err);

/* Free a snapshot from lw_reader_parse/lw_reader_load. NULL is fine. */
void lw_reader_free(struct lw_snapshot *s);

/* Read only the header and the PROCESS record of the file at path (cheap,
 * for picking a snapshot in a directory); copy the executable path into
 * exe[exe_size] (truncated if longer; may be NULL). Returns false with err set. */
bool lw_reader_peek_process(const char *path, struct lw_rec_process *proc, char *exe,
                            size_t exe_size, char *err);

/* The stack with this id, or NULL. O(log n). */
const struct lw_snap_stack *lw_reader_find_stack(const struct lw_snapshot *s, uint32_t id);

/* "exit", "signal", ... or "unknown". */
const char *lw_reader_trigger_name(uint32_t trigger);

/* The AGE record of heap stack `id`, or NULL. O(log n). */
const struct lw_snap_age *lw_reader_find_age(const struct lw_snapshot *s, uint32_t id);

/* "cgroup", "rss", "heap" or "unknown" (enum lw_watch_source). */
const char *lw_reader_watch_name(uint32_t source);

/* "heap", "mmap", "allocator", "thread" or "unknown". */
const char *lw_reader_kind_name(uint32_t kind);

#endif
