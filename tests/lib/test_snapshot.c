/* The writer: a snapshot read back record by record; names and sequence;
 * a failing disk, a missing directory, a name collision; the format's
 * layout pinned field by field. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../include/lw_format.h"
#include "lw.h"
#include "region.h"
#include "snapshot.h"
#include "stack.h"
#include "state.h"
#include "sys.h"
#include "track.h"

static char dir[64];

static void init(void)
{
    strcpy(dir, "/tmp/lwtest-snap-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    static char opt[128];
    snprintf(opt, sizeof opt, "LEAKWATCH_OUTPUT=%s", dir);
    char *env[] = {opt, "LEAKWATCH_ROOT_PID=1", NULL};
    cr_assert(lw_core_init(env));
}

static void fini(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(snapshot, .init = init, .fini = fini);

static int count_files(const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix)))
            n++;
    closedir(d);
    return n;
}

struct parsed {
    struct lw_rec_process proc;
    struct lw_rec_totals tot;
    int n_proc, n_tot, n_mod, n_stack, n_region, n_end;
    int n_kproc, n_cgroup, n_pcache, n_astats; /* 1.2 kernel records */
    struct lw_rec_kernel_proc kproc;
    uint64_t records_before_end;
    uint64_t heap_inuse_sum, heap_objects_sum, mapped_sum;
    uint64_t age_bytes_sum, age_objects_sum;
    int main_modules;
    char exe[4096];
};

/* A reader of our own, strict about framing, independent of tools/. */
static void parse(const char *path, struct parsed *p)
{
    memset(p, 0, sizeof *p);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static unsigned char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert_geq(len, sizeof(struct lw_snap_header));
    struct lw_snap_header h;
    memcpy(&h, buf, sizeof h);
    cr_assert_eq(memcmp(h.magic, LW_SNAP_MAGIC, 8), 0);
    cr_assert_eq(h.major, LW_SNAP_MAJOR);
    cr_assert_eq(h.header_size, sizeof h);
    size_t off = sizeof h;
    uint64_t records = 0;
    while (off < len) {
        struct lw_rec_hdr r;
        cr_assert_leq(off + sizeof r, len);
        memcpy(&r, buf + off, sizeof r);
        const unsigned char *pl = buf + off + sizeof r;
        cr_assert_leq(off + sizeof r + r.len, len, "record overruns the file");
        switch (r.tag) {
        case LW_REC_PROCESS:
            memcpy(&p->proc, pl, sizeof p->proc);
            cr_assert_eq(r.len, sizeof p->proc + p->proc.exe_len + p->proc.cmdline_len);
            memcpy(p->exe, pl + sizeof p->proc, p->proc.exe_len);
            p->n_proc++;
            break;
        case LW_REC_TOTALS:
            cr_assert_eq(r.len, sizeof p->tot);
            memcpy(&p->tot, pl, sizeof p->tot);
            p->n_tot++;
            break;
        case LW_REC_MODULE: {
            struct lw_rec_module m;
            memcpy(&m, pl, sizeof m);
            cr_assert_eq(r.len, sizeof m + m.nsegs * sizeof(struct lw_rec_segment) + m.path_len +
                                    m.build_id_len);
            if (m.flags & LW_MOD_MAIN)
                p->main_modules++;
            p->n_mod++;
            break;
        }
        case LW_REC_STACK: {
            struct lw_rec_stack s;
            memcpy(&s, pl, sizeof s);
            cr_assert_eq(r.len, sizeof s + s.nframes * 8u);
            cr_assert_geq(s.alloc_bytes, s.free_bytes);
            if (s.kind == LW_KIND_HEAP) {
                p->heap_inuse_sum += s.alloc_bytes - s.free_bytes;
                p->heap_objects_sum += s.alloc_objects - s.free_objects;
            }
            p->n_stack++;
            break;
        }
        case LW_REC_REGION: {
            struct lw_rec_region g;
            memcpy(&g, pl, sizeof g);
            p->mapped_sum += g.size;
            p->n_region++;
            break;
        }
        case LW_REC_END: {
            struct lw_rec_end e;
            memcpy(&e, pl, sizeof e);
            p->records_before_end = e.records;
            cr_assert_eq(e.bytes, off, "END knows where it is");
            cr_assert_eq(records, e.records);
            p->n_end++;
            break;
        }
        case LW_REC_KERNEL_PROC:
            cr_assert_eq(r.len, sizeof p->kproc);
            memcpy(&p->kproc, pl, sizeof p->kproc);
            p->n_kproc++;
            break;
        case LW_REC_KERNEL_CGROUP: {
            struct lw_rec_kernel_cgroup c;
            memcpy(&c, pl, sizeof c);
            cr_assert_eq(r.len, sizeof c + c.path_len);
            cr_assert(c.version == 1 || c.version == 2);
            p->n_cgroup++;
            break;
        }
        case LW_REC_PAGE_CACHE: {
            struct lw_rec_page_cache c;
            memcpy(&c, pl, sizeof c);
            cr_assert_eq(r.len, sizeof c + c.path_len);
            cr_assert_gt(c.cached_bytes, 0);
            p->n_pcache++;
            break;
        }
        case LW_REC_ALLOC_STATS:
            cr_assert_eq(r.len, sizeof(struct lw_rec_alloc_stats));
            p->n_astats++;
            break;
        case LW_REC_AGE: {
            struct lw_rec_age a;
            memcpy(&a, pl, sizeof a);
            cr_assert_eq(r.len, sizeof a + a.nbuckets * sizeof(struct lw_age_bucket));
            for (uint32_t i = 0; i < a.nbuckets; i++) {
                struct lw_age_bucket b;
                memcpy(&b, pl + sizeof a + i * sizeof b, sizeof b);
                p->age_bytes_sum += b.bytes;
                p->age_objects_sum += b.objects;
            }
            break;
        }
        case LW_REC_THREAD:
            cr_assert_eq(r.len, sizeof(struct lw_rec_thread));
            break;
        case LW_REC_TRIGGER:
            cr_assert_eq(r.len, sizeof(struct lw_rec_trigger));
            break;
        default:
            cr_assert_fail("unknown tag %u", r.tag);
        }
        records++;
        off += sizeof r + LW_REC_PAD(r.len);
    }
    cr_assert_eq(off, len, "nothing after END");
}

