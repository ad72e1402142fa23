/*
 * waterfall.c - the gap between the heap and the container monitor,
 * explained line by line (see waterfall.h), in text and JSON. The lines:
 *   heap_in_use        malloc'd and not freed (exact, from the tables)
 *   allocator_idle     anon - heap - leakwatch - mappings - released (clamped at 0)
 *   leakwatch_own      leakwatch's own tables, stacks and buffers (anonymous)
 *   tracked_mappings   the program's own mmap, not advised away
 *   released_resident  MADV_FREE'd, still resident: LazyFree (else ledger)
 *   rss                the kernel's resident set (anon + file + shmem)
 *   page_cache         the process's files in the page cache
 *   cgroup_working_set usage - inactive_file, clamped at 0 (cAdvisor, kubelet)
 *   cgroup_usage       everything charged to the memory cgroup
 * Without the preload (inspect) the first three become anon_in_use.
 */
#include "waterfall.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#define NA LW_VALUE_NA

const char *lw_human(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (v == NA) {
        snprintf(buf, len, "n/a");
        return buf;
    }
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

/* Human sizes for notes: a few rotating buffers. */
static const char *hb(uint64_t v)
{
    static char bufs[8][32];
    static unsigned next;
    char *b = bufs[next++ % 8];
    return lw_human(v, b, 32);
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
    if (a == NA || b == NA)
        return NA;
    return a > b ? a - b : 0;
}

void lw_kview_from_snapshot(const struct lw_snapshot *s, struct lw_kview *v)
{
    const struct lw_rec_totals *t = &s->totals;
    memset(v, 0, sizeof *v);
    v->have_heap = true;
    v->heap_inuse = t->heap_inuse_bytes;
    uint64_t away = t->mmap.madv_free_bytes + t->mmap.madv_dontneed_bytes;
    v->tracked_in_use = t->mmap.mapped_bytes > away ? t->mmap.mapped_bytes - away : 0;
    v->ledger_released = t->mmap.released_resident_bytes + t->allocator.released_resident_bytes;
    v->own_bytes = t->metadata_bytes;
    v->has_kproc = s->has_kproc;
    v->kproc = s->kproc;
    v->has_cgroup = s->has_cgroup;
    v->cg = s->cgroup;
    v->cgroup_path = s->cgroup_path;
    v->pc = s->page_cache;
    v->npc = s->npage_cache;
    v->has_alloc = s->has_alloc_stats;
    v->alloc = s->alloc_stats;
}

__attribute__((format(printf, 6, 7))) static void add(struct lw_waterfall *w, const char *name,
                                                      const char *label, uint64_t bytes, bool part,
                                                      const char *fmt, ...)
{
    if (w->n >= LW_WF_MAX)
        return;
    struct lw_wf_line *l = &w->line[w->n++];
    l->name = name;
    l->label = label;
    l->bytes = bytes;
    l->rank_bytes = bytes;
    l->part = part;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->note, sizeof l->note, fmt, ap);
    va_end(ap);
}

static uint64_t page_cache_sum(const struct lw_kview *v, bool data_only)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < v->npc; i++) {
        const struct lw_rec_page_cache *r = &v->pc[i].rec;
        /* Files only mapped now (the program's code, its libraries) are
         * shared and rarely what grew: they do not make the page cache
         * "the largest part". Open, or seen open earlier (a log), do. */
        if (data_only && (r->flags & (LW_PC_OPEN | LW_PC_MAPPED | LW_PC_SEEN)) == LW_PC_MAPPED)
            continue;
        if (r->cached_bytes != NA)
            sum += r->cached_bytes;
    }
    return sum;
}

