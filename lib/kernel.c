/*
 * kernel.c - readers of /proc and memory-cgroup text, and the page cache
 * of a process's files (see kernel.h). Runs inside the host (snapshot
 * writer) and in `leakwatch inspect`: it never allocates, never uses stdio
 * and maps file windows with the raw mmap system call, so the library's
 * own hooks never see them. Bounded work everywhere: long lines are
 * skipped, sets have a fixed capacity, mincore stops at max_bytes.
 */
#include "kernel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "strbuf.h"

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

bool lw_pc_force_mincore;
static bool no_cachestat; /* ENOSYS seen once: the kernel predates 6.5 */

/* ---- raw file reading ---- */

static int open_ro(const char *path, int extra)
{
    return (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | extra, 0);
}

ssize_t lw_kernel_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open_ro(path, 0);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return (ssize_t)got;
}

typedef void (*line_fn)(const char *line, size_t len, void *arg);

/* Call fn for every line of the file (without the newline), reading it in
 * pieces through buf; lines longer than cap are skipped. */
static bool read_lines(const char *path, char *buf, size_t cap, line_fn fn, void *arg)
{
    int fd = open_ro(path, 0);
    if (fd < 0)
        return false;
    size_t have = 0;
    bool skipping = false, ok = true;
    for (;;) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ok = false;
            break;
        }
        bool eof = n == 0;
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] != '\n')
                continue;
            if (!skipping)
                fn(buf + start, i - start, arg);
            skipping = false;
            start = i + 1;
        }
        if (eof) {
            if (start < have && !skipping)
                fn(buf + start, have - start, arg);
            break;
        }
        if (start == 0 && have == cap) { /* one line fills the buffer: drop it */
            skipping = true;
            have = 0;
            continue;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
    }
    close(fd);
    return ok;
}

static void path2(char *out, size_t cap, const char *a, const char *b)
{
    struct lw_strbuf s = LW_STRBUF_INIT(out, cap);
    lw_strbuf_puts(&s, a);
    lw_strbuf_puts(&s, b);
}

/* ---- key/value text ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

size_t lw_kernel_parse_fields(const char *text, size_t len, const struct lw_kfield *f, size_t n)
{
    size_t found = 0;
    size_t i = 0;
    while (i < len) {
        size_t ls = i;
        while (i < len && text[i] != '\n')
            i++;
        size_t le = i++;
        size_t k = ls;
        while (k < le && text[k] != ':' && !is_space(text[k]))
            k++;
        size_t klen = k - ls;
        if (k < le && text[k] == ':')
            k++;
        while (k < le && is_space(text[k]))
            k++;
        if (k == le || text[k] < '0' || text[k] > '9')
            continue;
        uint64_t v = 0;
        bool overflow = false;
        while (k < le && text[k] >= '0' && text[k] <= '9') {
            uint64_t d = (uint64_t)(text[k++] - '0');
            if (v > (UINT64_MAX - d) / 10)
                overflow = true;
            v = v * 10 + d;
        }
        if (overflow)
            continue;
        while (k < le && is_space(text[k]))
            k++;
        if (le - k >= 2 && text[k] == 'k' && text[k + 1] == 'B')
            v = v > UINT64_MAX / 1024 ? LW_VALUE_NA : v * 1024;
        for (size_t j = 0; j < n; j++) {
            if (strlen(f[j].key) == klen && !memcmp(f[j].key, text + ls, klen)) {
                if (*f[j].out == LW_VALUE_NA)
                    found++;
                *f[j].out = v;
            }
        }
    }
    return found;
}

/* ---- /proc/PID smaps_rollup + status ---- */

