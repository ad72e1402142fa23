/*
 * sys.h - the library's only doors to the kernel: its own memory (raw
 * mmap system calls, never the interposed functions), the file operations
 * of the snapshot writer behind a replaceable table (tests feed a failing
 * disk), clocks and futexes. Nothing here allocates or takes a lock.
 */
#ifndef LW_SYS_H
#define LW_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Anonymous private memory for leakwatch's metadata; NULL on failure.
 * noreserve: address space only, pages are counted once touched. */
void *lw_sys_map(size_t len, bool noreserve);
void lw_sys_unmap(void *p, size_t len);

/* The writer's file operations. Tests replace lw_io with their own. */
struct lw_io {
    int (*open)(const char *path, int flags, mode_t mode);
    ssize_t (*write)(int fd, const void *buf, size_t len);
    int (*close)(int fd);
    int (*rename_noreplace)(const char *from, const char *to); /* -1 + errno EEXIST */
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
};
extern struct lw_io lw_io;
/* Restore the real operations. */
void lw_io_reset(void);

uint64_t lw_sys_realtime_ns(void);
uint64_t lw_sys_monotonic_ns(void);

/* Futex on a 32-bit word: wait while *addr == val (timeout_ns 0: forever);
 * wake up to n waiters. Async-signal-safe. */
int lw_sys_futex_wait(_Atomic uint32_t *addr, uint32_t val, uint64_t timeout_ns);
void lw_sys_futex_wake(_Atomic uint32_t *addr, int n);

/* A small mutex on a futex for the writer and the region ledger: never held
 * on the malloc/free path. lw_mutex_reset is for a fork child. */
typedef struct {
    _Atomic uint32_t word; /* 0 free, 1 held, 2 held with waiters */
} lw_mutex_t;
#define LW_MUTEX_INIT {0}
void lw_mutex_lock(lw_mutex_t *m);
void lw_mutex_unlock(lw_mutex_t *m);
static inline void lw_mutex_reset(lw_mutex_t *m) { __atomic_store_n((uint32_t *)&m->word, 0, __ATOMIC_RELAXED); }

#endif
