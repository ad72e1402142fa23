/*
 * config.h - leakwatch's options: one table (LW_OPTIONS), read once.
 * Shared by the preloaded library (reads its environment at start) and by
 * `leakwatch run` (validates the same options before starting the program,
 * so both say the same words about a bad value).
 * Never allocates, never uses stdio: the library calls it during bootstrap.
 */
#ifndef LW_CONFIG_H
#define LW_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(NAME, kind, default, help): kind is one of DIR SIG INT BOOL PID
 * DURATION SIZE SIZE_PCT.
 * The README's options table is generated from this list by
 * `leakwatch run --help-env`; keep the help one line. */
#define LW_OPTIONS(X)                                                                   \
    X(OUTPUT, DIR, "/tmp/leakwatch-UID",                                                \
      "directory for snapshots (created if missing); never the program's cwd")          \
    X(SIGNAL, SIG, "RTMIN+7",                                                           \
      "signal that writes a snapshot (name like USR2 or RTMIN+7, a number, or off)")    \
    X(DEPTH, INT, "64", "maximum call stack depth recorded, 1-256")                    \
    X(FOLLOW_EXEC, BOOL, "1", "1: programs exec'd by the target are traced too; 0: not") \
    X(FOLLOW_FORK, BOOL, "1", "1: fork children write their own snapshots; 0: they stop (a child that execs is FOLLOW_EXEC's)") \
    X(CMDLINE, BOOL, "1", "1: snapshots record the command line; 0: left out")         \
    X(ROOT_PID, PID, "", "set by `leakwatch run`: pid of the process it started")       \
    X(MADV_FREE, WORD, "keep", "keep: madvise(MADV_FREE) as asked; dontneed: turned into MADV_DONTNEED, so released memory leaves RSS at once") \
    X(INTERVAL, DURATION, "", "write a snapshot every N seconds (2, 0.5, 250ms); unset: never") \
    X(THRESHOLD, SIZE_PCT, "", "snapshot when the memory cgroup's usage (or, without a limit, RSS) reaches this: bytes (1536M, 1.5G) or a share of the cgroup limit (80%)") \
    X(HEAP_THRESHOLD, SIZE, "", "snapshot when heap in use reaches this many bytes (512M); the allocating thread waits for it") \
    X(THRESHOLD_STEP, SIZE_PCT, "10%", "after a threshold snapshot: another at each new high above it by this much (bytes, or % of the threshold); re-armed below threshold minus a step") \
    X(KEEP, INT, "0", "keep at most N snapshots per process, deleting its oldest; 0: keep all") \
    X(SAMPLE, SIZE, "0",                                                                 \
      "0: record every allocation; N (K/M/G suffix): sample one per N bytes on average (512K for production)") \
    X(SAMPLE_SEED, INT, "0", "seed of the sampling random numbers (tests); 0: a different one per run") \
    X(UNWIND, WORD, "libunwind",                                                         \
      "libunwind (any code; stacks seen before are checked in memory, not unwound again), libunwind-uncached (every stack unwound), or fp: walk frame pointers (only for code built with them)")

#define LW_SIG_OFF 0

struct lw_config {
    char output[PATH_MAX]; /* no trailing slash */
    bool output_default;   /* OUTPUT not given: the per-user default */
    int signo;             /* LW_SIG_OFF: no signal trigger */
    int depth;
    bool follow_exec;
    bool follow_fork;
    bool cmdline;
    int root_pid; /* 0: unknown */
    bool madv_free_dontneed; /* MADV_FREE=dontneed */
    uint64_t interval_ns;      /* 0: no interval snapshots */
    uint64_t threshold_bytes;  /* THRESHOLD in bytes; 0: none (or a percentage) */
    uint32_t threshold_pct;    /* THRESHOLD as a share of the cgroup limit, in 1/100 %; 0: none */
    uint64_t heap_threshold;   /* 0: none */
    uint64_t step_bytes;       /* THRESHOLD_STEP in bytes; 0: a percentage */
    uint32_t step_pct;         /* THRESHOLD_STEP in 1/100 % of the threshold */
    uint32_t keep;             /* 0: keep every snapshot */
    uint64_t sample;                /* mean bytes between samples; 0: full tracking */
    unsigned long long sample_seed; /* 0: seeded from the clock */
    int unwind;                     /* LW_UNWIND_* */
};

enum { LW_UNWIND_LIBUNWIND = 0, LW_UNWIND_FP = 1, LW_UNWIND_UNCACHED = 2 };
#define LW_SAMPLE_MAX (1ULL << 40) /* 1 TiB: larger intervals are refused */


/* Parse a byte size: digits with an optional fraction and a K/M/G/T suffix
 * (powers of 1024; "KiB", "MB" and "b" spellings accepted), e.g. "1536M",
 * "1.5G", "4096". true and *out on success. */
bool lw_config_parse_size(const char *s, uint64_t *out);
/* Parse "80%" or "12.5%" (0 < p <= 100) into 1/100 % units. */
bool lw_config_parse_pct(const char *s, uint32_t *out);
/* Parse a duration: seconds with an optional fraction ("2", "0.5", "2s"),
 * or milliseconds ("250ms"). At least 10 ms, at most a week. */
bool lw_config_parse_duration(const char *s, uint64_t *ns_out);

/* getenv-like lookup, so tests and `leakwatch run` can feed their own. */
typedef const char *(*lw_config_get_fn)(const char *name, void *arg);
/* Called once per problem with a complete one-line message (no newline). */
typedef void (*lw_config_err_fn)(const char *msg, void *arg);

/* Fill *c from the options: defaults first, then every LEAKWATCH_<NAME>
 * that get() returns. A bad value keeps the default and reports through
 * err(). `environ_list` (may be NULL) is scanned for LEAKWATCH_* names that
 * are not options; each is reported. Returns the number of problems. */
int lw_config_load(struct lw_config *c, lw_config_get_fn get, void *get_arg, char *const *environ_list,
                   lw_config_err_fn err, void *err_arg);

/* Parse a signal name ("USR2", "SIGUSR2", "RTMIN+7", "SIGRTMIN+7", "12",
 * "off"). Returns the signal number, LW_SIG_OFF for off, -1 if invalid. */
int lw_config_parse_signal(const char *s);

/* Write a signal's name into buf ("RTMIN+7", "USR2", "off"). */
void lw_config_signal_name(int signo, char *buf, size_t len);

/* Option descriptions, for --help and the README table. */
struct lw_option_info {
    const char *name; /* without the LEAKWATCH_ prefix */
    const char *kind;
    const char *def;
    const char *help;
};
extern const struct lw_option_info lw_option_table[];
extern const size_t lw_option_count;

#endif
