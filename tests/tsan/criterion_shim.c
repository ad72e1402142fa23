/*
 * criterion_shim.c - runner for shim/criterion/criterion.h: runs every
 * registered test (or those named on the command line, "suite::name") in
 * a forked child with its suite's init/fini, prints one line per test and
 * "Synthesis: Tested: N | Passing: N | Failing: N", and exits 1 if any
 * failed. A child that dies of a signal or a sanitizer report fails.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#define MAX_TESTS 256
#define MAX_SUITES 32

struct test {
    const char *suite, *name;
    void (*fn)(void);
    const struct cr_shim_cfg *cfg;
};
struct suite {
    const char *name;
    const struct cr_shim_cfg *cfg;
};

static struct test tests[MAX_TESTS];
static int ntests;
static struct suite suites[MAX_SUITES];
static int nsuites;

void cr_shim_register_suite(const char *suite, const struct cr_shim_cfg *cfg)
{
    if (nsuites == MAX_SUITES)
        abort();
    suites[nsuites++] = (struct suite){suite, cfg};
}

void cr_shim_register_test(const char *suite, const char *name, void (*fn)(void),
                           const struct cr_shim_cfg *cfg)
{
    if (ntests == MAX_TESTS)
        abort();
    tests[ntests++] = (struct test){suite, name, fn, cfg};
}

void cr_shim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n", file, line, expr);
    if (*fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs("[----]   ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fflush(stderr);
    _exit(1);
}

void cr_shim_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[SKIP] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(NULL);
    exit(0);
}

static const struct cr_shim_cfg *suite_cfg(const char *name)
{
    for (int i = 0; i < nsuites; i++)
        if (!strcmp(suites[i].name, name))
            return suites[i].cfg;
    return NULL;
}

static int run_one(const struct test *t)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("criterion_shim: fork");
        return 1;
    }
    if (pid == 0) {
        const struct cr_shim_cfg *sc = suite_cfg(t->suite);
        if (sc && sc->init)
            sc->init();
        if (t->cfg->init)
            t->cfg->init();
        t->fn();
        if (t->cfg->fini)
            t->cfg->fini();
        if (sc && sc->fini)
            sc->fini();
        fflush(NULL);
        exit(0); /* exit(), so sanitizers report at exit with their exit code */
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFSIGNALED(st))
        fprintf(stderr, "[----] %s::%s: killed by signal %d\n", t->suite, t->name, WTERMSIG(st));
    return 1;
}

static int wanted(const struct test *t, int argc, char **argv)
{
    int named = 0;
    for (int a = 1; a < argc; a++) {
        if (argv[a][0] == '-')
            continue; /* Criterion options such as --jobs are accepted and ignored */
        named = 1;
        char full[256];
        snprintf(full, sizeof full, "%s::%s", t->suite, t->name);
        if (!strcmp(argv[a], full))
            return 1;
    }
    return !named;
}

int main(int argc, char **argv)
{
    int ran = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        const struct test *t = &tests[i];
        if (t->cfg->disabled || !wanted(t, argc, argv))
            continue;
        ran++;
        int bad = run_one(t);
        failed += bad;
        printf("[%s] %s::%s\n", bad ? "FAIL" : "PASS", t->suite, t->name);
        fflush(stdout);
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d\n", ran, ran - failed, failed);
    return failed || ran == 0;
}
