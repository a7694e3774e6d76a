/* bus.h - dispatches port and MMIO accesses to handlers by address range (unit-tested). */
#ifndef SLATE_BUS_H
#define SLATE_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;

/* One access as a handler sees it: an offset into its range, never a kvm_run. */
struct bus_io {
    uint64_t offset;  /* from the start of the registered range */
    unsigned width;   /* 1, 2, 4 or 8 bytes */
    bool is_write;
    uint64_t value;   /* in: the value written; out: the value read (low `width` bytes) */
    struct vcpu *cpu; /* the accessing vCPU (the core's), or NULL from a test */
    unsigned cpu_index; /* its index: all a device may know of it */
};

typedef void (*bus_handler)(void *opaque, struct bus_io *io);

struct bus_range {
    uint64_t base;
    uint64_t len;
    const char *name;
    bus_handler fn;
    void *opaque;
};

#define BUS_MAX_RANGES 128

/* Ranges are registered before any vCPU runs and never change after, so dispatch takes no lock. */
struct bus {
    struct bus_range ranges[BUS_MAX_RANGES]; /* sorted by base */
    unsigned count;
};

/* Returns 0, -EEXIST when [base, base+len) overlaps a registered range, -EINVAL for len 0 or a
 * wrapping range, -ENOSPC when full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name, bus_handler fn,
                 void *opaque);

/* The range holding addr, or NULL. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr);

/* Calls the handler for addr with io->offset set; returns false when nothing claims addr. An
 * access may extend past the end of the range (a 32-bit `out` to the last port of a range, as
 * with the hypercall port 0xFFFF): handlers check offset and width themselves. */
bool bus_dispatch(const struct bus *bus, uint64_t addr, struct bus_io *io);

#endif
