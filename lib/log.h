/*
 * log.h - warnings from inside the host: one line on stderr, at most once
 * per kind and at most LW_LOG_MAX in all, written with write(2). Never
 * allocates, never uses stdio, safe from any thread.
 */
#ifndef LW_LOG_H
#define LW_LOG_H

enum lw_warn_kind {
    LW_WARN_CONFIG,    /* a bad option (several may be reported: one per option) */
    LW_WARN_OUTPUT,    /* output directory cannot be created or written */
    LW_WARN_WRITE,     /* a snapshot write failed */
    LW_WARN_TABLE,     /* live-block table could not grow */
    LW_WARN_STACKS,    /* stack table full */
    LW_WARN_REGIONS,   /* region ledger full */
    LW_WARN_THREAD,    /* writer thread could not start */
    LW_WARN_SIGNAL,    /* signal handler could not be installed */
    LW_WARN_UNWIND,    /* unwinder failed */
    LW_WARN_KERNEL,    /* /proc or cgroup figures unreadable (kernel_snap.c) */
    LW_WARN_KINDS
};

#define LW_LOG_MAX 32

/* Write "leakwatch[pid]: msg\n" to fd 2 once per kind (LW_WARN_CONFIG: every
 * call, within the global cap). Preserves errno. */
void lw_log_warn(enum lw_warn_kind kind, const char *msg);

/* Same, message built from two parts (e.g. a path and a reason). */
void lw_log_warn2(enum lw_warn_kind kind, const char *a, const char *b);

/* Forget which warnings were given (a fork child warns for itself). */
void lw_log_reset(void);

#endif
