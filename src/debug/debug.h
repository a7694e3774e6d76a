/* debug.h - the debugging room's state for one machine, and how its tools attach to the core
 * (debug.c): the crash report and the crash replay (a crash observer), the hang report (a report
 * observer), --trace exc and --profile (vCPU hooks and their own timers), --report and
 * --dump-core (end observers). The core keeps one opaque pointer (vm->debug) and names none of
 * them; gdb and the monitor attach the same way on their own. */
#ifndef SLATE_DEBUG_H
#define SLATE_DEBUG_H

struct vm;

/* Attaches every tool the configuration asks for to a machine vm_create built (before vm_run).
 * Logs one line and returns -1 on failure (vm_destroy then takes it apart). */
int debug_attach(struct vm *vm);

#endif
