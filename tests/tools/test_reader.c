/*
 * test_reader.c - tools/reader.c: a fixture written from lw_format.h reads
 * back field by field; every truncation, corrupt lengths, bad magic, newer
 * versions, duplicate ids and dangling references are refused with one
 * message naming the file; unknown tags are skipped; random corruption
 * never crashes the parser.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "reader.h"
#include "testutil.h"

static char err[LW_READER_ERRLEN];

static struct lw_snapshot *parse(const struct fx_buf *b)
{
    return lw_reader_parse(b->data, b->len, "t.lwsnap", err);
}

/* Offset of the n-th record header (0-based) in a fixture. */
static size_t record_offset(const struct fx_buf *b, unsigned n)
{
    size_t off = sizeof(struct lw_snap_header);
    for (unsigned i = 0; i < n; i++) {
        struct lw_rec_hdr h;
        memcpy(&h, b->data + off, sizeof h);
        off += sizeof h + LW_REC_PAD(h.len);
    }
    return off;
}

static void set_len(struct fx_buf *b, size_t rec_off, uint32_t len)
{
    memcpy(b->data + rec_off + 4, &len, 4);
}

Test(reader, round_trip_field_by_field)
{
    struct fx_buf b;
    fx_standard(&b);
    struct lw_snapshot *s = parse(&b);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(s->major, 1);
    cr_assert_eq(s->minor, LW_SNAP_MINOR);
    cr_assert_eq(s->proc.pid, 4242);
    cr_assert_eq(s->proc.ppid, 4200);
    cr_assert_eq(s->proc.time_ns, FX_TIME_NS);
    cr_assert_eq(s->proc.start_time_ns, FX_TIME_NS - 12500000000ull);
    cr_assert_eq(s->proc.mono_ns, 99000000000ull);
    cr_assert_eq(s->proc.seq, 3);
    cr_assert_eq(s->proc.trigger, LW_TRIGGER_EXIT);
    cr_assert_eq(s->proc.flags, LW_PROC_ROOT);
    cr_assert_eq(s->proc.max_depth, 64);
    cr_assert_eq(s->proc.page_size, 4096);
    cr_assert_str_eq(s->exe, "/usr/bin/demo");
    cr_assert_eq(s->argc, 4);
    cr_assert_str_eq(s->argv[0], "demo");
    cr_assert_str_eq(s->argv[1], "--size");
    cr_assert_str_eq(s->argv[2], "10 MB");
    cr_assert_str_eq(s->argv[3], "it's");

    cr_assert_eq(s->totals.heap_alloc_bytes, 8388608 + 1000 + 512 + 100 + 3000);
    cr_assert_eq(s->totals.heap_free_objects, 6);
    cr_assert_eq(s->totals.mmap.mapped_bytes, 2097152);
    cr_assert_eq(s->totals.mmap.released_resident_bytes, 262144);
    cr_assert_eq(s->totals.allocator.unmap_calls, 1);
    cr_assert_eq(s->totals.dropped_stacks, 2);
    cr_assert_eq(s->totals.metadata_bytes, 3u << 20);
    cr_assert_eq(s->totals.stack_cache_hits, 1203);
    cr_assert_eq(s->totals.stack_cache_misses, 57);

    cr_assert_eq(s->nmodules, 3);
    cr_assert_str_eq(s->modules[0].path, "/nonexistent/demo");
    cr_assert_eq(s->modules[0].base, FX_MAIN_BASE);
    cr_assert_eq(s->modules[0].flags, LW_MOD_MAIN);
    cr_assert_eq(s->modules[0].nsegs, 2);
    cr_assert_eq(s->modules[0].segs[1].start, FX_MAIN_BASE + 0x1000);
    cr_assert_eq(s->modules[0].segs[1].size, 0x3000);
    cr_assert_eq(s->modules[0].segs[1].file_offset, 0x1000);
    cr_assert_eq(s->modules[0].segs[1].flags, 5);
    cr_assert_eq(s->modules[0].build_id_len, 6);
    cr_assert_eq(s->modules[0].build_id[0], 0xde);
    cr_assert_eq(s->modules[0].build_id[5], 0x02);
    cr_assert_str_eq(s->modules[1].path, "/nonexistent/lib/libfake.so.1");
    cr_assert_eq(s->modules[1].build_id_len, 0);
    cr_assert_eq(s->modules[2].flags, LW_MOD_VDSO);

    cr_assert_eq(s->nstacks, 7);
    const struct lw_snap_stack *st = &s->stacks[0];
    cr_assert_eq(st->id, 1);
    cr_assert_eq(st->kind, LW_KIND_HEAP);
    cr_assert_eq(st->alloc_bytes, 8388608);
    cr_assert_eq(st->alloc_objects, 8);
    cr_assert_eq(st->free_bytes, 4194304);
    cr_assert_eq(st->free_objects, 4);
    cr_assert_eq(st->nframes, 3);
    cr_assert_eq(st->frames[0], FX_MAIN_BASE + 0x1234);
    cr_assert_eq(st->frames[2], FX_MAIN_BASE + 0x1100);
    cr_assert_eq(s->stacks[5].nframes, 0);
    cr_assert_eq(s->stacks[6].flags, LW_STACK_TRUNCATED);
    cr_assert_eq(lw_reader_find_stack(s, 4)->kind, LW_KIND_ALLOCATOR);
    cr_assert_null(lw_reader_find_stack(s, 99));

    cr_assert_eq(s->nregions, 4);
    cr_assert_eq(s->regions[1].state, LW_STATE_MADV_FREE);
    cr_assert_eq(s->regions[1].resident_bytes, 262144);
    cr_assert_eq(s->regions[3].stack, 4);
    cr_assert_eq(s->regions[3].kind, LW_KIND_ALLOCATOR);
    cr_assert_eq(s->unknown_records, 0);
    lw_reader_free(s);
    fx_free(&b);
}

