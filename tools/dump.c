/*
 * dump.c - `leakwatch dump [--timeout SEC] PID`. Learns the target's
 * options from /proc/PID/environ through the library's own loader
 * (lib/config.c: same defaults, same parsing), checks that
 * libleakwatch.so is mapped (/proc/PID/maps) and that the snapshot signal
 * is caught (/proc/PID/status SigCgt), sends the signal, and waits for a
 * new `<comm>.PID.<seq>.signal.lwsnap` in the output directory (seen
 * through /proc/PID/root when the process has another root: a container).
 * File names carry the pid the process sees itself (its last NSpid).
 * Exit: 0 the path was printed; 1 the process is not running, not under
 * leakwatch, has signal snapshots off, cannot be inspected (permission),
 * or wrote nothing in time; 2 usage.
 */
#include "dump.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "lw_config.h"
#include "lw_format.h"

static const char dump_usage[] =
    "Usage: leakwatch dump [--timeout SEC] PID\n"
    "\n"
    "Ask process PID, running under leakwatch, for a snapshot now: send it its\n"
    "snapshot signal, wait until the snapshot is written, print its path.\n"
    "The signal and the output directory are the process's own (read from\n"
    "/proc/PID/environ, with the defaults of the library).\n"
    "\n"
    "Options:\n"
    "  --timeout SEC   how long to wait for the snapshot (default 5)\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status:\n"
    "  0  the snapshot was written; its path is on standard output\n"
    "  1  PID is not running, is not running under leakwatch, has snapshot\n"
    "     signals off, cannot be inspected (permission), or wrote no snapshot\n"
    "     within the timeout\n"
    "  2  usage error\n";

struct env {
    char *buf;
    size_t len;
    char out_abs[PATH_MAX]; /* LEAKWATCH_OUTPUT made absolute, if relative */
};

/* Read a whole /proc file; NULL and errno on failure. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    size_t k;
    while (b && (k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (!b || e) {
        free(b);
        errno = e ? e : ENOMEM;
        return NULL;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

static const char *env_get(const char *name, void *arg)
{
    struct env *e = arg;
    size_t n = strlen(name);
    const char *found = NULL;
    for (size_t i = 0; i < e->len;) {
        const char *s = e->buf + i;
        size_t l = strnlen(s, e->len - i);
        if (l > n && !strncmp(s, name, n) && s[n] == '=')
            found = s + n + 1; /* the last one wins, like getenv on a duplicate */
        i += l + 1;
    }
    if (found && !strcmp(name, "LEAKWATCH_OUTPUT") && found[0] && found[0] != '/' &&
        e->out_abs[0])
        return e->out_abs;
    return found;
}

static void quiet_err(const char *msg, void *arg)
{
    (void)msg;
    (void)arg; /* the library warned the program's stderr already; defaults apply */
}

/* Real uid of the process (the library's default directory uses it). */
static long proc_uid(const char *status)
{
    const char *u = strstr(status, "\nUid:");
    return u ? strtol(u + 5, NULL, 10) : -1;
}

/* Is signal sig in the SigCgt mask of status? */
static bool sig_caught(const char *status, int sig)
{
    const char *c = strstr(status, "\nSigCgt:");
    if (!c)
        return true; /* cannot tell: try */
    unsigned long long mask = strtoull(c + 8, NULL, 16);
    return (mask >> (sig - 1)) & 1;
}

/* Names of finished signal snapshots of pid in dir. */
struct seen {
    char **v;
    size_t n;
};

static bool ours(const char *name, const char *pidpart)
{
    size_t n = strlen(name);
    static const char tail[] = ".signal" LW_SNAP_SUFFIX;
    return name[0] != '.' && strstr(name, pidpart) && n > sizeof tail - 1 &&
           !strcmp(name + n - (sizeof tail - 1), tail);
}

static void list(const char *dir, const char *pidpart, struct seen *s)
{
    DIR *d = opendir(dir);
    s->v = NULL;
    s->n = 0;
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ours(de->d_name, pidpart))
            continue;
        char **v = realloc(s->v, (s->n + 1) * sizeof *v);
        if (!v || !(v[s->n] = strdup(de->d_name)))
            abort();
        s->v = v;
        s->n++;
    }
    closedir(d);
}

static bool in(const struct seen *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name))
            return true;
    return false;
}