static __attribute__((noinline)) void make_blocks(void)
{
    for (int i = 0; i < 10; i++)
        lw_track_alloc((void *)(uintptr_t)(0x100000 + i * 64), 48, 1);
    lw_track_free((void *)(uintptr_t)0x100000);
}

Test(snapshot, round_trip)
{
    make_blocks();
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char *m = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(m, 1, 16 * pg);
    lw_track_mmap(m, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, false, 1);
    cr_assert_eq(madvise(m + 8 * pg, 8 * pg, MADV_FREE), 0);
    lw_track_madvise(m + 8 * pg, 8 * pg, MADV_FREE);

    char path[4096];
    lw_tls.guard = 1;
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_SIGNAL, path, sizeof path), 0);
    lw_tls.guard = 0;
    char want[256];
    snprintf(want, sizeof want, "%s/test_lib_snapsh.%d.000000.signal.lwsnap", dir, getpid());
    cr_assert_str_eq(path, want);
    cr_assert_eq(count_files("."), 2, "only . and ..: no temporary left");

    struct parsed p;
    parse(path, &p);
    cr_assert_eq(p.n_proc, 1);
    cr_assert_eq(p.n_tot, 1);
    cr_assert_eq(p.n_end, 1);
    /* the kernel's view of this test process: readable here */
    cr_assert_eq(p.n_kproc, 1);
    cr_assert_gt(p.kproc.rss_bytes, 0);
    cr_assert_neq(p.kproc.rss_bytes, LW_VALUE_NA);
    cr_assert_leq(p.n_cgroup, 1);
    cr_assert_gt(p.n_pcache, 0); /* at least the test binary and libc, mapped */
    cr_assert_eq(p.n_astats, 1);
    cr_assert_eq(p.main_modules, 1);
    cr_assert_geq(p.n_mod, 3);
    cr_assert_eq(p.proc.pid, (uint32_t)getpid());
    cr_assert_eq(p.proc.trigger, LW_TRIGGER_SIGNAL);
    cr_assert_eq(p.proc.seq, 0);
    cr_assert_eq(p.proc.max_depth, 64);
    cr_assert_eq(p.proc.flags & LW_PROC_ROOT, 0, "root pid 1 is not us");
    cr_assert(strstr(p.exe, "test_lib_snapshot"), "exe %s", p.exe);
    cr_assert_eq(p.tot.heap_inuse_bytes, 9 * 48);
    cr_assert_eq(p.tot.heap_inuse_objects, 9);
    cr_assert_eq(p.tot.heap_alloc_objects, 10);
    cr_assert_eq(p.tot.heap_free_objects, 1);
    cr_assert_eq(p.heap_inuse_sum, p.tot.heap_inuse_bytes, "stacks add up to the totals");
    cr_assert_eq(p.heap_objects_sum, p.tot.heap_inuse_objects);
    cr_assert_eq(p.age_bytes_sum, p.tot.heap_inuse_bytes, "age buckets add up to the heap");
    cr_assert_eq(p.age_objects_sum, p.tot.heap_inuse_objects);
    cr_assert_eq(p.tot.mmap.mapped_bytes, 16 * (uint64_t)pg);
    cr_assert_eq(p.mapped_sum, p.tot.mmap.mapped_bytes);
    cr_assert_eq(p.tot.mmap.madv_free_bytes, 8 * (uint64_t)pg);
    cr_assert_eq(p.tot.mmap.released_resident_bytes, 8 * (uint64_t)pg,
                 "no memory pressure: MADV_FREE pages stay resident");
    cr_assert_eq(p.tot.mmap.regions, 1);
    cr_assert_eq(p.n_region, 2);
    cr_assert_eq(p.n_stack, 2);
    cr_assert_gt(p.tot.metadata_bytes, 0);

    lw_tls.guard = 1;
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_EXIT, path, sizeof path), 0);
    snprintf(want, sizeof want, "%s/test_lib_snapsh.%d.000001.exit.lwsnap", dir, getpid());
    cr_assert_str_eq(path, want);
    cr_assert_eq(lw_snapshot_count(), 2);
}

