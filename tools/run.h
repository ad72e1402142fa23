/*
 * run.h - `leakwatch run`: start a program with libleakwatch.so preloaded
 * and the LEAKWATCH_* options set, wait for it, say where its snapshots
 * went, and exit with its status. Refuses programs that LD_PRELOAD cannot
 * reach (statically linked) before starting anything.
 */
#ifndef LW_TOOLS_RUN_H
#define LW_TOOLS_RUN_H

#include <stddef.h>

enum lw_exe_kind {
    LW_EXE_DYNAMIC, /* ELF with PT_INTERP: the dynamic loader will honour LD_PRELOAD */
    LW_EXE_STATIC,  /* ELF without PT_INTERP (static or static-pie) */
    LW_EXE_SCRIPT,  /* starts with #!: the interpreter is what runs */
    LW_EXE_OTHER,   /* not ELF, not a script, or unreadable: exec will tell */
};

/* Find cmd the way execvp does (PATH search unless it contains '/') and
 * write its path into out[len]. Returns 0, ENOENT (not found) or EACCES
 * (found but not executable). */
int lw_run_resolve(const char *cmd, char *out, size_t len);

/* Classify the executable at path by its first bytes and program headers. */
enum lw_exe_kind lw_run_exe_kind(const char *path);

/* The `run` verb: argv[0] is "run". Returns the exit status for leakwatch. */
int lw_run_main(int argc, char **argv);

#endif
