/* guest_ram.h - the fixture of the unit tests that load kernels into guest RAM: 16 MiB, laid
 * out and mapped afresh for each test by cmocka's setup and torn down after it. */
#ifndef SLATE_UNIT_GUEST_RAM_H
#define SLATE_UNIT_GUEST_RAM_H

#include "memory.h"

#include <string.h>

static struct guest_memory mem;

static int setup(void **state)
{
    (void)state;
    memset(&mem, 0, sizeof(mem));
    memory_layout(&mem, 16ULL << 20);
    return memory_map(&mem);
}

static int teardown(void **state)
{
    (void)state;
    memory_unmap(&mem);
    return 0;
}

#endif
