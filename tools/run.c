/*
 * run.c - `leakwatch run [OPTIONS] [--] CMD [ARGS...]`. Validates the
 * options with the library's own parser (lib/config.c) before starting,
 * refuses static executables, forks, and in the child sets LD_PRELOAD, the
 * LEAKWATCH_* variables and LEAKWATCH_ROOT_PID before exec. The parent
 * ignores SIGINT/SIGQUIT (the terminal sends them to the child), forwards
 * SIGTERM/SIGHUP, and exits with the child's status (128+N for signal N).
 */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel.h"
#include "cli.h"
#include "config.h"
#include "lw_config.h"
#include "lw_format.h"

extern char **environ;

static const char run_usage[] =
    "Usage: leakwatch run [OPTIONS] [--] CMD [ARGS...]\n"
    "\n"
    "Run CMD with libleakwatch.so preloaded. CMD and, by default, the programs\n"
    "it starts write snapshots when they exit and when they receive the\n"
    "snapshot signal. Then read them with `leakwatch report DIR`.\n"
    "\n"
    "Options:\n"
    "  --output DIR       where snapshots go (default: ./leakwatch-CMD-PID,\n"
    "                     PID being this leakwatch's; created if missing)\n"
    "  --signal SIG       signal that writes a snapshot: a name (USR2, RTMIN+7),\n"
    "                     a number, or off (default RTMIN+7)\n"
    "  --depth N          deepest call stack recorded, 1-256 (default 64)\n"
    "  --no-follow-exec   do not trace programs that CMD execs\n"
    "  --no-follow-fork   fork children of CMD write no snapshots\n"
    "  --no-cmdline       leave the command line out of snapshots\n"
    "  --madv-free MODE   keep (default): madvise(MADV_FREE) as the program asks;\n"
    "                     dontneed: turn it into MADV_DONTNEED, so released memory\n"
    "                     leaves RSS at once (confirms a MADV_FREE diagnosis)\n"
    "  --interval SEC     also write a snapshot every SEC seconds (2, 0.5, 250ms)\n"
    "  --threshold SIZE   write one when the memory cgroup's usage (RSS without a\n"
    "                     cgroup limit) reaches SIZE: bytes (1536M, 1.5G) or a\n"
    "                     share of the cgroup limit (80%)\n"
    "  --heap-threshold SIZE  write one when heap in use reaches SIZE bytes\n"
    "  --threshold-step SIZE  after a threshold snapshot, another at each new\n"
    "                     high this much above (bytes or %% of the threshold;\n"
    "                     default 10%%); re-armed below threshold - step\n"
    "  --keep N           keep at most N snapshots per process (oldest deleted)\n"
    "  --sample BYTES     record one allocation per BYTES on average (K/M/G\n"
    "                     suffix; 512K suits production); heap totals stay\n"
    "                     exact, per-stack figures become estimates (default 0:\n"
    "                     record every allocation)\n"
    "  --unwind MODE      libunwind (default, any code; a stack seen before is\n"
    "                     checked in memory instead of unwound again),\n"
    "                     libunwind-uncached (every stack unwound), or fp: walk\n"
    "                     frame pointers, right only for code built with them\n"
    "  --help-env         list the LEAKWATCH_* variables as a Markdown table\n"
    "  -h, --help         show this help\n"
    "\n"
    "LEAKWATCH_* variables already in the environment apply too (see\n"
    "--help-env); the options above override them. LEAKWATCH_LIB names the\n"
    "library to preload (default: found next to this program, in ../lib/ of a\n"
    "build tree or ../" LW_REL_LIBDIR "/ of an installed one, else\n"
    LW_INSTALL_LIBDIR "/" LW_PRELOAD_NAME ").\n"
    "\n"
    "Exit status:\n"
    "  CMD's exit status, or 128+N if CMD was killed by signal N\n"
    "  2    usage error, bad option value, or CMD is statically linked\n"
    "  126  CMD was found but cannot be executed\n"
    "  127  CMD was not found\n";

/* Values given on the command line; NULL: not given. */
struct run_flags {
    const char *output, *signal, *depth, *follow_exec, *follow_fork, *cmdline;
    const char *madv_free;
    const char *interval, *threshold, *heap_threshold, *threshold_step, *keep;
    const char *sample, *unwind;
    const char *output_default; /* ./leakwatch-CMD-PID, used when OUTPUT is unset */
};

