/*
 * test_output_folded.c - tools/output_folded.c and framename.c: folded
 * stacks of the standard fixture through the real binary, one golden file
 * per --value (tests/tools/golden/folded.*.txt; LW_UPDATE_GOLDEN=1 rewrites
 * them), plus frame order, kind/truncation roots and bad --value usage.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "framename.h"
#include "testutil.h"

static char *folded(const char *value, int want_status, char **err)
{
    struct fx_buf b;
    fx_standard(&b);
    char *snap = lwt_path(dir, "demo.lwsnap");
    cr_assert(fx_write_file(&b, snap));
    fx_free(&b);
    const char *argv[] = {lwt_bin(), "report", "--format", "folded", value ? "--value" : snap,
                          value ? value : NULL, value ? snap : NULL, NULL};
    struct lwt_result r;
    cr_assert_eq(lwt_run(argv, NULL, &r), 0);
    cr_assert_eq(r.status, want_status, "status %d: %s", r.status, r.err);
    char *out = r.out;
    if (err)
        *err = strdup(r.err);
    free(r.err);
    free(snap);
    return out;
}

Test(folded, golden_inuse_bytes_default, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *out = folded(NULL, 0, NULL);
    lwt_golden("folded.inuse_bytes.txt", out);
    /* Root first: stack 1 is recorded innermost first (demo+0x1234,
     * libfake+0x2abc, demo+0x1100), so it prints reversed. */
    cr_assert(strstr(out, "demo+0x1100;libfake.so.1+0x2abc;demo+0x1234 4194304\n"), "%s", out);
    /* Mapping stacks get their kind as root; cut stacks say so; 0 is left out. */
    cr_assert(strstr(out, "[mmap];demo+0x2000 2097152\n"), "%s", out);
    cr_assert(strstr(out, "[allocator];demo+0x2100;libfake.so.1+0x4000 1048576\n"), "%s", out);
    cr_assert(strstr(out, "[truncated];0x2000;0x1000 3000\n"), "%s", out);
    cr_assert(strstr(out, "[no frames] 100\n"), "%s", out);
    cr_assert(strstr(out, "[vdso]+0x800;libfake.so.1+0x3000 1000\n"), "%s", out);
    cr_assert_null(strstr(out, " 0\n"), "%s", out);
    free(out);
}

Test(folded, golden_other_values, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *out = folded("alloc_bytes", 0, NULL);
    lwt_golden("folded.alloc_bytes.txt", out);
    cr_assert(strstr(out, "demo+0x1100;libfake.so.1+0x2abc;demo+0x1234 8388608\n"), "%s", out);
    /* Stack 5 allocated 512 bytes and freed them all: present here only. */
    cr_assert(strstr(out, "demo+0x2000 512\n"), "%s", out);
    free(out);
    out = folded("inuse_objects", 0, NULL);
    lwt_golden("folded.inuse_objects.txt", out);
    cr_assert(strstr(out, "demo+0x1100;libfake.so.1+0x2abc;demo+0x1234 4\n"), "%s", out);
    free(out);
    out = folded("alloc_objects", 0, NULL);
    cr_assert(strstr(out, "demo+0x1100;libfake.so.1+0x2abc;demo+0x1234 8\n"), "%s", out);
    free(out);
}

Test(folded, bad_value_is_usage_error, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *err = NULL;
    char *out = folded("bytes", 2, &err);
    cr_assert_str_eq(out, "");
    cr_assert_str_eq(err, "leakwatch: report: --value bytes: unknown value (inuse_bytes, "
                          "inuse_objects, alloc_bytes or alloc_objects)\n");
    free(out);
    free(err);
}

Test(folded, frame_names)
{
    char buf[64];
    struct lw_sym_frame fr = {.function = "cache_insert", .file = "demo.c", .line = 3};
    struct lw_sym_frame unknown = {.function = "", .file = "", .line = 0};
    struct lw_sym_loc loc = {.address = 0x555555555234, .module = "/x/demo", .module_name = "demo",
                             .offset = 0x1234, .nframes = 1, .frames = &fr};
    cr_assert_str_eq(lw_frame_name(&loc, &fr, 0, buf, sizeof buf), "cache_insert");
    cr_assert_str_eq(lw_frame_name(&loc, &unknown, 0, buf, sizeof buf), "demo+0x1234");
    loc.module_name = "";
    cr_assert_str_eq(lw_frame_name(&loc, &unknown, 0, buf, sizeof buf), "0x555555555234");
    cr_assert_str_eq(lw_frame_name(NULL, NULL, 0x42, buf, sizeof buf), "0x42");
    char tiny[5];
    cr_assert_str_eq(lw_frame_name(&loc, &fr, 0, tiny, sizeof tiny), "cach");
}
