/*
 * hooks.c - the interposed functions (list in hooks.h). Each wrapper makes
 * sure init ran, passes through when the thread is inside leakwatch (guard)
 * or inside the allocator (in_alloc), calls the real function and records.
 * free/munmap record before the real call, so the address cannot be reused
 * in between. Allocations made before init finishes are served from a
 * static arena that free and realloc recognise. Only this file is not in
 * lw_core: linked into a test, it would interpose the test itself.
 */
/* mmap and mmap64 are two symbols we define: no header renaming. */
#undef _FILE_OFFSET_BITS
#include "hooks.h"

#include <dlfcn.h>
#include <libunwind.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../include/lw_format.h"
#include "context.h"
#include "lw.h"
#include "lw_config.h"
#include "sample.h"
#include "stack.h"
#include "stackcache.h"
#include "state.h"
#include "threads.h"
#include "track.h"
#include "trigger.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

extern char **environ;
extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

/* ---- the real functions ---- */

static struct {
#define LW_REAL_FIELD(name, ret, params, args) ret(*name) params;
    LW_HOOKED_FUNCTIONS(LW_REAL_FIELD)
#undef LW_REAL_FIELD
} real;

static void resolve(void)
{
#define LW_RESOLVE(name, ret, params, args) real.name = (ret(*) params)dlsym(RTLD_NEXT, #name);
    LW_HOOKED_FUNCTIONS(LW_RESOLVE)
#undef LW_RESOLVE
}

/* ---- bootstrap arena: allocations made while init runs ---- */

#define ARENA_SIZE (1u << 20)
static char arena[ARENA_SIZE] __attribute__((aligned(64)));
static _Atomic size_t arena_used;

static inline bool in_arena(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + ARENA_SIZE;
}

static LW_COLD void *arena_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    if (n > ARENA_SIZE)
        goto full;
    size_t need = n + 16 + align;
    size_t off = atomic_fetch_add(&arena_used, need);
    if (off + need > ARENA_SIZE)
        goto full;
    uintptr_t p = ((uintptr_t)arena + off + 16 + align - 1) & ~(uintptr_t)(align - 1);
    ((size_t *)p)[-1] = n;
    return (void *)p; /* static memory: zero already, and never reused */
full:
    errno = ENOMEM;
    return NULL;
}

static inline size_t arena_size(const void *p)
{
    return ((const size_t *)p)[-1];
}

/* ---- start-up ---- */

static void own_text_range(void)
{
    const ElfW(Ehdr) *eh = &__ehdr_start;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
    uintptr_t base = (uintptr_t)eh, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X))
            continue;
        uintptr_t s = base + ph[i].p_vaddr, e = s + ph[i].p_memsz;
        lo = s < lo ? s : lo;
        hi = e > hi ? e : hi;
    }
    if (lo < hi)
        lw_stack_set_own_range(lo, hi);
}

/* Is fn glibc's own (libc.so.6), not another allocator's? */
static bool from_glibc(void *fn)
{
    Dl_info di;
    if (!fn || !dladdr(fn, &di) || !di.dli_fname)
        return false;
    const char *base = strrchr(di.dli_fname, '/');
    base = base ? base + 1 : di.dli_fname;
    return !strcmp(base, "libc.so.6");
}

static LW_COLD void die(const char *msg)
{
    ssize_t r = write(2, msg, strlen(msg));
    (void)r;
    abort();
}

/* Runs once, on the first hook call of any thread. Others arriving meanwhile
 * use the arena instead of waiting: the initialising thread may need a lock
 * they hold (the loader's, inside dlsym). */
static LW_COLD void ensure_init(void)
{
    int expect = LW_UNINIT;
    if (!atomic_compare_exchange_strong(&lw_state.init, &expect, LW_INITIALISING))
        return;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    lw_tls.internal = 1;
    resolve();
    if (!real.malloc || !real.free || !real.calloc || !real.realloc || !real.mmap || !real.munmap ||
        !real.madvise)
        die("leakwatch: the C library's malloc/free/mmap cannot be found (dlsym RTLD_NEXT); "
            "cannot run\n");
    own_text_range();
    lw_context_init();
    lw_trigger_register_fork();
    bool ok = lw_core_init(environ);
    if (real.malloc_usable_size) {
        lw_sample_usable = real.malloc_usable_size;
        lw_sample_glibc = from_glibc((void *)real.malloc) && from_glibc((void *)real.malloc_usable_size);
    } else {
        lw_state.cfg.sample = 0; /* exact totals need it: record everything */
    }
    if (ok) {
        /* libunwind's global register-state cache takes a mutex (and masks
         * signals twice) on every slow-path step; a fork child inherits it
         * locked if another thread held it. Its per-thread trace cache, the
         * fast path, needs no lock and stays. */
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE);
        /* libunwind maps its caches on first use: do it now, guarded. */
        uintptr_t f[4 + 1 + LW_STACK_SLACK];
        bool t;
        lw_stack_capture(f, (int)(sizeof f / sizeof f[0]), 4, 0, &t);
    }
    atomic_store(&lw_state.init, ok ? LW_READY : LW_DISABLED);
    lw_tls.internal = 0;
    lw_tls.guard = g;
}