static const char **flag_slot(struct run_flags *f, const char *name)
{
    if (!strcmp(name, "LEAKWATCH_OUTPUT"))
        return &f->output;
    if (!strcmp(name, "LEAKWATCH_SIGNAL"))
        return &f->signal;
    if (!strcmp(name, "LEAKWATCH_DEPTH"))
        return &f->depth;
    if (!strcmp(name, "LEAKWATCH_FOLLOW_EXEC"))
        return &f->follow_exec;
    if (!strcmp(name, "LEAKWATCH_FOLLOW_FORK"))
        return &f->follow_fork;
    if (!strcmp(name, "LEAKWATCH_CMDLINE"))
        return &f->cmdline;
    if (!strcmp(name, "LEAKWATCH_MADV_FREE"))
        return &f->madv_free;
    if (!strcmp(name, "LEAKWATCH_INTERVAL"))
        return &f->interval;
    if (!strcmp(name, "LEAKWATCH_THRESHOLD"))
        return &f->threshold;
    if (!strcmp(name, "LEAKWATCH_HEAP_THRESHOLD"))
        return &f->heap_threshold;
    if (!strcmp(name, "LEAKWATCH_THRESHOLD_STEP"))
        return &f->threshold_step;
    if (!strcmp(name, "LEAKWATCH_KEEP"))
        return &f->keep;
    if (!strcmp(name, "LEAKWATCH_SAMPLE"))
        return &f->sample;
    if (!strcmp(name, "LEAKWATCH_UNWIND"))
        return &f->unwind;
    return NULL;
}

static const char *flag_name(const char *var)
{
    static const char *const map[][2] = {
        {"LEAKWATCH_OUTPUT", "--output"}, {"LEAKWATCH_SIGNAL", "--signal"},
        {"LEAKWATCH_DEPTH", "--depth"}, {"LEAKWATCH_MADV_FREE", "--madv-free"},
        {"LEAKWATCH_INTERVAL", "--interval"},
        {"LEAKWATCH_THRESHOLD", "--threshold"}, {"LEAKWATCH_HEAP_THRESHOLD", "--heap-threshold"},
        {"LEAKWATCH_THRESHOLD_STEP", "--threshold-step"}, {"LEAKWATCH_KEEP", "--keep"},
        {"LEAKWATCH_SAMPLE", "--sample"},   {"LEAKWATCH_UNWIND", "--unwind"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strncmp(var, map[i][0], strlen(map[i][0])) && var[strlen(map[i][0])] == '=')
            return map[i][1];
    return NULL;
}

/* Options as the library will see them: command line first, then the
 * environment, then run's own default output directory. */
static const char *get_opt(const char *name, void *arg)
{
    struct run_flags *f = arg;
    const char **slot = flag_slot(f, name);
    if (slot && *slot)
        return *slot;
    const char *v = getenv(name);
    if (!v && !strcmp(name, "LEAKWATCH_OUTPUT"))
        return f->output_default;
    return v;
}

struct cfg_errs {
    struct run_flags *flags;
    int n;
};

/* One line per bad option. The library keeps a default and goes on; run
 * refuses instead, so the "; using ..." tail is dropped. A value that came
 * from a flag is named by the flag. */
static void cfg_err(const char *msg, void *arg)
{
    struct cfg_errs *e = arg;
    char buf[600];
    snprintf(buf, sizeof buf, "%s", msg);
    char *tail = strstr(buf, "; using");
    if (!tail)
        tail = strstr(buf, "; ignored");
    if (tail)
        *tail = '\0';
    const char *flag = flag_name(buf);
    char var[64];
    size_t vl = strcspn(buf, "=");
    snprintf(var, sizeof var, "%.*s", (int)vl, buf);
    const char **slot = flag_slot(e->flags, var);
    const char *why = strstr(buf, "': ");
    if (flag && slot && *slot && why)
        lw_cli_error("%s %s: %s", flag, *slot, why + 3);
    else
        lw_cli_error("%s", buf);
    e->n++;
}

int lw_run_resolve(const char *cmd, char *out, size_t len)
{
    struct stat st;
    if (!*cmd)
        return ENOENT;
    if (strchr(cmd, '/')) {
        if (stat(cmd, &st) != 0)
            return ENOENT;
        snprintf(out, len, "%s", cmd);
        return S_ISREG(st.st_mode) && access(cmd, X_OK) == 0 ? 0 : EACCES;
    }
    const char *path = getenv("PATH");
    char defpath[256];
    if (!path) {
        if (!confstr(_CS_PATH, defpath, sizeof defpath))
            snprintf(defpath, sizeof defpath, "/bin:/usr/bin");
        path = defpath;
    }
    int found = ENOENT;
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        char cand[PATH_MAX];
        /* An empty PATH element means the current directory. */
        int n = snprintf(cand, sizeof cand, "%.*s%s%s", (int)dl, dl ? p : ".", "/", cmd);
        if (n > 0 && (size_t)n < sizeof cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(cand, X_OK) == 0) {
                snprintf(out, len, "%s", cand);
                return 0;
            }
            if (found == ENOENT) { /* remember it, as execvp reports EACCES */
                snprintf(out, len, "%s", cand);
                found = EACCES;
            }
        }
        if (!end)
            break;
        p = end;
    }
    return found;
}

