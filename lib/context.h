/*
 * context.h - coroutines made by makecontext, for unwinders: the function a
 * context starts returns into lw_context_end, whose unwind information
 * ends the stack there (context.c says why and how).
 */
#ifndef LW_CONTEXT_H
#define LW_CONTEXT_H

#include <ucontext.h>

/* Where a context's function returns once switched to: ends every unwind,
 * then goes on to glibc's __start_context. */
extern const char lw_context_end[];

/* Learn glibc's layout of a new context (once, at start-up); off if it is
 * not the one this file knows, or the process has a shadow stack. */
void lw_context_init(void);

/* Before a switch to ucp (setcontext, swapcontext): if ucp was made and
 * never run, its stack ends at lw_context_end. NULL: nothing. */
void lw_context_switching(const ucontext_t *ucp);

#endif