static inline bool ready(void)
{
    return LW_LIKELY(atomic_load_explicit(&lw_state.init, memory_order_acquire) == LW_READY);
}

/* Not ready: start up if nobody has; true if the real functions may be used. */
static LW_COLD bool boot(void)
{
    if (atomic_load(&lw_state.init) == LW_UNINIT)
        ensure_init();
    int st = atomic_load_explicit(&lw_state.init, memory_order_acquire);
    return st == LW_READY || st == LW_DISABLED;
}

/* A malloc-family call that is not recorded: nested in the allocator, or
 * tracking off; or reentrant (a signal handler that interrupted leakwatch
 * on this thread), which is counted so the report can say so. */
static inline bool pass_through(void)
{
    if (LW_UNLIKELY(lw_tls.guard)) {
        if (!lw_tls.internal)
            atomic_fetch_add_explicit(&lw_counters.reentrant_calls, 1, memory_order_relaxed);
        return true;
    }
    return lw_tls.in_alloc || LW_UNLIKELY(!atomic_load_explicit(&lw_state.tracking, memory_order_relaxed));
}

/* Remove our library from LD_PRELOAD (LEAKWATCH_FOLLOW_EXEC=0), in place. */
static void drop_from_preload(char **envp)
{
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "LD_PRELOAD=", 11))
            continue;
        char *src = *e + 11, *dst = src;
        while (*src) {
            size_t len = strcspn(src, ": ");
            const char *base = src + len;
            while (base > src && base[-1] != '/')
                base--;
            bool ours = (size_t)(src + len - base) == strlen(LW_PRELOAD_NAME) &&
                        !strncmp(base, LW_PRELOAD_NAME, len - (size_t)(base - src));
            if (!ours) {
                if (dst != *e + 11)
                    *dst++ = ':';
                memmove(dst, src, len);
                dst += len;
            }
            src += len;
            while (*src == ':' || *src == ' ')
                src++;
        }
        *dst = '\0';
    }
}

__attribute__((constructor)) static void lw_constructor(int argc, char **argv, char **envp)
{
    (void)argc;
    (void)argv;
    if (atomic_load(&lw_state.init) == LW_UNINIT)
        ensure_init();
    if (!ready())
        return;
    if (!lw_state.cfg.follow_exec)
        drop_from_preload(envp ? envp : environ);
    lw_trigger_start();
}

/* exit() from a signal handler that interrupted leakwatch (guard set) could
 * wait on a lock this thread holds; a vfork child still carries the
 * parent's pid and shares its memory. Neither writes. */
static bool may_write_exit_snapshot(void)
{
    return ready() && !lw_tls.guard && getpid() == lw_state.pid;
}

__attribute__((destructor)) static void lw_destructor(void)
{
    if (may_write_exit_snapshot())
        lw_trigger_exit();
}

/* ---- the allocation API ---- */

LW_EXPORT void *malloc(size_t n)
{
    if (LW_UNLIKELY(!ready()) && !boot())
        return arena_alloc(n, 16);
    if (pass_through())
        return real.malloc(n);
    lw_tls.in_alloc = 1;
    void *p = real.malloc(n);
    lw_tls.in_alloc = 0;
    if (LW_LIKELY(p != NULL))
        return lw_track_alloc(p, n, 0); /* a tail call: one frame less to unwind */
    return p;
}

LW_EXPORT void free(void *p)
{
    if (LW_UNLIKELY(p == NULL || in_arena(p)))
        return;
    if (LW_UNLIKELY(!ready()) && !boot()) {
        if (real.free)
            real.free(p);
        return; /* before resolution: nothing can own p but the loader; keep it */
    }
    if (pass_through()) {
        real.free(p);
        return;
    }
    lw_track_free(p);
    lw_tls.in_alloc = 1;
    real.free(p);
    lw_tls.in_alloc = 0;
}

