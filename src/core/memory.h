/* memory.h - the guest-physical memory map and the one checked way from guest address to host. */
#ifndef SLATE_MEMORY_H
#define SLATE_MEMORY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A run of guest-physical memory backed by host memory. */
struct mem_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *host;
};

#define MEM_MAX_RAM 2
#define MEM_MAX_EXTRA 4

struct guest_memory {
    struct mem_region ram[MEM_MAX_RAM]; /* [0, min(size, 3G)) and [4G, ...) */
    unsigned ram_count;
    uint64_t ram_total;
    uint64_t map_top; /* the highest guest-physical address in use (RAM or the hole) */
    /* Memory in the hole the guest may read from but never hand to a device: the info block,
     * the boot tables. */
    struct mem_region extra[MEM_MAX_EXTRA];
    unsigned extra_count;
    /* --each: one bit per page of each RAM region that slate itself wrote (a device's DMA, a
     * debugger's write), which KVM's dirty log does not see. NULL when nobody tracks. */
    _Atomic unsigned long *host_dirty[MEM_MAX_RAM];
};

/* Splits ram_size into the low and high regions (host pointers left NULL). */
void memory_layout(struct guest_memory *mem, uint64_t ram_size);

/* Reserves lazily-allocated host memory for every region: pages cost nothing until touched.
 * Returns 0 or -errno. */
int memory_map(struct guest_memory *mem);
void memory_unmap(struct guest_memory *mem);

/* The host address of guest RAM [gpa, gpa+len), or NULL when any byte of it is not RAM (past the
 * end, in the hole, overflowing, or spanning the two regions). Every guest-supplied address goes
 * through this. len may be 0 (then gpa must still be inside or at the end of a region). Whoever
 * gets a pointer may write through it: with host_dirty set, its pages count as written. */
void *memory_ram_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);

/* Counts [host, host+len) as written by slate (host_dirty), for a write through a pointer into
 * RAM that memory_ram_ptr handed out earlier. Outside RAM it does nothing. */
void memory_note_write(const struct guest_memory *mem, const void *host, uint64_t len);

/* Like memory_ram_ptr, but also accepts the hole's memory (info block, boot tables): for data
 * the guest hands to the hypervisor to read, such as console output. */
const void *memory_readable_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);

/* Records a hole region for memory_readable_ptr. Returns 0, or -1 when the table is full. */
int memory_add_extra(struct guest_memory *mem, uint64_t gpa, uint64_t size, void *host);

#endif
