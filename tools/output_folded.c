/*
 * output_folded.c - folded stacks, the input of flame graph tools
 * (flamegraph.pl, inferno, speedscope): one line per call stack, frames
 * root first separated by ';', a space, then one number (--value: in-use
 * bytes by default). Inlined calls are frames of their own. Mapping stacks
 * start with a "[mmap]" or "[allocator]" root frame so their bytes never
 * merge into the heap's; cut stacks start with "[truncated]".
 */
#include "output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "framename.h"
#include "progress.h"

/* Frame names must not contain the separators: ';' and newlines become '_'. */
static void put_name(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc(*s == ';' || *s == '\n' || *s == '\r' ? '_' : *s, f);
}

static uint64_t value_of(const struct lw_ranked *rk, enum lw_value v)
{
    switch (v) {
    case LW_VALUE_INUSE_OBJECTS: return rk->inuse_objects;
    case LW_VALUE_ALLOC_BYTES: return rk->stack->alloc_bytes;
    case LW_VALUE_ALLOC_OBJECTS: return rk->stack->alloc_objects;
    case LW_VALUE_INUSE_BYTES:
    default: return rk->inuse_bytes;
    }
}

static int folded_write(FILE *f, const struct lw_report *r)
{
    char name[512];
    struct lw_progress prog;
    size_t shown = r->top && r->top < r->nstacks ? r->top : r->nstacks;
    lw_progress_begin(&prog, "folded: symbolizing stacks", shown);
    for (size_t i = 0; i < shown; i++) {
        lw_progress_step(&prog, i);
        const struct lw_ranked *rk = &r->stacks[i];
        const struct lw_snap_stack *st = rk->stack;
        uint64_t v = value_of(rk, r->value);
        if (v == 0)
            continue; /* flame graph tools draw nothing for 0 */
        bool sep = false;
        if (st->kind == LW_KIND_MMAP || st->kind == LW_KIND_ALLOCATOR) {
            fprintf(f, "[%s]", lw_reader_kind_name(st->kind));
            sep = true;
        }
        if (st->flags & LW_STACK_TRUNCATED) {
            fputs(sep ? ";[truncated]" : "[truncated]", f);
            sep = true;
        }
        if (st->nframes == 0) {
            fputs(sep ? ";[no frames]" : "[no frames]", f);
            sep = true;
        }
        for (size_t k = st->nframes; k-- > 0;) {
            const struct lw_sym_loc *loc = r->sym ? lw_sym_lookup(r->sym, st->frames[k]) : NULL;
            size_t nfr = loc ? loc->nframes : 1;
            /* loc->frames are innermost first: the caller comes last. */
            for (size_t j = nfr; j-- > 0;) {
                if (sep)
                    fputc(';', f);
                put_name(f, lw_frame_name(loc, loc ? &loc->frames[j] : NULL, st->frames[k], name,
                                          sizeof name));
                sep = true;
            }
        }
        fprintf(f, " %" PRIu64 "\n", v);
    }
    lw_progress_end(&prog);
    fflush(f);
    return ferror(f) ? -1 : 0;
}

const struct lw_output lw_output_folded = {"folded", folded_write};
