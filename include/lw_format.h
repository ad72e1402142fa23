/*
 * lw_format.h - the .lwsnap snapshot format, shared by lib/ (writer) and
 * tools/ (reader). docs/FORMAT.md is the prose spec with an example of each
 * record; keep the two in step. Plain structs of fixed-width little-endian
 * integers, no pointers: a snapshot is readable on any little-endian host.
 *
 * Layout: lw_snap_header, then records. A record is lw_rec_hdr {tag, len}
 * followed by len payload bytes, then zero padding up to the next multiple
 * of 8. Readers skip tags they do not know (minor additions); a newer major
 * version is refused. The last record is LW_REC_END; a file without it is
 * truncated.
 */
#ifndef LW_FORMAT_H
#define LW_FORMAT_H

#include <stdint.h>

#define LW_SNAP_MAGIC "LWSNAP\r\n" /* 8 bytes, no NUL; \r\n catches text-mode mangling */
#define LW_SNAP_MAGIC_LEN 8
#define LW_SNAP_MAJOR 1
#define LW_SNAP_MINOR 3
#define LW_SNAP_SUFFIX ".lwsnap"

struct lw_snap_header {
    char magic[LW_SNAP_MAGIC_LEN];
    uint16_t major;
    uint16_t minor;
    uint32_t header_size; /* sizeof(struct lw_snap_header) of the writer */
    uint64_t reserved[2];
};                        /* 32 bytes */

struct lw_rec_hdr {
    uint32_t tag;
    uint32_t len; /* payload bytes, padding excluded */
};

#define LW_REC_ALIGN 8u
#define LW_REC_PAD(len) (((len) + (LW_REC_ALIGN - 1)) & ~(uint64_t)(LW_REC_ALIGN - 1))

enum lw_rec_tag {
    LW_REC_PROCESS = 1, /* exactly one, first */
    LW_REC_TOTALS = 2,  /* exactly one */
    LW_REC_MODULE = 3,  /* one per loaded object */
    LW_REC_STACK = 4,   /* one per call stack */
    LW_REC_REGION = 5,  /* one per tracked mapped sub-range */
    /* 1.2 */
    LW_REC_KERNEL_PROC = 6,   /* kernel's view of the process (smaps_rollup, status) */
    LW_REC_KERNEL_CGROUP = 7, /* its memory cgroup */
    LW_REC_PAGE_CACHE = 8,    /* one per file: bytes in the page cache */
    LW_REC_THREAD = 9,        /* one per live thread created by pthread_create */
    LW_REC_AGE = 10,          /* one per heap stack with live blocks: ages */
    LW_REC_TRIGGER = 11,      /* what a threshold trigger saw */
    LW_REC_ALLOC_STATS = 12,  /* the allocator's own view (mallinfo2, jemalloc) */
    LW_REC_END = 0x454e44 /* "END": last record */
};

/* Why the snapshot was written. */
enum lw_trigger {
    LW_TRIGGER_EXIT = 1,
    LW_TRIGGER_SIGNAL = 2,
    LW_TRIGGER_INTERVAL = 3,
    LW_TRIGGER_THRESHOLD = 4,      /* RSS / cgroup usage threshold */
    LW_TRIGGER_HEAP_THRESHOLD = 5, /* heap in use threshold */
};

/* lw_rec_process.flags */
#define LW_PROC_ROOT 0x1u             /* the process `leakwatch run` started */
#define LW_PROC_CMDLINE_OMITTED 0x2u /* LEAKWATCH_CMDLINE=0 */
#define LW_PROC_FORKED 0x4u          /* a fork child: inherited the parent's heap */

/* PROCESS payload: this struct, then exe_len bytes of the executable path,
 * then cmdline_len bytes of the command line (arguments separated by NUL,
 * as in /proc/PID/cmdline). Neither is NUL-terminated by the format. */
struct lw_rec_process {
    uint32_t pid;
    uint32_t ppid;
    uint64_t time_ns;         /* CLOCK_REALTIME at the snapshot, ns since the epoch */
    uint64_t start_time_ns;   /* CLOCK_REALTIME when tracking started in this process */
    uint64_t mono_ns;         /* CLOCK_MONOTONIC at the snapshot */
    uint32_t seq;             /* 0-based per-process snapshot sequence number */
    uint32_t trigger;         /* enum lw_trigger */
    uint32_t flags;           /* LW_PROC_* */
    uint32_t max_depth;       /* stack depth limit in force */
    uint32_t page_size;
    uint32_t exe_len;
    uint32_t cmdline_len;
    uint32_t reserved0;
    uint64_t sample_interval; /* 0: every allocation recorded; T: sampling mode, heap
                               * stacks hold estimates, heap sizes are usable sizes
                               * (docs/FORMAT.md "Sampling mode") */
    uint64_t reserved[2];
};

