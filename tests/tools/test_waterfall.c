/*
 * test_waterfall.c - tools/waterfall.c on the kernel fixture: every line's
 * bytes from the records (heap, idle = anon - heap - mappings - released,
 * mappings, released = LazyFree, page cache sum, working set = usage -
 * inactive_file), the inspect variant without heap lines, "not available"
 * values, the largest part, and the growth between two snapshots.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "reader.h"
#include "waterfall.h"

#define MiB (1ull << 20)

static char err[LW_READER_ERRLEN];

static struct lw_snapshot *kernel_snapshot(void)
{
    struct fx_buf b;
    fx_standard_kernel(&b);
    struct lw_snapshot *s = lw_reader_parse(b.data, b.len, "k.lwsnap", err);
    cr_assert_not_null(s, "%s", err);
    fx_free(&b);
    return s;
}

static uint64_t bytes(const struct lw_waterfall *w, const char *name)
{
    const struct lw_wf_line *l = lw_waterfall_find(w, name);
    cr_assert_not_null(l, "no line %s", name);
    return l->bytes;
}

Test(waterfall, lines_from_the_records)
{
    struct lw_snapshot *s = kernel_snapshot();
    struct lw_kview v;
    struct lw_waterfall w;
    lw_kview_from_snapshot(s, &v);
    lw_waterfall_build(&v, &w);
    static const char *const order[] = {"heap_in_use", "allocator_idle", "leakwatch_own",
                                        "tracked_mappings", "released_resident", "rss",
                                        "page_cache", "cgroup_working_set", "cgroup_usage"};
    cr_assert_eq(w.n, 9);
    for (size_t i = 0; i < 9; i++)
        cr_assert_str_eq(w.line[i].name, order[i]);
    cr_assert_eq(bytes(&w, "heap_in_use"), 4198404);
    /* mmap: 2 MiB mapped, 512 KiB MADV_FREE, 512 KiB DONTNEED */
    cr_assert_eq(bytes(&w, "tracked_mappings"), 1 * MiB);
    cr_assert_eq(bytes(&w, "released_resident"), 262144); /* LazyFree */
    /* leakwatch's own 3 MiB (TOTALS metadata_bytes) is resident anon too:
     * 8 MiB anon - 4.0 heap - 3 own - 1 mappings - 256 KiB released < 0 */
    cr_assert_eq(bytes(&w, "leakwatch_own"), 3 * MiB);
    cr_assert_eq(bytes(&w, "allocator_idle"), 0, "clamped at 0");
    v.own_bytes = 512 * 1024;
    lw_waterfall_build(&v, &w);
    cr_assert_eq(bytes(&w, "allocator_idle"), 8 * MiB - 4198404 - 512 * 1024 - 1 * MiB - 262144);
    cr_assert_eq(bytes(&w, "rss"), 10 * MiB);
    cr_assert_eq(bytes(&w, "page_cache"), 256 * MiB + 10 * MiB + 1835008);
    cr_assert_eq(bytes(&w, "cgroup_working_set"), 30 * MiB);
    cr_assert_eq(bytes(&w, "cgroup_usage"), 300 * MiB);
    cr_assert_str_eq(lw_waterfall_largest(&w)->name, "page_cache");
    const struct lw_wf_line *pc = lw_waterfall_find(&w, "page_cache");
    cr_assert(strstr(pc->note, "/var/log/app/metrics.log"), "%s", pc->note);
    const struct lw_wf_line *ws = lw_waterfall_find(&w, "cgroup_working_set");
    cr_assert(strstr(ws->note, "usage - inactive_file = 300 MiB - 270 MiB"), "%s", ws->note);
    const struct lw_wf_line *idle = lw_waterfall_find(&w, "allocator_idle");
    cr_assert(strstr(idle->note, "glibc mallinfo2"), "%s", idle->note);
    lw_reader_free(s);
}

Test(waterfall, ledger_when_lazyfree_is_not_available)
{
    struct lw_snapshot *s = kernel_snapshot();
    struct lw_kview v;
    struct lw_waterfall w;
    lw_kview_from_snapshot(s, &v);
    v.kproc.lazyfree_bytes = LW_VALUE_NA;
    v.kproc.anon_bytes = LW_VALUE_NA;
    v.has_cgroup = false;
    lw_waterfall_build(&v, &w);
    cr_assert_eq(bytes(&w, "released_resident"), 262144); /* the ledger's */
    cr_assert_eq(bytes(&w, "allocator_idle"), LW_VALUE_NA);
    cr_assert_null(lw_waterfall_find(&w, "cgroup_usage"));
    lw_reader_free(s);
}

Test(waterfall, old_snapshot_has_only_the_heap)
{
    struct fx_buf b;
    fx_standard(&b);
    struct lw_snapshot *s = lw_reader_parse(b.data, b.len, "old.lwsnap", err);
    cr_assert_not_null(s, "%s", err);
    struct lw_kview v;
    struct lw_waterfall w;
    lw_kview_from_snapshot(s, &v);
    lw_waterfall_build(&v, &w);
    cr_assert_eq(w.n, 1);
    cr_assert_str_eq(w.line[0].name, "heap_in_use");
    lw_reader_free(s);
    fx_free(&b);
}

