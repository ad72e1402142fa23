/*
 * diff.c - the `diff` verb (see diff.h): match the stacks of two
 * snapshots, compute the change of live bytes and objects of each, and
 * write it as text or JSON ("leakwatch-diff/1").
 */
#include "diff.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "cli.h"
#include "json.h"
#include "output.h"
#include "waterfall.h"

/* One side's view of a stack: its in-use figures as the report shows them. */
static void inuse(const struct lw_snap_stack *st, uint64_t *bytes, uint64_t *objs)
{
    *bytes = st->alloc_bytes > st->free_bytes ? st->alloc_bytes - st->free_bytes : 0;
    *objs = st->alloc_objects > st->free_objects ? st->alloc_objects - st->free_objects : 0;
    if (st->kind == LW_KIND_THREAD)
        *bytes = 0;
}

static void add_side(struct lw_diff_entry *e, const struct lw_snap_stack *st, bool is_new)
{
    uint64_t b, o;
    inuse(st, &b, &o);
    if (is_new) {
        if (!e->new)
            e->new = st;
        e->nnew++;
        e->new_inuse_bytes += b;
        e->new_inuse_objects += o;
    } else {
        if (!e->base)
            e->base = st;
        e->nbase++;
        e->base_inuse_bytes += b;
        e->base_inuse_objects += o;
    }
    e->kind = st->kind;
}

/* ---- keys for matching stacks of two processes ---- */

/* For each module of `s`, whether the other snapshot holds the same file
 * (equal non-empty build-id). */
static bool *same_build(const struct lw_snapshot *s, const struct lw_snapshot *other)
{
    bool *same = calloc(s->nmodules ? s->nmodules : 1, sizeof *same);
    if (!same)
        abort();
    for (size_t i = 0; i < s->nmodules; i++) {
        const struct lw_snap_module *m = &s->modules[i];
        for (size_t k = 0; m->build_id_len && k < other->nmodules && !same[i]; k++)
            same[i] = other->modules[k].build_id_len == m->build_id_len &&
                      !memcmp(other->modules[k].build_id, m->build_id, m->build_id_len);
    }
    return same;
}

struct keybuf {
    char *p;
    size_t len, cap;
};

static void kput(struct keybuf *k, const char *s, size_t n)
{
    if (k->len + n + 1 > k->cap) {
        k->cap = (k->len + n + 1) * 2;
        if (!(k->p = realloc(k->p, k->cap)))
            abort();
    }
    memcpy(k->p + k->len, s, n);
    k->len += n;
    k->p[k->len] = '\0';
}

static void kputs(struct keybuf *k, const char *s)
{
    kput(k, s, strlen(s));
}

static void kput_hex(struct keybuf *k, const uint8_t *b, size_t n)
{
    char h[3];
    for (size_t i = 0; i < n; i++) {
        snprintf(h, sizeof h, "%02x", b[i]);
        kput(k, h, 2);
    }
}

/* Key of a stack: kind, then per frame the exact module-relative address
 * when both sides hold that module (same build-id), else the function
 * names of its inline chain, else module name, build-id and offset. */
static char *stack_key(const struct lw_snapshot *s, const bool *same, lw_sym_t *sym,
                       const struct lw_snap_stack *st)
{
    struct keybuf k = {0};
    char num[48];
    snprintf(num, sizeof num, "%u", st->kind);
    kputs(&k, num);
    size_t hint = 0;
    for (uint16_t i = 0; i < st->nframes; i++) {
        kputs(&k, "\n");
        const struct lw_sym_loc *loc = sym ? lw_sym_lookup(sym, st->frames[i]) : NULL;
        const struct lw_snap_module *m = NULL;
        if (loc && loc->module[0]) {
            for (size_t q = 0; q < s->nmodules && !m; q++) {
                size_t idx = (hint + q) % s->nmodules;
                if (!strcmp(s->modules[idx].path, loc->module)) {
                    m = &s->modules[idx];
                    hint = idx;
                }
            }
        }
        /* The executable is "<main>": a deploy may rename it. */
        const char *label = m && (m->flags & LW_MOD_MAIN) ? "<main>"
                            : loc && loc->module_name[0] ? loc->module_name
                                                         : "?";
        if (!loc) {
            snprintf(num, sizeof num, "0x%" PRIx64, st->frames[i]);
            kputs(&k, num);
        } else if (m && same[m - s->modules]) {
            kput_hex(&k, m->build_id, m->build_id_len);
            snprintf(num, sizeof num, "+0x%" PRIx64, loc->offset);
            kputs(&k, num);
        } else if (loc->frames[loc->nframes - 1].function[0]) {
            for (size_t f = 0; f < loc->nframes; f++) {
                kputs(&k, f ? ";" : "");
                kputs(&k, label);
                kputs(&k, "!");
                kputs(&k, loc->frames[f].function);
            }
        } else if (m && m->build_id_len) {
            /* Another build, no symbol: its offset says nothing about the
             * other build; it matches any such frame of that module. */
            kputs(&k, label);
            kputs(&k, "+?");
        } else {
            /* No build-id to tell builds apart: name and offset, best effort. */
            kputs(&k, label);
            snprintf(num, sizeof num, "+0x%" PRIx64, loc->module_name[0] ? loc->offset : loc->address);
            kputs(&k, num);
        }
    }
    return k.p;
}