static ssize_t full_disk(int fd, const void *b, size_t n)
{
    (void)fd;
    (void)b;
    (void)n;
    errno = ENOSPC;
    return -1;
}

Test(snapshot, full_disk_leaves_nothing_and_recovers)
{
    make_blocks();
    lw_io.write = full_disk;
    lw_tls.guard = 1;
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_SIGNAL, NULL, 0), -1);
    cr_assert_eq(count_files("."), 2, "no partial file, no temporary");
    lw_io_reset();
    char path[4096];
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_SIGNAL, path, sizeof path), 0);
    struct parsed p;
    parse(path, &p);
    cr_assert_eq(p.proc.seq, 0, "the failed one did not use a number");
    cr_assert_eq(p.tot.heap_inuse_objects, 9);
}

Test(snapshot, existing_name_is_never_replaced)
{
    char taken[256];
    snprintf(taken, sizeof taken, "%s/test_lib_snapsh.%d.000000.signal.lwsnap", dir, getpid());
    int fd = open(taken, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "x", 1), 1);
    close(fd);
    char path[4096];
    lw_tls.guard = 1;
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_SIGNAL, path, sizeof path), 0);
    cr_assert(strstr(path, ".000001.signal.lwsnap"), "%s", path);
    struct stat st;
    cr_assert_eq(stat(taken, &st), 0);
    cr_assert_eq(st.st_size, 1, "the old file is untouched");
}

