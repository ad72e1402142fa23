/*
 * diff.h - `leakwatch diff BASE NEW`: what changed between two snapshots,
 * stack by stack (live bytes and objects; new and vanished stacks).
 * Snapshots of one process are matched by stack id (ids are stable within
 * a process). Snapshots of two processes (two runs, before and after a
 * deploy) are matched by what each frame is: the module-relative address
 * when both snapshots hold that exact module (same build-id), else the
 * symbolized function names; stacks that become equal this way are summed.
 */
#ifndef LW_TOOLS_DIFF_H
#define LW_TOOLS_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reader.h"
#include "symbolize.h"

enum lw_diff_status { LW_DIFF_GROWN, LW_DIFF_SHRUNK, LW_DIFF_NEW, LW_DIFF_VANISHED };

struct lw_diff_entry {
    enum lw_diff_status status;
    uint8_t kind;
    const struct lw_snap_stack *base; /* a base stack of this entry, NULL if new */
    const struct lw_snap_stack *new;  /* a new stack of this entry, NULL if vanished */
    size_t nbase, nnew;               /* stacks summed on each side (frames matching) */
    uint64_t base_inuse_bytes, new_inuse_bytes;
    uint64_t base_inuse_objects, new_inuse_objects;
    int64_t delta_inuse_bytes, delta_inuse_objects;
};

struct lw_diff {
    bool by_id;                     /* one process: matched by stack id */
    struct lw_diff_entry *entries;  /* changed stacks, delta_inuse_bytes descending */
    size_t nentries;
    size_t grown, shrunk, added, vanished, unchanged;
};

/* Compare base and new. Frames are symbolized with bsym / nsym (from
 * lw_sym_new of each snapshot; NULL: addresses only) when the snapshots
 * are of different processes. Entries whose bytes and objects did not
 * change are counted, not listed. Stack in-use follows lw_analysis_rank
 * (thread stacks: 0 bytes, live threads). Aborts when out of memory. */
void lw_diff_compute(const struct lw_snapshot *base, const struct lw_snapshot *new,
                     lw_sym_t *bsym, lw_sym_t *nsym, struct lw_diff *out);

void lw_diff_free(struct lw_diff *d);

/* What lw_diff_json writes: d computed from base and new (read from
 * base_path and new_path) with the symbolizers given to lw_diff_compute. */
struct lw_diff_json_in {
    const char *base_path, *new_path;
    const struct lw_snapshot *base, *new;
    lw_sym_t *bsym, *nsym;
    const struct lw_diff *d;
    size_t top; /* entries listed; 0: all */
};

/* The diff as `leakwatch diff --format json` writes it (an object,
 * "leakwatch-diff/1"), as member key of the current object (NULL: a value
 * in an array or at the top). The HTML report embeds it for a series. */
struct lw_json;
void lw_diff_json(struct lw_json *j, const char *key, const struct lw_diff_json_in *in);

/* The `diff` verb: argv[0] is "diff". Returns leakwatch's exit status. */
int lw_diff_main(int argc, char **argv);

#endif