struct keyed {
    char *key;
    const struct lw_snap_stack *st;
    bool is_new;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->is_new != y->is_new)
        return x->is_new ? 1 : -1;
    return x->st->id < y->st->id ? -1 : x->st->id > y->st->id;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct lw_diff_entry *x = a, *y = b;
    if (x->delta_inuse_bytes != y->delta_inuse_bytes)
        return x->delta_inuse_bytes > y->delta_inuse_bytes ? -1 : 1;
    if (x->delta_inuse_objects != y->delta_inuse_objects)
        return x->delta_inuse_objects > y->delta_inuse_objects ? -1 : 1;
    const struct lw_snap_stack *sx = x->new ? x->new : x->base, *sy = y->new ? y->new : y->base;
    if (!!x->new != !!y->new)
        return x->new ? -1 : 1;
    return sx->id < sy->id ? -1 : sx->id > sy->id;
}

static bool same_process(const struct lw_snapshot *a, const struct lw_snapshot *b)
{
    return a->proc.pid == b->proc.pid && a->proc.start_time_ns == b->proc.start_time_ns;
}

void lw_diff_compute(const struct lw_snapshot *base, const struct lw_snapshot *new,
                     lw_sym_t *bsym, lw_sym_t *nsym, struct lw_diff *out)
{
    memset(out, 0, sizeof *out);
    out->by_id = same_process(base, new);
    size_t cap = base->nstacks + new->nstacks;
    struct lw_diff_entry *e = calloc(cap ? cap : 1, sizeof *e);
    if (!e)
        abort();
    size_t n = 0;
    if (out->by_id) {
        size_t i = 0, k = 0;
        while (i < base->nstacks || k < new->nstacks) {
            const struct lw_snap_stack *b = i < base->nstacks ? &base->stacks[base->by_id[i]] : NULL;
            const struct lw_snap_stack *w = k < new->nstacks ? &new->stacks[new->by_id[k]] : NULL;
            struct lw_diff_entry *d = &e[n++];
            if (b && (!w || b->id <= w->id)) {
                add_side(d, b, false);
                i++;
            }
            if (w && (!b || w->id <= b->id)) {
                add_side(d, w, true);
                k++;
            }
        }
    } else {
        bool *bsame = same_build(base, new), *nsame = same_build(new, base);
        struct keyed *ks = calloc(cap ? cap : 1, sizeof *ks);
        if (!ks)
            abort();
        for (size_t i = 0; i < base->nstacks; i++)
            ks[i] = (struct keyed){stack_key(base, bsame, bsym, &base->stacks[i]), &base->stacks[i],
                                   false};
        for (size_t i = 0; i < new->nstacks; i++)
            ks[base->nstacks + i] = (struct keyed){stack_key(new, nsame, nsym, &new->stacks[i]),
                                                   &new->stacks[i], true};
        qsort(ks, cap, sizeof *ks, cmp_keyed);
        for (size_t i = 0; i < cap; i++) {
            if (i == 0 || strcmp(ks[i].key, ks[i - 1].key))
                n++;
            add_side(&e[n - 1], ks[i].st, ks[i].is_new);
        }
        for (size_t i = 0; i < cap; i++)
            free(ks[i].key);
        free(ks);
        free(bsame);
        free(nsame);
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        struct lw_diff_entry *d = &e[i];
        d->delta_inuse_bytes = (int64_t)d->new_inuse_bytes - (int64_t)d->base_inuse_bytes;
        d->delta_inuse_objects = (int64_t)d->new_inuse_objects - (int64_t)d->base_inuse_objects;
        if (!d->new) {
            d->status = LW_DIFF_VANISHED;
            out->vanished++;
        } else if (!d->base) {
            d->status = LW_DIFF_NEW;
            out->added++;
        } else if (d->delta_inuse_bytes > 0 ||
                   (d->delta_inuse_bytes == 0 && d->delta_inuse_objects > 0)) {
            d->status = LW_DIFF_GROWN;
            out->grown++;
        } else if (d->delta_inuse_bytes < 0 || d->delta_inuse_objects < 0) {
            d->status = LW_DIFF_SHRUNK;
            out->shrunk++;
        } else {
            out->unchanged++;
            continue;
        }
        e[kept++] = *d;
    }
    qsort(e, kept, sizeof *e, cmp_entry);
    out->entries = e;
    out->nentries = kept;
}

