/*
 * main.c - the leakwatch command: dispatch to a verb (run, report, diff), print
 * the version and the top-level help. Each verb parses its own options.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dump.h"
#include "diff.h"
#include "lw_config.h"
#include "inspect.h"
#include "report.h"
#include "run.h"

static const char usage[] =
    "Usage: leakwatch VERB [OPTIONS] ...\n"
    "\n"
    "Find what holds a program's memory: heap blocks by call stack, its own\n"
    "mappings, and memory released with MADV_FREE that is still resident.\n"
    "\n"
    "Verbs:\n"
    "  run [OPTIONS] [--] CMD [ARGS...]   run CMD with leakwatch preloaded;\n"
    "                                     snapshots are written at exit, on\n"
    "                                     the snapshot signal (dump), and every\n"
    "                                     --interval or at a --threshold\n"
    "  report [OPTIONS] SNAPSHOT...|DIR   show what a snapshot holds; with several\n"
    "                                     snapshots of a process, leak candidates\n"
    "                                     ranked by growth\n"
    "  diff [OPTIONS] BASE NEW            what changed between two snapshots,\n"
    "                                     call stack by call stack\n"
    "  inspect [OPTIONS] PID              the kernel's view of a running process\n"
    "                                     (no preload): RSS, LazyFree, page\n"
    "                                     cache by file, cgroup working set\n"
    "  dump [--timeout SEC] PID           ask a process running under leakwatch\n"
    "                                     for a snapshot now; prints its path\n"
    "\n"
    "  leakwatch VERB --help   options of a verb\n"
    "  leakwatch --version     print the version\n"
    "\n"
    "Example:\n"
    "  leakwatch run -- ./server --port 8080\n"
    "  leakwatch report ./leakwatch-server-4242\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  bad input (missing, truncated, corrupt or newer-format snapshot, or no\n"
    "     snapshot in a directory); inspect: no such process, or no permission\n"
    "  2  usage error, or `run` refused to start the program\n"
    "  `run` otherwise exits with the program's status (128+N if signal N killed it)\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return LW_EXIT_USAGE;
    }
    const char *verb = argv[1];
    if (!strcmp(verb, "--version") || !strcmp(verb, "-V")) {
        printf("leakwatch %s\n", LW_VERSION);
        return LW_EXIT_OK;
    }
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
        fputs(usage, stdout);
        return LW_EXIT_OK;
    }
    if (!strcmp(verb, "run"))
        return lw_run_main(argc - 1, argv + 1);
    if (!strcmp(verb, "report"))
        return lw_report_main(argc - 1, argv + 1);
    if (!strcmp(verb, "diff"))
        return lw_diff_main(argc - 1, argv + 1);
    if (!strcmp(verb, "inspect"))
        return lw_inspect_main(argc - 1, argv + 1);
    if (!strcmp(verb, "dump"))
        return lw_dump_main(argc - 1, argv + 1);
    lw_cli_error("unknown verb '%s' (see leakwatch --help)", verb);
    return LW_EXIT_USAGE;
}
