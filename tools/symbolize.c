/*
 * symbolize.c - offline symbolization with libdwfl: each MODULE record is
 * reported at its recorded load bias (dwfl_report_elf), debug info is found
 * the standard way (build-id and .gnu_debuglink under /usr/lib/debug), and
 * inline chains come from dwarf_getscopes + dwarf_getscopes_die. Lookups are
 * cached per address (uthash); strings are interned and owned by lw_sym_t.
 */
#include "symbolize.h"

#include <dlfcn.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

#include "cli.h"

struct istr {
    UT_hash_handle hh;
    char s[];
};

struct cache_ent {
    uint64_t address;
    struct lw_sym_loc loc;
    UT_hash_handle hh;
};

/* One address range of a module, for address -> module lookups. */
struct seg_range {
    uint64_t start, end;
    size_t module;
};

struct mod_state {
    Dwfl_Module *dwfl_mod; /* NULL: not symbolizable */
    const char *name;      /* interned basename */
    const char *path;      /* interned path */
};

struct lw_sym {
    const struct lw_snapshot *snap;
    Dwfl *dwfl;
    struct mod_state *mods;
    struct seg_range *ranges;
    size_t nranges;
    struct istr *strings;
    struct cache_ent *cache;
    char *(*demangle)(const char *, char *, size_t *, int *);
    bool demangle_tried;
};

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

/* Intern a string: equal strings share one copy owned by sym. */
static const char *intern(lw_sym_t *sym, const char *s)
{
    struct istr *e;
    if (!s)
        s = "";
    size_t len = strlen(s);
    HASH_FIND(hh, sym->strings, s, len, e);
    if (e)
        return e->s;
    e = malloc(sizeof *e + len + 1);
    if (!e)
        abort();
    memcpy(e->s, s, len + 1);
    HASH_ADD_KEYPTR(hh, sym->strings, e->s, len, e);
    return e->s;
}

/* Symbol names for people: without a symbol version ("memcpy@@GLIBC_2.14"),
 * and C++ names demangled with libstdc++'s __cxa_demangle if it can be
 * loaded (dlopen: leakwatch itself does not link libstdc++). */
static const char *pretty_name(lw_sym_t *sym, const char *name)
{
    if (!name)
        return intern(sym, "");
    char plain[512];
    const char *at = strchr(name, '@');
    if (at && at != name && (size_t)(at - name) < sizeof plain) {
        memcpy(plain, name, (size_t)(at - name));
        plain[at - name] = '\0';
        name = plain;
    }
    if (strncmp(name, "_Z", 2) != 0)
        return intern(sym, name);
    if (!sym->demangle_tried) {
        sym->demangle_tried = true;
        void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
        if (h)
            *(void **)&sym->demangle = dlsym(h, "__cxa_demangle");
    }
    if (sym->demangle) {
        int status = -1;
        char *d = sym->demangle(name, NULL, NULL, &status);
        if (d && status == 0) {
            const char *r = intern(sym, d);
            free(d);
            return r;
        }
        free(d);
    }
    return intern(sym, name);
}

/* A source path from DWARF: relative names are relative to the
 * compilation directory when that is absolute (builds that remap it, like
 * Debian's glibc, leave a relative one: then the name stays relative);
 * "." and "dir/.." components are folded. */
static const char *source_path(lw_sym_t *sym, const char *comp_dir, const char *file)
{
    char buf[4096];
    if (!file || !*file)
        return intern(sym, "");
    if (file[0] == '/' || !comp_dir || comp_dir[0] != '/')
        snprintf(buf, sizeof buf, "%s", file);
    else
        snprintf(buf, sizeof buf, "%s/%s", comp_dir, file);
    /* Fold in place: components are copied to `out`, ".." pops one. */
    char out[4096];
    size_t o = 0;
    bool abs = buf[0] == '/';
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (!strcmp(c, "..") && o > 0) {
            char *slash = memrchr(out, '/', o);
            size_t start = slash ? (size_t)(slash - out) + 1 : 0;
            if (strcmp(out + start, "..") != 0) {
                o = slash ? (size_t)(slash - out) : 0;
                out[o] = '\0';
                continue;
            }
        }
        size_t cl = strlen(c);
        if (o + cl + 2 >= sizeof out)
            return intern(sym, file);
        if (o > 0 || abs)
            out[o++] = '/';
        memcpy(out + o, c, cl + 1);
        o += cl;
    }
    if (o == 0)
        return intern(sym, abs ? "/" : ".");
    return intern(sym, out);
}