void lw_diff_free(struct lw_diff *d)
{
    free(d->entries);
    memset(d, 0, sizeof *d);
}

/* ---- output ---- */

struct diff_out {
    const char *base_path, *new_path;
    const struct lw_snapshot *base, *new;
    lw_sym_t *bsym, *nsym;
    const struct lw_diff *d;
    size_t top; /* 0: the format's default */
};

static const char *status_name(enum lw_diff_status s)
{
    switch (s) {
    case LW_DIFF_GROWN: return "grown";
    case LW_DIFF_SHRUNK: return "shrunk";
    case LW_DIFF_NEW: return "new";
    case LW_DIFF_VANISHED: return "vanished";
    }
    return "unknown";
}

/* The stack whose frames an entry shows, with the symbolizer of its side. */
static const struct lw_snap_stack *shown(const struct diff_out *o, const struct lw_diff_entry *e,
                                         lw_sym_t **sym)
{
    *sym = e->new ? o->nsym : o->bsym;
    return e->new ? e->new : e->base;
}

static void side_json(struct lw_json *j, const char *key, const char *path,
                      const struct lw_snapshot *s)
{
    char when[40];
    lw_output_iso_time(s->proc.time_ns, when, sizeof when);
    lw_json_object_begin(j, key, false);
    lw_json_string(j, "path", path);
    lw_json_u64(j, "pid", s->proc.pid);
    lw_json_string(j, "exe", s->exe);
    lw_json_u64(j, "seq", s->proc.seq);
    lw_json_string(j, "time", when);
    lw_json_string(j, "trigger", lw_reader_trigger_name(s->proc.trigger));
    lw_json_u64(j, "heap_inuse_bytes", s->totals.heap_inuse_bytes);
    lw_json_u64(j, "heap_inuse_objects", s->totals.heap_inuse_objects);
    lw_json_object_end(j);
}

