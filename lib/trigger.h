/*
 * trigger.h - when snapshots are written: the dump signal (its handler only
 * sets a flag and wakes the writer thread with a futex), program exit, and
 * the fork handlers that keep a child's state whole; interval snapshots
 * and the heap threshold. When the writer thread starts (see trigger.c):
 * at start-up if an interval or a usage threshold is set, when the
 * program starts its first thread, or at the first hook call after a
 * request. A single-threaded
 * program that asks for nothing stays single-threaded (glibc's
 * single-thread paths, unshare(CLONE_NEWUSER), fork in signal handlers).
 * The writer blocks every signal but the dump signal and never allocates.
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

/* The program has started a thread (it is no longer single-threaded):
 * start the writer thread now if the dump signal is on. */
void lw_trigger_program_threaded(void);

/* ---- the heap threshold ----
 * Heap in use is summed per thread in lw_heap_delta and added to a global
 * every lw_heap_chunk bytes; the global is compared with the next line to
 * cross. Only a crossing takes the cold path, which computes heap in use
 * exactly from the stack counters and, if due, writes the snapshot on the
 * allocating thread before malloc returns. Off (one predictable branch)
 * without LEAKWATCH_HEAP_THRESHOLD. */
extern bool lw_heap_watch;
extern int64_t lw_heap_chunk;
extern __thread int64_t lw_heap_delta;
/* Arm the heap threshold from the options (at initialisation). */
void lw_trigger_heap_init(void);
/* Add this thread's delta to the global and check it (guard set). */
void lw_trigger_heap_flush(void);
static inline void lw_trigger_heap_add(int64_t d)
{
    if (__builtin_expect(lw_heap_watch, 0)) {
        lw_heap_delta += d;
        if (lw_heap_delta >= lw_heap_chunk || lw_heap_delta <= -lw_heap_chunk)
            lw_trigger_heap_flush();
    }
}


#endif
