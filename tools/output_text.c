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

#define TEXT_DEFAULT_TOP 10

/* "12.3 MiB" (or "512 B"). */
static const char *human(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (v < 1024) {
        snprintf(buf, len, "%" PRIu64 " B", v);
        return buf;
    }
    double d = (double)v / 1024;
    size_t u = 0;
    while (d >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        d /= 1024;
        u++;
    }
    snprintf(buf, len, d >= 100 ? "%.0f %s" : "%.1f %s", d, units[u]);
    return buf;
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

static void header(FILE *f, const struct lw_report *r)
{
    const struct lw_selection *sel = r->sel;
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
    if (sel && sel->dir && sel->chosen.nsnaps > 1)
        fprintf(f, "            the newest of this process's %zu snapshots here; give a file to "
                   "see an earlier one\n", sel->chosen.nsnaps);
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
    if (st->nframes == 0)
        fputs("      (no frames: the stack could not be unwound, or the allocator mapped\n"
              "       memory while the process forked; see \"unwind failures\" below)\n", f);
    for (uint16_t i = 0; i < st->nframes; i++) {
        if (!r->sym) {
            fprintf(f, "      0x%" PRIx64 "\n", st->frames[i]);
            continue;
        }
        const struct lw_sym_loc *loc = lw_sym_lookup(r->sym, st->frames[i]);
        for (size_t k = 0; k < loc->nframes; k++)
            frame_line(f, loc, &loc->frames[k]);
    }
    if (st->flags & LW_STACK_TRUNCATED)
        fprintf(f, "      ... (outer frames cut: deeper than %u)\n", r->snap->proc.max_depth);
}

static void stacks(FILE *f, const struct lw_report *r)
{
    size_t live = 0;
    for (size_t i = 0; i < r->nstacks; i++)
        if (r->stacks[i].inuse_bytes || r->stacks[i].inuse_objects)
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
    for (size_t i = 0; i < shown; i++)
        stack(f, r, i + 1, &r->stacks[i]);
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

static int text_write(FILE *f, const struct lw_report *r)
{
    header(f, r);
    totals(f, r);
    stacks(f, r);
    others(f, r);
    fflush(f);
    return ferror(f) ? -1 : 0;
}

const struct lw_output lw_output_text = {"text", text_write};
