/* monitor.h - the text monitor (--monitor): inspect and control the machine by typed commands.
 * Like the gdb server it outlives guest resets. */
#ifndef SLATE_MONITOR_H
#define SLATE_MONITOR_H

#include <stdbool.h>

struct monitor;
struct vm;

/* spec: "stdio", "unix:PATH" or "tcp:HOST:PORT". NULL after logging why. */
struct monitor *monitor_open(const char *spec, bool serial_on_stdio, const char *dump_dir);
void monitor_close(struct monitor *m);

/* Follows `vm` (an observer of its start, stop and end; the machine never calls the monitor by
 * name). Once per machine, before vm_run; a reset's new machine is attached again. 0 or -1. */
int monitor_attach(struct monitor *m, struct vm *vm);

#endif
