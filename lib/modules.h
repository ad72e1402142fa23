/*
 * modules.h - the module map: one MODULE record per loaded object (path,
 * load bias, PT_LOAD segments, GNU build-id read from memory), so that
 * symbolization can happen offline. Uses dl_iterate_phdr: call it only from
 * the writer, never from a signal handler.
 */
#ifndef LW_MODULES_H
#define LW_MODULES_H

#include "snapshot.h"

/* Append the MODULE records to o. */
void lw_modules_write(struct lw_out *o);

#endif
