/*
 * testutil.h - helpers for the tools tests: run a program and capture its
 * exit status, stdout and stderr; temporary directories; file contents.
 */
#ifndef LW_TEST_UTIL_H
#define LW_TEST_UTIL_H

#include <stddef.h>

struct lwt_result {
    int status; /* exit code, or 128+N when killed by signal N */
    char *out;  /* captured stdout, NUL-terminated */
    char *err;  /* captured stderr */
};

/* Run argv[0] (a path) with argv, in directory cwd (NULL: ours), stdin
 * from /dev/null. Returns 0, -1 if it could not be started. */
int lwt_run(const char *const argv[], const char *cwd, struct lwt_result *r);
void lwt_result_free(struct lwt_result *r);

/* Path of the leakwatch binary under test ($LW_TEST_BIN). */
const char *lwt_bin(void);

/* A suite's scratch directory: lwt_dir_setup makes `dir`, lwt_dir_teardown
 * removes it (criterion .init / .fini). */
extern char *dir;
void lwt_dir_setup(void);
void lwt_dir_teardown(void);

/* A new empty directory under /tmp (malloc'd path); lwt_rmrf removes it. */
char *lwt_tmpdir(void);
void lwt_rmrf(const char *dir);

/* Whole file, NUL-terminated (malloc'd), or NULL; *len may be NULL. */
char *lwt_read(const char *path, size_t *len);

/* s with every `from` replaced by `to` (malloc'd). */
char *lwt_replace(const char *s, const char *from, const char *to);

/* Compare got (with `dir` replaced by TMP) to tests/tools/golden/NAME;
 * LW_UPDATE_GOLDEN=1 rewrites the file first. Criterion assertion. */
void lwt_golden(const char *name, const char *got);

/* "dir/name" (malloc'd). */
char *lwt_path(const char *dir, const char *name);

#endif
