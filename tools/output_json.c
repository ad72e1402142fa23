/*
 * output_json.c - the report for programs, schema "leakwatch-report/1"
 * (docs/leakwatch.1 lists the keys). Stacks are ranked by bytes in use and
 * all listed unless --top is given; each recorded address expands to its
 * inline chain, innermost first, inlined frames flagged "inlined": true.
 */
#include "output.h"

#include <inttypes.h>
#include <stdlib.h>

#include "json.h"

static void hex(struct lw_json *j, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    lw_json_string(j, key, buf);
}

static void map_totals(struct lw_json *j, const char *key, const struct lw_totals_map *m)
{
    lw_json_object_begin(j, key, false);
    lw_json_u64(j, "mapped_bytes", m->mapped_bytes);
    lw_json_u64(j, "madv_free_bytes", m->madv_free_bytes);
    lw_json_u64(j, "madv_dontneed_bytes", m->madv_dontneed_bytes);
    lw_json_u64(j, "released_resident_bytes", m->released_resident_bytes);
    lw_json_object_end(j);
}

static void frames(struct lw_json *j, const struct lw_report *r, const struct lw_snap_stack *st)
{
    lw_json_array_begin(j, "frames", false);
    for (uint16_t i = 0; i < st->nframes; i++) {
        if (!r->sym) {
            lw_json_object_begin(j, NULL, true);
            hex(j, "address", st->frames[i]);
            lw_json_string(j, "module", "");
            lw_json_string(j, "function", "");
            lw_json_string(j, "file", "");
            lw_json_u64(j, "line", 0);
            lw_json_object_end(j);
            continue;
        }
        const struct lw_sym_loc *loc = lw_sym_lookup(r->sym, st->frames[i]);
        for (size_t k = 0; k < loc->nframes; k++) {
            const struct lw_sym_frame *fr = &loc->frames[k];
            lw_json_object_begin(j, NULL, true);
            hex(j, "address", loc->address);
            lw_json_string(j, "module", loc->module);
            lw_json_string(j, "function", fr->function);
            lw_json_string(j, "file", fr->file);
            lw_json_u64(j, "line", fr->line);
            if (fr->inlined)
                lw_json_bool(j, "inlined", true);
            lw_json_object_end(j);
        }
    }
    lw_json_array_end(j);
}

static int json_write(FILE *f, const struct lw_report *r)
{
    const struct lw_snapshot *s = r->snap;
    const struct lw_rec_totals *t = &s->totals;
    struct lw_json j;
    char when[40];
    lw_json_init(&j, f, true);
    lw_json_object_begin(&j, NULL, false);
    lw_json_string(&j, "format", "leakwatch-report/1");

    lw_json_object_begin(&j, "process", false);
    lw_json_u64(&j, "pid", s->proc.pid);
    lw_json_u64(&j, "ppid", s->proc.ppid);
    lw_json_string(&j, "exe", s->exe);
    lw_json_array_begin(&j, "cmdline", true);
    for (size_t i = 0; i < s->argc; i++)
        lw_json_string(&j, NULL, s->argv[i]);
    lw_json_array_end(&j);
    lw_json_object_end(&j);

    lw_output_iso_time(s->proc.time_ns, when, sizeof when);
    lw_json_object_begin(&j, "snapshot", false);
    lw_json_string(&j, "time", when);
    lw_json_string(&j, "trigger", lw_reader_trigger_name(s->proc.trigger));
    lw_json_u64(&j, "seq", s->proc.seq);
    lw_json_object_end(&j);

    lw_json_object_begin(&j, "sampling", false);
    lw_json_string(&j, "mode", s->proc.sample_interval ? "sampled" : "full");
    lw_json_u64(&j, "interval_bytes", s->proc.sample_interval);
    lw_json_object_end(&j);

    lw_json_object_begin(&j, "heap", false);
    lw_json_u64(&j, "inuse_bytes", t->heap_inuse_bytes);
    lw_json_u64(&j, "inuse_objects", t->heap_inuse_objects);
    lw_json_u64(&j, "alloc_bytes", t->heap_alloc_bytes);
    lw_json_u64(&j, "alloc_objects", t->heap_alloc_objects);
    lw_json_u64(&j, "free_objects", t->heap_free_objects);
    lw_json_object_end(&j);

    map_totals(&j, "mappings", &t->mmap);
    map_totals(&j, "allocator", &t->allocator);

    lw_json_object_begin(&j, "dropped", false);
    lw_json_u64(&j, "blocks", t->dropped_blocks);
    lw_json_u64(&j, "bytes", t->dropped_bytes);
    lw_json_u64(&j, "stacks", t->dropped_stacks);
    lw_json_u64(&j, "regions", t->dropped_regions);
    lw_json_u64(&j, "unwind_failures", t->unwind_failures);
    lw_json_u64(&j, "stale_blocks", t->stale_blocks);
    lw_json_u64(&j, "reentrant_calls", t->reentrant_calls);
    lw_json_object_end(&j);

    lw_json_array_begin(&j, "modules", false);
    for (size_t i = 0; i < s->nmodules; i++) {
        const struct lw_snap_module *m = &s->modules[i];
        char bid[2 * 64 + 1];
        size_t n = 0;
        for (uint32_t k = 0; k < m->build_id_len && n + 2 < sizeof bid; k++)
            n += (size_t)snprintf(bid + n, sizeof bid - n, "%02x", m->build_id[k]);
        bid[n] = '\0';
        lw_json_object_begin(&j, NULL, true);
        lw_json_string(&j, "path", m->path);
        hex(&j, "base", m->base);
        lw_json_string(&j, "build_id", bid);
        lw_json_object_end(&j);
    }
    lw_json_array_end(&j);

    size_t shown = r->top && r->top < r->nstacks ? r->top : r->nstacks;
    lw_json_array_begin(&j, "stacks", false);
    for (size_t i = 0; i < shown; i++) {
        const struct lw_ranked *rk = &r->stacks[i];
        lw_json_object_begin(&j, NULL, false);
        lw_json_u64(&j, "id", rk->stack->id);
        lw_json_string(&j, "kind", lw_reader_kind_name(rk->stack->kind));
        lw_json_u64(&j, "inuse_bytes", rk->inuse_bytes);
        lw_json_u64(&j, "inuse_objects", rk->inuse_objects);
        lw_json_u64(&j, "alloc_bytes", rk->stack->alloc_bytes);
        lw_json_u64(&j, "alloc_objects", rk->stack->alloc_objects);
        lw_json_bool(&j, "truncated", (rk->stack->flags & LW_STACK_TRUNCATED) != 0);
        frames(&j, r, rk->stack);
        lw_json_object_end(&j);
    }
    lw_json_array_end(&j);
    lw_json_object_end(&j);
    fflush(f);
    return ferror(f) ? -1 : 0;
}

const struct lw_output lw_output_json = {"json", json_write};
