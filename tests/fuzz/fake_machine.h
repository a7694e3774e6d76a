/* fake_machine.h - a struct vm without KVM, for the fuzz harnesses that drive device register and
 * ring handling: guest RAM in host memory, the event loop, a console that discards output, one
 * vCPU that never runs, and devices whose interrupt lines are plain eventfds. vm_fd is -1, so any
 * KVM ioctl a device makes fails, as it would on a kernel that refused it. A harness that needs a
 * device's static functions includes that device's .c file before this header. */
#ifndef SLATE_FAKE_MACHINE_H
#define SLATE_FAKE_MACHINE_H

#include "fuzz_input.h"
#include "vm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_RAM_BYTES (1u << 20)

struct fake_machine {
    struct vm vm;
    struct slate_config cfg;
    struct console console;
    struct vcpu cpu;
    struct kvm_run run;
};

/* Builds the machine once per process (exits on failure: a harness cannot run without it). */
struct fake_machine *fake_machine(void);

/* Adds a device of type ops: its window (zeroed anonymous memory at its guest address), its
 * interrupt lines, its ports on vm.pio. With run_setup, ops->setup builds its state too. */
struct device *fake_device_add(struct fake_machine *m, const struct device_ops *ops, bool run_setup);

/* Back to the state before any input: RAM and windows zeroed, no stop requested, devices'
 * interrupt lines disabled. Devices' own state is the harness's business. */
void fake_machine_reset(struct fake_machine *m);

/* A guest-physical address a hostile guest would pick: in RAM, at its end, just past it, in the
 * hole, in a device window, or anything at all. */
uint64_t fuzz_address(struct fuzz_input *in, const struct fake_machine *m);

/* One guest access to dev's ports, decoded from the input (offset a little past the device's
 * ports too, any width, read or write), through the same path a vCPU's exit takes. */
void fuzz_register_access(struct fuzz_input *in, struct device *dev);

#endif