LW_EXPORT void *calloc(size_t n, size_t sz)
{
    if (LW_UNLIKELY(!ready()) && !boot()) {
        size_t total;
        if (__builtin_mul_overflow(n, sz, &total)) {
            errno = ENOMEM;
            return NULL;
        }
        return arena_alloc(total, 16);
    }
    if (pass_through())
        return real.calloc(n, sz);
    lw_tls.in_alloc = 1;
    void *p = real.calloc(n, sz);
    lw_tls.in_alloc = 0;
    if (LW_LIKELY(p != NULL))
        return lw_track_alloc(p, n * sz, 0);
    return p;
}

/* realloc and reallocarray: the old block leaves the table before the real
 * call (its address may be handed to another thread at once) and comes
 * back if the call fails. */
static void *realloc_common(void *p, size_t n, void *(*call)(void *, size_t, size_t), size_t a,
                            size_t b)
{
    struct lw_block old;
    bool had = lw_track_take(p, &old);
    lw_tls.in_alloc = 1;
    void *q = call(p, a, b);
    lw_tls.in_alloc = 0;
    if (q == NULL && n != 0) {
        if (had)
            lw_track_put_back(p, &old); /* failed: p is untouched */
        return NULL;
    }
    if (had)
        lw_track_count_free(p, &old); /* realloc(p, 0) may free and return NULL */
    if (q)
        return lw_track_alloc(q, n, 0);
    return q;
}

static void *call_realloc(void *p, size_t n, size_t unused)
{
    (void)unused;
    return real.realloc(p, n);
}

static void *call_reallocarray(void *p, size_t n, size_t sz)
{
    return real.reallocarray(p, n, sz);
}

