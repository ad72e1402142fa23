/*
 * output_pprof.c - the snapshot as a gzipped pprof heap profile
 * (github.com/google/pprof proto/profile.proto), for `go tool pprof` and
 * everything that reads its format. Four sample types, inuse_space the
 * default; one sample per call stack, mapped regions split by state and
 * labelled kind=heap|mmap|allocator|madv_free|madv_dontneed.
 *
 * Why a hand-written encoder and not protobuf-c: we only ever encode, the
 * profile uses two wire types (varint, length-delimited) and nine small
 * messages, and the field numbers are a stable public contract. pb.c is
 * ~80 lines; protobuf-c would add a code generator (protoc-c) and a
 * runtime library to the build for the same bytes. The real `go tool
 * pprof` reads every profile in the tests (tests/integration/test_pprof.py).
 */
#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zlib.h>

#include "framename.h"
#include "pb.h"
#include "progress.h"

/* profile.proto field numbers. */
enum {
    P_SAMPLE_TYPE = 1, P_SAMPLE = 2, P_MAPPING = 3, P_LOCATION = 4, P_FUNCTION = 5,
    P_STRING_TABLE = 6, P_TIME_NANOS = 9, P_DURATION_NANOS = 10, P_PERIOD_TYPE = 11,
    P_PERIOD = 12, P_COMMENT = 13, P_DEFAULT_SAMPLE_TYPE = 14,
    VT_TYPE = 1, VT_UNIT = 2,
    S_LOCATION_ID = 1, S_VALUE = 2, S_LABEL = 3,
    L_KEY = 1, L_STR = 2, L_NUM = 3, L_NUM_UNIT = 4,
    M_ID = 1, M_START = 2, M_LIMIT = 3, M_OFFSET = 4, M_FILENAME = 5, M_BUILD_ID = 6,
    M_HAS_FUNCTIONS = 7, M_HAS_FILENAMES = 8, M_HAS_LINE_NUMBERS = 9, M_HAS_INLINE = 10,
    LOC_ID = 1, LOC_MAPPING_ID = 2, LOC_ADDRESS = 3, LOC_LINE = 4,
    LINE_FUNCTION_ID = 1, LINE_LINE = 2,
    F_ID = 1, F_NAME = 2, F_SYSTEM_NAME = 3, F_FILENAME = 4,
};

struct strent {
    UT_hash_handle hh;
    uint64_t index;
    size_t len;
    char s[]; /* key: len bytes */
};

struct funcent {
    UT_hash_handle hh;
    uint64_t id;
    size_t keylen;
    char key[]; /* name NUL file */
};

struct locent {
    UT_hash_handle hh;
    uint64_t address; /* key: the recorded return address */
    uint64_t id;
};

struct seg {
    uint64_t start, limit, offset;
    uint64_t id;
};

struct pp {
    const struct lw_report *r;
    struct lw_pb out;      /* the Profile message */
    struct lw_pb msg, sub; /* scratch for one nested message */
    struct strent *strings;
    uint64_t nstrings;
    struct funcent *funcs;
    uint64_t nfuncs;
    struct locent *locs;
    uint64_t nlocs;
    struct seg *segs;
    size_t nsegs;
    bool oom;
};

/* Index of s in the string table, adding it (and to the Profile) if new. */
static uint64_t str(struct pp *p, const char *s)
{
    size_t len = strlen(s);
    struct strent *e;
    HASH_FIND(hh, p->strings, s, len, e);
    if (e)
        return e->index;
    e = malloc(sizeof *e + len + 1);
    if (!e) {
        p->oom = true;
        return 0;
    }
    memcpy(e->s, s, len + 1);
    e->len = len;
    e->index = p->nstrings++;
    HASH_ADD_KEYPTR(hh, p->strings, e->s, len, e);
    lw_pb_lenfield(&p->out, P_STRING_TABLE, s, len);
    return e->index;
}

static void value_type(struct pp *p, uint32_t field, const char *type, const char *unit)
{
    uint64_t t = str(p, type), u = str(p, unit);
    lw_pb_reset(&p->msg);
    lw_pb_uint(&p->msg, VT_TYPE, t);
    lw_pb_uint(&p->msg, VT_UNIT, u);
    lw_pb_lenfield(&p->out, field, p->msg.data, p->msg.len);
}

