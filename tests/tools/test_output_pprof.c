/*
 * test_output_pprof.c - tools/pb.c and tools/output_pprof.c without go:
 * the wire encoding against known bytes, and the standard fixture's
 * profile gunzipped and decoded by a small decoder written here from
 * profile.proto: sample types, default type, string table, mappings per
 * segment, location addresses (return address - 1), samples split by
 * region state with their kind labels, comments, time and period.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "analysis.h"
#include "fixture.h"
#include "output.h"
#include "pb.h"
#include "reader.h"
#include "render.h"

Test(pb, varints_and_fields)
{
    struct lw_pb b = {0};
    lw_pb_varint(&b, 0);
    lw_pb_varint(&b, 1);
    lw_pb_varint(&b, 300);
    lw_pb_varint(&b, UINT64_MAX);
    static const uint8_t want[] = {0x00, 0x01, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(b.len, sizeof want);
    cr_assert_arr_eq(b.data, want, sizeof want);
    lw_pb_reset(&b);
    lw_pb_uint(&b, 1, 150);          /* the protobuf docs' example: 08 96 01 */
    lw_pb_lenfield(&b, 2, "testing", 7); /* 12 07 74 65 73 74 69 6e 67 */
    uint64_t v[] = {3, 270, 86942};  /* packed: 22 06 03 8e 02 9e a7 05 */
    lw_pb_packed(&b, 4, v, 3);
    lw_pb_packed(&b, 5, v, 0);       /* nothing */
    static const uint8_t want2[] = {0x08, 0x96, 0x01, 0x12, 0x07, 't', 'e', 's', 't', 'i', 'n',
                                    'g', 0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05};
    cr_assert_eq(b.len, sizeof want2);
    cr_assert_arr_eq(b.data, want2, sizeof want2);
    cr_assert_not(b.oom);
    lw_pb_free(&b);
}

/* ---- a minimal decoder ---- */
struct field {
    uint32_t num;
    int wire;
    uint64_t v;          /* wire 0 */
    const uint8_t *p;    /* wire 2 */
    size_t n;
};

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Next field of [*p, end); false at the end. Fails the test on bad data. */
static bool next(const uint8_t **p, const uint8_t *end, struct field *f)
{
    if (*p >= end)
        return false;
    uint64_t key;
    cr_assert(varint(p, end, &key));
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    if (f->wire == 0) {
        cr_assert(varint(p, end, &f->v));
    } else {
        cr_assert_eq(f->wire, 2, "unexpected wire type %d", f->wire);
        cr_assert(varint(p, end, &f->v));
        cr_assert_leq(f->v, (uint64_t)(end - *p));
        f->p = *p;
        f->n = f->v;
        *p += f->n;
    }
    return true;
}

static uint64_t get(const uint8_t *p, size_t n, uint32_t num)
{
    struct field f;
    const uint8_t *end = p + n;
    while (next(&p, end, &f))
        if (f.num == num && f.wire == 0)
            return f.v;
    return 0;
}

/* Packed varints (or single varints) of field num, into out[max]. */
static size_t packed(const uint8_t *p, size_t n, uint32_t num, uint64_t *out, size_t max)
{
    struct field f;
    const uint8_t *end = p + n;
    size_t k = 0;
    while (next(&p, end, &f)) {
        if (f.num != num)
            continue;
        if (f.wire == 0) {
            if (k < max)
                out[k++] = f.v;
            continue;
        }
        const uint8_t *q = f.p;
        while (q < f.p + f.n && k < max)
            cr_assert(varint(&q, f.p + f.n, &out[k++]));
    }
    return k;
}

struct profile {
    uint8_t *raw;
    size_t len;
    char **strings;
    size_t nstrings;
};

static struct profile load(void)
{
    size_t gzlen = 0;
    char *gz = lwt_render_standard(&lw_output_pprof, 0, &gzlen);

    cr_assert_eq((uint8_t)gz[0], 0x1f);
    cr_assert_eq((uint8_t)gz[1], 0x8b);
    struct profile pr = {0};
    size_t cap = 1 << 20;
    pr.raw = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)gzlen;
    z.next_out = pr.raw;
    z.avail_out = (uInt)cap;
    cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
    pr.len = cap - z.avail_out;
    inflateEnd(&z);
    free(gz);

    struct field fl;
    const uint8_t *p = pr.raw, *end = pr.raw + pr.len;
    while (next(&p, end, &fl)) {
        if (fl.num != 6)
            continue;
        pr.strings = realloc(pr.strings, (pr.nstrings + 1) * sizeof *pr.strings);
        pr.strings[pr.nstrings++] = strndup((const char *)fl.p, fl.n);
    }
    return pr;
}

static void unload(struct profile *pr)
{
    for (size_t i = 0; i < pr->nstrings; i++)
        free(pr->strings[i]);
    free(pr->strings);
    free(pr->raw);
}

static const char *S(const struct profile *pr, uint64_t i)
{
    cr_assert_lt(i, pr->nstrings);
    return pr->strings[i];
}

