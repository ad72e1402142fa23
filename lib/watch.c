/*
 * watch.c - the usage-threshold watcher (see watch.h).
 *
 * Which mechanism, when:
 * - cgroup v1 with a memory limit: thresholds registered through
 *   cgroup.event_control on memory.usage_in_bytes; the kernel signals an
 *   eventfd when usage crosses one in either direction, so the thread
 *   sleeps in read() and wakes within microseconds of the crossing.
 * - cgroup v2 with a limit: memory.current read every 5 ms (memory.events
 *   only reports reaching memory.high/max, which we do not set, and PSI
 *   triggers report stall time, not usage).
 * - no limit: RSS from /proc/self/statm, read every 5 ms.
 * The eventfd and usage descriptors are moved to the top of the descriptor
 * range, close-on-exec, so a daemon that closes or reuses low numbers does
 * not meet them; a read that fails falls back to polling.
 */
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../include/lw_format.h"
#include "kernel.h"
#include "log.h"
#include "lw.h"
#include "snapshot.h"
#include "state.h"
#include "strbuf.h"
#include "sys.h"

#define POLL_NS 5000000u
#define WATCH_STACK (256u * 1024u)

void lw_hyst_init(struct lw_hyst *h, uint64_t line, uint64_t step)
{
    h->line = line;
    h->step = step ? step : 1;
    h->next = line;
    h->rearm = 0;
    h->armed = true;
}

bool lw_hyst_feed(struct lw_hyst *h, uint64_t v, uint64_t *crossed)
{
    if (!h->armed && v < h->rearm) {
        h->armed = true;
        h->next = h->line;
        return false;
    }
    if (v < h->next)
        return false;
    *crossed = h->next;
    h->armed = false;
    h->rearm = h->line > h->step ? h->line - h->step : 0;
    h->next = v + h->step;
    return true;
}

uint64_t lw_watch_step(uint64_t line)
{
    const struct lw_config *c = &lw_state.cfg;
    uint64_t s = c->step_bytes ? c->step_bytes : line / 10000 * c->step_pct +
                                                     line % 10000 * c->step_pct / 10000;
    return s < LW_PAGE ? LW_PAGE : s;
}

static struct lw_cgroup cg;
static char scratch[65536];
static uint64_t line;
static uint32_t source;
static int usage_fd = -1;
static int efd = -1; /* the registered eventfd (cgroup v1) */
static _Atomic bool started;
static enum lw_watch_how how;

/* Move fd to the top of the descriptor range, close-on-exec. */
static int high_fd(int fd)
{
    if (fd < 0)
        return fd;
    struct rlimit rl;
    long top = 1L << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)top)
        top = (long)rl.rlim_cur;
    long want = top - (top / 4 < 32 ? top / 4 : 32);
    if (fd >= want)
        return fd;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, (int)want);
    if (hi < 0)
        return fd;
    close(fd);
    return hi;
}

static bool parse_u64(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    *out = v;
    return true;
}

static int high_fd(int fd);

/* The usage file: cgroup usage or /proc/self/statm. */
static const char *usage_path(void)
{
    return source == LW_WATCH_CGROUP_USAGE ? cg.usage : "/proc/self/statm";
}

static bool read_usage_once(uint64_t *v);

/* The watched value now; false if it cannot be read. A daemon that closed
 * every descriptor took ours: open it again, once per failure. */
static bool read_usage(uint64_t *v)
{
    if (read_usage_once(v))
        return true;
    /* Reopen only if the number is free (closed under us); never close it:
     * if it was reused, it is the program's now. */
    if (usage_fd >= 0 && !(fcntl(usage_fd, F_GETFD) == -1 && errno == EBADF))
        return false;
    usage_fd = high_fd(open(usage_path(), O_RDONLY | O_CLOEXEC));
    return read_usage_once(v);
}

static bool read_usage_once(uint64_t *v)
{
    char b[128];
    if (source == LW_WATCH_CGROUP_USAGE) {
        ssize_t n = usage_fd >= 0 ? pread(usage_fd, b, sizeof b - 1, 0) : -1;
        if (n <= 0)
            return false;
        b[n] = '\0';
        return parse_u64(b, v);
    }
    ssize_t n = usage_fd >= 0 ? pread(usage_fd, b, sizeof b - 1, 0) : -1;
    if (n <= 0)
        return false;
    b[n] = '\0';
    const char *p = strchr(b, ' '); /* statm: size resident ... (pages) */
    uint64_t pages;
    if (!p || !parse_u64(p + 1, &pages))
        return false;
    *v = pages * LW_PAGE;
    return true;
}

/* Register the lines that matter now on a fresh eventfd; -1 on failure. */
static int arm_eventfd(const struct lw_hyst *h)
{
    int nfd = high_fd(eventfd(0, EFD_CLOEXEC));
    if (nfd < 0)
        return -1;
    int cfd = open(cg.control, O_WRONLY | O_CLOEXEC);
    if (cfd < 0) {
        close(nfd);
        return -1;
    }
    uint64_t lines[2] = {h->next, h->armed ? 0 : h->rearm};
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++) {
        if (!lines[i])
            continue;
        char msg[64];
        struct lw_strbuf s = LW_STRBUF_INIT(msg, sizeof msg);
        lw_strbuf_putu(&s, (uint64_t)nfd);
        lw_strbuf_puts(&s, " ");
        lw_strbuf_putu(&s, (uint64_t)usage_fd);
        lw_strbuf_puts(&s, " ");
        lw_strbuf_putu(&s, lines[i]);
        ok = write(cfd, msg, s.len) == (ssize_t)s.len;
    }
    close(cfd);
    if (!ok) {
        close(nfd);
        return -1;
    }
    return nfd;
}