enum lw_exe_kind lw_run_exe_kind(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return LW_EXE_OTHER;
    char head[4] = {0};
    ssize_t n = pread(fd, head, sizeof head, 0);
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        close(fd);
        return LW_EXE_SCRIPT;
    }
    if (n < 4 || memcmp(head, ELFMAG, SELFMAG) != 0) {
        close(fd);
        return LW_EXE_OTHER;
    }
    enum lw_exe_kind kind = LW_EXE_OTHER;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    size_t nph;
    GElf_Ehdr eh;
    if (e && gelf_getehdr(e, &eh) && (eh.e_type == ET_EXEC || eh.e_type == ET_DYN) &&
        elf_getphdrnum(e, &nph) == 0) {
        kind = LW_EXE_STATIC;
        for (size_t i = 0; i < nph; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP)
                kind = LW_EXE_DYNAMIC;
        }
    }
    if (e)
        elf_end(e);
    close(fd);
    return kind;
}

/* The library to preload: $LEAKWATCH_LIB, the build tree, the install dir. */
static bool find_library(char *out, size_t len)
{
    const char *env = getenv("LEAKWATCH_LIB");
    if (env && *env) {
        if (access(env, R_OK) != 0) {
            lw_cli_error("LEAKWATCH_LIB=%s: %s", env, strerror(errno));
            return false;
        }
        if (!realpath(env, out))
            snprintf(out, len, "%s", env);
        return true;
    }
    char self[PATH_MAX], cand[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            /* The build tree (tools/ beside lib/), then an installed tree
             * wherever it was moved to (bin/ beside LIBDIR/leakwatch/). */
            const char *rel[] = {"../lib", "../" LW_REL_LIBDIR};
            for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                int n2 = snprintf(cand, sizeof cand, "%.*s/%s/%s", PATH_MAX - 128, self, rel[i],
                                  LW_PRELOAD_NAME);
                if (n2 > 0 && n2 < (int)sizeof cand && access(cand, R_OK) == 0 &&
                    realpath(cand, out))
                    return true;
            }
        }
    }
    snprintf(cand, sizeof cand, "%s/%s", LW_INSTALL_LIBDIR, LW_PRELOAD_NAME);
    if (access(cand, R_OK) == 0) {
        snprintf(out, len, "%.*s", (int)(len - 1), cand);
        return true;
    }
    lw_cli_error("cannot find %s (looked next to this program and in %s); set LEAKWATCH_LIB",
                 LW_PRELOAD_NAME, LW_INSTALL_LIBDIR);
    return false;
}

/* mkdir -p; new directories are private (snapshots hold command lines). */
static int make_dirs(const char *dir)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

struct names {
    char **v;
    size_t n;
};

static bool is_snapshot(const char *name)
{
    size_t n = strlen(name), s = strlen(LW_SNAP_SUFFIX);
    return name[0] != '.' && n > s && !strcmp(name + n - s, LW_SNAP_SUFFIX);
}

static void list_snapshots(const char *dir, struct names *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    out->v = NULL;
    out->n = 0;
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (!is_snapshot(de->d_name))
            continue;
        char **v = realloc(out->v, (out->n + 1) * sizeof *v);
        if (!v || !(v[out->n] = strdup(de->d_name)))
            abort();
        out->v = v;
        out->n++;
    }
    closedir(d);
}

static void free_names(struct names *n)
{
    for (size_t i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
}

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
    int saved = errno;
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
    errno = saved;
}

