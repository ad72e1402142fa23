/*
 * inspect.c - `leakwatch inspect [--format text|json] [--watch S] PID`:
 * the kernel's view of any running process, no preload needed (Go and
 * static binaries issue madvise as raw system calls; /proc still tells the
 * truth). Reads /proc/PID (smaps_rollup, status, fd, maps) and its memory
 * cgroup with lib/kernel.c, and prints the waterfall without heap lines.
 * --watch samples every S seconds and says which line grew.
 */
#include "inspect.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kernel.h"
#include "output.h"
#include "waterfall.h"

#define PC_MAX 256
#define TEXT_CAP (256 * 1024)
#define VEC_PAGES 4096
#define MINCORE_MAX (4ull << 30)

static const char inspect_usage[] =
    "Usage: leakwatch inspect [OPTIONS] PID\n"
    "\n"
    "Show the kernel's view of a running process, without preloading anything:\n"
    "RSS split into anonymous memory in use and memory released with MADV_FREE\n"
    "but still resident (LazyFree), the page cache of the files it has open or\n"
    "mapped, and its memory cgroup's working set and usage. Works on any process\n"
    "you may read /proc/PID of (Go, static binaries, other runtimes).\n"
    "\n"
    "Options:\n"
    "  --format FMT       text (default) or json (the report's keys:\n"
    "                     process_memory, cgroup, page_cache, waterfall)\n"
    "  --watch SECONDS    sample every SECONDS and say which line grew\n"
    "                     (until interrupted or the process exits)\n"
    "  --count N          with --watch: stop after N samples\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status:\n"
    "  0  shown (with --watch: also when the process exits while watched)\n"
    "  1  no such process, or its /proc files cannot be read (permission)\n"
    "  2  usage error\n";

struct sample {
    struct lw_kview v;
    struct lw_waterfall w;
    struct lw_snap_page_cache pc[PC_MAX];
    struct lw_pc_entry e[PC_MAX];
};

struct ctx {
    char procdir[64];
    char *text;
    unsigned char *vec;
    uint32_t pid;
    bool warned;
};

/* Read everything once; false with a message if the process is gone or
 * unreadable. */
static bool take(struct ctx *c, struct sample *s)
{
    memset(&s->v, 0, sizeof s->v);
    int got = lw_kernel_read_proc(c->procdir, &s->v.kproc, c->text, TEXT_CAP);
    if (!(got & 1) && !(got & 2)) {
        int e = errno;
        struct stat st;
        if (stat(c->procdir, &st) != 0)
            lw_cli_error("inspect: no process %u (%s does not exist)", c->pid, c->procdir);
        else
            lw_cli_error("inspect: cannot read %s/smaps_rollup: %s (inspect needs the process's "
                         "user or root)", c->procdir, strerror(e));
        return false;
    }
    if (!(got & 1) && !c->warned) {
        lw_cli_warn("cannot read %s/smaps_rollup: %s; LazyFree is not available (inspect "
                    "needs the process's user or root)", c->procdir,
                    strerror(errno));
        c->warned = true;
    }
    s->v.has_kproc = true;
    static struct lw_cgroup_loc loc;
    if (lw_kernel_cgroup_find(c->procdir, "", &loc, c->text, TEXT_CAP) &&
        lw_kernel_cgroup_read(&loc, &s->v.cg, c->text, TEXT_CAP)) {
        s->v.has_cgroup = true;
        s->v.cgroup_path = loc.dir;
    }
    struct lw_pc_set set = {s->e, 0, PC_MAX, 0};
    if (!lw_pc_add_open(&set, c->procdir, c->text, TEXT_CAP))
        lw_cli_warn("cannot list %s/fd: %s; open files are not measured", c->procdir,
                    strerror(errno));
    lw_pc_add_mapped(&set, c->procdir, c->text, TEXT_CAP);
    lw_pc_measure(&set, c->vec, VEC_PAGES, MINCORE_MAX);
    size_t n = 0;
    for (size_t i = 0; i < set.n; i++) {
        if (!set.e[i].measured || set.e[i].cached == 0)
            continue;
        struct lw_rec_page_cache *r = &s->pc[n].rec;
        r->cached_bytes = set.e[i].cached;
        r->dirty_bytes = set.e[i].dirty;
        r->writeback_bytes = set.e[i].writeback;
        r->size_bytes = set.e[i].size;
        r->flags = set.e[i].flags;
        r->path_len = set.e[i].path_len;
        s->pc[n].path = set.e[i].path;
        n++;
    }
    s->v.pc = s->pc;
    s->v.npc = n;
    lw_waterfall_build(&s->v, &s->w);
    return true;
}