static void free_seen(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static int fail_proc(long pid, const char *what, int e)
{
    if (e == ENOENT || e == ESRCH)
        lw_cli_error("dump: process %ld is not running", pid);
    else if (e == EACCES || e == EPERM)
        lw_cli_error("dump: process %ld: permission denied reading %s (run as its user or "
                     "as root)", pid, what);
    else
        lw_cli_error("dump: process %ld: cannot read %s: %s", pid, what, strerror(e));
    return LW_EXIT_INPUT;
}

int lw_dump_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double timeout = 5.0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': {
            char *end;
            timeout = strtod(optarg, &end);
            if (*end || !(timeout > 0) || timeout > 3600) {
                lw_cli_error("dump: --timeout %s: must be seconds, more than 0, at most 3600",
                             optarg);
                return LW_EXIT_USAGE;
            }
            break;
        }
        case 'h': fputs(dump_usage, stdout); return LW_EXIT_OK;
        case ':':
            lw_cli_error("dump: %s needs a value (see leakwatch dump --help)", argv[optind - 1]);
            return LW_EXIT_USAGE;
        default:
            lw_cli_error("dump: bad option '%s' (see leakwatch dump --help)", argv[optind - 1]);
            return LW_EXIT_USAGE;
        }
    }
    uint64_t pid64;
    if (optind + 1 != argc || !lw_cli_parse_u64(argv[optind], 1, 1u << 30, &pid64)) {
        lw_cli_error("dump: give one process id (usage: leakwatch dump [--timeout SEC] PID)");
        return LW_EXIT_USAGE;
    }
    long pid = (long)pid64;
    char path[PATH_MAX];
    size_t len;

    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    char *status = slurp(path, &len);
    if (!status)
        return fail_proc(pid, "/proc/PID/status", errno);
    if (strstr(status, "\nState:\tZ")) {
        free(status);
        lw_cli_error("dump: process %ld has exited (a zombie waiting for its parent)", pid);
        return LW_EXIT_INPUT;
    }
    snprintf(path, sizeof path, "/proc/%ld/maps", pid);
    char *maps = slurp(path, &len);
    if (!maps) {
        free(status);
        return fail_proc(pid, "/proc/PID/maps", errno);
    }
    bool traced = strstr(maps, "/" LW_PRELOAD_NAME "\n") != NULL;
    free(maps);
    if (!traced) {
        free(status);
        lw_cli_error("dump: process %ld is not running under leakwatch (%s is not loaded in it); "
                     "start it with `leakwatch run` or LD_PRELOAD", pid, LW_PRELOAD_NAME);
        return LW_EXIT_INPUT;
    }

    struct env e = {0};
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    e.buf = slurp(path, &e.len);
    if (!e.buf) {
        free(status);
        return fail_proc(pid, "/proc/PID/environ", errno);
    }
    /* A relative LEAKWATCH_OUTPUT is relative to where the program started;
     * its current directory is the best we can know. */
    char cwd[PATH_MAX];
    snprintf(path, sizeof path, "/proc/%ld/cwd", pid);
    ssize_t cl = readlink(path, cwd, sizeof cwd - 1);
    if (cl > 0) {
        cwd[cl] = '\0';
        const char *raw = NULL;
        for (size_t i = 0; i < e.len;) {
            const char *v = e.buf + i;
            size_t l = strnlen(v, e.len - i);
            if (!strncmp(v, "LEAKWATCH_OUTPUT=", 17))
                raw = v + 17;
            i += l + 1;
        }
        size_t a = strlen(cwd), b = raw ? strlen(raw) : 0;
        if (raw && raw[0] && raw[0] != '/' && a + b + 2 < sizeof e.out_abs) {
            memcpy(e.out_abs, cwd, a);
            e.out_abs[a] = '/';
            memcpy(e.out_abs + a + 1, raw, b + 1);
        }
    }
    struct lw_config cfg;
    lw_config_load(&cfg, env_get, &e, NULL, quiet_err, NULL);
    free(e.buf);
    if (cfg.output_default) {
        long uid = proc_uid(status);
        if (uid >= 0)
            snprintf(cfg.output, sizeof cfg.output, "/tmp/leakwatch-%ld", uid);
    }
    if (cfg.signo == LW_SIG_OFF) {
        free(status);
        lw_cli_error("dump: process %ld has snapshot signals off (LEAKWATCH_SIGNAL=off)", pid);
        return LW_EXIT_INPUT;
    }
    char signame[32];
    lw_config_signal_name(cfg.signo, signame, sizeof signame);
    if (!sig_caught(status, cfg.signo)) {
        free(status);
        lw_cli_error("dump: process %ld does not catch its snapshot signal %s: the program "
                     "replaced leakwatch's handler, or tracking is off in it", pid, signame);
        return LW_EXIT_INPUT;
    }

    /* A process in another mount namespace (a container) writes into its
     * own root: look there. */
    char dir[PATH_MAX + 64];
    struct stat ours_root, its_root;
    snprintf(path, sizeof path, "/proc/%ld/root", pid);
    if (stat("/", &ours_root) == 0 && stat(path, &its_root) == 0 &&
        (ours_root.st_dev != its_root.st_dev || ours_root.st_ino != its_root.st_ino))
        snprintf(dir, sizeof dir, "/proc/%ld/root%s", pid, cfg.output);
    else
        snprintf(dir, sizeof dir, "%s", cfg.output);
    /* File names carry the pid the process sees itself (NSpid's last). */
    long own_pid = pid;
    const char *ns = strstr(status, "\nNSpid:");
    if (ns) {
        char *q = (char *)ns + 7;
        for (;;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q)
                break;
            own_pid = v;
            q = end;
        }
    }
    char pidpart[32];
    snprintf(pidpart, sizeof pidpart, ".%ld.", own_pid);
    free(status);
    struct seen before;
    list(dir, pidpart, &before);
    if (kill((pid_t)pid, cfg.signo) != 0) {
        int err = errno;
        free_seen(&before);
        if (err == EPERM) {
            lw_cli_error("dump: process %ld: permission denied sending %s (run as its user or as "
                         "root)", pid, signame);
            return LW_EXIT_INPUT;
        }
        return fail_proc(pid, "its signal", err);
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct seen after;
        list(dir, pidpart, &after);
        for (size_t i = 0; i < after.n; i++) {
            if (!in(&before, after.v[i])) {
                printf("%s/%s\n", dir, after.v[i]);
                free_seen(&after);
                free_seen(&before);
                return LW_EXIT_OK;
            }
        }
        free_seen(&after);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
        if (waited >= timeout)
            break;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            free_seen(&before);
            lw_cli_error("dump: process %ld exited before writing the snapshot", pid);
            return LW_EXIT_INPUT;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free_seen(&before);
    lw_cli_error("dump: process %ld wrote no snapshot into %s within %g s after %s (is the "
                 "directory writable by it? its stderr says why if a write failed)",
                 pid, dir, timeout, signame);
    return LW_EXIT_INPUT;
}
