/* slate/guest.h - small freestanding helpers for a kernel running on slate: port I/O, the
 * hypercall (through the port or the MMIO page), and finding a device or the command line in
 * the info block. Optional: each is a few lines over slate.h, which documents the machine; the
 * demo OS, the test kernels and the tutorial all use this one. C (GNU C) only; 64-bit or 32-bit
 * code (in 32-bit mode the arguments are the 32-bit registers). */
#ifndef SLATE_GUEST_H
#define SLATE_GUEST_H

#include "slate.h"

static inline void slate_outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" ::"a"(value), "Nd"(port));
}

static inline void slate_outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %0, %1" ::"a"(value), "Nd"(port));
}

static inline uint8_t slate_inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline uint32_t slate_inl(uint16_t port)
{
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

/* Hypercall `function` (SLATE_HC_*) with its arguments in RDI, RSI, RCX and RBX; returns RAX:
 * the result, or a negative SLATE_E* code. One `out` to SLATE_HYPERCALL_PORT: every register but
 * RAX is preserved. */
static inline long slate_hypercall(uint32_t function, unsigned long rdi, unsigned long rsi,
                                   unsigned long rcx, unsigned long rbx)
{
    long result;
    __asm__ volatile("outl %%eax, %%dx"
                     : "=a"(result)
                     : "a"(function), "d"(SLATE_HYPERCALL_PORT), "D"(rdi), "S"(rsi), "c"(rcx), "b"(rbx)
                     : "memory");
    return result;
}

/* The same call through the MMIO hypercall page (for code that would rather not use ports):
 * a 32-bit write of the function to SLATE_HYPERCALL_PAGE. */
static inline long slate_hypercall_mmio(uint32_t function, unsigned long rdi, unsigned long rsi,
                                        unsigned long rcx, unsigned long rbx)
{
    long result;
    volatile uint32_t *page = (volatile uint32_t *)(unsigned long)SLATE_HYPERCALL_PAGE;
    __asm__ volatile("movl %%eax, %1"
                     : "=a"(result), "=m"(*page)
                     : "a"(function), "D"(rdi), "S"(rsi), "c"(rcx), "b"(rbx)
                     : "memory");
    return result;
}

/* The `nth` device (0: the first) of `type` (SLATE_DEV_*) in the info block, or 0 when there is
 * none. */
static inline const struct slate_device *slate_find_device(const struct slate_info *info,
                                                           uint16_t type, unsigned nth)
{
    const uint8_t *table = (const uint8_t *)info + info->device_offset;
    for (uint32_t i = 0; i < info->device_count; i++) {
        const struct slate_device *device = (const void *)(table + i * info->device_entry_size);
        if (device->type == type && nth-- == 0)
            return device;
    }
    return 0;
}

/* A full barrier: every store before it is visible before any load after it (a locked add to
 * the stack, which needs no SSE2, unlike mfence). */
static inline void slate_full_barrier(void)
{
#ifdef __x86_64__
    __asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc");
#else
    __asm__ volatile("lock; addl $0, (%%esp)" ::: "memory", "cc");
#endif
}

/* Call after incrementing a block ring's `submitted`: whether NOTIFY must be written. Not while
 * the device says it is busy (version 2); a version-1 device leaves `device_busy` 0, so it is
 * always rung. The barrier keeps the load of `device_busy` after the store to `submitted`:
 * without it the device could stop just as the guest decides not to ring. */
static inline int slate_block_notify_needed(volatile struct slate_block_ring *ring)
{
    slate_full_barrier();
    return !ring->device_busy;
}

/* The same for a network card's transmit ring, after advancing tx.head: whether TX_NOTIFY must
 * be written. */
static inline int slate_net_notify_needed(volatile struct slate_net_window *window)
{
    slate_full_barrier();
    return !window->tx.busy;
}

/* The kernel command line (--append), NUL-terminated. */
static inline const char *slate_cmdline(const struct slate_info *info)
{
    return (const char *)info + info->cmdline_offset;
}

#endif