Test(reader, every_truncation_is_refused)
{
    struct fx_buf b;
    fx_standard(&b);
    for (size_t n = 0; n < b.len; n++) {
        struct lw_snapshot *s = lw_reader_parse(b.data, n, "t.lwsnap", err);
        cr_assert_null(s, "a file cut at %zu of %zu bytes was accepted", n, b.len);
        cr_assert(strncmp(err, "t.lwsnap: ", 10) == 0, "message does not name the file: %s", err);
        cr_assert(strstr(err, "truncated"), "cut at %zu: message does not say truncated: %s", n,
                  err);
        cr_assert_null(strchr(err, '\n'), "message is not one line: %s", err);
    }
    fx_free(&b);
}

Test(reader, truncated_file_on_disk)
{
    struct fx_buf b;
    fx_standard(&b);
    char *dir = lwt_tmpdir(), *path = lwt_path(dir, "cut.lwsnap");
    b.len -= 24; /* drop the END record */
    cr_assert(fx_write_file(&b, path));
    cr_assert_null(lw_reader_load(path, err));
    cr_assert(strstr(err, path) == err, "%s", err);
    cr_assert(strstr(err, "truncated: no END record"), "%s", err);
    lwt_rmrf(dir);
    free(path);
    free(dir);
    fx_free(&b);
}

Test(reader, missing_file_and_directory)
{
    cr_assert_null(lw_reader_load("/nonexistent/x.lwsnap", err));
    cr_assert_str_eq(err, "/nonexistent/x.lwsnap: No such file or directory");
    cr_assert_null(lw_reader_load("/tmp", err));
    cr_assert_str_eq(err, "/tmp: is a directory");
}

Test(reader, bad_magic)
{
    struct fx_buf b;
    fx_standard(&b);
    b.data[6] = '\n'; /* "LWSNAP\n\n": a text-mode conversion */
    cr_assert_null(parse(&b));
    cr_assert_str_eq(err, "t.lwsnap: not a leakwatch snapshot (bad magic)");
    static const char text[] = "hello world, not a snapshot at all";
    cr_assert_null(lw_reader_parse(text, sizeof text, "x", err));
    cr_assert_str_eq(err, "x: not a leakwatch snapshot (bad magic)");
    fx_free(&b);
}

Test(reader, newer_major_refused_with_message)
{
    struct fx_buf b;
    fx_standard(&b);
    uint16_t major = 2;
    memcpy(b.data + 8, &major, 2);
    cr_assert_null(parse(&b));
    cr_assert_str_eq(err, "t.lwsnap: snapshot format 2.x is newer than this leakwatch "
                          "understands (1.x); upgrade leakwatch");
    /* Even a newer-major file whose body we cannot read gets this message. */
    cr_assert_null(lw_reader_parse(b.data, 12, "t.lwsnap", err));
    cr_assert(strstr(err, "format 2.x is newer"), "%s", err);
    major = 0;
    memcpy(b.data + 8, &major, 2);
    cr_assert_null(parse(&b));
    cr_assert(strstr(err, "format 0.") && strstr(err, "is not supported"), "%s", err);
    fx_free(&b);
}

Test(reader, unknown_tag_is_skipped)
{
    struct fx_buf b;
    struct lw_rec_process p = {.pid = 7, .seq = 1};
    struct lw_rec_totals t = {.heap_inuse_bytes = 42};
    fx_init(&b, 1, 0);
    fx_process(&b, p, "/bin/x", "", 0);
    fx_record(&b, 0x99, "future data", 11); /* a tag from a newer minor version */
    fx_totals(&b, &t);
    uint64_t fr[] = {1, 2};
    fx_stack(&b, 5, LW_KIND_HEAP, 0, 10, 1, 0, 0, fr, 2);
    fx_record(&b, 0x1234567, NULL, 0);
    fx_end(&b);
    struct lw_snapshot *s = parse(&b);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(s->unknown_records, 2);
    cr_assert_eq(s->proc.pid, 7);
    cr_assert_eq(s->argc, 0);
    cr_assert_eq(s->totals.heap_inuse_bytes, 42);
    cr_assert_eq(s->nstacks, 1);
    cr_assert_eq(s->stacks[0].frames[1], 2);
    lw_reader_free(s);
    fx_free(&b);
}

