/*
 * trigger.c - signal, writer thread, exit and fork (see trigger.h). The
 * signal handler is async-signal-safe: an atomic or, a futex wake, errno
 * saved, then the handler it replaced. Nothing here allocates through the
 * host; the writer thread runs with its guard set for its whole life.
 *
 * When the writer thread starts, and why. A helper thread costs a
 * single-threaded program things it may rely on (unshare(CLONE_NEWUSER)
 * fails with EINVAL, glibc drops its single-thread fast paths, fork in a
 * signal handler gets riskier), so it starts only when that cost is
 * already paid or asked for:
 * 1. at start-up (the constructor, never a dlopen) when LEAKWATCH_INTERVAL
 *    is set (interval snapshots need a clock; the user asked for it) or
 *    LEAKWATCH_THRESHOLD (its watcher thread makes the process
 *    multi-threaded anyway);
 * 2. when the program starts its first thread (pthread_create hook), if
 *    the dump signal or a heap threshold is on: it is multi-threaded from
 *    then on anyway, so a dump request is served at once even if the
 *    program then sleeps without allocating, and a thread short of stack
 *    can hand its heap-threshold snapshot over;
 * 3. at the first hook call after a request (the old lazy path).
 * What is left is a single-threaded program that sleeps without
 * allocating. There the signal handler writes the snapshot itself, when
 * that is safe: the process has one thread (/proc/self/stat), the handler
 * did not interrupt leakwatch (guard) nor the allocator (in_alloc), and
 * at least 64 KiB of stack are left. With one thread, no lock of ours can
 * be held by anyone else, and the writer calls only async-signal-safe
 * system calls plus dl_iterate_phdr, whose lock is recursive and whose
 * list only the loader changes (an interrupted dlopen is excluded by the
 * in_alloc/guard test in practice: the loader allocates through malloc).
 * Otherwise the request waits for the next hook call or exit, as before.
 */
#include "trigger.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "../include/lw_format.h"
#include "age.h"
#include "kernel.h"
#include "log.h"
#include "lw.h"
#include "region.h"
#include "sample.h"
#include "snapshot.h"
#include "stack.h"
#include "state.h"
#include "sys.h"
#include "threads.h"
#include "watch.h"

#define REQ_SIGNAL 0x1u
#define REQ_HEAP 0x2u /* a heap-threshold snapshot handed over by a thread short of stack */
#define HANDLER_STACK_MIN (64u * 1024u)

static _Atomic uint32_t req;
static _Atomic uint32_t writer_busy; /* the writer thread is serving a request */
_Atomic uint32_t lw_trigger_pending; /* a request and no writer thread yet */
static _Atomic bool thread_running;
static _Atomic bool thread_starting;
static struct sigaction old_action;
static _Atomic bool exit_written;
static __thread bool fork_took_region; /* initial-exec via -ftls-model */

/* Threads in this process, from /proc/self/stat (field 20); 0 if unknown.
 * Async-signal-safe: open, read, close. */