void lw_diff_json(struct lw_json *j, const char *key, const struct lw_diff_json_in *in)
{
    const struct lw_diff *d = in->d;
    struct diff_out o = {in->base_path, in->new_path, in->base, in->new, in->bsym, in->nsym, d,
                         in->top};
    lw_json_object_begin(j, key, false);
    lw_json_string(j, "format", "leakwatch-diff/1");
    side_json(j, "base", o.base_path, o.base);
    side_json(j, "new", o.new_path, o.new);
    lw_json_string(j, "matched_by", d->by_id ? "stack id" : "frames");
    lw_json_object_begin(j, "heap", false);
    lw_json_i64(j, "delta_inuse_bytes",
                (int64_t)o.new->totals.heap_inuse_bytes - (int64_t)o.base->totals.heap_inuse_bytes);
    lw_json_i64(j, "delta_inuse_objects", (int64_t)o.new->totals.heap_inuse_objects -
                                              (int64_t)o.base->totals.heap_inuse_objects);
    lw_json_object_end(j);
    lw_json_object_begin(j, "counts", true);
    lw_json_u64(j, "grown", d->grown);
    lw_json_u64(j, "shrunk", d->shrunk);
    lw_json_u64(j, "new", d->added);
    lw_json_u64(j, "vanished", d->vanished);
    lw_json_u64(j, "unchanged", d->unchanged);
    lw_json_object_end(j);
    size_t n = o.top && o.top < d->nentries ? o.top : d->nentries;
    lw_json_array_begin(j, "stacks", false);
    for (size_t i = 0; i < n; i++) {
        const struct lw_diff_entry *e = &d->entries[i];
        lw_sym_t *sym;
        const struct lw_snap_stack *st = shown(&o, e, &sym);
        lw_json_object_begin(j, NULL, false);
        lw_json_string(j, "status", status_name(e->status));
        lw_json_string(j, "kind", lw_reader_kind_name(e->kind));
        if (e->base && e->nbase == 1)
            lw_json_u64(j, "base_id", e->base->id);
        else
            lw_json_null(j, "base_id");
        if (e->new && e->nnew == 1)
            lw_json_u64(j, "new_id", e->new->id);
        else
            lw_json_null(j, "new_id");
        lw_json_i64(j, "delta_inuse_bytes", e->delta_inuse_bytes);
        lw_json_i64(j, "delta_inuse_objects", e->delta_inuse_objects);
        lw_json_u64(j, "base_inuse_bytes", e->base_inuse_bytes);
        lw_json_u64(j, "new_inuse_bytes", e->new_inuse_bytes);
        lw_json_u64(j, "base_inuse_objects", e->base_inuse_objects);
        lw_json_u64(j, "new_inuse_objects", e->new_inuse_objects);
        lw_output_json_frames(j, sym, st);
        lw_json_object_end(j);
    }
    lw_json_array_end(j);
    lw_json_object_end(j);
}

static int diff_json(FILE *f, const struct diff_out *o)
{
    struct lw_json j;
    struct lw_diff_json_in in = {o->base_path, o->new_path, o->base, o->new,
                                 o->bsym,      o->nsym,     o->d,    o->top};
    lw_json_init(&j, f, true);
    lw_diff_json(&j, NULL, &in);
    fflush(f);
    return ferror(f) ? -1 : 0;
}

/* "+2.4 MiB" / "-512 B" */
static const char *signed_human(int64_t v, char *buf, size_t len)
{
    char h[32];
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    snprintf(buf, len, "%c%s", v < 0 ? '-' : '+', lw_human(a, h, sizeof h));
    return buf;
}

static void side_text(FILE *f, const char *label, const char *path, const struct lw_snapshot *s)
{
    char when[40], h[32];
    lw_output_iso_time(s->proc.time_ns, when, sizeof when);
    fprintf(f, "  %-4s  %s\n        pid %u, snapshot #%u (%s), %s: heap in use %s in %" PRIu64
               " blocks\n",
            label, path, s->proc.pid, s->proc.seq, lw_reader_trigger_name(s->proc.trigger), when,
            lw_human(s->totals.heap_inuse_bytes, h, sizeof h),
            s->totals.heap_inuse_objects);
}

static void entry_text(FILE *f, const struct diff_out *o, size_t rank,
                       const struct lw_diff_entry *e)
{
    char d[32], b[32], n[32];
    lw_sym_t *sym;
    const struct lw_snap_stack *st = shown(o, e, &sym);
    const char *unit = e->kind == LW_KIND_HEAP ? "blocks" : "mappings";
    if (e->kind == LW_KIND_THREAD) /* no bytes: live threads */
        fprintf(f, "\n#%zu  %+" PRId64 " live threads: %" PRIu64 " -> %" PRIu64 " [%s%s%s]\n",
                rank, e->delta_inuse_objects, e->base_inuse_objects, e->new_inuse_objects,
                lw_reader_kind_name(e->kind),
            e->status == LW_DIFF_NEW ? ", new" : e->status == LW_DIFF_VANISHED ? ", vanished" : "",
            e->nbase > 1 || e->nnew > 1 ? ", several call sites with these functions" : "");
    else
        fprintf(f, "\n#%zu  %s (%+" PRId64 " %s): %s -> %s [%s%s%s]\n", rank,
                signed_human(e->delta_inuse_bytes, d, sizeof d), e->delta_inuse_objects, unit,
                lw_human(e->base_inuse_bytes, b, sizeof b),
                lw_human(e->new_inuse_bytes, n, sizeof n), lw_reader_kind_name(e->kind),
                e->status == LW_DIFF_NEW        ? ", new"
                : e->status == LW_DIFF_VANISHED ? ", vanished"
                                                : "",
                e->nbase > 1 || e->nnew > 1 ? ", several call sites with these functions" : "");
    lw_output_text_frames(f, sym, st, (e->new ? o->new : o->base)->proc.max_depth);
}