Test(reader, newer_minor_may_extend_records)
{
    /* A newer minor appends 8 bytes to TOTALS: accepted, extra bytes
     * ignored. The same file claiming the current minor is corrupt. */
    uint8_t payload[sizeof(struct lw_rec_totals) + 8];
    memset(payload, 0, sizeof payload);
    struct lw_rec_totals t = {.heap_inuse_bytes = 5};
    memcpy(payload, &t, sizeof t);
    for (uint16_t minor = LW_SNAP_MINOR; minor <= LW_SNAP_MINOR + 1; minor++) {
        struct fx_buf b;
        struct lw_rec_process p = {.pid = 1};
        fx_init(&b, 1, minor);
        fx_process(&b, p, "", "", 0);
        fx_record(&b, LW_REC_TOTALS, payload, sizeof payload);
        fx_end(&b);
        struct lw_snapshot *s = parse(&b);
        if (minor == LW_SNAP_MINOR) {
            cr_assert_null(s);
            cr_assert_str_eq(err, "t.lwsnap: corrupt TOTALS record at offset 128: payload is "
                                  "280 bytes, expected 272");
        } else {
            cr_assert_not_null(s, "%s", err);
            cr_assert_eq(s->totals.heap_inuse_bytes, 5);
            lw_reader_free(s);
        }
        fx_free(&b);
    }
}

Test(reader, corrupt_lengths_of_every_record)
{
    struct fx_buf b;
    fx_standard(&b);
    size_t nrec = (size_t)b.records + 1;
    for (unsigned r = 0; r < nrec; r++) {
        size_t off = record_offset(&b, r);
        uint32_t len;
        memcpy(&len, b.data + off + 4, 4);
        uint32_t bad[] = {0, len - 1, len + 1, len + 8, len + 4096, 0xffffffffu, len / 2};
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            set_len(&b, off, bad[k]);
            struct lw_snapshot *s = parse(&b);
            cr_assert_null(s, "record %u with length %u (real %u) was accepted", r, bad[k], len);
            cr_assert(strncmp(err, "t.lwsnap: ", 10) == 0, "%s", err);
        }
        set_len(&b, off, len);
    }
    struct lw_snapshot *s = parse(&b);
    cr_assert_not_null(s, "restored file refused: %s", err);
    lw_reader_free(s);
    fx_free(&b);
}

Test(reader, nframes_must_match_length)
{
    struct fx_buf b;
    fx_standard(&b);
    size_t off = record_offset(&b, 5); /* PROCESS, TOTALS, 3 MODULEs, then stack 1 */
    uint16_t nframes;
    memcpy(&nframes, b.data + off + 8 + 6, 2);
    cr_assert_eq(nframes, 3);
    nframes = 4;
    memcpy(b.data + off + 8 + 6, &nframes, 2);
    cr_assert_null(parse(&b));
    cr_assert(strstr(err, "corrupt STACK record at offset"), "%s", err);
    cr_assert(strstr(err, "payload is 64 bytes, expected 72"), "%s", err);
    fx_free(&b);
}

Test(reader, string_lengths_checked)
{
    struct fx_buf b;
    fx_standard(&b);
    size_t off = record_offset(&b, 0) + 8;
    uint32_t huge = 0xfffffff0u; /* exe_len: would overflow 32-bit sums */
    memcpy(b.data + off + offsetof(struct lw_rec_process, exe_len), &huge, 4);
    cr_assert_null(parse(&b));
    cr_assert(strstr(err, "corrupt PROCESS record"), "%s", err);
    fx_free(&b);

    fx_standard(&b);
    off = record_offset(&b, 3) + 8; /* the second MODULE */
    uint32_t plen = 200;
    memcpy(b.data + off + offsetof(struct lw_rec_module, path_len), &plen, 4);
    cr_assert_null(parse(&b));
    cr_assert(strstr(err, "corrupt MODULE record"), "%s", err);
    fx_free(&b);
}

/* Build a snapshot with a problem; expect this message tail. */
static void expect_refused(struct fx_buf *b, const char *want)
{
    struct lw_snapshot *s = parse(b);
    cr_assert_null(s, "accepted, expected: %s", want);
    cr_assert(strstr(err, want), "got \"%s\", expected \"%s\"", err, want);
    fx_free(b);
}

