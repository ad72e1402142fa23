/*
 * threads.h - threads the program starts with pthread_create: the creation
 * stack (a STACK of kind THREAD: created / exited counts and configured
 * stack bytes) and one record per live thread (tid, stack range, start
 * time), written as THREAD records with the resident bytes of each stack
 * (mincore, bounded). The start routine is wrapped so that every way out
 * (return, pthread_exit, cancellation) is seen by a cleanup handler; the
 * program's return values, errno, detach state and TLS destructors are
 * untouched. Records live in memory mapped up front; nothing allocates
 * through the host.
 */
#ifndef LW_THREADS_H
#define LW_THREADS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef int (*lw_pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* Reserve the record pool (address space; pages touched as threads come). */
bool lw_threads_init(void);

/* The whole of a pthread_create call from the program. Returns what the
 * real one returned, errno intact. */
int lw_threads_create(lw_pthread_create_fn real, pthread_t *t, const pthread_attr_t *attr,
                      void *(*fn)(void *), void *arg);

/* Threads the program has started so far (ever; not reset by exits). */
uint32_t lw_threads_started(void);

struct lw_out;
/* One THREAD record per live thread. mincore_vec: the writer's buffer of
 * vec_len bytes. Writer only. */
void lw_threads_write(struct lw_out *o, unsigned char *mincore_vec, uint64_t vec_len);
uint64_t lw_threads_memory_bytes(void);

/* In a fork child: only the forking thread survives. */
void lw_threads_fork_child(void);

#endif
