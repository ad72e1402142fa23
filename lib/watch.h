/*
 * watch.h - the usage threshold: what the OOM killer looks at (the memory
 * cgroup's usage when the process has a limited memory cgroup, else its
 * RSS), watched by a thread of its own, and the hysteresis shared with the
 * heap threshold. The watcher blocks on a cgroup v1 threshold eventfd where
 * it can (no polling at all), else reads the usage every 5 ms. Its thread
 * never allocates through the host and blocks every signal.
 */
#ifndef LW_WATCH_H
#define LW_WATCH_H

#include <stdbool.h>
#include <stdint.h>

/* Hysteresis: fire when the value reaches `line`; then fire again at each
 * new high `step` above the last one that fired; re-arm (back to `line`)
 * once the value has fallen below line - step. Not thread-safe. */
struct lw_hyst {
    uint64_t line, step;
    uint64_t next;       /* the value that fires next */
    uint64_t rearm;      /* disarmed: below this, armed again */
    bool armed;
};
void lw_hyst_init(struct lw_hyst *h, uint64_t line, uint64_t step);
/* Feed a value; true if a snapshot is due, *crossed = the line it passed. */
bool lw_hyst_feed(struct lw_hyst *h, uint64_t v, uint64_t *crossed);

/* The step for a threshold line from the options (bytes, or a share of the
 * line); at least one page. */
uint64_t lw_watch_step(uint64_t line);

/* How the usage threshold is watched (for the TRIGGER record and tests). */
enum lw_watch_how {
    LW_WATCH_OFF = 0,
    LW_WATCH_EVENTFD = 1, /* cgroup v1 memory threshold notification */
    LW_WATCH_POLL = 2,    /* usage file or /proc/self/statm read every 5 ms */
};

/* Start the watcher thread if LEAKWATCH_THRESHOLD is set (from the
 * constructor, or from a hook in a fork child). Warns once and stays off
 * when the threshold cannot be resolved (a percentage with no limit). */
void lw_watch_start(void);
void lw_watch_fork_child(void);
/* Bytes of leakwatch memory the watcher holds (its thread's stack). */
uint64_t lw_watch_memory_bytes(void);

#endif