Test(reader, structural_errors)
{
    struct fx_buf b;
    struct lw_rec_process p = {.pid = 1};
    struct lw_rec_totals t = {0};
    uint64_t fr[] = {1};

    fx_init(&b, 1, 0);
    fx_totals(&b, &t);
    fx_process(&b, p, "", "", 0);
    fx_end(&b);
    expect_refused(&b, "the first record (offset 32) is TOTALS, not PROCESS");

    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_end(&b);
    expect_refused(&b, "a second PROCESS record");

    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_totals(&b, &t);
    fx_end(&b);
    expect_refused(&b, "a second TOTALS record");

    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_end(&b);
    expect_refused(&b, "no TOTALS record");

    fx_init(&b, 1, 0);
    fx_end(&b);
    expect_refused(&b, "the first record (offset 32) is END, not PROCESS");

    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_stack(&b, 3, LW_KIND_HEAP, 0, 1, 1, 0, 0, fr, 1);
    fx_stack(&b, 3, LW_KIND_HEAP, 0, 1, 1, 0, 0, fr, 1);
    fx_end(&b);
    expect_refused(&b, "stack id 3 appears twice");

    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_stack(&b, 0, LW_KIND_HEAP, 0, 1, 1, 0, 0, fr, 1);
    fx_end(&b);
    expect_refused(&b, "stack id 0");

    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_stack(&b, 1, 9, 0, 1, 1, 0, 0, fr, 1);
    fx_end(&b);
    expect_refused(&b, "unknown kind 9");

    struct lw_rec_region r = {0x1000, 4096, 0, 8, 1, LW_KIND_MMAP, LW_STATE_MAPPED, 0, 3};
    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_stack(&b, 1, LW_KIND_MMAP, 0, 4096, 1, 0, 0, fr, 1);
    fx_region(&b, &r);
    fx_end(&b);
    expect_refused(&b, "a region at 0x1000 refers to stack 8, which is not in the file");

    r.stack = 1;
    r.state = 7;
    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_stack(&b, 1, LW_KIND_MMAP, 0, 4096, 1, 0, 0, fr, 1);
    fx_region(&b, &r);
    fx_end(&b);
    expect_refused(&b, "unknown state 7");

    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    fx_end(&b);
    fx_record(&b, LW_REC_STACK, NULL, 0);
    expect_refused(&b, "corrupt: 8 bytes of data after the END record");

    fx_init(&b, 1, 0);
    fx_process(&b, p, "", "", 0);
    fx_totals(&b, &t);
    b.records = 5; /* END claims 5 records before it */
    fx_end(&b);
    expect_refused(&b, "END record: it counts 5 records ending at offset 408, the file has 2 "
                       "ending at 408");
}

Test(reader, header_size_checked)
{
    struct fx_buf b;
    fx_standard(&b);
    uint32_t hs = 36;
    memcpy(b.data + 12, &hs, 4);
    expect_refused(&b, "corrupt header: header size 36");
    fx_standard(&b);
    hs = 1u << 30;
    memcpy(b.data + 12, &hs, 4);
    uint16_t minor = LW_SNAP_MINOR + 1; /* a newer minor may have a bigger header */
    memcpy(b.data + 10, &minor, 2);
    expect_refused(&b, "truncated: the file ends inside the header");
}

Test(reader, cmdline_splitting)
{
    struct fx_buf b;
    struct lw_rec_process p = {.pid = 1};
    struct lw_rec_totals t = {0};
    fx_init(&b, 1, 0);
    fx_process(&b, p, "/x", "a\0\0b\0", 5); /* "a", "", "b" */
    fx_totals(&b, &t);
    fx_end(&b);
    struct lw_snapshot *s = parse(&b);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(s->argc, 3);
    cr_assert_str_eq(s->argv[0], "a");
    cr_assert_str_eq(s->argv[1], "");
    cr_assert_str_eq(s->argv[2], "b");
    lw_reader_free(s);
    fx_free(&b);
}

Test(reader, peek_process)
{
    struct fx_buf b;
    fx_standard(&b);
    char *dir = lwt_tmpdir(), *path = lwt_path(dir, "a.lwsnap");
    cr_assert(fx_write_file(&b, path));
    struct lw_rec_process p;
    char exe[8];
    cr_assert(lw_reader_peek_process(path, &p, exe, sizeof exe, err), "%s", err);
    cr_assert_eq(p.pid, 4242);
    cr_assert_eq(p.seq, 3);
    cr_assert_str_eq(exe, "/usr/bi"); /* cut to the buffer */
    b.len = 40;
    cr_assert(fx_write_file(&b, path));
    cr_assert_not(lw_reader_peek_process(path, &p, NULL, 0, err));
    cr_assert(strstr(err, "truncated"), "%s", err);
    lwt_rmrf(dir);
    free(path);
    free(dir);
    fx_free(&b);
}

/* Cheap fuzzing: random byte changes must give a snapshot or a message,
 * never a crash or an out-of-bounds read (run under ASan/valgrind too). */
Test(reader, random_corruption_never_crashes)
{
    struct fx_buf b;
    fx_standard(&b);
    uint8_t *copy = malloc(b.len);
    unsigned seed = 12345;
    size_t refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(copy, b.data, b.len);
        int changes = 1 + (int)(rand_r(&seed) % 4);
        for (int k = 0; k < changes; k++)
            copy[rand_r(&seed) % b.len] = (uint8_t)rand_r(&seed);
        size_t len = (iter % 7 == 0) ? rand_r(&seed) % b.len : b.len;
        struct lw_snapshot *s = lw_reader_parse(copy, len, "f", err);
        if (!s) {
            refused++;
            cr_assert(err[0] == 'f' && err[1] == ':', "%s", err);
        }
        lw_reader_free(s);
    }
    cr_assert_gt(refused, 1000);
    free(copy);
    fx_free(&b);
}

