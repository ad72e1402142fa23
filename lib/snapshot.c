/*
 * snapshot.c - the snapshot writer (see snapshot.h). Everything it needs is
 * mapped and touched in lw_snapshot_init, so a write near the memory limit
 * asks the kernel for nothing but the file. It must never allocate through
 * the host, use stdio, or leave a partial file under the final name.
 *
 * Consistency while the program runs: per stack it reads the free counters
 * first (acquire), then the alloc counters. A block's alloc is counted
 * before the program can free it, so every free seen has its alloc seen,
 * and in-use = alloc - free never goes negative. Totals are the sums of
 * what was written, so stacks and totals agree to the byte in every file;
 * in sampling mode heap totals are the exact counts of sample.c instead.
 */
#include "snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/lw_format.h"
#include "kernel_snap.h"
#include "age.h"
#include "kernel.h"
#include "log.h"
#include "lw.h"
#include "modules.h"
#include "region.h"
#include "sample.h"
#include "stack.h"
#include "stackcache.h"
#include "state.h"
#include "strbuf.h"
#include "sys.h"
#include "table.h"
#include "threads.h"
#include "trigger.h"
#include "watch.h"

#define OUT_BUF (256u * 1024u)
#define CMDLINE_BUF (64u * 1024u)
#define MINCORE_VEC 4096u
#define RENAME_TRIES 1000

_Static_assert(sizeof(struct lw_snap_header) == 32, "header layout");
_Static_assert(sizeof(struct lw_rec_process) % 8 == 0, "process layout");
_Static_assert(sizeof(struct lw_rec_stack) == 40, "stack layout");
_Static_assert(sizeof(struct lw_rec_region) == 40, "region layout");

static lw_mutex_t wlock = LW_MUTEX_INIT;
static char *out_buf, *cmdline_buf;
static unsigned char *mincore_vec;
static size_t reserve_len;
static uint32_t seq;
static _Atomic uint32_t written;
static int open_fd = -1; /* the file being written, for a fork child to close */
static bool dir_ready;

static bool keep_init(void);

bool lw_snapshot_init(void)
{
    if (out_buf)
        return true;
    reserve_len = OUT_BUF + CMDLINE_BUF + MINCORE_VEC;
    char *p = lw_sys_map(reserve_len, false);
    if (!p)
        return false;
    memset(p, 0, reserve_len); /* touch now: no page faults needed later */
    out_buf = p;
    cmdline_buf = p + OUT_BUF;
    mincore_vec = (unsigned char *)p + OUT_BUF + CMDLINE_BUF;
    if (!lw_ksnap_init())
        lw_log_warn(LW_WARN_KERNEL, "no memory for the kernel figures; snapshots leave them out");
    if (!lw_age_init() || !lw_threads_init() || !keep_init())
        return false;
    lw_trigger_heap_init();
    return true;
}

uint32_t lw_snapshot_count(void)
{
    return atomic_load(&written);
}

const char *lw_snapshot_trigger_name(uint32_t trigger)
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

/* ---- buffered output ---- */

static void out_flush(struct lw_out *o)
{
    size_t done = 0;
    while (!o->err && done < o->len) {
        ssize_t n = lw_io.write(o->fd, o->buf + done, o->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            o->err = true;
            o->err_no = n < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t)n;
    }
    o->offset += o->len;
    o->len = 0;
}

void lw_out_bytes(struct lw_out *o, const void *p, size_t n)
{
    const char *s = p;
    if (n > o->rec_left) {
        o->err = true; /* a record bigger than announced: a bug, never a bad file */
        o->err_no = EINVAL;
        return;
    }
    o->rec_left -= (uint32_t)n;
    while (n && !o->err) {
        size_t room = o->cap - o->len;
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
        if (o->len == o->cap)
            out_flush(o);
    }
}

void lw_out_begin(struct lw_out *o, uint32_t tag, uint32_t len)
{
    struct lw_rec_hdr h = {tag, len};
    o->rec_left = sizeof h;
    lw_out_bytes(o, &h, sizeof h);
    o->rec_left = len;
    o->rec_len = len;
}

