/*
 * progress.c - progress lines on a terminal for slow renders (see
 * progress.h). One line, rewritten in place with \r, erased at the end.
 */
#include "progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lw_progress_begin_to(struct lw_progress *p, FILE *out, uint64_t (*now)(void),
                          const char *what, size_t total)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->now = now ? now : mono_ns;
    p->what = what;
    p->total = total;
    p->start_ns = p->now();
}

void lw_progress_begin(struct lw_progress *p, const char *what, size_t total)
{
    lw_progress_begin_to(p, isatty(STDERR_FILENO) ? stderr : NULL, NULL, what, total);
}

void lw_progress_step(struct lw_progress *p, size_t done)
{
    if (!p->out)
        return;
    uint64_t t = p->now();
    if (t - p->start_ns < LW_PROGRESS_DELAY_NS)
        return;
    if (p->shown && t - p->last_ns < LW_PROGRESS_EVERY_NS)
        return;
    p->last_ns = t;
    p->shown = true;
    fprintf(p->out, "\rleakwatch: %s %zu/%zu", p->what, done, p->total);
    fflush(p->out);
}

void lw_progress_end(struct lw_progress *p)
{
    if (p->out && p->shown) {
        fputs("\r\033[K", p->out); /* back to column 0, erase the line */
        fflush(p->out);
    }
    p->shown = false;
}