static void print_help_env(void)
{
    puts("| Variable | Default | Meaning |");
    puts("|---|---|---|");
    for (size_t i = 0; i < lw_option_count; i++) {
        const struct lw_option_info *o = &lw_option_table[i];
        printf("| `LEAKWATCH_%s` | %s%s%s | %s |\n", o->name, o->def[0] ? "`" : "",
               o->def[0] ? o->def : "(none)", o->def[0] ? "`" : "", o->help);
    }
    printf("| `LEAKWATCH_LIB` | (see `leakwatch run --help`) | read by `leakwatch run`: the "
           "library to preload |\n");
}

/* A percentage threshold needs a memory cgroup limit; the program runs in
 * ours. false (after one message) if there is none. */
static bool threshold_has_limit(const struct run_flags *fl)
{
    static struct lw_cgroup cg;
    static char buf[65536];
    const char *given = fl->threshold ? fl->threshold : getenv("LEAKWATCH_THRESHOLD");
    if (lw_cgroup_find("/proc/self", &cg, buf, sizeof buf) && cg.limit)
        return true;
    lw_cli_error("%s %s: a percentage needs a memory cgroup limit, and this process has none "
                 "(%s); give the threshold in bytes instead (e.g. 1536M)",
                 fl->threshold ? "--threshold" : "LEAKWATCH_THRESHOLD", given,
                 cg.version ? "its memory cgroup is unlimited" : "no memory cgroup found");
    return false;
}

