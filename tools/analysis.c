/*
 * analysis.c - choose the snapshot to report and rank its stacks. Only the
 * PROCESS record of each candidate file is read (lw_reader_peek_process);
 * the chosen file is loaded in full by the caller. Processes are told apart
 * by pid and tracking start time, so an exec'd program (same pid, new
 * image) is a process of its own.
 */
#include "analysis.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static int cmp_ranked(const void *a, const void *b)
{
    const struct lw_ranked *x = a, *y = b;
    if (x->inuse_bytes != y->inuse_bytes)
        return x->inuse_bytes > y->inuse_bytes ? -1 : 1;
    if (x->inuse_objects != y->inuse_objects)
        return x->inuse_objects > y->inuse_objects ? -1 : 1;
    if (x->stack->alloc_bytes != y->stack->alloc_bytes)
        return x->stack->alloc_bytes > y->stack->alloc_bytes ? -1 : 1;
    return x->stack->id < y->stack->id ? -1 : x->stack->id > y->stack->id;
}

struct lw_ranked *lw_analysis_rank(const struct lw_snapshot *s, size_t *n)
{
    struct lw_ranked *r = calloc(s->nstacks ? s->nstacks : 1, sizeof *r);
    if (!r)
        return NULL;
    for (size_t i = 0; i < s->nstacks; i++) {
        const struct lw_snap_stack *st = &s->stacks[i];
        r[i].stack = st;
        r[i].inuse_bytes = st->alloc_bytes > st->free_bytes ? st->alloc_bytes - st->free_bytes : 0;
        r[i].inuse_objects =
            st->alloc_objects > st->free_objects ? st->alloc_objects - st->free_objects : 0;
        if (st->kind == LW_KIND_THREAD) /* stack sizes, not heap: see lw_format.h */
            r[i].inuse_bytes = 0;
    }
    qsort(r, s->nstacks, sizeof *r, cmp_ranked);
    *n = s->nstacks;
    return r;
}

/* One readable candidate file. */
struct cand {
    char *path;
    struct lw_rec_process proc;
    char exe[256];
};

static void free_cands(struct cand *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].path);
    free(c);
}

static bool same_process(const struct cand *a, const struct cand *b)
{
    return a->proc.pid == b->proc.pid && a->proc.start_time_ns == b->proc.start_time_ns;
}

/* Order: process (start time, pid), then seq, time, name. */
static int cmp_cand(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->proc.start_time_ns != b->proc.start_time_ns)
        return a->proc.start_time_ns < b->proc.start_time_ns ? -1 : 1;
    if (a->proc.pid != b->proc.pid)
        return a->proc.pid < b->proc.pid ? -1 : 1;
    if (a->proc.seq != b->proc.seq)
        return a->proc.seq < b->proc.seq ? -1 : 1;
    if (a->proc.time_ns != b->proc.time_ns)
        return a->proc.time_ns < b->proc.time_ns ? -1 : 1;
    return strcmp(a->path, b->path);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/')
        a--;
    char *p = malloc(a + b + 2);
    if (!p)
        abort();
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool is_snapshot_name(const char *name)
{
    size_t n = strlen(name), s = strlen(LW_SNAP_SUFFIX);
    return name[0] != '.' && n > s && !strcmp(name + n - s, LW_SNAP_SUFFIX);
}

/* Collect the readable snapshots of dir into *out. */
static int scan_dir(const char *dir, FILE *warn, struct cand **out, size_t *n, size_t *skipped,
                    char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return LW_EXIT_INPUT;
    }
    size_t cap = 16, cnt = 0;
    struct cand *c = malloc(cap * sizeof *c);
    if (!c)
        abort();
    struct dirent *de;
    char rerr[LW_READER_ERRLEN];
    while ((de = readdir(d))) {
        if (!is_snapshot_name(de->d_name))
            continue;
        char *path = join(dir, de->d_name);
        struct cand k = {.path = path};
        if (!lw_reader_peek_process(path, &k.proc, k.exe, sizeof k.exe, rerr)) {
            if (warn)
                fprintf(warn, "leakwatch: warning: skipping %s\n", rerr);
            (*skipped)++;
            free(path);
            continue;
        }
        if (cnt == cap) {
            cap *= 2;
            c = realloc(c, cap * sizeof *c);
            if (!c)
                abort();
        }
        c[cnt++] = k;
    }
    closedir(d);
    if (cnt == 0) {
        free(c);
        if (*skipped)
            snprintf(err, errlen, "%s: no readable snapshot in this directory (%zu skipped)", dir,
                     *skipped);
        else
            snprintf(err, errlen, "%s: no snapshot (*%s) in this directory", dir, LW_SNAP_SUFFIX);
        return LW_EXIT_INPUT;
    }
    *out = c;
    *n = cnt;
    return LW_EXIT_OK;
}

