/* lib/kernel.c on canned /proc and cgroup text (tests/lib/data/kernel):
 * smaps_rollup + status, missing fields and unreadable files; cgroup v1,
 * v2, a hybrid host without a v2 memory controller, a mount rooted below
 * the hierarchy; page cache by file with cachestat and with mincore. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel.h"

#define NA LW_VALUE_NA
#define KB 1024ull

static char buf[64 * 1024];

static const char *data(const char *rel)
{
    static char path[4][1024];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 1024, "%s/kernel/%s", LW_TEST_DATA, rel);
    return p;
}

Test(kernel, parse_fields_units_and_missing)
{
    static const char text[] = "Rss:     10 kB\nLazyFree: 3 kB\nbogus line\nfile 4096\n"
                               "Huge: 99999999999999999999999 kB\nnokey:\n";
    uint64_t rss = NA, lazy = NA, file = NA, absent = NA, huge = NA;
    struct lw_kfield f[] = {{"Rss", &rss}, {"LazyFree", &lazy}, {"file", &file},
                            {"Absent", &absent}, {"Huge", &huge}};
    cr_assert_eq(lw_kernel_parse_fields(text, sizeof text - 1, f, 5), 3);
    cr_assert_eq(rss, 10 * KB);
    cr_assert_eq(lazy, 3 * KB);
    cr_assert_eq(file, 4096); /* no unit: bytes (cgroup files) */
    cr_assert_eq(absent, NA);
    cr_assert_eq(huge, NA); /* overflow: not a number we trust */
}

Test(kernel, proc_full)
{
    struct lw_rec_kernel_proc p;
    cr_assert_eq(lw_kernel_read_proc(data("full"), &p, buf, sizeof buf), 3);
    cr_assert_eq(p.rss_bytes, 272308 * KB);
    cr_assert_eq(p.anon_bytes, 263912 * KB);
    cr_assert_eq(p.lazyfree_bytes, 196608 * KB);
    cr_assert_eq(p.anon_huge_bytes, 2048 * KB);
    cr_assert_eq(p.swap_bytes, 12 * KB);
    cr_assert_eq(p.file_bytes, 8396 * KB);
    cr_assert_eq(p.shmem_bytes, 4 * KB);
    cr_assert_eq(p.hwm_bytes, 272400 * KB);
}

Test(kernel, proc_status_only_falls_back)
{
    struct lw_rec_kernel_proc p;
    cr_assert_eq(lw_kernel_read_proc(data("status_only"), &p, buf, sizeof buf), 2);
    cr_assert_eq(p.rss_bytes, 272308 * KB); /* VmRSS */
    cr_assert_eq(p.anon_bytes, 263912 * KB); /* RssAnon */
    cr_assert_eq(p.swap_bytes, 12 * KB);     /* VmSwap */
    cr_assert_eq(p.lazyfree_bytes, NA);      /* only smaps_rollup has it */
    cr_assert_eq(p.anon_huge_bytes, NA);
}

Test(kernel, proc_old_kernel_missing_fields)
{
    struct lw_rec_kernel_proc p;
    cr_assert_eq(lw_kernel_read_proc(data("old_kernel"), &p, buf, sizeof buf), 2);
    cr_assert_eq(p.rss_bytes, 1024 * KB);
    cr_assert_eq(p.hwm_bytes, 2048 * KB);
    cr_assert_eq(p.anon_bytes, NA);
    cr_assert_eq(p.file_bytes, NA);
    cr_assert_eq(p.shmem_bytes, NA);
    cr_assert_eq(p.lazyfree_bytes, NA);
}

Test(kernel, proc_unreadable)
{
    struct lw_rec_kernel_proc p;
    cr_assert_eq(lw_kernel_read_proc(data("empty"), &p, buf, sizeof buf), 0);
    cr_assert_eq(lw_kernel_read_proc(data("no/such/dir"), &p, buf, sizeof buf), 0);
    const uint64_t *v = &p.rss_bytes;
    for (int i = 0; i < 8; i++)
        cr_assert_eq(v[i], NA, "field %d", i);
    /* a directory where a file should be: opened, but read fails */
    char dir[] = "/tmp/lw-kernel-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/smaps_rollup", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cr_assert_eq(lw_kernel_read_proc(dir, &p, buf, sizeof buf), 0);
    cr_assert_eq(p.lazyfree_bytes, NA);
    rmdir(sub);
    rmdir(dir);
}

