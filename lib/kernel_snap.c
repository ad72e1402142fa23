/*
 * kernel_snap.c - kernel records of a snapshot (see kernel_snap.h). The
 * parsing is kernel.c's; here are the buffers, the list of files seen at
 * earlier scans, and the allocator's own counters. Never allocates through
 * the host, never uses stdio, one warning at most.
 *
 * Files seen earlier: no open() hook. Interposing open would need nine
 * hooks (open, open64, openat, openat64, creat, creat64, fopen, fopen64,
 * freopen: glibc's fopen calls its open internally, past any interposer)
 * and a lock-free path set on a call programs make in hot loops. Instead
 * every snapshot lists /proc/self/fd and maps and
 * remembers up to SEEN_MAX open regular files by path, device and inode; later
 * snapshots measure them again while the path still names the same file.
 * A file opened and closed between two scans is missed: said in the README.
 *
 * Allocator statistics: glibc's mallinfo2() takes every arena's lock, and
 * jemalloc's mallctl("epoch") takes its stats locks (it may allocate with
 * jemalloc's internal base allocator, never through malloc). The snapshot
 * writer runs in the writer thread or in the thread that exits; a thread
 * interrupted inside the allocator (lw_tls.in_alloc) may hold an arena
 * lock, so then the record is left out rather than risk a deadlock.
 */
#include "kernel_snap.h"

#include <dlfcn.h>
#include <malloc.h>
#include <string.h>

#include "../include/lw_format.h"
#include "kernel.h"
#include "log.h"
#include "lw.h"
#include "sys.h"

#define TEXT_BUF (64u * 1024u)
#define PC_MAX 256u      /* files measured per snapshot */
#define PC_WRITE_MAX 32u /* PAGE_CACHE records written, largest first */
#define SEEN_MAX 64u
#define VEC_PAGES 4096u
#define MINCORE_MAX (4ull << 30) /* bytes of one file measured with mincore */

_Static_assert(sizeof(struct lw_rec_kernel_proc) == 80, "KERNEL_PROC layout");
_Static_assert(sizeof(struct lw_rec_kernel_cgroup) == 120, "KERNEL_CGROUP layout");
_Static_assert(sizeof(struct lw_rec_page_cache) == 40, "PAGE_CACHE layout");
_Static_assert(sizeof(struct lw_rec_alloc_stats) == 80, "ALLOC_STATS layout");

struct seen {
    uint64_t dev, ino;
    char path[LW_PC_PATH];
};

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static lw_mutex_t klock = LW_MUTEX_INIT;
static char *text;
static struct lw_pc_entry *pcs;
static struct seen *seen;
static unsigned char *vec;
static size_t nseen, seen_next;
static mallctl_fn mallctl_p;
static size_t mapped_len;
static struct lw_cgroup_loc cg_loc; /* 1.5 KiB: not on the writer's stack */

bool lw_ksnap_init(void)
{
    if (text)
        return true;
    size_t len = TEXT_BUF + PC_MAX * sizeof(struct lw_pc_entry) + SEEN_MAX * sizeof(struct seen) +
                 VEC_PAGES;
    char *p = lw_sys_map(len, false);
    if (!p)
        return false;
    memset(p, 0, len); /* touched now: a snapshot near the limit needs no new pages */
    text = p;
    mapped_len = len;
    pcs = (struct lw_pc_entry *)(p + TEXT_BUF);
    seen = (struct seen *)(p + TEXT_BUF + PC_MAX * sizeof(struct lw_pc_entry));
    vec = (unsigned char *)(seen + SEEN_MAX);
    /* jemalloc linked in (or preloaded): its stats API. Looked up once,
     * here, while start-up serves dlerror's allocations. */
    mallctl_p = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
    return true;
}

static void warn_once(const char *what)
{
    lw_log_warn2(LW_WARN_KERNEL, what, "; the kernel's figures for it are left out of snapshots");
}

/* Open files only: mapped ones are mostly the program's libraries, still
 * mapped next time, and would crowd the logs out of the list. */
static void remember(const struct lw_pc_entry *e)
{
    if ((size_t)e->path_len + 1 >= sizeof e->path || !(e->flags & LW_PC_OPEN))
        return;
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].dev == e->dev && seen[i].ino == e->ino)
            return;
    size_t at = nseen < SEEN_MAX ? nseen++ : (seen_next++ % SEEN_MAX); /* oldest goes */
    seen[at].dev = e->dev;
    seen[at].ino = e->ino;
    memcpy(seen[at].path, e->path, (size_t)e->path_len + 1);
}

/* Collect the files open or mapped now plus those seen before. */
static void collect(struct lw_pc_set *s)
{
    s->e = pcs;
    s->n = 0;
    s->cap = PC_MAX;
    s->dropped = 0;
    if (!lw_pc_add_open(s, "/proc/self", text, TEXT_BUF))
        warn_once("cannot list /proc/self/fd");
    lw_pc_add_mapped(s, "/proc/self", text, TEXT_BUF);
    for (size_t i = 0; i < s->n; i++)
        remember(&s->e[i]);
}

