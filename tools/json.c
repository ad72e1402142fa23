/*
 * json.c - streaming JSON writer (see json.h). Keeps one "first member"
 * flag per nesting level to place commas; validates UTF-8 byte by byte so
 * paths and command lines with arbitrary bytes still give valid JSON.
 */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

void lw_json_init(struct lw_json *j, FILE *f, bool pretty)
{
    j->f = f;
    j->depth = 0;
    j->pretty = pretty;
    j->first[0] = true;
    j->compact[0] = false;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlong forms */
        if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f; /* nothing above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

void lw_json_escape(FILE *f, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_len(s + i, n - i);
            if (k == 0) {
                fputs("\\ufffd", f);
                i++;
            } else {
                fwrite(s + i, 1, k, f);
                i += k;
            }
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

/* Comma, newline and indentation before a member; then its key. */
static void member(struct lw_json *j, const char *key)
{
    int d = j->depth;
    if (!j->first[d])
        fputc(',', j->f);
    if (j->pretty && d > 0) {
        if (j->compact[d]) {
            if (!j->first[d])
                fputc(' ', j->f);
        } else {
            fputc('\n', j->f);
            for (int i = 0; i < d; i++)
                fputs("  ", j->f);
        }
    }
    j->first[d] = false;
    if (key) {
        lw_json_escape(j->f, key, strlen(key));
        fputs(j->pretty ? ": " : ":", j->f);
    }
}

static void open_container(struct lw_json *j, const char *key, bool compact, char ch)
{
    member(j, key);
    fputc(ch, j->f);
    if (j->depth + 1 < LW_JSON_MAX_DEPTH)
        j->depth++;
    j->first[j->depth] = true;
    j->compact[j->depth] = compact || j->compact[j->depth - 1];
}

static void close_container(struct lw_json *j, char ch)
{
    int d = j->depth;
    if (j->pretty && !j->first[d] && !j->compact[d]) {
        fputc('\n', j->f);
        for (int i = 0; i < d - 1; i++)
            fputs("  ", j->f);
    }
    fputc(ch, j->f);
    if (j->depth > 0)
        j->depth--;
    if (j->depth == 0 && j->pretty)
        fputc('\n', j->f);
}

void lw_json_object_begin(struct lw_json *j, const char *key, bool compact)
{
    open_container(j, key, compact, '{');
}

void lw_json_object_end(struct lw_json *j)
{
    close_container(j, '}');
}

void lw_json_array_begin(struct lw_json *j, const char *key, bool compact)
{
    open_container(j, key, compact, '[');
}

void lw_json_array_end(struct lw_json *j)
{
    close_container(j, ']');
}

void lw_json_string_n(struct lw_json *j, const char *key, const char *s, size_t n)
{
    member(j, key);
    lw_json_escape(j->f, s ? s : "", s ? n : 0);
}

void lw_json_string(struct lw_json *j, const char *key, const char *s)
{
    lw_json_string_n(j, key, s, s ? strlen(s) : 0);
}

void lw_json_u64(struct lw_json *j, const char *key, uint64_t v)
{
    member(j, key);
    fprintf(j->f, "%" PRIu64, v);
}

void lw_json_bool(struct lw_json *j, const char *key, bool v)
{
    member(j, key);
    fputs(v ? "true" : "false", j->f);
}

void lw_json_i64(struct lw_json *j, const char *key, int64_t v)
{
    member(j, key);
    fprintf(j->f, "%" PRId64, v);
}

void lw_json_double(struct lw_json *j, const char *key, double v, int decimals)
{
    member(j, key);
    if (!isfinite(v)) {
        fputs("null", j->f);
        return;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%.*f", decimals, v);
    if (!strcmp(buf, "-0") || (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)))
        memmove(buf, buf + 1, strlen(buf)); /* no "-0.000" */
    fputs(buf, j->f);
}

void lw_json_null(struct lw_json *j, const char *key)
{
    member(j, key);
    fputs("null", j->f);
}
