/*
 * config.c - parse the LEAKWATCH_* options of LW_OPTIONS into struct
 * lw_config. Runs inside the host during bootstrap: no allocation, no
 * stdio, no locale; messages are composed in a stack buffer.
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "strbuf.h"

const struct lw_option_info lw_option_table[] = {
#define LW_OPT_INFO(name, kind, def, help) {#name, #kind, def, help},
    LW_OPTIONS(LW_OPT_INFO)
#undef LW_OPT_INFO
};
const size_t lw_option_count = sizeof(lw_option_table) / sizeof(lw_option_table[0]);

static const struct {
    const char *name;
    int signo;
} sig_names[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"ALRM", SIGALRM},   {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
    {"CONT", SIGCONT}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

/* Signals that cannot or must not be used to request a snapshot: those
 * that cannot be caught, those that report faults, those whose default
 * action the program and its users rely on (Ctrl-C, stop, job control,
 * broken pipes, children), and the real-time signals the C library keeps
 * for itself (below SIGRTMIN). */
static bool sig_forbidden(int s)
{
    switch (s) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL:
    case SIGABRT: case SIGTRAP: case SIGSYS: case SIGINT: case SIGTERM: case SIGQUIT:
    case SIGCHLD: case SIGCONT: case SIGTSTP: case SIGTTIN: case SIGTTOU: case SIGPIPE:
        return true;
    default:
        return s > SIGSYS && s < SIGRTMIN;
    }
}

/* Parse a decimal int in [lo, hi]; the whole string must be digits. */
static bool parse_int(const char *s, long lo, long hi, long *out)
{
    long v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
        if (v > hi)
            return false;
    }
    if (v < lo)
        return false;
    *out = v;
    return true;
}

int lw_config_parse_signal(const char *s)
{
    long v;
    if (!s || !*s)
        return -1;
    if (!strcmp(s, "off") || !strcmp(s, "none") || !strcmp(s, "0"))
        return LW_SIG_OFF;
    if (parse_int(s, 1, SIGRTMAX, &v))
        return sig_forbidden((int)v) ? -1 : (int)v;
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    if (!strncasecmp(s, "RTMIN", 5)) {
        long off = 0;
        if (s[5] == '+' && !parse_int(s + 6, 0, SIGRTMAX - SIGRTMIN, &off))
            return -1;
        if (s[5] != '+' && s[5] != '\0')
            return -1;
        return SIGRTMIN + (int)off;
    }
    if (!strncasecmp(s, "RTMAX", 5)) {
        long off = 0;
        if (s[5] == '-' && !parse_int(s + 6, 0, SIGRTMAX - SIGRTMIN, &off))
            return -1;
        if (s[5] != '-' && s[5] != '\0')
            return -1;
        return SIGRTMAX - (int)off;
    }
    for (size_t i = 0; i < sizeof(sig_names) / sizeof(sig_names[0]); i++)
        if (!strcasecmp(s, sig_names[i].name))
            return sig_forbidden(sig_names[i].signo) ? -1 : sig_names[i].signo;
    return -1;
}

void lw_config_signal_name(int signo, char *buf, size_t len)
{
    struct lw_strbuf b = LW_STRBUF_INIT(buf, len);
    if (signo == LW_SIG_OFF) {
        lw_strbuf_puts(&b, "off");
        return;
    }
    if (signo >= SIGRTMIN && signo <= SIGRTMAX) {
        lw_strbuf_puts(&b, "RTMIN+");
        lw_strbuf_putu(&b, (unsigned long)(signo - SIGRTMIN));
        return;
    }
    for (size_t i = 0; i < sizeof(sig_names) / sizeof(sig_names[0]); i++)
        if (sig_names[i].signo == signo) {
            lw_strbuf_puts(&b, sig_names[i].name);
            return;
        }
    lw_strbuf_putu(&b, (unsigned long)signo);
}

/* Digits with an optional fraction, scaled by `unit` (an integer): the
 * fraction is applied exactly to 9 digits. false on overflow or junk; *end
 * is where the number stopped. */