void lw_kernel_proc_parse(const char *rollup, size_t rollup_len, const char *status,
                          size_t status_len, struct lw_rec_kernel_proc *p)
{
    memset(p, 0, sizeof *p);
    p->rss_bytes = p->anon_bytes = p->file_bytes = p->shmem_bytes = LW_VALUE_NA;
    p->lazyfree_bytes = p->anon_huge_bytes = p->swap_bytes = p->hwm_bytes = LW_VALUE_NA;
    uint64_t vmrss = LW_VALUE_NA, rssanon = LW_VALUE_NA, vmswap = LW_VALUE_NA;
    if (status) {
        const struct lw_kfield sf[] = {
            {"VmRSS", &vmrss},          {"RssAnon", &rssanon}, {"RssFile", &p->file_bytes},
            {"RssShmem", &p->shmem_bytes}, {"VmSwap", &vmswap}, {"VmHWM", &p->hwm_bytes},
        };
        lw_kernel_parse_fields(status, status_len, sf, sizeof sf / sizeof sf[0]);
    }
    if (rollup) {
        const struct lw_kfield rf[] = {
            {"Rss", &p->rss_bytes},           {"Anonymous", &p->anon_bytes},
            {"LazyFree", &p->lazyfree_bytes}, {"AnonHugePages", &p->anon_huge_bytes},
            {"Swap", &p->swap_bytes},
        };
        lw_kernel_parse_fields(rollup, rollup_len, rf, sizeof rf / sizeof rf[0]);
    }
    if (p->rss_bytes == LW_VALUE_NA)
        p->rss_bytes = vmrss;
    if (p->anon_bytes == LW_VALUE_NA)
        p->anon_bytes = rssanon;
    if (p->swap_bytes == LW_VALUE_NA)
        p->swap_bytes = vmswap;
}

int lw_kernel_read_proc(const char *procdir, struct lw_rec_kernel_proc *p, char *buf, size_t cap)
{
    char path[256];
    size_t half = cap / 2;
    path2(path, sizeof path, procdir, "/smaps_rollup");
    ssize_t rl = lw_kernel_read_file(path, buf, half);
    path2(path, sizeof path, procdir, "/status");
    ssize_t sl = lw_kernel_read_file(path, buf + half, cap - half);
    lw_kernel_proc_parse(rl >= 0 ? buf : NULL, rl >= 0 ? (size_t)rl : 0,
                         sl >= 0 ? buf + half : NULL, sl >= 0 ? (size_t)sl : 0, p);
    return (rl >= 0 ? 1 : 0) | (sl >= 0 ? 2 : 0);
}

/* ---- finding the memory cgroup ---- */

struct cg_find {
    char v1path[512], v2path[512];
    bool have_v1, have_v2;
    char v1dir[1024], v2dir[1024];
    size_t v1mlen, v2mlen; /* bytes of v1dir / v2dir that are prefix + mount point */
    bool v1mount, v2mount;
    const char *prefix;
};

/* Does the comma-separated list s[0..n) contain word? */
static bool has_token(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    size_t i = 0;
    while (i <= n) {
        size_t st = i;
        while (i < n && s[i] != ',')
            i++;
        if (i - st == wl && !memcmp(s + st, word, wl))
            return true;
        i++;
    }
    return false;
}

static void cgroup_line(const char *l, size_t len, void *arg)
{
    struct cg_find *f = arg;
    const char *c1 = memchr(l, ':', len);
    if (!c1)
        return;
    const char *c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - l));
    if (!c2)
        return;
    size_t clen = (size_t)(c2 - c1 - 1);
    size_t plen = len - (size_t)(c2 + 1 - l);
    if (plen == 0 || plen >= sizeof f->v1path)
        return;
    if (clen > 0 && has_token(c1 + 1, clen, "memory")) {
        memcpy(f->v1path, c2 + 1, plen);
        f->v1path[plen] = '\0';
        f->have_v1 = true;
    } else if (clen == 0 && c1 - l == 1 && l[0] == '0') {
        memcpy(f->v2path, c2 + 1, plen);
        f->v2path[plen] = '\0';
        f->have_v2 = true;
    }
}

static bool is_octal(char c)
{
    return c >= '0' && c <= '7';
}