/* Summary of the process whose snapshots are c[first..last] (sorted). */
static void summarize(const struct cand *c, size_t first, size_t last, struct lw_proc_summary *ps)
{
    const struct cand *l = &c[last];
    memset(ps, 0, sizeof *ps);
    ps->pid = l->proc.pid;
    ps->ppid = l->proc.ppid;
    ps->flags = l->proc.flags;
    ps->start_time_ns = l->proc.start_time_ns;
    memcpy(ps->exe, l->exe, sizeof ps->exe);
    ps->nsnaps = last - first + 1;
    ps->last = strdup(l->path);
    if (!ps->last)
        abort();
}

struct group {
    size_t first, last; /* indexes into the sorted candidates */
};

/* Pick the group to report among g[0..ng), or -1 with err set. */
static long pick_group(const struct cand *c, const struct group *g, size_t ng, uint32_t pid,
                       const char *where, char *err, size_t errlen)
{
    uint32_t want = pid;
    if (!want) {
        /* The process `leakwatch run` started, else a process whose parent
         * is not here (the earliest such). Groups are in start-time order. */
        for (size_t i = 0; i < ng && !want; i++)
            if (c[g[i].last].proc.flags & LW_PROC_ROOT)
                want = c[g[i].last].proc.pid;
        for (size_t i = 0; i < ng && !want; i++) {
            bool parent_here = false;
            for (size_t k = 0; k < ng; k++)
                if (c[g[k].last].proc.pid == c[g[i].last].proc.ppid &&
                    c[g[k].last].proc.pid != c[g[i].last].proc.pid)
                    parent_here = true;
            if (!parent_here)
                want = c[g[i].last].proc.pid;
        }
        if (!want) /* a cycle of pids (reuse): take the earliest */
            want = c[g[0].last].proc.pid;
    }
    /* Latest image of that pid: an exec'd program continues the process. */
    long pick = -1;
    for (size_t i = 0; i < ng; i++)
        if (c[g[i].last].proc.pid == want)
            pick = (long)i;
    if (pick < 0) {
        int n = snprintf(err, errlen, "%s: no snapshot of pid %u (pids here:", where, pid);
        for (size_t i = 0; i < ng && n > 0 && (size_t)n < errlen; i++)
            n += snprintf(err + n, errlen - (size_t)n, " %u", c[g[i].last].proc.pid);
        if (n > 0 && (size_t)n < errlen)
            snprintf(err + n, errlen - (size_t)n, ")");
    }
    return pick;
}

/* The chosen process's snapshots c[first..last] (sorted by seq) become
 * out->series; two files with one seq are the same snapshot twice. */
static bool series_paths(const struct cand *c, size_t first, size_t last, struct lw_selection *out,
                         char *err, size_t errlen)
{
    for (size_t i = first + 1; i <= last; i++)
        if (c[i].proc.seq == c[i - 1].proc.seq) {
            snprintf(err, errlen, "%s and %s are both snapshot #%u of pid %u; give each once",
                     c[i - 1].path, c[i].path, c[i].proc.seq, c[i].proc.pid);
            return false;
        }
    out->nseries = last - first + 1;
    out->series = calloc(out->nseries, sizeof *out->series);
    if (!out->series)
        abort();
    for (size_t i = first; i <= last; i++)
        if (!(out->series[i - first] = strdup(c[i].path)))
            abort();
    return true;
}