Test(kernel, cgroup_v1)
{
    struct lw_cgroup_loc loc;
    cr_assert(lw_kernel_cgroup_find(data("v1/proc"), data("v1/root"), &loc, buf, sizeof buf));
    cr_assert_eq(loc.version, 1);
    cr_assert_str_eq(loc.name, "/docker/abc");
    char want[1024];
    snprintf(want, sizeof want, "%s/sys/fs/cgroup/memory/docker/abc", data("v1/root"));
    cr_assert_str_eq(loc.dir, want);
    struct lw_rec_kernel_cgroup c;
    cr_assert(lw_kernel_cgroup_read(&loc, &c, buf, sizeof buf));
    cr_assert_eq(c.version, 1);
    cr_assert_eq(c.usage_bytes, 314118144);
    cr_assert_eq(c.limit_bytes, NA);
    cr_assert_eq(c.flags, LW_CGROUP_UNLIMITED);
    /* the hierarchical total_* counters, not the local ones */
    cr_assert_eq(c.anon_bytes, 3700000);
    cr_assert_eq(c.file_bytes, 300000000);
    cr_assert_eq(c.active_file_bytes, 25200000);
    cr_assert_eq(c.inactive_file_bytes, 274800000);
    cr_assert_eq(c.shmem_bytes, 8192);
    cr_assert_eq(c.dirty_bytes, 268500000);
    cr_assert_eq(c.limit_events, 3);
    cr_assert_eq(c.oom_events, NA);
    cr_assert_eq(c.oom_kill_events, 2);
}

Test(kernel, cgroup_v2)
{
    struct lw_cgroup_loc loc;
    cr_assert(lw_kernel_cgroup_find(data("v2/proc"), data("v2/root"), &loc, buf, sizeof buf));
    cr_assert_eq(loc.version, 2);
    cr_assert_str_eq(loc.name, "/kubepods/pod1");
    struct lw_rec_kernel_cgroup c;
    cr_assert(lw_kernel_cgroup_read(&loc, &c, buf, sizeof buf));
    cr_assert_eq(c.usage_bytes, 104857600);
    cr_assert_eq(c.limit_bytes, 536870912);
    cr_assert_eq(c.flags, 0);
    cr_assert_eq(c.anon_bytes, 52428800);
    cr_assert_eq(c.file_bytes, 41943040);
    cr_assert_eq(c.active_file_bytes, 20971520);
    cr_assert_eq(c.inactive_file_bytes, 20971520);
    cr_assert_eq(c.shmem_bytes, 1048576);
    cr_assert_eq(c.dirty_bytes, 4096);
    cr_assert_eq(c.limit_events, 7);
    cr_assert_eq(c.oom_events, 1);
    cr_assert_eq(c.oom_kill_events, 1);
}

Test(kernel, cgroup_v2_max_is_unlimited)
{
    char dir[] = "/tmp/lw-kernel-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char p[128];
    snprintf(p, sizeof p, "%s/memory.current", dir);
    FILE *f = fopen(p, "w");
    fputs("8192\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/memory.max", dir);
    f = fopen(p, "w");
    fputs("max\n", f);
    fclose(f);
    struct lw_cgroup_loc loc = {.version = 2};
    snprintf(loc.dir, sizeof loc.dir, "%s", dir);
    struct lw_rec_kernel_cgroup c;
    cr_assert(lw_kernel_cgroup_read(&loc, &c, buf, sizeof buf));
    cr_assert_eq(c.usage_bytes, 8192);
    cr_assert_eq(c.limit_bytes, NA);
    cr_assert_eq(c.flags, LW_CGROUP_UNLIMITED);
    cr_assert_eq(c.inactive_file_bytes, NA); /* memory.stat missing: not available */
    cr_assert_eq(c.oom_kill_events, NA);
    unlink(p);
    snprintf(p, sizeof p, "%s/memory.current", dir);
    unlink(p);
    /* usage unreadable: no cgroup figures at all */
    cr_assert_not(lw_kernel_cgroup_read(&loc, &c, buf, sizeof buf));
    rmdir(dir);
}

Test(kernel, cgroup_hybrid_without_v2_memory)
{
    struct lw_cgroup_loc loc;
    cr_assert_not(lw_kernel_cgroup_find(data("hybrid/proc"), data("hybrid/root"), &loc, buf,
                                        sizeof buf));
    cr_assert_eq(loc.version, 0);
    cr_assert_not(lw_kernel_cgroup_find(data("empty"), "", &loc, buf, sizeof buf));
}