static void allocator_view(const struct lw_kview *v, char *buf, size_t len)
{
    const struct lw_rec_alloc_stats *a = &v->alloc;
    buf[0] = '\0';
    if (!v->has_alloc)
        return;
    if (a->allocator == LW_ALLOCATOR_GLIBC)
        snprintf(buf, len,
                 " The allocator's own view (glibc mallinfo2): %s in use, %s in free chunks, "
                 "%s in arenas, %s mmapped, %s trimmable at the top (malloc_trim(0) returns "
                 "free memory; MALLOC_ARENA_MAX=2 limits per-thread arenas).",
                 hb(a->in_use_bytes), hb(a->free_bytes), hb(a->arena_bytes), hb(a->mmap_bytes),
                 hb(a->releasable_bytes));
    else if (a->allocator == LW_ALLOCATOR_JEMALLOC)
        snprintf(buf, len,
                 " The allocator's own view (jemalloc): allocated %s, active %s, resident %s, "
                 "mapped %s, retained %s (dirty pages are purged after dirty_decay_ms).",
                 hb(a->in_use_bytes), hb(a->arena_bytes), hb(a->resident_bytes),
                 hb(a->mmap_bytes), hb(a->retained_bytes));
}

static void count_str(char *buf, size_t len, uint64_t v)
{
    if (v == NA)
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%" PRIu64, v);
}

