/*
 * test_json.c - tools/json.c and tools/output_json.c: string escaping
 * (quotes, control characters, valid and invalid UTF-8), commas and
 * nesting, and the JSON report of the standard fixture: valid JSON (checked
 * by python3 when available) with the schema's keys and values.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "fixture.h"
#include "json.h"
#include "output.h"
#include "reader.h"
#include "render.h"
#include "testutil.h"

static char *escaped(const char *s, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lw_json_escape(f, s, n);
    fclose(f);
    return buf;
}

static void check_escape(const char *in, size_t n, const char *want)
{
    char *got = escaped(in, n);
    cr_assert_str_eq(got, want);
    free(got);
}

#define ESC(lit, want) check_escape(lit, sizeof(lit) - 1, want)

Test(json, escapes_quotes_backslash_and_controls)
{
    ESC("plain", "\"plain\"");
    ESC("", "\"\"");
    ESC("a\"b", "\"a\\\"b\"");
    ESC("back\\slash", "\"back\\\\slash\"");
    ESC("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    ESC("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
    ESC("nul\0inside", "\"nul\\u0000inside\"");
    ESC("/path/ok", "\"/path/ok\"");
}

Test(json, keeps_valid_utf8)
{
    ESC("caf\xc3\xa9", "\"caf\xc3\xa9\"");                       /* é */
    ESC("\xe2\x82\xac", "\"\xe2\x82\xac\"");                     /* € */
    ESC("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");             /* U+1F600 */
    ESC("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");             /* U+10FFFF */
    ESC("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");                     /* U+D7FF */
}