void lw_out_end(struct lw_out *o)
{
    static const char zero[LW_REC_ALIGN];
    if (o->rec_left) {
        o->err = true;
        o->err_no = EINVAL;
    }
    size_t pad = LW_REC_PAD(o->rec_len) - o->rec_len;
    o->rec_left = (uint32_t)pad;
    lw_out_bytes(o, zero, pad);
    o->records++;
}

/* ---- records ---- */

static void write_process(struct lw_out *o, uint32_t trigger, uint32_t the_seq)
{
    static char exe[4096];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe);
    if (exe_len < 0)
        exe_len = 0;
    ssize_t cl = 0;
    uint32_t flags = 0;
    if (lw_state.cfg.cmdline) {
        cl = lw_kernel_read_file("/proc/self/cmdline", cmdline_buf, CMDLINE_BUF);
        if (cl < 0)
            cl = 0;
        while (cl > 0 && cmdline_buf[cl - 1] == '\0')
            cl--; /* the format separates, it does not terminate */
    } else {
        flags |= LW_PROC_CMDLINE_OMITTED;
    }
    if (lw_state.cfg.root_pid && lw_state.cfg.root_pid == lw_state.pid)
        flags |= LW_PROC_ROOT;
    if (atomic_load(&lw_state.forked))
        flags |= LW_PROC_FORKED;
    struct lw_rec_process p = {
        .pid = (uint32_t)lw_state.pid,
        .ppid = (uint32_t)getppid(),
        .time_ns = lw_sys_realtime_ns(),
        .start_time_ns = lw_state.start_time_ns,
        .mono_ns = lw_sys_monotonic_ns(),
        .seq = the_seq,
        .trigger = trigger,
        .flags = flags,
        .max_depth = (uint32_t)lw_state.cfg.depth,
        .page_size = (uint32_t)sysconf(_SC_PAGESIZE),
        .exe_len = (uint32_t)exe_len,
        .cmdline_len = (uint32_t)cl,
        .sample_interval = lw_state.cfg.sample,
    };
    lw_out_begin(o, LW_REC_PROCESS, (uint32_t)(sizeof p + (size_t)exe_len + (size_t)cl));
    lw_out_bytes(o, &p, sizeof p);
    lw_out_bytes(o, exe, (size_t)exe_len);
    lw_out_bytes(o, cmdline_buf, (size_t)cl);
    lw_out_end(o);
}

/* What write_stacks wrote, so that records written later (AGE) name only
 * stacks in the file: ids 1..stacks_max but those still being inserted
 * (counted, not yet published) at that moment. Writer's lock held. */
#define LW_SKIP_MAX 64
static uint32_t stacks_max;
static uint32_t stacks_skipped[LW_SKIP_MAX];
static uint32_t stacks_nskipped;

bool lw_snapshot_has_stack(uint32_t id)
{
    if (id == 0 || id > stacks_max)
        return false;
    for (uint32_t k = 0; k < stacks_nskipped; k++)
        if (stacks_skipped[k] == id)
            return false;
    return true;
}