Test(waterfall, inspect_has_no_heap_lines)
{
    struct lw_kview v;
    memset(&v, 0, sizeof v);
    v.has_kproc = true;
    v.kproc = (struct lw_rec_kernel_proc){.rss_bytes = 530 * MiB, .anon_bytes = 528 * MiB,
                                          .file_bytes = 2 * MiB, .lazyfree_bytes = 510 * MiB,
                                          .anon_huge_bytes = LW_VALUE_NA,
                                          .hwm_bytes = 530 * MiB};
    struct lw_waterfall w;
    lw_waterfall_build(&v, &w);
    cr_assert_str_eq(w.line[0].name, "anon_in_use");
    cr_assert_eq(w.line[0].bytes, 18 * MiB);
    cr_assert_eq(bytes(&w, "released_resident"), 510 * MiB);
    cr_assert_null(lw_waterfall_find(&w, "heap_in_use"));
    cr_assert_str_eq(lw_waterfall_largest(&w)->name, "released_resident");
    cr_assert(strstr(lw_waterfall_find(&w, "released_resident")->note, "GODEBUG=madvdontneed=1"));
}

static char *growth(const struct lw_waterfall *a, const struct lw_waterfall *b)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    lw_waterfall_growth_text(f, a, b, "since snapshot #1");
    fclose(f);
    return out;
}

Test(waterfall, growth_between_snapshots)
{
    struct lw_snapshot *s = kernel_snapshot();
    struct lw_kview v;
    struct lw_waterfall a, b;
    lw_kview_from_snapshot(s, &v);
    v.own_bytes = 512 * 1024; /* leaves idle above 0, so its change shows */
    lw_waterfall_build(&v, &a);
    /* the later snapshot: the log grew 100 MiB, the heap 1 MiB */
    struct lw_snap_page_cache pcs[3];
    memcpy(pcs, v.pc, sizeof pcs);
    pcs[0].rec.cached_bytes += 100 * MiB;
    v.pc = pcs;
    v.heap_inuse += 1 * MiB;
    v.kproc.anon_bytes += 1 * MiB;
    lw_waterfall_build(&v, &b);
    struct lw_wf_growth g[LW_WF_MAX];
    size_t big;
    size_t n = lw_waterfall_delta(&a, &b, g, LW_WF_MAX, &big);
    cr_assert_eq(n, 9);
    cr_assert_str_eq(g[big].name, "page_cache");
    cr_assert_eq(g[big].delta, (int64_t)(100 * MiB));
    cr_assert_str_eq(g[0].name, "heap_in_use");
    cr_assert_eq(g[0].delta, (int64_t)MiB);
    cr_assert_eq(g[1].delta, 0); /* idle unchanged: anon grew with the heap */
    char *t = growth(&a, &b);
    cr_assert_str_eq(t, "Most of the growth since snapshot #1 is not heap: file page cache grew "
                        "+100 MiB, heap in use +1.0 MiB.\n");
    free(t);
    /* heap growth is said as such */
    t = growth(&b, &a);
    cr_assert_str_eq(t, "No part of memory grew since snapshot #1.\n");
    free(t);
    v.heap_inuse += 50 * MiB;
    v.kproc.anon_bytes += 50 * MiB;
    struct lw_waterfall c;
    lw_waterfall_build(&v, &c);
    t = growth(&b, &c);
    cr_assert_str_eq(t, "Most of the growth since snapshot #1 is heap: +50.0 MiB.\n");
    free(t);
    lw_reader_free(s);
}

Test(waterfall, compare_two_snapshots)
{
    struct lw_snapshot *a = kernel_snapshot();
    /* the later snapshot: the log's pages grew by 64 MiB */
    struct fx_buf b;
    fx_standard_kernel(&b);
    const char *log = "/var/log/app/metrics.log";
    uint8_t *hit = memmem(b.data, b.len, log, strlen(log));
    cr_assert_not_null(hit);
    struct lw_rec_page_cache r;
    uint8_t *rec = hit - sizeof r;
    memcpy(&r, rec, sizeof r);
    r.cached_bytes += 64 * MiB;
    memcpy(rec, &r, sizeof r);
    struct lw_snapshot *later = lw_reader_parse(b.data, b.len, "later.lwsnap", err);
    cr_assert_not_null(later, "%s", err);
    struct lw_wf_growth g[LW_WF_MAX];
    size_t big;
    size_t n = lw_waterfall_compare(a, later, g, LW_WF_MAX, &big);
    cr_assert_eq(n, 9);
    cr_assert_str_eq(g[big].name, "page_cache");
    cr_assert_eq(g[big].delta, (int64_t)(64 * MiB));
    cr_assert_eq(g[0].delta, 0); /* heap flat */
    lw_reader_free(later);
    lw_reader_free(a);
    fx_free(&b);
}

/* The program's code and libraries (files only mapped) are page cache too,
 * but they do not make the page cache "the largest part": a small program
 * would otherwise be told its libc is the problem. */
Test(waterfall, mapped_only_files_do_not_make_the_largest_part)
{
    struct lw_snapshot *s = kernel_snapshot();
    struct lw_kview v;
    struct lw_waterfall w;
    lw_kview_from_snapshot(s, &v);
    lw_waterfall_build(&v, &w);
    cr_assert_str_eq(lw_waterfall_largest(&w)->name, "page_cache"); /* the open log */
    struct lw_snap_page_cache pcs[8];
    cr_assert_leq(v.npc, 8);
    memcpy(pcs, v.pc, v.npc * sizeof pcs[0]);
    for (size_t i = 0; i < v.npc; i++)
        pcs[i].rec.flags = LW_PC_MAPPED;
    v.pc = pcs;
    lw_waterfall_build(&v, &w);
    const struct lw_wf_line *pc = lw_waterfall_find(&w, "page_cache");
    cr_assert_eq(pc->bytes, 256 * MiB + 10 * MiB + 1835008, "still shown in full");
    cr_assert_eq(pc->rank_bytes, 0);
    cr_assert_str_neq(lw_waterfall_largest(&w)->name, "page_cache");
    lw_reader_free(s);
}