static void exe_of(const struct ctx *c, char *buf, size_t len)
{
    char path[96];
    snprintf(path, sizeof path, "%s/exe", c->procdir);
    ssize_t n = readlink(path, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
}

static void write_text(FILE *f, const struct ctx *c, const struct sample *s,
                       const struct sample *prev, unsigned secs)
{
    char exe[512], when[40];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lw_output_iso_time((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, when, sizeof when);
    exe_of(c, exe, sizeof exe);
    fprintf(f, "leakwatch inspect: pid %u (%s), %s\n", c->pid, exe[0] ? exe : "??", when);
    if (prev) {
        char since[64];
        snprintf(since, sizeof since, "in the last %u s", secs);
        fputs("  ", f);
        lw_waterfall_growth_text(f, &prev->w, &s->w, since);
    }
    lw_kview_text(f, &s->v, &s->w);
}

static void write_json(FILE *f, const struct ctx *c, const struct sample *s,
                       const struct sample *prev, bool pretty)
{
    char exe[512], when[40];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lw_output_iso_time((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, when, sizeof when);
    exe_of(c, exe, sizeof exe);
    struct lw_json j;
    lw_json_init(&j, f, pretty);
    lw_json_object_begin(&j, NULL, false);
    lw_json_string(&j, "format", "leakwatch-inspect/1");
    lw_json_object_begin(&j, "process", true);
    lw_json_u64(&j, "pid", c->pid);
    lw_json_string(&j, "exe", exe);
    lw_json_object_end(&j);
    lw_json_string(&j, "time", when);
    lw_kview_json(&j, &s->v, &s->w);
    if (prev) {
        struct lw_wf_growth g[LW_WF_MAX];
        size_t big;
        size_t n = lw_waterfall_delta(&prev->w, &s->w, g, LW_WF_MAX, &big);
        lw_json_array_begin(&j, "growth", false);
        for (size_t i = 0; i < n; i++) {
            if (!g[i].valid)
                continue;
            lw_json_object_begin(&j, NULL, true);
            lw_json_string(&j, "name", g[i].name);
            lw_json_i64(&j, "delta_bytes", g[i].delta);
            lw_json_object_end(&j);
        }
        lw_json_array_end(&j);
        if (big == SIZE_MAX)
            lw_json_null(&j, "largest_growth");
        else
            lw_json_string(&j, "largest_growth", g[big].name);
    }
    lw_json_object_end(&j);
    fputc('\n', f);
}

static volatile sig_atomic_t stop;
static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

int lw_inspect_main(int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_WATCH, OPT_COUNT };
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"watch", required_argument, NULL, OPT_WATCH},
        {"count", required_argument, NULL, OPT_COUNT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    uint64_t watch = 0, count = 0, pid = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            if (!strcmp(optarg, "json")) {
                json = true;
            } else if (strcmp(optarg, "text")) {
                lw_cli_error("inspect: --format %s: unknown format (text or json)", optarg);
                return LW_EXIT_USAGE;
            }
            break;
        case OPT_WATCH:
            if (!lw_cli_parse_u64(optarg, 1, 86400, &watch)) {
                lw_cli_error("inspect: --watch %s: not a number of seconds (1-86400)", optarg);
                return LW_EXIT_USAGE;
            }
            break;
        case OPT_COUNT:
            if (!lw_cli_parse_u64(optarg, 1, 1u << 30, &count)) {
                lw_cli_error("inspect: --count %s: not a number of samples", optarg);
                return LW_EXIT_USAGE;
            }
            break;
        case 'h': fputs(inspect_usage, stdout); return LW_EXIT_OK;
        case ':':
            lw_cli_error("inspect: %s needs a value (see leakwatch inspect --help)",
                         argv[optind - 1]);
            return LW_EXIT_USAGE;
        default:
            lw_cli_error("inspect: bad option '%s' (see leakwatch inspect --help)",
                         argv[optind - 1]);
            return LW_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        lw_cli_error("inspect: give exactly one process id (see leakwatch inspect --help)");
        return LW_EXIT_USAGE;
    }
    if (!lw_cli_parse_u64(argv[optind], 1, 1u << 30, &pid)) {
        lw_cli_error("inspect: '%s' is not a process id", argv[optind]);
        return LW_EXIT_USAGE;
    }
    if (count && !watch) {
        lw_cli_error("inspect: --count needs --watch");
        return LW_EXIT_USAGE;
    }
    struct ctx cx = {.pid = (uint32_t)pid};
    snprintf(cx.procdir, sizeof cx.procdir, "/proc/%u", cx.pid);
    cx.text = malloc(TEXT_CAP);
    cx.vec = malloc(VEC_PAGES);
    struct sample *cur = calloc(1, sizeof *cur), *prev = calloc(1, sizeof *prev);
    if (!cx.text || !cx.vec || !cur || !prev) {
        lw_cli_error("out of memory");
        return LW_EXIT_INPUT;
    }
    int rc = LW_EXIT_OK;
    if (!take(&cx, cur)) {
        rc = LW_EXIT_INPUT;
        goto out;
    }
    if (json)
        write_json(stdout, &cx, cur, NULL, !watch);
    else
        write_text(stdout, &cx, cur, NULL, 0);
    if (watch) {
        signal(SIGINT, on_stop);
        signal(SIGTERM, on_stop);
        for (uint64_t n = 1; !stop && (!count || n < count); n++) {
            fflush(stdout);
            struct timespec ts = {(time_t)watch, 0};
            while (!stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
            if (stop)
                break;
            struct sample *t = prev;
            prev = cur;
            cur = t;
            struct stat st;
            if (stat(cx.procdir, &st) != 0) {
                fprintf(stderr, "leakwatch: inspect: process %u exited\n", cx.pid);
                break;
            }
            if (!take(&cx, cur)) {
                rc = LW_EXIT_INPUT;
                break;
            }
            if (json) {
                write_json(stdout, &cx, cur, prev, false);
            } else {
                fputc('\n', stdout);
                write_text(stdout, &cx, cur, prev, (unsigned)watch);
            }
        }
    }
    fflush(stdout);
    if (ferror(stdout)) {
        lw_cli_error("cannot write the output: %s", strerror(errno));
        rc = LW_EXIT_INPUT;
    }
out:
    free(cx.text);
    free(cx.vec);
    free(cur);
    free(prev);
    return rc;
}