static bool parse_scaled(const char *s, uint64_t unit, uint64_t *out, const char **end)
{
    uint64_t whole = 0, frac = 0, frac_div = 1;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (UINT64_MAX - 9) / 10)
            return false;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        for (; *p >= '0' && *p <= '9'; p++)
            if (frac_div < 1000000000u) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_div *= 10;
            }
    }
    if (unit && whole > UINT64_MAX / unit)
        return false;
    uint64_t v = whole * unit;
    /* frac/frac_div of a unit, without overflowing for units up to 2^40 */
    uint64_t add = (unit / frac_div) * frac + ((unit % frac_div) * frac) / frac_div;
    if (v > UINT64_MAX - add)
        return false;
    *out = v + add;
    *end = p;
    return true;
}

bool lw_config_parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "KMGT";
    const char *end;
    uint64_t mult = 1;
    if (!s)
        return false;
    /* find the suffix first: it scales the fraction */
    const char *q = s;
    while ((*q >= '0' && *q <= '9') || *q == '.')
        q++;
    const char *u = q;
    if (*u) {
        const char *k = strchr(units, *u >= 'a' ? *u - 32 : *u);
        if (k) {
            for (const char *i = units; i <= k; i++)
                mult *= 1024;
            u++;
            if (*u == 'i' || *u == 'I')
                u++;
        }
        if (*u == 'B' || *u == 'b')
            u++;
        if (*u)
            return false;
    }
    if (!parse_scaled(s, mult, out, &end) || end != q)
        return false;
    return true;
}

bool lw_config_parse_pct(const char *s, uint32_t *out)
{
    const char *end;
    uint64_t v;
    if (!s || !parse_scaled(s, 100, &v, &end) || strcmp(end, "%") != 0 || v == 0 || v > 10000)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool lw_config_parse_duration(const char *s, uint64_t *ns_out)
{
    const char *end;
    uint64_t v;
    if (!s)
        return false;
    const char *q = s;
    while ((*q >= '0' && *q <= '9') || *q == '.')
        q++;
    uint64_t unit = 1000000000u;
    if (!strcmp(q, "ms"))
        unit = 1000000u;
    else if (*q && strcmp(q, "s"))
        return false;
    if (!parse_scaled(s, unit, &v, &end) || end != q)
        return false;
    if (v < 10000000u || v > UINT64_C(7) * 86400 * 1000000000u)
        return false;
    *ns_out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "0") || !strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off")) {
        *out = false;
        return true;
    }
    return false;
}

static void report(lw_config_err_fn err, void *arg, const char *name, const char *value,
                   const char *why)
{
    char msg[512];
    struct lw_strbuf b = LW_STRBUF_INIT(msg, sizeof msg);
    lw_strbuf_puts(&b, "LEAKWATCH_");
    lw_strbuf_puts(&b, name);
    if (value) {
        lw_strbuf_puts(&b, "='");
        lw_strbuf_puts(&b, value);
        lw_strbuf_puts(&b, "'");
    }
    lw_strbuf_puts(&b, ": ");
    lw_strbuf_puts(&b, why);
    if (err)
        err(msg, arg);
}

static void set_default_output(struct lw_config *c)
{
    struct lw_strbuf b = LW_STRBUF_INIT(c->output, sizeof c->output);
    lw_strbuf_puts(&b, "/tmp/leakwatch-");
    lw_strbuf_putu(&b, (unsigned long)getuid());
    c->output_default = true;
}

