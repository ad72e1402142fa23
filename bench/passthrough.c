/*
 * passthrough.c - the benchmark's floor: an LD_PRELOAD library that
 * interposes the same allocation and mapping functions as libleakwatch.so
 * and only forwards them to the next definition (dlsym(RTLD_NEXT)). It
 * records nothing. Allocations made while the real functions are being
 * resolved (dlsym may calloc) come from a small static bootstrap buffer.
 */
/* Both mmap and mmap64 are defined here: keep the header from renaming one. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define PT_EXPORT __attribute__((visibility("default")))

/* Every forwarded name, once. */
#define PT_FUNCTIONS(X)                                                           \
    X(malloc, void *, (size_t))                                                   \
    X(free, void, (void *))                                                       \
    X(calloc, void *, (size_t, size_t))                                           \
    X(realloc, void *, (void *, size_t))                                          \
    X(posix_memalign, int, (void **, size_t, size_t))                             \
    X(aligned_alloc, void *, (size_t, size_t))                                    \
    X(memalign, void *, (size_t, size_t))                                         \
    X(valloc, void *, (size_t))                                                   \
    X(pvalloc, void *, (size_t))                                                  \
    X(mmap, void *, (void *, size_t, int, int, int, off_t))                       \
    X(mmap64, void *, (void *, size_t, int, int, int, off_t))                     \
    X(munmap, int, (void *, size_t))                                              \
    X(mremap, void *, (void *, size_t, size_t, int, ...))                         \
    X(madvise, int, (void *, size_t, int))

#define PT_DECLARE(name, ret, args) static ret(*real_##name) args;
PT_FUNCTIONS(PT_DECLARE)

/* Bootstrap arena for allocations made inside dlsym. */
static _Alignas(64) char pt_boot[64 * 1024];
static size_t pt_boot_used;
static __thread int pt_resolving __attribute__((tls_model("initial-exec")));
static int pt_ready;

static int pt_is_boot(const void *p)
{
    return (const char *)p >= pt_boot && (const char *)p < pt_boot + sizeof pt_boot;
}

static void *pt_boot_alloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    size_t off = __atomic_fetch_add(&pt_boot_used, n, __ATOMIC_RELAXED);
    if (off + n > sizeof pt_boot) {
        static const char msg[] = "passthrough: bootstrap buffer exhausted\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        abort();
    }
    return pt_boot + off;
}

/* Resolve every real function; idempotent, so racing threads are harmless. */
static void pt_resolve(void)
{
    int saved = errno;
    pt_resolving = 1;
#define PT_RESOLVE(name, ret, args)                                                \
    {                                                                              \
        void *f = dlsym(RTLD_NEXT, #name);                                         \
        if (!f) {                                                                  \
            static const char msg[] = "passthrough: cannot resolve " #name "\n";   \
            ssize_t w = write(2, msg, sizeof msg - 1);                             \
            (void)w;                                                               \
            abort();                                                               \
        }                                                                          \
        __atomic_store_n((void **)&real_##name, f, __ATOMIC_RELAXED);              \
    }
    PT_FUNCTIONS(PT_RESOLVE)
    __atomic_store_n(&pt_ready, 1, __ATOMIC_RELEASE);
    pt_resolving = 0;
    errno = saved;
}

static inline __attribute__((always_inline)) int pt_init(void)
{
    if (__builtin_expect(__atomic_load_n(&pt_ready, __ATOMIC_ACQUIRE), 1))
        return 1;
    if (pt_resolving)
        return 0; /* inside dlsym: use the bootstrap arena */
    pt_resolve();
    return 1;
}

PT_EXPORT void *malloc(size_t n)
{
    if (!pt_init())
        return pt_boot_alloc(n);
    return real_malloc(n);
}

PT_EXPORT void free(void *p)
{
    if (!p || pt_is_boot(p))
        return;
    if (!pt_init())
        return;
    real_free(p);
}

PT_EXPORT void *calloc(size_t n, size_t m)
{
    if (!pt_init()) {
        if (m && n > SIZE_MAX / m)
            return NULL;
        return pt_boot_alloc(n * m); /* static storage is zeroed */
    }
    return real_calloc(n, m);
}

PT_EXPORT void *realloc(void *p, size_t n)
{
    if (pt_is_boot(p)) { /* move a bootstrap block to the real heap */
        void *q = malloc(n);
        if (q) {
            size_t avail = (size_t)(pt_boot + sizeof pt_boot - (char *)p);
            memcpy(q, p, n < avail ? n : avail);
        }
        return q;
    }
    if (!pt_init())
        return pt_boot_alloc(n);
    return real_realloc(p, n);
}

/* Aligned bootstrap allocation (only inside dlsym, never in practice). */
static void *pt_boot_aligned(size_t align, size_t n)
{
    if (align < 16)
        align = 16;
    char *p = pt_boot_alloc(n + align);
    return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}

PT_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (!pt_init()) {
        *out = pt_boot_aligned(align, n);
        return 0;
    }
    return real_posix_memalign(out, align, n);
}

PT_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (!pt_init())
        return pt_boot_aligned(align, n);
    return real_aligned_alloc(align, n);
}

PT_EXPORT void *memalign(size_t align, size_t n)
{
    if (!pt_init())
        return pt_boot_aligned(align, n);
    return real_memalign(align, n);
}

PT_EXPORT void *valloc(size_t n)
{
    if (!pt_init())
        return pt_boot_aligned(4096, n);
    return real_valloc(n);
}

PT_EXPORT void *pvalloc(size_t n)
{
    if (!pt_init())
        return pt_boot_aligned(4096, (n + 4095) & ~(size_t)4095);
    return real_pvalloc(n);
}

/* The mapping calls fall back to the raw system call inside dlsym. */
PT_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!pt_init())
        return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return real_mmap(addr, len, prot, flags, fd, off);
}

PT_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!pt_init())
        return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return real_mmap64(addr, len, prot, flags, fd, off);
}

PT_EXPORT int munmap(void *addr, size_t len)
{
    if (!pt_init())
        return (int)syscall(SYS_munmap, addr, len);
    return real_munmap(addr, len);
}

PT_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (!pt_init())
        return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
    return real_mremap(old, old_len, new_len, flags, new_addr);
}

PT_EXPORT int madvise(void *addr, size_t len, int advice)
{
    if (!pt_init())
        return (int)syscall(SYS_madvise, addr, len, advice);
    return real_madvise(addr, len, advice);
}
