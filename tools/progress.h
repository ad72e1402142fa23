/*
 * progress.h - "symbolizing 1200/5000 stacks" on stderr while a report is
 * rendered, only when stderr is a terminal and only once the work has
 * taken longer than a second; silent otherwise (pipes, files, CI logs).
 */
#ifndef LW_TOOLS_PROGRESS_H
#define LW_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct lw_progress {
    FILE *out;          /* NULL: silent */
    const char *what;   /* "symbolizing stacks" */
    size_t total;
    uint64_t start_ns, last_ns;
    bool shown;         /* a line is on the terminal: lw_progress_end clears it */
    uint64_t (*now)(void); /* monotonic ns; a seam for tests */
};

#define LW_PROGRESS_DELAY_NS 1000000000ull /* nothing before one second */
#define LW_PROGRESS_EVERY_NS 100000000ull  /* then at most ten updates a second */

/* Start: progress goes to stderr if it is a terminal, else nowhere. */
void lw_progress_begin(struct lw_progress *p, const char *what, size_t total);
/* Same, writing to `out` (NULL: silent) with the clock `now` (tests). */
void lw_progress_begin_to(struct lw_progress *p, FILE *out, uint64_t (*now)(void),
                          const char *what, size_t total);
/* `done` of total items are done; prints "\rWHAT DONE/TOTAL" when due. */
void lw_progress_step(struct lw_progress *p, size_t done);
/* Clear the line if one was printed. */
void lw_progress_end(struct lw_progress *p);

#endif