Test(pprof, standard_fixture_profile)
{
    struct profile pr = load();
    cr_assert_str_eq(pr.strings[0], "");
    const char *types[8];
    size_t ntypes = 0, nmap = 0, nloc = 0, nsamples = 0, ncomments = 0;
    uint64_t sum[4] = {0}, madv_free = 0, madv_dontneed = 0, mmap_inuse = 0, heap_inuse = 0;
    uint64_t resident = 0, time_ns = 0, duration = 0, period = 0;
    bool saw_comment_trigger = false;
    struct field f;
    const uint8_t *p = pr.raw, *end = pr.raw + pr.len;
    while (next(&p, end, &f)) {
        switch (f.num) {
        case 1: /* sample_type */
            types[ntypes++] = S(&pr, get(f.p, f.n, 1));
            cr_assert_str_eq(S(&pr, get(f.p, f.n, 2)), ntypes % 2 ? "count" : "bytes");
            break;
        case 2: { /* sample */
            uint64_t v[8];
            cr_assert_eq(packed(f.p, f.n, 2, v, 8), 4);
            for (int i = 0; i < 4; i++)
                sum[i] += v[i];
            const char *kind = NULL;
            uint64_t pid = 0, res = 0;
            struct field lf;
            const uint8_t *q = f.p, *qe = f.p + f.n;
            while (next(&q, qe, &lf)) {
                if (lf.num != 3)
                    continue;
                const char *key = S(&pr, get(lf.p, lf.n, 1));
                if (!strcmp(key, "kind"))
                    kind = S(&pr, get(lf.p, lf.n, 2));
                else if (!strcmp(key, "pid"))
                    pid = get(lf.p, lf.n, 3);
                else if (!strcmp(key, "resident")) {
                    res = get(lf.p, lf.n, 3);
                    cr_assert_str_eq(S(&pr, get(lf.p, lf.n, 4)), "bytes");
                }
            }
            cr_assert_not_null(kind);
            cr_assert_eq(pid, FX_PID);
            if (!strcmp(kind, "madv_free")) {
                madv_free += v[3];
                resident += res;
            } else if (!strcmp(kind, "madv_dontneed")) {
                madv_dontneed += v[3];
            } else if (!strcmp(kind, "mmap")) {
                mmap_inuse += v[3];
                cr_assert_eq(v[2], 1); /* one mapping in use */
            } else if (!strcmp(kind, "heap")) {
                heap_inuse += v[3];
            } else {
                cr_assert_str_eq(kind, "allocator");
                cr_assert_eq(v[3], 1048576);
            }
            nsamples++;
            break;
        }
        case 3: /* mapping */
            nmap++;
            if (nmap == 1) { /* the main executable's first segment comes first */
                cr_assert_eq(get(f.p, f.n, 2), FX_MAIN_BASE);
                cr_assert_eq(get(f.p, f.n, 3), FX_MAIN_BASE + 0x1000);
                cr_assert_str_eq(S(&pr, get(f.p, f.n, 5)), "/nonexistent/demo");
                cr_assert_str_eq(S(&pr, get(f.p, f.n, 6)), "deadbeef0102");
                cr_assert_eq(get(f.p, f.n, 7), 1); /* has_functions: pprof keeps our names */
            }
            if (nmap == 2) {
                cr_assert_eq(get(f.p, f.n, 2), FX_MAIN_BASE + 0x1000);
                cr_assert_eq(get(f.p, f.n, 4), 0x1000);
            }
            break;
        case 4: { /* location */
            nloc++;
            uint64_t addr = get(f.p, f.n, 3), mid = get(f.p, f.n, 2);
            /* Stack 1's frame 0, return address FX_MAIN_BASE+0x1234: the call
             * site, one byte before, in mapping 2 (second main segment). */
            if (addr == FX_MAIN_BASE + 0x1233)
                cr_assert_eq(mid, 2);
            cr_assert_neq(addr, FX_MAIN_BASE + 0x1234, "return address written as is");
            if (addr == 0xfff) /* 0x1000: in no module */
                cr_assert_eq(mid, 0);
            break;
        }
        case 9: time_ns = f.v; break;
        case 10: duration = f.v; break;
        case 12: period = f.v; break;
        case 13:
            ncomments++;
            if (!strcmp(S(&pr, f.v), "trigger: exit"))
                saw_comment_trigger = true;
            break;
        case 14: cr_assert_str_eq(S(&pr, f.v), "inuse_space"); break;
        }
    }
    cr_assert_eq(ntypes, 4);
    cr_assert_str_eq(types[0], "alloc_objects");
    cr_assert_str_eq(types[1], "alloc_space");
    cr_assert_str_eq(types[2], "inuse_objects");
    cr_assert_str_eq(types[3], "inuse_space");
    cr_assert_eq(nmap, 4); /* 2 + 1 + 1 segments */
    /* Distinct recorded addresses in the fixture's stacks: 1234, 2abc,
     * 1100, 3000, vdso 1800, 2000(main), 4000, 2100, 0x1000, 0x2000. */
    cr_assert_eq(nloc, 10);
    /* 7 stacks; stack 3 (mmap) split in mapped + madv_free + madv_dontneed. */
    cr_assert_eq(nsamples, 9);
    cr_assert_eq(madv_free, 524288);
    cr_assert_eq(resident, 262144);
    cr_assert_eq(madv_dontneed, 524288);
    cr_assert_eq(mmap_inuse, 2097152 - 524288 - 524288);
    cr_assert_eq(heap_inuse, 4198404); /* = the heap total of the snapshot */
    /* In-use bytes over all samples = the JSON stacks' sum. */
    cr_assert_eq(sum[3], 4198404ull + 2097152 + 1048576);
    cr_assert_eq(sum[1], 8393220ull + 2097152 + 2097152);
    cr_assert_eq(time_ns, FX_TIME_NS);
    cr_assert_eq(duration, 12500000000ull);
    cr_assert_eq(period, 1);
    cr_assert(saw_comment_trigger);
    cr_assert_geq(ncomments, 3);
    unload(&pr);
}