/* Copy a mountinfo field, turning \NNN octal escapes back into bytes. */
static void unescape(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '\\' && i + 3 < n && is_octal(s[i + 1]) && is_octal(s[i + 2]) &&
            is_octal(s[i + 3])) {
            out[o++] = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
            i += 3;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

/* dir = prefix + mountpoint + (cgpath relative to the mount's root).
 * Returns the length of prefix + mountpoint in dir. */
static size_t join_cgroup(char *dir, size_t cap, const char *prefix, const char *mnt,
                          const char *root, const char *cgpath)
{
    const char *rel = cgpath;
    size_t rl = strlen(root);
    if (strcmp(root, "/") && !strncmp(cgpath, root, rl) && (cgpath[rl] == '/' || !cgpath[rl]))
        rel = cgpath + rl;
    struct lw_strbuf b = LW_STRBUF_INIT(dir, cap);
    lw_strbuf_puts(&b, prefix);
    lw_strbuf_puts(&b, mnt);
    size_t mlen = b.len;
    if (rel[0] && strcmp(rel, "/")) {
        if (b.len && dir[b.len - 1] == '/' && rel[0] == '/')
            rel++;
        lw_strbuf_puts(&b, rel);
    }
    return mlen;
}

static void mountinfo_line(const char *l, size_t len, void *arg)
{
    struct cg_find *f = arg;
    const char *fld[6];
    size_t fl[6];
    size_t nf = 0, i = 0;
    while (nf < 6 && i < len) { /* id parent maj:min root mountpoint options */
        while (i < len && l[i] == ' ')
            i++;
        size_t st = i;
        while (i < len && l[i] != ' ')
            i++;
        fld[nf] = l + st;
        fl[nf++] = i - st;
    }
    if (nf < 6)
        return;
    const char *sep = NULL; /* " - " ends the optional fields */
    for (size_t k = i; k + 2 < len; k++)
        if (l[k] == ' ' && l[k + 1] == '-' && l[k + 2] == ' ') {
            sep = l + k + 3;
            break;
        }
    if (!sep)
        return;
    size_t rest = len - (size_t)(sep - l);
    const char *sp = memchr(sep, ' ', rest);
    if (!sp)
        return;
    size_t tlen = (size_t)(sp - sep);
    const char *src = sp + 1;
    const char *sp2 = memchr(src, ' ', len - (size_t)(src - l));
    if (!sp2)
        return;
    const char *sopts = sp2 + 1;
    size_t slen = len - (size_t)(sopts - l);
    char root[512], mnt[512];
    unescape(root, sizeof root, fld[3], fl[3]);
    unescape(mnt, sizeof mnt, fld[4], fl[4]);
    if (tlen == 6 && !memcmp(sep, "cgroup", 6) && f->have_v1 && !f->v1mount &&
        has_token(sopts, slen, "memory")) {
        f->v1mlen = join_cgroup(f->v1dir, sizeof f->v1dir, f->prefix, mnt, root, f->v1path);
        f->v1mount = true;
    } else if (tlen == 7 && !memcmp(sep, "cgroup2", 7) && f->have_v2 && !f->v2mount) {
        f->v2mlen = join_cgroup(f->v2dir, sizeof f->v2dir, f->prefix, mnt, root, f->v2path);
        f->v2mount = true;
    }
}

bool lw_kernel_cgroup_find(const char *procdir, const char *root_prefix, struct lw_cgroup_loc *loc,
                           char *buf, size_t cap)
{
    /* The finder's state (3 KiB) lives at the start of the caller's
     * scratch: off a possibly small stack, and safe when two threads look
     * at once (the writer and the threshold watcher). */
    uintptr_t a = ((uintptr_t)buf + 15u) & ~(uintptr_t)15u;
    size_t skip = (size_t)(a - (uintptr_t)buf) + sizeof(struct cg_find);
    memset(loc, 0, sizeof *loc);
    if (cap < skip + 1024)
        return false;
    struct cg_find *f = (struct cg_find *)a;
    buf += skip;
    cap -= skip;
    char path[256], probe[1100];
    memset(f, 0, sizeof *f);
    f->prefix = root_prefix ? root_prefix : "";
    path2(path, sizeof path, procdir, "/cgroup");
    if (!read_lines(path, buf, cap, cgroup_line, f) || (!f->have_v1 && !f->have_v2))
        return false;
    path2(path, sizeof path, procdir, "/mountinfo");
    if (!read_lines(path, buf, cap, mountinfo_line, f))
        return false;
    for (int v = 1; v <= 2; v++) {
        bool mounted = v == 1 ? f->v1mount : f->v2mount;
        const char *dir = v == 1 ? f->v1dir : f->v2dir;
        if (!mounted)
            continue;
        /* Hybrid hosts mount cgroup2 without the memory controller. */
        path2(probe, sizeof probe, dir, v == 1 ? "/memory.usage_in_bytes" : "/memory.current");
        if (access(probe, R_OK) != 0)
            continue;
        loc->version = v;
        path2(loc->dir, sizeof loc->dir, dir, "");
        path2(loc->name, sizeof loc->name, v == 1 ? f->v1path : f->v2path, "");
        size_t mlen = v == 1 ? f->v1mlen : f->v2mlen;
        loc->mount_len = mlen < strlen(loc->dir) ? mlen : strlen(loc->dir);
        return true;
    }
    return false;
}

static uint64_t read_u64_file(const char *dir, const char *name, char *buf, size_t cap,
                              bool *is_max);

uint64_t lw_kernel_cgroup_limit(const struct lw_cgroup_loc *loc, char *lim_dir, size_t dir_cap,
                                char *buf, size_t cap)
{
    char dir[sizeof loc->dir];
    uint64_t best = 0;
    path2(dir, sizeof dir, loc->dir, "");
    path2(lim_dir, dir_cap, loc->dir, "");
    const char *name = loc->version == 2 ? "/memory.max" : "/memory.limit_in_bytes";
    for (;;) {
        uint64_t lim = read_u64_file(dir, name, buf, cap, NULL);
        if (lim != LW_VALUE_NA && lim < LW_CGROUP_NO_LIMIT && (!best || lim < best)) {
            best = lim;
            path2(lim_dir, dir_cap, dir, "");
        }
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= loc->mount_len || !slash || (size_t)(slash - dir) < loc->mount_len)
            break;
        *slash = '\0';
    }
    return best;
}