static void write_stacks(struct lw_out *o, struct lw_rec_totals *t)
{
    uint32_t n = lw_stack_count();
    stacks_max = n;
    stacks_nskipped = 0;
    for (uint32_t id = 1; id <= n && !o->err; id++) {
        struct lw_stack_info si;
        if (!lw_stack_info(id, &si)) {
            if (stacks_nskipped < LW_SKIP_MAX)
                stacks_skipped[stacks_nskipped++] = id;
            else if (stacks_max >= id)
                stacks_max = id - 1; /* too many in flight: no AGE from here on */
            continue;
        }
        struct lw_stack_totals st;
        lw_stack_read(id, &st); /* shared counters and every thread's tally */
        struct lw_rec_stack r = {.id = id, .kind = si.kind, .flags = si.flags, .nframes = si.nframes};
        r.free_bytes = st.free_bytes;
        r.free_objects = st.free_objects;
        r.alloc_bytes = st.alloc_bytes;
        r.alloc_objects = st.alloc_objects;
        if (si.kind == LW_KIND_HEAP) {
            t->heap_alloc_bytes += r.alloc_bytes;
            t->heap_alloc_objects += r.alloc_objects;
            t->heap_free_bytes += r.free_bytes;
            t->heap_free_objects += r.free_objects;
        }
        lw_out_begin(o, LW_REC_STACK, (uint32_t)(sizeof r + si.nframes * sizeof(uint64_t)));
        lw_out_bytes(o, &r, sizeof r);
        lw_out_bytes(o, si.frames, si.nframes * sizeof(uint64_t));
        lw_out_end(o);
    }
    if (lw_state.cfg.sample) {
        /* Sampling: stacks carry estimates; the totals are the exact
         * per-thread counts of every block (usable sizes), see sample.h. */
        struct lw_sample_totals st;
        lw_sample_totals(&st);
        t->heap_alloc_bytes = st.alloc_bytes;
        t->heap_alloc_objects = st.alloc_objects;
        t->heap_free_bytes = st.free_bytes;
        t->heap_free_objects = st.free_objects;
    }
    t->heap_inuse_bytes = t->heap_alloc_bytes - t->heap_free_bytes;
    t->heap_inuse_objects = t->heap_alloc_objects - t->heap_free_objects;
}

/* Resident bytes of a MADV_FREE range: pages the kernel has not taken back. */
static uint64_t resident_bytes(uint64_t start, uint64_t size)
{
    uint64_t page = LW_PAGE, res = 0;
    for (uint64_t a = start; a < start + size;) {
        uint64_t chunk = (start + size - a + page - 1) / page;
        if (chunk > MINCORE_VEC)
            chunk = MINCORE_VEC;
        if (mincore((void *)a, chunk * page, mincore_vec) != 0)
            break;
        for (uint64_t i = 0; i < chunk; i++)
            if (mincore_vec[i] & 1)
                res += page;
        a += chunk * page;
    }
    return res > size ? size : res;
}

struct region_walk {
    struct lw_out *o;
    struct lw_rec_totals *t;
};

static void region_one(const struct lw_region *r, void *arg)
{
    struct region_walk *w = arg;
    struct lw_totals_map *m = r->kind == LW_KIND_ALLOCATOR ? &w->t->allocator : &w->t->mmap;
    uint64_t size = r->end - r->start;
    struct lw_rec_region rec = {
        .start = r->start, .size = size, .stack = r->stack, .region_id = r->region_id,
        .kind = r->kind, .state = r->state, .flags = r->flags, .prot = r->prot,
    };
    m->mapped_bytes += size;
    if (r->state == LW_STATE_MADV_FREE) {
        rec.resident_bytes = resident_bytes(r->start, size);
        m->madv_free_bytes += size;
        m->released_resident_bytes += rec.resident_bytes;
    } else if (r->state == LW_STATE_MADV_DONTNEED) {
        m->madv_dontneed_bytes += size;
    }
    lw_out_begin(w->o, LW_REC_REGION, sizeof rec);
    lw_out_bytes(w->o, &rec, sizeof rec);
    lw_out_end(w->o);
}

static void write_regions(struct lw_out *o, struct lw_rec_totals *t)
{
    struct region_walk w = {o, t};
    struct lw_region_kind_stats st;
    lw_region_lock();
    lw_region_foreach_locked(region_one, &w);
    lw_region_stats_locked(LW_KIND_MMAP, &st);
    t->mmap.regions = st.regions_live;
    t->mmap.map_calls = st.map_calls;
    t->mmap.unmap_calls = st.unmap_calls;
    lw_region_stats_locked(LW_KIND_ALLOCATOR, &st);
    t->allocator.regions = st.regions_live;
    t->allocator.map_calls = st.map_calls;
    t->allocator.unmap_calls = st.unmap_calls;
    t->metadata_bytes += lw_region_memory_locked();
    lw_region_unlock();
}

/* ---- files ---- */

