/*
 * fixture.c - snapshot writer for tests (see fixture.h). Writes the format
 * the way docs/FORMAT.md describes it, independently of tools/reader.c.
 */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct fx_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            abort();
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void pad(struct fx_buf *b)
{
    static const uint8_t zero[8];
    put(b, zero, LW_REC_PAD(b->len) - b->len);
}

void fx_init(struct fx_buf *b, uint16_t major, uint16_t minor)
{
    struct lw_snap_header h;
    memset(b, 0, sizeof *b);
    memset(&h, 0, sizeof h);
    memcpy(h.magic, LW_SNAP_MAGIC, LW_SNAP_MAGIC_LEN);
    h.major = major;
    h.minor = minor;
    h.header_size = sizeof h;
    put(b, &h, sizeof h);
}

void fx_record(struct fx_buf *b, uint32_t tag, const void *payload, uint32_t len)
{
    struct lw_rec_hdr h = {tag, len};
    put(b, &h, sizeof h);
    put(b, payload, len);
    pad(b);
    b->records++;
}

/* Build a payload from pieces. */
struct pieces {
    uint8_t *p;
    size_t n;
};

static void add(struct pieces *ps, const void *p, size_t n)
{
    ps->p = realloc(ps->p, ps->n + n + 1);
    if (!ps->p)
        abort();
    if (n)
        memcpy(ps->p + ps->n, p, n);
    ps->n += n;
}

void fx_process(struct fx_buf *b, struct lw_rec_process p, const char *exe, const char *cmdline,
                size_t cmdline_len)
{
    struct pieces ps = {0};
    p.exe_len = (uint32_t)strlen(exe);
    p.cmdline_len = (uint32_t)cmdline_len;
    add(&ps, &p, sizeof p);
    add(&ps, exe, p.exe_len);
    add(&ps, cmdline, cmdline_len);
    fx_record(b, LW_REC_PROCESS, ps.p, (uint32_t)ps.n);
    free(ps.p);
}

void fx_totals(struct fx_buf *b, const struct lw_rec_totals *t)
{
    fx_record(b, LW_REC_TOTALS, t, sizeof *t);
}

void fx_module(struct fx_buf *b, uint64_t base, uint32_t flags, const struct lw_rec_segment *segs,
               uint32_t nsegs, const char *path, const uint8_t *build_id, uint32_t build_id_len)
{
    struct pieces ps = {0};
    struct lw_rec_module m = {base, nsegs, (uint32_t)strlen(path), build_id_len, flags};
    add(&ps, &m, sizeof m);
    add(&ps, segs, nsegs * sizeof *segs);
    add(&ps, path, m.path_len);
    add(&ps, build_id, build_id_len);
    fx_record(b, LW_REC_MODULE, ps.p, (uint32_t)ps.n);
    free(ps.p);
}

void fx_stack(struct fx_buf *b, uint32_t id, uint8_t kind, uint8_t flags, uint64_t alloc_bytes,
              uint64_t alloc_objects, uint64_t free_bytes, uint64_t free_objects,
              const uint64_t *frames, uint16_t nframes)
{
    struct pieces ps = {0};
    struct lw_rec_stack s = {id,         kind,          flags,     nframes,
                             alloc_bytes, alloc_objects, free_bytes, free_objects};
    add(&ps, &s, sizeof s);
    add(&ps, frames, nframes * sizeof *frames);
    fx_record(b, LW_REC_STACK, ps.p, (uint32_t)ps.n);
    free(ps.p);
}

void fx_region(struct fx_buf *b, const struct lw_rec_region *r)
{
    fx_record(b, LW_REC_REGION, r, sizeof *r);
}

void fx_thread(struct fx_buf *b, const struct lw_rec_thread *t)
{
    fx_record(b, LW_REC_THREAD, t, sizeof *t);
}

void fx_age(struct fx_buf *b, uint32_t stack, const struct lw_age_bucket *buckets,
            uint32_t nbuckets)
{
    struct pieces ps = {0};
    struct lw_rec_age a = {stack, nbuckets, 0};
    add(&ps, &a, sizeof a);
    add(&ps, buckets, nbuckets * sizeof *buckets);
    fx_record(b, LW_REC_AGE, ps.p, (uint32_t)ps.n);
    free(ps.p);
}

void fx_trigger(struct fx_buf *b, const struct lw_rec_trigger *t)
{
    fx_record(b, LW_REC_TRIGGER, t, sizeof *t);
}

void fx_end(struct fx_buf *b)
{
    struct lw_rec_end e = {b->records, b->len};
    struct lw_rec_hdr h = {LW_REC_END, sizeof e};
    put(b, &h, sizeof h);
    put(b, &e, sizeof e);
}

bool fx_write_file(const struct fx_buf *b, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(b->data, 1, b->len, f) == b->len;
    return fclose(f) == 0 && ok;
}