static long count_threads(void)
{
    char b[1024];
    ssize_t n = lw_kernel_read_file("/proc/self/stat", b, sizeof b - 1);
    if (n <= 0)
        return 0;
    b[n] = '\0';
    char *p = NULL;
    for (char *q = b; *q; q++)
        if (*q == ')')
            p = q; /* comm may hold ')': the last one ends it */
    if (!p)
        return 0;
    int field = 2; /* p is at the end of field 2 */
    long v = 0;
    for (p++; *p; p++) {
        if (*p == ' ') {
            field++;
            continue;
        }
        if (field == 20) {
            for (v = 0; *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
            return v;
        }
    }
    return 0;
}

/* See the comment at the top: may the handler write the snapshot itself? */
static bool handler_may_write(void)
{
    if (lw_tls.guard || lw_tls.in_alloc || getpid() != lw_state.pid ||
        !atomic_load(&lw_state.tracking) || atomic_load(&lw_state.init) != LW_READY)
        return false;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (sp > lw_tls.alt_lo && sp <= lw_tls.alt_hi)
        return sp - lw_tls.alt_lo >= HANDLER_STACK_MIN;
    if (lw_tls.stack_lo > 1 && sp > lw_tls.stack_lo && sp <= lw_tls.stack_hi &&
        sp - lw_tls.stack_lo < HANDLER_STACK_MIN)
        return false;
    return count_threads() == 1;
}

static void on_signal(int sig, siginfo_t *info, void *uc)
{
    int saved = errno;
    atomic_fetch_or(&req, REQ_SIGNAL);
    if (atomic_load(&thread_running)) {
        lw_sys_futex_wake(&req, 1);
    } else if (handler_may_write()) {
        lw_tls.guard = 1;
        lw_tls.internal = 1;
        if (atomic_fetch_and(&req, ~REQ_SIGNAL) & REQ_SIGNAL)
            lw_snapshot_write(LW_TRIGGER_SIGNAL, NULL, 0);
        lw_tls.internal = 0;
        lw_tls.guard = 0;
    } else {
        atomic_store(&lw_trigger_pending, 1); /* the next hook call starts the writer */
    }
    errno = saved;
    /* Chain to whoever had the signal before us. */
    if (old_action.sa_flags & SA_SIGINFO) {
        if (old_action.sa_sigaction)
            old_action.sa_sigaction(sig, info, uc);
    } else if (old_action.sa_handler != SIG_DFL && old_action.sa_handler != SIG_IGN &&
               old_action.sa_handler != NULL) {
        old_action.sa_handler(sig);
    }
    errno = saved;
}

static struct lw_rec_trigger heap_req;   /* under handover_lock */
static _Atomic uint32_t heap_done;        /* handed-over snapshots written */
static lw_mutex_t handover_lock = LW_MUTEX_INIT;

static void *writer_main(void *arg)
{
    (void)arg;
    lw_tls.guard = 1;
    lw_tls.internal = 1;
    /* Block everything but the dump signal: the kernel then delivers it
     * here even when the program blocks it in all of its own threads. */
    sigset_t set;
    sigfillset(&set);
    if (lw_state.cfg.signo != LW_SIG_OFF)
        sigdelset(&set, lw_state.cfg.signo);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
    uint64_t every = lw_state.cfg.interval_ns;
    uint64_t next = every ? lw_sys_monotonic_ns() + every : 0;
    for (;;) {
        /* busy before taking the request: exit waits for what we took.
         * Then exit_written: both seq_cst, so either exit sees us busy and
         * waits, or we see it began and write nothing after its snapshot
         * (the exit snapshot is the process's last) but a handed-over heap
         * threshold, whose thread waits for it. */
        atomic_store(&writer_busy, 1);
        bool exiting = atomic_load(&exit_written);
        uint32_t r = exiting ? atomic_fetch_and(&req, ~REQ_HEAP) & REQ_HEAP
                             : atomic_exchange(&req, 0);
        if (r & REQ_SIGNAL)
            lw_snapshot_write(LW_TRIGGER_SIGNAL, NULL, 0);
        if (r & REQ_HEAP) {
            lw_snapshot_write_trigger(&heap_req, NULL, 0);
            atomic_fetch_add(&heap_done, 1);
            lw_sys_futex_wake(&heap_done, 1 << 30);
        }
        uint64_t now = lw_sys_monotonic_ns();
        if (every && now >= next && !exiting) {
            lw_snapshot_write(LW_TRIGGER_INTERVAL, NULL, 0);
            now = lw_sys_monotonic_ns();
            while (next <= now)
                next += every; /* on the original grid; a slow write skips ticks */
        }
        atomic_store(&writer_busy, 0);
        lw_sys_futex_wake(&writer_busy, 1);
        lw_snapshot_reserve();
        /* Wake at the next tick of the allocation clock to publish it (the
         * hot path then reads no clock), or at the next interval. */
        uint64_t wait = lw_age_publish();
        if (exiting) {
            /* Only a handed-over heap threshold is ours now; a signal
             * request left in req is the exiting thread's to serve. */
            uint32_t cur = atomic_load(&req);
            if (!(cur & REQ_HEAP))
                lw_sys_futex_wait(&req, cur, wait);
            continue;
        }
        if (every && next - now < wait)
            wait = next > now ? next - now : 1;
        if (!atomic_load(&req))
            lw_sys_futex_wait(&req, 0, wait);
    }
    return NULL;
}

static void start_thread(void)
{
    if (lw_state.cfg.signo == LW_SIG_OFF && !lw_state.cfg.interval_ns &&
        !lw_state.cfg.heap_threshold)
        return;
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread starts with all blocked */
    uint8_t was = lw_tls.internal;
    lw_tls.internal = 1;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&t, &attr, writer_main, NULL);
    pthread_attr_destroy(&attr);
    lw_tls.internal = was;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        lw_log_warn(LW_WARN_THREAD, "cannot start the snapshot writer thread; snapshots on "
                                    "signal are off (the exit snapshot still comes)");
        return;
    }
    pthread_setname_np(t, "leakwatch");
    atomic_store(&thread_running, true);
}

/* Start the writer thread once per process image. */
static void ensure_thread(void)
{
    if (!atomic_exchange(&thread_starting, true))
        start_thread();
    lw_sys_futex_wake(&req, 1);
}