/* In the child: environment, signals, exec. Reports errno on err_fd. */
static void exec_child(const char *lib, const char *out_dir, struct run_flags *fl,
                       const char *path, char **argv, const sigset_t *oldmask, int err_fd)
{
    char buf[PATH_MAX * 2 + 32];
    const char *pre = getenv("LD_PRELOAD");
    if (pre && *pre)
        snprintf(buf, sizeof buf, "%s:%s", lib, pre);
    else
        snprintf(buf, sizeof buf, "%s", lib);
    setenv("LD_PRELOAD", buf, 1);
    setenv("LEAKWATCH_OUTPUT", out_dir, 1);
    if (fl->signal)
        setenv("LEAKWATCH_SIGNAL", fl->signal, 1);
    if (fl->depth)
        setenv("LEAKWATCH_DEPTH", fl->depth, 1);
    if (fl->follow_exec)
        setenv("LEAKWATCH_FOLLOW_EXEC", fl->follow_exec, 1);
    if (fl->follow_fork)
        setenv("LEAKWATCH_FOLLOW_FORK", fl->follow_fork, 1);
    if (fl->cmdline)
        setenv("LEAKWATCH_CMDLINE", fl->cmdline, 1);
    if (fl->madv_free)
        setenv("LEAKWATCH_MADV_FREE", fl->madv_free, 1);
    const char *const more[][2] = {
        {"LEAKWATCH_INTERVAL", fl->interval}, {"LEAKWATCH_THRESHOLD", fl->threshold},
        {"LEAKWATCH_HEAP_THRESHOLD", fl->heap_threshold},
        {"LEAKWATCH_THRESHOLD_STEP", fl->threshold_step}, {"LEAKWATCH_KEEP", fl->keep},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        if (more[i][1])
            setenv(more[i][0], more[i][1], 1);
    if (fl->sample)
        setenv("LEAKWATCH_SAMPLE", fl->sample, 1);
    if (fl->unwind)
        setenv("LEAKWATCH_UNWIND", fl->unwind, 1);
    snprintf(buf, sizeof buf, "%ld", (long)getpid());
    setenv("LEAKWATCH_ROOT_PID", buf, 1);
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    execv(path, argv);
    if (errno == ENOEXEC) { /* like execvp: a file without #! is a shell script */
        size_t n = 0;
        while (argv[n])
            n++;
        char **sh = calloc(n + 2, sizeof *sh);
        if (sh) {
            sh[0] = "sh";
            sh[1] = (char *)path;
            for (size_t i = 1; i < n; i++)
                sh[i + 1] = argv[i];
            execv("/bin/sh", sh);
        }
    }
    int e = errno;
    (void)!write(err_fd, &e, sizeof e);
    _exit(127);
}

int lw_run_main(int argc, char **argv)
{
    enum { OPT_OUTPUT = 256, OPT_SIGNAL, OPT_DEPTH, OPT_NOEXEC, OPT_NOFORK, OPT_NOCMD, OPT_HELPENV,
           OPT_MADV_FREE,
           OPT_INTERVAL, OPT_THRESHOLD, OPT_HEAP_THRESHOLD, OPT_STEP, OPT_KEEP,
           OPT_SAMPLE, OPT_UNWIND };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"signal", required_argument, NULL, OPT_SIGNAL},
        {"depth", required_argument, NULL, OPT_DEPTH},
        {"no-follow-exec", no_argument, NULL, OPT_NOEXEC},
        {"no-follow-fork", no_argument, NULL, OPT_NOFORK},
        {"no-cmdline", no_argument, NULL, OPT_NOCMD},
        {"help-env", no_argument, NULL, OPT_HELPENV},
        {"madv-free", required_argument, NULL, OPT_MADV_FREE},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"heap-threshold", required_argument, NULL, OPT_HEAP_THRESHOLD},
        {"threshold-step", required_argument, NULL, OPT_STEP},
        {"keep", required_argument, NULL, OPT_KEEP},
        {"sample", required_argument, NULL, OPT_SAMPLE},
        {"unwind", required_argument, NULL, OPT_UNWIND},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct run_flags fl = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_OUTPUT: fl.output = optarg; break;
        case OPT_SIGNAL: fl.signal = optarg; break;
        case OPT_DEPTH: fl.depth = optarg; break;
        case OPT_NOEXEC: fl.follow_exec = "0"; break;
        case OPT_NOFORK: fl.follow_fork = "0"; break;
        case OPT_NOCMD: fl.cmdline = "0"; break;
        case OPT_MADV_FREE: fl.madv_free = optarg; break;
        case OPT_HELPENV: print_help_env(); return LW_EXIT_OK;
        case OPT_INTERVAL: fl.interval = optarg; break;
        case OPT_THRESHOLD: fl.threshold = optarg; break;
        case OPT_HEAP_THRESHOLD: fl.heap_threshold = optarg; break;
        case OPT_STEP: fl.threshold_step = optarg; break;
        case OPT_KEEP: fl.keep = optarg; break;
        case OPT_SAMPLE: fl.sample = optarg; break;
        case OPT_UNWIND: fl.unwind = optarg; break;
        case 'h': fputs(run_usage, stdout); return LW_EXIT_OK;
        case ':':
            lw_cli_error("run: %s needs a value (see leakwatch run --help)", argv[optind - 1]);
            return LW_EXIT_USAGE;
        default:
            if (optopt && optopt < 256)
                lw_cli_error("run: unknown option '-%c' (see leakwatch run --help)", optopt);
            else
                lw_cli_error("run: bad option '%s' (see leakwatch run --help)", argv[optind - 1]);
            return LW_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        lw_cli_error("run: no command given (usage: leakwatch run [OPTIONS] -- CMD [ARGS...])");
        return LW_EXIT_USAGE;
    }
    char **cmd = argv + optind;

    char path[PATH_MAX];
    int rc = lw_run_resolve(cmd[0], path, sizeof path);
    if (rc == ENOENT) {
        lw_cli_error("%s: command not found", cmd[0]);
        return 127;
    }
    if (rc == EACCES) {
        lw_cli_error("%s: permission denied (not an executable file)", path);
        return 126;
    }
    if (lw_run_exe_kind(path) == LW_EXE_STATIC) {
        lw_cli_error("%s is statically linked; LD_PRELOAD cannot reach it, so leakwatch cannot "
                     "trace it (see README: known limitations)",
                     cmd[0]);
        return LW_EXIT_USAGE;
    }

    /* Default output: ./leakwatch-CMD-PID, absolute so that programs that
     * change directory still write into the same place. */
    char cwd[PATH_MAX], defdir[PATH_MAX + 300];
    if (!getcwd(cwd, sizeof cwd))
        snprintf(cwd, sizeof cwd, ".");
    const char *base = strrchr(cmd[0], '/') ? strrchr(cmd[0], '/') + 1 : cmd[0];
    snprintf(defdir, sizeof defdir, "%s/leakwatch-%.200s-%ld", cwd, base, (long)getpid());
    fl.output_default = defdir;

    struct lw_config cfg;
    struct cfg_errs errs = {&fl, 0};
    lw_config_load(&cfg, get_opt, &fl, environ, cfg_err, &errs);
    if (errs.n)
        return LW_EXIT_USAGE;
    if (cfg.threshold_pct && !threshold_has_limit(&fl))
        return LW_EXIT_USAGE;

    char lib[PATH_MAX];
    if (!find_library(lib, sizeof lib))
        return LW_EXIT_USAGE;
    if (strpbrk(lib, " :")) { /* the loader splits LD_PRELOAD on both */
        lw_cli_error("%s: LD_PRELOAD cannot carry a path with a space or a colon; "
                     "set LEAKWATCH_LIB to a path without them",
                     lib);
        return LW_EXIT_USAGE;
    }

    char outdir[PATH_MAX + 8];
    if (cfg.output[0] == '/')
        snprintf(outdir, sizeof outdir, "%s", cfg.output);
    else if (snprintf(outdir, sizeof outdir, "%s/%s", cwd, cfg.output) >= (int)sizeof outdir) {
        lw_cli_error("--output %s: path too long", cfg.output);
        return LW_EXIT_USAGE;
    }
    struct stat outdir_st;
    bool outdir_new = stat(outdir, &outdir_st) != 0; /* made by us: removed again if CMD never ran */
    if (make_dirs(outdir) != 0) {
        lw_cli_error("cannot create %s: %s", outdir, strerror(errno));
        return LW_EXIT_USAGE;
    }
    struct names before;
    list_snapshots(outdir, &before);

    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        lw_cli_error("pipe: %s", strerror(errno));
        free_names(&before);
        return LW_EXIT_USAGE;
    }
    sigset_t block, oldmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGQUIT);
    sigprocmask(SIG_BLOCK, &block, &oldmask);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        lw_cli_error("fork: %s", strerror(errno));
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        free_names(&before);
        return LW_EXIT_USAGE;
    }
    if (pid == 0) {
        close(errpipe[0]);
        exec_child(lib, outdir, &fl, path, cmd, &oldmask, errpipe[1]);
    }
    close(errpipe[1]);
    child_pid = pid;
    struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward};
    sigemptyset(&ign.sa_mask);
    sigemptyset(&fwd.sa_mask);
    fwd.sa_flags = SA_RESTART;
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGQUIT, &ign, NULL);
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);

    int exec_errno = 0;
    ssize_t got;
    while ((got = read(errpipe[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR)
        ;
    close(errpipe[0]);

    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            lw_cli_error("waitpid: %s", strerror(errno));
            free_names(&before);
            return LW_EXIT_USAGE;
        }
    }
    if (got == (ssize_t)sizeof exec_errno) {
        if (exec_errno == ENOENT && access(path, F_OK) == 0) /* the file is there */
            lw_cli_error("cannot run %s: its interpreter (the #! line, or the ELF loader) "
                         "does not exist", path);
        else
            lw_cli_error("cannot run %s: %s", path, strerror(exec_errno));
        if (outdir_new)
            rmdir(outdir); /* only if still empty: nothing ran, nothing to keep */
        free_names(&before);
        return exec_errno == ENOENT ? 127 : 126;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status)
             : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : LW_EXIT_USAGE;

    struct names after;
    list_snapshots(outdir, &after);
    size_t fresh = 0;
    for (size_t i = 0; i < after.n; i++) {
        bool old = false;
        for (size_t k = 0; k < before.n && !old; k++)
            old = !strcmp(after.v[i], before.v[k]);
        fresh += !old;
    }
    fprintf(stderr, "leakwatch: %zu snapshot(s) in ", fresh);
    lw_cli_shell_quote(stderr, outdir);
    fputc('\n', stderr);
    if (fresh) {
        /* Name leakwatch the way the user did (build/tools/leakwatch is not
         * on PATH), so the line can be pasted as it is. */
        const char *self = strchr(program_invocation_name, '/') ? program_invocation_name
                                                                : "leakwatch";
        fputs("leakwatch: next: ", stderr);
        lw_cli_shell_quote(stderr, self);
        fputs(" report ", stderr);
        lw_cli_shell_quote(stderr, outdir);
        fputc('\n', stderr);
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "leakwatch: no snapshot was written: the program was killed by signal %d "
                        "(%s), and a killed process writes no exit snapshot; ask for one with "
                        "the snapshot signal before\n", WTERMSIG(status), strsignal(WTERMSIG(status)));
    } else {
        fprintf(stderr, "leakwatch: no snapshot was written; was %s loaded? (LD_PRELOAD is "
                        "ignored by setuid programs; --no-follow-exec stops at the first exec)\n",
                lib);
    }
    free_names(&after);
    free_names(&before);
    return code;
}
