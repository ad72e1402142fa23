/*
 * report.c - the `report` verb: option parsing and the pipeline from the
 * paths given to the written report. Every failure is one line naming the
 * file and the problem, with exit status 1 (input) or 2 (usage).
 */
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis.h"
#include "candidates.h"
#include "cli.h"
#include "output.h"
#include "reader.h"
#include "symbolize.h"

static const char report_usage[] =
    "Usage: leakwatch report [OPTIONS] SNAPSHOT... | DIR\n"
    "\n"
    "Show what a snapshot holds: heap and mapping totals, then the call stacks\n"
    "holding the most memory, symbolized with the binaries and debug info on\n"
    "this machine (missing files show as module+offset).\n"
    "\n"
    "DIR may hold snapshots of several processes: the report is about the\n"
    "process `leakwatch run` started (else the first process whose parent is\n"
    "not there) and lists the others. SNAPSHOT files must all belong to one\n"
    "process. Totals and stacks are those of the last snapshot (highest\n"
    "sequence number); with two or more snapshots of the process, its call\n"
    "stacks are also ranked as leak candidates by growth across them (live\n"
    "bytes or threads rising in most intervals, never falling); with one, the\n"
    "ages of the live blocks are shown instead.\n"
    "\n"
    "Options:\n"
    "  --format FMT    text (default), json, pprof (gzipped profile.proto for\n"
    "                  go tool pprof; needs -o FILE on a terminal), folded (one\n"
    "                  line per stack for flame graph tools) or html (one\n"
    "                  self-contained page: charts, flame graph, tables)\n"
    "  --value V       what folded stacks count: inuse_bytes (default),\n"
    "                  inuse_objects, alloc_bytes or alloc_objects\n"
    "  --top N         show the N stacks holding the most memory\n"
    "                  (default: 10 for text, all for the others; 0: all;\n"
    "                  pprof always holds every stack)\n"
    "  --pid PID       report process PID (of a directory or of the files)\n"
    "  -o, --output FILE\n"
    "                  write the report to FILE instead of standard output\n"
    "  --debuginfod    let elfutils download missing debug info from the\n"
    "                  servers in DEBUGINFOD_URLS (off by default)\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status:\n"
    "  0  report written\n"
    "  1  bad input: a snapshot is missing, unreadable, truncated, corrupt or of a\n"
    "     newer format; no snapshot in DIR; files of different processes; or the\n"
    "     report could not be written\n"
    "  2  usage error\n";

/* The function of a stack's first frame, for candidates' reasons. */
static const char *frame0_function(void *arg, const struct lw_snap_stack *st)
{
    if (!st->nframes)
        return NULL;
    const struct lw_sym_loc *loc = lw_sym_lookup(arg, st->frames[0]);
    return loc->frames[loc->nframes - 1].function;
}

