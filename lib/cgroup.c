/*
 * cgroup.c - memory cgroup discovery (see cgroup.h). Text parsing of
 * /proc/PID/cgroup, /proc/PID/mountinfo and limit files, on buffers the
 * caller owns. Nothing here allocates, uses stdio or takes a lock.
 */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "strbuf.h"

long lw_cgroup_read(const char *path, char *buf, size_t cap)
{
    if (cap == 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (long)got;
}

/* Copy the line's field [s, e) into out. */
static bool copy_field(const char *s, const char *e, char *out, size_t len)
{
    if ((size_t)(e - s) >= len)
        return false;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    return true;
}

static const char *line_end(const char *p)
{
    const char *e = strchr(p, '\n');
    return e ? e : p + strlen(p);
}

bool lw_cgroup_parse_self(const char *text, bool want_v2, char *path, size_t len)
{
    for (const char *p = text; *p;) {
        const char *e = line_end(p);
        const char *c1 = memchr(p, ':', (size_t)(e - p));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(e - c1 - 1)) : NULL;
        if (c2) {
            if (want_v2) {
                if (c1 - p == 1 && p[0] == '0' && c2 == c1 + 1)
                    return copy_field(c2 + 1, e, path, len);
            } else {
                /* the controller list, comma separated */
                for (const char *c = c1 + 1; c < c2;) {
                    const char *comma = memchr(c, ',', (size_t)(c2 - c));
                    const char *ce = comma ? comma : c2;
                    if (ce - c == 6 && !memcmp(c, "memory", 6))
                        return copy_field(c2 + 1, e, path, len);
                    c = ce + 1;
                }
            }
        }
        p = *e ? e + 1 : e;
    }
    return false;
}

/* The n-th space-separated field of [p, e): its start, *fe its end. */
static const char *field(const char *p, const char *e, int n, const char **fe)
{
    for (int i = 0; p < e; i++) {
        const char *s = p;
        while (p < e && *p != ' ')
            p++;
        if (i == n) {
            *fe = p;
            return s;
        }
        p++;
    }
    return NULL;
}

/* mountinfo escapes spaces and such as \040: undo in place. */
static void unescape(char *s)
{
    char *d = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
}

bool lw_cgroup_parse_mountinfo(const char *text, bool want_v2, char *mnt, size_t mnt_len,
                               char *root, size_t root_len)
{
    for (const char *p = text; *p;) {
        const char *e = line_end(p);
        /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS" */
        const char *sep = NULL;
        for (const char *q = p; q + 2 < e; q++)
            if (q[0] == ' ' && q[1] == '-' && q[2] == ' ') {
                sep = q + 3;
                break;
            }
        if (sep) {
            const char *fe = NULL, *te = NULL, *se = NULL;
            const char *fs = field(sep, e, 0, &fe);
            const char *so = field(sep, e, 2, &se);
            bool match = false;
            if (fs && want_v2)
                match = fe - fs == 7 && !memcmp(fs, "cgroup2", 7);
            else if (fs && so && fe - fs == 6 && !memcmp(fs, "cgroup", 6)) {
                for (const char *c = so; c < se;) {
                    const char *comma = memchr(c, ',', (size_t)(se - c));
                    const char *ce = comma ? comma : se;
                    if (ce - c == 6 && !memcmp(c, "memory", 6))
                        match = true;
                    c = ce + 1;
                }
            }
            const char *rs = field(p, e, 3, &te);
            const char *rte = NULL;
            const char *ms = field(p, e, 4, &rte);
            if (match && rs && ms && copy_field(rs, te, root, root_len) &&
                copy_field(ms, rte, mnt, mnt_len)) {
                unescape(root);
                unescape(mnt);
                return true;
            }
        }
        p = *e ? e + 1 : e;
    }
    return false;
}

bool lw_cgroup_parse_limit(const char *text, uint64_t *out)
{
    if (!strncmp(text, "max", 3)) {
        *out = 0;
        return true;
    }
    uint64_t v = 0;
    const char *p = text;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v >= LW_CGROUP_NO_LIMIT ? 0 : v;
    return true;
}

static bool join(char *out, size_t len, const char *a, const char *b, const char *c)
{
    struct lw_strbuf s = LW_STRBUF_INIT(out, len);
    lw_strbuf_puts(&s, a);
    lw_strbuf_puts(&s, b);
    lw_strbuf_puts(&s, c);
    return s.len + 1 < len;
}

bool lw_cgroup_find(const char *proc_dir, struct lw_cgroup *cg, char *buf, size_t cap)
{
    char path[PATH_MAX], cgpath[PATH_MAX], mnt[PATH_MAX], root[PATH_MAX], dir[PATH_MAX];
    memset(cg, 0, sizeof *cg);
    for (int v = 1; v <= 2; v++) {
        bool v2 = v == 2;
        if (!join(path, sizeof path, proc_dir, "/cgroup", "") || lw_cgroup_read(path, buf, cap) < 0 ||
            !lw_cgroup_parse_self(buf, v2, cgpath, sizeof cgpath))
            continue;
        if (!join(path, sizeof path, proc_dir, "/mountinfo", "") ||
            lw_cgroup_read(path, buf, cap) < 0 ||
            !lw_cgroup_parse_mountinfo(buf, v2, mnt, sizeof mnt, root, sizeof root))
            continue;
        /* The cgroup path is relative to the hierarchy's root; the mount
         * shows the part below its own root (a container sees "/"). */
        const char *rel = cgpath;
        size_t rl = strlen(root);
        if (strcmp(root, "/") && !strncmp(cgpath, root, rl) && (cgpath[rl] == '/' || !cgpath[rl]))
            rel = cgpath + rl;
        if (!join(dir, sizeof dir, mnt, strcmp(rel, "/") ? rel : "", ""))
            continue;
        const char *usage_name = v2 ? "/memory.current" : "/memory.usage_in_bytes";
        const char *limit_name = v2 ? "/memory.max" : "/memory.limit_in_bytes";
        if (!join(path, sizeof path, dir, usage_name, "") || access(path, R_OK) != 0)
            continue; /* v2 mounted without the memory controller (hybrid hosts) */
        cg->version = v;
        join(cg->dir, sizeof cg->dir, dir, "", "");
        join(cg->usage, sizeof cg->usage, path, "", "");
        if (!v2)
            join(cg->control, sizeof cg->control, dir, "/cgroup.event_control", "");
        /* Walk up to the mount: the tightest limit wins. */
        size_t ml = strlen(mnt);
        for (;;) {
            uint64_t lim;
            if (join(path, sizeof path, dir, limit_name, "") &&
                lw_cgroup_read(path, buf, cap) > 0 && lw_cgroup_parse_limit(buf, &lim) && lim &&
                (!cg->limit || lim < cg->limit)) {
                cg->limit = lim;
                join(cg->dir, sizeof cg->dir, dir, "", "");
                join(cg->usage, sizeof cg->usage, dir, usage_name, "");
                if (!v2)
                    join(cg->control, sizeof cg->control, dir, "/cgroup.event_control", "");
            }
            if (strlen(dir) <= ml)
                break;
            char *slash = strrchr(dir, '/');
            if (!slash || (size_t)(slash - dir) < ml)
                break;
            *slash = '\0';
        }
        return true;
    }
    return false;
}
