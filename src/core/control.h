/* control.h - who may stop the machine, and who programs a vCPU's debug state (control.c). */
#ifndef SLATE_CONTROL_H
#define SLATE_CONTROL_H

#include "console.h"
#include "vcpu.h"

#include <stdbool.h>

struct vm;

/* Who holds the machine stopped. It runs when nobody does: each holder releases only its own
 * hold, so the monitor's `cont` cannot let the guest run behind gdb's back. */
enum vm_holder {
    HOLD_CONSOLE = 1 << 0, /* Ctrl-A p */
    HOLD_MONITOR = 1 << 1, /* the monitor's stop */
    HOLD_GDB = 1 << 2,     /* gdb's stop */
    HOLD_PEEK = 1 << 3,    /* a monitor command that reads the CPUs, for its duration */
    HOLD_REPORT = 1 << 4,  /* a hang report reading the CPUs */
    HOLD_CRASH = 1 << 5,   /* --on-crash pause: a CPU crashed, the others stay where they are */
    HOLD_SNAPSHOT = 1 << 6, /* a snapshot is saved, or --each puts the machine back */
};
/* Holds under which a CPU first completes the instruction it exited on (an IN's value into its
 * register, RIP past an OUT: KVM does that at the next KVM_RUN), so its state is whole. */
#define HOLD_SETTLED HOLD_SNAPSHOT

/* Adds `who`'s hold and returns once every vCPU is parked outside KVM_RUN (or the machine is
 * stopping: then false). Any thread except a vCPU's own. vm_release drops only `who`'s hold; the
 * vCPUs run again when no hold is left. */
bool vm_hold(struct vm *vm, enum vm_holder who);
void vm_release(struct vm *vm, enum vm_holder who);
/* Adds `who`'s hold without waiting for the vCPUs to park (from a vCPU thread, which cannot). */
void vm_request_hold(struct vm *vm, enum vm_holder who);
bool vm_held_by(struct vm *vm, enum vm_holder who);
/* While held: lets `cpu` alone run until it parks again (a debugger's single step). */
void vm_release_one(struct vm *vm, struct vcpu *cpu);

/* While held: has `cpu`'s own thread, parked, call work(cpu, arg) (work NULL: only waits for
 * the work given before), and waits up to wait_ms for it to finish. True once it has; false
 * while it still runs (call again with NULL to wait on) or when the machine is stopping. */
bool vm_run_parked(struct vm *vm, struct vcpu *cpu, void (*work)(struct vcpu *, void *), void *arg, int wait_ms);

/* The guest-debug arbiter: records `owner`'s wish for cpu (NULL: none) and programs KVM with the
 * union of every owner's (enables, breakpoints, single step; gdb's debug registers). Call with
 * the machine held. 0 or -errno. */
int vcpu_set_debug(struct vcpu *cpu, enum debug_owner owner, const struct kvm_guest_debug *wish);
/* True if `owner` asked for every bit of `control` on cpu (e.g. its single step). */
bool vcpu_debug_wanted(struct vcpu *cpu, enum debug_owner owner, uint32_t control);
/* True if any owner is single-stepping cpu. */
bool vcpu_single_stepping(struct vcpu *cpu);

/* On a vCPU's own thread, outside KVM_RUN: applies a pending start request and parks while the
 * machine is paused. */
void vcpu_service_requests(struct vcpu *cpu);
/* This CPU no longer runs guest code (it finished, or waits outside KVM_RUN): a pause counts it
 * as parked and wakes whoever waits for that. */
void vm_count_parked(struct vm *vm);
/* A CPU that crashed under --on-crash pause runs no guest code again, but its thread stays,
 * counted as parked, until the machine stops: gdb's time travel runs work on it (vm_run_parked:
 * the crashed CPU, stepped again from a checkpoint). */
void vcpu_stay_after_crash(struct vcpu *cpu);
/* On a vCPU's own thread, before it runs: lets the console park it while output waits. */
void vcpu_thread_init(struct vcpu *cpu);
/* Makes console writes from this machine's vCPUs count them as parked while they wait. */
void vm_attach_console(struct vm *vm, struct console *console);

#endif
