/* Every hypercall through the port and the MMIO page, the CPU-index port and the debug console.
 * Console writes go through an alias mapping whose two pages are swapped, which proves the
 * hypervisor translates the caller's virtual address page by page. */
#include "guest.h"

#define ALIAS_VA 0x8000000000ULL /* PML4 slot 1: nothing maps it at boot */

static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static uint64_t pt[512] __attribute__((aligned(4096)));
static char pages[2][4096] __attribute__((aligned(4096)));

static void map_alias(void)
{
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    uint64_t *pml4 = (uint64_t *)(cr3 & ~0xFFFULL);
    pml4[1] = (uint64_t)pdpt | 3;
    pdpt[0] = (uint64_t)pd | 3;
    pd[0] = (uint64_t)pt | 3;
    pt[0] = (uint64_t)pages[1] | 3; /* alias page 0 -> physical page 1 */
    pt[1] = (uint64_t)pages[0] | 3; /* alias page 1 -> physical page 0 */
    __asm__ volatile("mov %0, %%cr3" ::"r"(cr3) : "memory");
}

KMAIN kmain(const struct slate_info *info)
{
    (void)info;
    GUEST_ASSERT(hypercall(SLATE_HC_NOP, 0, 0, 0) == 0);
    GUEST_ASSERT(hypercall(12345, 0, 0, 0) == SLATE_ENOSYS);
    GUEST_ASSERT(hypercall_mmio(SLATE_HC_NOP, 0, 0) == 0);
    GUEST_ASSERT(hypercall_mmio(999, 0, 0) == SLATE_ENOSYS);
    GUEST_ASSERT(inl(SLATE_CPU_INDEX_PORT) == 0);
    GUEST_ASSERT(inb(SLATE_DEBUGCON_PORT) == 0xE9);

    const char *m = "port console write\n";
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)m, str_len(m), 0) == (int64_t)str_len(m));
    const char *n = "mmio console write\n";
    GUEST_ASSERT(hypercall_mmio(SLATE_HC_CONSOLE_WRITE, (uint64_t)n, str_len(n)) == (int64_t)str_len(n));
    for (const char *p = "debugcon write\n"; *p; p++)
        outb(SLATE_DEBUGCON_PORT, (uint8_t)*p);

    map_alias();
    const char *tail = "[split ", *head = "pages]\n";
    for (int i = 0; i < 7; i++) {
        pages[1][4096 - 7 + i] = tail[i]; /* end of alias page 0 */
        pages[0][i] = head[i];            /* start of alias page 1 */
    }
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, ALIAS_VA + 4096 - 7, 14, 0) == 14);
    /* Unmapped, half-mapped, in the hole, too long, wrapping: errors, and nothing printed. */
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, ALIAS_VA + 3 * 4096, 4, 0) == SLATE_EFAULT);
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, ALIAS_VA + 2 * 4096 - 2, 4, 0) == SLATE_EFAULT);
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, SLATE_LAPIC_ADDR, 4, 0) == SLATE_EFAULT);
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)m, SLATE_CONSOLE_WRITE_MAX + 1, 0) == SLATE_EINVAL);
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, ~0ULL - 2, 8, 0) == SLATE_EFAULT);
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)m, 0, 0) == 0);
    puts_hc("hypercalls ok\n");
    hypercall_mmio(SLATE_HC_EXIT, 42, 0);
    GUEST_ASSERT(!"exit returned");
}
