/*
 * test_symbolize.c - tools/symbolize.c against this test program itself:
 * a snapshot describing our own main executable (from dl_iterate_phdr)
 * must resolve return addresses to the right function, file and line,
 * expand an always_inline call into two frames, refuse a module whose
 * build-id changed, and place unknown addresses in their module.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "reader.h"
#include "symbolize.h"

static int plain_line, inner_line, outer_line;

__attribute__((noinline)) uintptr_t lwtest_callee(void)
{
    return (uintptr_t)__builtin_return_address(0);
}

__attribute__((noinline)) uintptr_t lwtest_plain(void)
{
    plain_line = __LINE__ + 1;
    volatile uintptr_t r = lwtest_callee();
    return r;
}

static inline __attribute__((always_inline)) uintptr_t lwtest_inner(void)
{
    inner_line = __LINE__ + 1;
    volatile uintptr_t r = lwtest_callee();
    return r;
}

__attribute__((noinline)) uintptr_t lwtest_outer(void)
{
    outer_line = __LINE__ + 1;
    volatile uintptr_t r = lwtest_inner();
    return r;
}

struct self_map {
    uint64_t base;
    struct lw_rec_segment segs[16];
    uint32_t nsegs;
    uint8_t build_id[64];
    uint32_t build_id_len;
};

static int first_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct self_map *m = arg;
    m->base = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum && m->nsegs < 16; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            m->segs[m->nsegs++] = (struct lw_rec_segment){info->dlpi_addr + ph->p_vaddr,
                                                          ph->p_memsz, ph->p_offset, ph->p_flags, 0};
        } else if (ph->p_type == PT_NOTE) {
            const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
            const uint8_t *end = p + ph->p_memsz;
            while (p + sizeof(ElfW(Nhdr)) <= end) {
                const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
                const uint8_t *name = p + sizeof *nh;
                const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
                if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                    !memcmp(name, "GNU", 4) && nh->n_descsz <= 64) {
                    memcpy(m->build_id, desc, nh->n_descsz);
                    m->build_id_len = nh->n_descsz;
                }
                p = desc + ((nh->n_descsz + 3) & ~3u);
            }
        }
    }
    return 1; /* the first object is the main program */
}

/* A snapshot whose modules are this program (with the given build-id),
 * a missing library and the vDSO. */
