/*
 * testutil.c - process running and file helpers for the tools tests.
 */
#include "testutil.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *lwt_bin(void)
{
    const char *b = getenv("LW_TEST_BIN");
    if (!b) {
        fprintf(stderr, "LW_TEST_BIN is not set (run the tests with meson test)\n");
        abort();
    }
    return b;
}

char *lwt_tmpdir(void)
{
    char *t = strdup("/tmp/lwtest.XXXXXX");
    if (!t || !mkdtemp(t))
        abort();
    return t;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void lwt_rmrf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *lwt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf)
        abort();
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *lwt_path(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        abort();
    return p;
}

char *lwt_replace(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = s; (p = strstr(p, from)); p += fl)
        n++;
    char *out = malloc(strlen(s) + n * tl + 1), *o = out;
    if (!out)
        abort();
    for (const char *p = s, *q; ; p = q + fl) {
        q = strstr(p, from);
        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
    }
    return out;
}

int lwt_run(const char *const argv[], const char *cwd, struct lwt_result *r)
{
    char *dir = lwt_tmpdir();
    char *outp = lwt_path(dir, "out"), *errp = lwt_path(dir, "err");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || o < 0 || e < 0)
            _exit(125);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        if (cwd && chdir(cwd) != 0)
            _exit(125);
        execv(argv[0], (char *const *)argv);
        _exit(125);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->out = lwt_read(outp, NULL);
    r->err = lwt_read(errp, NULL);
    lwt_rmrf(dir);
    free(outp);
    free(errp);
    free(dir);
    return r->out && r->err ? 0 : -1;
}

void lwt_result_free(struct lwt_result *r)
{
    free(r->out);
    free(r->err);
}

char *dir;

void lwt_dir_setup(void)
{
    dir = lwt_tmpdir();
}

void lwt_dir_teardown(void)
{
    lwt_rmrf(dir);
    free(dir);
}

void lwt_golden(const char *name, const char *got_raw)
{
    char *got = lwt_replace(got_raw, dir, "TMP");
    const char *src = getenv("LW_TEST_SRCDIR");
    cr_assert_not_null(src, "LW_TEST_SRCDIR not set");
    char *gdir = lwt_path(src, "golden");
    char *path = lwt_path(gdir, name);
    if (getenv("LW_UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(got, f);
        fclose(f);
    }
    char *want = lwt_read(path, NULL);
    cr_assert_not_null(want, "missing golden file %s (LW_UPDATE_GOLDEN=1 creates it)", path);
    cr_assert_str_eq(got, want, "output differs from %s", path);
    free(want);
    free(path);
    free(gdir);
    free(got);
}
