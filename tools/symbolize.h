/*
 * symbolize.h - turn recorded return addresses into function, file and line,
 * offline, with elfutils (libdwfl) and the module map of one snapshot.
 * Inlined calls become extra frames (innermost first). Results are cached
 * per address. Files that are missing or changed degrade to module+offset.
 */
#ifndef LW_TOOLS_SYMBOLIZE_H
#define LW_TOOLS_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reader.h"

struct lw_sym_frame {
    const char *function; /* "" when unknown (demangled when it was C++) */
    const char *file;     /* "" when unknown */
    unsigned line;        /* 0 when unknown */
    bool inlined;         /* this call was inlined into the next frame */
};

struct lw_sym_loc {
    uint64_t address;        /* the return address as recorded */
    const char *module;      /* path of the module holding it, "" if none */
    const char *module_name; /* its basename ("[vdso]" for the vDSO), "" if none */
    uint64_t offset;         /* address - module load bias (0 without a module) */
    size_t nframes;          /* >= 1 */
    const struct lw_sym_frame *frames; /* innermost first; the last is not inlined */
};

struct lw_sym_options {
    bool debuginfod; /* false: DEBUGINFOD_URLS is removed from the environment */
    bool quiet;      /* no warnings on stderr (missing or changed modules) */
};

typedef struct lw_sym lw_sym_t;

/* Prepare to symbolize addresses of snapshot s (which must outlive the
 * result). Never fails for missing files: those modules stay unresolved.
 * Returns NULL only when out of memory. */
lw_sym_t *lw_sym_new(const struct lw_snapshot *s, const struct lw_sym_options *opt);

/* Symbolize one recorded return address (looked up as address-1: every
 * recorded frame is a return address). The result lives as long as sym. */
const struct lw_sym_loc *lw_sym_lookup(lw_sym_t *sym, uint64_t address);

/* Free everything lw_sym_new and lw_sym_lookup made. NULL is fine. */
void lw_sym_free(lw_sym_t *sym);

#endif