void lw_trigger_program_threaded(void)
{
    /* The writer also takes heap-threshold snapshots from threads short of
     * stack; a single-threaded program's main thread never is. */
    if (!atomic_load(&thread_starting) &&
        (lw_state.cfg.signo != LW_SIG_OFF || lw_state.cfg.heap_threshold)) {
        uint8_t g = lw_tls.guard;
        lw_tls.guard = 1;
        ensure_thread();
        lw_tls.guard = g;
    }
}

/* The dump signal is blocked from prepare until the child has reset its
 * state: sent to a child that has not run yet, it would reach the handler
 * before fork_child and be wiped out with the parent's request state. */
static __thread sigset_t fork_saved_mask;
static __thread bool fork_masked;

static void heap_fork_child(void);

static void fork_prepare(void)
{
    fork_masked = false;
    if (lw_state.cfg.signo != LW_SIG_OFF) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, lw_state.cfg.signo);
        fork_masked = pthread_sigmask(SIG_BLOCK, &s, &fork_saved_mask) == 0;
    }
    /* A fork from inside our own code (a signal handler that interrupted
     * us) must not wait for a lock this thread may hold. */
    fork_took_region = !lw_tls.guard;
    if (fork_took_region)
        lw_region_fork_prepare();
    lw_stack_fork_prepare();
}

static void fork_parent(void)
{
    lw_stack_fork_parent();
    if (fork_took_region)
        lw_region_fork_parent();
    if (fork_masked)
        pthread_sigmask(SIG_SETMASK, &fork_saved_mask, NULL);
}

static void fork_child(void)
{
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    lw_core_fork_child();
    atomic_store(&req, 0);
    atomic_store(&writer_busy, 0);
    atomic_store(&lw_trigger_pending, 0);
    atomic_store(&thread_running, false);
    atomic_store(&thread_starting, false);
    atomic_store(&exit_written, false);
    lw_threads_fork_child();
    lw_watch_fork_child();
    lw_age_fork_child();
    heap_fork_child();
    /* A child that forked with interval or threshold snapshots on gets its
     * own threads from its first hook call (none can be started here). */
    if (lw_state.cfg.interval_ns || lw_state.cfg.threshold_bytes || lw_state.cfg.threshold_pct)
        atomic_store(&lw_trigger_pending, 1);
    lw_tls.guard = g;
    if (fork_masked) /* a request sent to the new child arrives now, and counts */
        pthread_sigmask(SIG_SETMASK, &fork_saved_mask, NULL);
}

void lw_trigger_start(void)
{
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    if (lw_state.cfg.signo != LW_SIG_OFF) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_signal;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(lw_state.cfg.signo, &sa, &old_action) != 0) {
            lw_log_warn(LW_WARN_SIGNAL, "cannot install the dump signal handler; snapshots on "
                                        "signal are off");
        }
    }
    /* An interval needs the writer; a usage threshold starts a watcher
     * thread, after which the program is multi-threaded anyway and the
     * writer may as well serve the dump signal at once. */
    if (lw_state.cfg.interval_ns || lw_state.cfg.threshold_bytes || lw_state.cfg.threshold_pct)
        ensure_thread();
    lw_watch_start();
    lw_tls.guard = g;
}

void lw_trigger_register_fork(void)
{
    uint8_t g = lw_tls.guard, was = lw_tls.internal;
    lw_tls.guard = 1;
    lw_tls.internal = 1;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    lw_tls.internal = was;
    lw_tls.guard = g;
}

void lw_trigger_exit(void)
{
    if (!atomic_load(&lw_state.tracking) || atomic_exchange(&exit_written, true))
        return;
    uint8_t g = lw_tls.guard;
    lw_tls.guard = 1;
    /* A snapshot asked for just before exit is written before the exit one,
     * whether the writer thread took the request or not. The wait is
     * bounded: exit never hangs on us. */
    if (atomic_exchange(&req, 0) & REQ_SIGNAL)
        lw_snapshot_write(LW_TRIGGER_SIGNAL, NULL, 0);
    uint64_t deadline = lw_sys_monotonic_ns() + 5000000000u;
    while (atomic_load(&writer_busy) && atomic_load(&thread_running) &&
           lw_sys_monotonic_ns() < deadline)
        lw_sys_futex_wait(&writer_busy, 1, 10000000u);
    lw_snapshot_write(LW_TRIGGER_EXIT, NULL, 0);
    lw_tls.guard = g;
}

void lw_trigger_serve(void)
{
    if (!atomic_exchange(&lw_trigger_pending, 0))
        return;
    ensure_thread(); /* one thread per process; it takes req at once */
    lw_watch_start();
}

/* ---- the heap threshold ---- */

bool lw_heap_watch;
int64_t lw_heap_chunk = INT64_MAX;
__thread int64_t lw_heap_delta; /* initial-exec via -ftls-model */
static _Atomic int64_t heap_total;
static _Atomic uint64_t heap_hi = UINT64_MAX, heap_lo;
static lw_mutex_t heap_lock = LW_MUTEX_INIT;
static struct lw_hyst heap_h;

