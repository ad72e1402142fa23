/*
 * reader.c - parse and validate .lwsnap files (format: include/lw_format.h,
 * docs/FORMAT.md). Two passes over the buffer: the first validates every
 * record and counts what it holds, the second copies it into one block sized
 * from those counts. Nothing is trusted before it is checked against the
 * bytes that remain, so any input gives either a snapshot or one message.
 */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the snapshot format is little-endian; this reader assumes a little-endian host"
#endif

_Static_assert(sizeof(struct lw_snap_header) == 32, "header layout");
_Static_assert(sizeof(struct lw_rec_hdr) == 8, "record header layout");
_Static_assert(sizeof(struct lw_rec_process) == 88, "PROCESS layout");
_Static_assert(sizeof(struct lw_rec_totals) == 272, "TOTALS layout");
_Static_assert(sizeof(struct lw_rec_module) == 24, "MODULE layout");
_Static_assert(sizeof(struct lw_rec_segment) == 32, "segment layout");
_Static_assert(sizeof(struct lw_rec_stack) == 40, "STACK layout");
_Static_assert(sizeof(struct lw_rec_region) == 40, "REGION layout");
_Static_assert(sizeof(struct lw_rec_end) == 16, "END layout");
_Static_assert(sizeof(struct lw_rec_thread) == 40, "THREAD layout");
_Static_assert(sizeof(struct lw_rec_age) == 16, "AGE layout");
_Static_assert(sizeof(struct lw_age_bucket) == 24, "AGE bucket layout");
_Static_assert(sizeof(struct lw_rec_trigger) == 48, "TRIGGER layout");
_Static_assert(sizeof(struct lw_rec_kernel_proc) == 80, "KERNEL_PROC layout");
_Static_assert(sizeof(struct lw_rec_kernel_cgroup) == 120, "KERNEL_CGROUP layout");
_Static_assert(sizeof(struct lw_rec_page_cache) == 40, "PAGE_CACHE layout");
_Static_assert(sizeof(struct lw_rec_alloc_stats) == 80, "ALLOC_STATS layout");

struct parse {
    const uint8_t *buf;
    size_t len;
    const char *name;
    char *err;
    uint16_t major, minor;
    size_t header_size;
    bool strict; /* file minor <= ours: no trailing payload bytes, no unknown enum values */
};

/* Counts from pass 1, enough to size the block for pass 2. */
struct counts {
    size_t records; /* before END */
    size_t process, totals, modules, stacks, regions, unknown;
    size_t segs, frames, build_id_bytes, string_bytes, argc;
    size_t threads, ages, buckets, triggers; /* 1.2: tags 9-11 */
    size_t kproc, cgroup, page_cache, alloc_stats; /* 1.2 kernel records */
};

