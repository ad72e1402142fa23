/*
 * framename.c - printable frame names (see framename.h).
 */
#include "framename.h"

#include <inttypes.h>
#include <stdio.h>

const char *lw_frame_name(const struct lw_sym_loc *loc, const struct lw_sym_frame *fr,
                          uint64_t address, char *buf, size_t len)
{
    if (fr && fr->function && fr->function[0])
        snprintf(buf, len, "%s", fr->function);
    else if (loc && loc->module_name && loc->module_name[0])
        snprintf(buf, len, "%s+0x%" PRIx64, loc->module_name, loc->offset);
    else
        snprintf(buf, len, "0x%" PRIx64, loc ? loc->address : address);
    return buf;
}
