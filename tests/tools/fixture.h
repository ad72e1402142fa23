/*
 * fixture.h - build .lwsnap snapshots with known content for the tests,
 * straight from include/lw_format.h (no code shared with the reader), and
 * the standard fixture the golden reports are made from.
 */
#ifndef LW_TEST_FIXTURE_H
#define LW_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lw_format.h"

struct fx_buf {
    uint8_t *data;
    size_t len, cap;
    uint64_t records; /* records written, END excluded */
};

/* Start a snapshot: the 32-byte header with this version. */
void fx_init(struct fx_buf *b, uint16_t major, uint16_t minor);
/* Append one record: header, payload, zero padding to 8. */
void fx_record(struct fx_buf *b, uint32_t tag, const void *payload, uint32_t len);
/* PROCESS: p's exe_len/cmdline_len are set from the strings given. */
void fx_process(struct fx_buf *b, struct lw_rec_process p, const char *exe, const char *cmdline,
                size_t cmdline_len);
void fx_totals(struct fx_buf *b, const struct lw_rec_totals *t);
void fx_module(struct fx_buf *b, uint64_t base, uint32_t flags, const struct lw_rec_segment *segs,
               uint32_t nsegs, const char *path, const uint8_t *build_id, uint32_t build_id_len);
void fx_stack(struct fx_buf *b, uint32_t id, uint8_t kind, uint8_t flags, uint64_t alloc_bytes,
              uint64_t alloc_objects, uint64_t free_bytes, uint64_t free_objects,
              const uint64_t *frames, uint16_t nframes);
void fx_region(struct fx_buf *b, const struct lw_rec_region *r);
/* 1.2 records of the series engineer's side: THREAD, AGE, TRIGGER. */
void fx_thread(struct fx_buf *b, const struct lw_rec_thread *t);
void fx_age(struct fx_buf *b, uint32_t stack, const struct lw_age_bucket *buckets,
            uint32_t nbuckets);
void fx_trigger(struct fx_buf *b, const struct lw_rec_trigger *t);
/* END with the right record count and offset. */
void fx_end(struct fx_buf *b);
bool fx_write_file(const struct fx_buf *b, const char *path);
void fx_free(struct fx_buf *b);

/* The standard fixture: pid 4242 "demo", 7 stacks, 3 modules (none of
 * which exist on disk), regions of every state. Values in fixture.c. */
#define FX_PID 4242u
#define FX_PPID 4200u
#define FX_TIME_NS 1714564800123456789ull /* 2024-05-01T12:00:00.123Z */
#define FX_MAIN_BASE 0x555555554000ull
#define FX_LIB_BASE 0x7f1234560000ull
void fx_standard(struct fx_buf *b);
/* 1.2 kernel records: KERNEL_PROC, KERNEL_CGROUP (v1), three PAGE_CACHE
 * (a log 256 MiB, its rotated predecessor, libc) and ALLOC_STATS (glibc). */
void fx_kernel(struct fx_buf *b);
/* fx_standard with fx_kernel's records before END. */
void fx_standard_kernel(struct fx_buf *b);

/* A minimal valid snapshot of one process, for analysis tests. */
void fx_minimal(struct fx_buf *b, uint32_t pid, uint32_t ppid, uint32_t seq, uint32_t flags,
                uint64_t start_time_ns, const char *exe);

#endif