bool lw_cgroup_find(const char *procdir, struct lw_cgroup *cg, char *buf, size_t cap)
{
    struct lw_cgroup_loc loc; /* 1.5 KiB: callers run on full-size stacks (init, tools) */
    memset(cg, 0, sizeof *cg);
    if (!lw_kernel_cgroup_find(procdir, "", &loc, buf, cap))
        return false;
    cg->version = loc.version;
    cg->limit = lw_kernel_cgroup_limit(&loc, cg->dir, sizeof cg->dir, buf, cap);
    path2(cg->usage, sizeof cg->usage, cg->dir,
          loc.version == 2 ? "/memory.current" : "/memory.usage_in_bytes");
    if (loc.version == 1)
        path2(cg->control, sizeof cg->control, cg->dir, "/cgroup.event_control");
    return true;
}

/* ---- reading a memory cgroup ---- */

static uint64_t read_u64_file(const char *dir, const char *name, char *buf, size_t cap,
                              bool *is_max)
{
    char path[1100];
    path2(path, sizeof path, dir, name);
    ssize_t n = lw_kernel_read_file(path, buf, cap < 64 ? cap : 64);
    if (is_max)
        *is_max = false;
    if (n <= 0)
        return LW_VALUE_NA;
    if (is_max && n >= 3 && !memcmp(buf, "max", 3)) {
        *is_max = true;
        return LW_VALUE_NA;
    }
    uint64_t v = 0;
    ssize_t i = 0;
    if (buf[0] < '0' || buf[0] > '9')
        return LW_VALUE_NA;
    for (; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(buf[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return LW_VALUE_NA;
        v = v * 10 + d;
    }
    return v;
}

static void read_fields(const char *dir, const char *name, char *buf, size_t cap,
                        const struct lw_kfield *f, size_t n)
{
    char path[1100];
    path2(path, sizeof path, dir, name);
    ssize_t len = lw_kernel_read_file(path, buf, cap);
    if (len > 0)
        lw_kernel_parse_fields(buf, (size_t)len, f, n);
}

bool lw_kernel_cgroup_read(const struct lw_cgroup_loc *loc, struct lw_rec_kernel_cgroup *c,
                           char *buf, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->version = (uint32_t)loc->version;
    c->usage_bytes = c->limit_bytes = c->anon_bytes = c->file_bytes = LW_VALUE_NA;
    c->active_file_bytes = c->inactive_file_bytes = c->shmem_bytes = c->dirty_bytes = LW_VALUE_NA;
    c->limit_events = c->oom_events = c->oom_kill_events = LW_VALUE_NA;
    bool is_max = false;
    if (loc->version == 1) {
        c->usage_bytes = read_u64_file(loc->dir, "/memory.usage_in_bytes", buf, cap, NULL);
        c->limit_bytes = read_u64_file(loc->dir, "/memory.limit_in_bytes", buf, cap, NULL);
        if (c->limit_bytes != LW_VALUE_NA && c->limit_bytes >= (1ull << 62)) {
            c->limit_bytes = LW_VALUE_NA; /* PAGE_COUNTER_MAX pages: no limit */
            c->flags |= LW_CGROUP_UNLIMITED;
        }
        c->limit_events = read_u64_file(loc->dir, "/memory.failcnt", buf, cap, NULL);
        const struct lw_kfield st[] = {
            {"total_rss", &c->anon_bytes},
            {"total_cache", &c->file_bytes},
            {"total_active_file", &c->active_file_bytes},
            {"total_inactive_file", &c->inactive_file_bytes},
            {"total_shmem", &c->shmem_bytes},
            {"total_dirty", &c->dirty_bytes},
        };
        read_fields(loc->dir, "/memory.stat", buf, cap, st, sizeof st / sizeof st[0]);
        const struct lw_kfield oc[] = {{"oom_kill", &c->oom_kill_events}};
        read_fields(loc->dir, "/memory.oom_control", buf, cap, oc, 1);
    } else {
        c->usage_bytes = read_u64_file(loc->dir, "/memory.current", buf, cap, NULL);
        c->limit_bytes = read_u64_file(loc->dir, "/memory.max", buf, cap, &is_max);
        if (is_max)
            c->flags |= LW_CGROUP_UNLIMITED;
        const struct lw_kfield st[] = {
            {"anon", &c->anon_bytes},
            {"file", &c->file_bytes},
            {"active_file", &c->active_file_bytes},
            {"inactive_file", &c->inactive_file_bytes},
            {"shmem", &c->shmem_bytes},
            {"file_dirty", &c->dirty_bytes},
        };
        read_fields(loc->dir, "/memory.stat", buf, cap, st, sizeof st / sizeof st[0]);
        const struct lw_kfield ev[] = {
            {"max", &c->limit_events}, {"oom", &c->oom_events}, {"oom_kill", &c->oom_kill_events},
        };
        read_fields(loc->dir, "/memory.events", buf, cap, ev, sizeof ev / sizeof ev[0]);
    }
    return c->usage_bytes != LW_VALUE_NA;
}

/* ---- page cache by file ---- */

static struct lw_pc_entry *pc_find(struct lw_pc_set *s, uint64_t dev, uint64_t ino)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].dev == dev && s->e[i].ino == ino)
            return &s->e[i];
    return NULL;
}

