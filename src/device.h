/* device.h - the one small interface every device implements. A device file defines a
 * `const struct device_ops` and is listed in device_types[] (devices.c); the core allocates its
 * ports, window and interrupt lines, and handles the common IRQ_VECTOR/IRQ_CPU registers. */
#ifndef SLATE_DEVICE_H
#define SLATE_DEVICE_H

#include "bus.h"
#include "irq.h"
#include "options.h"

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct device;

struct device_ops {
    const char *name;     /* instance names are name + index: "serial0" */
    uint16_t type;        /* SLATE_DEV_* */
    uint16_t version;     /* register layout version */
    uint16_t port_count;  /* ports the device decodes, a multiple of 4 */
    uint64_t window_size; /* bytes of shared memory, 0 for none */
    bool window_dirty_log; /* KVM tracks the pages the guest writes (KVM_GET_DIRTY_LOG) */
    uint16_t irq_reg;     /* port offset of line 0's IRQ_VECTOR */
    uint16_t irq_count;   /* interrupt lines */
    /* How many instances this configuration asks for (NULL: exactly one). */
    unsigned (*instances)(const struct slate_config *cfg);
    /* Checks instance `index`'s configuration before KVM is opened (files exist, can be locked,
     * addresses parse), acquiring nothing. Logs "OPTION or PATH: why" and returns -1 (may be
     * NULL). */
    int (*check)(const struct slate_config *cfg, unsigned index);
    /* Allocates dev->state and connects backends. Returns 0 or -errno after logging why. */
    int (*setup)(struct device *dev, unsigned index);
    /* Register access at io->offset, outside the IRQ registers (which the core serves). */
    void (*pio)(struct device *dev, struct bus_io *io);
    /* A line got a vector: if its condition already holds, the device raises it now, so events
     * that came before the guest set up its interrupts are not lost (may be NULL). */
    void (*irq_enabled)(struct device *dev, unsigned line);
    /* Releases what setup acquired (may be NULL). Runs after every vCPU has stopped. */
    void (*teardown)(struct device *dev);
};

#define DEVICE_MAX_IRQS 8

struct device {
    const struct device_ops *ops;
    struct vm *vm;
    char name[16];
    uint16_t port_base;
    uint64_t window_gpa;
    void *window; /* host mapping of the window */
    uint64_t window_bytes; /* its mapped size: window_size rounded up as device_plan does */
    unsigned window_slot; /* its KVM memory slot */
    struct irq_line irq[DEVICE_MAX_IRQS];
    void *state;
};

/* A guest access to one of dev's ports (opaque is the device): the common IRQ_VECTOR/IRQ_CPU
 * registers, then ops->pio. The port bus calls it; so do the fuzz harnesses. */
void device_register_io(void *opaque, struct bus_io *io);

/* Every device type slate knows, in the order they are created. */
extern const struct device_ops *const device_types[];

#define DEVICE_MAX 32

/* Where one device instance sits in the machine: the same for --check and the real run. */
struct device_place {
    const struct device_ops *ops;
    unsigned index;         /* instance number: serial0, block1 */
    uint16_t port_base;     /* 0x1000 + 0x100 per device, in creation order */
    uint64_t window_gpa;    /* 0 without a window */
    uint64_t window_bytes;  /* window_size rounded up to 1 MiB (KVM slots are whole pages) */
};

/* Lays out every device instance cfg asks for. Returns how many, or -1 with err set when there
 * are more than DEVICE_MAX or their windows do not fit below SLATE_DEVICE_WINDOWS_END. */
int device_plan(const struct slate_config *cfg, struct device_place places[DEVICE_MAX], char *err,
                size_t errlen);

#endif
