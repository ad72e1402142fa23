/*
 * trigger.c - signal, writer thread, exit and fork (see trigger.h). The
 * signal handler is async-signal-safe: an atomic or, a futex wake, errno
 * saved, then the handler it replaced. Nothing here allocates through the
 * host; the writer thread runs with its guard set for its whole life.
 */
#include "trigger.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "../include/lw_format.h"
#include "log.h"
#include "lw.h"
#include "region.h"
#include "snapshot.h"
#include "stack.h"
#include "state.h"
#include "sys.h"

#define REQ_SIGNAL 0x1u

static _Atomic uint32_t req;
static _Atomic uint32_t writer_busy; /* the writer thread is serving a request */
_Atomic uint32_t lw_trigger_pending; /* a request and no writer thread yet */
static _Atomic bool thread_running;
static _Atomic bool thread_starting;
static struct sigaction old_action;
static _Atomic bool exit_written;
static __thread bool fork_took_region; /* initial-exec via -ftls-model */

static void on_signal(int sig, siginfo_t *info, void *uc)
{
    int saved = errno;
    atomic_fetch_or(&req, REQ_SIGNAL);
    if (atomic_load(&thread_running))
        lw_sys_futex_wake(&req, 1);
    else
        atomic_store(&lw_trigger_pending, 1); /* the next hook call starts the writer */
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
    for (;;) {
        /* busy before taking the request: exit waits for what we took */
        atomic_store(&writer_busy, 1);
        uint32_t r = atomic_exchange(&req, 0);
        if (r & REQ_SIGNAL)
            lw_snapshot_write(LW_TRIGGER_SIGNAL, NULL, 0);
        atomic_store(&writer_busy, 0);
        lw_sys_futex_wake(&writer_busy, 1);
        if (!atomic_load(&req))
            lw_sys_futex_wait(&req, 0, 0);
    }
    return NULL;
}

static void start_thread(void)
{
    if (lw_state.cfg.signo == LW_SIG_OFF)
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

/* The dump signal is blocked from prepare until the child has reset its
 * state: sent to a child that has not run yet, it would reach the handler
 * before fork_child and be wiped out with the parent's request state. */
static __thread sigset_t fork_saved_mask;
static __thread bool fork_masked;

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
    if (!atomic_exchange(&thread_starting, true))
        start_thread(); /* one thread per process; it takes req at once */
    lw_sys_futex_wake(&req, 1);
}