static int seg_cmp(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* One Mapping per PT_LOAD segment of every module, the main executable's
 * first (pprof takes the first mapping as the main binary). */
static void mappings(struct pp *p)
{
    const struct lw_snapshot *s = p->r->snap;
    size_t n = 0;
    for (size_t i = 0; i < s->nmodules; i++)
        n += s->modules[i].nsegs;
    p->segs = calloc(n ? n : 1, sizeof *p->segs);
    if (!p->segs) {
        p->oom = true;
        return;
    }
    bool sym = p->r->sym != NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->nmodules; i++) {
            const struct lw_snap_module *m = &s->modules[i];
            if (((m->flags & LW_MOD_MAIN) != 0) != (pass == 0))
                continue;
            char bid[2 * 64 + 1];
            size_t bn = 0;
            for (uint32_t k = 0; k < m->build_id_len && bn + 2 < sizeof bid; k++)
                bn += (size_t)snprintf(bid + bn, sizeof bid - bn, "%02x", m->build_id[k]);
            bid[bn] = '\0';
            uint64_t file = str(p, m->path), build = str(p, bid);
            for (uint32_t k = 0; k < m->nsegs; k++) {
                const struct lw_rec_segment *sg = &m->segs[k];
                struct seg *d = &p->segs[p->nsegs++];
                d->start = sg->start;
                d->limit = sg->start + sg->size;
                d->offset = sg->file_offset;
                d->id = p->nsegs;
                lw_pb_reset(&p->msg);
                lw_pb_uint(&p->msg, M_ID, d->id);
                lw_pb_uint(&p->msg, M_START, d->start);
                lw_pb_uint(&p->msg, M_LIMIT, d->limit);
                lw_pb_uint(&p->msg, M_OFFSET, d->offset);
                lw_pb_uint(&p->msg, M_FILENAME, file);
                lw_pb_uint(&p->msg, M_BUILD_ID, build);
                /* Every location carries a name (a function or module+offset),
                 * so pprof must not try to symbolize again. */
                lw_pb_uint(&p->msg, M_HAS_FUNCTIONS, 1);
                lw_pb_uint(&p->msg, M_HAS_FILENAMES, sym);
                lw_pb_uint(&p->msg, M_HAS_LINE_NUMBERS, sym);
                lw_pb_uint(&p->msg, M_HAS_INLINE, sym);
                lw_pb_lenfield(&p->out, P_MAPPING, p->msg.data, p->msg.len);
            }
        }
    }
    qsort(p->segs, p->nsegs, sizeof *p->segs, seg_cmp);
}

static uint64_t mapping_of(const struct pp *p, uint64_t addr)
{
    size_t lo = 0, hi = p->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && addr < p->segs[lo - 1].limit)
        return p->segs[lo - 1].id;
    return 0;
}

static uint64_t function(struct pp *p, const char *name, const char *file)
{
    size_t nl = strlen(name), fl = strlen(file), kl = nl + 1 + fl;
    struct funcent *e;
    char *key = malloc(kl + 1);
    if (!key) {
        p->oom = true;
        return 0;
    }
    memcpy(key, name, nl + 1);
    memcpy(key + nl + 1, file, fl + 1);
    HASH_FIND(hh, p->funcs, key, kl, e);
    if (e) {
        free(key);
        return e->id;
    }
    e = malloc(sizeof *e + kl + 1);
    if (!e) {
        free(key);
        p->oom = true;
        return 0;
    }
    memcpy(e->key, key, kl + 1);
    free(key);
    e->keylen = kl;
    e->id = ++p->nfuncs;
    HASH_ADD_KEYPTR(hh, p->funcs, e->key, kl, e);
    uint64_t n = str(p, name), f = str(p, file);
    lw_pb_reset(&p->msg);
    lw_pb_uint(&p->msg, F_ID, e->id);
    lw_pb_uint(&p->msg, F_NAME, n);
    lw_pb_uint(&p->msg, F_SYSTEM_NAME, n);
    lw_pb_uint(&p->msg, F_FILENAME, f);
    lw_pb_lenfield(&p->out, P_FUNCTION, p->msg.data, p->msg.len);
    return e->id;
}

