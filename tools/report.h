/*
 * report.h - `leakwatch report`: pick a snapshot (analysis.c), load it
 * (reader.c), rank its stacks, symbolize (symbolize.c) and write it in the
 * requested format (output.h).
 */
#ifndef LW_TOOLS_REPORT_H
#define LW_TOOLS_REPORT_H

/* The `report` verb: argv[0] is "report". Returns leakwatch's exit status. */
int lw_report_main(int argc, char **argv);

#endif
