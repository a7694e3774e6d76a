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

/* docs/machine.md: every register but RAX is preserved, the arguments included. */
static void check_preserved(void)
{
    static const char msg[] = "registers kept\n";
    uint64_t rax = SLATE_HC_CONSOLE_WRITE, rdi = (uint64_t)msg, rsi = sizeof(msg) - 1;
    uint64_t rcx = 0xC0C0C0C0C0C0C0C0ULL, rbx = 0xB0B0B0B0B0B0B0B0ULL, rdx = SLATE_HYPERCALL_PORT;
    register uint64_t r8 __asm__("r8") = 0x0808080808080808ULL;
    register uint64_t r9 __asm__("r9") = 0x0909090909090909ULL;
    register uint64_t r10 __asm__("r10") = 0x1010101010101010ULL;
    register uint64_t r11 __asm__("r11") = 0x1111111111111111ULL;
    register uint64_t r12 __asm__("r12") = 0x1212121212121212ULL;
    register uint64_t r13 __asm__("r13") = 0x1313131313131313ULL;
    register uint64_t r14 __asm__("r14") = 0x1414141414141414ULL;
    register uint64_t r15 __asm__("r15") = 0x1515151515151515ULL;
    __asm__ volatile("outl %%eax, %%dx"
                     : "+a"(rax), "+D"(rdi), "+S"(rsi), "+c"(rcx), "+b"(rbx), "+d"(rdx), "+r"(r8),
                       "+r"(r9), "+r"(r10), "+r"(r11), "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15)
                     :
                     : "memory");
    GUEST_ASSERT(rax == sizeof(msg) - 1);
    GUEST_ASSERT(rdi == (uint64_t)msg && rsi == sizeof(msg) - 1 && rcx == 0xC0C0C0C0C0C0C0C0ULL &&
                 rbx == 0xB0B0B0B0B0B0B0B0ULL && rdx == SLATE_HYPERCALL_PORT);
    GUEST_ASSERT(r8 == 0x0808080808080808ULL && r9 == 0x0909090909090909ULL &&
                 r10 == 0x1010101010101010ULL && r11 == 0x1111111111111111ULL &&
                 r12 == 0x1212121212121212ULL && r13 == 0x1313131313131313ULL &&
                 r14 == 0x1414141414141414ULL && r15 == 0x1515151515151515ULL);
}

KMAIN kmain(const struct slate_info *info)
{
    check_preserved();
    GUEST_ASSERT(hypercall(SLATE_HC_NOP, 0, 0, 0) == 0);
    GUEST_ASSERT(hypercall(12345, 0, 0, 0) == SLATE_ENOSYS);
    GUEST_ASSERT(slate_hypercall_mmio(SLATE_HC_NOP, 0, 0, 0, 0) == 0);
    GUEST_ASSERT(slate_hypercall_mmio(999, 0, 0, 0, 0) == SLATE_ENOSYS);
    GUEST_ASSERT(slate_inl(SLATE_CPU_INDEX_PORT) == 0);
    GUEST_ASSERT(slate_inb(SLATE_DEBUGCON_PORT) == 0xE9);

    const char *m = "port console write\n";
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)m, str_len(m), 0) == (int64_t)str_len(m));
    const char *n = "mmio console write\n";
    GUEST_ASSERT(slate_hypercall_mmio(SLATE_HC_CONSOLE_WRITE, (uint64_t)n, str_len(n), 0, 0) == (int64_t)str_len(n));
    for (const char *p = "debugcon write\n"; *p; p++)
        slate_outb(SLATE_DEBUGCON_PORT, (uint8_t)*p);

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
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, SLATE_HYPERCALL_PAGE, 4, 0) == SLATE_EFAULT);
    /* The info block is readable memory (machine.md): the command line prints from where it is. */
    const char *cmd = slate_cmdline(info);
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)cmd, str_len(cmd), 0) == (int64_t)str_len(cmd));
    puts_hc("\n");
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)m, SLATE_CONSOLE_WRITE_MAX + 1, 0) == SLATE_EINVAL);
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, ~0ULL - 2, 8, 0) == SLATE_EFAULT);
    GUEST_ASSERT(hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)m, 0, 0) == 0);
    puts_hc("hypercalls ok\n");
    slate_hypercall_mmio(SLATE_HC_EXIT, 42, 0, 0, 0);
    GUEST_ASSERT(!"exit returned");
}
