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
    memset(sel, 0, sizeof *sel);
}
