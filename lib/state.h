/*
 * state.h - process-wide state and counters of the library, and the steps
 * of starting up and of becoming a fork child that are not about hooks.
 * Nothing here allocates through the host.
 */
#ifndef LW_STATE_H
#define LW_STATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "lw.h"

struct lw_counters {
    _Atomic uint64_t dropped_blocks; /* not tracked: table full or value out of range */
    _Atomic uint64_t dropped_bytes;
    _Atomic uint64_t stale_blocks;   /* tracked blocks whose free we never saw */
    _Atomic uint64_t reentrant_calls; /* malloc-family calls made while this thread was in leakwatch */
};
extern struct lw_counters lw_counters;

/* Read the options (from `environ`, or /proc/self/environ when the C
 * library has not set it up yet), map the tables. Reports bad options on
 * stderr. Returns false if tracking cannot run (no memory). */
bool lw_core_init(char **envp);

/* May the gates use membarrier (set by lw_core_init before the tables)?
 * Not under a seccomp filter: one that kills on unknown system calls
 * would kill the program at our first membarrier. */
extern bool lw_core_membarrier_ok;

/* Reset what a fork child must not inherit (pids, pauses, sequence). */
void lw_core_fork_child(void);

/* The program is about to install a seccomp filter, which may kill on
 * membarrier: the table's and the capture's fast gates go off for good
 * and nothing calls membarrier afterwards (not a later fork either). Safe
 * before and during start-up; never allocates. */
void lw_gates_counted_only(void);

#endif
