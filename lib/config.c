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

bool lw_config_parse_size(const char *s, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;
    if (!s || *s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned long long)(*s - '0');
        if (v > max)
            return false;
    }
    int shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    case 't': case 'T': shift = 40; s++; break;
    case '\0': break;
    default: return false;
    }
    if (shift && (s[0] == 'i' || s[0] == 'I') && (s[1] == 'B' || s[1] == 'b'))
        s += 2;
    else if (shift && (s[0] == 'B' || s[0] == 'b'))
        s++;
    if (*s || (shift && v > (max >> shift)))
        return false;
    *out = v << shift;
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
        if (!lw_config_parse_size(v, LW_SAMPLE_MAX, &c->sample)) {
            report(err, err_arg, "SAMPLE", v,
                   "must be a byte count like 524288 or 512K (0: every allocation), at most 1T; "
                   "using 0");
            c->sample = 0;
            problems++;
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
        } else {
            report(err, err_arg, "UNWIND", v, "must be libunwind or fp; using libunwind");
            problems++;
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