static struct lw_pc_entry *pc_new(struct lw_pc_set *s, uint64_t dev, uint64_t ino,
                                  const char *path, size_t plen)
{
    if (s->n >= s->cap) {
        s->dropped++;
        return NULL;
    }
    struct lw_pc_entry *e = &s->e[s->n++];
    memset(e, 0, sizeof *e);
    e->dev = dev;
    e->ino = ino;
    e->cached = e->dirty = e->writeback = e->size = LW_VALUE_NA;
    if (plen >= sizeof e->path)
        plen = sizeof e->path - 1;
    memcpy(e->path, path, plen);
    e->path[plen] = '\0';
    e->path_len = (uint16_t)plen;
    return e;
}

bool lw_pc_add_open(struct lw_pc_set *s, const char *procdir, char *buf, size_t cap)
{
    char dpath[256];
    path2(dpath, sizeof dpath, procdir, "/fd");
    int dfd = open_ro(dpath, O_DIRECTORY);
    if (dfd < 0)
        return false;
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, cap);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;
            char link[sizeof ((struct lw_pc_entry *)0)->via];
            char target[LW_PC_PATH + 16];
            struct lw_strbuf b = LW_STRBUF_INIT(link, sizeof link);
            lw_strbuf_puts(&b, dpath);
            lw_strbuf_puts(&b, "/");
            lw_strbuf_puts(&b, d->d_name);
            if (b.overflow)
                continue;
            ssize_t tl = readlink(link, target, sizeof target - 1);
            if (tl <= 0 || target[0] != '/')
                continue; /* sockets, pipes, anon inodes */
            struct stat st;
            if (stat(link, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            struct lw_pc_entry *e = pc_find(s, st.st_dev, st.st_ino);
            if (!e)
                e = pc_new(s, st.st_dev, st.st_ino, target, (size_t)tl);
            if (!e)
                continue;
            e->flags |= LW_PC_OPEN;
            e->flags &= ~LW_PC_SEEN;
            if (!e->via[0])
                memcpy(e->via, link, b.len + 1);
        }
    }
    close(dfd);
    return true;
}