/* The format's golden file: tests/tools/golden/standard.lwsnap is the
 * standard fixture as checked in. The fixture, built from lw_format.h,
 * must still produce it byte for byte (a change to the shared header that
 * moves a field shows here), and the reader must read it to the values the
 * fixture put in. LW_UPDATE_GOLDEN=1 rewrites it, for a deliberate change
 * that also bumps the format version. */
Test(reader, golden_snapshot_file)
{
    const char *src = getenv("LW_TEST_SRCDIR");
    cr_assert_not_null(src, "LW_TEST_SRCDIR not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/standard.lwsnap", src);
    struct fx_buf b;
    fx_standard(&b);
    if (getenv("LW_UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(b.data, 1, b.len, f), b.len);
        fclose(f);
    }
    size_t len = 0;
    char *want = lwt_read(path, &len);
    cr_assert_not_null(want, "missing %s (LW_UPDATE_GOLDEN=1 creates it)", path);
    cr_assert_eq(len, b.len, "golden is %zu bytes, the fixture writes %zu", len, b.len);
    cr_assert_eq(memcmp(want, b.data, len), 0, "the format drifted from %s", path);
    struct lw_snapshot *s = lw_reader_parse((const uint8_t *)want, len, "standard.lwsnap", err);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(s->major, LW_SNAP_MAJOR);
    cr_assert_eq(s->proc.pid, 4242);
    cr_assert_eq(s->proc.ppid, 4200);
    cr_assert_eq(s->proc.time_ns, FX_TIME_NS);
    cr_assert_gt(s->nstacks, 0);
    lw_reader_free(s);
    free(want);
    fx_free(&b);
}

/* A golden file of an older minor version, and the current fixture, both
 * read; check(old, now) compares what the old version has. */
static void older_file(const char *name, uint16_t minor,
                       void (*check)(const struct lw_snapshot *old, const struct lw_snapshot *now))
{
    const char *src = getenv("LW_TEST_SRCDIR");
    cr_assert_not_null(src, "LW_TEST_SRCDIR not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/%s", src, name);
    struct lw_snapshot *s = lw_reader_load(path, err);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(s->major, 1);
    cr_assert_eq(s->minor, minor);
    struct fx_buf b;
    fx_standard(&b);
    struct lw_snapshot *now = lw_reader_parse(b.data, b.len, "fixture", err);
    cr_assert_not_null(now, "%s", err);
    cr_assert_eq(s->nstacks, now->nstacks);
    cr_assert_eq(s->totals.heap_inuse_bytes, now->totals.heap_inuse_bytes);
    cr_assert_eq(s->proc.pid, 4242);
    check(s, now);
    lw_reader_free(now);
    lw_reader_free(s);
    fx_free(&b);
}

static void nothing_more(const struct lw_snapshot *old, const struct lw_snapshot *now)
{
    (void)old;
    (void)now;
}

/* A file written by an older minor version (1.1, before the kernel, thread
 * and age records) still reads, with the same numbers. */
Test(reader, older_minor_still_reads)
{
    older_file("standard-1.1.lwsnap", 1, nothing_more);
}

static void as_1_2(const struct lw_snapshot *old, const struct lw_snapshot *now)
{
    cr_assert_eq(old->totals.stack_cache_hits, 0);
    cr_assert_eq(old->totals.stack_cache_misses, 0);
    cr_assert_eq(old->nthreads, now->nthreads);
    cr_assert_eq(old->totals.metadata_bytes, now->totals.metadata_bytes);
}

/* A 1.2 file (before the stack cache's counters in TOTALS) reads them as
 * 0 and everything else as before. */
Test(reader, minor_1_2_still_reads)
{
    older_file("standard-1.2.lwsnap", 2, as_1_2);
}

/* 1.2 records THREAD, AGE, TRIGGER and stack kind "thread": a small file
 * with each, read back field by field. */
static void fx_threads_ages(struct fx_buf *b, uint16_t minor)
{
    struct lw_rec_process p = {.pid = 9, .trigger = LW_TRIGGER_HEAP_THRESHOLD};
    struct lw_rec_totals t = {.heap_inuse_bytes = 300, .heap_inuse_objects = 3};
    fx_init(b, 1, minor);
    fx_process(b, p, "/bin/x", "", 0);
    fx_totals(b, &t);
    uint64_t fr[] = {0x401000, 0x402000};
    fx_stack(b, 1, LW_KIND_HEAP, 0, 500, 5, 200, 2, fr, 2);
    fx_stack(b, 2, LW_KIND_THREAD, 0, 3 * 8388608ull, 3, 8388608, 1, fr + 1, 1);
    struct lw_age_bucket bk[] = {{0, 100, 1}, {1000000000ull, 200, 2}};
    fx_age(b, 1, bk, 2);
    struct lw_rec_thread th1 = {2, 101, 0x7f0000000000, 8388608, 16384, 5};
    struct lw_rec_thread th2 = {2, 102, 0x7f0001000000, 8388608, UINT64_MAX, 6};
    fx_thread(b, &th1);
    fx_thread(b, &th2);
    struct lw_rec_trigger tr = {LW_TRIGGER_HEAP_THRESHOLD, LW_WATCH_HEAP, 256, 300, 0, {0, 0}};
    fx_trigger(b, &tr);
}

Test(reader, threads_ages_trigger_round_trip)
{
    struct fx_buf b;
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_end(&b);
    struct lw_snapshot *s = parse(&b);
    cr_assert_not_null(s, "%s", err);
    cr_assert_eq(s->nstacks, 2);
    cr_assert_str_eq(lw_reader_kind_name(lw_reader_find_stack(s, 2)->kind), "thread");
    cr_assert_eq(s->nthreads, 2);
    cr_assert_eq(s->threads[0].tid, 101);
    cr_assert_eq(s->threads[0].resident_bytes, 16384);
    cr_assert_eq(s->threads[1].stack_start, 0x7f0001000000);
    cr_assert_eq(s->threads[1].resident_bytes, UINT64_MAX);
    cr_assert_eq(s->threads[1].start_mono_ns, 6);
    cr_assert_eq(s->nages, 1);
    const struct lw_snap_age *a = lw_reader_find_age(s, 1);
    cr_assert_not_null(a);
    cr_assert_null(lw_reader_find_age(s, 2));
    cr_assert_eq(a->nbuckets, 2);
    cr_assert_eq(a->buckets[1].min_age_ns, 1000000000ull);
    cr_assert_eq(a->buckets[1].bytes, 200);
    cr_assert_eq(a->buckets[1].objects, 2);
    cr_assert(s->has_trigger);
    cr_assert_eq(s->trigger.source, LW_WATCH_HEAP);
    cr_assert_eq(s->trigger.threshold_bytes, 256);
    cr_assert_eq(s->trigger.observed_bytes, 300);
    cr_assert_str_eq(lw_reader_watch_name(s->trigger.source), "heap");
    cr_assert_eq(s->unknown_records, 0);
    lw_reader_free(s);
    fx_free(&b);
}

Test(reader, threads_ages_trigger_checked)
{
    struct fx_buf b;
    uint64_t fr[] = {1};
    struct lw_age_bucket bk[] = {{5, 1, 1}, {5, 1, 1}};
    struct lw_rec_thread th = {1, 7, 0, 0, 0, 0};
    struct lw_rec_trigger tr = {LW_TRIGGER_HEAP_THRESHOLD, LW_WATCH_HEAP, 1, 2, 0, {0, 0}};

    /* buckets out of order */
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_age(&b, 1, bk, 2);
    fx_end(&b);
    expect_refused(&b, "bucket 1 (min age 5 ns) does not follow bucket 0 (5 ns)");
    /* second AGE for the same stack */
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_age(&b, 1, bk, 1);
    fx_end(&b);
    expect_refused(&b, "t.lwsnap: corrupt: stack 1 has two AGE records");
    /* AGE of a thread stack, and of a missing one */
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_age(&b, 2, bk, 1);
    fx_end(&b);
    expect_refused(&b, "an AGE record refers to stack 2, which is not a heap stack");
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_age(&b, 77, bk, 1);
    fx_end(&b);
    expect_refused(&b, "an AGE record refers to stack 77, which is not in the file");
    /* nbuckets larger than the payload */
    fx_threads_ages(&b, LW_SNAP_MINOR);
    {
        uint8_t pl[sizeof(struct lw_rec_age) + sizeof bk[0]];
        struct lw_rec_age a = {1, 1000000, 0};
        memcpy(pl, &a, sizeof a);
        memcpy(pl + sizeof a, bk, sizeof bk[0]);
        fx_record(&b, LW_REC_AGE, pl, sizeof pl);
    }
    fx_end(&b);
    expect_refused(&b, "corrupt AGE record at offset");
    /* THREAD naming a heap stack; wrong THREAD length */
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_thread(&b, &th);
    fx_end(&b);
    expect_refused(&b, "corrupt: thread 7 refers to stack 1, which is not a thread stack");
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_record(&b, LW_REC_THREAD, &th, sizeof th - 8);
    fx_end(&b);
    expect_refused(&b, "corrupt THREAD record at offset");
    /* two TRIGGERs; a TRIGGER disagreeing with PROCESS; an unknown source */
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_trigger(&b, &tr);
    fx_end(&b);
    expect_refused(&b, "corrupt: a second TRIGGER record at offset");
    {
        struct lw_rec_process p = {.pid = 1, .trigger = LW_TRIGGER_SIGNAL};
        struct lw_rec_totals t = {0};
        fx_init(&b, 1, LW_SNAP_MINOR);
        fx_process(&b, p, "", "", 0);
        fx_totals(&b, &t);
        fx_trigger(&b, &tr);
        fx_end(&b);
        expect_refused(&b, "the TRIGGER record says trigger 5, the PROCESS record 2");
        struct lw_rec_trigger bad = tr;
        bad.source = 9;
        fx_init(&b, 1, LW_SNAP_MINOR);
        fx_process(&b, p, "", "", 0);
        fx_totals(&b, &t);
        fx_trigger(&b, &bad);
        fx_end(&b);
        expect_refused(&b, "corrupt TRIGGER record at offset");
    }
    /* kind "thread" is unknown to a 1.1 file */
    {
        struct lw_rec_process p = {.pid = 1};
        struct lw_rec_totals t = {0};
        fx_init(&b, 1, 1);
        fx_process(&b, p, "", "", 0);
        fx_totals(&b, &t);
        fx_stack(&b, 1, LW_KIND_THREAD, 0, 0, 0, 0, 0, fr, 1);
        fx_end(&b);
        expect_refused(&b, "corrupt STACK record at offset 408: unknown kind 4");
    }
}

Test(reader, threads_ages_random_corruption)
{
    struct fx_buf b;
    fx_threads_ages(&b, LW_SNAP_MINOR);
    fx_end(&b);
    uint8_t *copy = malloc(b.len);
    unsigned seed = 777;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(copy, b.data, b.len);
        for (int k = 0; k < 3; k++)
            copy[rand_r(&seed) % b.len] = (uint8_t)rand_r(&seed);
        struct lw_snapshot *s = lw_reader_parse(copy, b.len, "f", err);
        if (s) /* whatever was accepted is consistent */
            for (size_t i = 0; i < s->nthreads; i++)
                cr_assert_eq(lw_reader_find_stack(s, s->threads[i].stack)->kind, LW_KIND_THREAD);
        lw_reader_free(s);
    }
    free(copy);
    fx_free(&b);
}