static void write_proc(struct lw_out *o)
{
    struct lw_rec_kernel_proc p;
    if (lw_kernel_read_proc("/proc/self", &p, text, TEXT_BUF) == 0)
        warn_once("cannot read /proc/self/smaps_rollup or status");
    lw_out_begin(o, LW_REC_KERNEL_PROC, sizeof p);
    lw_out_bytes(o, &p, sizeof p);
    lw_out_end(o);
}

static void write_cgroup(struct lw_out *o)
{
    struct lw_rec_kernel_cgroup c;
    if (!lw_kernel_cgroup_find("/proc/self", "", &cg_loc, text, TEXT_BUF))
        return; /* no memory cgroup: normal outside containers with v2 and no controller */
    if (!lw_kernel_cgroup_read(&cg_loc, &c, text, TEXT_BUF)) {
        warn_once("cannot read the memory cgroup's usage");
        return;
    }
    size_t plen = strlen(cg_loc.dir);
    c.path_len = (uint32_t)plen;
    lw_out_begin(o, LW_REC_KERNEL_CGROUP, (uint32_t)(sizeof c + plen));
    lw_out_bytes(o, &c, sizeof c);
    lw_out_bytes(o, cg_loc.dir, plen);
    lw_out_end(o);
}

static void write_page_cache(struct lw_out *o)
{
    struct lw_pc_set s;
    collect(&s);
    for (size_t i = 0; i < nseen; i++)
        lw_pc_add_seen(&s, seen[i].path, seen[i].dev, seen[i].ino);
    lw_pc_measure(&s, vec, VEC_PAGES, MINCORE_MAX);
    size_t written = 0;
    for (size_t i = 0; i < s.n && written < PC_WRITE_MAX && !o->err; i++) {
        const struct lw_pc_entry *e = &s.e[i];
        if (!e->measured || e->cached == 0)
            continue;
        struct lw_rec_page_cache r = {
            .cached_bytes = e->cached, .dirty_bytes = e->dirty, .writeback_bytes = e->writeback,
            .size_bytes = e->size, .flags = e->flags, .path_len = e->path_len,
        };
        lw_out_begin(o, LW_REC_PAGE_CACHE, (uint32_t)(sizeof r + e->path_len));
        lw_out_bytes(o, &r, sizeof r);
        lw_out_bytes(o, e->path, e->path_len);
        lw_out_end(o);
        written++;
    }
}

static uint64_t jm_size(const char *name)
{
    size_t v = 0, sz = sizeof v;
    return mallctl_p(name, &v, &sz, NULL, 0) == 0 ? (uint64_t)v : LW_VALUE_NA;
}

static void write_alloc_stats(struct lw_out *o)
{
    if (lw_tls.in_alloc)
        return; /* this thread may hold an arena lock: see the top comment */
    struct lw_rec_alloc_stats a;
    memset(&a, 0, sizeof a);
    if (mallctl_p) {
        uint64_t epoch = 1;
        size_t sz = sizeof epoch;
        mallctl_p("epoch", &epoch, &sz, &epoch, sz); /* refresh the cached stats */
        a.allocator = LW_ALLOCATOR_JEMALLOC;
        a.in_use_bytes = jm_size("stats.allocated");
        a.arena_bytes = jm_size("stats.active");
        a.mmap_bytes = jm_size("stats.mapped");
        a.resident_bytes = jm_size("stats.resident");
        a.retained_bytes = jm_size("stats.retained");
        a.free_bytes = a.resident_bytes != LW_VALUE_NA && a.in_use_bytes != LW_VALUE_NA &&
                               a.resident_bytes >= a.in_use_bytes
                           ? a.resident_bytes - a.in_use_bytes
                           : LW_VALUE_NA;
        a.releasable_bytes = LW_VALUE_NA;
        if (a.in_use_bytes == LW_VALUE_NA)
            return; /* jemalloc built without statistics */
    } else {
        struct mallinfo2 mi = mallinfo2();
        a.allocator = LW_ALLOCATOR_GLIBC;
        a.in_use_bytes = mi.uordblks + mi.hblkhd;
        a.free_bytes = mi.fordblks;
        a.arena_bytes = mi.arena;
        a.mmap_bytes = mi.hblkhd;
        a.resident_bytes = LW_VALUE_NA;
        a.retained_bytes = LW_VALUE_NA;
        a.releasable_bytes = mi.keepcost;
    }
    lw_out_begin(o, LW_REC_ALLOC_STATS, sizeof a);
    lw_out_bytes(o, &a, sizeof a);
    lw_out_end(o);
}

size_t lw_ksnap_memory_bytes(void)
{
    return mapped_len;
}

void lw_ksnap_fork_child(void)
{
    lw_mutex_reset(&klock);
}

void lw_ksnap_write(struct lw_out *o)
{
    if (!text)
        return;
    lw_mutex_lock(&klock);
    write_proc(o);
    write_cgroup(o);
    write_page_cache(o);
    write_alloc_stats(o);
    lw_mutex_unlock(&klock);
}