/* The Location of one recorded return address, made on first use.
 *
 * Address convention: we record return addresses; pprof's Location.address
 * is the call site ("a non-leaf address may be in the middle of a call
 * instruction", profile.proto), which is what Go's runtime/pprof writes
 * (return PC - 1) and what pprof symbolizes without adjusting. So we write
 * return address - 1, the same address our symbolizer looks up: anyone
 * re-symbolizing the profile gets the call's line, not the next one. */
static uint64_t location(struct pp *p, uint64_t address)
{
    struct locent *e;
    HASH_FIND(hh, p->locs, &address, sizeof address, e);
    if (e)
        return e->id;
    e = malloc(sizeof *e);
    if (!e) {
        p->oom = true;
        return 0;
    }
    e->address = address;
    e->id = ++p->nlocs;
    HASH_ADD(hh, p->locs, address, sizeof e->address, e);

    /* Functions go to p->out first: build the Line list in p->sub. */
    char name[512];
    lw_pb_reset(&p->sub);
    const struct lw_sym_loc *loc = p->r->sym ? lw_sym_lookup(p->r->sym, address) : NULL;
    size_t nfr = loc ? loc->nframes : 1;
    for (size_t k = 0; k < nfr; k++) {
        const struct lw_sym_frame *fr = loc ? &loc->frames[k] : NULL;
        uint64_t fid = function(p, lw_frame_name(loc, fr, address, name, sizeof name),
                                fr ? fr->file : "");
        uint8_t line[24];
        struct lw_pb lb = {.data = line, .cap = sizeof line};
        lw_pb_uint(&lb, LINE_FUNCTION_ID, fid);
        if (fr && fr->line)
            lw_pb_uint(&lb, LINE_LINE, fr->line);
        lw_pb_lenfield(&p->sub, LOC_LINE, lb.data, lb.len);
    }
    uint64_t call = address ? address - 1 : 0;
    lw_pb_reset(&p->msg);
    lw_pb_uint(&p->msg, LOC_ID, e->id);
    uint64_t mid = mapping_of(p, call);
    if (mid)
        lw_pb_uint(&p->msg, LOC_MAPPING_ID, mid);
    lw_pb_uint(&p->msg, LOC_ADDRESS, call);
    lw_pb_bytes(&p->msg, p->sub.data, p->sub.len);
    if (p->sub.oom)
        p->oom = true;
    lw_pb_lenfield(&p->out, P_LOCATION, p->msg.data, p->msg.len);
    return e->id;
}

static void label_str(struct lw_pb *m, uint64_t key, uint64_t val)
{
    uint8_t buf[32];
    struct lw_pb lb = {.data = buf, .cap = sizeof buf};
    lw_pb_uint(&lb, L_KEY, key);
    lw_pb_uint(&lb, L_STR, val);
    lw_pb_lenfield(m, S_LABEL, lb.data, lb.len);
}

static void label_num(struct lw_pb *m, uint64_t key, uint64_t num, uint64_t unit)
{
    uint8_t buf[40];
    struct lw_pb lb = {.data = buf, .cap = sizeof buf};
    lw_pb_uint(&lb, L_KEY, key);
    lw_pb_uint(&lb, L_NUM, num);
    if (unit)
        lw_pb_uint(&lb, L_NUM_UNIT, unit);
    lw_pb_lenfield(m, S_LABEL, lb.data, lb.len);
}

struct labels {
    uint64_t kind, pid, resident, bytes;
    uint64_t kinds[6]; /* heap, mmap, allocator, madv_free, madv_dontneed, unknown */
};

enum { K_HEAP, K_MMAP, K_ALLOCATOR, K_MADV_FREE, K_MADV_DONTNEED, K_UNKNOWN };

static void sample(struct pp *p, const struct labels *lb, const uint64_t *locs, size_t nlocs,
                   const uint64_t v[4], int kind, uint64_t resident)
{
    lw_pb_reset(&p->msg);
    lw_pb_packed(&p->msg, S_LOCATION_ID, locs, nlocs);
    lw_pb_packed(&p->msg, S_VALUE, v, 4);
    label_str(&p->msg, lb->kind, lb->kinds[kind]);
    label_num(&p->msg, lb->pid, p->r->snap->proc.pid, 0);
    if (kind == K_MADV_FREE)
        label_num(&p->msg, lb->resident, resident, lb->bytes);
    lw_pb_lenfield(&p->out, P_SAMPLE, p->msg.data, p->msg.len);
}

