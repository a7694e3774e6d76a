/* snapshot.h - the whole machine saved and put back: to a file (--snapshot, the monitor's
 * `snapshot save`, --restore) and in memory for --each (each.c). A snapshot is taken with every
 * vCPU parked and settled (HOLD_SNAPSHOT): each CPU's state (cpu_state.h), every device's through
 * device_ops.save, their interrupt routes, the guest clock, and the memory the guest wrote. */
#ifndef SLATE_SNAPSHOT_H
#define SLATE_SNAPSHOT_H

#include "cpu_state.h"
#include "device.h"
#include "options.h"
#include "snapfile.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vcpu;

/* Everything but memory, as captured from a held machine. */
struct cpu_image {
    struct cpu_state st;
    uint32_t started; /* slate's own flag: it has run (a start hypercall for it is refused) */
    uint32_t pad;
};
struct device_image {
    struct device_state state;
    uint32_t vector[DEVICE_MAX_IRQS], cpu[DEVICE_MAX_IRQS]; /* its lines as the guest programmed them */
};
struct machine_image {
    int64_t clock_ns; /* the guest's CLOCK when saved */
    struct kvm_clock_data kvmclock;
    bool have_kvmclock;
    uint64_t user_hypercalls;
    struct cpu_image *cpus;
    unsigned cpu_count;
    struct device_image devices[DEVICE_MAX];
    unsigned device_count;
};

/* With the machine held: captures it into *img (allocated here; free with machine_image_free).
 * 0, or -1 after logging which device or CPU could not be saved. */
int machine_capture(struct vm *vm, struct machine_image *img);
/* With the machine held (or not yet started): puts *img back: the clock, devices, interrupt
 * routes, then every CPU. `reset` (--each, between cases): the machine ran since, and its CPUs
 * are parked: registers go in with their next KVM_RUN. 0 or -1, logged. */
int machine_apply(struct vm *vm, struct machine_image *img, bool reset);
void machine_image_free(struct machine_image *img);

/* ---- files ---- */

/* An opened snapshot file. */
struct snapshot;
/* Maps and checks PATH (checksums of everything, RAM too unless lazy). 0, or -1 after logging
 * "--restore PATH: why". */
int snapshot_open(const char *path, bool lazy, struct snapshot **out);
void snapshot_close(struct snapshot *snap);
/* The machine the file describes (its saved command line) with the back ends `given` names.
 * 0 or -1, logged. The strings in *out live as long as snap. */
int snapshot_config(struct snapshot *snap, const struct slate_config *given, struct slate_config *out);
/* In vm_create, in place of loading the kernel: the boot plan the saved machine had. */
int snapshot_load_plan(struct vm *vm, const struct snapshot *snap);
/* In vm_create, after the devices: memory, devices, routes, CPUs and clock from the file. */
int snapshot_restore(struct vm *vm, const struct snapshot *snap);

/* SLATE_HC_SNAPSHOT and the monitor's `snapshot save`, for a machine being built (vm_create). */
int snapshot_attach(struct vm *vm);
void snapshot_detach(struct vm *vm);
/* The monitor: saves the machine now as `name` in dirfd (replace: over an existing file). 0 or
 * -errno (-EEXIST: the file exists), with a line for the user in msg. */
int snapshot_save_at(struct vm *vm, int dirfd, const char *name, bool replace, char *msg, size_t msglen);

/* Writes the machine (held) to fd: caller is the CPU whose SLATE_HC_SNAPSHOT this is (-1 for
 * none: its RAX then stays what it was). 0 or -errno, logged. */
int snapshot_write(struct vm *vm, int fd, int caller);

/* ---- --each (each.c) ---- */
struct each;
int each_attach(struct vm *vm);
void each_detach(struct vm *vm);
/* A --jobs worker was restored at the snapshot: captures it there and starts its first case.
 * 0 or -1, logged. */
int each_restored(struct vm *vm, unsigned caller);
/* SLATE_HC_SNAPSHOT under --each, on the caller's thread. */
int64_t each_hypercall(struct vm *vm, struct vcpu *cpu, const uint64_t args[4]);
/* vm_request_stop during a case: the case ends, the machine does not. True if taken. */
bool each_case_stop(struct vm *vm, int status);
/* The event thread holds the machine for --each (the eventfd woke it). */
void each_serve(struct vm *vm);
/* Whether slot `slot`'s dirty log is --each's too (device_window_dirty then goes through it). */
bool each_window_dirty(struct vm *vm, unsigned slot, unsigned long *bitmap, bool *handled);

#endif