/* Kinds of call stacks and regions. */
enum lw_kind {
    LW_KIND_HEAP = 1,      /* malloc family */
    LW_KIND_MMAP = 2,      /* mmap/mremap called by the program */
    LW_KIND_ALLOCATOR = 3, /* mmap/mremap called by the allocator inside a malloc call */
    LW_KIND_THREAD = 4,    /* 1.2: pthread_create call sites; see below */
};

/* TOTALS payload. Heap counters are exact sums over the HEAP stacks; the
 * mapping counters are exact sums over the REGION records of that kind. */
struct lw_totals_map {
    uint64_t mapped_bytes;        /* bytes of tracked mappings, every state */
    uint64_t regions;             /* live mappings (mmap calls not fully unmapped) */
    uint64_t madv_free_bytes;     /* bytes whose last advice was MADV_FREE */
    uint64_t madv_dontneed_bytes; /* bytes whose last advice was MADV_DONTNEED */
    uint64_t released_resident_bytes; /* MADV_FREE bytes still resident (mincore) */
    uint64_t map_calls;           /* mmap/mremap calls recorded, ever */
    uint64_t unmap_calls;         /* munmap calls that removed tracked bytes, ever */
    uint64_t reserved;
};

struct lw_rec_totals {
    uint64_t heap_inuse_bytes;
    uint64_t heap_inuse_objects;
    uint64_t heap_alloc_bytes;   /* ever allocated */
    uint64_t heap_alloc_objects; /* mallocs */
    uint64_t heap_free_bytes;
    uint64_t heap_free_objects;  /* frees of tracked blocks */
    struct lw_totals_map mmap;      /* LW_KIND_MMAP */
    struct lw_totals_map allocator; /* LW_KIND_ALLOCATOR */
    uint64_t dropped_blocks;    /* blocks not tracked: metadata exhausted */
    uint64_t dropped_bytes;
    uint64_t dropped_stacks;    /* stacks not stored: stack table full */
    uint64_t dropped_regions;   /* mappings not tracked: region ledger full */
    uint64_t unwind_failures;   /* captures that returned no frame */
    uint64_t stale_blocks;      /* tracked blocks whose free we never saw (address reused) */
    uint64_t metadata_bytes;    /* leakwatch's own memory for tables and stacks */
    uint64_t live_table_slots;  /* capacity of the live-block table */
    uint64_t reentrant_calls;   /* 1.1: malloc-family calls not recorded because the thread was
                                 * inside leakwatch (a signal handler interrupted a hook) */
    uint64_t stack_cache_hits;   /* 1.3: captures served by the stack cache (no unwinding) */
    uint64_t stack_cache_misses; /* 1.3: captures that looked there and unwound */
    uint64_t reserved[1];
};

/* A PT_LOAD segment of a module, at its address in this process. */
struct lw_rec_segment {
    uint64_t start;       /* load bias + p_vaddr */
    uint64_t size;        /* p_memsz */
    uint64_t file_offset; /* p_offset */
    uint32_t flags;       /* p_flags: PF_X 1, PF_W 2, PF_R 4 */
    uint32_t reserved;
};

/* MODULE payload: this struct, nsegs lw_rec_segment, then path_len bytes
 * of path, then build_id_len bytes of the raw GNU build-id. The main
 * executable has LW_MOD_MAIN and its path from /proc/self/exe. */
#define LW_MOD_MAIN 0x1u
#define LW_MOD_VDSO 0x2u
struct lw_rec_module {
    uint64_t base; /* load bias (dlpi_addr) */
    uint32_t nsegs;
    uint32_t path_len;
    uint32_t build_id_len;
    uint32_t flags;
};

/* STACK payload: this struct, then nframes uint64_t return addresses,
 * frame 0 the caller of the allocation function. In-use = alloc - free.
 * For HEAP stacks: bytes/objects are malloc'd blocks. For MMAP/ALLOCATOR
 * stacks: bytes are mapped bytes, objects are mappings (a mapping is freed
 * when its last byte is unmapped). */
/* THREAD stacks (1.2): alloc_objects = threads created from this call
 * site, free_objects = those that have exited; alloc_bytes / free_bytes =
 * their stack sizes as configured (created / exited). No heap bytes: heap
 * totals never include them. */
