/*
 * trigger.h - when snapshots are written: the dump signal (its handler only
 * sets a flag and wakes the writer thread with a futex), program exit, and
 * the fork handlers that keep a child's state whole. The writer thread is
 * started lazily, by the first hook call after the first request: a
 * program that never asks for a snapshot stays single-threaded (glibc's
 * single-thread paths, unshare(CLONE_NEWUSER), fork in signal handlers).
 * It blocks every signal but the dump signal and never allocates.
 */
#ifndef LW_TRIGGER_H
#define LW_TRIGGER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Install the signal handler (chaining any previous one). Call once, from
 * the constructor. Starts no thread. */
void lw_trigger_start(void);

/* Register the fork handlers. Call once, at the very first initialisation,
 * before the real allocator runs: fork runs prepare handlers last-registered
 * first, so ours then run after an allocator's (jemalloc's), which take the
 * allocator's locks. The other way round, a thread inside the allocator
 * waiting on our region lock would hold a lock the fork needs. */
void lw_trigger_register_fork(void);

/* Requests not yet handed to a writer thread; the hooks test it (one
 * relaxed load) and call lw_trigger_serve when it is set. */
extern _Atomic uint32_t lw_trigger_pending;
/* Start the writer thread if there is none and hand it the request. Call
 * from a hook, in the thread's normal context, with the guard set. */
void lw_trigger_serve(void);

/* Write the exit snapshot (once per process image). */
void lw_trigger_exit(void);


#endif