__attribute__((format(printf, 2, 3))) static bool fail(struct parse *p, const char *fmt, ...)
{
    int n = snprintf(p->err, LW_READER_ERRLEN, "%s: ", p->name);
    if (n < 0 || n >= (int)LW_READER_ERRLEN)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, LW_READER_ERRLEN - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static const char *tag_name(uint32_t tag)
{
    switch (tag) {
    case LW_REC_PROCESS: return "PROCESS";
    case LW_REC_TOTALS: return "TOTALS";
    case LW_REC_MODULE: return "MODULE";
    case LW_REC_STACK: return "STACK";
    case LW_REC_REGION: return "REGION";
    case LW_REC_THREAD: return "THREAD";
    case LW_REC_AGE: return "AGE";
    case LW_REC_TRIGGER: return "TRIGGER";
    case LW_REC_END: return "END";
    case LW_REC_KERNEL_PROC: return "KERNEL_PROC";
    case LW_REC_KERNEL_CGROUP: return "KERNEL_CGROUP";
    case LW_REC_PAGE_CACHE: return "PAGE_CACHE";
    case LW_REC_ALLOC_STATS: return "ALLOC_STATS";
    default: return "unknown";
    }
}

const char *lw_reader_trigger_name(uint32_t trigger)
{
    switch (trigger) {
    case LW_TRIGGER_EXIT: return "exit";
    case LW_TRIGGER_SIGNAL: return "signal";
    case LW_TRIGGER_INTERVAL: return "interval";
    case LW_TRIGGER_THRESHOLD: return "threshold";
    case LW_TRIGGER_HEAP_THRESHOLD: return "heap-threshold";
    default: return "unknown";
    }
}

const char *lw_reader_kind_name(uint32_t kind)
{
    switch (kind) {
    case LW_KIND_HEAP: return "heap";
    case LW_KIND_MMAP: return "mmap";
    case LW_KIND_ALLOCATOR: return "allocator";
    case LW_KIND_THREAD: return "thread";
    default: return "unknown";
    }
}

const char *lw_reader_watch_name(uint32_t source)
{
    switch (source) {
    case LW_WATCH_CGROUP_USAGE: return "cgroup";
    case LW_WATCH_RSS: return "rss";
    case LW_WATCH_HEAP: return "heap";
    default: return "unknown";
    }
}

/* Check magic, version and header size. Works on a prefix of the file too
 * (peek): `len` is what we have. */
static bool check_header(struct parse *p)
{
    static const char magic[] = LW_SNAP_MAGIC;
    size_t have = p->len;
    if (have == 0)
        return fail(p, "empty file (truncated, or not a snapshot)");
    if (memcmp(p->buf, magic, have < LW_SNAP_MAGIC_LEN ? have : LW_SNAP_MAGIC_LEN) != 0)
        return fail(p, "not a leakwatch snapshot (bad magic)");
    if (have < 12)
        return fail(p, "truncated: the file ends inside the header (%zu bytes)", have);
    struct lw_snap_header h;
    memset(&h, 0, sizeof h);
    memcpy(&h, p->buf, have < sizeof h ? have : sizeof h);
    if (h.major > LW_SNAP_MAJOR)
        return fail(p,
                    "snapshot format %u.x is newer than this leakwatch understands (%u.x); "
                    "upgrade leakwatch",
                    (unsigned)h.major, (unsigned)LW_SNAP_MAJOR);
    if (h.major < LW_SNAP_MAJOR)
        return fail(p, "snapshot format %u.%u is not supported (this leakwatch reads %u.x)",
                    (unsigned)h.major, (unsigned)h.minor, (unsigned)LW_SNAP_MAJOR);
    if (have < sizeof h)
        return fail(p, "truncated: the file ends inside the header (%zu bytes)", have);
    if (h.header_size < sizeof h || h.header_size % LW_REC_ALIGN != 0)
        return fail(p, "corrupt header: header size %u (expected %zu or more, a multiple of 8)",
                    h.header_size, sizeof h);
    if (h.minor <= LW_SNAP_MINOR && h.header_size != sizeof h)
        return fail(p, "corrupt header: header size %u, format %u.%u has %zu", h.header_size,
                    (unsigned)h.major, (unsigned)h.minor, sizeof h);
    if (h.header_size > have)
        return fail(p, "truncated: the file ends inside the header (%zu of %u bytes)", have,
                    h.header_size);
    p->major = h.major;
    p->minor = h.minor;
    p->header_size = h.header_size;
    p->strict = h.minor <= LW_SNAP_MINOR;
    return true;
}

/* Payload length check: exactly `need` bytes, or at least `need` in files
 * of a newer minor version (which may append fields). */
static bool check_len(struct parse *p, size_t off, uint32_t tag, uint64_t len, uint64_t need)
{
    if (len < need || (p->strict && len != need))
        return fail(p, "corrupt %s record at offset %zu: payload is %llu bytes, expected %llu",
                    tag_name(tag), off, (unsigned long long)len, (unsigned long long)need);
    return true;
}

/* Number of arguments in a NUL-separated command line. */
static size_t count_args(const uint8_t *s, size_t n)
{
    size_t argc = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0')
            argc++;
    if (n > 0 && s[n - 1] != '\0')
        argc++;
    return argc;
}

/* Stack kinds of the file's version: THREAD exists from 1.2 on. */
static bool stack_kind_known(const struct parse *p, uint8_t kind)
{
    uint8_t last = p->minor >= 2 ? LW_KIND_THREAD : LW_KIND_ALLOCATOR;
    return kind >= LW_KIND_HEAP && kind <= last;
}

/* THREAD (1.2): fixed size; the stack it names is checked in check_refs_12. */
static bool scan_thread(struct parse *p, size_t off, uint32_t len, struct counts *c)
{
    if (!check_len(p, off, LW_REC_THREAD, len, sizeof(struct lw_rec_thread)))
        return false;
    c->threads++;
    return true;
}

/* AGE (1.2): header, then nbuckets buckets with ages strictly ascending. */
static bool scan_age(struct parse *p, size_t off, const uint8_t *pl, uint32_t len,
                     struct counts *c)
{
    struct lw_rec_age r;
    if (len < sizeof r)
        return check_len(p, off, LW_REC_AGE, len, sizeof r);
    memcpy(&r, pl, sizeof r);
    if (!check_len(p, off, LW_REC_AGE, len,
                   sizeof r + (uint64_t)r.nbuckets * sizeof(struct lw_age_bucket)))
        return false;
    if (r.stack == 0)
        return fail(p, "corrupt AGE record at offset %zu: stack id 0", off);
    uint64_t prev = 0;
    for (uint32_t i = 0; i < r.nbuckets; i++) {
        struct lw_age_bucket b;
        memcpy(&b, pl + sizeof r + (size_t)i * sizeof b, sizeof b);
        if (i > 0 && b.min_age_ns <= prev)
            return fail(p,
                        "corrupt AGE record at offset %zu: bucket %u (min age %llu ns) does not "
                        "follow bucket %u (%llu ns) in ascending order",
                        off, i, (unsigned long long)b.min_age_ns, i - 1,
                        (unsigned long long)prev);
        prev = b.min_age_ns;
    }
    c->ages++;
    c->buckets += r.nbuckets;
    return true;
}

/* TRIGGER (1.2): at most one, with known values in files of our minor. */
static bool scan_trigger(struct parse *p, size_t off, const uint8_t *pl, uint32_t len,
                         struct counts *c)
{
    struct lw_rec_trigger r;
    if (c->triggers)
        return fail(p, "corrupt: a second TRIGGER record at offset %zu", off);
    if (!check_len(p, off, LW_REC_TRIGGER, len, sizeof r))
        return false;
    memcpy(&r, pl, sizeof r);
    if (p->strict && (r.trigger < LW_TRIGGER_EXIT || r.trigger > LW_TRIGGER_HEAP_THRESHOLD))
        return fail(p, "corrupt TRIGGER record at offset %zu: unknown trigger %u", off, r.trigger);
    if (p->strict && (r.source < LW_WATCH_CGROUP_USAGE || r.source > LW_WATCH_HEAP))
        return fail(p, "corrupt TRIGGER record at offset %zu: unknown source %u", off, r.source);
    c->triggers++;
    return true;
}

/* Pass 1: validate every record; fill *c. */
static bool scan(struct parse *p, struct counts *c)
{
    size_t off = p->header_size;
    memset(c, 0, sizeof *c);
    for (;;) {
        if (off == p->len)
            return fail(p, "truncated: no END record (the file ends after %zu bytes, %zu records)",
                        p->len, c->records);
        if (p->len - off < sizeof(struct lw_rec_hdr))
            return fail(p, "truncated: the file ends inside a record header at offset %zu", off);
        struct lw_rec_hdr h;
        memcpy(&h, p->buf + off, sizeof h);
        size_t avail = p->len - off - sizeof h;
        const uint8_t *pl = p->buf + off + sizeof h;
        if (h.len > avail)
            return fail(p,
                        "truncated or corrupt: %s record at offset %zu has %u payload bytes, "
                        "only %zu remain in the file",
                        tag_name(h.tag), off, h.len, avail);
        uint64_t padded = LW_REC_PAD((uint64_t)h.len);
        if (h.tag != LW_REC_END && padded > avail)
            return fail(p, "truncated: the file ends inside the %s record at offset %zu",
                        tag_name(h.tag), off);
        if (h.tag != LW_REC_PROCESS && c->process == 0)
            return fail(p, "corrupt: the first record (offset %zu) is %s, not PROCESS", off,
                        tag_name(h.tag));
        switch (h.tag) {
        case LW_REC_PROCESS: {
            struct lw_rec_process r;
            if (c->process)
                return fail(p, "corrupt: a second PROCESS record at offset %zu", off);
            if (h.len < sizeof r)
                return check_len(p, off, h.tag, h.len, sizeof r);
            memcpy(&r, pl, sizeof r);
            uint64_t need = sizeof r + (uint64_t)r.exe_len + r.cmdline_len;
            if (!check_len(p, off, h.tag, h.len, need))
                return false;
            c->process++;
            c->string_bytes += (size_t)r.exe_len + 1 + r.cmdline_len + 1;
            c->argc = count_args(pl + sizeof r + r.exe_len, r.cmdline_len);
            break;
        }
        case LW_REC_TOTALS:
            if (c->totals)
                return fail(p, "corrupt: a second TOTALS record at offset %zu", off);
            if (!check_len(p, off, h.tag, h.len, sizeof(struct lw_rec_totals)))
                return false;
            c->totals++;
            break;
        case LW_REC_MODULE: {
            struct lw_rec_module r;
            if (h.len < sizeof r)
                return check_len(p, off, h.tag, h.len, sizeof r);
            memcpy(&r, pl, sizeof r);
            uint64_t need = sizeof r + (uint64_t)r.nsegs * sizeof(struct lw_rec_segment) +
                            r.path_len + r.build_id_len;
            if (!check_len(p, off, h.tag, h.len, need))
                return false;
            c->modules++;
            c->segs += r.nsegs;
            c->string_bytes += (size_t)r.path_len + 1;
            c->build_id_bytes += r.build_id_len;
            break;
        }
        case LW_REC_STACK: {
            struct lw_rec_stack r;
            if (h.len < sizeof r)
                return check_len(p, off, h.tag, h.len, sizeof r);
            memcpy(&r, pl, sizeof r);
            if (!check_len(p, off, h.tag, h.len, sizeof r + (uint64_t)r.nframes * 8))
                return false;
            if (r.id == 0)
                return fail(p, "corrupt STACK record at offset %zu: stack id 0", off);
            if (p->strict && !stack_kind_known(p, r.kind))
                return fail(p, "corrupt STACK record at offset %zu: unknown kind %u", off,
                            (unsigned)r.kind);
            c->stacks++;
            c->frames += r.nframes;
            break;
        }
        case LW_REC_REGION: {
            struct lw_rec_region r;
            if (!check_len(p, off, h.tag, h.len, sizeof r))
                return false;
            memcpy(&r, pl, sizeof r);
            if (p->strict && r.kind != LW_KIND_MMAP && r.kind != LW_KIND_ALLOCATOR)
                return fail(p, "corrupt REGION record at offset %zu: unknown kind %u", off,
                            (unsigned)r.kind);
            if (p->strict && (r.state < LW_STATE_MAPPED || r.state > LW_STATE_MADV_DONTNEED))
                return fail(p, "corrupt REGION record at offset %zu: unknown state %u", off,
                            (unsigned)r.state);
            c->regions++;
            break;
        }
        case LW_REC_THREAD:
            if (!scan_thread(p, off, h.len, c))
                return false;
            break;
        case LW_REC_AGE:
            if (!scan_age(p, off, pl, h.len, c))
                return false;
            break;
        case LW_REC_TRIGGER:
            if (!scan_trigger(p, off, pl, h.len, c))
                return false;
            break;
        case LW_REC_KERNEL_PROC:
            if (c->kproc)
                return fail(p, "corrupt: a second KERNEL_PROC record at offset %zu", off);
            if (!check_len(p, off, h.tag, h.len, sizeof(struct lw_rec_kernel_proc)))
                return false;
            c->kproc++;
            break;
        case LW_REC_KERNEL_CGROUP: {
            struct lw_rec_kernel_cgroup r;
            if (c->cgroup)
                return fail(p, "corrupt: a second KERNEL_CGROUP record at offset %zu", off);
            if (h.len < sizeof r)
                return check_len(p, off, h.tag, h.len, sizeof r);
            memcpy(&r, pl, sizeof r);
            if (!check_len(p, off, h.tag, h.len, sizeof r + (uint64_t)r.path_len))
                return false;
            if (p->strict && r.version != 1 && r.version != 2)
                return fail(p, "corrupt KERNEL_CGROUP record at offset %zu: cgroup version %u", off,
                            r.version);
            c->cgroup++;
            c->string_bytes += (size_t)r.path_len + 1;
            break;
        }
        case LW_REC_PAGE_CACHE: {
            struct lw_rec_page_cache r;
            if (h.len < sizeof r)
                return check_len(p, off, h.tag, h.len, sizeof r);
            memcpy(&r, pl, sizeof r);
            if (!check_len(p, off, h.tag, h.len, sizeof r + (uint64_t)r.path_len))
                return false;
            c->page_cache++;
            c->string_bytes += (size_t)r.path_len + 1;
            break;
        }
        case LW_REC_ALLOC_STATS: {
            struct lw_rec_alloc_stats r;
            if (c->alloc_stats)
                return fail(p, "corrupt: a second ALLOC_STATS record at offset %zu", off);
            if (!check_len(p, off, h.tag, h.len, sizeof r))
                return false;
            memcpy(&r, pl, sizeof r);
            if (p->strict && r.allocator != LW_ALLOCATOR_GLIBC && r.allocator != LW_ALLOCATOR_JEMALLOC)
                return fail(p, "corrupt ALLOC_STATS record at offset %zu: unknown allocator %u", off,
                            r.allocator);
            c->alloc_stats++;
            break;
        }
        case LW_REC_END: {
            struct lw_rec_end r;
            if (!check_len(p, off, h.tag, h.len, sizeof r))
                return false;
            memcpy(&r, pl, sizeof r);
            if (r.records != c->records || r.bytes != off)
                return fail(p,
                            "corrupt END record: it counts %llu records ending at offset %llu, "
                            "the file has %zu ending at %zu",
                            (unsigned long long)r.records, (unsigned long long)r.bytes, c->records,
                            off);
            if (!c->totals)
                return fail(p, "corrupt: no TOTALS record");
            if (padded < avail)
                return fail(p, "corrupt: %zu bytes of data after the END record",
                            (size_t)(avail - padded));
            return true;
        }
        default:
            c->unknown++;
            break;
        }
        c->records++;
        off += sizeof h + padded;
    }
}

/* Bump allocation inside the single block; every piece 8-aligned. */
struct carve {
    uint8_t *next;
    uint8_t *end;
};

static void *carve(struct carve *cv, size_t n)
{
    uint8_t *q = cv->next;
    n = (n + 7) & ~(size_t)7;
    if (n > (size_t)(cv->end - q))
        abort(); /* sizes come from pass 1: cannot happen */
    cv->next = q + n;
    return q;
}

static size_t a8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int cmp_by_id(const void *a, const void *b, void *arg)
{
    const struct lw_snap_stack *stacks = arg;
    uint32_t ia = stacks[*(const uint32_t *)a].id;
    uint32_t ib = stacks[*(const uint32_t *)b].id;
    return ia < ib ? -1 : ia > ib;
}

static int cmp_age(const void *a, const void *b)
{
    uint32_t x = ((const struct lw_snap_age *)a)->stack, y = ((const struct lw_snap_age *)b)->stack;
    return x < y ? -1 : x > y;
}

/* Pass 2: copy everything out; the file is known to be valid. */
static struct lw_snapshot *fill(struct parse *p, const struct counts *c)
{
    size_t name_len = strlen(p->name) + 1;
    size_t total = a8(sizeof(struct lw_snapshot)) + a8(name_len) + a8(c->string_bytes) +
                   a8(c->argc * sizeof(char *)) + a8(c->modules * sizeof(struct lw_snap_module)) +
                   a8(c->segs * sizeof(struct lw_rec_segment)) + a8(c->build_id_bytes) +
                   a8(c->stacks * sizeof(struct lw_snap_stack)) + a8(c->frames * 8) +
                   a8(c->regions * sizeof(struct lw_rec_region)) + a8(c->stacks * 4) +
                   a8(c->threads * sizeof(struct lw_rec_thread)) +
                   a8(c->ages * sizeof(struct lw_snap_age)) +
                   a8(c->buckets * sizeof(struct lw_age_bucket)) +
                   a8(c->page_cache * sizeof(struct lw_snap_page_cache));
    uint8_t *mem = calloc(1, total);
    if (!mem) {
        fail(p, "out of memory (%zu bytes needed)", total);
        return NULL;
    }
    struct carve cv = {mem, mem + total};
    struct lw_snapshot *s = carve(&cv, sizeof *s);
    s->mem = mem;
    char *name = carve(&cv, name_len);
    memcpy(name, p->name, name_len);
    s->name = name;
    s->major = p->major;
    s->minor = p->minor;
    char *strings = carve(&cv, c->string_bytes);
    const char **argv = carve(&cv, c->argc * sizeof(char *));
    struct lw_snap_module *mods = carve(&cv, c->modules * sizeof *mods);
    struct lw_rec_segment *segs = carve(&cv, c->segs * sizeof *segs);
    uint8_t *bids = carve(&cv, c->build_id_bytes);
    struct lw_snap_stack *stacks = carve(&cv, c->stacks * sizeof *stacks);
    uint64_t *frames = carve(&cv, c->frames * 8);
    struct lw_rec_region *regions = carve(&cv, c->regions * sizeof *regions);
    uint32_t *by_id = carve(&cv, c->stacks * 4);
    struct lw_rec_thread *threads = carve(&cv, c->threads * sizeof *threads);
    struct lw_snap_age *ages = carve(&cv, c->ages * sizeof *ages);
    struct lw_age_bucket *buckets = carve(&cv, c->buckets * sizeof *buckets);
    struct lw_snap_page_cache *pcs = carve(&cv, c->page_cache * sizeof *pcs);

    size_t off = p->header_size;
    for (;;) {
        struct lw_rec_hdr h;
        memcpy(&h, p->buf + off, sizeof h);
        const uint8_t *pl = p->buf + off + sizeof h;
        if (h.tag == LW_REC_END)
            break;
        switch (h.tag) {
        case LW_REC_PROCESS: {
            memcpy(&s->proc, pl, sizeof s->proc);
            const uint8_t *q = pl + sizeof s->proc;
            memcpy(strings, q, s->proc.exe_len);
            strings[s->proc.exe_len] = '\0';
            s->exe = strings;
            strings += s->proc.exe_len + 1;
            q += s->proc.exe_len;
            memcpy(strings, q, s->proc.cmdline_len);
            strings[s->proc.cmdline_len] = '\0';
            for (size_t i = 0, start = 0; i < s->proc.cmdline_len; i++) {
                if (strings[i] == '\0' || i + 1 == s->proc.cmdline_len) {
                    argv[s->argc++] = strings + start;
                    start = i + 1;
                }
            }
            s->argv = argv;
            strings += s->proc.cmdline_len + 1;
            break;
        }
        case LW_REC_TOTALS:
            memcpy(&s->totals, pl, sizeof s->totals);
            break;
        case LW_REC_MODULE: {
            struct lw_rec_module r;
            memcpy(&r, pl, sizeof r);
            struct lw_snap_module *m = &mods[s->nmodules++];
            const uint8_t *q = pl + sizeof r;
            m->base = r.base;
            m->flags = r.flags;
            m->nsegs = r.nsegs;
            memcpy(segs, q, (size_t)r.nsegs * sizeof *segs);
            m->segs = segs;
            segs += r.nsegs;
            q += (size_t)r.nsegs * sizeof *segs;
            memcpy(strings, q, r.path_len);
            strings[r.path_len] = '\0';
            m->path = strings;
            strings += r.path_len + 1;
            q += r.path_len;
            memcpy(bids, q, r.build_id_len);
            m->build_id = bids;
            m->build_id_len = r.build_id_len;
            bids += r.build_id_len;
            break;
        }
        case LW_REC_STACK: {
            struct lw_rec_stack r;
            memcpy(&r, pl, sizeof r);
            struct lw_snap_stack *st = &stacks[s->nstacks++];
            st->id = r.id;
            st->kind = r.kind;
            st->flags = r.flags;
            st->nframes = r.nframes;
            st->alloc_bytes = r.alloc_bytes;
            st->alloc_objects = r.alloc_objects;
            st->free_bytes = r.free_bytes;
            st->free_objects = r.free_objects;
            memcpy(frames, pl + sizeof r, (size_t)r.nframes * 8);
            st->frames = frames;
            frames += r.nframes;
            break;
        }
        case LW_REC_REGION:
            memcpy(&regions[s->nregions++], pl, sizeof *regions);
            break;
        case LW_REC_THREAD:
            memcpy(&threads[s->nthreads++], pl, sizeof *threads);
            break;
        case LW_REC_AGE: {
            struct lw_rec_age r;
            memcpy(&r, pl, sizeof r);
            struct lw_snap_age *a = &ages[s->nages++];
            a->stack = r.stack;
            a->nbuckets = r.nbuckets;
            memcpy(buckets, pl + sizeof r, (size_t)r.nbuckets * sizeof *buckets);
            a->buckets = buckets;
            buckets += r.nbuckets;
            break;
        }
        case LW_REC_TRIGGER:
            memcpy(&s->trigger, pl, sizeof s->trigger);
            s->has_trigger = true;
            break;
        case LW_REC_KERNEL_PROC:
            memcpy(&s->kproc, pl, sizeof s->kproc);
            s->has_kproc = true;
            break;
        case LW_REC_KERNEL_CGROUP:
            memcpy(&s->cgroup, pl, sizeof s->cgroup);
            memcpy(strings, pl + sizeof s->cgroup, s->cgroup.path_len);
            strings[s->cgroup.path_len] = '\0';
            s->cgroup_path = strings;
            strings += s->cgroup.path_len + 1;
            s->has_cgroup = true;
            break;
        case LW_REC_PAGE_CACHE: {
            struct lw_snap_page_cache *pc = &pcs[s->npage_cache++];
            memcpy(&pc->rec, pl, sizeof pc->rec);
            memcpy(strings, pl + sizeof pc->rec, pc->rec.path_len);
            strings[pc->rec.path_len] = '\0';
            pc->path = strings;
            strings += pc->rec.path_len + 1;
            break;
        }
        case LW_REC_ALLOC_STATS:
            memcpy(&s->alloc_stats, pl, sizeof s->alloc_stats);
            s->has_alloc_stats = true;
            break;
        default:
            s->unknown_records++;
            break;
        }
        off += sizeof h + LW_REC_PAD((uint64_t)h.len);
    }
    s->modules = mods;
    s->stacks = stacks;
    s->regions = regions;
    s->threads = threads;
    qsort(ages, s->nages, sizeof *ages, cmp_age);
    s->ages = ages;
    s->page_cache = pcs;
    for (size_t i = 0; i < s->nstacks; i++)
        by_id[i] = (uint32_t)i;
    qsort_r(by_id, s->nstacks, sizeof *by_id, cmp_by_id, stacks);
    s->by_id = by_id;
    return s;
}

/* Cross-record checks: unique stack ids, regions refer to stacks. */
static bool check_refs(struct parse *p, const struct lw_snapshot *s)
{
    for (size_t i = 1; i < s->nstacks; i++)
        if (s->stacks[s->by_id[i]].id == s->stacks[s->by_id[i - 1]].id)
            return fail(p, "corrupt: stack id %u appears twice", s->stacks[s->by_id[i]].id);
    for (size_t i = 0; i < s->nregions; i++)
        if (!lw_reader_find_stack(s, s->regions[i].stack))
            return fail(p, "corrupt: a region at 0x%llx refers to stack %u, which is not in the file",
                        (unsigned long long)s->regions[i].start, s->regions[i].stack);
    return true;
}

/* Cross-record checks of the 1.2 records: a THREAD names a thread stack,
 * an AGE names a heap stack (at most one AGE each), a TRIGGER agrees with
 * PROCESS. */
static bool check_refs_12(struct parse *p, const struct lw_snapshot *s)
{
    for (size_t i = 0; i < s->nthreads; i++) {
        const struct lw_snap_stack *st = lw_reader_find_stack(s, s->threads[i].stack);
        if (!st || st->kind != LW_KIND_THREAD)
            return fail(p, "corrupt: thread %u refers to stack %u, which is %s", s->threads[i].tid,
                        s->threads[i].stack, st ? "not a thread stack" : "not in the file");
    }
    for (size_t i = 0; i < s->nages; i++) {
        const struct lw_snap_stack *st = lw_reader_find_stack(s, s->ages[i].stack);
        if (!st || st->kind != LW_KIND_HEAP)
            return fail(p, "corrupt: an AGE record refers to stack %u, which is %s",
                        s->ages[i].stack, st ? "not a heap stack" : "not in the file");
    }
    for (size_t i = 1; i < s->nages; i++) /* sorted by stack id in fill */
        if (s->ages[i].stack == s->ages[i - 1].stack)
            return fail(p, "corrupt: stack %u has two AGE records", s->ages[i].stack);
    if (s->has_trigger && s->trigger.trigger != s->proc.trigger)
        return fail(p, "corrupt: the TRIGGER record says trigger %u, the PROCESS record %u",
                    s->trigger.trigger, s->proc.trigger);
    return true;
}

const struct lw_snap_age *lw_reader_find_age(const struct lw_snapshot *s, uint32_t id)
{
    size_t lo = 0, hi = s->nages;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ages[mid].stack == id)
            return &s->ages[mid];
        if (s->ages[mid].stack < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct lw_snap_stack *lw_reader_find_stack(const struct lw_snapshot *s, uint32_t id)
{
    size_t lo = 0, hi = s->nstacks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct lw_snap_stack *st = &s->stacks[s->by_id[mid]];
        if (st->id == id)
            return st;
        if (st->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

struct lw_snapshot *lw_reader_parse(const void *buf, size_t len, const char *name, char *err)
{
    struct parse p = {.buf = buf, .len = len, .name = name ? name : "(snapshot)", .err = err};
    struct counts c;
    err[0] = '\0';
    if (!check_header(&p) || !scan(&p, &c))
        return NULL;
    struct lw_snapshot *s = fill(&p, &c);
    if (s && (!check_refs(&p, s) || !check_refs_12(&p, s))) {
        lw_reader_free(s);
        return NULL;
    }
    return s;
}

void lw_reader_free(struct lw_snapshot *s)
{
    if (s)
        free(s->mem);
}

/* Open path as a regular file; on failure write the message. O_NONBLOCK:
 * opening a FIFO for reading would otherwise wait for a writer (it has no
 * effect on the regular files we go on to read). */
static int open_regular(const char *path, struct stat *st, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, LW_READER_ERRLEN, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        snprintf(err, LW_READER_ERRLEN, "%s: %s", path,
                 S_ISDIR(st->st_mode) ? "is a directory" : "not a regular file");
        close(fd);
        return -1;
    }
    return fd;
}

/* Read up to cap bytes from fd into buf; returns bytes read or -1. */
static ssize_t read_upto(int fd, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

struct lw_snapshot *lw_reader_load(const char *path, char *err)
{
    struct stat st;
    int fd = open_regular(path, &st, err);
    if (fd < 0)
        return NULL;
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size + 1);
    if (!buf) {
        snprintf(err, LW_READER_ERRLEN, "%s: out of memory reading %zu bytes", path, size);
        close(fd);
        return NULL;
    }
    ssize_t n = read_upto(fd, buf, size);
    int saved = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, LW_READER_ERRLEN, "%s: %s", path, strerror(saved));
        free(buf);
        return NULL;
    }
    struct lw_snapshot *s = lw_reader_parse(buf, (size_t)n, path, err);
    free(buf);
    return s;
}

bool lw_reader_peek_process(const char *path, struct lw_rec_process *proc, char *exe,
                            size_t exe_size, char *err)
{
    enum { PEEK = 4096 + 256 };
    uint8_t buf[PEEK];
    struct stat st;
    int fd = open_regular(path, &st, err);
    if (fd < 0)
        return false;
    ssize_t n = read_upto(fd, buf, sizeof buf);
    int saved = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, LW_READER_ERRLEN, "%s: %s", path, strerror(saved));
        return false;
    }
    struct parse p = {.buf = buf, .len = (size_t)n, .name = path, .err = err};
    if (!check_header(&p))
        return false;
    size_t off = p.header_size;
    struct lw_rec_hdr h;
    if (p.len - off < sizeof h + sizeof *proc) {
        if (off + sizeof h + sizeof *proc > PEEK)
            return fail(&p, "corrupt header: header size %zu", off);
        return fail(&p, "truncated: the file ends before the PROCESS record is complete");
    }
    memcpy(&h, buf + off, sizeof h);
    if (h.tag != LW_REC_PROCESS)
        return fail(&p, "corrupt: the first record (offset %zu) is %s, not PROCESS", off,
                    tag_name(h.tag));
    if (h.len < sizeof *proc)
        return check_len(&p, off, h.tag, h.len, sizeof *proc);
    memcpy(proc, buf + off + sizeof h, sizeof *proc);
    if (exe && exe_size) {
        size_t at = off + sizeof h + sizeof *proc;
        size_t take = proc->exe_len;
        if (take > h.len - sizeof *proc)
            take = h.len - sizeof *proc;
        if (take > p.len - at)
            take = p.len - at;
        if (take > exe_size - 1)
            take = exe_size - 1;
        memcpy(exe, buf + at, take);
        exe[take] = '\0';
    }
    return true;
}
