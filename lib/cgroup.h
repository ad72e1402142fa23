/*
 * cgroup.h - find the memory cgroup a process is in, and the limit the OOM
 * killer applies to it: /proc/PID/cgroup names the cgroup, mountinfo where
 * its hierarchy is mounted; the tightest memory limit on the way up to the
 * mount is the one that counts. cgroup v1 (memory controller) and v2
 * (memory.current present). Shared by the library (the threshold watcher)
 * and `leakwatch run` (refusing a percentage with no limit). Never
 * allocates, never uses stdio; the caller passes a scratch buffer.
 */
#ifndef LW_CGROUP_H
#define LW_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lw_cgroup {
    int version;               /* 0: no memory cgroup found; 1 or 2 */
    char dir[PATH_MAX];        /* the cgroup whose limit is the tightest (own one if none) */
    char usage[PATH_MAX];      /* its usage file: memory.usage_in_bytes / memory.current */
    char control[PATH_MAX];    /* v1: its cgroup.event_control; else "" */
    uint64_t limit;            /* bytes; 0: no limit (or one above LW_CGROUP_NO_LIMIT) */
};

/* Limits at or above this are "no limit" (v1 writes 2^63 - page for none). */
#define LW_CGROUP_NO_LIMIT (UINT64_C(1) << 60)

/* Find the memory cgroup of the process whose /proc directory is proc_dir
 * ("/proc/self", "/proc/1234"). buf: scratch of cap bytes (mountinfo is read
 * into it; 64 KiB is plenty). Returns true if one was found (*cg filled). */
bool lw_cgroup_find(const char *proc_dir, struct lw_cgroup *cg, char *buf, size_t cap);

/* Pure parsers, for tests. From /proc/PID/cgroup text: the memory
 * controller's path (v1 line "N:...memory...:/path"), or the v2 path
 * ("0::/path") when want_v2. */
bool lw_cgroup_parse_self(const char *text, bool want_v2, char *path, size_t len);
/* From mountinfo text: the mount point and root of the v1 memory hierarchy
 * (want_v2 false) or of cgroup2. */
bool lw_cgroup_parse_mountinfo(const char *text, bool want_v2, char *mnt, size_t mnt_len,
                               char *root, size_t root_len);
/* Parse a limit file's text ("max\n", "9223372036854771712\n", "134217728\n"):
 * bytes, 0 for no limit; false if unreadable text. */
bool lw_cgroup_parse_limit(const char *text, uint64_t *out);

/* Read a small text file into buf (NUL-terminated); bytes read or -1. */
long lw_cgroup_read(const char *path, char *buf, size_t cap);

#endif
