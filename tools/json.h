/*
 * json.h - a small streaming JSON writer for the report: objects, arrays,
 * strings, unsigned numbers and booleans, pretty-printed with optional
 * one-line containers. Strings are escaped completely: quotes, backslash,
 * control characters, and invalid UTF-8 (each bad byte becomes \ufffd).
 */
#ifndef LW_TOOLS_JSON_H
#define LW_TOOLS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LW_JSON_MAX_DEPTH 32

struct lw_json {
    FILE *f;
    int depth;
    bool pretty;
    bool first[LW_JSON_MAX_DEPTH];   /* nothing written yet in this container */
    bool compact[LW_JSON_MAX_DEPTH]; /* this container stays on one line */
};

/* Start writing to f. pretty: newlines and two-space indentation. */
void lw_json_init(struct lw_json *j, FILE *f, bool pretty);

/* Containers. key is the member name inside an object, NULL inside an
 * array or at the top. compact: keep the container on one line. */
void lw_json_object_begin(struct lw_json *j, const char *key, bool compact);
void lw_json_object_end(struct lw_json *j);
void lw_json_array_begin(struct lw_json *j, const char *key, bool compact);
void lw_json_array_end(struct lw_json *j);

/* Values (key as above). s may be NULL: written as "". */
void lw_json_string(struct lw_json *j, const char *key, const char *s);
void lw_json_string_n(struct lw_json *j, const char *key, const char *s, size_t n);
void lw_json_u64(struct lw_json *j, const char *key, uint64_t v);
void lw_json_bool(struct lw_json *j, const char *key, bool v);
void lw_json_i64(struct lw_json *j, const char *key, int64_t v);
/* A number with this many decimals ("%.*f"; -0 written as 0); NaN and
 * infinities become null. */
void lw_json_double(struct lw_json *j, const char *key, double v, int decimals);
void lw_json_null(struct lw_json *j, const char *key);

/* Write s[0..n) to f as a quoted, escaped JSON string. */
void lw_json_escape(FILE *f, const char *s, size_t n);

#endif
