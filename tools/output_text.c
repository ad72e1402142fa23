/*
 * output_text.c - the report for people: who and when, heap and mapping
 * totals, what leakwatch could not track, then the call stacks holding the
 * most memory with symbolized frames, and how to see the other processes.
 * Sizes are shown human-friendly with the exact byte count next to them.
 */
#include "output.h"

#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "waterfall.h"

#define TEXT_DEFAULT_TOP 10

#define TEXT_CANDIDATES 5

static const char *human(uint64_t v, char *buf, size_t len)
{
    return lw_human(v, buf, len);
}

/* "  label   12.3 MiB (12897484 bytes)" without a newline. */
static void size_line(FILE *f, const char *label, uint64_t bytes)
{
    char h[32];
    fprintf(f, "  %-26s %10s", label, human(bytes, h, sizeof h));
    if (bytes >= 1024)
        fprintf(f, " (%" PRIu64 " bytes)", bytes);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* "  threshold heap in use crossed 1.5 GiB: 1.6 GiB seen" */
static void threshold_line(FILE *f, const struct lw_rec_trigger *t)
{
    static const char *const what[] = {"?", "memory cgroup usage", "process RSS", "heap in use"};
    char a[32], b[32], c[32];
    fprintf(f, "  threshold %s crossed %s: %s seen",
            t->source < sizeof what / sizeof what[0] ? what[t->source] : "unknown source",
            lw_human(t->threshold_bytes, a, sizeof a),
            lw_human(t->observed_bytes, b, sizeof b));
    if (t->limit_bytes)
        fprintf(f, " (cgroup limit %s)", lw_human(t->limit_bytes, c, sizeof c));
    fputc('\n', f);
}

static void header(FILE *f, const struct lw_report *r)
{
    const struct lw_snapshot *s = r->snap;
    const struct lw_rec_process *p = &s->proc;
    char when[40];
    lw_output_iso_time(p->time_ns, when, sizeof when);
    fprintf(f, "leakwatch report: %s\n", r->path);
    fprintf(f, "  process   pid %u (parent %u)%s: %s\n", p->pid, p->ppid,
            (p->flags & LW_PROC_FORKED) ? ", a fork child" : "", s->exe[0] ? s->exe : "??");
    if (p->flags & LW_PROC_CMDLINE_OMITTED) {
        fputs("  command   (not recorded: LEAKWATCH_CMDLINE=0)\n", f);
    } else if (s->argc) {
        fputs("  command  ", f);
        for (size_t i = 0; i < s->argc; i++) {
            fputc(' ', f);
            lw_cli_shell_quote(f, s->argv[i]);
        }
        fputc('\n', f);
    }
    fprintf(f, "  snapshot  #%u, trigger %s, %s", p->seq, lw_reader_trigger_name(p->trigger), when);
    if (p->time_ns >= p->start_time_ns && p->start_time_ns)
        fprintf(f, ", %.3f s after tracking started",
                (double)(p->time_ns - p->start_time_ns) / 1e9);
    fputc('\n', f);
    if (r->series && r->series->npoints > 1)
        fprintf(f, "            the last of %zu snapshots of this process: totals and stacks are "
                   "this one's,\n            growth is over all %zu\n",
                r->series->npoints, r->series->npoints);
    if (s->has_trigger)
        threshold_line(f, &s->trigger);
    if (p->sample_interval)
        fprintf(f, "  sampling  one sample per %" PRIu64 " bytes allocated, on average: heap\n"
                   "            totals are exact (usable sizes); per-stack figures are estimates\n"
                   "            and add up to the totals only on average\n",
                p->sample_interval);
}

static void mappings(FILE *f, const char *title, const struct lw_totals_map *m)
{
    if (!m->mapped_bytes && !m->regions && !m->map_calls && !m->madv_free_bytes &&
        !m->madv_dontneed_bytes && !m->released_resident_bytes) {
        fprintf(f, "\n%s: none\n", title);
        return;
    }
    fprintf(f, "\n%s\n", title);
    size_line(f, "mapped now", m->mapped_bytes);
    fprintf(f, " in %" PRIu64 " %s\n", m->regions, plural(m->regions, "mapping", "mappings"));
    size_line(f, "advised MADV_FREE", m->madv_free_bytes);
    fputc('\n', f);
    size_line(f, "advised MADV_DONTNEED", m->madv_dontneed_bytes);
    fputc('\n', f);
    size_line(f, "released but resident", m->released_resident_bytes);
    fputs(m->released_resident_bytes ? "  <- MADV_FREE pages still counted in RSS\n" : "\n", f);
}

static void totals(FILE *f, const struct lw_report *r)
{
    const struct lw_rec_totals *t = &r->snap->totals;
    fputs("\nHeap (malloc family)\n", f);
    size_line(f, "in use", t->heap_inuse_bytes);
    fprintf(f, " in %" PRIu64 " %s\n", t->heap_inuse_objects,
            plural(t->heap_inuse_objects, "block", "blocks"));
    size_line(f, "allocated, ever", t->heap_alloc_bytes);
    fprintf(f, " in %" PRIu64 " %s\n", t->heap_alloc_objects,
            plural(t->heap_alloc_objects, "call", "calls"));
    size_line(f, "freed", t->heap_free_bytes);
    fprintf(f, " in %" PRIu64 " %s\n", t->heap_free_objects,
            plural(t->heap_free_objects, "call", "calls"));

    mappings(f, "Mappings made by the program (mmap)", &t->mmap);
    const struct lw_totals_map *a = &t->allocator;
    if (a->mapped_bytes || a->regions || a->map_calls || a->madv_free_bytes ||
        a->madv_dontneed_bytes || a->released_resident_bytes)
        mappings(f, "Mappings made by the allocator (mmap inside malloc)", a);

    if (t->dropped_blocks || t->dropped_bytes || t->dropped_stacks || t->dropped_regions ||
        t->unwind_failures || t->stale_blocks || t->reentrant_calls) {
        fputs("\nNot tracked (figures above are lower bounds)\n", f);
        if (t->dropped_blocks || t->dropped_bytes) {
            size_line(f, "blocks not tracked", t->dropped_bytes);
            fprintf(f, " in %" PRIu64 " %s (block table full)\n", t->dropped_blocks,
                    plural(t->dropped_blocks, "block", "blocks"));
        }
        if (t->dropped_stacks)
            fprintf(f, "  %-26s %10" PRIu64 " (stack table full)\n", "stacks not stored",
                    t->dropped_stacks);
        if (t->dropped_regions)
            fprintf(f, "  %-26s %10" PRIu64 " (region table full)\n", "mappings not tracked",
                    t->dropped_regions);
        if (t->unwind_failures)
            fprintf(f, "  %-26s %10" PRIu64 "\n", "unwind failures",
                    t->unwind_failures);
        if (t->stale_blocks)
            fprintf(f, "  %-26s %10" PRIu64 " (their free was not seen)\n", "stale blocks",
                    t->stale_blocks);
        if (t->reentrant_calls)
            fprintf(f, "  %-26s %10" PRIu64 " (made inside leakwatch, e.g. by a signal handler)\n",
                    "calls not recorded", t->reentrant_calls);
    }
    if (t->metadata_bytes) {
        fputc('\n', f);
        size_line(f, "leakwatch's own memory", t->metadata_bytes);
        fputs(" (not in the figures above)\n", f);
    }
}

static void frame_line(FILE *f, const struct lw_sym_loc *loc, const struct lw_sym_frame *fr)
{
    fprintf(f, "      %s", fr->function[0] ? fr->function : "??");
    if (fr->file[0])
        fprintf(f, " (%s:%u)", fr->file, fr->line);
    else if (loc->module_name[0])
        fprintf(f, " (%s+0x%" PRIx64 ")", loc->module_name, loc->offset);
    else
        fprintf(f, " (0x%" PRIx64 ")", loc->address);
    fputs(fr->inlined ? " [inlined]\n" : "\n", f);
}

static void stack(FILE *f, const struct lw_report *r, size_t rank, const struct lw_ranked *rk)
{
    const struct lw_snap_stack *st = rk->stack;
    char h[32], h2[32];
    bool heap = st->kind == LW_KIND_HEAP;
    fprintf(f, "\n#%zu  %s", rank, human(rk->inuse_bytes, h, sizeof h));
    if (rk->inuse_bytes >= 1024)
        fprintf(f, " (%" PRIu64 " bytes)", rk->inuse_bytes);
    fprintf(f, " in %" PRIu64 " %s [%s]; %s %s in %" PRIu64 " %s\n", rk->inuse_objects,
            heap ? plural(rk->inuse_objects, "block", "blocks")
                 : plural(rk->inuse_objects, "mapping", "mappings"),
            lw_reader_kind_name(st->kind), heap ? "allocated" : "mapped",
            human(st->alloc_bytes, h2, sizeof h2), st->alloc_objects,
            plural(st->alloc_objects, "call", "calls"));
    lw_output_text_frames(f, r->sym, st, r->snap->proc.max_depth);
}

void lw_output_text_frames(FILE *f, lw_sym_t *sym, const struct lw_snap_stack *st,
                           uint32_t max_depth)
{
    if (st->nframes == 0)
        fputs("      (no frames: the stack could not be unwound, or the allocator mapped\n"
              "       memory while the process forked; see \"unwind failures\" below)\n", f);
    for (uint16_t i = 0; i < st->nframes; i++) {
        if (!sym) {
            fprintf(f, "      0x%" PRIx64 "\n", st->frames[i]);
            continue;
        }
        const struct lw_sym_loc *loc = lw_sym_lookup(sym, st->frames[i]);
        for (size_t k = 0; k < loc->nframes; k++)
            frame_line(f, loc, &loc->frames[k]);
    }
    if (st->flags & LW_STACK_TRUNCATED)
        fprintf(f, "      ... (outer frames cut: deeper than %u)\n", max_depth);
}

/* Thread creation stacks are listed under "Threads", not here. */
static bool holds_memory(const struct lw_ranked *rk)
{
    return rk->stack->kind != LW_KIND_THREAD && (rk->inuse_bytes || rk->inuse_objects);
}

static void stacks(FILE *f, const struct lw_report *r)
{
    size_t live = 0;
    for (size_t i = 0; i < r->nstacks; i++)
        if (holds_memory(&r->stacks[i]))
            live++;
    size_t top = r->top ? r->top : TEXT_DEFAULT_TOP;
    size_t shown = live < top ? live : top;
    if (live == 0) {
        fprintf(f, "\nNo call stack holds memory now (%zu %s recorded, all freed).\n", r->nstacks,
                plural(r->nstacks, "stack", "stacks"));
        return;
    }
    if (shown < live)
        fprintf(f, "\nTop %zu of %zu call stacks holding memory, by bytes in use\n", shown, live);
    else
        fprintf(f, "\n%s %zu call %s holding memory, by bytes in use\n",
                live == 1 ? "The" : "All", live, plural(live, "stack", "stacks"));
    for (size_t i = 0, k = 0; k < shown; i++)
        if (holds_memory(&r->stacks[i]))
            stack(f, r, ++k, &r->stacks[i]);
    if (shown < live)
        fprintf(f, "\n(%zu more; --top N shows more, --format json shows all)\n", live - shown);
}

static void others(FILE *f, const struct lw_report *r)
{
    const struct lw_selection *sel = r->sel;
    if (!sel || !sel->nothers)
        return;
    fprintf(f, "\nOther processes %s:\n", sel->dir ? "in this directory" : "among these files");
    for (size_t i = 0; i < sel->nothers; i++) {
        const struct lw_proc_summary *p = &sel->others[i];
        fprintf(f, "  pid %u (%s %u) %s, %zu %s: ", p->pid,
                (p->flags & LW_PROC_FORKED) ? "fork child of" : "parent", p->ppid,
                p->exe[0] ? p->exe : "??", p->nsnaps, plural(p->nsnaps, "snapshot", "snapshots"));
        lw_output_other_command(f, sel, p);
        fputc('\n', f);
    }
}

/* The first frame's function, for one-line mentions ("session_open"). */
static const char *frame0_name(const struct lw_report *r, const struct lw_snap_stack *st)
{
    if (!r->sym || !st->nframes)
        return NULL;
    const struct lw_sym_loc *loc = lw_sym_lookup(r->sym, st->frames[0]);
    return loc->frames[loc->nframes - 1].function[0] ? loc->frames[loc->nframes - 1].function
                                                     : NULL;
}

/* Threads: totals, then each creation stack with live threads. */
static void threads(FILE *f, const struct lw_report *r)
{
    const struct lw_snapshot *s = r->snap;
    uint64_t created = 0, exited = 0;
    size_t nst = 0;
    for (size_t i = 0; i < s->nstacks; i++)
        if (s->stacks[i].kind == LW_KIND_THREAD) {
            created += s->stacks[i].alloc_objects;
            exited += s->stacks[i].free_objects;
            nst++;
        }
    if (!nst)
        return;
    fprintf(f, "\nThreads (pthread_create)\n  %" PRIu64 " live, %" PRIu64 " created, %" PRIu64
               " exited, from %zu call %s\n",
            created > exited ? created - exited : 0, created, exited, nst,
            plural(nst, "site", "sites"));
    size_t k = 0;
    for (size_t i = 0; i < r->nstacks && k < TEXT_DEFAULT_TOP; i++) {
        const struct lw_ranked *rk = &r->stacks[i];
        if (rk->stack->kind != LW_KIND_THREAD || !rk->inuse_objects)
            continue;
        const struct lw_snap_stack *st = rk->stack;
        char h[32], h2[32];
        uint64_t resident = 0;
        size_t nrec = 0, measured = 0;
        for (size_t q = 0; q < s->nthreads; q++)
            if (s->threads[q].stack == st->id) {
                nrec++;
                if (s->threads[q].resident_bytes != UINT64_MAX) {
                    measured++;
                    resident += s->threads[q].resident_bytes;
                }
            }
        fprintf(f, "\n#%zu  %" PRIu64 " live %s (%" PRIu64 " created, %" PRIu64
                   " exited), stacks of %s as configured",
                ++k, rk->inuse_objects, plural(rk->inuse_objects, "thread", "threads"),
                st->alloc_objects, st->free_objects,
                human(st->alloc_bytes > st->free_bytes ? st->alloc_bytes - st->free_bytes : 0, h,
                      sizeof h));
        if (measured)
            fprintf(f, ", %s resident%s", human(resident, h2, sizeof h2),
                    measured < nrec ? " (of those measured)" : "");
        fputs(" [thread]\n", f);
        lw_output_text_frames(f, r->sym, st, s->proc.max_depth);
    }
}

/* The age profile of the last snapshot's live heap blocks (AGE records). */
static void age_profile(FILE *f, const struct lw_snapshot *s)
{
    /* Buckets are merged by their lower bound, in ascending order. */
    uint64_t lows[64], bytes[64], objs[64];
    size_t n = 0;
    for (size_t i = 0; i < s->nages; i++)
        for (uint32_t k = 0; k < s->ages[i].nbuckets; k++) {
            const struct lw_age_bucket *b = &s->ages[i].buckets[k];
            size_t q = 0;
            while (q < n && lows[q] < b->min_age_ns)
                q++;
            if (q == n || lows[q] != b->min_age_ns) {
                if (n == 64)
                    continue; /* more distinct buckets than any library writes */
                memmove(&lows[q + 1], &lows[q], (n - q) * sizeof lows[0]);
                memmove(&bytes[q + 1], &bytes[q], (n - q) * sizeof bytes[0]);
                memmove(&objs[q + 1], &objs[q], (n - q) * sizeof objs[0]);
                lows[q] = b->min_age_ns;
                bytes[q] = objs[q] = 0;
                n++;
            }
            bytes[q] += b->bytes;
            objs[q] += b->objects;
        }
    fputs("\nAge of the live heap blocks\n", f);
    for (size_t q = 0; q < n; q++) {
        char label[48], h[32];
        if (q + 1 < n)
            snprintf(label, sizeof label, "%.1f s to %.1f s old", (double)lows[q] / 1e9,
                     (double)lows[q + 1] / 1e9);
        else
            snprintf(label, sizeof label, "%.1f s old or more", (double)lows[q] / 1e9);
        fprintf(f, "  %-26s %10s in %" PRIu64 " %s\n", label, human(bytes[q], h, sizeof h),
                objs[q], plural(objs[q], "block", "blocks"));
    }
}

/* Growth over the series: leak candidates, or why there are none. */
static void growth(FILE *f, const struct lw_report *r)
{
    const struct lw_series *se = r->series;
    if (!se || se->npoints < 2) {
        fputs("\nGrowth: one snapshot; growth needs two snapshots of one process (give several\n"
              "        snapshots of it, or their directory)\n", f);
        if (r->snap->nages)
            age_profile(f, r->snap);
        return;
    }
    const struct lw_series_point *a = &se->points[0], *b = &se->points[se->npoints - 1];
    char h1[32], h2[32];
    fprintf(f, "\nGrowth over %zu snapshots (#%u to #%u, %.1f s): heap in use %s -> %s\n",
            se->npoints, a->seq, b->seq, b->t - a->t, human(a->heap_inuse_bytes, h1, sizeof h1),
            human(b->heap_inuse_bytes, h2, sizeof h2));
    char since[48];
    snprintf(since, sizeof since, "since snapshot #%u", a->seq);
    fputs("  ", f);
    lw_waterfall_growth_text(f, &se->first_wf, &se->last_wf, since);
    if (!r->ncands) {
        fputs("  no call stack grew: no leak candidates\n", f);
        return;
    }
    fputs("\nLeak candidates, best first. score = share of all growth x (intervals grown /\n"
          "intervals)^2 x 1 if it never fell (0.75 if it keeps blocks older than the series\n"
          "while freeing younger ones, else 0.5); slopes are least-squares fits\n",
          f);
    size_t shown = r->ncands < TEXT_CANDIDATES ? r->ncands : TEXT_CANDIDATES;
    for (size_t i = 0; i < shown; i++) {
        const struct lw_candidate *c = &r->cands[i];
        const char *fn = frame0_name(r, c->ss->stack);
        fprintf(f, "\n#%zu  score %.3f  %s [%s, stack %u]\n    %s\n", i + 1, c->score,
                fn ? fn : "(function unknown)", lw_reader_kind_name(c->ss->stack->kind), c->stack,
                c->reason);
        lw_output_text_frames(f, r->sym, c->ss->stack, r->snap->proc.max_depth);
    }
    if (shown < r->ncands)
        fprintf(f, "\n(%zu more candidates; --format json lists all)\n", r->ncands - shown);
}

/* The kernel's view and the waterfall (1.2 snapshots). */
static void kernel(FILE *f, const struct lw_report *r)
{
    struct lw_kview v;
    struct lw_waterfall w;
    lw_kview_from_snapshot(r->snap, &v);
    lw_waterfall_build(&v, &w);
    lw_kview_text(f, &v, &w);
}

/* Over a series, where the growth went comes first: when it is not heap,
 * the stacks below are not the answer (page cache, MADV_FREE, mappings). */
static void growth_first(FILE *f, const struct lw_report *r)
{
    const struct lw_series *se = r->series;
    if (!se || se->npoints < 2)
        return;
    char since[48];
    snprintf(since, sizeof since, "since snapshot #%u", se->points[0].seq);
    fputs("  growth    ", f);
    lw_waterfall_growth_text(f, &se->first_wf, &se->last_wf, since);
}

static int text_write(FILE *f, const struct lw_report *r)
{
    header(f, r);
    growth_first(f, r);
    kernel(f, r);
    totals(f, r);
    threads(f, r);
    growth(f, r);
    stacks(f, r);
    others(f, r);
    fflush(f);
    return ferror(f) ? -1 : 0;
}

const struct lw_output lw_output_text = {"text", text_write};
