/* Kernels that die of a broken exception setup, one per mode, for the triple-fault explainer:
 *   noidt     an empty IDT (limit 0), then ud2
 *   badstack  a #UD gate, but RSP points at unmapped memory: delivering #UD faults (a double
 *             fault), and there is no #DF gate
 *   notss     the same with a #DF gate that asks for IST1, and no TSS loaded
 *   ist0      the same with a TSS whose IST1 is 0
 * and kernels that hang, for the hang report (each prints "hanging"):
 *   spin      spins in inner(), called by outer(), both with frame pointers
 *   clihlt    cli; hlt
 *   noeoi     a 10 ms timer whose handler acknowledges the device but never EOIs, then sti; hlt
 *   noack     the same timer whose handler EOIs but never acknowledges the device
 * and kernels whose handlers recover, for --trace exc (each prints "survived" at the end):
 *   exc       #UD, then #PF (a write to unmapped memory), then #GP (a non-canonical address)
 *   pfloop    a #PF handler that returns without fixing anything: the same fault for ever
 * Each faulting one prints "about to fault" first. */
#include "guest.h"

#define UNMAPPED 0x7000000000ULL

/* A 64-bit TSS: IST1 at 0x24. */
struct __attribute__((packed)) tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3, iomap;
};
static struct tss tss __attribute__((aligned(16)));

/* The boot GDT's three descriptors, then a 16-byte TSS descriptor at 0x20. */
static uint64_t gdt[6] __attribute__((aligned(16)));

static void load_tss(void)
{
    const uint64_t *boot = (const uint64_t *)SLATE_BOOT_TABLES;
    for (int i = 0; i < 4; i++)
        gdt[i] = boot[i];
    uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
    gdt[4] = (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 | 0x89ULL << 40 | ((base >> 24) & 0xFF) << 56;
    gdt[5] = base >> 32;
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } d = {sizeof(gdt) - 1, (uint64_t)gdt};
    __asm__ volatile("lgdt %0; ltr %w1" ::"m"(d), "r"(0x20) : "memory");
}

__attribute__((interrupt)) static void on_ud(struct interrupt_frame *f)
{
    (void)f;
    puts_hc("#UD handled\n");
    guest_exit(1);
}

__attribute__((interrupt)) static void on_df(struct interrupt_frame *f, uint64_t error)
{
    (void)f, (void)error;
    puts_hc("#DF handled\n");
    guest_exit(1);
}

static volatile uint64_t spins;

__attribute__((noinline, optimize("no-omit-frame-pointer"))) static void inner(void)
{
    for (;;)
        spins++;
}

__attribute__((noinline, optimize("no-omit-frame-pointer"))) static void outer(void)
{
    inner();
    spins = 0; /* (not a tail call: outer stays on the stack) */
}

static const struct slate_device *timer;

static volatile unsigned ticks;

__attribute__((interrupt)) static void on_tick_no_ack(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    lapic_eoi(); /* but IRQ_STATUS stays set: the timer raises no second interrupt */
}

__attribute__((interrupt)) static void on_tick(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    slate_outl(timer->port_base + SLATE_TIMER_IRQ_STATUS, 1); /* acknowledged, but no EOI */
}

static void hang(const struct slate_info *info, const char *mode)
{
    puts_hc("hanging\n");
    if (str_eq(mode, "spin"))
        outer();
    if (str_eq(mode, "clihlt"))
        for (;;)
            __asm__ volatile("cli; hlt");
    timer = slate_find_device(info, SLATE_DEV_TIMER, 0);
    idt_set(0x40, str_eq(mode, "noack") ? on_tick_no_ack : on_tick);
    idt_load();
    lapic_enable();
    slate_outl(timer->port_base + timer->irq_reg + SLATE_IRQ_VECTOR, 0x40);
    uint16_t bank = (uint16_t)(timer->port_base + SLATE_TIMER_BANK(0));
    slate_outl(bank + SLATE_TIMER_DELAY_LO, 10000000);
    slate_outl(bank + SLATE_TIMER_PERIOD_LO, 10000000);
    slate_outl(bank + SLATE_TIMER_CTRL, SLATE_TIMER_START);
    while (!ticks)
        __asm__ volatile("sti; hlt");
    /* What this local APIC did with the vector nobody EOI'd (the hang report must agree). */
    puts_hc(mmio_read32(SLATE_LAPIC_ADDR + 0x100 + 0x10 * (0x40 / 32)) & 1u << (0x40 % 32)
                ? "vector 0x40 in service\n" : "vector 0x40 not in service\n");
    for (;;)
        __asm__ volatile("sti; hlt");
}

/* Where a faulting access resumes: the handlers put it in the frame's RIP. */
struct frame {
    uint64_t rip, cs, rflags, rsp, ss;
};
static volatile uint64_t resume_at;
static volatile uint64_t walk; /* pfwalk: the #PF handler moves the next access on a page */

__attribute__((interrupt)) static void skip_ud2(struct interrupt_frame *f)
{
    ((struct frame *)f)->rip += 2;
}

__attribute__((interrupt)) static void recover_pf(struct interrupt_frame *f, uint64_t error)
{
    (void)error;
    walk += 4096;
    if (resume_at)
        ((struct frame *)f)->rip = resume_at;
}

__attribute__((interrupt)) static void skip_div(struct interrupt_frame *f)
{
    ((struct frame *)f)->rip += 3; /* div %rcx */
}

__attribute__((interrupt)) static void recover_gp(struct interrupt_frame *f, uint64_t error)
{
    (void)error;
    ((struct frame *)f)->rip = resume_at;
}

static void set_gate(uint8_t vector, uint64_t handler, uint8_t ist);