struct maps_walk {
    struct lw_pc_set *s;
};

static uint64_t hex_u64(const char *s, size_t n, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            break;
        v = (v << 4) | (uint64_t)d;
    }
    *used = i;
    return v;
}

static void maps_line(const char *l, size_t len, void *arg)
{
    struct maps_walk *w = arg;
    /* addr perms offset dev inode path */
    size_t i = 0, f = 0, dev_at = 0, ino_at = 0;
    while (f < 5 && i < len) {
        while (i < len && l[i] == ' ')
            i++;
        if (f == 3)
            dev_at = i;
        if (f == 4)
            ino_at = i;
        while (i < len && l[i] != ' ')
            i++;
        f++;
    }
    while (i < len && l[i] == ' ')
        i++;
    if (f < 5 || i >= len || l[i] != '/')
        return;
    size_t used;
    uint64_t maj = hex_u64(l + dev_at, len - dev_at, &used);
    if (l[dev_at + used] != ':')
        return;
    uint64_t min = hex_u64(l + dev_at + used + 1, len - dev_at - used - 1, &used);
    uint64_t ino = 0;
    for (size_t k = ino_at; k < len && l[k] >= '0' && l[k] <= '9'; k++)
        ino = ino * 10 + (uint64_t)(l[k] - '0');
    if (ino == 0)
        return;
    uint64_t dev = makedev((unsigned)maj, (unsigned)min);
    struct lw_pc_entry *e = pc_find(w->s, dev, ino);
    if (!e)
        e = pc_new(w->s, dev, ino, l + i, len - i);
    if (e) {
        e->flags |= LW_PC_MAPPED;
        e->flags &= ~LW_PC_SEEN;
    }
}

