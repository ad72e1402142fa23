/*
 * test_run.c - `leakwatch run`: static executables are refused at once
 * (exit 2, "static"), the child's exit status and death by signal come
 * back as the exit status, shell-like 126/127, option validation, and the
 * environment the child gets (LD_PRELOAD, LEAKWATCH_OUTPUT, ROOT_PID).
 * LEAKWATCH_LIB points at an empty library built next to these tests.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fixture.h"
#include "run.h"
#include "testutil.h"



/* leakwatch run --output DIR ARGS... */
static void run(struct lwt_result *r, const char *const *args)
{
    const char *argv[32] = {lwt_bin(), "run", "--output", dir};
    size_t n = 4;
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    cr_assert_eq(lwt_run(argv, NULL, r), 0);
}

Test(run, exe_kind)
{
    cr_assert_eq(lw_run_exe_kind("/bin/sh"), LW_EXE_DYNAMIC);
    cr_assert_eq(lw_run_exe_kind(lwt_bin()), LW_EXE_DYNAMIC);
    cr_assert_eq(lw_run_exe_kind("/nonexistent"), LW_EXE_OTHER);
    cr_assert_eq(lw_run_exe_kind("/etc/passwd"), LW_EXE_OTHER);
    const char *st = getenv("LW_STATIC_BIN");
    if (st)
        cr_assert_eq(lw_run_exe_kind(st), LW_EXE_STATIC);
}

Test(run, exe_kind_script, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char *script = lwt_path(dir, "s.sh");
    FILE *f = fopen(script, "w");
    fputs("#!/bin/sh\nexit 3\n", f);
    fclose(f);
    cr_assert_eq(lw_run_exe_kind(script), LW_EXE_SCRIPT);
    free(script);
}

Test(run, resolve_like_execvp, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    char out[4096];
    cr_assert_eq(lw_run_resolve("sh", out, sizeof out), 0);
    cr_assert_eq(access(out, X_OK), 0, "%s", out);
    cr_assert(strstr(out, "/sh"));
    cr_assert_eq(lw_run_resolve("no-such-command-lw", out, sizeof out), ENOENT);
    cr_assert_eq(lw_run_resolve("/nonexistent/x", out, sizeof out), ENOENT);
    cr_assert_eq(lw_run_resolve("/etc/passwd", out, sizeof out), EACCES);
    cr_assert_eq(lw_run_resolve("/tmp", out, sizeof out), EACCES);
    cr_assert_eq(lw_run_resolve("", out, sizeof out), ENOENT);
}

Test(run, static_binary_refused, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    const char *st = getenv("LW_STATIC_BIN");
    if (!st)
        cr_skip_test("no libc.a: static test program not built");
    struct lwt_result r;
    const char *args[] = {"--", st, NULL};
    run(&r, args);
    cr_assert_eq(r.status, 2, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "is statically linked; LD_PRELOAD cannot reach it"), "%s", r.err);
    cr_assert_str_eq(r.out, "", "the static program ran: %s", r.out);
    lwt_result_free(&r);
}

Test(run, exit_status_propagates, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct lwt_result r;
    const char *args[] = {"--", "sh", "-c", "exit 7", NULL};
    run(&r, args);
    cr_assert_eq(r.status, 7, "stderr: %s", r.err);
    lwt_result_free(&r);
    const char *ok[] = {"true", NULL};
    run(&r, ok);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    lwt_result_free(&r);
}

Test(run, death_by_signal_is_128_plus_n, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct lwt_result r;
    const char *args[] = {"--", "sh", "-c", "kill -9 $$", NULL};
    run(&r, args);
    cr_assert_eq(r.status, 137, "stderr: %s", r.err);
    lwt_result_free(&r);
    const char *term[] = {"--", "sh", "-c", "kill -TERM $$", NULL};
    run(&r, term);
    cr_assert_eq(r.status, 143, "stderr: %s", r.err);
    lwt_result_free(&r);
}

