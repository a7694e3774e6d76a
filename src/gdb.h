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

/* Called by vm_run before the vCPU threads start, and after they have all been joined. */
int gdb_vm_start(struct gdb_server *gdb, struct vm *vm);
void gdb_vm_end(struct gdb_server *gdb, int status);

/* The machine is stopping: wake the stub so it can tell the client. Any thread. */
void gdb_notify_stop(struct gdb_server *gdb);

/* On a vCPU thread: KVM_EXIT_DEBUG (breakpoint, step, watchpoint). */
void gdb_debug_exit(struct vcpu *cpu);

/* On a vCPU thread: the break-into-debugger hypercall. Stops there when a client is attached.
 * Returns 1 if it stopped, 0 if no debugger is attached. */
int64_t gdb_break_hypercall(struct vcpu *cpu);

/* The packet framing, for the fuzzer: takes the next item out of a receive buffer. */
enum gdb_item { GDB_ITEM_NONE, GDB_ITEM_PACKET, GDB_ITEM_INTERRUPT, GDB_ITEM_DROPPED };
#define GDB_PACKET_MAX 16384
enum gdb_item gdb_take_item(char *rx, size_t *rx_len, char *out, char *ack);

#endif