/* Bytes of a mapping stack's regions by state, for splitting its sample. */
struct split {
    uint64_t madv_free, resident, dontneed;
};

static void comments(struct pp *p)
{
    const struct lw_snapshot *s = p->r->snap;
    char buf[600], when[40];
    lw_output_iso_time(s->proc.time_ns, when, sizeof when);
    snprintf(buf, sizeof buf, "leakwatch snapshot #%u of pid %u (%s) at %s", s->proc.seq,
             s->proc.pid, s->exe, when);
    lw_pb_uint(&p->out, P_COMMENT, str(p, buf));
    snprintf(buf, sizeof buf, "trigger: %s", lw_reader_trigger_name(s->proc.trigger));
    lw_pb_uint(&p->out, P_COMMENT, str(p, buf));
    snprintf(buf, sizeof buf, "pid: %u", s->proc.pid);
    lw_pb_uint(&p->out, P_COMMENT, str(p, buf));
    if (s->proc.sample_interval) {
        snprintf(buf, sizeof buf, "sampled: about one allocation per %" PRIu64 " bytes",
                 s->proc.sample_interval);
        lw_pb_uint(&p->out, P_COMMENT, str(p, buf));
    }
    lw_pb_uint(&p->out, P_COMMENT,
               str(p, "kind=allocator samples are mappings made by malloc itself: they hold "
                      "kind=heap blocks (use -tagignore kind=allocator to count bytes once)"));
}

/* Build the whole Profile message in p->out. */
static void build(struct pp *p)
{
    const struct lw_report *r = p->r;
    const struct lw_snapshot *s = r->snap;
    str(p, ""); /* string_table[0] must be "" */
    value_type(p, P_SAMPLE_TYPE, "alloc_objects", "count");
    value_type(p, P_SAMPLE_TYPE, "alloc_space", "bytes");
    value_type(p, P_SAMPLE_TYPE, "inuse_objects", "count");
    value_type(p, P_SAMPLE_TYPE, "inuse_space", "bytes");
    lw_pb_uint(&p->out, P_DEFAULT_SAMPLE_TYPE, str(p, "inuse_space"));
    value_type(p, P_PERIOD_TYPE, "space", "bytes");
    lw_pb_uint(&p->out, P_PERIOD, s->proc.sample_interval ? s->proc.sample_interval : 1);
    lw_pb_uint(&p->out, P_TIME_NANOS, s->proc.time_ns);
    if (s->proc.time_ns > s->proc.start_time_ns)
        lw_pb_uint(&p->out, P_DURATION_NANOS, s->proc.time_ns - s->proc.start_time_ns);
    comments(p);
    mappings(p);

    struct labels lb;
    lb.kind = str(p, "kind");
    lb.pid = str(p, "pid");
    lb.resident = str(p, "resident");
    lb.bytes = str(p, "bytes");
    static const char *const names[] = {"heap", "mmap", "allocator", "madv_free",
                                        "madv_dontneed", "unknown"};
    for (int i = 0; i < 6; i++)
        lb.kinds[i] = str(p, names[i]);

    struct split *sp = calloc(s->nstacks ? s->nstacks : 1, sizeof *sp);
    uint64_t *locs = malloc((UINT16_MAX + 1) * sizeof *locs);
    if (!sp || !locs) {
        p->oom = true;
        free(sp);
        free(locs);
        return;
    }
    for (size_t i = 0; i < s->nregions; i++) {
        const struct lw_rec_region *rg = &s->regions[i];
        const struct lw_snap_stack *st = lw_reader_find_stack(s, rg->stack);
        if (!st)
            continue;
        struct split *x = &sp[st - s->stacks];
        if (rg->state == LW_STATE_MADV_FREE) {
            x->madv_free += rg->size;
            x->resident += rg->resident_bytes;
        } else if (rg->state == LW_STATE_MADV_DONTNEED) {
            x->dontneed += rg->size;
        }
    }

    struct lw_progress prog;
    lw_progress_begin(&prog, "pprof: symbolizing stacks", r->nstacks);
    for (size_t i = 0; i < r->nstacks && !p->oom; i++) {
        lw_progress_step(&prog, i);
        const struct lw_ranked *rk = &r->stacks[i];
        const struct lw_snap_stack *st = rk->stack;
        size_t n = 0;
        for (uint16_t k = 0; k < st->nframes && n <= UINT16_MAX; k++)
            locs[n++] = location(p, st->frames[k]);
        uint64_t v[4] = {st->alloc_objects, st->alloc_bytes, rk->inuse_objects, rk->inuse_bytes};
        if (st->kind == LW_KIND_HEAP) {
            sample(p, &lb, locs, n, v, K_HEAP, 0);
            continue;
        }
        if (st->kind != LW_KIND_MMAP && st->kind != LW_KIND_ALLOCATOR) {
            sample(p, &lb, locs, n, v, K_UNKNOWN, 0);
            continue;
        }
        /* A mapping stack: its MADV_FREE and MADV_DONTNEED bytes become
         * samples of their own; the rest stays with the stack's kind. The
         * three add up to the stack's bytes in use, as in the JSON report. */
        const struct split *x = &sp[st - s->stacks];
        uint64_t other = x->madv_free + x->dontneed;
        v[3] = v[3] > other ? v[3] - other : 0;
        sample(p, &lb, locs, n, v, st->kind == LW_KIND_MMAP ? K_MMAP : K_ALLOCATOR, 0);
        if (x->madv_free) {
            uint64_t w[4] = {0, 0, 0, x->madv_free};
            sample(p, &lb, locs, n, w, K_MADV_FREE, x->resident);
        }
        if (x->dontneed) {
            uint64_t w[4] = {0, 0, 0, x->dontneed};
            sample(p, &lb, locs, n, w, K_MADV_DONTNEED, 0);
        }
    }
    lw_progress_end(&prog);
    free(sp);
    free(locs);
    if (p->out.oom || p->msg.oom)
        p->oom = true;
}

