/* gdb.h - the GDB remote serial protocol stub: `target remote` from the stock gdb, one client at
 * a time, every vCPU a gdb thread, all-stop. The server outlives guest resets. */
#ifndef SLATE_GDB_H
#define SLATE_GDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gdb_server;
struct vm;
struct vcpu;

/* Listens on spec: "PORT", "HOST:PORT" or "unix:PATH". NULL after logging why. With `wait`, the
 * first boot holds its first instruction until a client attaches. */
struct gdb_server *gdb_server_open(const char *spec, bool wait);
void gdb_server_close(struct gdb_server *gdb);

/* Follows `vm`: observes its start, stop and end, takes its debug exits (breakpoints, steps,
 * watchpoints) and serves SLATE_HC_DEBUG_BREAK. The machine never calls gdb by name. Once per
 * machine, before vm_run; a reset's new machine is attached again. 0 or -1. */
int gdb_attach(struct gdb_server *gdb, struct vm *vm);

#endif
