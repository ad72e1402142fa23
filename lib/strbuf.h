/*
 * strbuf.h - bounded string building into a caller's buffer, for code that
 * may not allocate or use stdio (the preloaded library). Output is always
 * NUL-terminated and silently truncated; `overflow` says it was.
 */
#ifndef LW_STRBUF_H
#define LW_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lw_strbuf {
    char *buf;
    size_t cap; /* bytes available including the NUL */
    size_t len;
    bool overflow;
};

#define LW_STRBUF_INIT(b, n) {(b), (n), 0, false}

static inline void lw_strbuf_putn(struct lw_strbuf *b, const char *s, size_t n)
{
    if (b->cap == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (b->len + 1 >= b->cap) {
            b->overflow = true;
            break;
        }
        b->buf[b->len++] = s[i];
    }
    b->buf[b->len] = '\0';
}

static inline void lw_strbuf_puts(struct lw_strbuf *b, const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    lw_strbuf_putn(b, s, n);
}

static inline void lw_strbuf_putu_width(struct lw_strbuf *b, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < (int)sizeof tmp);
    while (n < width && n < (int)sizeof tmp)
        tmp[n++] = '0';
    char out[24];
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    lw_strbuf_putn(b, out, (size_t)n);
}

static inline void lw_strbuf_putu(struct lw_strbuf *b, uint64_t v)
{
    lw_strbuf_putu_width(b, v, 0);
}

#endif
