/*
 * inspect.h - `leakwatch inspect PID`: the kernel's view of a running
 * process (no preload), with the waterfall without heap lines.
 */
#ifndef LW_TOOLS_INSPECT_H
#define LW_TOOLS_INSPECT_H

/* The `inspect` verb: argv[0] is "inspect". Returns leakwatch's exit status. */
int lw_inspect_main(int argc, char **argv);

#endif
