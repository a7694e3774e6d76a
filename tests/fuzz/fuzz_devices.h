/* fuzz_devices.h - what the device harnesses share: one machine from the unit tests' fake
 * (tests/fake/fake_host.h: device.h without KVM or struct vm), addresses a hostile guest would
 * pick, and register accesses as a vCPU exit makes them. A harness that needs a device's static
 * functions includes that device's .c file before this header. */
#ifndef SLATE_FUZZ_DEVICES_H
#define SLATE_FUZZ_DEVICES_H

#include "fake_host.h"
#include "fuzz_input.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

/* The harness's machine, made once (exits on failure: nothing can run without it). Device
 * warnings are expected by the thousand: the log goes to /dev/null. */
static inline struct vm *fuzz_vm(void)
{
    static struct vm *vm;
    if (!vm) {
        log_output = fopen("/dev/null", "w");
        vm = fake_vm_new();
    }
    return vm;
}

/* Adds a device of type ops with its window and interrupt lines, without running its setup:
 * the harness builds the state it drives. */
static inline struct device *fuzz_device(struct vm *vm, const struct device_ops *ops)
{
    struct device *dev = &vm->devices[vm->device_count];
    *dev = (struct device){.ops = ops, .vm = vm,
                           .port_base = (uint16_t)(0x1000 + 0x100 * vm->device_count)};
    snprintf(dev->name, sizeof(dev->name), "%s0", ops->name);
    for (unsigned i = 0; i < DEVICE_MAX_IRQS; i++)
        dev->irq[i] = (struct irq_line){.fd = -1};
    if (ops->window_size) {
        dev->window_bytes = (ops->window_size + 0xFFFFF) & ~0xFFFFFULL;
        dev->window_gpa = SLATE_DEVICE_WINDOWS;
        dev->window = mmap(NULL, dev->window_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (dev->window == MAP_FAILED)
            abort();
    }
    vm->device_count++;
    return dev;
}

/* Back to the state before any input: RAM and windows zeroed, no stop requested, interrupt
 * lines disabled. The devices' own state is the harness's business. */
static inline void fuzz_vm_reset(struct vm *vm)
{
    madvise(vm->ram, FAKE_RAM_BYTES, MADV_DONTNEED);
    for (unsigned d = 0; d < vm->device_count; d++) {
        struct device *dev = &vm->devices[d];
        if (dev->window)
            madvise(dev->window, dev->window_bytes, MADV_DONTNEED);
        for (unsigned i = 0; i < DEVICE_MAX_IRQS; i++)
            atomic_store(&dev->irq[i].vector, 0);
    }
    atomic_store(&vm->status, -1);
}

/* A guest-physical address a hostile guest would pick (fuzz_input.h), on this machine. */
static inline uint64_t fuzz_address(struct fuzz_input *in) { return fuzz_guest_address(in, FAKE_RAM_BYTES); }

/* One guest access to dev's registers, decoded from the input (any offset in its ports, any
 * width, read or write), through device_register_io as a vCPU exit reaches it. */
static inline void fuzz_register_access(struct fuzz_input *in, struct device *dev)
{
    static const unsigned widths[4] = {1, 2, 4, 8};
    uint8_t how = (uint8_t)fuzz_take(in, 1);
    struct bus_io io = {
        .offset = fuzz_take(in, 1) % dev->ops->port_count,
        .width = widths[how & 3],
        .is_write = how & 4,
        .value = fuzz_take(in, 4),
        .cpu_index = (unsigned)fuzz_take(in, 1) % 4, /* CPUs that do not exist too */
    };
    device_register_io(dev, &io);
}

#endif