void fx_free(struct fx_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void standard_body(struct fx_buf *b)
{
    static const char cmdline[] = "demo\0--size\0" "10 MB\0it's";
    struct lw_rec_process p = {
        .pid = FX_PID,
        .ppid = FX_PPID,
        .time_ns = FX_TIME_NS,
        .start_time_ns = FX_TIME_NS - 12500000000ull,
        .mono_ns = 99000000000ull,
        .seq = 3,
        .trigger = LW_TRIGGER_EXIT,
        .flags = LW_PROC_ROOT,
        .max_depth = 64,
        .page_size = 4096,
    };
    fx_init(b, LW_SNAP_MAJOR, LW_SNAP_MINOR);
    fx_process(b, p, "/usr/bin/demo", cmdline, sizeof cmdline - 1);

    struct lw_rec_totals t;
    memset(&t, 0, sizeof t);
    /* heap stacks 1, 2, 5, 6, 7 below */
    t.heap_alloc_bytes = 8388608 + 1000 + 512 + 100 + 3000;
    t.heap_alloc_objects = 8 + 10 + 2 + 1 + 3;
    t.heap_free_bytes = 4194304 + 512;
    t.heap_free_objects = 4 + 2;
    t.heap_inuse_bytes = t.heap_alloc_bytes - t.heap_free_bytes;
    t.heap_inuse_objects = t.heap_alloc_objects - t.heap_free_objects;
    t.mmap = (struct lw_totals_map){.mapped_bytes = 2097152, .regions = 1,
                                    .madv_free_bytes = 524288, .madv_dontneed_bytes = 524288,
                                    .released_resident_bytes = 262144, .map_calls = 1};
    t.allocator = (struct lw_totals_map){.mapped_bytes = 1048576, .regions = 1, .map_calls = 2,
                                         .unmap_calls = 1};
    t.dropped_stacks = 2;
    t.unwind_failures = 1;
    t.metadata_bytes = 3 << 20;
    t.stack_cache_hits = 1203;
    t.stack_cache_misses = 57;
    fx_totals(b, &t);

    struct lw_rec_segment main_segs[] = {
        {FX_MAIN_BASE, 0x1000, 0, 4, 0},
        {FX_MAIN_BASE + 0x1000, 0x3000, 0x1000, 5, 0},
    };
    static const uint8_t bid[] = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x02};
    fx_module(b, FX_MAIN_BASE, LW_MOD_MAIN, main_segs, 2, "/nonexistent/demo", bid, sizeof bid);
    struct lw_rec_segment lib_segs[] = {{FX_LIB_BASE + 0x2000, 0x10000, 0x2000, 5, 0}};
    fx_module(b, FX_LIB_BASE, 0, lib_segs, 1, "/nonexistent/lib/libfake.so.1", NULL, 0);
    struct lw_rec_segment vdso_segs[] = {{0x7fff00001000, 0x2000, 0, 5, 0}};
    fx_module(b, 0x7fff00001000, LW_MOD_VDSO, vdso_segs, 1, "linux-vdso.so.1", NULL, 0);

    uint64_t f1[] = {FX_MAIN_BASE + 0x1234, FX_LIB_BASE + 0x2abc, FX_MAIN_BASE + 0x1100};
    fx_stack(b, 1, LW_KIND_HEAP, 0, 8388608, 8, 4194304, 4, f1, 3);
    uint64_t f2[] = {FX_LIB_BASE + 0x3000, 0x7fff00001800};
    fx_stack(b, 2, LW_KIND_HEAP, 0, 1000, 10, 0, 0, f2, 2);
    uint64_t f3[] = {FX_MAIN_BASE + 0x2000};
    fx_stack(b, 3, LW_KIND_MMAP, 0, 2097152, 1, 0, 0, f3, 1);
    uint64_t f4[] = {FX_LIB_BASE + 0x4000, FX_MAIN_BASE + 0x2100};
    fx_stack(b, 4, LW_KIND_ALLOCATOR, 0, 2097152, 2, 1048576, 1, f4, 2);
    fx_stack(b, 5, LW_KIND_HEAP, 0, 512, 2, 512, 2, f3, 1);
    fx_stack(b, 6, LW_KIND_HEAP, 0, 100, 1, 0, 0, NULL, 0);
    uint64_t f7[] = {0x1000, 0x2000};
    fx_stack(b, 7, LW_KIND_HEAP, LW_STACK_TRUNCATED, 3000, 3, 0, 0, f7, 2);

    struct lw_rec_region r1 = {0x7f0000000000, 1048576, 0, 3, 1, LW_KIND_MMAP, LW_STATE_MAPPED,
                               LW_REGION_ANON, 3};
    struct lw_rec_region r2 = {0x7f0000100000, 524288, 262144, 3, 1, LW_KIND_MMAP,
                               LW_STATE_MADV_FREE, LW_REGION_ANON, 3};
    struct lw_rec_region r3 = {0x7f0000180000, 524288, 0, 3, 1, LW_KIND_MMAP,
                               LW_STATE_MADV_DONTNEED, LW_REGION_ANON, 3};
    struct lw_rec_region r4 = {0x7f0000200000, 1048576, 0, 4, 2, LW_KIND_ALLOCATOR,
                               LW_STATE_MAPPED, LW_REGION_ANON, 3};
    fx_region(b, &r1);
    fx_region(b, &r2);
    fx_region(b, &r3);
    fx_region(b, &r4);
}

