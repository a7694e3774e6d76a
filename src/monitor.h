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

int monitor_vm_start(struct monitor *m, struct vm *vm);
void monitor_vm_end(struct monitor *m);
void monitor_notify_stop(struct monitor *m);

#endif