/* ---- 1.2 kernel records (KERNEL_PROC, KERNEL_CGROUP, PAGE_CACHE, ALLOC_STATS) ---- */

Test(reader, kernel_records_round_trip)
{
    struct fx_buf b;
    fx_standard_kernel(&b);
    struct lw_snapshot *s = parse(&b);
    cr_assert_not_null(s, "%s", err);
    cr_assert(s->has_kproc);
    cr_assert_eq(s->kproc.rss_bytes, 10u << 20);
    cr_assert_eq(s->kproc.lazyfree_bytes, 262144);
    cr_assert_eq(s->kproc.anon_huge_bytes, LW_VALUE_NA);
    cr_assert(s->has_cgroup);
    cr_assert_eq(s->cgroup.version, 1);
    cr_assert_eq(s->cgroup.flags, LW_CGROUP_UNLIMITED);
    cr_assert_eq(s->cgroup.inactive_file_bytes, 270u << 20);
    cr_assert_str_eq(s->cgroup_path, "/sys/fs/cgroup/memory/docker/abc");
    cr_assert_eq(s->npage_cache, 3);
    cr_assert_str_eq(s->page_cache[0].path, "/var/log/app/metrics.log");
    cr_assert_eq(s->page_cache[0].rec.cached_bytes, 256u << 20);
    cr_assert_eq(s->page_cache[1].rec.dirty_bytes, LW_VALUE_NA);
    cr_assert_eq(s->page_cache[1].rec.flags, LW_PC_SEEN | LW_PC_MINCORE);
    cr_assert_str_eq(s->page_cache[2].path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
    cr_assert(s->has_alloc_stats);
    cr_assert_eq(s->alloc_stats.allocator, LW_ALLOCATOR_GLIBC);
    cr_assert_eq(s->alloc_stats.releasable_bytes, 65536);
    cr_assert_eq(s->unknown_records, 0);
    lw_reader_free(s);
    /* without them (the standard fixture): absent, not zero */
    fx_free(&b);
    fx_standard(&b);
    s = parse(&b);
    cr_assert_not_null(s, "%s", err);
    cr_assert_not(s->has_kproc || s->has_cgroup || s->has_alloc_stats);
    cr_assert_eq(s->npage_cache, 0);
    lw_reader_free(s);
    fx_free(&b);
}

/* Index of the first record with this tag. */
static unsigned record_with_tag(const struct fx_buf *b, uint32_t tag)
{
    for (unsigned i = 0;; i++) {
        struct lw_rec_hdr h;
        memcpy(&h, b->data + record_offset(b, i), sizeof h);
        if (h.tag == tag)
            return i;
        cr_assert_neq(h.tag, LW_REC_END, "no record with tag %u", tag);
    }
}

Test(reader, kernel_records_corrupt_lengths)
{
    static const uint32_t tags[] = {LW_REC_KERNEL_PROC, LW_REC_KERNEL_CGROUP, LW_REC_PAGE_CACHE,
                                    LW_REC_ALLOC_STATS};
    static const char *const names[] = {"KERNEL_PROC", "KERNEL_CGROUP", "PAGE_CACHE",
                                        "ALLOC_STATS"};
    for (size_t t = 0; t < 4; t++) {
        struct fx_buf b;
        fx_standard_kernel(&b);
        size_t off = record_offset(&b, record_with_tag(&b, tags[t]));
        uint32_t len;
        memcpy(&len, b.data + off + 4, 4);
        uint32_t bad[] = {0, len - 1, len + 1, len + 8};
        for (size_t k = 0; k < 4; k++) {
            set_len(&b, off, bad[k]);
            struct lw_snapshot *s = parse(&b);
            cr_assert_null(s, "%s with length %u accepted", names[t], bad[k]);
            /* a length that stays inside the file names the record */
            if (bad[k] < len)
                cr_assert(strstr(err, names[t]) || strstr(err, "truncated"), "%s", err);
        }
        set_len(&b, off, len);
        /* a string length that does not match the payload */
        if (tags[t] == LW_REC_KERNEL_CGROUP || tags[t] == LW_REC_PAGE_CACHE) {
            size_t at = off + 8 + (tags[t] == LW_REC_KERNEL_CGROUP
                                       ? offsetof(struct lw_rec_kernel_cgroup, path_len)
                                       : offsetof(struct lw_rec_page_cache, path_len));
            uint32_t pl;
            memcpy(&pl, b.data + at, 4);
            uint32_t wrong = pl + 1;
            memcpy(b.data + at, &wrong, 4);
            cr_assert_null(parse(&b));
            cr_assert(strstr(err, names[t]), "%s", err);
            memcpy(b.data + at, &pl, 4);
        }
        struct lw_snapshot *s = parse(&b);
        cr_assert_not_null(s, "%s", err);
        lw_reader_free(s);
        fx_free(&b);
    }
}

Test(reader, kernel_records_bad_values_and_duplicates)
{
    struct fx_buf b;
    fx_standard_kernel(&b);
    size_t off = record_offset(&b, record_with_tag(&b, LW_REC_KERNEL_CGROUP));
    uint32_t v = 3;
    memcpy(b.data + off + 8, &v, 4);
    cr_assert_null(parse(&b));
    cr_assert_str_eq(err, "t.lwsnap: corrupt KERNEL_CGROUP record at offset 1448: cgroup version 3");
    fx_free(&b);

    fx_standard_kernel(&b);
    off = record_offset(&b, record_with_tag(&b, LW_REC_ALLOC_STATS));
    v = 9;
    memcpy(b.data + off + 8, &v, 4);
    cr_assert_null(parse(&b));
    cr_assert(strstr(err, "corrupt ALLOC_STATS record") && strstr(err, "unknown allocator 9"), "%s",
              err);
    fx_free(&b);

    /* a second KERNEL_PROC */
    struct lw_rec_kernel_proc k;
    memset(&k, 0, sizeof k);
    fx_standard(&b);
    b.len -= sizeof(struct lw_rec_hdr) + sizeof(struct lw_rec_end); /* reopen before END */
    fx_record(&b, LW_REC_KERNEL_PROC, &k, sizeof k);
    fx_record(&b, LW_REC_KERNEL_PROC, &k, sizeof k);
    fx_end(&b);
    cr_assert_null(parse(&b));
    cr_assert(strstr(err, "a second KERNEL_PROC record"), "%s", err);
    fx_free(&b);
}

Test(reader, random_corruption_of_kernel_records_never_crashes)
{
    struct fx_buf b;
    fx_standard_kernel(&b);
    /* corrupt only the kernel records, where their strings and counts are */
    size_t from = record_offset(&b, record_with_tag(&b, LW_REC_KERNEL_PROC));
    size_t to = b.len - sizeof(struct lw_rec_hdr) - sizeof(struct lw_rec_end);
    uint8_t *copy = malloc(b.len);
    unsigned seed = 4242;
    size_t refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(copy, b.data, b.len);
        int changes = 1 + (int)(rand_r(&seed) % 4);
        for (int k = 0; k < changes; k++)
            copy[from + rand_r(&seed) % (to - from)] = (uint8_t)rand_r(&seed);
        struct lw_snapshot *s = lw_reader_parse(copy, b.len, "f", err);
        if (!s) {
            refused++;
            cr_assert(err[0] == 'f' && err[1] == ':', "%s", err);
        } else {
            /* accepted: every string ends within the length its record gave */
            for (size_t i = 0; i < s->npage_cache; i++)
                cr_assert_leq(strlen(s->page_cache[i].path), s->page_cache[i].rec.path_len);
            if (s->has_cgroup)
                cr_assert_leq(strlen(s->cgroup_path), s->cgroup.path_len);
        }
        lw_reader_free(s);
    }
    cr_assert_gt(refused, 1000);
    free(copy);
    fx_free(&b);
}