int lw_report_main(int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_TOP, OPT_PID, OPT_DEBUGINFOD, OPT_VALUE };
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"top", required_argument, NULL, OPT_TOP},
        {"pid", required_argument, NULL, OPT_PID},
        {"debuginfod", no_argument, NULL, OPT_DEBUGINFOD},
        {"value", required_argument, NULL, OPT_VALUE},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct lw_output *fmt = &lw_output_text;
    const char *outfile = NULL;
    uint64_t top = 0, pid = 0;
    bool top_given = false;
    enum lw_value value = LW_VALUE_INUSE_BYTES;
    struct lw_sym_options symopt = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            if (!(fmt = lw_output_find(optarg))) {
                lw_cli_error("report: --format %s: unknown format (text, json, pprof, folded or html)",
                             optarg);
                return LW_EXIT_USAGE;
            }
            break;
        case OPT_TOP:
            if (!lw_cli_parse_u64(optarg, 0, 1u << 30, &top)) {
                lw_cli_error("report: --top %s: not a number of stacks", optarg);
                return LW_EXIT_USAGE;
            }
            top_given = true;
            break;
        case OPT_PID:
            if (!lw_cli_parse_u64(optarg, 1, UINT32_MAX, &pid)) {
                lw_cli_error("report: --pid %s: not a process id", optarg);
                return LW_EXIT_USAGE;
            }
            break;
        case OPT_DEBUGINFOD: symopt.debuginfod = true; break;
        case OPT_VALUE:
            if (!lw_output_value_parse(optarg, &value)) {
                lw_cli_error("report: --value %s: unknown value (inuse_bytes, inuse_objects, "
                             "alloc_bytes or alloc_objects)", optarg);
                return LW_EXIT_USAGE;
            }
            break;
        case 'o': outfile = optarg; break;
        case 'h': fputs(report_usage, stdout); return LW_EXIT_OK;
        case ':':
            lw_cli_error("report: %s needs a value (see leakwatch report --help)",
                         argv[optind - 1]);
            return LW_EXIT_USAGE;
        default:
            if (optopt && optopt < 256)
                lw_cli_error("report: unknown option '-%c' (see leakwatch report --help)", optopt);
            else
                lw_cli_error("report: bad option '%s' (see leakwatch report --help)",
                             argv[optind - 1]);
            return LW_EXIT_USAGE;
        }
    }
    if (lw_output_is_binary(fmt) && !outfile && isatty(STDOUT_FILENO)) {
        lw_cli_error("report: --format %s writes binary data: give -o FILE (or redirect "
                     "standard output)", fmt->name);
        return LW_EXIT_USAGE;
    }
    if (optind >= argc) {
        lw_cli_error("report: no snapshot or directory given (see leakwatch report --help)");
        return LW_EXIT_USAGE;
    }

    char err[LW_READER_ERRLEN];
    struct lw_selection sel;
    int rc = lw_analysis_select(argv + optind, (size_t)(argc - optind), (uint32_t)pid, stderr,
                                &sel, err, sizeof err);
    if (rc) {
        lw_cli_error("%s", err);
        return rc;
    }
    struct lw_series series;
    rc = lw_analysis_load_series(&sel, &series, err, sizeof err);
    if (rc) {
        lw_cli_error("%s", err);
        lw_analysis_selection_free(&sel);
        return rc;
    }
    const struct lw_snapshot *snap = series.last;
    struct lw_candidate *cands = NULL;
    size_t ncands = 0;
    size_t nranked = 0;
    struct lw_ranked *ranked = NULL;
    lw_sym_t *sym = NULL;
    FILE *f = stdout;
    if (outfile && !(f = fopen(outfile, "w"))) {
        lw_cli_error("cannot write %s: %s", outfile, strerror(errno));
        rc = LW_EXIT_INPUT;
        goto out;
    }
    ranked = lw_analysis_rank_series(&series, &nranked);
    sym = lw_sym_new(snap, &symopt);
    if (!ranked || !sym) {
        lw_cli_error("out of memory");
        rc = LW_EXIT_INPUT;
        goto out;
    }
    cands = lw_candidates_rank(&series, frame0_function, sym, &ncands);
    struct lw_report r = {
        .path = sel.path,
        .snap = snap,
        .stacks = ranked,
        .nstacks = nranked,
        .top = top_given ? (top ? (size_t)top : SIZE_MAX) : 0,
        .sym = sym,
        .sel = &sel,
        .value = value,
        .series = &series,
        .cands = cands,
        .ncands = ncands,
    };
    int wrc = fmt->write(f, &r);
    if (f != stdout) {
        if (fclose(f) != 0)
            wrc = -1;
        f = stdout;
    }
    if (wrc) {
        lw_cli_error("cannot write %s: %s", outfile ? outfile : "the report", strerror(errno));
        rc = LW_EXIT_INPUT;
        goto out;
    }
    /* The text report lists the other processes; say it for json too. */
    if (fmt != &lw_output_text && sel.nothers) {
        fprintf(stderr, "leakwatch: reported pid %u; %zu other process(es) also wrote snapshots:\n",
                sel.chosen.pid, sel.nothers);
        for (size_t i = 0; i < sel.nothers; i++) {
            fprintf(stderr, "leakwatch:   pid %u (%s): ", sel.others[i].pid,
                    sel.others[i].exe[0] ? sel.others[i].exe : "??");
            lw_output_other_command(stderr, &sel, &sel.others[i]);
            fputc('\n', stderr);
        }
    }
out:
    if (f && f != stdout)
        fclose(f);
    lw_sym_free(sym);
    free(ranked);
    free(cands);
    lw_analysis_series_free(&series);
    lw_analysis_selection_free(&sel);
    return rc;
}