static void build_name(struct lw_strbuf *b, uint32_t trigger, uint32_t the_seq, bool tmp)
{
    /* The process's name (its main thread's), not this thread's: the writer
     * thread is called "leakwatch". */
    char comm[17] = {0};
    ssize_t n = lw_kernel_read_file("/proc/self/comm", comm, sizeof comm - 1);
    if (n > 0) {
        comm[n] = '\0';
        if (comm[n - 1] == '\n')
            comm[n - 1] = '\0';
    } else {
        prctl(PR_GET_NAME, comm, 0, 0, 0);
    }
    for (char *c = comm; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            *c = '_';
    lw_strbuf_puts(b, lw_state.cfg.output);
    lw_strbuf_puts(b, tmp ? "/." : "/");
    lw_strbuf_puts(b, comm[0] ? comm : "process");
    lw_strbuf_puts(b, ".");
    lw_strbuf_putu(b, (uint64_t)lw_state.pid);
    lw_strbuf_puts(b, ".");
    lw_strbuf_putu_width(b, the_seq, 6);
    lw_strbuf_puts(b, ".");
    lw_strbuf_puts(b, lw_snapshot_trigger_name(trigger));
    lw_strbuf_puts(b, LW_SNAP_SUFFIX);
    if (tmp)
        lw_strbuf_puts(b, ".tmp");
}

/* mkdir -p of the output directory; the default one is private (0700). */
static bool ensure_dir(void)
{
    if (dir_ready)
        return true;
    char path[PATH_MAX];
    struct lw_strbuf b = LW_STRBUF_INIT(path, sizeof path);
    lw_strbuf_puts(&b, lw_state.cfg.output);
    mode_t mode = lw_state.cfg.output_default ? 0700 : 0755;
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (lw_io.mkdir(path, mode) != 0 && errno != EEXIST)
                return false;
            *p = c;
            if (!c)
                break;
        }
    }
    dir_ready = true;
    return true;
}

static const char *errno_text(int e)
{
    switch (e) {
    case ENOSPC: return "no space left on device";
    case EDQUOT: return "disk quota exceeded";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case EROFS: return "read-only file system";
    case ENOENT: return "no such file or directory";
    case ENOTDIR: return "a path component is not a directory";
    case EIO: return "input/output error";
    case EMFILE: return "too many open files";
    case EEXIST: return "file exists";
    case EFBIG: return "file size limit reached (RLIMIT_FSIZE)";
    default: return "write failed";
    }
}

static void warn_path(const char *what, const char *path, int e)
{
    char msg[PATH_MAX + 128];
    struct lw_strbuf b = LW_STRBUF_INIT(msg, sizeof msg);
    lw_strbuf_puts(&b, what);
    lw_strbuf_puts(&b, path);
    lw_strbuf_puts(&b, ": ");
    lw_strbuf_puts(&b, errno_text(e));
    lw_strbuf_puts(&b, " (errno ");
    lw_strbuf_putu(&b, (uint64_t)e);
    lw_strbuf_puts(&b, "); the program runs on, this snapshot is lost");
    lw_log_warn(LW_WARN_WRITE, msg);
}

/* ---- 1.2 records of the trigger side: threads, ages, trigger ---- */

static void write_trig_records(struct lw_out *o, struct lw_rec_totals *t,
                               const struct lw_rec_trigger *ti)
{
    lw_threads_write(o, mincore_vec, MINCORE_VEC);
    lw_age_write(o);
    if (ti) {
        lw_out_begin(o, LW_REC_TRIGGER, sizeof *ti);
        lw_out_bytes(o, ti, sizeof *ti);
        lw_out_end(o);
    }
    t->metadata_bytes += lw_threads_memory_bytes() + lw_age_memory_bytes() +
                         lw_watch_memory_bytes();
}

/* ---- keep: at most cfg.keep snapshots of this process ----
 * The names this process wrote, oldest first, in a ring mapped at start
 * (address space; a page is touched per 64 names). A write that brings the
 * count over the limit deletes the oldest. */
#define KEEP_NAME 64
static char (*keep_ring)[KEEP_NAME];
static uint32_t keep_n, keep_head;