void fx_standard(struct fx_buf *b)
{
    standard_body(b);
    fx_end(b);
}

static void page_cache(struct fx_buf *b, struct lw_rec_page_cache r, const char *path)
{
    struct pieces ps = {0};
    r.path_len = (uint32_t)strlen(path);
    add(&ps, &r, sizeof r);
    add(&ps, path, r.path_len);
    fx_record(b, LW_REC_PAGE_CACHE, ps.p, (uint32_t)ps.n);
    free(ps.p);
}

void fx_kernel(struct fx_buf *b)
{
    const uint64_t MiB = 1u << 20;
    struct lw_rec_kernel_proc k = {
        .rss_bytes = 10 * MiB, .anon_bytes = 8 * MiB, .file_bytes = 2 * MiB, .shmem_bytes = 0,
        .lazyfree_bytes = 262144, .anon_huge_bytes = LW_VALUE_NA, .swap_bytes = 0,
        .hwm_bytes = 12 * MiB,
    };
    fx_record(b, LW_REC_KERNEL_PROC, &k, sizeof k);
    static const char cg_path[] = "/sys/fs/cgroup/memory/docker/abc";
    struct lw_rec_kernel_cgroup c = {
        .version = 1, .flags = LW_CGROUP_UNLIMITED, .usage_bytes = 300 * MiB,
        .limit_bytes = LW_VALUE_NA, .anon_bytes = 8 * MiB, .file_bytes = 280 * MiB,
        .active_file_bytes = 24 * MiB, .inactive_file_bytes = 270 * MiB, .shmem_bytes = 0,
        .dirty_bytes = 256 * MiB, .limit_events = 0, .oom_events = LW_VALUE_NA,
        .oom_kill_events = 0, .path_len = sizeof cg_path - 1,
    };
    struct pieces ps = {0};
    add(&ps, &c, sizeof c);
    add(&ps, cg_path, c.path_len);
    fx_record(b, LW_REC_KERNEL_CGROUP, ps.p, (uint32_t)ps.n);
    free(ps.p);
    page_cache(b, (struct lw_rec_page_cache){256 * MiB, 200 * MiB, 0, 256 * MiB, LW_PC_OPEN, 0},
               "/var/log/app/metrics.log");
    page_cache(b, (struct lw_rec_page_cache){10 * MiB, LW_VALUE_NA, LW_VALUE_NA, 10 * MiB,
                                             LW_PC_SEEN | LW_PC_MINCORE, 0},
               "/var/log/app/metrics.log.1");
    page_cache(b, (struct lw_rec_page_cache){1835008, 0, 0, 1922624, LW_PC_MAPPED, 0},
               "/usr/lib/x86_64-linux-gnu/libc.so.6");
    struct lw_rec_alloc_stats a = {
        .allocator = LW_ALLOCATOR_GLIBC, .in_use_bytes = 4200000, .free_bytes = 100000,
        .arena_bytes = 5 * MiB, .mmap_bytes = 0, .resident_bytes = LW_VALUE_NA,
        .retained_bytes = LW_VALUE_NA, .releasable_bytes = 65536,
    };
    fx_record(b, LW_REC_ALLOC_STATS, &a, sizeof a);
}

void fx_standard_kernel(struct fx_buf *b)
{
    standard_body(b);
    fx_kernel(b);
    fx_end(b);
}

void fx_minimal(struct fx_buf *b, uint32_t pid, uint32_t ppid, uint32_t seq, uint32_t flags,
                uint64_t start_time_ns, const char *exe)
{
    struct lw_rec_process p = {
        .pid = pid,
        .ppid = ppid,
        .time_ns = start_time_ns + 1000000ull * (seq + 1),
        .start_time_ns = start_time_ns,
        .seq = seq,
        .trigger = LW_TRIGGER_SIGNAL,
        .flags = flags,
        .max_depth = 64,
        .page_size = 4096,
    };
    struct lw_rec_totals t;
    memset(&t, 0, sizeof t);
    t.heap_alloc_bytes = t.heap_inuse_bytes = 100u * (seq + 1);
    t.heap_alloc_objects = t.heap_inuse_objects = 1;
    fx_init(b, LW_SNAP_MAJOR, LW_SNAP_MINOR);
    fx_process(b, p, exe, exe, strlen(exe) + 1);
    fx_totals(b, &t);
    uint64_t fr[] = {0x401000};
    fx_stack(b, 1, LW_KIND_HEAP, 0, 100u * (seq + 1), 1, 0, 0, fr, 1);
    fx_end(b);
}