static void pp_free(struct pp *p)
{
    struct strent *s, *st;
    HASH_ITER(hh, p->strings, s, st) {
        HASH_DEL(p->strings, s);
        free(s);
    }
    struct funcent *f, *ft;
    HASH_ITER(hh, p->funcs, f, ft) {
        HASH_DEL(p->funcs, f);
        free(f);
    }
    struct locent *l, *lt;
    HASH_ITER(hh, p->locs, l, lt) {
        HASH_DEL(p->locs, l);
        free(l);
    }
    free(p->segs);
    lw_pb_free(&p->out);
    lw_pb_free(&p->msg);
    lw_pb_free(&p->sub);
}

/* gzip (RFC 1952, what pprof expects) of buf[len] to f. */
static int gzip_to(FILE *f, const uint8_t *buf, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer instead of zlib's. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uint8_t out[65536];
    int zrc = Z_OK;
    size_t done = 0;
    do {
        size_t chunk = len - done > (1u << 30) ? (1u << 30) : len - done;
        z.next_in = (Bytef *)(buf + done);
        z.avail_in = (uInt)chunk;
        done += chunk;
        int flush = done == len ? Z_FINISH : Z_NO_FLUSH;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            zrc = deflate(&z, flush);
            if (zrc == Z_STREAM_ERROR)
                break;
            size_t n = sizeof out - z.avail_out;
            if (n && fwrite(out, 1, n, f) != n)
                zrc = Z_STREAM_ERROR;
        } while (z.avail_out == 0 && zrc != Z_STREAM_ERROR);
    } while (done < len && zrc != Z_STREAM_ERROR);
    deflateEnd(&z);
    return zrc == Z_STREAM_END ? 0 : -1;
}

static int pprof_write(FILE *f, const struct lw_report *r)
{
    struct pp p;
    memset(&p, 0, sizeof p);
    p.r = r;
    build(&p);
    int rc = -1;
    if (p.oom)
        errno = ENOMEM;
    else
        rc = gzip_to(f, p.out.data, p.out.len);
    pp_free(&p);
    if (fflush(f) != 0 || ferror(f))
        rc = -1;
    return rc;
}

const struct lw_output lw_output_pprof = {"pprof", pprof_write};
