/* fake_host.h - a machine for devices, without KVM: the other side of src/core/device.h, so a device's
 * register semantics, rings and interrupts can be tested (and fuzzed) on any Linux machine.
 * Guest RAM is host memory at guest address 0, the event loop runs only when the test turns it
 * (fake_serve), interrupts are counted, doorbells are eventfds the test rings, warnings are
 * counted. A test links it instead of src/core/device_host.c. */
#ifndef SLATE_FAKE_HOST_H
#define SLATE_FAKE_HOST_H

#include "console.h"
#include "device.h"
#include "loader.h"
#include "options.h"

#include <pthread.h>
#include <stdatomic.h>

#define FAKE_RAM_BYTES (4u << 20)
#define FAKE_DOORBELLS 4

/* The machine as the fake keeps it (devices never look inside: device.h declares it opaque). */
struct vm {
    struct slate_config cfg; /* a test fills in what its device reads (cfg.disks[0], ...) */
    struct console console;  /* output to out_fd (default /dev/null), input from in_fd (-1) */
    uint8_t *ram;            /* FAKE_RAM_BYTES at guest address 0 */
    struct event_loop loop;
    struct device devices[DEVICE_MAX];
    unsigned device_count;
    unsigned cpus;             /* device_cpu_count: 1 unless the test says otherwise */
    struct boot_screen boot_screen; /* device_boot_screen: zero (slate's own boot) unless set */
    _Atomic int status;        /* what device_stop_machine asked for, -1 before */
    _Atomic unsigned stops;    /* how many times it was asked */
    int64_t boot_ns;           /* CLOCK_MONOTONIC at creation: the guest clock's zero */
    _Atomic unsigned raised[DEVICE_MAX][DEVICE_MAX_IRQS];
    _Atomic unsigned warnings;
    char last_warning[256];
    pthread_mutex_t lock; /* guards last_warning, the doorbells, the hypercalls */
    struct {
        uint16_t offset;
        int fd;
    } doorbells[DEVICE_MAX][FAKE_DOORBELLS];
    unsigned doorbell_count[DEVICE_MAX];
    struct {
        uint64_t function;
        device_hypercall_fn fn;
        struct device *dev;
    } hypercalls[8];
    unsigned hypercall_count;
    struct input_sinks inputs; /* devices.c serves them, as for the real machine */
    struct device *screen;
    device_screenshot_fn screenshot;
    bool dirty_unknown; /* device_window_dirty answers "unknown" (false) */
};

/* A fresh machine (exits the process on failure: no test can run without it). */
struct vm *fake_vm_new(void);
/* Tears down every device (in reverse order, as the core does) and frees the machine. */
void fake_vm_free(struct vm *vm);

/* Adds instance `index` of ops at the next port base and window, and runs its setup. Returns the
 * device, or NULL when setup failed (the device is then torn down again). */
struct device *fake_add(struct vm *vm, const struct device_ops *ops, unsigned index);

/* A 32-bit guest access to the device's register at offset, as a vCPU exit makes it (through
 * device_register_io: the common IRQ registers included), from CPU `cpu` (fake_read_on). */
uint32_t fake_read(struct device *dev, uint64_t offset);
uint32_t fake_read_on(struct device *dev, uint64_t offset, unsigned cpu);
void fake_write(struct device *dev, uint64_t offset, uint32_t value);

/* How many interrupts line `line` has sent (only while the guest had it enabled, as KVM's
 * irqfd would deliver them). */
unsigned fake_raised(struct device *dev, unsigned line);

/* A guest write to a doorbell port (KVM would signal the eventfd without an exit). Returns
 * false if the device set up no doorbell there. */
bool fake_ring(struct device *dev, uint16_t offset);

/* Serves the event loop for up to timeout_ms; returns how many sources it served. */
int fake_serve(struct vm *vm, int timeout_ms);

/* Calls a hypercall a device registered, as a vCPU would; SLATE_ENOSYS when none did. */
int64_t fake_hypercall(struct vm *vm, uint64_t function);

/* Waits (serving nothing) up to timeout_ms for `done(arg)`; returns its last answer. For
 * devices with threads of their own (block, net). */
bool fake_wait(bool (*done)(void *arg), void *arg, int timeout_ms);

#endif
