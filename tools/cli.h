/*
 * cli.h - small helpers shared by the verbs of the leakwatch command:
 * exit codes, one-line messages on stderr, number parsing, and quoting a
 * word for the shell so a suggested command can be pasted as printed.
 */
#ifndef LW_TOOLS_CLI_H
#define LW_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of every verb (documented in --help and leakwatch.1). */
#define LW_EXIT_OK 0
#define LW_EXIT_INPUT 1 /* bad input: missing, truncated, corrupt, newer snapshot; write error */
#define LW_EXIT_USAGE 2 /* usage error, or refused to run */

/* Print "leakwatch: MESSAGE\n" on stderr. */
void lw_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "leakwatch: warning: MESSAGE\n" on stderr. */
void lw_cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a decimal number in [min, max]; the whole string must be digits. */
bool lw_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Write s to f, quoted for a POSIX shell when it needs quoting. */
void lw_cli_shell_quote(FILE *f, const char *s);

#endif