static void fire(uint64_t crossed, uint64_t seen)
{
    struct lw_rec_trigger t = {
        .trigger = LW_TRIGGER_THRESHOLD,
        .source = source,
        .threshold_bytes = crossed,
        .observed_bytes = seen,
        .limit_bytes = source == LW_WATCH_CGROUP_USAGE ? cg.limit : 0,
    };
    lw_snapshot_write_trigger(&t, NULL, 0);
}

static void *watch_main(void *arg)
{
    (void)arg;
    lw_tls.guard = 1;
    lw_tls.internal = 1;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    struct lw_hyst h;
    lw_hyst_init(&h, line, lw_watch_step(line));
    for (;;) {
        uint64_t v, crossed;
        bool was_armed = h.armed;
        uint64_t was_next = h.next;
        if (read_usage(&v)) {
            while (lw_hyst_feed(&h, v, &crossed)) {
                fire(crossed, v);
                if (!read_usage(&v))
                    break;
            }
        }
        bool changed = h.armed != was_armed || h.next != was_next;
        if (how == LW_WATCH_EVENTFD && (changed || efd < 0)) {
            if (efd >= 0)
                close(efd);
            efd = arm_eventfd(&h);
            if (efd < 0) {
                how = LW_WATCH_POLL;
            } else {
                /* crossed while we registered? look once more first */
                uint64_t again;
                if (read_usage(&again) && (again >= h.next || (!h.armed && again < h.rearm)))
                    continue;
            }
        }
        lw_snapshot_reserve();
        if (how == LW_WATCH_EVENTFD) {
            /* Wait for the kernel's notification; wake once a second to
             * grow the writer's reserves. */
            struct pollfd pfd = {efd, POLLIN, 0};
            if (poll(&pfd, 1, 1000) == 0)
                continue;
            uint64_t n;
            ssize_t r = read(efd, &n, sizeof n);
            if (r < 0 && errno != EINTR) {
                close(efd);
                efd = -1;
                how = LW_WATCH_POLL; /* someone closed it under us: poll from now on */
            }
        } else {
            struct timespec ts = {0, POLL_NS};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static bool resolve(void)
{
    const struct lw_config *c = &lw_state.cfg;
    bool have = lw_cgroup_find("/proc/self", &cg, scratch, sizeof scratch) && cg.limit;
    if (c->threshold_pct) {
        if (!have) {
            lw_log_warn(LW_WARN_CONFIG, "LEAKWATCH_THRESHOLD is a percentage but the process has "
                                        "no memory cgroup limit; threshold snapshots are off");
            return false;
        }
        line = cg.limit / 10000 * c->threshold_pct + cg.limit % 10000 * c->threshold_pct / 10000;
    } else {
        line = c->threshold_bytes;
    }
    if (have) {
        source = LW_WATCH_CGROUP_USAGE;
        usage_fd = high_fd(open(cg.usage, O_RDONLY | O_CLOEXEC));
        how = cg.version == 1 && cg.control[0] ? LW_WATCH_EVENTFD : LW_WATCH_POLL;
    } else {
        source = LW_WATCH_RSS;
        usage_fd = high_fd(open("/proc/self/statm", O_RDONLY | O_CLOEXEC));
        how = LW_WATCH_POLL;
    }
    if (usage_fd < 0) {
        lw_log_warn(LW_WARN_THREAD, "cannot read the memory usage to watch; threshold snapshots "
                                    "are off");
        return false;
    }
    return true;
}

void lw_watch_start(void)
{
    if (!lw_state.cfg.threshold_bytes && !lw_state.cfg.threshold_pct)
        return;
    if (atomic_exchange(&started, true))
        return;
    uint8_t g = lw_tls.guard, was = lw_tls.internal;
    lw_tls.guard = 1;
    lw_tls.internal = 1;
    if (resolve()) {
        pthread_attr_t attr;
        pthread_t t;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, WATCH_STACK);
        int rc = pthread_create(&t, &attr, watch_main, NULL);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0)
            lw_log_warn(LW_WARN_THREAD, "cannot start the threshold watcher thread; threshold "
                                        "snapshots are off");
        else
            pthread_setname_np(t, "leakwatch-watch");
    }
    lw_tls.internal = was;
    lw_tls.guard = g;
}

void lw_watch_fork_child(void)
{
    /* The thread is gone; its descriptors are ours (inherited) and get
     * reopened by the next start. */
    if (usage_fd >= 0)
        close(usage_fd);
    if (efd >= 0)
        close(efd); /* else it keeps the parent's registration alive */
    usage_fd = efd = -1;
    atomic_store(&started, false);
}

uint64_t lw_watch_memory_bytes(void)
{
    return atomic_load(&started) ? WATCH_STACK : 0;
}