static LW_COLD void *realloc_from_arena(void *p, size_t n)
{
    if (n == 0)
        return NULL;
    void *q = malloc(n);
    if (q) {
        size_t old = arena_size(p);
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

LW_EXPORT void *realloc(void *p, size_t n)
{
    if (LW_UNLIKELY(in_arena(p)))
        return realloc_from_arena(p, n);
    if (LW_UNLIKELY(!ready()) && !boot()) {
        if (p == NULL)
            return arena_alloc(n, 16);
        return real.realloc ? real.realloc(p, n) : NULL;
    }
    if (pass_through())
        return real.realloc(p, n);
    if (p == NULL) {
        lw_tls.in_alloc = 1;
        void *q = real.realloc(NULL, n);
        lw_tls.in_alloc = 0;
        if (q)
            return lw_track_alloc(q, n, 0);
        return q;
    }
    return realloc_common(p, n, call_realloc, n, 0);
}

LW_EXPORT void *reallocarray(void *p, size_t n, size_t sz)
{
    size_t total;
    if (__builtin_mul_overflow(n, sz, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (LW_UNLIKELY(in_arena(p)) || LW_UNLIKELY(!ready()))
        return realloc(p, total);
    if (pass_through() || !real.reallocarray)
        return real.reallocarray ? real.reallocarray(p, n, sz) : realloc(p, total);
    if (p == NULL) {
        lw_tls.in_alloc = 1;
        void *q = real.reallocarray(NULL, n, sz);
        lw_tls.in_alloc = 0;
        if (q)
            return lw_track_alloc(q, total, 0);
        return q;
    }
    return realloc_common(p, total, call_reallocarray, n, sz);
}

LW_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (LW_UNLIKELY(!ready()) && !boot()) {
        if (align < sizeof(void *) || (align & (align - 1)))
            return EINVAL;
        void *p = arena_alloc(n, align);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    if (pass_through())
        return real.posix_memalign(out, align, n);
    lw_tls.in_alloc = 1;
    int r = real.posix_memalign(out, align, n);
    lw_tls.in_alloc = 0;
    if (r == 0)
        lw_track_alloc(*out, n, 0);
    return r;
}

/* aligned_alloc, memalign, valloc and pvalloc: one shape. */
#define LW_ALIGNED_WRAPPER(name, params, args, align_expr)                                  \
    LW_EXPORT void *name params                                                             \
    {                                                                                       \
        if (LW_UNLIKELY(!ready()) && !boot())                                               \
            return arena_alloc(n, (align_expr));                                            \
        if (pass_through())                                                                 \
            return real.name args;                                                          \
        lw_tls.in_alloc = 1;                                                                \
        void *p = real.name args;                                                           \
        lw_tls.in_alloc = 0;                                                                \
        if (LW_LIKELY(p != NULL))                                                           \
            return lw_track_alloc(p, n, 0);                                                 \
        return p;                                                                           \
    }

LW_ALIGNED_WRAPPER(aligned_alloc, (size_t align, size_t n), (align, n), align)
LW_ALIGNED_WRAPPER(memalign, (size_t align, size_t n), (align, n), align)
LW_ALIGNED_WRAPPER(valloc, (size_t n), (n), LW_PAGE)
LW_ALIGNED_WRAPPER(pvalloc, (size_t n), (n), LW_PAGE)

LW_EXPORT size_t malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    if (in_arena(p))
        return arena_size(p);
    if (LW_UNLIKELY(!ready()) && !boot())
        return 0;
    return real.malloc_usable_size(p);
}

/* ---- mappings ---- */

static void *mmap_common(void *(*call)(void *, size_t, int, int, int, off_t), void *a, size_t n,
                         int prot, int flags, int fd, off_t off)
{
    if (LW_UNLIKELY(!ready()) && !boot())
        return (void *)syscall(SYS_mmap, a, n, prot, flags, fd, off);
    void *r = call(a, n, prot, flags, fd, off);
    if (r != MAP_FAILED && !lw_tls.guard &&
        LW_LIKELY(atomic_load_explicit(&lw_state.tracking, memory_order_relaxed)))
        lw_track_mmap(r, n, prot, flags, fd, lw_tls.in_alloc, 0);
    return r;
}

LW_EXPORT void *mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    return mmap_common(real.mmap, a, n, prot, flags, fd, off);
}

LW_EXPORT void *mmap64(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    return mmap_common(real.mmap64 ? real.mmap64 : real.mmap, a, n, prot, flags, fd, off);
}

LW_EXPORT int munmap(void *a, size_t n)
{
    if (LW_UNLIKELY(!ready()) && !boot())
        return (int)syscall(SYS_munmap, a, n);
    if (lw_tls.guard || !atomic_load_explicit(&lw_state.tracking, memory_order_relaxed))
        return real.munmap(a, n);
    return lw_track_munmap(real.munmap, a, n);
}

LW_EXPORT void *mremap(void *old, size_t oldn, size_t newn, int flags, ...)
{
    void *na = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        na = va_arg(ap, void *);
        va_end(ap);
    }
    if (LW_UNLIKELY(!ready()) && !boot())
        return (void *)syscall(SYS_mremap, old, oldn, newn, flags, na);
    if (lw_tls.guard || !atomic_load_explicit(&lw_state.tracking, memory_order_relaxed))
        return real.mremap(old, oldn, newn, flags, na);
    return lw_track_mremap(real.mremap, old, oldn, newn, flags, na, lw_tls.in_alloc);
}

LW_EXPORT int madvise(void *a, size_t n, int advice)
{
    if (LW_UNLIKELY(!ready()) && !boot())
        return (int)syscall(SYS_madvise, a, n, advice);
    /* The remedy switch: released pages leave RSS now, not under pressure.
     * The ledger then records what was really done (DONTNEED). */
    if (advice == MADV_FREE && lw_state.cfg.madv_free_dontneed)
        advice = MADV_DONTNEED;
    int r = real.madvise(a, n, advice);
    if (r == 0 && (advice == MADV_FREE || advice == MADV_DONTNEED || advice == MADV_DONTNEED_LOCKED) &&
        !lw_tls.guard && atomic_load_explicit(&lw_state.tracking, memory_order_relaxed))
        lw_track_madvise(a, n, advice == MADV_FREE ? MADV_FREE : MADV_DONTNEED);
    return r;
}

/* ---- descriptors: libunwind's validation pipe ----
 * libunwind probes memory by writing it into a pipe it keeps for the life of
 * the process, at the lowest free numbers (3 and 4, typically). A daemon that
 * closes every descriptor and reuses those numbers would then have libunwind
 * read from and write to its own files. So a pipe our own code asks for is
 * moved to the top of the descriptor range, close-on-exec: exec'd children
 * never see it, and the host's numbers stay as they would be without us. */

/* false if the pipe could not be moved: then it must not be used, since
 * its low numbers are the ones a program reuses first. */
static bool move_high(int fds[2])
{
    struct rlimit rl;
    long top = 1L << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)top)
        top = (long)rl.rlim_cur;
    long want = top - (top / 4 < 16 ? top / 4 : 16);
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= want)
            continue;
        int hi = fcntl(fds[i], F_DUPFD_CLOEXEC, (int)want);
        if (hi < 0)
            return false;
        close(fds[i]);
        fds[i] = hi;
    }
    return true;
}

