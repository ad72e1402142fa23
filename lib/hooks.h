/*
 * hooks.h - every symbol leakwatch interposes, once. The list generates the
 * table of real functions and its resolution (hooks.c); adding a hook is a
 * line here plus a short wrapper there.
 * X(name, return type, parameter list, argument list)
 */
#ifndef LW_HOOKS_H
#define LW_HOOKS_H

#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <sys/types.h>
#include <ucontext.h>

#define LW_HOOKED_FUNCTIONS(X)                                                                  \
    X(malloc, void *, (size_t n), (n))                                                          \
    X(free, void, (void *p), (p))                                                               \
    X(calloc, void *, (size_t n, size_t sz), (n, sz))                                           \
    X(realloc, void *, (void *p, size_t n), (p, n))                                             \
    X(reallocarray, void *, (void *p, size_t n, size_t sz), (p, n, sz))                         \
    X(posix_memalign, int, (void **out, size_t align, size_t n), (out, align, n))              \
    X(aligned_alloc, void *, (size_t align, size_t n), (align, n))                              \
    X(memalign, void *, (size_t align, size_t n), (align, n))                                   \
    X(valloc, void *, (size_t n), (n))                                                          \
    X(pvalloc, void *, (size_t n), (n))                                                         \
    X(malloc_usable_size, size_t, (void *p), (p))                                               \
    X(mmap, void *, (void *a, size_t n, int prot, int flags, int fd, off_t off),                \
      (a, n, prot, flags, fd, off))                                                             \
    X(mmap64, void *, (void *a, size_t n, int prot, int flags, int fd, off_t off),              \
      (a, n, prot, flags, fd, off))                                                             \
    X(munmap, int, (void *a, size_t n), (a, n))                                                 \
    X(mremap, void *, (void *old, size_t oldn, size_t newn, int flags, ...),                  \
      (old, oldn, newn, flags, new_addr))                                                       \
    X(madvise, int, (void *a, size_t n, int advice), (a, n, advice))                           \
    X(pipe, int, (int fds[2]), (fds))                                                           \
    X(pipe2, int, (int fds[2], int flags), (fds, flags))                                       \
    X(sigaltstack, int, (const stack_t *ss, stack_t *old), (ss, old))                          \
    X(_exit, void, (int status), (status))                                                      \
    X(_Exit, void, (int status), (status))                                                      \
    X(pthread_create, int,                                                                      \
      (pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg),               \
      (t, attr, fn, arg))                                                                       \
    X(prctl, int, (int option, ...), (option, a2, a3, a4, a5))                                  \
    X(dlclose, int, (void *h), (h))                                                             \
    X(setcontext, int, (const ucontext_t *ucp), (ucp))                                          \
    X(swapcontext, int, (ucontext_t *oucp, const ucontext_t *ucp), (oucp, ucp))                 \
    X(syscall, long, (long nr, ...), (nr, a1, a2, a3, a4, a5, a6))

#endif