#define LW_STACK_TRUNCATED 0x1u /* deeper than max_depth: outermost frames cut */
struct lw_rec_stack {
    uint32_t id; /* >= 1, unique in the snapshot */
    uint8_t kind; /* enum lw_kind */
    uint8_t flags;
    uint16_t nframes;
    uint64_t alloc_bytes;
    uint64_t alloc_objects;
    uint64_t free_bytes;
    uint64_t free_objects;
};

/* REGION payload: one tracked sub-range [start, start+size) with one state.
 * Sub-ranges of one mmap call share region_id. */
enum lw_region_state {
    LW_STATE_MAPPED = 1,
    LW_STATE_MADV_FREE = 2,
    LW_STATE_MADV_DONTNEED = 3,
};
#define LW_REGION_ANON 0x1u
#define LW_REGION_SHARED 0x2u
#define LW_REGION_FILE 0x4u
struct lw_rec_region {
    uint64_t start;
    uint64_t size;
    uint64_t resident_bytes; /* MADV_FREE ranges: bytes still resident; else 0 */
    uint32_t stack;          /* stack id of the mmap/mremap */
    uint32_t region_id;
    uint8_t kind;            /* LW_KIND_MMAP or LW_KIND_ALLOCATOR */
    uint8_t state;           /* enum lw_region_state */
    uint16_t flags;          /* LW_REGION_* */
    uint32_t prot;           /* PROT_* at mmap time */
};

/* THREAD payload (1.2): one live thread that pthread_create started. */
struct lw_rec_thread {
    uint32_t stack;          /* id of its LW_KIND_THREAD creation stack */
    uint32_t tid;            /* kernel thread id; 0 if not yet known */
    uint64_t stack_start;    /* lowest address of its stack; 0 if unknown */
    uint64_t stack_size;     /* as configured */
    uint64_t resident_bytes; /* of its stack, by mincore; UINT64_MAX if not measured */
    uint64_t start_mono_ns;  /* CLOCK_MONOTONIC when it was created */
};

/* AGE payload (1.2): this struct, then nbuckets lw_age_bucket sorted by
 * min_age_ns ascending. A bucket holds the live blocks of the stack whose
 * age (snapshot time - allocation time, to the resolution of the epoch
 * clock) is >= its min_age_ns and < the next bucket's. Sums over the
 * buckets equal the stack's live bytes and objects. */
struct lw_rec_age {
    uint32_t stack;    /* heap stack id */
    uint32_t nbuckets;
    uint64_t reserved;
};
struct lw_age_bucket {
    uint64_t min_age_ns;
    uint64_t bytes;
    uint64_t objects;
};

/* TRIGGER payload (1.2): for threshold snapshots, what was watched. */
enum lw_watch_source {
    LW_WATCH_CGROUP_USAGE = 1, /* memory cgroup usage */
    LW_WATCH_RSS = 2,          /* process resident set */
    LW_WATCH_HEAP = 3,         /* heap in use (exact, from the tables) */
};
struct lw_rec_trigger {
    uint32_t trigger;        /* enum lw_trigger, same as PROCESS */
    uint32_t source;         /* enum lw_watch_source */
    uint64_t threshold_bytes; /* the line that was crossed (this arming) */
    uint64_t observed_bytes; /* the value seen when it fired */
    uint64_t limit_bytes;    /* cgroup limit, 0 if none */
    uint64_t reserved[2];
};

/* ---- kernel truth (1.2): tags 6, 7, 8, 12 ----
 * Every uint64_t counter below may be LW_VALUE_NA: the source could not be
 * read (file missing or unreadable, field absent on this kernel). Each
 * source degrades on its own; readers show "n/a", never 0. */
#define LW_VALUE_NA UINT64_MAX

/* KERNEL_PROC payload (1.2): the kernel's view of the process, bytes.
 * smaps_rollup is preferred; status is the fallback where both have it. */
struct lw_rec_kernel_proc {
    uint64_t rss_bytes;       /* smaps_rollup Rss (status VmRSS) */
    uint64_t anon_bytes;      /* smaps_rollup Anonymous (status RssAnon); includes LazyFree */
    uint64_t file_bytes;      /* status RssFile: resident file-backed pages mapped */
    uint64_t shmem_bytes;     /* status RssShmem */
    uint64_t lazyfree_bytes;  /* smaps_rollup LazyFree: MADV_FREE'd, not yet reclaimed */
    uint64_t anon_huge_bytes; /* smaps_rollup AnonHugePages */
    uint64_t swap_bytes;      /* smaps_rollup Swap (status VmSwap) */
    uint64_t hwm_bytes;       /* status VmHWM: peak RSS */
    uint64_t reserved[2];
};                            /* 80 bytes */