Test(run, not_found_and_not_executable, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct lwt_result r;
    const char *args[] = {"--", "no-such-command-lw", NULL};
    run(&r, args);
    cr_assert_eq(r.status, 127);
    cr_assert_str_eq(r.err, "leakwatch: no-such-command-lw: command not found\n");
    lwt_result_free(&r);
    const char *noexec[] = {"/etc/passwd", NULL};
    run(&r, noexec);
    cr_assert_eq(r.status, 126);
    cr_assert(strstr(r.err, "/etc/passwd: permission denied"), "%s", r.err);
    lwt_result_free(&r);
}

Test(run, child_environment, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    /* The child checks what it got; each failed check has its own status. */
    const char *script =
        "case \"$LD_PRELOAD\" in \"$LEAKWATCH_LIB\"|\"$LEAKWATCH_LIB\":*) ;; *) exit 11;; esac;"
        "test \"$LEAKWATCH_ROOT_PID\" = \"$$\" || exit 12;"
        "test \"$LEAKWATCH_OUTPUT\" = \"$0\" || exit 13;"
        "test \"$LEAKWATCH_DEPTH\" = 9 || exit 14;"
        "test \"$LEAKWATCH_FOLLOW_FORK\" = 0 || exit 15;"
        "test \"$LEAKWATCH_SIGNAL\" = USR2 || exit 16;"
        "exit 0";
    struct lwt_result r;
    const char *args[] = {"--depth", "9", "--no-follow-fork", "--signal", "USR2", "--",
                          "sh", "-c", script, dir, NULL};
    run(&r, args);
    cr_assert_eq(r.status, 0, "check %d failed; stderr: %s", r.status, r.err);
    lwt_result_free(&r);
}

Test(run, existing_ld_preload_is_kept_after_ours, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    setenv("LD_PRELOAD", "", 1); /* empty: nothing to keep */
    struct lwt_result r;
    const char *args[] = {"--", "sh", "-c", "test \"$LD_PRELOAD\" = \"$LEAKWATCH_LIB\"", NULL};
    run(&r, args);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    lwt_result_free(&r);
    setenv("LD_PRELOAD", getenv("LEAKWATCH_LIB"), 1);
    const char *args2[] = {"--", "sh", "-c",
                           "test \"$LD_PRELOAD\" = \"$LEAKWATCH_LIB:$LEAKWATCH_LIB\"", NULL};
    run(&r, args2);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    lwt_result_free(&r);
    unsetenv("LD_PRELOAD");
}

Test(run, bad_options_refused_before_start, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct lwt_result r;
    const char *args[] = {"--depth", "0", "--", "sh", "-c", "echo started", NULL};
    run(&r, args);
    cr_assert_eq(r.status, 2);
    cr_assert_str_eq(r.err, "leakwatch: --depth 0: must be a whole number from 1 to 256\n");
    cr_assert_str_eq(r.out, "");
    lwt_result_free(&r);

    const char *sig[] = {"--signal", "KILL", "--", "true", NULL};
    run(&r, sig);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "leakwatch: --signal KILL: not usable for snapshots"), "%s", r.err);
    lwt_result_free(&r);

    setenv("LEAKWATCH_DEPHT", "3", 1); /* a typo in the environment */
    const char *ok[] = {"--", "true", NULL};
    run(&r, ok);
    unsetenv("LEAKWATCH_DEPHT");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "LEAKWATCH_DEPHT: unknown option"), "%s", r.err);
    lwt_result_free(&r);

    const char *none[] = {NULL};
    run(&r, none);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "no command given"), "%s", r.err);
    lwt_result_free(&r);

    const char *unk[] = {"--frobnicate", "--", "true", NULL};
    run(&r, unk);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "bad option '--frobnicate'"), "%s", r.err);
    lwt_result_free(&r);
}