Test(kernel, cgroup_v1_mount_rooted_below_with_escaped_space)
{
    struct lw_cgroup_loc loc;
    cr_assert(lw_kernel_cgroup_find(data("v1limit/proc"), data("v1limit/root"), &loc, buf,
                                    sizeof buf));
    char want[1024];
    snprintf(want, sizeof want, "%s/cg/mem x/task", data("v1limit/root"));
    cr_assert_str_eq(loc.dir, want);
    struct lw_rec_kernel_cgroup c;
    cr_assert(lw_kernel_cgroup_read(&loc, &c, buf, sizeof buf));
    cr_assert_eq(c.usage_bytes, 1000);
    cr_assert_eq(c.limit_bytes, 268435456);
    cr_assert_eq(c.flags, 0);
    cr_assert_eq(c.anon_bytes, NA); /* no memory.stat */
}

/* A 1 MiB file written now: all of it in the page cache. */
static int one_mib_file(char *path)
{
    strcpy(path, "/tmp/lw-kernel-pc-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    static char block[1 << 20];
    memset(block, 'x', sizeof block);
    cr_assert_eq(write(fd, block, sizeof block), (ssize_t)sizeof block);
    return fd;
}

static struct lw_pc_entry entries[64];
static unsigned char vec[4096];

static const struct lw_pc_entry *find(const struct lw_pc_set *s, const char *path)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].path, path))
            return &s->e[i];
    return NULL;
}

static void page_cache(bool mincore)
{
    char path[64];
    int fd = one_mib_file(path);
    lw_pc_force_mincore = mincore;
    struct lw_pc_set s = {entries, 0, 64, 0};
    cr_assert(lw_pc_add_open(&s, "/proc/self", buf, sizeof buf));
    const struct lw_pc_entry *e = find(&s, path);
    cr_assert_not_null(e, "the open file is listed");
    cr_assert_eq(e->flags, LW_PC_OPEN);
    lw_pc_measure(&s, vec, sizeof vec, 4ull << 30);
    e = find(&s, path);
    cr_assert(e->measured);
    cr_assert_eq(e->size, 1 << 20);
    cr_assert_eq(e->cached, 1 << 20);
    if (mincore) {
        cr_assert(e->flags & LW_PC_MINCORE);
        cr_assert_eq(e->dirty, NA);
    } else {
        cr_assert_not(e->flags & LW_PC_MINCORE);
        cr_assert_leq(e->dirty, e->cached);
    }
    /* a bound below the file's size: only the first part, said so */
    struct lw_pc_set s2 = {entries, 0, 64, 0};
    struct stat st;
    fstat(fd, &st);
    lw_pc_force_mincore = true;
    lw_pc_add_seen(&s2, path, st.st_dev, st.st_ino);
    cr_assert_eq(s2.n, 1);
    cr_assert_eq(s2.e[0].flags, LW_PC_SEEN);
    lw_pc_measure(&s2, vec, 16, 256 * 1024);
    cr_assert_eq(s2.e[0].cached, 256 * 1024);
    cr_assert(s2.e[0].flags & LW_PC_PARTIAL);
    /* closed and the name given to another file: not measured as ours */
    close(fd);
    unlink(path);
    struct lw_pc_set s3 = {entries, 0, 64, 0};
    lw_pc_add_seen(&s3, path, st.st_dev, st.st_ino);
    cr_assert_eq(s3.n, 0);
    lw_pc_force_mincore = false;
}

Test(kernel, page_cache_cachestat)
{
    page_cache(false);
}

Test(kernel, page_cache_mincore)
{
    page_cache(true);
}

Test(kernel, page_cache_mapped_and_full_set)
{
    struct lw_pc_set s = {entries, 0, 2, 0};
    cr_assert(lw_pc_add_mapped(&s, "/proc/self", buf, sizeof buf));
    /* the test binary, libc, the loader, criterion...: more than 2 */
    cr_assert_eq(s.n, 2);
    cr_assert_gt(s.dropped, 0);
    cr_assert_eq(s.e[0].flags, LW_PC_MAPPED);
    cr_assert_eq(s.e[0].path[0], '/');
    cr_assert_not(lw_pc_add_open(&s, "/nonexistent", buf, sizeof buf));
}

/* ---- kernel_snap.c: the records a snapshot gets ---- */

#include "kernel_snap.h"
#include "snapshot.h"