bool lw_pc_add_mapped(struct lw_pc_set *s, const char *procdir, char *buf, size_t cap)
{
    char path[256];
    struct maps_walk w = {s};
    path2(path, sizeof path, procdir, "/maps");
    return read_lines(path, buf, cap, maps_line, &w);
}

void lw_pc_add_seen(struct lw_pc_set *s, const char *path, uint64_t dev, uint64_t ino)
{
    struct stat st;
    if (pc_find(s, dev, ino))
        return;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != dev || st.st_ino != ino)
        return; /* gone, or the name now belongs to another file (a rotated log) */
    struct lw_pc_entry *e = pc_new(s, dev, ino, path, strlen(path));
    if (e)
        e->flags |= LW_PC_SEEN;
}

struct lw_cachestat_range {
    uint64_t off, len;
};
struct lw_cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

static void measure_mincore(struct lw_pc_entry *e, int fd, unsigned char *vec, size_t veccap,
                            uint64_t max_bytes, uint64_t page)
{
    uint64_t end = e->size < max_bytes ? e->size : max_bytes;
    uint64_t res = 0;
    uint64_t window = (uint64_t)veccap * page;
    for (uint64_t off = 0; off < end; off += window) {
        uint64_t n = end - off < window ? end - off : window;
        long m = syscall(SYS_mmap, NULL, n, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, off);
        if (m == -1)
            return; /* leave it unmeasured */
        if (syscall(SYS_mincore, m, n, vec) == 0) {
            uint64_t pages = (n + page - 1) / page;
            for (uint64_t k = 0; k < pages; k++)
                if (vec[k] & 1)
                    res += page;
        }
        syscall(SYS_munmap, m, n);
    }
    e->cached = res > e->size ? e->size : res;
    e->flags |= LW_PC_MINCORE;
    if (e->size > max_bytes)
        e->flags |= LW_PC_PARTIAL;
    e->measured = true;
}

static void measure_one(struct lw_pc_entry *e, unsigned char *vec, size_t veccap,
                        uint64_t max_bytes, uint64_t page)
{
    int fd = -1;
    if (e->via[0])
        fd = open_ro(e->via, O_NONBLOCK);
    if (fd < 0 && (size_t)e->path_len + 1 < sizeof e->path)
        fd = open_ro(e->path, O_NONBLOCK);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != e->dev || st.st_ino != e->ino) {
        close(fd);
        return;
    }
    e->size = (uint64_t)st.st_size;
    if (!no_cachestat && !lw_pc_force_mincore) {
        struct lw_cachestat_range r = {0, 0};
        struct lw_cachestat cs;
        memset(&cs, 0, sizeof cs);
        if (syscall(SYS_cachestat, fd, &r, &cs, 0) == 0) {
            e->cached = cs.nr_cache * page;
            e->dirty = cs.nr_dirty * page;
            e->writeback = cs.nr_writeback * page;
            e->measured = true;
            close(fd);
            return;
        }
        if (errno == ENOSYS)
            no_cachestat = true;
    }
    measure_mincore(e, fd, vec, veccap, max_bytes, page);
    close(fd);
}

void lw_pc_measure(struct lw_pc_set *s, unsigned char *vec, size_t veccap, uint64_t max_bytes)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < s->n; i++)
        measure_one(&s->e[i], vec, veccap, max_bytes, page);
    /* Unmeasured entries sink to the end; then largest cached first. */
    for (size_t i = 1; i < s->n; i++) {
        for (size_t j = i; j > 0; j--) {
            struct lw_pc_entry *a = &s->e[j - 1], *b = &s->e[j];
            uint64_t ca = a->measured ? a->cached : 0, cb = b->measured ? b->cached : 0;
            bool swap = (b->measured && !a->measured) || (a->measured == b->measured && cb > ca);
            if (!swap)
                break;
            struct lw_pc_entry t;
            memcpy(&t, a, sizeof t);
            memcpy(a, b, sizeof t);
            memcpy(b, &t, sizeof t);
        }
    }
}
