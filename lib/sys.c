/*
 * sys.c - raw memory, file operations, clocks and futexes for lib/ (see
 * sys.h). Metadata is mapped with the mmap system call itself, so our own
 * memory never passes through the interposed mmap.
 */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ThreadSanitizer (unit tests only: the preloaded library is never built
 * with it) must see memory being unmapped and mapped again, or a new table
 * placed where a freed one was looks like a race with the old accesses.
 * It sees the libc calls, not raw system calls. */
#if defined(__SANITIZE_THREAD__)
#define LW_SYS_LIBC_MAPS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LW_SYS_LIBC_MAPS 1
#endif
#endif

void *lw_sys_map(size_t len, bool noreserve)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0);
#ifdef LW_SYS_LIBC_MAPS
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
    return m == MAP_FAILED ? NULL : m;
#else
    long r = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
    return r == -1 ? NULL : (void *)r; /* syscall(): -1 and errno on failure */
#endif
}

void lw_sys_unmap(void *p, size_t len)
{
    if (!p)
        return;
#ifdef LW_SYS_LIBC_MAPS
    munmap(p, len);
#else
    syscall(SYS_munmap, p, len);
#endif
}

static int real_open(const char *path, int flags, mode_t mode)
{
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode);
}

static ssize_t real_write(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

static int real_close(int fd)
{
    return close(fd);
}

static int real_rename_noreplace(const char *from, const char *to)
{
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

static int real_unlink(const char *path)
{
    return unlink(path);
}

static int real_mkdir(const char *path, mode_t mode)
{
    return mkdir(path, mode);
}

struct lw_io lw_io = {real_open, real_write, real_close, real_rename_noreplace, real_unlink, real_mkdir};

void lw_io_reset(void)
{
    lw_io = (struct lw_io){real_open, real_write, real_close, real_rename_noreplace, real_unlink, real_mkdir};
}

uint64_t lw_sys_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t lw_sys_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int lw_sys_futex_wait(_Atomic uint32_t *addr, uint32_t val, uint64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
        ts.tv_nsec = (long)(timeout_ns % 1000000000u);
        tp = &ts;
    }
    return (int)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

void lw_sys_futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Three-state futex mutex (free / held / held with waiters). */
void lw_mutex_lock(lw_mutex_t *m)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong_explicit(&m->word, &c, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    if (c != 2)
        c = atomic_exchange_explicit(&m->word, 2, memory_order_acquire);
    while (c != 0) {
        lw_sys_futex_wait(&m->word, 2, 0);
        c = atomic_exchange_explicit(&m->word, 2, memory_order_acquire);
    }
}

void lw_mutex_unlock(lw_mutex_t *m)
{
    if (atomic_exchange_explicit(&m->word, 0, memory_order_release) == 2)
        lw_sys_futex_wake(&m->word, 1);
}
