/*
 * candidates.c - leak candidates of a series (see candidates.h).
 *
 * Score = share x grown^2 x trend, each in [0, 1]:
 *   share  = this stack's growth / the growth of all candidates (bytes,
 *            first to last snapshot; thread stacks count their configured
 *            stack sizes),
 *   grown  = intervals in which live bytes (threads: live threads) rose /
 *            intervals,
 *   trend  = 1 if it never fell; 0.75 if it fell but keeps blocks older
 *            than the whole series while freeing younger ones (AGE
 *            records); else 0.5.
 * A large flat stack does not grow, so it is no candidate at all; a stack
 * that jumped once (a pool filled during the series) scores grown^2 =
 * 1/N^2 and ranks below one that rose in every interval unless it is N^2
 * times larger. With two snapshots (one interval) only the share counts. The slope in
 * bytes/s is the least-squares fit over all snapshots, not first-to-last.
 */
#include "candidates.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "+40.0 MiB", "-512 B". */
static const char *signed_size(int64_t v, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char sign = v < 0 ? '-' : '+';
    if (a < 1024) {
        snprintf(buf, len, "%c%" PRIu64 " B", sign, a);
        return buf;
    }
    double d = (double)a / 1024;
    size_t u = 0;
    while (d >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        d /= 1024;
        u++;
    }
    snprintf(buf, len, "%c%.1f %s", sign, d, units[u]);
    return buf;
}

/* "6.5 MiB/s" */
static const char *rate(double v, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double a = fabs(v);
    size_t u = 0;
    while (a >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        a /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%s%.1f %s/s" : "%s%.0f %s/s", v < 0 ? "-" : "", a, units[u]);
    return buf;
}

/* Least-squares slope of y over the points' times; 0 if they share one time. */
static double slope(const struct lw_series *s, const uint64_t *y)
{
    size_t n = s->npoints;
    double mt = 0, my = 0, num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        mt += s->points[i].t;
        my += (double)y[i];
    }
    mt /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double dt = s->points[i].t - mt;
        num += dt * ((double)y[i] - my);
        den += dt * dt;
    }
    return den > 0 ? num / den : 0;
}

/* Live bytes of heap stack id in the last snapshot whose age is at least
 * the whole series: allocated before the first snapshot, still live. */
static uint64_t kept_bytes(const struct lw_series *s, uint32_t id, uint64_t span_ns)
{
    const struct lw_snap_age *a = lw_reader_find_age(s->last, id);
    uint64_t kept = 0;
    for (uint32_t i = 0; a && i < a->nbuckets; i++)
        if (a->buckets[i].min_age_ns >= span_ns)
            kept += a->buckets[i].bytes;
    return kept;
}

/* Fill the growth figures of c from ss; false if ss is no candidate. */
static bool measure(const struct lw_series *s, const struct lw_series_stack *ss,
                    struct lw_candidate *c)
{
    size_t n = s->npoints, last = n - 1;
    const struct lw_snap_stack *st = ss->stack;
    bool thread = st->kind == LW_KIND_THREAD;
    if (st->kind != LW_KIND_HEAP && st->kind != LW_KIND_MMAP && !thread)
        return false;
    memset(c, 0, sizeof *c);
    c->ss = ss;
    c->stack = st->id;
    c->intervals = (uint32_t)last;
    /* Threads rise and fall by count; everything else by bytes. */
    const uint64_t *y = thread ? ss->objects : ss->bytes;
    for (size_t i = 1; i < n; i++) {
        if (y[i] > y[i - 1])
            c->intervals_grown++;
        else if (y[i] < y[i - 1])
            c->intervals_fell++;
    }
    c->never_fell = c->intervals_fell == 0;
    c->growth_bytes = (int64_t)ss->bytes[last] - (int64_t)ss->bytes[0];
    c->growth_bytes_per_s = slope(s, ss->bytes);
    if (thread) {
        c->growth_threads = (int64_t)ss->objects[last] - (int64_t)ss->objects[0];
        c->exited = !ss->vanished && st->free_objects > ss->first_free_objects
                        ? st->free_objects - ss->first_free_objects
                        : 0;
        return c->growth_threads > 0 && c->intervals_grown > 0;
    }
    if (c->growth_bytes <= 0 || c->intervals_grown == 0)
        return false;
    if (!ss->vanished) {
        double span = s->points[last].t - s->points[0].t;
        c->freed_objects = st->free_objects > ss->first_free_objects
                               ? st->free_objects - ss->first_free_objects
                               : 0;
        c->kept_bytes = span > 0 ? kept_bytes(s, st->id, (uint64_t)(span * 1e9)) : 0;
        c->oldest_age_ns = ss->oldest_age_ns[last];
    }
    return true;
}