Test(json, replaces_invalid_utf8)
{
    ESC("\xff", "\"\\ufffd\"");                 /* never valid */
    ESC("a\x80z", "\"a\\ufffdz\"");             /* lone continuation byte */
    ESC("\xc3", "\"\\ufffd\"");                 /* cut-off sequence at the end */
    ESC("\xc3(", "\"\\ufffd(\"");               /* bad continuation */
    ESC("\xc0\xaf", "\"\\ufffd\\ufffd\"");      /* overlong '/' */
    ESC("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""); /* overlong, 3 bytes */
    ESC("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* UTF-16 surrogate */
    ESC("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* above U+10FFFF */
    ESC("\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\"");   /* 4-byte cut short */
}

Test(json, structure_commas_and_nesting)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct lw_json j;
    lw_json_init(&j, f, true);
    lw_json_object_begin(&j, NULL, false);
    lw_json_string(&j, "a", "x");
    lw_json_u64(&j, "n", 18446744073709551615ull);
    lw_json_array_begin(&j, "empty", false);
    lw_json_array_end(&j);
    lw_json_array_begin(&j, "list", true);
    lw_json_u64(&j, NULL, 1);
    lw_json_bool(&j, NULL, false);
    lw_json_string(&j, NULL, NULL);
    lw_json_array_end(&j);
    lw_json_object_begin(&j, "o", false);
    lw_json_bool(&j, "t", true);
    lw_json_object_end(&j);
    lw_json_object_end(&j);
    fclose(f);
    cr_assert_str_eq(buf, "{\n"
                          "  \"a\": \"x\",\n"
                          "  \"n\": 18446744073709551615,\n"
                          "  \"empty\": [],\n"
                          "  \"list\": [1, false, \"\"],\n"
                          "  \"o\": {\n"
                          "    \"t\": true\n"
                          "  }\n"
                          "}\n");
    free(buf);
}

Test(json, compact_mode)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct lw_json j;
    lw_json_init(&j, f, false);
    lw_json_object_begin(&j, NULL, false);
    lw_json_array_begin(&j, "k\"ey", false);
    lw_json_object_begin(&j, NULL, false);
    lw_json_u64(&j, "x", 0);
    lw_json_object_end(&j);
    lw_json_object_begin(&j, NULL, false);
    lw_json_object_end(&j);
    lw_json_array_end(&j);
    lw_json_object_end(&j);
    fclose(f);
    cr_assert_str_eq(buf, "{\"k\\\"ey\":[{\"x\":0},{}]}");
    free(buf);
}

/* The JSON report of the standard fixture, symbolized against modules that
 * do not exist (so: addresses and module paths only). */
static char *fixture_report(size_t top)
{
    return lwt_render_standard(&lw_output_json, top, NULL);
}

Test(json, report_has_schema_values)
{
    char *out = fixture_report(0);
    cr_assert(strstr(out, "\"format\": \"leakwatch-report/1\""));
    cr_assert(strstr(out, "\"pid\": 4242,\n    \"ppid\": 4200,\n    \"exe\": \"/usr/bin/demo\""),
              "%s", out);
    cr_assert(strstr(out, "\"cmdline\": [\"demo\", \"--size\", \"10 MB\", \"it's\"]"), "%s", out);
    cr_assert(strstr(out, "\"time\": \"2024-05-01T12:00:00.123Z\""), "%s", out);
    cr_assert(strstr(out, "\"trigger\": \"exit\",\n    \"seq\": 3"), "%s", out);
    cr_assert(strstr(out, "\"inuse_bytes\": 4198404,\n    \"inuse_objects\": 18"), "%s", out);
    cr_assert(strstr(out, "\"released_resident_bytes\": 262144"), "%s", out);
    cr_assert(strstr(out, "\"stacks\": 2,\n    \"regions\": 0,\n    \"unwind_failures\": 1"),
              "%s", out);
    cr_assert(strstr(out, "{\"path\": \"/nonexistent/demo\", \"base\": \"0x555555554000\", "
                          "\"build_id\": \"deadbeef0102\"}"),
              "%s", out);
    /* The first stack is stack 1 (4 MiB in use), frame 0 unresolved but
     * placed in its module. */
    const char *st = strstr(out, "\"stacks\": [");
    cr_assert_not_null(st);
    cr_assert(strstr(st, "\"id\": 1,\n      \"kind\": \"heap\",\n      \"inuse_bytes\": 4194304,\n"
                         "      \"inuse_objects\": 4,\n      \"alloc_bytes\": 8388608,\n"
                         "      \"alloc_objects\": 8,\n      \"truncated\": false,"),
              "%s", st);
    cr_assert(strstr(st, "{\"address\": \"0x555555555234\", \"module\": \"/nonexistent/demo\", "
                         "\"function\": \"\", \"file\": \"\", \"line\": 0}"),
              "%s", st);
    /* Every stack is listed without --top, in rank order. */
    size_t ids = 0;
    for (const char *p = st; (p = strstr(p, "\"id\": ")); p++)
        ids++;
    cr_assert_eq(ids, 7);
    cr_assert(strstr(st, "\"id\": 1,") < strstr(st, "\"id\": 3,"));
    cr_assert(strstr(st, "\"id\": 3,") < strstr(st, "\"id\": 4,"));
    cr_assert(strstr(st, "\"id\": 4,") < strstr(st, "\"id\": 7,"));
    cr_assert(strstr(st, "\"id\": 7,") < strstr(st, "\"id\": 2,"));
    cr_assert(strstr(st, "\"id\": 2,") < strstr(st, "\"id\": 6,"));
    cr_assert(strstr(st, "\"id\": 6,") < strstr(st, "\"id\": 5,"));
    free(out);

    out = fixture_report(2);
    ids = 0;
    for (const char *p = strstr(out, "\"stacks\": ["); (p = strstr(p, "\"id\": ")); p++)
        ids++;
    cr_assert_eq(ids, 2);
    free(out);
}

Test(json, report_is_valid_json)
{
    const char *py = getenv("PYTHON3");
    if (!py || !*py)
        cr_skip_test("python3 not found");
    char *out = fixture_report(0);
    char *dir = lwt_tmpdir(), *path = lwt_path(dir, "r.json");
    FILE *f = fopen(path, "w");
    fputs(out, f);
    fclose(f);
    const char *argv[] = {py, "-c",
                          "import json,sys; d=json.load(open(sys.argv[1]));"
                          "assert d['heap']['inuse_bytes']==4198404;"
                          "assert [s['id'] for s in d['stacks']]==[1,3,4,7,2,6,5];"
                          "assert d['stacks'][6]['inuse_bytes']==0;"
                          "assert d['allocator']['mapped_bytes']==1048576",
                          path, NULL};
    struct lwt_result r;
    cr_assert_eq(lwt_run(argv, NULL, &r), 0);
    cr_assert_eq(r.status, 0, "python3 says: %s", r.err);
    lwt_result_free(&r);
    lwt_rmrf(dir);
    free(path);
    free(dir);
    free(out);
}

Test(json, iso_time)
{
    char buf[40];
    lw_output_iso_time(FX_TIME_NS, buf, sizeof buf);
    cr_assert_str_eq(buf, "2024-05-01T12:00:00.123Z");
    lw_output_iso_time(0, buf, sizeof buf);
    cr_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    lw_output_iso_time(999999999, buf, sizeof buf);
    cr_assert_str_eq(buf, "1970-01-01T00:00:00.999Z");
}
