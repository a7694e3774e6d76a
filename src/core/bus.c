/* bus.c - a sorted table of address ranges with overlap rejection and binary-search dispatch. */
#include "bus.h"

#include <errno.h>
#include <string.h>

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const char *name, bus_handler fn,
                 void *opaque)
{
    if (len == 0 || base + len < base)
        return -EINVAL;
    if (bus->count == BUS_MAX_RANGES)
        return -ENOSPC;
    unsigned at = 0;
    while (at < bus->count && bus->ranges[at].base < base)
        at++;
    if (at > 0 && bus->ranges[at - 1].base + bus->ranges[at - 1].len > base)
        return -EEXIST;
    if (at < bus->count && base + len > bus->ranges[at].base)
        return -EEXIST;
    memmove(&bus->ranges[at + 1], &bus->ranges[at], (bus->count - at) * sizeof(bus->ranges[0]));
    bus->ranges[at] = (struct bus_range){base, len, name, fn, opaque};
    bus->count++;
    return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
    unsigned lo = 0, hi = bus->count;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const struct bus_range *r = &bus->ranges[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr - r->base >= r->len)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

bool bus_dispatch(const struct bus *bus, uint64_t addr, struct bus_io *io)
{
    const struct bus_range *r = bus_find(bus, addr);
    if (!r)
        return false;
    io->offset = addr - r->base;
    r->fn(r->opaque, io);
    return true;
}
