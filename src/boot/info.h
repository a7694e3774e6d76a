/* info.h - builds the info block the guest finds at SLATE_INFO_ADDR (unit-tested). */
#ifndef SLATE_INFO_H
#define SLATE_INFO_H

#include "loader.h"
#include "memory.h"
#include "slate/slate.h"

struct info_input {
    const struct guest_memory *mem;
    unsigned cpu_count;
    uint64_t tsc_khz;
    uint64_t boot_tsc;
    uint64_t boot_unix_ns;
    uint64_t boot_stack_top;
    const char *cmdline; /* may be NULL */
    const struct boot_plan *plan;
    const struct slate_device *devices;
    unsigned device_count;
};

/* Writes the block into buf (cap bytes, zeroed first). Returns its size, or -1 if it does not fit. */
long info_build(void *buf, size_t cap, const struct info_input *in);

#endif
