/*
 * log.c - capped one-line warnings on stderr (see log.h). Uses only
 * write(2) and atomics; the message is assembled on the stack.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "lw.h"
#include "strbuf.h"

static _Atomic int warned[LW_WARN_KINDS];
static _Atomic int total;

void lw_log_warn2(enum lw_warn_kind kind, const char *a, const char *b)
{
    int saved = errno;
    if (kind != LW_WARN_CONFIG && atomic_exchange(&warned[kind], 1)) {
        errno = saved;
        return;
    }
    if (atomic_fetch_add(&total, 1) >= LW_LOG_MAX) {
        errno = saved;
        return;
    }
    char line[768];
    struct lw_strbuf s = LW_STRBUF_INIT(line, sizeof line - 1);
    lw_strbuf_puts(&s, "leakwatch[");
    lw_strbuf_putu(&s, (uint64_t)getpid());
    lw_strbuf_puts(&s, "]: ");
    lw_strbuf_puts(&s, a);
    if (b)
        lw_strbuf_puts(&s, b);
    line[s.len++] = '\n';
    const char *p = line;
    size_t left = s.len;
    while (left) {
        ssize_t n = write(2, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    errno = saved;
}

void lw_log_warn(enum lw_warn_kind kind, const char *msg)
{
    lw_log_warn2(kind, msg, NULL);
}

void lw_log_reset(void)
{
    for (int i = 0; i < LW_WARN_KINDS; i++)
        atomic_store(&warned[i], 0);
    atomic_store(&total, 0);
}