static bool keep_init(void)
{
    if (!lw_state.cfg.keep || keep_ring)
        return true;
    keep_ring = lw_sys_map((size_t)lw_state.cfg.keep * KEEP_NAME, true);
    if (!keep_ring)
        return false;
    /* Touch the first 64 KiB now (1024 names); beyond, a page per 64
     * snapshots is touched as they come. */
    uint32_t pre = lw_state.cfg.keep < 1024 ? lw_state.cfg.keep : 1024;
    memset(keep_ring, 0, (size_t)pre * KEEP_NAME);
    return true;
}

static void keep_note(const char *final)
{
    uint32_t cap = lw_state.cfg.keep;
    if (!cap || !keep_ring)
        return;
    const char *base = final;
    for (const char *c = final; *c; c++)
        if (*c == '/')
            base = c + 1;
    if (keep_n == cap) {
        char old[PATH_MAX];
        struct lw_strbuf b = LW_STRBUF_INIT(old, sizeof old);
        lw_strbuf_puts(&b, lw_state.cfg.output);
        lw_strbuf_puts(&b, "/");
        lw_strbuf_puts(&b, keep_ring[keep_head]);
        lw_io.unlink(old);
        keep_head = (keep_head + 1) % cap;
        keep_n--;
    }
    struct lw_strbuf nb = LW_STRBUF_INIT(keep_ring[(keep_head + keep_n) % cap], KEEP_NAME);
    lw_strbuf_puts(&nb, base);
    keep_n++;
}

static int write_snapshot(uint32_t trigger, const struct lw_rec_trigger *ti, char *path_out,
                          size_t path_len);

void lw_snapshot_reserve(void)
{
    if (LW_LIKELY(lw_stack_count() <= lw_age_capacity()))
        return;
    uint32_t free_word = 0;
    if (!atomic_compare_exchange_strong(&wlock.word, &free_word, 1))
        return; /* a write is running: it grows them when done */
    lw_age_grow();
    lw_mutex_unlock(&wlock);
}

int lw_snapshot_write(uint32_t trigger, char *path_out, size_t path_len)
{
    return write_snapshot(trigger, NULL, path_out, path_len);
}

int lw_snapshot_write_trigger(const struct lw_rec_trigger *t, char *path_out, size_t path_len)
{
    return write_snapshot(t->trigger, t, path_out, path_len);
}