void lw_trigger_heap_init(void)
{
    uint64_t t = lw_state.cfg.heap_threshold;
    if (!t)
        return;
    lw_hyst_init(&heap_h, t, lw_watch_step(t));
    /* The line is seen late by at most one chunk per thread. */
    uint64_t chunk = t / 256;
    lw_heap_chunk = (int64_t)(chunk < 4096 ? 4096 : chunk > 65536 ? 65536 : chunk);
    atomic_store(&heap_hi, t);
    atomic_store(&heap_lo, 0);
    lw_heap_watch = true;
}

/* Heap in use, exactly: the sum over heap stacks (cold path only). */
static uint64_t heap_exact(void)
{
    if (lw_state.cfg.sample) { /* the stacks hold estimates; the exact totals are apart */
        struct lw_sample_totals st;
        lw_sample_totals(&st);
        return st.alloc_bytes > st.free_bytes ? st.alloc_bytes - st.free_bytes : 0;
    }
    uint64_t in = 0, out = 0;
    uint32_t n = lw_stack_count();
    for (uint32_t id = 1; id <= n; id++) {
        struct lw_stack_info si;
        if (!lw_stack_info(id, &si) || si.kind != LW_KIND_HEAP)
            continue;
        struct lw_stack_totals st;
        lw_stack_read(id, &st);
        out += st.free_bytes;
        in += st.alloc_bytes;
    }
    return in > out ? in - out : 0;
}

/* The writer needs ~30 KiB of stack: a thread with less hands the
 * snapshot to the writer thread and waits for it (bounded: 10 s). */
static LW_COLD void heap_handover(const struct lw_rec_trigger *t)
{
    if (!atomic_load(&thread_running)) {
        lw_log_warn(LW_WARN_THREAD, "a heap-threshold snapshot was skipped: the allocating "
                                    "thread has too little stack left and there is no writer "
                                    "thread");
        return;
    }
    lw_mutex_lock(&handover_lock);
    heap_req = *t;
    uint32_t d = atomic_load(&heap_done);
    atomic_fetch_or(&req, REQ_HEAP);
    lw_sys_futex_wake(&req, 1);
    uint64_t deadline = lw_sys_monotonic_ns() + 10000000000u;
    while (atomic_load(&heap_done) == d && lw_sys_monotonic_ns() < deadline)
        lw_sys_futex_wait(&heap_done, d, 100000000u);
    lw_mutex_unlock(&handover_lock);
}

static LW_COLD void heap_cross(void)
{
    lw_mutex_lock(&heap_lock);
    uint64_t v = heap_exact(), crossed = 0;
    bool due = lw_hyst_feed(&heap_h, v, &crossed);
    atomic_store(&heap_hi, heap_h.next);
    atomic_store(&heap_lo, heap_h.armed ? 0 : heap_h.rearm);
    lw_mutex_unlock(&heap_lock);
    /* Written here, by the thread whose allocation crossed: malloc returns
     * once the snapshot is on disk. Not from a vfork child. */
    if (due && getpid() == lw_state.pid) {
        struct lw_rec_trigger t = {.trigger = LW_TRIGGER_HEAP_THRESHOLD, .source = LW_WATCH_HEAP,
                                   .threshold_bytes = crossed, .observed_bytes = v};
        uint8_t was = lw_tls.internal;
        lw_tls.internal = 1;
        uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
        bool small = lw_tls.stack_lo > 1 && sp > lw_tls.stack_lo && sp <= lw_tls.stack_hi &&
                     sp - lw_tls.stack_lo < HANDLER_STACK_MIN;
        if (!small)
            lw_snapshot_write_trigger(&t, NULL, 0);
        else
            heap_handover(&t);
        lw_tls.internal = was;
    }
}

void lw_trigger_heap_flush(void)
{
    int64_t d = lw_heap_delta;
    lw_heap_delta = 0;
    if (!lw_heap_watch || !d)
        return;
    if (d > 0)
        lw_snapshot_reserve(); /* grow the writer's scratch while memory is there */
    int64_t tot = atomic_fetch_add_explicit(&heap_total, d, memory_order_relaxed) + d;
    uint64_t u = tot > 0 ? (uint64_t)tot : 0;
    if (LW_UNLIKELY(u >= atomic_load_explicit(&heap_hi, memory_order_relaxed) ||
                    u < atomic_load_explicit(&heap_lo, memory_order_relaxed)))
        heap_cross();
}

static void heap_fork_child(void)
{
    lw_mutex_reset(&heap_lock);
    lw_mutex_reset(&handover_lock);
}

