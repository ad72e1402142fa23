/*
 * output.c - what the report formats share: the format table, ISO-8601
 * times, and the command that shows another process of a directory.
 */
#include "output.h"

#include <string.h>
#include <time.h>

#include "cli.h"

const struct lw_output *lw_output_find(const char *name)
{
    static const struct lw_output *const all[] = {&lw_output_text, &lw_output_json,
                                                   &lw_output_pprof, &lw_output_folded,
                                                   &lw_output_html};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(all[i]->name, name))
            return all[i];
    return NULL;
}

void lw_output_iso_time(uint64_t ns, char *buf, size_t len)
{
    time_t secs = (time_t)(ns / 1000000000u);
    unsigned ms = (unsigned)(ns % 1000000000u / 1000000u);
    struct tm tm;
    char date[32];
    if (!gmtime_r(&secs, &tm) || !strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(date, sizeof date, "1970-01-01T00:00:00");
    snprintf(buf, len, "%s.%03uZ", date, ms);
}

void lw_output_other_command(FILE *f, const struct lw_selection *sel,
                             const struct lw_proc_summary *p)
{
    /* --pid N shows the latest image of pid N; an earlier image of the same
     * pid (before an exec) is named by its file instead. */
    bool by_pid = sel->dir != NULL && p->pid != sel->chosen.pid;
    for (size_t i = 0; by_pid && i < sel->nothers; i++)
        if (&sel->others[i] != p && sel->others[i].pid == p->pid &&
            sel->others[i].start_time_ns > p->start_time_ns)
            by_pid = false;
    fputs("leakwatch report ", f);
    if (by_pid) {
        fprintf(f, "--pid %u ", p->pid);
        lw_cli_shell_quote(f, sel->dir);
    } else {
        lw_cli_shell_quote(f, p->last);
    }
}

bool lw_output_value_parse(const char *name, enum lw_value *out)
{
    static const char *const names[] = {"inuse_bytes", "inuse_objects", "alloc_bytes",
                                        "alloc_objects"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) {
            *out = (enum lw_value)i;
            return true;
        }
    return false;
}

bool lw_output_is_binary(const struct lw_output *fmt)
{
    return fmt == &lw_output_pprof;
}