int lw_analysis_select(char *const *paths, size_t npaths, uint32_t pid, FILE *warn,
                       struct lw_selection *out, char *err, size_t errlen)
{
    struct cand *c = NULL;
    size_t n = 0;
    int rc;
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    if (npaths == 0) {
        snprintf(err, errlen, "no snapshot given");
        return LW_EXIT_USAGE;
    }
    struct stat st;
    bool dir_mode = npaths == 1 && stat(paths[0], &st) == 0 && S_ISDIR(st.st_mode);
    if (dir_mode) {
        rc = scan_dir(paths[0], warn, &c, &n, &out->skipped, err, errlen);
        if (rc)
            return rc;
        out->dir = paths[0];
    } else {
        c = calloc(npaths, sizeof *c);
        if (!c)
            abort();
        char rerr[LW_READER_ERRLEN];
        for (size_t i = 0; i < npaths; i++) {
            if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
                snprintf(err, errlen,
                         "%s is a directory: give one directory, or snapshot files, not both",
                         paths[i]);
                free_cands(c, n);
                return LW_EXIT_USAGE;
            }
            if (!lw_reader_peek_process(paths[i], &c[n].proc, c[n].exe, sizeof c[n].exe, rerr)) {
                snprintf(err, errlen, "%s", rerr);
                free_cands(c, n);
                return LW_EXIT_INPUT;
            }
            c[n].path = strdup(paths[i]);
            if (!c[n++].path)
                abort();
        }
        for (size_t i = 1; i < n; i++)
            if (c[i].proc.pid != c[0].proc.pid && !pid) {
                snprintf(err, errlen,
                         "%s (pid %u) and %s (pid %u) are snapshots of different processes; "
                         "give one process's snapshots, or their directory",
                         c[0].path, c[0].proc.pid, c[i].path, c[i].proc.pid);
                free_cands(c, n);
                return LW_EXIT_INPUT;
            }
    }
    qsort(c, n, sizeof *c, cmp_cand);

    struct group *g = calloc(n, sizeof *g);
    size_t ng = 0;
    if (!g)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (ng && same_process(&c[g[ng - 1].first], &c[i]))
            g[ng - 1].last = i;
        else
            g[ng++] = (struct group){i, i};
    }
    long pick = pick_group(c, g, ng, pid, dir_mode ? paths[0] : "the snapshots given", err, errlen);
    if (pick < 0) {
        free(g);
        free_cands(c, n);
        return LW_EXIT_INPUT;
    }
    if (!series_paths(c, g[pick].first, g[pick].last, out, err, errlen)) {
        free(g);
        free_cands(c, n);
        lw_analysis_selection_free(out);
        return LW_EXIT_INPUT;
    }
    summarize(c, g[pick].first, g[pick].last, &out->chosen);
    out->path = strdup(c[g[pick].last].path);
    out->others = calloc(ng, sizeof *out->others);
    if (!out->path || !out->others)
        abort();
    for (size_t i = 0; i < ng; i++)
        if ((long)i != pick)
            summarize(c, g[i].first, g[i].last, &out->others[out->nothers++]);
    free(g);
    free_cands(c, n);
    return LW_EXIT_OK;
}

void lw_analysis_selection_free(struct lw_selection *sel)
{
    free(sel->path);
    free(sel->chosen.last);
    for (size_t i = 0; i < sel->nothers; i++)
        free(sel->others[i].last);
    free(sel->others);
    for (size_t i = 0; i < sel->nseries; i++)
        free(sel->series[i]);
    free(sel->series);
    memset(sel, 0, sizeof *sel);
}

/* ---- series ---------------------------------------------------------- */

/* What the series needs of one stack in one snapshot. */
struct compact {
    uint32_t id;
    uint8_t kind;
    uint64_t bytes, objects, oldest_age_ns, free_objects;
    const struct lw_snap_stack *stack; /* valid while its snapshot is loaded */
};

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Largest min age of a non-empty bucket of the stack's AGE record. */
static uint64_t oldest_age(const struct lw_snapshot *s, uint32_t id)
{
    const struct lw_snap_age *a = lw_reader_find_age(s, id);
    uint64_t oldest = 0;
    for (uint32_t i = 0; a && i < a->nbuckets; i++)
        if (a->buckets[i].objects || a->buckets[i].bytes)
            oldest = a->buckets[i].min_age_ns;
    return oldest;
}

/* s's stacks by id, as compact entries (malloc'd, *n of them). */
static struct compact *compact_stacks(const struct lw_snapshot *s, size_t *n)
{
    struct compact *c = calloc(s->nstacks ? s->nstacks : 1, sizeof *c);
    if (!c)
        abort();
    for (size_t i = 0; i < s->nstacks; i++) {
        const struct lw_snap_stack *st = &s->stacks[s->by_id[i]];
        c[i] = (struct compact){st->id, st->kind, sub0(st->alloc_bytes, st->free_bytes),
                                sub0(st->alloc_objects, st->free_objects), oldest_age(s, st->id),
                                st->free_objects, st};
    }
    *n = s->nstacks;
    return c;
}