void lw_waterfall_build(const struct lw_kview *v, struct lw_waterfall *w)
{
    const struct lw_rec_kernel_proc *k = &v->kproc;
    uint64_t anon = v->has_kproc ? k->anon_bytes : NA;
    uint64_t lazy = v->has_kproc ? k->lazyfree_bytes : NA;
    uint64_t released = lazy != NA ? lazy : (v->have_heap ? v->ledger_released : NA);
    memset(w, 0, sizeof *w);

    if (v->have_heap && !v->has_kproc) { /* a snapshot older than 1.2: the heap is all we know */
        add(w, "heap_in_use", "heap in use", v->heap_inuse, true,
            "Blocks the program allocated (malloc, new) and has not freed.");
        return;
    }
    if (v->have_heap) {
        add(w, "heap_in_use", "heap in use", v->heap_inuse, true,
            "Blocks the program allocated (malloc, new) and has not freed. The call stacks "
            "below say where; a stack that keeps growing between snapshots is a leak.");
        char av[512];
        allocator_view(v, av, sizeof av);
        uint64_t idle = sub0(sub0(sub0(sub0(anon, v->heap_inuse), v->own_bytes), v->tracked_in_use),
                             released == NA ? 0 : released);
        add(w, "allocator_idle", "allocator idle and other", idle, true,
            "Resident anonymous memory that is neither live heap, leakwatch's own nor the "
            "program's own mappings: free memory the allocator keeps, thread stacks, runtime "
            "and library data (= RSS anon %s - heap - leakwatch - mappings - released, clamped "
            "at 0). If it grows while the heap is flat, suspect fragmentation or per-thread "
            "arenas.%s",
            hb(anon), av);
        if (v->own_bytes)
            add(w, "leakwatch_own", "leakwatch's own memory", v->own_bytes, true,
                "leakwatch's tables of live blocks and call stacks and its snapshot buffers "
                "(about 34 bytes per live block), anonymous memory in this process that exists "
                "only while it is traced: it counts in RSS and against the cgroup limit, and "
                "goes away without the preload (or use --sample for less).");
        add(w, "tracked_mappings", "program's mappings", v->tracked_in_use, true,
            "Memory the program mapped itself with mmap and still holds (bytes mapped, not "
            "advised away); the [mmap] call stacks below say where.");
    } else {
        add(w, "anon_in_use", "anonymous in use", sub0(anon, lazy == NA ? 0 : lazy), true,
            "Anonymous memory in use (RSS anon %s minus LazyFree): heap, stacks, runtime data. "
            "Without the preload leakwatch cannot split it; `leakwatch run` shows the heap by "
            "call stack.",
            hb(anon));
    }
    if (released == 0)
        add(w, "released_resident", "released but resident", 0, true,
            "Nothing released with MADV_FREE is still resident.");
    else if (v->have_heap)
        add(w, "released_resident", "released but resident", released, true,
            "Released with MADV_FREE and still counted in RSS (kernel LazyFree %s; leakwatch's "
            "ledger of the program's madvise calls %s). The kernel takes these pages back only "
            "under memory pressure. To return them at once use MADV_DONTNEED: "
            "LEAKWATCH_MADV_FREE=dontneed (Go: GODEBUG=madvdontneed=1).",
            hb(lazy), hb(v->ledger_released));
    else
        add(w, "released_resident", "released but resident", released, true,
            "Released with MADV_FREE and still counted in RSS (kernel LazyFree). The kernel "
            "takes these pages back only under memory pressure. To return them at once use "
            "MADV_DONTNEED (Go: GODEBUG=madvdontneed=1; C under `leakwatch run`: "
            "--madv-free=dontneed).");
    add(w, "rss", "RSS (resident set)", v->has_kproc ? k->rss_bytes : NA, false,
        "What `ps` and `top` show: anon %s + file-backed %s + shmem %s (peak %s, swap %s).",
        hb(anon), hb(v->has_kproc ? k->file_bytes : NA), hb(v->has_kproc ? k->shmem_bytes : NA),
        hb(v->has_kproc ? k->hwm_bytes : NA), hb(v->has_kproc ? k->swap_bytes : NA));
    uint64_t pcs = page_cache_sum(v, false);
    if (v->npc)
        add(w, "page_cache", "file page cache", pcs, true,
            "Pages of the program's files (open, mapped or seen open earlier) kept in the page "
            "cache, largest first below; the largest is %s. Not in RSS unless mapped, but charged "
            "to the cgroup, and once read again they count in its working set. A log that grows "
            "here: turn it off or down, or drop its pages with fsync + posix_fadvise("
            "POSIX_FADV_DONTNEED). MADV_FREE'd memory is anonymous and never counted here.",
            v->pc[0].path);
    else
        add(w, "page_cache", "file page cache", 0, true,
            "None of the program's files has pages in the page cache.");
    w->line[w->n - 1].rank_bytes = page_cache_sum(v, true);
    if (!v->has_cgroup)
        return;
    const struct lw_rec_kernel_cgroup *c = &v->cg;
    uint64_t ws = sub0(c->usage_bytes, c->inactive_file_bytes);
    add(w, "cgroup_working_set", "cgroup working set", ws, false,
        "What container monitors show and the OOM killer weighs: working set = usage - "
        "inactive_file = %s - %s (clamped at 0; container_memory_working_set_bytes). "
        "inactive_file also holds MADV_FREE'd anonymous pages, so the working set leaves them "
        "out while RSS keeps them; active file cache (%s) counts in it.",
        hb(c->usage_bytes), hb(c->inactive_file_bytes), hb(c->active_file_bytes));
    char limit[96];
    if (c->flags & LW_CGROUP_UNLIMITED)
        snprintf(limit, sizeof limit, "no limit");
    else
        snprintf(limit, sizeof limit, "limit %s", hb(c->limit_bytes));
    char ev[32], ok[32];
    count_str(ev, sizeof ev, c->limit_events);
    count_str(ok, sizeof ok, c->oom_kill_events);
    add(w, "cgroup_usage", "cgroup usage", c->usage_bytes, false,
        "Everything charged to the memory cgroup (v%u), this process and the others in it: "
        "anon %s + file cache %s (+ kernel memory); %s. Limit reached %s times, OOM kills %s.",
        c->version, hb(c->anon_bytes), hb(c->file_bytes), limit, ev, ok);
}

const struct lw_wf_line *lw_waterfall_find(const struct lw_waterfall *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->line[i].name, name))
            return &w->line[i];
    return NULL;
}