static int write_snapshot(uint32_t trigger, const struct lw_rec_trigger *ti, char *path_out,
                          size_t path_len)
{
    int saved_errno = errno;
    if (!out_buf)
        return -1;
    /* Past RLIMIT_FSIZE a write raises SIGXFSZ, whose default kills the
     * program: blocked here, the write fails with EFBIG instead. */
    sigset_t xfsz, old_mask, pending;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &xfsz, &old_mask);
    sigpending(&pending);
    bool xfsz_was_pending = sigismember(&pending, SIGXFSZ);
    lw_mutex_lock(&wlock);
    /* The age scan reads the live table once per scratch-full of stacks.
     * Without a writer thread nothing grew the scratch ahead of need (1 M
     * blocks over 10 k stacks: 40 passes, 0.5 s). Grow it now, except for
     * a threshold snapshot: memory is short then, and the watcher and the
     * heap-threshold path grew it while it was not. A failed grow keeps
     * the small one: more passes, the same result. */
    if (trigger != LW_TRIGGER_THRESHOLD && trigger != LW_TRIGGER_HEAP_THRESHOLD)
        lw_age_grow();
    char tmp[PATH_MAX], final[PATH_MAX];
    struct lw_strbuf tb = LW_STRBUF_INIT(tmp, sizeof tmp);
    build_name(&tb, trigger, seq, true);
    int rc = -1;

    if (!ensure_dir()) {
        warn_path("cannot create the output directory ", lw_state.cfg.output, errno);
        goto out;
    }
    int fd = lw_io.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        if (errno == ENOENT)
            dir_ready = false; /* removed under us: recreate next time */
        warn_path("cannot write a snapshot in ", lw_state.cfg.output, errno);
        goto out;
    }
    open_fd = fd;
    struct lw_out o = {.fd = fd, .buf = out_buf, .cap = OUT_BUF};
    struct lw_snap_header h = {.major = LW_SNAP_MAJOR, .minor = LW_SNAP_MINOR,
                               .header_size = sizeof h};
    memcpy(h.magic, LW_SNAP_MAGIC, LW_SNAP_MAGIC_LEN);
    o.rec_left = sizeof h;
    lw_out_bytes(&o, &h, sizeof h);

    struct lw_rec_totals t;
    memset(&t, 0, sizeof t);
    write_process(&o, trigger, seq);
    lw_modules_write(&o);
    write_stacks(&o, &t);
    write_regions(&o, &t);
    lw_ksnap_write(&o);
    write_trig_records(&o, &t, ti);

    struct lw_table_stats ts;
    lw_table_stats(&ts);
    t.dropped_blocks = atomic_load(&lw_counters.dropped_blocks);
    t.dropped_bytes = atomic_load(&lw_counters.dropped_bytes);
    t.stale_blocks = atomic_load(&lw_counters.stale_blocks);
    t.reentrant_calls = atomic_load(&lw_counters.reentrant_calls);
    t.dropped_stacks = lw_stack_dropped();
    t.dropped_regions = lw_region_dropped();
    t.unwind_failures = lw_stack_unwind_failures();
    t.metadata_bytes += ts.bytes + lw_stack_memory_bytes() + lw_sample_memory_bytes() + reserve_len +
                        lw_ksnap_memory_bytes();
    t.live_table_slots = ts.slots;
    struct lw_scache_stats cs;
    lw_scache_stats(&cs);
    t.stack_cache_hits = cs.hits;
    t.stack_cache_misses = cs.misses;
    lw_out_begin(&o, LW_REC_TOTALS, sizeof t);
    lw_out_bytes(&o, &t, sizeof t);
    lw_out_end(&o);

    struct lw_rec_end e = {.records = o.records, .bytes = o.offset + o.len};
    lw_out_begin(&o, LW_REC_END, sizeof e);
    lw_out_bytes(&o, &e, sizeof e);
    lw_out_end(&o);
    out_flush(&o);

    open_fd = -1;
    int close_rc = lw_io.close(fd);
    if (!o.err && close_rc != 0) {
        o.err = true;
        o.err_no = errno;
    }
    if (o.err) {
        lw_io.unlink(tmp);
        warn_path("cannot write a snapshot in ", lw_state.cfg.output, o.err_no);
        goto out;
    }
    /* Never replace a file: an exec'd image of this pid restarts at 0. */
    for (int tries = 0; tries < RENAME_TRIES; tries++) {
        struct lw_strbuf fb = LW_STRBUF_INIT(final, sizeof final);
        build_name(&fb, trigger, seq, false);
        if (lw_io.rename_noreplace(tmp, final) == 0) {
            rc = 0;
            break;
        }
        if (errno != EEXIST) {
            warn_path("cannot rename a snapshot in ", lw_state.cfg.output, errno);
            break;
        }
        seq++;
    }
    if (rc != 0) {
        lw_io.unlink(tmp);
        goto out;
    }
    if (path_out && path_len) {
        struct lw_strbuf pb = LW_STRBUF_INIT(path_out, path_len);
        lw_strbuf_puts(&pb, final);
    }
    keep_note(final);
    seq++;
    atomic_fetch_add(&written, 1);
    atomic_fetch_add(&lw_state.epoch, 1);
out:
    lw_age_grow(); /* after the write: the snapshot never waits for memory */
    lw_mutex_unlock(&wlock);
    /* Our write's SIGXFSZ is pending now: take it, or unblocking kills. */
    sigpending(&pending);
    if (!xfsz_was_pending && sigismember(&pending, SIGXFSZ)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&xfsz, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    errno = saved_errno;
    return rc;
}

void lw_snapshot_fork_child(void)
{
    lw_mutex_reset(&wlock);
    lw_ksnap_fork_child();
    if (open_fd >= 0) {
        close(open_fd); /* the parent's file in progress: not ours */
        open_fd = -1;
    }
    seq = 0;
    keep_n = keep_head = 0; /* the parent's files are the parent's */
    atomic_store(&written, 0);
    atomic_store(&lw_state.epoch, 0);
}