static int diff_text(FILE *f, const struct diff_out *o)
{
    const struct lw_diff *d = o->d;
    char h[32];
    size_t top = o->top ? o->top : 10;
    fprintf(f, "leakwatch diff\n");
    side_text(f, "base", o->base_path, o->base);
    side_text(f, "new", o->new_path, o->new);
    if (d->by_id)
        fputs("  stacks matched by id (one process)\n", f);
    else
        fputs("  stacks matched by frames (two processes): module-relative addresses where\n"
              "  both hold the same build of a module, else function names\n",
              f);
    fprintf(f, "  heap in use %s (%+" PRId64 " blocks); call stacks: %zu grew, %zu shrank, %zu "
               "new, %zu vanished, %zu unchanged\n",
            signed_human((int64_t)o->new->totals.heap_inuse_bytes -
                             (int64_t)o->base->totals.heap_inuse_bytes,
                         h, sizeof h),
            (int64_t)o->new->totals.heap_inuse_objects -
                (int64_t)o->base->totals.heap_inuse_objects,
            d->grown, d->shrunk, d->added, d->vanished, d->unchanged);
    /* Heap and mapping stacks by bytes; thread creation stacks (no bytes)
     * in a section of their own. */
    size_t up = 0, down = 0, threads = 0;
    for (size_t i = 0; i < d->nentries; i++) {
        const struct lw_diff_entry *e = &d->entries[i];
        if (e->kind == LW_KIND_THREAD)
            threads++;
        else if (e->delta_inuse_bytes > 0 ||
                 (e->delta_inuse_bytes == 0 && e->delta_inuse_objects > 0))
            up++;
        else
            down++;
    }
    if (threads) {
        fprintf(f, "\nThreads, by change of live threads\n");
        /* entries are in delta-bytes order; threads all have 0: print the
         * growing ones first */
        for (int pass = 0, k = 0; pass < 2; pass++)
            for (size_t i = 0; i < d->nentries; i++) {
                const struct lw_diff_entry *e = &d->entries[i];
                if (e->kind == LW_KIND_THREAD && (e->delta_inuse_objects > 0) == (pass == 0) &&
                    (size_t)k < top)
                    entry_text(f, o, (size_t)++k, e);
            }
    }
    if (up) {
        fprintf(f, "\nGrew most (%zu of %zu), by change of bytes in use\n", up < top ? up : top,
                up);
        for (size_t i = 0, k = 0; i < d->nentries && k < top; i++)
            if (d->entries[i].kind != LW_KIND_THREAD && k < up)
                entry_text(f, o, ++k, &d->entries[i]);
    }
    if (down) {
        fprintf(f, "\nShrank most (%zu of %zu)\n", down < top ? down : top, down);
        for (size_t i = d->nentries, k = 0; i-- > 0 && k < top;)
            if (d->entries[i].kind != LW_KIND_THREAD && k < down)
                entry_text(f, o, ++k, &d->entries[i]);
    }
    if (!up && !down && !threads)
        fputs("\nNo call stack changed.\n", f);
    fflush(f);
    return ferror(f) ? -1 : 0;
}

static const char diff_usage[] =
    "Usage: leakwatch diff [OPTIONS] BASE NEW\n"
    "\n"
    "Show what changed from snapshot BASE to snapshot NEW, call stack by call\n"
    "stack: change of live bytes and objects, new stacks, vanished stacks,\n"
    "symbolized as `leakwatch report` does. BASE or NEW may be a directory: its\n"
    "report's process's last snapshot is used.\n"
    "\n"
    "Two snapshots of one process are matched by stack id. Snapshots of two\n"
    "processes (two runs, before and after a deploy) are matched by their\n"
    "frames: the module-relative address where both hold the same build of a\n"
    "module (same build-id), else the function names, so call sites in one\n"
    "function are summed when the binary changed.\n"
    "\n"
    "Options:\n"
    "  --format FMT    text (default) or json\n"
    "  --top N         stacks shown (text: 10 grown and 10 shrunk; json: all)\n"
    "  -o FILE         write to FILE instead of standard output\n"
    "  --debuginfod    let elfutils download missing debug info (off by default)\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status:\n"
    "  0  diff written\n"
    "  1  bad input: a snapshot is missing, unreadable, truncated, corrupt or of a\n"
    "     newer format; or the output could not be written\n"
    "  2  usage error\n";