static void reason(const struct lw_series *s, struct lw_candidate *c, lw_candidate_namer namer,
                   void *arg)
{
    char a[32], b[32];
    size_t len = sizeof c->reason, k;
    if (c->ss->stack->kind == LW_KIND_THREAD) {
        const char *fn = namer ? namer(arg, c->ss->stack) : NULL;
        k = (size_t)snprintf(c->reason, len, "+%" PRId64 " %s from ", c->growth_threads,
                             c->growth_threads == 1 ? "thread" : "threads");
        if (fn && *fn)
            k += (size_t)snprintf(c->reason + k, len - k, "%s", fn);
        else
            k += (size_t)snprintf(c->reason + k, len - k, "stack %u", c->stack);
        if (k < len)
            k += (size_t)snprintf(c->reason + k, len - k, " in %u of %u intervals, ",
                                  c->intervals_grown, c->intervals);
        if (k < len) {
            if (c->exited)
                snprintf(c->reason + k, len - k, "%" PRIu64 " exited", c->exited);
            else
                snprintf(c->reason + k, len - k, "none exited");
        }
        return;
    }
    k = (size_t)snprintf(c->reason, len, "%s in %u of %u intervals, %s, %.0f%% of all growth",
                         signed_size(c->growth_bytes, a, sizeof a), c->intervals_grown,
                         c->intervals, rate(c->growth_bytes_per_s, b, sizeof b),
                         c->growth_share * 100);
    if (k < len)
        k += (size_t)(c->never_fell
                          ? snprintf(c->reason + k, len - k, ", never fell")
                          : snprintf(c->reason + k, len - k, ", fell in %u", c->intervals_fell));
    if (k < len && c->kept_bytes && c->freed_objects)
        k += (size_t)snprintf(c->reason + k, len - k,
                              ", keeps %s from before the series while freeing %" PRIu64
                              " younger blocks",
                              signed_size((int64_t)c->kept_bytes, a, sizeof a) + 1,
                              c->freed_objects);
    if (k < len && s->points[s->npoints - 1].has_ages && c->oldest_age_ns)
        snprintf(c->reason + k, len - k, ", oldest block >= %.1f s",
                 (double)c->oldest_age_ns / 1e9);
}

static int cmp_candidate(const void *pa, const void *pb)
{
    const struct lw_candidate *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->growth_bytes != b->growth_bytes)
        return a->growth_bytes > b->growth_bytes ? -1 : 1;
    return a->stack < b->stack ? -1 : a->stack > b->stack;
}

struct lw_candidate *lw_candidates_rank(const struct lw_series *s, lw_candidate_namer namer,
                                        void *namer_arg, size_t *n)
{
    *n = 0;
    if (s->npoints < 2 || s->nstacks == 0)
        return NULL;
    struct lw_candidate *c = calloc(s->nstacks, sizeof *c);
    if (!c)
        abort();
    size_t nc = 0;
    double total = 0;
    for (size_t i = 0; i < s->nstacks; i++)
        if (measure(s, &s->stacks[i], &c[nc])) {
            if (c[nc].growth_bytes > 0)
                total += (double)c[nc].growth_bytes;
            nc++;
        }
    for (size_t i = 0; i < nc; i++) {
        double share = total > 0 && c[i].growth_bytes > 0 ? (double)c[i].growth_bytes / total : 0;
        double grown = (double)c[i].intervals_grown / c[i].intervals;
        double trend = c[i].never_fell ? 1.0 : (c[i].kept_bytes && c[i].freed_objects) ? 0.75 : 0.5;
        c[i].growth_share = share;
        c[i].score = share * grown * grown * trend;
        reason(s, &c[i], namer, namer_arg);
    }
    qsort(c, nc, sizeof *c, cmp_candidate);
    if (nc == 0) {
        free(c);
        return NULL;
    }
    *n = nc;
    return c;
}