static int cmp_range(const void *a, const void *b)
{
    const struct seg_range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static bool is_vdso(const struct lw_snap_module *m)
{
    return (m->flags & LW_MOD_VDSO) || !strncmp(m->path, "linux-vdso", 10) ||
           !strcmp(m->path, "[vdso]") || m->path[0] == '\0';
}

static bool build_id_differs(Dwfl_Module *dm, const struct lw_snap_module *m)
{
    const unsigned char *bits;
    GElf_Addr vaddr;
    if (m->build_id_len == 0)
        return false;
    int n = dwfl_module_build_id(dm, &bits, &vaddr);
    return n != (int)m->build_id_len || memcmp(bits, m->build_id, m->build_id_len) != 0;
}

/* Report every module to libdwfl; warn once about missing or changed files. */
static void report_modules(lw_sym_t *sym, const struct lw_sym_options *opt)
{
    const struct lw_snapshot *s = sym->snap;
    size_t missing = 0, changed = 0;
    const char *first_missing = NULL, *first_changed = NULL;
    char why[256] = "";

    dwfl_report_begin(sym->dwfl);
    for (size_t i = 0; i < s->nmodules; i++) {
        const struct lw_snap_module *m = &s->modules[i];
        if (is_vdso(m))
            continue;
        if (access(m->path, R_OK) != 0) {
            if (!missing++) {
                first_missing = m->path;
                snprintf(why, sizeof why, "%s", strerror(errno));
            }
            continue;
        }
        Dwfl_Module *dm = dwfl_report_elf(sym->dwfl, sym->mods[i].name, m->path, -1, m->base, false);
        if (!dm && !missing++) {
            first_missing = m->path;
            snprintf(why, sizeof why, "%s", dwfl_errmsg(-1));
        }
        sym->mods[i].dwfl_mod = dm;
    }
    dwfl_report_end(sym->dwfl, NULL, NULL);
    for (size_t i = 0; i < s->nmodules; i++) {
        Dwfl_Module *dm = sym->mods[i].dwfl_mod;
        if (dm && build_id_differs(dm, &s->modules[i])) {
            sym->mods[i].dwfl_mod = NULL;
            if (!changed++)
                first_changed = s->modules[i].path;
        }
    }
    if (opt->quiet)
        return;
    if (missing)
        lw_cli_warn("%zu module(s) could not be read (first: %s: %s); their frames show as "
                    "module+offset",
                    missing, first_missing, why);
    if (changed)
        lw_cli_warn("%zu module(s) changed since the snapshot was taken (build-id differs; first: "
                    "%s); their frames show as module+offset",
                    changed, first_changed);
}

lw_sym_t *lw_sym_new(const struct lw_snapshot *s, const struct lw_sym_options *opt)
{
    static const struct lw_sym_options defaults = {0};
    if (!opt)
        opt = &defaults;
    if (!opt->debuginfod)
        unsetenv("DEBUGINFOD_URLS"); /* libdw only loads debuginfod when this is set */
    lw_sym_t *sym = calloc(1, sizeof *sym);
    if (!sym)
        return NULL;
    sym->snap = s;
    sym->mods = calloc(s->nmodules ? s->nmodules : 1, sizeof *sym->mods);
    size_t nsegs = 0;
    for (size_t i = 0; i < s->nmodules; i++)
        nsegs += s->modules[i].nsegs;
    sym->ranges = calloc(nsegs ? nsegs : 1, sizeof *sym->ranges);
    if (!sym->mods || !sym->ranges) {
        lw_sym_free(sym);
        return NULL;
    }
    for (size_t i = 0; i < s->nmodules; i++) {
        const struct lw_snap_module *m = &s->modules[i];
        const char *slash = strrchr(m->path, '/');
        sym->mods[i].path = intern(sym, m->path);
        sym->mods[i].name = is_vdso(m) ? intern(sym, "[vdso]") : intern(sym, slash ? slash + 1 : m->path);
        for (uint32_t k = 0; k < m->nsegs; k++) {
            if (m->segs[k].size == 0 || m->segs[k].start + m->segs[k].size < m->segs[k].start)
                continue;
            sym->ranges[sym->nranges++] =
                (struct seg_range){m->segs[k].start, m->segs[k].start + m->segs[k].size, i};
        }
    }
    qsort(sym->ranges, sym->nranges, sizeof *sym->ranges, cmp_range);
    sym->dwfl = dwfl_begin(&callbacks);
    if (sym->dwfl)
        report_modules(sym, opt);
    return sym;
}

/* The module whose segment holds addr, or -1. Overlaps: the latest start wins. */
static long find_module(const lw_sym_t *sym, uint64_t addr)
{
    size_t lo = 0, hi = sym->nranges;
    while (lo < hi) { /* first range with start > addr */
        size_t mid = lo + (hi - lo) / 2;
        if (sym->ranges[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i-- > 0;) {
        if (addr < sym->ranges[i].end)
            return (long)sym->ranges[i].module;
        if (lo - i > 64) /* ranges do not nest deeply; stop scanning */
            break;
    }
    return -1;
}

/* Function name of a DWARF scope: the demangled linkage name for C++,
 * else DW_AT_name (C linkage names are asm aliases like __GI_memcpy). */
static const char *die_function(lw_sym_t *sym, Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *n = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
        n = dwarf_formstring(&a);
    if (n && !strncmp(n, "_Z", 2))
        return pretty_name(sym, n);
    const char *name = dwarf_diename(die);
    return pretty_name(sym, name ? name : n);
}

struct frame_list {
    struct lw_sym_frame *v;
    size_t n, cap;
};

static void push_frame(struct frame_list *fl, const char *fn, const char *file, unsigned line,
                       bool inlined)
{
    if (fl->n == fl->cap) {
        fl->cap = fl->cap ? fl->cap * 2 : 4;
        fl->v = realloc(fl->v, fl->cap * sizeof *fl->v);
        if (!fl->v)
            abort();
    }
    fl->v[fl->n++] = (struct lw_sym_frame){fn, file, line, inlined};
}

/* Frames for pc in module dm: the inline chain, innermost first, ending
 * with the real (out-of-line) function. */
static void resolve(lw_sym_t *sym, Dwfl_Module *dm, Dwarf_Addr pc, struct frame_list *fl)
{
    const char *symname = dwfl_module_addrname(dm, pc);
    const char *file = "";
    unsigned line = 0;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(dm, pc, &bias);
    const char *comp_dir = NULL;
    Dwarf_Attribute cda;
    if (cudie && dwarf_attr(cudie, DW_AT_comp_dir, &cda))
        comp_dir = dwarf_formstring(&cda);
    Dwfl_Line *dl = dwfl_module_getsrc(dm, pc);
    if (dl) {
        int ln = 0;
        const char *f = dwfl_lineinfo(dl, NULL, &ln, NULL, NULL, NULL);
        if (f) {
            file = source_path(sym, comp_dir, f);
            line = ln > 0 ? (unsigned)ln : 0;
        }
    }

    Dwarf_Die *scopes = NULL;
    int n = cudie ? dwarf_getscopes(cudie, pc - bias, &scopes) : 0;
    if (n > 0) {
        Dwarf_Die *chain = NULL;
        int m = dwarf_getscopes_die(&scopes[0], &chain);
        Dwarf_Files *files = NULL;
        size_t nfiles = 0;
        if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0)
            files = NULL;
        for (int i = 0; i < m; i++) {
            int tag = dwarf_tag(&chain[i]);
            if (tag == DW_TAG_inlined_subroutine) {
                push_frame(fl, die_function(sym, &chain[i]), file, line, true);
                Dwarf_Attribute a;
                Dwarf_Word w = 0;
                file = "";
                line = 0;
                if (dwarf_attr(&chain[i], DW_AT_call_file, &a) && dwarf_formudata(&a, &w) == 0 &&
                    files && w < nfiles)
                    file = source_path(sym, comp_dir, dwarf_filesrc(files, w, NULL, NULL));
                if (dwarf_attr(&chain[i], DW_AT_call_line, &a) && dwarf_formudata(&a, &w) == 0)
                    line = (unsigned)w;
            } else if (tag == DW_TAG_subprogram) {
                break;
            }
        }
        free(chain);
    }
    free(scopes);
    push_frame(fl, pretty_name(sym, symname), file, line, false);
}

const struct lw_sym_loc *lw_sym_lookup(lw_sym_t *sym, uint64_t address)
{
    struct cache_ent *e;
    HASH_FIND(hh, sym->cache, &address, sizeof address, e);
    if (e)
        return &e->loc;
    e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->address = address;
    e->loc.address = address;
    e->loc.module = e->loc.module_name = intern(sym, "");
    struct frame_list fl = {0};
    long mi = find_module(sym, address);
    if (mi >= 0) {
        e->loc.module = sym->mods[mi].path;
        e->loc.module_name = sym->mods[mi].name;
        e->loc.offset = address - sym->snap->modules[mi].base;
        if (sym->mods[mi].dwfl_mod && address > 0)
            resolve(sym, sym->mods[mi].dwfl_mod, address - 1, &fl);
    }
    if (fl.n == 0)
        push_frame(&fl, intern(sym, ""), intern(sym, ""), 0, false);
    e->loc.frames = fl.v;
    e->loc.nframes = fl.n;
    HASH_ADD(hh, sym->cache, address, sizeof e->address, e);
    return &e->loc;
}

void lw_sym_free(lw_sym_t *sym)
{
    if (!sym)
        return;
    struct cache_ent *e, *etmp;
    HASH_ITER(hh, sym->cache, e, etmp) {
        HASH_DEL(sym->cache, e);
        free((void *)e->loc.frames);
        free(e);
    }
    struct istr *s, *stmp;
    HASH_ITER(hh, sym->strings, s, stmp) {
        HASH_DEL(sym->strings, s);
        free(s);
    }
    if (sym->dwfl)
        dwfl_end(sym->dwfl);
    free(sym->mods);
    free(sym->ranges);
    free(sym);
}
