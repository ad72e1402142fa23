/*
 * snapinfo.c - print the figures bench/run needs from one .lwsnap file:
 * the TOTALS record (heap in use, metadata bytes, table capacity, drops),
 * PROCESS timing fields, record counts and the file size, as "KEY VALUE"
 * lines. Reads the format through include/lw_format.h only; a benchmark
 * helper, not a reader for users (that is `leakwatch report`).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lw_format.h"

static int fail(const char *path, const char *what)
{
    fprintf(stderr, "snapinfo: %s: %s\n", path, what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: snapinfo FILE.lwsnap\n");
        return 2;
    }
    const char *path = argv[1];
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(path, "cannot open");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < (long)sizeof(struct lw_snap_header)) {
        fclose(f);
        return fail(path, "too short for a snapshot header");
    }
    unsigned char *buf = malloc((size_t)size);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        return fail(path, "cannot read");
    }
    fclose(f);

    struct lw_snap_header hdr;
    memcpy(&hdr, buf, sizeof hdr);
    if (memcmp(hdr.magic, LW_SNAP_MAGIC, LW_SNAP_MAGIC_LEN))
        return fail(path, "not a leakwatch snapshot (bad magic)");
    if (hdr.major != LW_SNAP_MAJOR)
        return fail(path, "unsupported major version");

    struct lw_rec_process proc;
    struct lw_rec_totals tot;
    int have_proc = 0, have_tot = 0, have_end = 0;
    uint64_t nstacks = 0, nmodules = 0, nregions = 0, nframes = 0;
    uint64_t off = hdr.header_size;
    memset(&proc, 0, sizeof proc);
    memset(&tot, 0, sizeof tot);

    while (off + sizeof(struct lw_rec_hdr) <= (uint64_t)size) {
        struct lw_rec_hdr rh;
        memcpy(&rh, buf + off, sizeof rh);
        uint64_t body = off + sizeof rh;
        if (body + rh.len > (uint64_t)size)
            return fail(path, "truncated record");
        const unsigned char *p = buf + body;
        switch (rh.tag) {
        case LW_REC_PROCESS:
            memcpy(&proc, p, rh.len < sizeof proc ? rh.len : sizeof proc);
            have_proc = 1;
            break;
        case LW_REC_TOTALS:
            memcpy(&tot, p, rh.len < sizeof tot ? rh.len : sizeof tot);
            have_tot = 1;
            break;
        case LW_REC_STACK: {
            struct lw_rec_stack st;
            memcpy(&st, p, rh.len < sizeof st ? rh.len : sizeof st);
            nstacks++;
            nframes += st.nframes;
            break;
        }
        case LW_REC_MODULE:
            nmodules++;
            break;
        case LW_REC_REGION:
            nregions++;
            break;
        case LW_REC_END:
            have_end = 1;
            break;
        default:
            break;
        }
        if (have_end)
            break;
        off = body + LW_REC_PAD(rh.len);
    }
    if (!have_end)
        return fail(path, "truncated (no END record)");
    if (!have_tot || !have_proc)
        return fail(path, "missing PROCESS or TOTALS record");

    printf("file_bytes %ld\n", size);
    printf("pid %" PRIu32 "\n", proc.pid);
    printf("trigger %" PRIu32 "\n", proc.trigger);
    printf("seq %" PRIu32 "\n", proc.seq);
    printf("time_ns %" PRIu64 "\n", proc.time_ns);
    printf("start_time_ns %" PRIu64 "\n", proc.start_time_ns);
    printf("mono_ns %" PRIu64 "\n", proc.mono_ns);
    printf("sample_interval %" PRIu64 "\n", proc.sample_interval);
    printf("heap_inuse_bytes %" PRIu64 "\n", tot.heap_inuse_bytes);
    printf("heap_inuse_objects %" PRIu64 "\n", tot.heap_inuse_objects);
    printf("heap_alloc_objects %" PRIu64 "\n", tot.heap_alloc_objects);
    printf("heap_free_objects %" PRIu64 "\n", tot.heap_free_objects);
    printf("metadata_bytes %" PRIu64 "\n", tot.metadata_bytes);
    printf("live_table_slots %" PRIu64 "\n", tot.live_table_slots);
    printf("dropped_blocks %" PRIu64 "\n", tot.dropped_blocks);
    printf("dropped_stacks %" PRIu64 "\n", tot.dropped_stacks);
    printf("unwind_failures %" PRIu64 "\n", tot.unwind_failures);
    printf("stack_cache_hits %" PRIu64 "\n", tot.stack_cache_hits);
    printf("stack_cache_misses %" PRIu64 "\n", tot.stack_cache_misses);
    printf("mmap_map_calls %" PRIu64 "\n", tot.mmap.map_calls);
    printf("stacks %" PRIu64 "\n", nstacks);
    printf("frames %" PRIu64 "\n", nframes);
    printf("modules %" PRIu64 "\n", nmodules);
    printf("regions %" PRIu64 "\n", nregions);
    if (tot.heap_inuse_objects)
        printf("metadata_per_live_block %.1f\n",
               (double)tot.metadata_bytes / (double)tot.heap_inuse_objects);
    free(buf);
    return 0;
}