/* Load one side: a snapshot file, or a directory's chosen last snapshot. */
static struct lw_snapshot *load_side(char *arg, char **path_out, char *err, size_t errlen)
{
    struct lw_selection sel;
    char *paths[] = {arg};
    int rc = lw_analysis_select(paths, 1, 0, stderr, &sel, err, errlen);
    if (rc)
        return NULL;
    struct lw_snapshot *s = lw_reader_load(sel.path, err);
    *path_out = s ? strdup(sel.path) : NULL;
    if (s && !*path_out)
        abort();
    lw_analysis_selection_free(&sel);
    return s;
}

int lw_diff_main(int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_TOP, OPT_DEBUGINFOD };
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"top", required_argument, NULL, OPT_TOP},
        {"debuginfod", no_argument, NULL, OPT_DEBUGINFOD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    const char *outfile = NULL;
    uint64_t top = 0;
    struct lw_sym_options symopt = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            if (!strcmp(optarg, "json") || !strcmp(optarg, "text")) {
                json = !strcmp(optarg, "json");
                break;
            }
            lw_cli_error("diff: --format %s: unknown format (text or json)", optarg);
            return LW_EXIT_USAGE;
        case OPT_TOP:
            if (!lw_cli_parse_u64(optarg, 0, 1u << 30, &top)) {
                lw_cli_error("diff: --top %s: not a number of stacks", optarg);
                return LW_EXIT_USAGE;
            }
            break;
        case OPT_DEBUGINFOD: symopt.debuginfod = true; break;
        case 'o': outfile = optarg; break;
        case 'h': fputs(diff_usage, stdout); return LW_EXIT_OK;
        case ':':
            lw_cli_error("diff: %s needs a value (see leakwatch diff --help)", argv[optind - 1]);
            return LW_EXIT_USAGE;
        default:
            if (optopt && optopt < 256)
                lw_cli_error("diff: unknown option '-%c' (see leakwatch diff --help)", optopt);
            else
                lw_cli_error("diff: bad option '%s' (see leakwatch diff --help)", argv[optind - 1]);
            return LW_EXIT_USAGE;
        }
    }
    if (argc - optind != 2) {
        lw_cli_error("diff: give two snapshots, BASE and NEW (see leakwatch diff --help)");
        return LW_EXIT_USAGE;
    }
    char err[LW_READER_ERRLEN];
    char *bpath = NULL, *npath = NULL;
    struct lw_snapshot *base = load_side(argv[optind], &bpath, err, sizeof err), *new = NULL;
    if (base)
        new = load_side(argv[optind + 1], &npath, err, sizeof err);
    int rc = LW_EXIT_OK;
    lw_sym_t *bsym = NULL, *nsym = NULL;
    struct lw_diff d = {0};
    FILE *f = stdout;
    if (!base || !new) {
        lw_cli_error("%s", err);
        rc = LW_EXIT_INPUT;
        goto out;
    }
    bsym = lw_sym_new(base, &symopt);
    nsym = lw_sym_new(new, &symopt);
    if (!bsym || !nsym) {
        lw_cli_error("out of memory");
        rc = LW_EXIT_INPUT;
        goto out;
    }
    lw_diff_compute(base, new, bsym, nsym, &d);
    if (outfile && !(f = fopen(outfile, "w"))) {
        lw_cli_error("cannot write %s: %s", outfile, strerror(errno));
        rc = LW_EXIT_INPUT;
        f = stdout;
        goto out;
    }
    struct diff_out o = {bpath, npath, base, new, bsym, nsym, &d, (size_t)top};
    int wrc = json ? diff_json(f, &o) : diff_text(f, &o);
    if (f != stdout && fclose(f) != 0)
        wrc = -1;
    f = stdout;
    if (wrc) {
        lw_cli_error("cannot write %s: %s", outfile ? outfile : "the diff", strerror(errno));
        rc = LW_EXIT_INPUT;
    }
out:
    lw_diff_free(&d);
    lw_sym_free(bsym);
    lw_sym_free(nsym);
    lw_reader_free(base);
    lw_reader_free(new);
    free(bpath);
    free(npath);
    return rc;
}
