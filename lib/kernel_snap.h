/*
 * kernel_snap.h - the kernel records of a snapshot: KERNEL_PROC,
 * KERNEL_CGROUP, PAGE_CACHE (one per file, largest first) and ALLOC_STATS.
 * Buffers are mapped once at init; writing reads /proc and the cgroup with
 * raw system calls and never allocates through the host or uses stdio.
 * Each source degrades on its own: unreadable means "not available" in
 * the record (or no record), and one warning at most for the whole run.
 */
#ifndef LW_KERNEL_SNAP_H
#define LW_KERNEL_SNAP_H

#include <stdbool.h>
#include <stddef.h>

#include "snapshot.h"

/* Map the buffers and find the allocator's statistics entry point.
 * Call during start-up (dlsym). false: no memory; the records are left out. */
bool lw_ksnap_init(void);

/* Write the kernel records into o. Called by the snapshot writer with its
 * lock held (so the buffers have one user). */
void lw_ksnap_write(struct lw_out *o);

/* Bytes of the buffers mapped at init (leakwatch's own memory). */
size_t lw_ksnap_memory_bytes(void);

/* A fork child: the lock may have been held by a thread that is gone. */
void lw_ksnap_fork_child(void);

#endif