const struct lw_wf_line *lw_waterfall_largest(const struct lw_waterfall *w)
{
    const struct lw_wf_line *best = NULL;
    for (size_t i = 0; i < w->n; i++) {
        const struct lw_wf_line *l = &w->line[i];
        if (l->part && l->bytes != NA && l->rank_bytes > 0 &&
            (!best || l->rank_bytes > best->rank_bytes))
            best = l;
    }
    return best;
}

size_t lw_waterfall_delta(const struct lw_waterfall *a, const struct lw_waterfall *b,
                          struct lw_wf_growth *out, size_t cap, size_t *biggest)
{
    size_t n = 0;
    int64_t best = 0;
    *biggest = SIZE_MAX;
    for (size_t i = 0; i < b->n && n < cap; i++) {
        const struct lw_wf_line *lb = &b->line[i];
        const struct lw_wf_line *la = lw_waterfall_find(a, lb->name);
        struct lw_wf_growth *g = &out[n];
        g->name = lb->name;
        g->label = lb->label;
        g->part = lb->part;
        g->valid = la && la->bytes != NA && lb->bytes != NA;
        g->delta = g->valid ? (int64_t)(lb->bytes - la->bytes) : 0;
        if (g->valid && g->part && g->delta > best) {
            best = g->delta;
            *biggest = n;
        }
        n++;
    }
    return n;
}

size_t lw_waterfall_compare(const struct lw_snapshot *a, const struct lw_snapshot *b,
                            struct lw_wf_growth *out, size_t cap, size_t *biggest)
{
    struct lw_kview va, vb;
    static struct lw_waterfall wa, wb; /* 16 KiB: off the stack */
    lw_kview_from_snapshot(a, &va);
    lw_kview_from_snapshot(b, &vb);
    lw_waterfall_build(&va, &wa);
    lw_waterfall_build(&vb, &wb);
    return lw_waterfall_delta(&wa, &wb, out, cap, biggest);
}

static const char *signed_human(int64_t d, char *buf, size_t len)
{
    char h[32];
    lw_human(d < 0 ? (uint64_t)-d : (uint64_t)d, h, sizeof h);
    snprintf(buf, len, "%s%s", d < 0 ? "-" : "+", h);
    return buf;
}

void lw_waterfall_growth_text(FILE *f, const struct lw_waterfall *a, const struct lw_waterfall *b,
                              const char *since)
{
    struct lw_wf_growth g[LW_WF_MAX];
    size_t big;
    size_t n = lw_waterfall_delta(a, b, g, LW_WF_MAX, &big);
    char d1[40], d2[40];
    if (big == SIZE_MAX) {
        fprintf(f, "No part of memory grew %s.\n", since);
        return;
    }
    const struct lw_wf_growth *heap = NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(g[i].name, "heap_in_use"))
            heap = &g[i];
    if (heap && &g[big] == heap) {
        fprintf(f, "Most of the growth %s is heap: %s.\n", since,
                signed_human(heap->delta, d1, sizeof d1));
        return;
    }
    fprintf(f, "Most of the growth %s is not heap: %s grew %s", since, g[big].label,
            signed_human(g[big].delta, d1, sizeof d1));
    if (heap && heap->valid)
        fprintf(f, ", heap in use %s", signed_human(heap->delta, d2, sizeof d2));
    fputs(".\n", f);
}

/* ---- rendering ---- */

static void size_cell(FILE *f, const char *label, uint64_t bytes)
{
    char h[32];
    fprintf(f, "  %-26s %10s", label, lw_human(bytes, h, sizeof h));
    if (bytes != NA && bytes >= 1024)
        fprintf(f, " (%" PRIu64 " bytes)", bytes);
}

/* The note, wrapped at ~76 columns under the line. */
static void note(FILE *f, const char *s)
{
    const int width = 76, indent = 6;
    while (*s) {
        int n = (int)strlen(s);
        if (n > width - indent) {
            n = width - indent;
            while (n > 0 && s[n] != ' ')
                n--;
            if (n == 0)
                n = width - indent;
        }
        fprintf(f, "%*s%.*s\n", indent, "", n, s);
        s += n;
        while (*s == ' ')
            s++;
    }
}

