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
#include "waterfall.h"

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

void lw_output_json_frames(struct lw_json *j, lw_sym_t *sym, const struct lw_snap_stack *st)
{
    lw_json_array_begin(j, "frames", false);
    for (uint16_t i = 0; i < st->nframes; i++) {
        if (!sym) {
            lw_json_object_begin(j, NULL, true);
            hex(j, "address", st->frames[i]);
            lw_json_string(j, "module", "");
            lw_json_string(j, "function", "");
            lw_json_string(j, "file", "");
            lw_json_u64(j, "line", 0);
            lw_json_object_end(j);
            continue;
        }
        const struct lw_sym_loc *loc = lw_sym_lookup(sym, st->frames[i]);
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

/* Which ranked stacks "stacks" lists: the top N (all without --top), and
 * every stack another key names (candidates, threads, ages), so each id
 * resolves. malloc'd, one flag per ranked stack. */
static bool *shown_stacks(const struct lw_report *r)
{
    size_t top = r->top && r->top < r->nstacks ? r->top : r->nstacks;
    bool *show = calloc(r->nstacks ? r->nstacks : 1, sizeof *show);
    if (!show)
        abort();
    for (size_t i = 0; i < r->nstacks; i++) {
        const struct lw_snap_stack *st = r->stacks[i].stack;
        show[i] = i < top || st->kind == LW_KIND_THREAD;
        for (size_t k = 0; !show[i] && k < r->ncands; k++)
            show[i] = r->cands[k].stack == st->id;
    }
    return show;
}

static int cmp_bucket(const void *a, const void *b)
{
    uint64_t x = ((const struct lw_age_bucket *)a)->min_age_ns;
    uint64_t y = ((const struct lw_age_bucket *)b)->min_age_ns;
    return x < y ? -1 : x > y;
}

static void bucket_json(struct lw_json *j, const struct lw_age_bucket *b)
{
    lw_json_object_begin(j, NULL, true);
    lw_json_u64(j, "min_age_ns", b->min_age_ns);
    lw_json_u64(j, "bytes", b->bytes);
    lw_json_u64(j, "objects", b->objects);
    lw_json_object_end(j);
}

/* "snapshot.threshold": what a threshold trigger watched (TRIGGER record). */
static void threshold_json(struct lw_json *j, const struct lw_snapshot *s)
{
    if (!s->has_trigger)
        return;
    lw_json_object_begin(j, "threshold", true);
    lw_json_string(j, "source", lw_reader_watch_name(s->trigger.source));
    lw_json_u64(j, "threshold_bytes", s->trigger.threshold_bytes);
    lw_json_u64(j, "observed_bytes", s->trigger.observed_bytes);
    if (s->trigger.limit_bytes)
        lw_json_u64(j, "limit_bytes", s->trigger.limit_bytes);
    else
        lw_json_null(j, "limit_bytes");
    lw_json_object_end(j);
}

/* "threads": live/created/exited over the thread creation stacks, and per
 * stack (most live first; the order of r->stacks for ties). */
static void threads_json(struct lw_json *j, const struct lw_report *r)
{
    const struct lw_snapshot *s = r->snap;
    uint64_t created = 0, exited = 0;
    for (size_t i = 0; i < s->nstacks; i++)
        if (s->stacks[i].kind == LW_KIND_THREAD) {
            created += s->stacks[i].alloc_objects;
            exited += s->stacks[i].free_objects;
        }
    lw_json_object_begin(j, "threads", false);
    lw_json_u64(j, "live", created > exited ? created - exited : 0);
    lw_json_u64(j, "created", created);
    lw_json_u64(j, "exited", exited);
    lw_json_array_begin(j, "by_stack", false);
    for (size_t i = 0; i < r->nstacks; i++) { /* ranked: most live threads first */
        const struct lw_snap_stack *st = r->stacks[i].stack;
        if (st->kind != LW_KIND_THREAD || r->stacks[i].inuse_objects == 0)
            continue;
        uint64_t resident = 0;
        bool measured = true;
        size_t nrec = 0;
        for (size_t k = 0; k < s->nthreads; k++)
            if (s->threads[k].stack == st->id) {
                nrec++;
                if (s->threads[k].resident_bytes == UINT64_MAX)
                    measured = false;
                else
                    resident += s->threads[k].resident_bytes;
            }
        lw_json_object_begin(j, NULL, true);
        lw_json_u64(j, "stack", st->id);
        lw_json_u64(j, "live", r->stacks[i].inuse_objects);
        lw_json_u64(j, "created", st->alloc_objects);
        lw_json_u64(j, "exited", st->free_objects);
        lw_json_u64(j, "stack_bytes",
                    st->alloc_bytes > st->free_bytes ? st->alloc_bytes - st->free_bytes : 0);
        if (measured && nrec)
            lw_json_u64(j, "resident_bytes", resident);
        else
            lw_json_null(j, "resident_bytes");
        lw_json_object_end(j);
    }
    lw_json_array_end(j);
    lw_json_object_end(j);
}

static void u64_or_null(struct lw_json *j, const char *key, uint64_t v)
{
    if (v == LW_VALUE_NA)
        lw_json_null(j, key);
    else
        lw_json_u64(j, key, v);
}

/* "series" (one entry per snapshot of the process), "growth",
 * "leak_candidates" (best first) and "age_profile" (of the last snapshot). */
static void series_json(struct lw_json *j, const struct lw_report *r)
{
    const struct lw_series *se = r->series;
    char when[40];
    lw_json_array_begin(j, "series", false);
    for (size_t i = 0; se && i < se->npoints; i++) {
        const struct lw_series_point *p = &se->points[i];
        lw_output_iso_time(p->time_ns, when, sizeof when);
        lw_json_object_begin(j, NULL, true);
        lw_json_u64(j, "seq", p->seq);
        lw_json_u64(j, "time_ns", p->time_ns);
        lw_json_string(j, "time", when);
        lw_json_double(j, "t_s", p->t, 3);
        lw_json_string(j, "trigger", lw_reader_trigger_name(p->trigger));
        lw_json_u64(j, "heap_inuse_bytes", p->heap_inuse_bytes);
        lw_json_u64(j, "heap_inuse_objects", p->heap_inuse_objects);
        lw_json_u64(j, "mmap_bytes", p->mmap_bytes);
        lw_json_u64(j, "threads_live", p->threads_live);
        lw_json_u64(j, "released_resident_bytes", p->released_resident_bytes);
        u64_or_null(j, "rss_bytes", p->rss_bytes);
        u64_or_null(j, "file_cache_bytes", p->file_cache_bytes);
        u64_or_null(j, "working_set_bytes", p->working_set_bytes);
        lw_json_object_end(j);
    }
    lw_json_array_end(j);

    size_t npoints = se ? se->npoints : 1;
    lw_json_object_begin(j, "growth", false);
    lw_json_u64(j, "snapshots", npoints);
    lw_json_double(j, "seconds", se ? se->points[npoints - 1].t - se->points[0].t : 0, 3);
    lw_json_string(j, "slope", "least squares over every snapshot");
    if (npoints < 2)
        lw_json_string(j, "note", "growth needs two snapshots of one process: give several "
                                  "snapshots, or their directory");
    lw_json_object_end(j);

    lw_json_array_begin(j, "leak_candidates", false);
    for (size_t i = 0; i < r->ncands; i++) {
        const struct lw_candidate *c = &r->cands[i];
        lw_json_object_begin(j, NULL, false);
        lw_json_u64(j, "stack", c->stack);
        lw_json_string(j, "kind", lw_reader_kind_name(c->ss->stack->kind));
        lw_json_double(j, "score", c->score, 6);
        lw_json_i64(j, "growth_bytes", c->growth_bytes);
        lw_json_double(j, "growth_bytes_per_s", c->growth_bytes_per_s, 1);
        lw_json_double(j, "growth_share", c->growth_share, 6);
        lw_json_u64(j, "intervals_grown", c->intervals_grown);
        lw_json_u64(j, "intervals", c->intervals);
        lw_json_bool(j, "never_fell", c->never_fell);
        if (c->ss->stack->kind == LW_KIND_THREAD) {
            lw_json_i64(j, "growth_threads", c->growth_threads);
            lw_json_u64(j, "exited", c->exited);
        } else {
            lw_json_u64(j, "freed_objects", c->freed_objects);
            lw_json_u64(j, "kept_bytes", c->kept_bytes);
            lw_json_u64(j, "oldest_age_ns", c->oldest_age_ns);
        }
        lw_json_string(j, "reason", c->reason);
        lw_json_object_end(j);
    }
    lw_json_array_end(j);

    /* Ages of the live blocks in the last snapshot: all heap stacks merged
     * by bucket, then per stack for the stacks listed in "stacks". */
    const struct lw_snapshot *s = r->snap;
    if (!s->nages) {
        lw_json_null(j, "age_profile");
        return;
    }
    size_t nb = 0;
    for (size_t i = 0; i < s->nages; i++)
        nb += s->ages[i].nbuckets;
    struct lw_age_bucket *all = calloc(nb ? nb : 1, sizeof *all);
    if (!all)
        abort();
    size_t nall = 0;
    for (size_t i = 0; i < s->nages; i++)
        for (uint32_t k = 0; k < s->ages[i].nbuckets; k++) {
            const struct lw_age_bucket *b = &s->ages[i].buckets[k];
            size_t q = 0;
            while (q < nall && all[q].min_age_ns != b->min_age_ns)
                q++;
            if (q == nall)
                all[nall++] = (struct lw_age_bucket){b->min_age_ns, 0, 0};
            all[q].bytes += b->bytes;
            all[q].objects += b->objects;
        }
    qsort(all, nall, sizeof *all, cmp_bucket);
    lw_json_object_begin(j, "age_profile", false);
    lw_json_array_begin(j, "buckets", false);
    for (size_t i = 0; i < nall; i++)
        bucket_json(j, &all[i]);
    lw_json_array_end(j);
    free(all);
    bool *show = shown_stacks(r);
    lw_json_array_begin(j, "stacks", false);
    for (size_t i = 0; i < r->nstacks; i++) {
        const struct lw_snap_age *a = show[i] ? lw_reader_find_age(s, r->stacks[i].stack->id) : NULL;
        if (!a)
            continue;
        uint64_t oldest = 0;
        for (uint32_t k = 0; k < a->nbuckets; k++)
            if (a->buckets[k].objects || a->buckets[k].bytes)
                oldest = a->buckets[k].min_age_ns;
        lw_json_object_begin(j, NULL, false);
        lw_json_u64(j, "stack", a->stack);
        lw_json_u64(j, "oldest_age_ns", oldest);
        lw_json_array_begin(j, "buckets", false);
        for (uint32_t k = 0; k < a->nbuckets; k++)
            bucket_json(j, &a->buckets[k]);
        lw_json_array_end(j);
        lw_json_object_end(j);
    }
    lw_json_array_end(j);
    free(show);
    lw_json_object_end(j);
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
    threshold_json(&j, s);
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

    /* leakwatch's own memory in the process (tables, stacks, writer
     * buffers): it counts against the same cgroup limit. */
    lw_json_object_begin(&j, "leakwatch", false);
    lw_json_u64(&j, "metadata_bytes", t->metadata_bytes);
    lw_json_u64(&j, "live_table_slots", t->live_table_slots);
    lw_json_u64(&j, "stack_cache_hits", t->stack_cache_hits);
    lw_json_u64(&j, "stack_cache_misses", t->stack_cache_misses);
    lw_json_object_end(&j);

    struct lw_kview kv;
    struct lw_waterfall wf;
    lw_kview_from_snapshot(s, &kv);
    lw_waterfall_build(&kv, &wf);
    lw_kview_json(&j, &kv, &wf);

    threads_json(&j, r);
    series_json(&j, r);
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

    bool *show = shown_stacks(r);
    lw_json_array_begin(&j, "stacks", false);
    for (size_t i = 0; i < r->nstacks; i++) {
        const struct lw_ranked *rk = &r->stacks[i];
        if (!show[i])
            continue;
        lw_json_object_begin(&j, NULL, false);
        lw_json_u64(&j, "id", rk->stack->id);
        lw_json_string(&j, "kind", lw_reader_kind_name(rk->stack->kind));
        lw_json_u64(&j, "inuse_bytes", rk->inuse_bytes);
        lw_json_u64(&j, "inuse_objects", rk->inuse_objects);
        lw_json_u64(&j, "alloc_bytes", rk->stack->alloc_bytes);
        lw_json_u64(&j, "alloc_objects", rk->stack->alloc_objects);
        lw_json_bool(&j, "truncated", (rk->stack->flags & LW_STACK_TRUNCATED) != 0);
        lw_output_json_frames(&j, r->sym, rk->stack);
        lw_json_object_end(&j);
    }
    lw_json_array_end(&j);
    free(show);
    lw_json_object_end(&j);
    fflush(f);
    return ferror(f) ? -1 : 0;
}

const struct lw_output lw_output_json = {"json", json_write};
