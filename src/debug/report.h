/* report.h - --report PATH.json: how the machine ended, for CI systems. The schema is in
 * docs/debugging.md ("Reports for CI"). */
#ifndef SLATE_REPORT_H
#define SLATE_REPORT_H

struct vm;

/* Writes the report for a machine whose vCPUs have all stopped: the exit status and why, each
 * CPU's state with its symbolized RIP and backtrace, the triple-fault explainer's verdict, and
 * the flight recorder. Through a temporary file renamed into place. 0, or -1 after logging why. */
int report_write(struct vm *vm, const char *path, int status);

#endif