/* A load or store at addr that faults, then goes on at the next label. */
#define FAULTING(insn, addr)                                                                       \
    __asm__ volatile("lea 1f(%%rip), %%rcx; mov %%rcx, %0; " insn "; 1: movq $0, %0"              \
                     : "+m"(resume_at) : "a"(addr) : "rcx", "memory")

static void exceptions(const char *mode)
{
    set_gate(0, (uint64_t)skip_div, 0);
    set_gate(6, (uint64_t)skip_ud2, 0);
    set_gate(13, (uint64_t)recover_gp, 0);
    set_gate(14, (uint64_t)recover_pf, 0);
    idt_load();
    /* The tracer arms its breakpoints when it sees the new IDT: at the next exit or kick. */
    puts_hc("idt loaded\n");
    for (volatile int i = 0; i < 100000; i++)
        ;
    if (str_eq(mode, "pfloop")) {
        resume_at = 0; /* the handler changes nothing: the write faults again, for ever */
        *(volatile uint64_t *)UNMAPPED = 3;
    }
    if (str_eq(mode, "excde")) { /* a division by zero, which the handler skips */
        __asm__ volatile("xor %%ecx, %%ecx; div %%rcx" ::"a"(1), "d"(0) : "rcx");
        puts_hc("survived\n");
        guest_exit(0);
    }
    if (str_eq(mode, "pfwalk")) /* the same store for ever, each time a page further (CR2 moves) */
        __asm__ volatile("lea 1f(%%rip), %%rcx; mov %%rcx, %0\n"
                         "1: mov %1, %%rax; add %2, %%rax; movq $3, (%%rax)"
                         : "+m"(resume_at) : "m"(walk), "r"(UNMAPPED) : "rax", "rcx", "memory");
    __asm__ volatile("ud2");
    FAULTING("movq $1, (%%rax)", UNMAPPED);
    FAULTING("movq (%%rax), %%rdx", 0x8000000000000000ULL);
    puts_hc("survived\n");
    guest_exit(0);
}

static void set_gate(uint8_t vector, uint64_t handler, uint8_t ist)
{
    idt[vector] = (struct idt_entry){(uint16_t)handler, SLATE_SEL_CODE64, ist, 0x8E,
                                     (uint16_t)(handler >> 16), (uint32_t)(handler >> 32), 0};
}

KMAIN kmain(const struct slate_info *info)
{
    const char *mode = cmdline(info);
    if (str_eq(mode, "spin") || str_eq(mode, "clihlt") || str_eq(mode, "noeoi") || str_eq(mode, "noack"))
        hang(info, mode);
    if (str_eq(mode, "exc") || str_eq(mode, "pfloop") || str_eq(mode, "pfwalk") || str_eq(mode, "excde"))
        exceptions(mode);
    puts_hc("about to fault\n");
    if (str_eq(mode, "longrun")) { /* far more instructions between its last exit and the fault
                                      than a crash replay steps through (REPLAY_MAX_STEPS) */
        for (volatile unsigned i = 0; i < 30000; i = i + 1)
            ;
        struct __attribute__((packed)) { uint16_t limit; uint64_t base; } empty = {0, 0};
        __asm__ volatile("lidt %0; ud2" ::"m"(empty));
    }
    if (str_eq(mode, "e9noidt")) /* console output through port 0xE9 just before the crash */
        for (const char *p = "fault ahead\n"; *p; p++)
            slate_outb(SLATE_DEBUGCON_PORT, (uint8_t)*p);
    if (str_eq(mode, "noidt-gp") || str_eq(mode, "noidt-de")) { /* an empty IDT, then a #GP or #DE */
        struct __attribute__((packed)) { uint16_t limit; uint64_t base; } empty = {0, 0};
        __asm__ volatile("lidt %0" ::"m"(empty));
        if (str_eq(mode, "noidt-gp"))
            __asm__ volatile("movq $1, (%0)" ::"r"(0x8000000000000000ULL) : "memory");
        __asm__ volatile("xor %%ecx, %%ecx; div %%rcx" ::"a"(1), "d"(0) : "rcx");
    }
    if (str_eq(mode, "noidt") || str_eq(mode, "e9noidt")) {
        struct __attribute__((packed)) { uint16_t limit; uint64_t base; } empty = {0, 0};
        __asm__ volatile("lidt %0; ud2" ::"m"(empty));
    }
    set_gate(6, (uint64_t)on_ud, 0);
    if (str_eq(mode, "overflow")) { /* a stack at 4 MiB + 4 KiB whose page below is unmapped */
        static uint64_t pt[512] __attribute__((aligned(4096)));
        uint64_t cr3;
        __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
        const uint64_t addr = 0x000FFFFFFFFFF000ULL;
        uint64_t *pml4 = (uint64_t *)(cr3 & addr), *pdpt = (uint64_t *)(pml4[0] & addr);
        uint64_t *pd = (uint64_t *)(pdpt[0] & addr);
        for (unsigned i = 1; i < 512; i++)
            pt[i] = (0x400000 + i * 4096ULL) | 3;
        pd[2] = (uint64_t)pt | 3;
        __asm__ volatile("mov %0, %%cr3" ::"r"(cr3) : "memory");
        idt_load();
        __asm__ volatile("mov %0, %%rsp; ud2" ::"r"(0x401000ULL) : "memory");
    }
    if (str_eq(mode, "notss") || str_eq(mode, "ist0"))
        set_gate(8, (uint64_t)on_df, 1);
    if (str_eq(mode, "ist0"))
        load_tss(); /* its IST1 stays 0 */
    idt_load();
    __asm__ volatile("mov %0, %%rsp; ud2" ::"r"(UNMAPPED) : "memory"); /* no stack for the frame */
    guest_exit(0);
}
