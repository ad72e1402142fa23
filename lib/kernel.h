/*
 * kernel.h - the kernel's view of a process: /proc smaps_rollup and status,
 * its memory cgroup (v1 or v2, found through /proc/PID/cgroup and
 * mountinfo), and the page cache held by the files it has open or mapped.
 * Shared by the preloaded library (snapshot writer, on /proc/self) and by
 * `leakwatch inspect` (on /proc/PID). Never allocates, never uses stdio:
 * raw open/read into the caller's buffers. Parsers work on text, so tests
 * feed canned files; every value not found stays LW_VALUE_NA.
 */
#ifndef LW_KERNEL_H
#define LW_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../include/lw_format.h"

/* One "key value [kB]" field wanted from a text file. */
struct lw_kfield {
    const char *key;
    uint64_t *out; /* set when the key is found; left alone otherwise */
};

/* Parse lines "Key: 123 kB" (smaps_rollup, status) or "key 123" (cgroup
 * memory.stat, memory.events, oom_control) in text[0..len). A "kB" unit
 * multiplies by 1024. Returns how many of the fields were found. */
size_t lw_kernel_parse_fields(const char *text, size_t len, const struct lw_kfield *f, size_t n);

/* Fill *p from smaps_rollup and status text (either may be NULL: not
 * readable). Everything not found is LW_VALUE_NA. */
void lw_kernel_proc_parse(const char *rollup, size_t rollup_len, const char *status,
                          size_t status_len, struct lw_rec_kernel_proc *p);

/* Read procdir/smaps_rollup and procdir/status (procdir: "/proc/self",
 * "/proc/1234" or a test directory) using buf[cap] as scratch. Returns a
 * bitmask: 1 smaps_rollup read, 2 status read (0: nothing; *p all NA). */
int lw_kernel_read_proc(const char *procdir, struct lw_rec_kernel_proc *p, char *buf, size_t cap);

/* A whole (small) file into buf[0..cap), without stdio and without an
 * open the hooks could see: bytes read, or -1 if it cannot be opened or
 * read. Used by the library's own /proc reads too. */
ssize_t lw_kernel_read_file(const char *path, char *buf, size_t cap);

/* Where a process's memory cgroup lives. */
struct lw_cgroup_loc {
    int version;     /* 1 or 2; 0: none found */
    char dir[1024];  /* directory holding memory.* (root_prefix + mount + path) */
    char name[512];  /* the cgroup's path in its hierarchy, "/" for the root */
    size_t mount_len; /* bytes of dir that are root_prefix + the hierarchy's mount point */
};

/* Find the memory cgroup from procdir/cgroup and procdir/mountinfo; the
 * mount point is prefixed with root_prefix ("" normally; a test directory
 * in tests). v1 wins when a v1 memory controller is mounted for it; v2
 * only where memory.current exists. buf[cap] is scratch, at least 8 KiB (mountinfo is read
 * line by line, any size). Returns false when there is none. */
bool lw_kernel_cgroup_find(const char *procdir, const char *root_prefix, struct lw_cgroup_loc *loc,
                           char *buf, size_t cap);

/* Limits at or above this are "no limit" (v1 writes 2^63 - page for none). */
#define LW_CGROUP_NO_LIMIT (UINT64_C(1) << 60)

/* The memory limit that applies to the cgroup at loc: the tightest one from
 * it up to its hierarchy's mount (a container's own cgroup is often
 * unlimited under a limited parent). Returns 0 when there is none; lim_dir
 * gets the directory whose limit it is (loc->dir when none). */
uint64_t lw_kernel_cgroup_limit(const struct lw_cgroup_loc *loc, char *lim_dir, size_t dir_cap,
                                char *buf, size_t cap);

/* What the threshold watcher and `leakwatch run` need: the cgroup whose
 * limit the OOM killer applies (the tightest on the way up), its usage
 * file and, for v1, its cgroup.event_control. */
struct lw_cgroup {
    int version;               /* 0: no memory cgroup found; 1 or 2 */
    char dir[1024];            /* the cgroup whose limit is the tightest (own one if none) */
    char usage[1100];          /* its usage file: memory.usage_in_bytes / memory.current */
    char control[1100];        /* v1: its cgroup.event_control; else "" */
    uint64_t limit;            /* bytes; 0: no limit */
};

/* Find it for the process whose /proc directory is procdir ("/proc/self").
 * buf: scratch of cap bytes (at least 8 KiB). true if found (*cg filled). */
bool lw_cgroup_find(const char *procdir, struct lw_cgroup *cg, char *buf, size_t cap);

/* Read the counters of the cgroup at loc into *c (path_len left 0).
 * Unreadable files leave their fields LW_VALUE_NA. Returns false if not
 * even the usage could be read. */
bool lw_kernel_cgroup_read(const struct lw_cgroup_loc *loc, struct lw_rec_kernel_cgroup *c,
                           char *buf, size_t cap);

/* ---- page cache by file ---- */

#define LW_PC_PATH 400 /* longest path kept (longer ones are cut and not measured by path) */

struct lw_pc_entry {
    uint64_t dev, ino;
    uint64_t cached, dirty, writeback, size; /* LW_VALUE_NA until measured */
    uint32_t flags;                          /* LW_PC_* */
    uint16_t path_len;
    bool measured;
    char via[48];                            /* "/proc/PID/fd/N" to open it by, or "" */
    char path[LW_PC_PATH];
};

struct lw_pc_set {
    struct lw_pc_entry *e; /* caller's storage */
    size_t n, cap;
    uint64_t dropped;      /* files not kept: set full */
};

/* Add the regular files procdir has open (procdir/fd) or mapped
 * (procdir/maps), deduplicated by device and inode, flags OPEN/MAPPED.
 * buf[cap] is scratch. Returns false if procdir/fd cannot be listed. */
bool lw_pc_add_open(struct lw_pc_set *s, const char *procdir, char *buf, size_t cap);
bool lw_pc_add_mapped(struct lw_pc_set *s, const char *procdir, char *buf, size_t cap);

/* Add a file by path with its recorded identity (a file seen earlier).
 * Skipped if the path now names another file or is already in the set. */
void lw_pc_add_seen(struct lw_pc_set *s, const char *path, uint64_t dev, uint64_t ino);

/* Measure every entry: cachestat(2) where the kernel has it, else mmap +
 * mincore (never faults a page in; at most max_bytes of a file, then
 * LW_PC_PARTIAL). vec[veccap] is mincore's scratch. Then sort by cached
 * bytes, largest first. */
void lw_pc_measure(struct lw_pc_set *s, unsigned char *vec, size_t veccap, uint64_t max_bytes);

/* For tests: force the mincore path even where cachestat exists. */
extern bool lw_pc_force_mincore;

#endif