static struct lw_snapshot *self_snapshot(const uint8_t *bid, uint32_t bid_len)
{
    static struct self_map m;
    memset(&m, 0, sizeof m);
    dl_iterate_phdr(first_object, &m);
    cr_assert_gt(m.nsegs, 0);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert_gt(n, 0);
    exe[n] = '\0';
    if (bid == NULL) {
        bid = m.build_id;
        bid_len = m.build_id_len;
    }
    struct fx_buf b;
    struct lw_rec_process p = {.pid = (uint32_t)getpid()};
    struct lw_rec_totals t = {0};
    fx_init(&b, 1, 0);
    fx_process(&b, p, exe, "", 0);
    fx_totals(&b, &t);
    fx_module(&b, m.base, LW_MOD_MAIN, m.segs, m.nsegs, exe, bid, bid_len);
    struct lw_rec_segment ls = {0x7e0000001000, 0x1000, 0x1000, 5, 0};
    fx_module(&b, 0x7e0000000000, 0, &ls, 1, "/nonexistent/libgone.so.2", NULL, 0);
    struct lw_rec_segment vs = {0x7e1000000000, 0x2000, 0, 5, 0};
    fx_module(&b, 0x7e1000000000, LW_MOD_VDSO, &vs, 1, "linux-vdso.so.1", NULL, 0);
    fx_end(&b);
    char err[LW_READER_ERRLEN];
    struct lw_snapshot *s = lw_reader_parse(b.data, b.len, "self", err);
    cr_assert_not_null(s, "%s", err);
    fx_free(&b);
    return s;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

static const struct lw_sym_options quiet = {.quiet = true};

Test(symbolize, function_file_line_of_own_code)
{
    uintptr_t ret = lwtest_plain();
    struct lw_snapshot *s = self_snapshot(NULL, 0);
    lw_sym_t *sym = lw_sym_new(s, &quiet);
    const struct lw_sym_loc *loc = lw_sym_lookup(sym, ret);
    cr_assert_eq(loc->address, ret);
    cr_assert(ends_with(loc->module, "test_tools_symbolize"), "%s", loc->module);
    cr_assert_str_eq(loc->module_name, "test_tools_symbolize");
    cr_assert_eq(loc->offset, ret - s->modules[0].base);
    cr_assert_eq(loc->nframes, 1);
    cr_assert_str_eq(loc->frames[0].function, "lwtest_plain");
    cr_assert(ends_with(loc->frames[0].file, "test_symbolize.c"), "%s", loc->frames[0].file);
    cr_assert_eq(loc->frames[0].line, (unsigned)plain_line);
    cr_assert_not(loc->frames[0].inlined);
    cr_assert_eq(lw_sym_lookup(sym, ret), loc, "second lookup is not cached");
    lw_sym_free(sym);
    lw_reader_free(s);
}

Test(symbolize, inlined_call_becomes_two_frames)
{
    uintptr_t ret = lwtest_outer();
    struct lw_snapshot *s = self_snapshot(NULL, 0);
    lw_sym_t *sym = lw_sym_new(s, &quiet);
    const struct lw_sym_loc *loc = lw_sym_lookup(sym, ret);
    cr_assert_eq(loc->nframes, 2);
    cr_assert_str_eq(loc->frames[0].function, "lwtest_inner");
    cr_assert(loc->frames[0].inlined);
    cr_assert_eq(loc->frames[0].line, (unsigned)inner_line);
    cr_assert(ends_with(loc->frames[0].file, "test_symbolize.c"), "%s", loc->frames[0].file);
    cr_assert_str_eq(loc->frames[1].function, "lwtest_outer");
    cr_assert_not(loc->frames[1].inlined);
    cr_assert_eq(loc->frames[1].line, (unsigned)outer_line);
    cr_assert(ends_with(loc->frames[1].file, "test_symbolize.c"), "%s", loc->frames[1].file);
    lw_sym_free(sym);
    lw_reader_free(s);
}

Test(symbolize, changed_build_id_is_not_trusted)
{
    uintptr_t ret = lwtest_plain();
    static const uint8_t wrong[20] = {1, 2, 3};
    struct lw_snapshot *s = self_snapshot(wrong, sizeof wrong);
    lw_sym_t *sym = lw_sym_new(s, &quiet);
    const struct lw_sym_loc *loc = lw_sym_lookup(sym, ret);
    cr_assert_eq(loc->nframes, 1);
    cr_assert_str_eq(loc->frames[0].function, "");
    cr_assert_str_eq(loc->frames[0].file, "");
    cr_assert_str_eq(loc->module_name, "test_tools_symbolize");
    cr_assert_eq(loc->offset, ret - s->modules[0].base);
    lw_sym_free(sym);
    lw_reader_free(s);
}

Test(symbolize, missing_module_vdso_and_stray_address)
{
    struct lw_snapshot *s = self_snapshot(NULL, 0);
    lw_sym_t *sym = lw_sym_new(s, &quiet);
    const struct lw_sym_loc *loc = lw_sym_lookup(sym, 0x7e0000001234);
    cr_assert_str_eq(loc->module, "/nonexistent/libgone.so.2");
    cr_assert_str_eq(loc->module_name, "libgone.so.2");
    cr_assert_eq(loc->offset, 0x1234);
    cr_assert_str_eq(loc->frames[0].function, "");
    loc = lw_sym_lookup(sym, 0x7e1000000100);
    cr_assert_str_eq(loc->module_name, "[vdso]");
    cr_assert_eq(loc->offset, 0x100);
    loc = lw_sym_lookup(sym, 0x10);
    cr_assert_str_eq(loc->module, "");
    cr_assert_str_eq(loc->module_name, "");
    cr_assert_eq(loc->offset, 0);
    cr_assert_eq(loc->nframes, 1);
    loc = lw_sym_lookup(sym, 0);
    cr_assert_str_eq(loc->frames[0].function, "");
    lw_sym_free(sym);
    lw_reader_free(s);
}

Test(symbolize, debuginfod_is_off_by_default)
{
    setenv("DEBUGINFOD_URLS", "http://127.0.0.1:1/", 1);
    struct lw_snapshot *s = self_snapshot(NULL, 0);
    lw_sym_free(lw_sym_new(s, &quiet));
    cr_assert_null(getenv("DEBUGINFOD_URLS"));
    setenv("DEBUGINFOD_URLS", "http://127.0.0.1:1/", 1);
    struct lw_sym_options on = {.quiet = true, .debuginfod = true};
    lw_sym_free(lw_sym_new(s, &on));
    cr_assert_str_eq(getenv("DEBUGINFOD_URLS"), "http://127.0.0.1:1/");
    lw_reader_free(s);
}