static const struct compact *compact_find(const struct compact *c, size_t n, uint32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c[mid].id == id)
            return &c[mid];
        if (c[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The waterfall line's bytes, LW_VALUE_NA if it has none. */
static uint64_t wf_bytes(const struct lw_waterfall *w, const char *name)
{
    const struct lw_wf_line *l = lw_waterfall_find(w, name);
    return l ? l->bytes : LW_VALUE_NA;
}

static void point_of(const struct lw_snapshot *s, const char *path, struct lw_series_point *pt,
                     struct lw_waterfall *wf)
{
    const struct lw_rec_totals *t = &s->totals;
    memset(pt, 0, sizeof *pt);
    pt->path = path;
    pt->seq = s->proc.seq;
    pt->trigger = s->proc.trigger;
    pt->time_ns = s->proc.time_ns;
    pt->mono_ns = s->proc.mono_ns;
    pt->heap_inuse_bytes = t->heap_inuse_bytes;
    pt->heap_inuse_objects = t->heap_inuse_objects;
    pt->mmap_bytes = t->mmap.mapped_bytes;
    pt->released_resident_bytes =
        t->mmap.released_resident_bytes + t->allocator.released_resident_bytes;
    for (size_t i = 0; i < s->nstacks; i++)
        if (s->stacks[i].kind == LW_KIND_THREAD)
            pt->threads_live += sub0(s->stacks[i].alloc_objects, s->stacks[i].free_objects);
    pt->has_ages = s->nages > 0;
    struct lw_kview kv;
    struct lw_waterfall local;
    if (!wf)
        wf = &local;
    lw_kview_from_snapshot(s, &kv);
    lw_waterfall_build(&kv, wf);
    pt->rss_bytes = wf_bytes(wf, "rss");
    pt->file_cache_bytes = wf_bytes(wf, "page_cache");
    pt->working_set_bytes = wf_bytes(wf, "cgroup_working_set");
}

struct vanished {
    uint32_t id;
    size_t point; /* the snapshot it was seen in */
    const struct lw_snap_stack *stack;
};

/* By id, then by snapshot: the last entry of an id is its latest sighting. */
static int cmp_vanished(const void *a, const void *b)
{
    const struct vanished *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->point < y->point ? -1 : x->point > y->point;
}

int lw_analysis_load_series(const struct lw_selection *sel, struct lw_series *out, char *err,
                            size_t errlen)
{
    char rerr[LW_READER_ERRLEN];
    char *single[] = {sel->path};
    char *const *paths = sel->nseries ? sel->series : single;
    size_t n = sel->nseries ? sel->nseries : 1;
    int rc = LW_EXIT_INPUT;
    memset(out, 0, sizeof *out);
    struct lw_snapshot *last = lw_reader_load(paths[n - 1], rerr);
    if (!last) {
        snprintf(err, errlen, "%s", rerr);
        return LW_EXIT_INPUT;
    }
    out->last = last;
    struct compact **cs = calloc(n, sizeof *cs);
    size_t *ncs = calloc(n, sizeof *ncs);
    struct vanished *van = NULL;
    size_t nvan = 0, capvan = 0;
    out->points = calloc(n, sizeof *out->points);
    out->kept = calloc(n, sizeof *out->kept);
    if (!cs || !ncs || !out->points || !out->kept)
        abort();
    out->npoints = n;
    cs[n - 1] = compact_stacks(last, &ncs[n - 1]);
    point_of(last, paths[n - 1], &out->points[n - 1], &out->last_wf);
    if (n == 1)
        out->first_wf = out->last_wf;

    for (size_t i = 0; i + 1 < n; i++) {
        struct lw_snapshot *s = lw_reader_load(paths[i], rerr);
        if (!s) {
            snprintf(err, errlen, "%s", rerr);
            goto out;
        }
        if (s->proc.pid != last->proc.pid || s->proc.start_time_ns != last->proc.start_time_ns ||
            s->proc.seq >= last->proc.seq) {
            snprintf(err, errlen, "%s: not an earlier snapshot of the process of %s (pid %u)",
                     paths[i], paths[n - 1], last->proc.pid);
            lw_reader_free(s);
            goto out;
        }
        point_of(s, paths[i], &out->points[i], i == 0 ? &out->first_wf : NULL);
        cs[i] = compact_stacks(s, &ncs[i]);
        bool keep = false;
        for (size_t k = 0; k < ncs[i]; k++) {
            const struct compact *l = compact_find(cs[n - 1], ncs[n - 1], cs[i][k].id);
            if (l && l->kind != cs[i][k].kind) {
                snprintf(err, errlen,
                         "%s: stack %u is a %s stack here and a %s stack in %s: not one process",
                         paths[i], l->id, lw_reader_kind_name(cs[i][k].kind),
                         lw_reader_kind_name(l->kind), paths[n - 1]);
                lw_reader_free(s);
                goto out;
            }
            if (l)
                continue;
            keep = true; /* vanished by the last snapshot: remember where it was */
            if (nvan == capvan) {
                capvan = capvan ? capvan * 2 : 16;
                if (!(van = realloc(van, capvan * sizeof *van)))
                    abort();
            }
            van[nvan++] = (struct vanished){cs[i][k].id, i, cs[i][k].stack};
        }
        if (keep)
            out->kept[out->nkept++] = s;
        else
            lw_reader_free(s); /* its compact entries no longer point anywhere used */
    }
    /* One entry per vanished id: the last snapshot it appears in. */
    if (nvan)
        qsort(van, nvan, sizeof *van, cmp_vanished);
    size_t nv = 0;
    for (size_t i = 0; i < nvan; i++) {
        if (nv && van[nv - 1].id == van[i].id)
            nv--;
        van[nv++] = van[i];
    }
    nvan = nv;

    /* Times: the monotonic clock when every snapshot has it and it never
     * goes back (it cannot jump), else the wall clock. */
    bool mono = true;
    for (size_t i = 0; i < n; i++)
        if (!out->points[i].mono_ns || (i && out->points[i].mono_ns < out->points[i - 1].mono_ns))
            mono = false;
    for (size_t i = 0; i < n; i++) {
        const struct lw_series_point *p0 = &out->points[0], *pi = &out->points[i];
        out->points[i].t = mono ? (double)(pi->mono_ns - p0->mono_ns) / 1e9
                                : ((double)pi->time_ns - (double)p0->time_ns) / 1e9;
    }

    /* Union of ids: the last snapshot's (sorted) merged with the vanished (sorted). */
    size_t nl = ncs[n - 1];
    out->nstacks = nl + nvan;
    out->stacks = calloc(out->nstacks ? out->nstacks : 1, sizeof *out->stacks);
    out->mem = calloc((out->nstacks ? out->nstacks : 1) * n * 3, sizeof *out->mem);
    if (!out->stacks || !out->mem)
        abort();
    for (size_t a = 0, b = 0, k = 0; k < out->nstacks; k++) {
        struct lw_series_stack *ss = &out->stacks[k];
        if (b >= nvan || (a < nl && cs[n - 1][a].id < van[b].id)) {
            ss->stack = cs[n - 1][a++].stack;
        } else {
            ss->stack = van[b++].stack;
            ss->vanished = true;
        }
        ss->bytes = out->mem + k * n * 3;
        ss->objects = ss->bytes + n;
        ss->oldest_age_ns = ss->objects + n;
        bool seen = false;
        for (size_t i = 0; i < n; i++) {
            const struct compact *e = compact_find(cs[i], ncs[i], ss->stack->id);
            if (!e)
                continue;
            ss->bytes[i] = e->bytes;
            ss->objects[i] = e->objects;
            ss->oldest_age_ns[i] = e->oldest_age_ns;
            if (!seen) /* a stack born during the series had freed nothing before it */
                ss->first_free_objects = i == 0 ? e->free_objects : 0;
            seen = true;
        }
    }
    rc = LW_EXIT_OK;
out:
    for (size_t i = 0; i < n; i++)
        free(cs[i]);
    free(cs);
    free(ncs);
    free(van);
    if (rc)
        lw_analysis_series_free(out);
    return rc;
}

const struct lw_series_stack *lw_analysis_series_find(const struct lw_series *s, uint32_t id)
{
    size_t lo = 0, hi = s->nstacks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->stacks[mid].stack->id == id)
            return &s->stacks[mid];
        if (s->stacks[mid].stack->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void lw_analysis_series_free(struct lw_series *s)
{
    for (size_t i = 0; i < s->nkept; i++)
        lw_reader_free(s->kept[i]);
    free(s->kept);
    lw_reader_free(s->last);
    free(s->points);
    free(s->stacks);
    free(s->mem);
    memset(s, 0, sizeof *s);
}

struct lw_ranked *lw_analysis_rank_series(const struct lw_series *s, size_t *n)
{
    size_t nl = 0, nvan = 0;
    for (size_t i = 0; i < s->nstacks; i++)
        nvan += s->stacks[i].vanished;
    struct lw_ranked *r = lw_analysis_rank(s->last, &nl);
    if (!r || !nvan) {
        *n = nl;
        return r;
    }
    struct lw_ranked *all = realloc(r, (nl + nvan) * sizeof *r);
    if (!all) {
        free(r);
        return NULL;
    }
    for (size_t i = 0, k = nl; i < s->nstacks; i++)
        if (s->stacks[i].vanished)
            all[k++] = (struct lw_ranked){s->stacks[i].stack, 0, 0};
    *n = nl + nvan;
    return all;
}