int lw_config_load(struct lw_config *c, lw_config_get_fn get, void *get_arg, char *const *environ_list,
                   lw_config_err_fn err, void *err_arg)
{
    int problems = 0;
    const char *v;
    long n;

    memset(c, 0, sizeof *c);
    set_default_output(c);
    c->signo = SIGRTMIN + 7;
    c->depth = 64;
    c->follow_exec = true;
    c->follow_fork = true;
    c->cmdline = true;

    if ((v = get("LEAKWATCH_OUTPUT", get_arg)) && *v) {
        size_t len = strlen(v);
        while (len > 1 && v[len - 1] == '/')
            len--;
        /* A relative path is taken from the directory the program started
         * in, once: a later chdir must not move the snapshots. */
        char cwd[PATH_MAX];
        size_t cwd_len = 0;
        if (v[0] != '/' && getcwd(cwd, sizeof cwd))
            cwd_len = strlen(cwd);
        if (cwd_len + 1 + len >= sizeof c->output - 64) {
            report(err, err_arg, "OUTPUT", NULL, "path too long; using the default");
            problems++;
        } else {
            struct lw_strbuf b = LW_STRBUF_INIT(c->output, sizeof c->output);
            if (cwd_len) {
                lw_strbuf_puts(&b, cwd);
                if (cwd[cwd_len - 1] != '/')
                    lw_strbuf_puts(&b, "/");
            }
            lw_strbuf_putn(&b, v, len);
            c->output_default = false;
        }
    }
    if ((v = get("LEAKWATCH_SIGNAL", get_arg)) && *v) {
        int s = lw_config_parse_signal(v);
        if (s < 0) {
            report(err, err_arg, "SIGNAL", v,
                   "not usable for snapshots (try USR2, RTMIN+7, a number, or off; not INT, TERM, "
                   "QUIT, CHLD, PIPE, job control or fault signals); using RTMIN+7");
            problems++;
        } else {
            c->signo = s;
        }
    }
    if ((v = get("LEAKWATCH_DEPTH", get_arg)) && *v) {
        if (!parse_int(v, 1, 256, &n)) {
            report(err, err_arg, "DEPTH", v, "must be a whole number from 1 to 256; using 64");
            problems++;
        } else {
            c->depth = (int)n;
        }
    }
#define LW_BOOL_OPT(NAME, field)                                                         \
    if ((v = get("LEAKWATCH_" #NAME, get_arg)) && *v && !parse_bool(v, &c->field)) {    \
        report(err, err_arg, #NAME, v, "must be 1 or 0; using 1");                     \
        c->field = true;                                                               \
        problems++;                                                                    \
    }
    LW_BOOL_OPT(FOLLOW_EXEC, follow_exec)
    LW_BOOL_OPT(FOLLOW_FORK, follow_fork)
    LW_BOOL_OPT(CMDLINE, cmdline)
#undef LW_BOOL_OPT
    if ((v = get("LEAKWATCH_ROOT_PID", get_arg)) && *v) {
        if (!parse_int(v, 1, 1L << 30, &n)) {
            report(err, err_arg, "ROOT_PID", v, "must be a process id; ignored");
            problems++;
        } else {
            c->root_pid = (int)n;
        }
    }
    if ((v = get("LEAKWATCH_SAMPLE", get_arg)) && *v) {
        uint64_t b = 0;
        if (!lw_config_parse_size(v, &b) || b > LW_SAMPLE_MAX) {
            report(err, err_arg, "SAMPLE", v,
                   "must be a byte count like 524288 or 512K (0: every allocation), at most 1T; "
                   "using 0");
            c->sample = 0;
            problems++;
        } else {
            c->sample = b;
        }
    }
    if ((v = get("LEAKWATCH_SAMPLE_SEED", get_arg)) && *v) {
        unsigned long long seed = 0;
        for (const char *q = v; *q; q++) {
            if (*q < '0' || *q > '9' || seed > (~0ULL - 9) / 10) {
                seed = 0;
                report(err, err_arg, "SAMPLE_SEED", v, "must be a whole number; using 0");
                problems++;
                break;
            }
            seed = seed * 10 + (unsigned long long)(*q - '0');
        }
        c->sample_seed = seed;
    }
    if ((v = get("LEAKWATCH_UNWIND", get_arg)) && *v) {
        if (!strcmp(v, "libunwind")) {
            c->unwind = LW_UNWIND_LIBUNWIND;
        } else if (!strcmp(v, "fp")) {
            c->unwind = LW_UNWIND_FP;
        } else if (!strcmp(v, "libunwind-uncached")) {
            c->unwind = LW_UNWIND_UNCACHED;
        } else {
            report(err, err_arg, "UNWIND", v,
                   "must be libunwind, libunwind-uncached or fp; using libunwind");
            problems++;
        }
    }

    if ((v = get("LEAKWATCH_MADV_FREE", get_arg)) && *v) {
        if (!strcmp(v, "dontneed")) {
            c->madv_free_dontneed = true;
        } else if (strcmp(v, "keep")) {
            report(err, err_arg, "MADV_FREE", v, "must be keep or dontneed; using keep");
            problems++;
        }
    }
    if ((v = get("LEAKWATCH_INTERVAL", get_arg)) && *v) {
        if (!lw_config_parse_duration(v, &c->interval_ns)) {
            report(err, err_arg, "INTERVAL", v,
                   "must be seconds (2, 0.5) or milliseconds (250ms), from 10ms to a week; "
                   "ignored, no interval snapshots");
            problems++;
        }
    }
    if ((v = get("LEAKWATCH_THRESHOLD", get_arg)) && *v) {
        if (!lw_config_parse_size(v, &c->threshold_bytes) &&
            !lw_config_parse_pct(v, &c->threshold_pct)) {
            report(err, err_arg, "THRESHOLD", v,
                   "must be bytes (1536M, 1.5G; K/M/G/T are powers of 1024) or a share of the "
                   "cgroup limit (80%); ignored, no threshold snapshots");
            problems++;
        } else if (c->threshold_bytes == 0 && c->threshold_pct == 0) {
            report(err, err_arg, "THRESHOLD", v, "must be more than 0; ignored, no threshold snapshots");
            problems++;
        }
    }
    if ((v = get("LEAKWATCH_HEAP_THRESHOLD", get_arg)) && *v) {
        if (!lw_config_parse_size(v, &c->heap_threshold) || c->heap_threshold == 0) {
            c->heap_threshold = 0;
            report(err, err_arg, "HEAP_THRESHOLD", v,
                   "must be bytes (512M, 1.5G; K/M/G/T are powers of 1024), more than 0; ignored, no heap "
                   "threshold snapshots");
            problems++;
        }
    }
    c->step_pct = 1000;
    if ((v = get("LEAKWATCH_THRESHOLD_STEP", get_arg)) && *v) {
        uint64_t b = 0;
        uint32_t p = 0;
        if (lw_config_parse_size(v, &b) && b > 0) {
            c->step_bytes = b;
            c->step_pct = 0;
        } else if (lw_config_parse_pct(v, &p)) {
            c->step_pct = p;
        } else {
            report(err, err_arg, "THRESHOLD_STEP", v,
                   "must be bytes (64M) or a share of the threshold (10%), more than 0; using 10%");
            problems++;
        }
    }
    if ((v = get("LEAKWATCH_KEEP", get_arg)) && *v) {
        if (!parse_int(v, 0, 1000000, &n)) {
            report(err, err_arg, "KEEP", v, "must be a whole number from 0 to 1000000; using 0 (keep all)");
            problems++;
        } else {
            c->keep = (uint32_t)n;
        }
    }

    for (char *const *e = environ_list; e && *e; e++) {
        const char *name = *e;
        if (strncmp(name, "LEAKWATCH_", 10))
            continue;
        const char *eq = strchr(name, '=');
        size_t klen = eq ? (size_t)(eq - name) - 10 : strlen(name) - 10;
        bool known = false;
        for (size_t i = 0; i < lw_option_count; i++)
            if (strlen(lw_option_table[i].name) == klen &&
                !strncmp(lw_option_table[i].name, name + 10, klen))
                known = true;
        /* LEAKWATCH_LIB is read by `leakwatch run`, not by the library. */
        if (!known && !(klen == 3 && !strncmp(name + 10, "LIB", 3))) {
            char key[128];
            struct lw_strbuf b = LW_STRBUF_INIT(key, sizeof key);
            lw_strbuf_putn(&b, name + 10, klen);
            report(err, err_arg, key, NULL, "unknown option; ignored (see leakwatch run --help)");
            problems++;
        }
    }
    return problems;
}