static const char *pc_state(uint32_t flags)
{
    if ((flags & LW_PC_OPEN) && (flags & LW_PC_MAPPED))
        return "open, mapped";
    if (flags & LW_PC_OPEN)
        return "open";
    if (flags & LW_PC_MAPPED)
        return "mapped";
    if (flags & LW_PC_SEEN)
        return "closed, seen open earlier";
    return "";
}

#define PC_TEXT_MAX 10

void lw_kview_text(FILE *f, const struct lw_kview *v, const struct lw_waterfall *w)
{
    if (!v->has_kproc)
        return; /* a snapshot older than 1.2: nothing to add to the heap totals */
    fputs(v->have_heap ? "\nMemory, from the heap to what the container monitor shows\n"
                       : "\nMemory, as the kernel sees it\n",
          f);
    const struct lw_wf_line *big = lw_waterfall_largest(w);
    const struct lw_wf_line *heap = lw_waterfall_find(w, "heap_in_use");
    if (big && heap && big != heap) {
        char h1[32], h2[32];
        fprintf(f, "  The largest part is %s (%s), not heap (%s).\n", big->label,
                lw_human(big->bytes, h1, sizeof h1), lw_human(heap->bytes, h2, sizeof h2));
    } else if (big) {
        char h1[32];
        fprintf(f, "  The largest part is %s (%s).\n", big->label,
                lw_human(big->bytes, h1, sizeof h1));
    }
    for (size_t i = 0; i < w->n; i++) {
        const struct lw_wf_line *l = &w->line[i];
        size_cell(f, l->label, l->bytes);
        fputc('\n', f);
        note(f, l->note);
        if (!strcmp(l->name, "page_cache")) {
            size_t shown = v->npc < PC_TEXT_MAX ? v->npc : PC_TEXT_MAX;
            for (size_t k = 0; k < shown; k++) {
                const struct lw_rec_page_cache *r = &v->pc[k].rec;
                char h1[32], h2[32];
                fprintf(f, "      %10s cached, %s dirty  %s (%s)\n",
                        lw_human(r->cached_bytes, h1, sizeof h1),
                        lw_human(r->dirty_bytes, h2, sizeof h2), v->pc[k].path,
                        pc_state(r->flags));
            }
            if (v->npc > shown)
                fprintf(f, "      (%zu more files; --format json lists them all)\n", v->npc - shown);
        }
    }
    if (v->has_cgroup)
        fprintf(f, "  cgroup: %s (v%u)\n", v->cgroup_path ? v->cgroup_path : "?", v->cg.version);
    else if (v->has_kproc)
        fputs("  cgroup: none found (no memory controller for this process)\n", f);
}

static void u64_or_null(struct lw_json *j, const char *key, uint64_t v)
{
    if (v == NA)
        lw_json_null(j, key);
    else
        lw_json_u64(j, key, v);
}

