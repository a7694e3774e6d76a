/* Page tables that point back at themselves, as a buggy or hostile kernel might build: a PML4
 * whose first entry keeps the boot mapping (so this code keeps running) and whose other 511
 * entries point at the PML4 itself. Walking every mapping of that would visit 511^3 tables; the
 * monitor's "info mem" must still answer. Halts once CR3 holds the new tables. */
#include "guest.h"

static uint64_t pml4[512] __attribute__((aligned(4096)));

KMAIN kmain(const struct slate_info *info)
{
    (void)info;
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    const uint64_t *boot = (const uint64_t *)(cr3 & ~0xFFFULL);
    pml4[0] = boot[0];
    for (int i = 1; i < 512; i++)
        pml4[i] = (uint64_t)pml4 | 3; /* present, writable: a table, never a page */
    __asm__ volatile("mov %0, %%cr3" ::"r"((uint64_t)pml4) : "memory");
    puts_hc("tables ready\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}
