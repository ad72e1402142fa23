/*
 * framename.h - one printable name per frame for the formats that need a
 * single string (folded stacks, pprof functions, the HTML flame graph's
 * fallback): the function, else "module+0xoffset", else "0xaddress".
 */
#ifndef LW_TOOLS_FRAMENAME_H
#define LW_TOOLS_FRAMENAME_H

#include <stddef.h>
#include <stdint.h>

#include "symbolize.h"

/* Write frame fr of loc (or of an unsymbolized address when loc is NULL)
 * into buf[len]; returns buf. Never fails; long names are cut. */
const char *lw_frame_name(const struct lw_sym_loc *loc, const struct lw_sym_frame *fr,
                          uint64_t address, char *buf, size_t len);

#endif