Test(run, counts_snapshots_and_says_what_next, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    /* The "program" drops a snapshot into LEAKWATCH_OUTPUT, as the library
     * would; one snapshot was there before and is not counted. */
    struct fx_buf b;
    fx_minimal(&b, 1, 0, 0, 0, 1000, "/x");
    char *fixture = lwt_path(dir, "fixture.bin");
    char *old = lwt_path(dir, "old.1.000000.exit.lwsnap");
    cr_assert(fx_write_file(&b, fixture));
    cr_assert(fx_write_file(&b, old));
    fx_free(&b);
    struct lwt_result r;
    const char *args[] = {"--", "sh", "-c", "cp \"$0\" \"$LEAKWATCH_OUTPUT/new.2.000000.exit.lwsnap\"",
                          fixture, NULL};
    run(&r, args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char *want;
    /* the hint names leakwatch as it was invoked, so it can be pasted */
    cr_assert(asprintf(&want, "leakwatch: 1 snapshot(s) in %s\nleakwatch: next: %s report %s\n",
                       dir, lwt_bin(), dir) > 0);
    cr_assert_str_eq(r.err, want);
    free(want);
    lwt_result_free(&r);

    const char *none[] = {"true", NULL};
    run(&r, none);
    cr_assert(strstr(r.err, "leakwatch: 0 snapshot(s) in "), "%s", r.err);
    cr_assert(strstr(r.err, "no snapshot was written"), "%s", r.err);
    cr_assert_null(strstr(r.err, "next:"));
    lwt_result_free(&r);
    free(fixture);
    free(old);
}

Test(run, default_output_dir, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    struct lwt_result r;
    const char *argv[] = {lwt_bin(), "run", "sh", "-c", "echo \"$LEAKWATCH_OUTPUT\"", NULL};
    cr_assert_eq(lwt_run(argv, dir, &r), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char *prefix = lwt_path(dir, "leakwatch-sh-");
    cr_assert(strncmp(r.out, prefix, strlen(prefix)) == 0, "%s", r.out);
    struct stat st;
    r.out[strcspn(r.out, "\n")] = '\0';
    cr_assert_eq(stat(r.out, &st), 0, "%s not created", r.out);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700);
    free(prefix);
    lwt_result_free(&r);
}

Test(run, help_lists_real_options)
{
    struct lwt_result r;
    const char *argv[] = {lwt_bin(), "run", "--help", NULL};
    cr_assert_eq(lwt_run(argv, NULL, &r), 0);
    cr_assert_eq(r.status, 0);
    const char *opts[] = {"--output DIR", "--signal SIG", "--depth N", "--no-follow-exec",
                          "--no-follow-fork", "--no-cmdline", "--help-env", "127"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        cr_assert(strstr(r.out, opts[i]), "missing %s", opts[i]);
    lwt_result_free(&r);
    const char *env[] = {lwt_bin(), "run", "--help-env", NULL};
    cr_assert_eq(lwt_run(env, NULL, &r), 0);
    cr_assert(strstr(r.out, "| `LEAKWATCH_DEPTH` | `64` |"), "%s", r.out);
    lwt_result_free(&r);
}

Test(run, sigterm_is_forwarded_sigint_ignored, .init = lwt_dir_setup, .fini = lwt_dir_teardown)
{
    /* $PPID is leakwatch. TERM must reach the child (its trap exits 5);
     * INT must not kill leakwatch (the child exits 4 afterwards). */
    struct lwt_result r;
    const char *term[] = {"--", "sh", "-c",
                          "trap 'kill $! 2>/dev/null; exit 5' TERM; kill -TERM $PPID; "
                          "sleep 5 & wait; exit 9",
                          NULL};
    run(&r, term);
    cr_assert_eq(r.status, 5, "stderr: %s", r.err);
    lwt_result_free(&r);
    const char *hup[] = {"--", "sh", "-c",
                         "trap 'kill $! 2>/dev/null; exit 6' HUP; kill -HUP $PPID; "
                         "sleep 5 & wait; exit 9",
                         NULL};
    run(&r, hup);
    cr_assert_eq(r.status, 6, "stderr: %s", r.err);
    lwt_result_free(&r);
    const char *intr[] = {"--", "sh", "-c", "kill -INT $PPID; kill -QUIT $PPID; sleep 0.2; exit 4",
                          NULL};
    run(&r, intr);
    cr_assert_eq(r.status, 4, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "snapshot(s) in"), "%s", r.err);
    lwt_result_free(&r);
}