struct found {
    int kproc, cgroup, astats;
    uint32_t flags; /* of the PAGE_CACHE record of the file looked for */
    uint64_t cached;
};

static void scan_records(const char *file, const char *want, struct found *f)
{
    memset(f, 0, sizeof *f);
    static unsigned char rbuf[1 << 20];
    FILE *fp = fopen(file, "rb");
    cr_assert_not_null(fp);
    size_t len = fread(rbuf, 1, sizeof rbuf, fp);
    fclose(fp);
    for (size_t off = 0; off < len;) {
        struct lw_rec_hdr h;
        memcpy(&h, rbuf + off, sizeof h);
        const unsigned char *pl = rbuf + off + sizeof h;
        if (h.tag == LW_REC_KERNEL_PROC)
            f->kproc++;
        if (h.tag == LW_REC_KERNEL_CGROUP)
            f->cgroup++;
        if (h.tag == LW_REC_ALLOC_STATS)
            f->astats++;
        if (h.tag == LW_REC_PAGE_CACHE) {
            struct lw_rec_page_cache r;
            memcpy(&r, pl, sizeof r);
            cr_assert_eq(h.len, sizeof r + r.path_len);
            if (r.path_len == strlen(want) && !memcmp(pl + sizeof r, want, r.path_len)) {
                f->flags = r.flags;
                f->cached = r.cached_bytes;
            }
        }
        off += sizeof h + LW_REC_PAD(h.len);
    }
}

static void write_kernel_records(const char *file)
{
    static char obuf[64 * 1024];
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    struct lw_out o = {.fd = fd, .buf = obuf, .cap = sizeof obuf};
    lw_ksnap_write(&o); /* records go to obuf, flushed to fd when it fills */
    if (o.len)
        cr_assert_eq(write(fd, obuf, o.len), (ssize_t)o.len);
    cr_assert_not(o.err);
    close(fd);
}

Test(kernel_snap, a_closed_file_seen_earlier_is_still_measured)
{
    cr_assert(lw_ksnap_init());
    char path[64], out[] = "/tmp/lw-kernel-out-XXXXXX";
    int ofd = mkstemp(out);
    close(ofd);
    int fd = one_mib_file(path);
    struct found f;
    write_kernel_records(out); /* open now: listed, and remembered */
    scan_records(out, path, &f);
    cr_assert_eq(f.kproc, 1);
    cr_assert_leq(f.cgroup, 1);
    cr_assert_eq(f.astats, 1);
    cr_assert_eq(f.flags, LW_PC_OPEN);
    cr_assert_eq(f.cached, 1 << 20);
    close(fd); /* a closed (or rotated) log still holds its pages */
    write_kernel_records(out);
    scan_records(out, path, &f);
    cr_assert_eq(f.flags, LW_PC_SEEN);
    cr_assert_eq(f.cached, 1 << 20);
    unlink(path); /* gone: no longer listed */
    write_kernel_records(out);
    scan_records(out, path, &f);
    cr_assert_eq(f.flags, 0);
    unlink(out);
}

/* A container's own cgroup is unlimited under a limited parent: the limit
 * that applies is the parent's, and the walk up stops at the mount. */
Test(kernel, cgroup_limit_is_the_tightest_on_the_way_up)
{
    struct lw_cgroup_loc loc;
    cr_assert(lw_kernel_cgroup_find(data("v1nested/proc"), data("v1nested/root"), &loc, buf,
                                    sizeof buf));
    char want[1024], dir[1024];
    snprintf(want, sizeof want, "%s/sys/fs/cgroup/memory", data("v1nested/root"));
    cr_assert_eq(loc.mount_len, strlen(want));
    cr_assert_eq(lw_kernel_cgroup_limit(&loc, dir, sizeof dir, buf, sizeof buf), 536870912);
    strcat(want, "/pod");
    cr_assert_str_eq(dir, want);

    /* Own limit only, mount rooted below its hierarchy: nothing above the mount is read. */
    cr_assert(lw_kernel_cgroup_find(data("v1limit/proc"), data("v1limit/root"), &loc, buf,
                                    sizeof buf));
    cr_assert_eq(lw_kernel_cgroup_limit(&loc, dir, sizeof dir, buf, sizeof buf), 268435456);
    cr_assert_str_eq(dir, loc.dir);

    /* Too little scratch: refused, not overrun. */
    char small[2048];
    cr_assert_not(lw_kernel_cgroup_find(data("v1nested/proc"), data("v1nested/root"), &loc, small,
                                        sizeof small));
}