Test(snapshot, missing_directory_is_created)
{
    snprintf(lw_state.cfg.output, sizeof lw_state.cfg.output, "%s/a/b/c", dir);
    char path[4096];
    lw_tls.guard = 1;
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_EXIT, path, sizeof path), 0);
    cr_assert(strstr(path, "/a/b/c/"));
}

Test(snapshot, unwritable_directory_fails_cleanly)
{
    snprintf(lw_state.cfg.output, sizeof lw_state.cfg.output, "/proc/self/no/such");
    lw_tls.guard = 1;
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_EXIT, NULL, 0), -1);
}

/* The layout is the format: pin every offset docs/FORMAT.md documents. */
Test(snapshot, format_layout_is_pinned)
{
    cr_assert_eq(sizeof(struct lw_snap_header), 32);
    cr_assert_eq(sizeof(struct lw_rec_hdr), 8);
    cr_assert_eq(sizeof(struct lw_rec_process), 88);
    cr_assert_eq(offsetof(struct lw_rec_process, time_ns), 8);
    cr_assert_eq(offsetof(struct lw_rec_process, seq), 32);
    cr_assert_eq(offsetof(struct lw_rec_process, exe_len), 52);
    cr_assert_eq(offsetof(struct lw_rec_process, sample_interval), 64);
    cr_assert_eq(sizeof(struct lw_totals_map), 64);
    cr_assert_eq(sizeof(struct lw_rec_totals), 272);
    cr_assert_eq(offsetof(struct lw_rec_totals, mmap), 48);
    cr_assert_eq(offsetof(struct lw_rec_totals, allocator), 112);
    cr_assert_eq(offsetof(struct lw_rec_totals, dropped_blocks), 176);
    cr_assert_eq(offsetof(struct lw_rec_totals, metadata_bytes), 224);
    cr_assert_eq(offsetof(struct lw_rec_totals, reentrant_calls), 240);
    cr_assert_eq(offsetof(struct lw_rec_totals, stack_cache_hits), 248);
    cr_assert_eq(offsetof(struct lw_rec_totals, stack_cache_misses), 256);
    cr_assert_eq(sizeof(struct lw_rec_module), 24);
    cr_assert_eq(sizeof(struct lw_rec_segment), 32);
    cr_assert_eq(sizeof(struct lw_rec_stack), 40);
    cr_assert_eq(offsetof(struct lw_rec_stack, alloc_bytes), 8);
    cr_assert_eq(sizeof(struct lw_rec_region), 40);
    cr_assert_eq(offsetof(struct lw_rec_region, stack), 24);
    cr_assert_eq(sizeof(struct lw_rec_end), 16);
    cr_assert_eq(LW_REC_END, 0x454e44);
}

/* Records written after the STACK records (AGE, THREAD) must name only
 * stacks in the file: a stack made after they were written is not. */
static __attribute__((noinline)) void block_from_a_new_site(void)
{
    lw_track_alloc((void *)0x7f0000001000, 48, 0);
}

Test(snapshot, later_records_name_only_stacks_in_the_file)
{
    make_blocks();
    char path[512];
    lw_tls.guard = 1;
    cr_assert_eq(lw_snapshot_write(LW_TRIGGER_SIGNAL, path, sizeof path), 0);
    lw_tls.guard = 0;
    uint32_t written = lw_stack_count();
    cr_assert_gt(written, 0);
    cr_assert(lw_snapshot_has_stack(1));
    cr_assert(lw_snapshot_has_stack(written));
    block_from_a_new_site();
    cr_assert_gt(lw_stack_count(), written, "a new call site makes a new stack");
    cr_assert_not(lw_snapshot_has_stack(written + 1));
    cr_assert_not(lw_snapshot_has_stack(0));
    lw_track_free((void *)0x7f0000001000);
}
