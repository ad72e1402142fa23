/*
 * trigger.h - when snapshots are written: the dump signal (its handler only
 * sets a flag and wakes the writer thread with a futex), program exit, and
 * the fork handlers that keep a child's state whole. The writer thread
 * blocks every signal but the dump signal and never allocates.
 */
#ifndef LW_TRIGGER_H
#define LW_TRIGGER_H

#include <stdbool.h>

/* Install the signal handler (chaining any previous one), start the writer
 * thread, register the fork handlers. Call once, from the constructor,
 * never from inside the loader (dlopen) or a hook. */
void lw_trigger_start(void);

/* Write the exit snapshot (once per process image). */
void lw_trigger_exit(void);

/* Ask the writer thread for a snapshot as if the signal had come. */
void lw_trigger_request(void);

/* true once the writer thread runs (tests). */
bool lw_trigger_thread_running(void);

#endif
