/* x86.c - boot GDT, identity-mapped page tables and entry register state for each mode. */
#include "x86.h"

#include "slate/slate.h"

#include <string.h>

#define PTE_PRESENT (1ULL << 0)
#define PTE_WRITE (1ULL << 1)
#define PTE_ACCESSED (1ULL << 5)
#define PTE_DIRTY (1ULL << 6)
#define PTE_LARGE (1ULL << 7)
#define PAGE_2M (2ULL << 20)
#define PAGE_1G (1ULL << 30)

/* GDT descriptors with the accessed bit preset, so the CPU never writes to the table. */
static const uint64_t boot_gdt[] = {
    0,
    0x00CF9B000000FFFFULL, /* 0x08: code, 32-bit, base 0, limit 4 GiB */
    0x00CF93000000FFFFULL, /* 0x10: data, writable, base 0, limit 4 GiB */
    0x00AF9B000000FFFFULL, /* 0x18: code, 64-bit (L=1) */
};

/* mov $1,%eax; xor %edi,%edi; mov $0xffff,%edx; out %eax,(%dx); hlt; jmp .-1
 * The same bytes mean the same in 32-bit and 64-bit mode: exit hypercall with code 0. */
static const uint8_t exit_stub[] = {0xB8, 0x01, 0x00, 0x00, 0x00, 0x31, 0xFF, 0xBA, 0xFF,
                                    0xFF, 0x00, 0x00, 0xEF, 0xF4, 0xEB, 0xFD};

/* cli; hlt; jmp .-3: a CPU started by the start hypercall whose entry function returns. */
static const uint8_t park_stub[] = {0xFA, 0xF4, 0xEB, 0xFD};

uint64_t x86_boot_tables_size(uint64_t map_top)
{
    uint64_t pds = (map_top + PAGE_1G - 1) / PAGE_1G;
    return BOOT_PD_OFFSET + pds * 0x1000;
}

uint64_t x86_write_boot_tables(void *area, uint64_t area_size, uint64_t area_gpa, uint64_t map_top)
{
    uint64_t pds = (map_top + PAGE_1G - 1) / PAGE_1G;
    if (pds > 512 || x86_boot_tables_size(map_top) > area_size)
        return 0;
    uint8_t *base = area;
    memcpy(base + BOOT_GDT_OFFSET, boot_gdt, sizeof(boot_gdt));
    memcpy(base + BOOT_EXIT_STUB_OFFSET, exit_stub, sizeof(exit_stub));
    memcpy(base + BOOT_PARK_STUB_OFFSET, park_stub, sizeof(park_stub));
    uint64_t *pml4 = (uint64_t *)(base + BOOT_PML4_OFFSET);
    uint64_t *pdpt = (uint64_t *)(base + BOOT_PDPT_OFFSET);
    /* Accessed and dirty bits are preset for the same reason as in the GDT. */
    const uint64_t table = PTE_PRESENT | PTE_WRITE | PTE_ACCESSED;
    pml4[0] = (area_gpa + BOOT_PDPT_OFFSET) | table;
    for (uint64_t i = 0; i < pds; i++) {
        uint64_t *pd = (uint64_t *)(base + BOOT_PD_OFFSET + i * 0x1000);
        pdpt[i] = (area_gpa + BOOT_PD_OFFSET + i * 0x1000) | table;
        for (uint64_t j = 0; j < 512; j++)
            pd[j] = (i * PAGE_1G + j * PAGE_2M) | table | PTE_DIRTY | PTE_LARGE;
    }
    return area_gpa + BOOT_PML4_OFFSET;
}

static struct kvm_segment flat_segment(uint16_t selector, bool code, bool long_mode)
{
    return (struct kvm_segment){
        .base = 0,
        .limit = 0xFFFFFFFF,
        .selector = selector,
        .type = code ? 0xB : 0x3, /* execute/read or read/write, accessed */
        .present = 1,
        .dpl = 0,
        .db = long_mode && code ? 0 : 1,
        .s = 1,
        .l = long_mode && code,
        .g = 1,
    };
}

static void set_data_segments(struct kvm_sregs *s, struct kvm_segment seg)
{
    s->ds = s->es = s->fs = s->gs = s->ss = seg;
}

void x86_entry_sregs(struct kvm_sregs *s, enum entry_mode mode, uint64_t gdt_gpa, uint64_t cr3)
{
    if (mode == ENTRY_REAL) {
        /* KVM resets CS to F000:FFF0 with base 0xFFFF0000; slate starts at 0000:0000. */
        s->cs.selector = 0;
        s->cs.base = 0;
        return;
    }
    bool lm = mode == ENTRY_LONG;
    s->gdt.base = gdt_gpa;
    s->gdt.limit = sizeof(boot_gdt) - 1;
    s->idt.base = 0;
    s->idt.limit = 0;
    s->cs = flat_segment(lm ? SLATE_SEL_CODE64 : SLATE_SEL_CODE32, true, lm);
    set_data_segments(s, flat_segment(SLATE_SEL_DATA, false, lm));
    /* SSE on (OSFXSR), so that compiled C code that uses it runs from the first instruction. */
    s->cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE;
    s->cr4 = X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
    s->efer = 0;
    if (lm) {
        s->cr0 |= X86_CR0_PG | X86_CR0_WP | X86_CR0_AM;
        s->cr4 |= X86_CR4_PAE;
        s->cr3 = cr3;
        s->efer = X86_EFER_LME | X86_EFER_LMA;
    }
}

void x86_limine_sregs(struct kvm_sregs *s, uint64_t cr3, uint64_t gdt_base, uint16_t gdt_limit,
                      uint16_t code_sel, uint16_t data_sel)
{
    s->gdt.base = gdt_base;
    s->gdt.limit = gdt_limit;
    s->idt.base = 0;
    s->idt.limit = 0;
    s->cs = flat_segment(code_sel, true, true);
    set_data_segments(s, flat_segment(data_sel, false, true));
    s->ldt.selector = 0;
    s->ldt.unusable = 1;
    s->tr.base = 0;
    s->tr.limit = 0;
    s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_WP | X86_CR0_PG;
    s->cr4 = X86_CR4_PAE;
    s->cr3 = cr3;
    s->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE;
}

void x86_entry_regs(struct kvm_regs *r, enum entry_mode mode, uint64_t entry, uint64_t rsp,
                    uint64_t info_gpa)
{
    memset(r, 0, sizeof(*r));
    r->rflags = 0x2; /* bit 1 is always set; IF clear: interrupts off */
    r->rip = entry;
    r->rbx = info_gpa;
    r->rsp = rsp;
    if (mode == ENTRY_LONG)
        r->rdi = info_gpa;
}

uint64_t x86_entry_stack(uint8_t *stack_top, enum entry_mode mode, uint64_t top_gpa,
                         uint64_t return_gpa, uint64_t info_gpa)
{
    if (mode == ENTRY_LONG) {
        /* At a 64-bit function's entry RSP+8 is 16-byte aligned: [RSP] is the return address. */
        uint64_t ret = return_gpa;
        memcpy(stack_top - 8, &ret, 8);
        return top_gpa - 8;
    }
    if (mode == ENTRY_PROTECTED) {
        /* cdecl: [ESP] return address, [ESP+4] the argument; ESP+4 16-byte aligned. */
        uint32_t frame[2] = {(uint32_t)return_gpa, (uint32_t)info_gpa};
        memcpy(stack_top - 20, frame, sizeof(frame));
        return top_gpa - 20;
    }
    return 0;
}