static int our_pipe(int fds[2], int flags)
{
    int r = real.pipe2 ? real.pipe2(fds, flags | O_CLOEXEC)
                       : (int)syscall(SYS_pipe2, fds, flags | O_CLOEXEC);
    if (r == 0 && !move_high(fds)) {
        /* No room up there: refuse. libunwind then stops stacks at frames it
         * cannot probe, and never touches a number the program may reuse. */
        close(fds[0]);
        close(fds[1]);
        errno = EMFILE;
        return -1;
    }
    return r;
}

LW_EXPORT int pipe(int fds[2])
{
    if (lw_tls.guard)
        return our_pipe(fds, 0);
    if (LW_UNLIKELY(!real.pipe))
        return (int)syscall(SYS_pipe2, fds, 0);
    return real.pipe(fds);
}

LW_EXPORT int pipe2(int fds[2], int flags)
{
    if (lw_tls.guard)
        return our_pipe(fds, flags);
    if (LW_UNLIKELY(!real.pipe2))
        return (int)syscall(SYS_pipe2, fds, flags);
    return real.pipe2(fds, flags);
}

/* ---- sigaltstack: where a signal handler's stack is ----
 * Recorded per thread so a capture in a handler running on a small
 * alternate stack can see how much room is left (stack.c). */

LW_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
    int r = real.sigaltstack ? real.sigaltstack(ss, old) : (int)syscall(SYS_sigaltstack, ss, old);
    if (r == 0 && ss) {
        if (ss->ss_flags & SS_DISABLE) {
            lw_tls.alt_lo = lw_tls.alt_hi = 0;
        } else {
            lw_tls.alt_lo = (uintptr_t)ss->ss_sp;
            lw_tls.alt_hi = (uintptr_t)ss->ss_sp + ss->ss_size;
        }
    }
    return r;
}

/* ---- seccomp: a filter installed after start-up ----
 * The fast gates (table.c, stack.c) make the rare side call membarrier; a
 * seccomp filter that kills on system calls it does not know would kill
 * the program at the next shard growth or fork. So before the program
 * installs one through prctl(PR_SET_SECCOMP) or syscall(SYS_seccomp), the
 * gates switch to their counted mode for good (lw_gates_counted_only),
 * even if the call then fails. Strict mode too: it forbids membarrier as
 * well. Every other call passes straight through: nothing recorded, errno
 * untouched, no system call of ours.
 *
 * Both functions are variadic and the callee cannot know how many
 * arguments were passed, so we read the most each can take as unsigned
 * long (prctl: 4 after option; syscall: 6 after nr) and pass them all, as
 * glibc's own prctl and syscall do. On x86-64 that is safe: the first six
 * integer arguments travel in registers, which va_start saves whatever
 * they hold, and syscall's seventh is read from the caller's frame just
 * above the return address, memory that always exists (glibc's syscall
 * reads the same word unconditionally); the kernel ignores what a call
 * does not use. Before resolve() ran (or while another thread runs it),
 * the real function is missing: the system call is made directly, with
 * the C library's errno convention. Our own code calls syscall() too
 * (futex, membarrier): it comes through here and costs one compare. */
static long raw_syscall(long nr, unsigned long a1, unsigned long a2, unsigned long a3,
                        unsigned long a4, unsigned long a5, unsigned long a6)
{
    register unsigned long r10 __asm__("r10") = a4;
    register unsigned long r8 __asm__("r8") = a5;
    register unsigned long r9 __asm__("r9") = a6;
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    if ((unsigned long)r > -4096UL) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

LW_EXPORT int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long),
                  a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    if (LW_UNLIKELY(option == PR_SET_SECCOMP) &&
        (a2 == SECCOMP_MODE_FILTER || a2 == SECCOMP_MODE_STRICT))
        lw_gates_counted_only();
    if (LW_UNLIKELY(!real.prctl))
        return (int)raw_syscall(SYS_prctl, (unsigned long)option, a2, a3, a4, a5, 0);
    return real.prctl(option, a2, a3, a4, a5);
}