void lw_kview_json(struct lw_json *j, const struct lw_kview *v, const struct lw_waterfall *w)
{
    if (v->has_kproc) {
        const struct lw_rec_kernel_proc *k = &v->kproc;
        lw_json_object_begin(j, "process_memory", false);
        u64_or_null(j, "rss_bytes", k->rss_bytes);
        u64_or_null(j, "anon_bytes", k->anon_bytes);
        u64_or_null(j, "file_bytes", k->file_bytes);
        u64_or_null(j, "shmem_bytes", k->shmem_bytes);
        u64_or_null(j, "lazyfree_bytes", k->lazyfree_bytes);
        u64_or_null(j, "swap_bytes", k->swap_bytes);
        u64_or_null(j, "anon_huge_bytes", k->anon_huge_bytes);
        u64_or_null(j, "hwm_bytes", k->hwm_bytes);
        lw_json_object_end(j);
    } else {
        lw_json_null(j, "process_memory");
    }
    if (v->has_cgroup) {
        const struct lw_rec_kernel_cgroup *c = &v->cg;
        lw_json_object_begin(j, "cgroup", false);
        lw_json_u64(j, "version", c->version);
        lw_json_string(j, "path", v->cgroup_path);
        u64_or_null(j, "usage_bytes", c->usage_bytes);
        u64_or_null(j, "limit_bytes", c->limit_bytes);
        u64_or_null(j, "working_set_bytes", sub0(c->usage_bytes, c->inactive_file_bytes));
        lw_json_string(j, "working_set_formula", "usage_bytes - inactive_file_bytes, clamped at 0");
        u64_or_null(j, "anon_bytes", c->anon_bytes);
        u64_or_null(j, "file_bytes", c->file_bytes);
        u64_or_null(j, "active_file_bytes", c->active_file_bytes);
        u64_or_null(j, "inactive_file_bytes", c->inactive_file_bytes);
        u64_or_null(j, "shmem_bytes", c->shmem_bytes);
        u64_or_null(j, "dirty_bytes", c->dirty_bytes);
        u64_or_null(j, "limit_events", c->limit_events);
        u64_or_null(j, "oom_events", c->oom_events);
        u64_or_null(j, "oom_kill_events", c->oom_kill_events);
        lw_json_object_end(j);
    } else {
        lw_json_null(j, "cgroup");
    }
    lw_json_array_begin(j, "page_cache", false);
    for (size_t i = 0; i < v->npc; i++) {
        const struct lw_rec_page_cache *r = &v->pc[i].rec;
        lw_json_object_begin(j, NULL, true);
        lw_json_string(j, "path", v->pc[i].path);
        u64_or_null(j, "cached_bytes", r->cached_bytes);
        u64_or_null(j, "dirty_bytes", r->dirty_bytes);
        u64_or_null(j, "size_bytes", r->size_bytes);
        lw_json_string(j, "state", pc_state(r->flags));
        lw_json_string(j, "method", (r->flags & LW_PC_MINCORE) ? "mincore" : "cachestat");
        lw_json_object_end(j);
    }
    lw_json_array_end(j);
    if (v->has_alloc) {
        const struct lw_rec_alloc_stats *a = &v->alloc;
        lw_json_object_begin(j, "allocator_stats", false);
        lw_json_string(j, "allocator", a->allocator == LW_ALLOCATOR_GLIBC      ? "glibc"
                                       : a->allocator == LW_ALLOCATOR_JEMALLOC ? "jemalloc"
                                                                               : "unknown");
        u64_or_null(j, "in_use_bytes", a->in_use_bytes);
        u64_or_null(j, "free_bytes", a->free_bytes);
        u64_or_null(j, "arena_bytes", a->arena_bytes);
        u64_or_null(j, "mmap_bytes", a->mmap_bytes);
        u64_or_null(j, "resident_bytes", a->resident_bytes);
        u64_or_null(j, "retained_bytes", a->retained_bytes);
        u64_or_null(j, "releasable_bytes", a->releasable_bytes);
        lw_json_object_end(j);
    } else if (v->have_heap) {
        lw_json_null(j, "allocator_stats");
    }
    const struct lw_wf_line *big = lw_waterfall_largest(w);
    if (big)
        lw_json_string(j, "largest_part", big->name);
    else
        lw_json_null(j, "largest_part");
    lw_json_array_begin(j, "waterfall", false);
    for (size_t i = 0; i < w->n; i++) {
        lw_json_object_begin(j, NULL, false);
        lw_json_string(j, "name", w->line[i].name);
        u64_or_null(j, "bytes", w->line[i].bytes);
        lw_json_string(j, "note", w->line[i].note);
        lw_json_object_end(j);
    }
    lw_json_array_end(j);
}
