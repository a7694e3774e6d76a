/* hypercall.h - the ports and hole ranges the core serves itself, and the hypercall registry
 * (hypercall.c). */
#ifndef SLATE_HYPERCALL_H
#define SLATE_HYPERCALL_H

#include "device.h"
#include "vcpu.h"

#include <stdint.h>

struct vm;

/* A hypercall served outside the core: by a front end (fn) or a device (device_fn, with the
 * device as opaque). */
typedef int64_t (*hypercall_fn)(void *opaque, struct vcpu *cpu, const uint64_t args[4]);
struct hypercall {
    uint64_t function; /* SLATE_HC_* */
    hypercall_fn fn;
    device_hypercall_fn device_fn;
    void *opaque;
};

/* Adds a hypercall (before vm_run). 0, -EEXIST when the number is taken (the core's own among
 * them), -1 when the registry is full. */
int vm_add_hypercall(struct vm *vm, const struct hypercall *hc);

/* Registers the ports and memory hole ranges the core itself serves. */
int vm_register_core_ranges(struct vm *vm);

#endif