LW_EXPORT long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    unsigned long a1 = va_arg(ap, unsigned long), a2 = va_arg(ap, unsigned long),
                  a3 = va_arg(ap, unsigned long), a4 = va_arg(ap, unsigned long),
                  a5 = va_arg(ap, unsigned long), a6 = va_arg(ap, unsigned long);
    va_end(ap);
    if (LW_UNLIKELY(nr == SYS_seccomp) &&
        (a1 == SECCOMP_SET_MODE_FILTER || a1 == SECCOMP_SET_MODE_STRICT))
        lw_gates_counted_only();
    if (LW_UNLIKELY(!real.syscall))
        return raw_syscall(nr, a1, a2, a3, a4, a5, a6);
    return real.syscall(nr, a1, a2, a3, a4, a5, a6);
}

/* ---- _exit: processes that never call exit() ----
 * Shells (dash) and most fork children end with _exit, which runs no
 * destructor: take the exit snapshot here. A vfork child shares our memory
 * and still carries the parent's pid in lw_state: it must write nothing. */

static __attribute__((noreturn)) void exit_now(void (*real_exit)(int), int status)
{
    if (may_write_exit_snapshot())
        lw_trigger_exit();
    if (real_exit)
        real_exit(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

LW_EXPORT __attribute__((noreturn)) void _exit(int status)
{
    exit_now(real._exit, status);
}

LW_EXPORT __attribute__((noreturn)) void _Exit(int status)
{
    exit_now(real._Exit, status);
}

/* ---- dlclose: code may go, and other code come at its addresses ----
 * The stack cache knows frames by their return addresses; after a
 * library is unloaded those may belong to new code. Everything it learned,
 * before or during the call, is dropped once it returns. Nothing else
 * changes; the module map is read at each snapshot. */
LW_EXPORT int dlclose(void *h)
{
    int (*fn_real)(void *) = real.dlclose;
    if (LW_UNLIKELY(!fn_real)) { /* before start-up: as pthread_create above */
        fn_real = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
        if (!fn_real)
            return -1;
    }
    int r = fn_real(h);
    int saved = errno;
    lw_scache_invalidate();
    errno = saved;
    return r;
}

/* ---- setcontext, swapcontext: coroutines' stacks end at their top ----
 * A context made by makecontext and never run gets a return address with
 * unwind information (context.c): without it libunwind walks past the
 * coroutine's stack. Before start-up, the real functions are found here. */
LW_EXPORT int setcontext(const ucontext_t *ucp)
{
    int (*fn_real)(const ucontext_t *) = real.setcontext;
    if (LW_UNLIKELY(!fn_real) &&
        !(fn_real = (int (*)(const ucontext_t *))dlsym(RTLD_NEXT, "setcontext")))
        return -1;
    lw_context_switching(ucp);
    return fn_real(ucp);
}

LW_EXPORT int swapcontext(ucontext_t *oucp, const ucontext_t *ucp)
{
    int (*fn_real)(ucontext_t *, const ucontext_t *) = real.swapcontext;
    if (LW_UNLIKELY(!fn_real) &&
        !(fn_real = (int (*)(ucontext_t *, const ucontext_t *))dlsym(RTLD_NEXT, "swapcontext")))
        return -1;
    lw_context_switching(ucp);
    return fn_real(oucp, ucp);
}

/* ---- threads: pthread_create ----
 * Recorded by creation stack; the start routine is wrapped so its exit is
 * seen too (threads.c). Our own threads (guard set) pass straight through. */

LW_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (LW_UNLIKELY(!ready()) && !boot()) {
        /* Another thread is initialising (it may wait for a loader lock
         * this thread holds): create the thread untracked, resolving the
         * real function ourselves (dlsym(RTLD_NEXT) of a name that exists
         * allocates nothing). */
        int (*fn_real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
            real.pthread_create;
        if (!fn_real)
            fn_real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))
                dlsym(RTLD_NEXT, "pthread_create");
        return fn_real ? fn_real(t, attr, fn, arg) : EAGAIN;
    }
    if (lw_tls.guard || !atomic_load_explicit(&lw_state.tracking, memory_order_relaxed))
        return real.pthread_create(t, attr, fn, arg);
    return lw_threads_create(real.pthread_create, t, attr, fn, arg);
}
