/*
 * state.c - global state, counters, start-up of the core and the fork-child
 * reset (see state.h). Runs during bootstrap, possibly before the C
 * library's own initialisation: no allocation, no stdio, no locale.
 */
#include "state.h"

#include <string.h>
#include <unistd.h>

#include "kernel.h"
#include "log.h"
#include "region.h"
#include "sample.h"
#include "snapshot.h"
#include "stack.h"
#include "sys.h"
#include "table.h"

LW_TLS struct lw_tls lw_tls;
struct lw_state lw_state;
struct lw_counters lw_counters;
bool lw_core_membarrier_ok;

/* "Seccomp:\t0" in /proc/self/status: no filter. Unreadable: assume one. */
static bool no_seccomp_filter(void)
{
    char buf[4096];
    ssize_t n = lw_kernel_read_file("/proc/self/status", buf, sizeof buf - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nSeccomp:");
    if (!p)
        return true; /* a kernel without seccomp */
    p += 9;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '0';
}

/* /proc/self/environ, for a start before libc has set `environ`. */
static char env_buf[32768];
static size_t env_len;

static const char *env_from_list(const char *name, void *arg)
{
    char **envp = arg;
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static const char *env_from_buf(const char *name, void *arg)
{
    (void)arg;
    size_t n = strlen(name);
    for (size_t i = 0; i < env_len;) {
        const char *e = env_buf + i;
        size_t l = strnlen(e, env_len - i);
        if (l > n && !strncmp(e, name, n) && e[n] == '=')
            return e + n + 1;
        i += l + 1;
    }
    return NULL;
}

static void config_err(const char *msg, void *arg)
{
    (void)arg;
    lw_log_warn2(LW_WARN_CONFIG, msg, NULL);
}

bool lw_core_init(char **envp)
{
    if (envp) {
        lw_config_load(&lw_state.cfg, env_from_list, envp, envp, config_err, NULL);
    } else {
        ssize_t n = lw_kernel_read_file("/proc/self/environ", env_buf, sizeof env_buf - 1);
        env_len = n > 0 ? (size_t)n : 0;
        env_buf[env_len] = '\0';
        lw_config_load(&lw_state.cfg, env_from_buf, NULL, NULL, config_err, NULL);
    }
    lw_state.pid = getpid();
    lw_state.start_time_ns = lw_sys_realtime_ns();
    lw_core_membarrier_ok = no_seccomp_filter();
    if (!lw_table_init() || !lw_stack_init() || !lw_snapshot_init() || !lw_sample_init()) {
        lw_log_warn(LW_WARN_TABLE, "cannot map memory for its tables; tracking is off");
        return false;
    }
    atomic_store(&lw_state.tracking, true);
    return true;
}

void lw_core_fork_child(void)
{
    lw_table_fork_child();
    lw_region_fork_child();
    lw_stack_fork_child();
    lw_snapshot_fork_child();
    lw_sample_fork_child();
    lw_log_reset();
    lw_state.pid = getpid();
    lw_state.start_time_ns = lw_sys_realtime_ns();
    atomic_store(&lw_state.forked, true);
    if (!lw_state.cfg.follow_fork)
        atomic_store(&lw_state.tracking, false);
}

void lw_gates_counted_only(void)
{
    lw_core_membarrier_ok = false;
    lw_table_fast_off();
    lw_stack_fast_off();
}
