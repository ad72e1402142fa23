/*
 * dump.h - `leakwatch dump PID`: ask a running process traced by
 * leakwatch for a snapshot now, wait for it, print its path.
 */
#ifndef LW_TOOLS_DUMP_H
#define LW_TOOLS_DUMP_H

/* The `dump` verb: argv[0] is "dump". Returns the exit status. */
int lw_dump_main(int argc, char **argv);

#endif
