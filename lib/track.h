/*
 * track.h - what a hook records, once the real function has answered:
 * blocks into the live table and their stacks' counters, mappings and
 * advice into the region ledger. Each function sets the thread's guard
 * itself and preserves errno. None allocates through the host.
 */
#ifndef LW_TRACK_H
#define LW_TRACK_H

#include <stdbool.h>
#include <stddef.h>

#include "table.h"

/* A block of n bytes now lives at p, allocated from the caller's stack.
 * skip: frames to cut in addition to leakwatch's own (tests). Returns p,
 * so a hook can end in a tail call (its frame then needs no unwinding). */
void *lw_track_alloc(void *p, size_t n, int skip);

/* p is about to be freed; call before the real free. */
void lw_track_free(void *p);

/* realloc, step 1: take p out of the table without counting a free yet
 * (the real realloc may fail). true if p was tracked; in sampling mode
 * always (every block is in the totals; b->stack 0 if p was not sampled). */
bool lw_track_take(void *p, struct lw_block *b);
/* realloc failed: p lives on unchanged. */
void lw_track_put_back(void *p, const struct lw_block *b);
/* realloc succeeded: count the old block, which lived at p, as freed. */
void lw_track_count_free(void *p, const struct lw_block *b);

/* A new mapping. by_allocator: made inside a malloc-family call. */
void lw_track_mmap(void *p, size_t len, int prot, int flags, int fd, bool by_allocator, int skip);
/* The whole of a munmap call: the real call with the ledger locked, the
 * range forgotten only if the kernel accepted it (no other mapping can be
 * recorded there in between). Returns the real result, errno intact. */
int lw_track_munmap(int (*real)(void *, size_t), void *p, size_t len);
/* The whole of an mremap call: stack, then the real call with the ledger
 * locked (so no other mapping can take the old range before we record),
 * then the move. Returns what the real mremap returned, errno intact. */
typedef void *(*lw_mremap_fn)(void *old, size_t oldn, size_t newn, int flags, ...);
void *lw_track_mremap(lw_mremap_fn real, void *old, size_t oldn, size_t newn, int flags,
                      void *new_addr, bool by_allocator);
/* After a successful madvise(MADV_FREE / MADV_DONTNEED). */
void lw_track_madvise(void *p, size_t len, int advice);

#endif