/* KERNEL_CGROUP payload (1.2): this struct, then path_len bytes of the
 * cgroup's directory (as the writer opened it). At most one; absent when
 * the process has no memory cgroup the writer could find. v1 reads the
 * hierarchical total_* counters of memory.stat (they include child
 * cgroups, as memory.usage_in_bytes does); v2 reads memory.stat as is. */
#define LW_CGROUP_UNLIMITED 0x1u /* no limit (v2 "max", v1 >= 2^62): limit_bytes is NA */
struct lw_rec_kernel_cgroup {
    uint32_t version;             /* 1 or 2 */
    uint32_t flags;               /* LW_CGROUP_* */
    uint64_t usage_bytes;         /* v1 memory.usage_in_bytes, v2 memory.current */
    uint64_t limit_bytes;         /* v1 memory.limit_in_bytes, v2 memory.max */
    uint64_t anon_bytes;          /* v1 total_rss, v2 anon */
    uint64_t file_bytes;          /* v1 total_cache, v2 file (both include shmem) */
    uint64_t active_file_bytes;   /* v1 total_active_file, v2 active_file */
    uint64_t inactive_file_bytes; /* v1 total_inactive_file, v2 inactive_file; holds MADV_FREE'd anon too */
    uint64_t shmem_bytes;         /* v1 total_shmem, v2 shmem */
    uint64_t dirty_bytes;         /* v1 total_dirty, v2 file_dirty */
    uint64_t limit_events;        /* v1 memory.failcnt, v2 memory.events max */
    uint64_t oom_events;          /* v1 NA, v2 memory.events oom */
    uint64_t oom_kill_events;     /* v1 memory.oom_control oom_kill, v2 memory.events oom_kill */
    uint32_t path_len;
    uint32_t reserved0;
    uint64_t reserved[2];
};                                /* 120 bytes */

/* PAGE_CACHE payload (1.2): one file, this struct then path_len bytes of
 * its path (as /proc showed it; " (deleted)" kept). Written largest
 * cached_bytes first, at most a bounded number per snapshot. */
#define LW_PC_OPEN 0x1u     /* open by the process at the snapshot */
#define LW_PC_MAPPED 0x2u   /* mapped by the process at the snapshot */
#define LW_PC_SEEN 0x4u     /* neither now: seen open or mapped at an earlier scan */
#define LW_PC_MINCORE 0x8u  /* measured with mmap + mincore (no dirty count); else cachestat(2) */
#define LW_PC_PARTIAL 0x10u /* only the first part of a large file was measured */
struct lw_rec_page_cache {
    uint64_t cached_bytes;    /* pages of the file in the page cache */
    uint64_t dirty_bytes;     /* of those, dirty; NA with mincore */
    uint64_t writeback_bytes; /* of those, being written back; NA with mincore */
    uint64_t size_bytes;      /* file size (st_size) */
    uint32_t flags;           /* LW_PC_* */
    uint32_t path_len;
};                            /* 40 bytes */

/* ALLOC_STATS payload (1.2): the allocator's own counters, bytes. */
enum lw_allocator_kind {
    LW_ALLOCATOR_GLIBC = 1,    /* mallinfo2() */
    LW_ALLOCATOR_JEMALLOC = 2, /* mallctl("stats.*") after an "epoch" refresh */
};
struct lw_rec_alloc_stats {
    uint32_t allocator;        /* enum lw_allocator_kind */
    uint32_t reserved0;
    uint64_t in_use_bytes;     /* glibc uordblks + hblkhd; jemalloc stats.allocated */
    uint64_t free_bytes;       /* glibc fordblks (free chunks); jemalloc stats.resident - stats.allocated */
    uint64_t arena_bytes;      /* glibc arena (sbrk/heap space); jemalloc stats.active */
    uint64_t mmap_bytes;       /* glibc hblkhd (blocks mmapped one by one); jemalloc stats.mapped */
    uint64_t resident_bytes;   /* glibc NA; jemalloc stats.resident */
    uint64_t retained_bytes;   /* glibc NA; jemalloc stats.retained (unmapped, address space kept) */
    uint64_t releasable_bytes; /* glibc keepcost (top chunk, trimmable); jemalloc NA */
    uint64_t reserved[2];
};                             /* 80 bytes */

/* END payload. records counts every record before END. */
struct lw_rec_end {
    uint64_t records;
    uint64_t bytes; /* file offset of the END record header */
};

#endif
