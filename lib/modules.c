/*
 * modules.c - writes the module map (see modules.h). Reads program headers
 * and notes straight from memory; the only file it touches is the
 * /proc/self/exe link. No allocation.
 */
#include "modules.h"

#include <elf.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "../include/lw_format.h"
#include "lw.h"

struct walk {
    struct lw_out *o;
    int index;
    char exe[4096];
    ssize_t exe_len;
};

static size_t find_build_id(struct dl_phdr_info *info, const unsigned char **id)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            size_t name = (nh->n_namesz + 3) & ~(size_t)3;
            size_t desc = (nh->n_descsz + 3) & ~(size_t)3;
            const unsigned char *data = p + sizeof *nh;
            if (data + name + desc > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(data, "GNU", 4)) {
                *id = data + name;
                return nh->n_descsz > 64 ? 64 : nh->n_descsz;
            }
            p = data + name + desc;
        }
    }
    return 0;
}

static int visit(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct walk *w = arg;
    const char *path = info->dlpi_name ? info->dlpi_name : "";
    uint32_t flags = 0;
    if (w->index++ == 0 && !*path) {
        flags |= LW_MOD_MAIN;
        path = w->exe_len > 0 ? w->exe : "";
    } else if (!strncmp(path, "linux-vdso", 10) || !strncmp(path, "linux-gate", 10)) {
        flags |= LW_MOD_VDSO;
    }
    uint32_t nsegs = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD)
            nsegs++;
    const unsigned char *id = NULL;
    size_t id_len = find_build_id(info, &id);
    size_t path_len = strnlen(path, 4095);

    struct lw_rec_module m = {
        .base = info->dlpi_addr, .nsegs = nsegs, .path_len = (uint32_t)path_len,
        .build_id_len = (uint32_t)id_len, .flags = flags,
    };
    lw_out_begin(w->o, LW_REC_MODULE,
                 (uint32_t)(sizeof m + nsegs * sizeof(struct lw_rec_segment) + path_len + id_len));
    lw_out_bytes(w->o, &m, sizeof m);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        struct lw_rec_segment s = {
            .start = info->dlpi_addr + ph->p_vaddr, .size = ph->p_memsz,
            .file_offset = ph->p_offset, .flags = ph->p_flags,
        };
        lw_out_bytes(w->o, &s, sizeof s);
    }
    lw_out_bytes(w->o, path, path_len);
    lw_out_bytes(w->o, id, id_len);
    lw_out_end(w->o);
    return 0;
}

void lw_modules_write(struct lw_out *o)
{
    static struct walk w; /* writers are serialised by the snapshot mutex */
    w.o = o;
    w.index = 0;
    w.exe_len = readlink("/proc/self/exe", w.exe, sizeof w.exe - 1);
    if (w.exe_len > 0)
        w.exe[w.exe_len] = '\0';
    dl_iterate_phdr(visit, &w);
}
