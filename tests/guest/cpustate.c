/* The CPU-state round trip (cpu_state.c): with SLATE_TEST_CPU_ROUNDTRIP set, a debug-break
 * hypercall makes slate take this CPU's whole state out, put a different one in, and put the saved
 * one back. The kernel sets everything it can to values of its own first and checks afterwards
 * that nothing changed: general registers and flags, control registers and tables, the MSRs a
 * kernel uses, x87/SSE (and AVX where offered) registers, debug registers, and the local APIC
 * (its registers, and its periodic timer still firing). One line per part: "same: PART" or
 * "CHANGED: PART". With the command line "avx", AVX is turned on and the YMM registers checked
 * too (XSAVE and AVX instructions fail KVM's emulation on a PVM host). */
#include "guest.h"

#define VEC_TIMER 0x40
#define MSR_COUNT 10

static const uint32_t msr_index[MSR_COUNT] = {0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084,
                                              0xC0000102, 0xC0000100, 0xC0000101, 0x174,
                                              0x175,      0x176};
static volatile uint32_t ticks;
static uint8_t fx_before[512] __attribute__((aligned(16))), fx_after[512] __attribute__((aligned(16)));
static uint8_t ymm_before[16 * 32] __attribute__((aligned(32))), ymm_after[16 * 32] __attribute__((aligned(32)));
static bool avx;
static uint32_t avx_offset;

__attribute__((interrupt)) static void on_timer(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    lapic_eoi();
}

static uint64_t rdmsr(uint32_t index)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
    return (uint64_t)hi << 32 | lo;
}

static void wrmsr(uint32_t index, uint64_t v)
{
    __asm__ volatile("wrmsr" ::"c"(index), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static void report(const char *part, bool same)
{
    puts_hc(same ? "same: " : "CHANGED: ");
    puts_hc(part);
    puts_hc("\n");
}

static bool bytes_equal(const uint8_t *a, const uint8_t *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* x87 ST0-7, MXCSR and XMM0-15 loaded with patterns through FXRSTOR (a PVM host cannot emulate
 * x87 and SSE loads such as fld1 or ldmxcsr), and the YMM upper halves where AVX is on. */
static void load_vector_state(void)
{
    static uint8_t image[512] __attribute__((aligned(16)));
    __asm__ volatile("fxsave %0" : "=m"(image));
    for (unsigned i = 0; i < 8; i++)
        for (unsigned b = 0; b < 10; b++)
            image[32 + 16 * i + b] = (uint8_t)(i * 16 + b + 1); /* ST0-7 */
    image[4] = 0xFF; /* every x87 register valid */
    uint32_t mxcsr = 0x1F80 | 0x6000; /* round toward zero */
    for (unsigned b = 0; b < 4; b++)
        image[24 + b] = (uint8_t)(mxcsr >> (8 * b));
    for (unsigned i = 160; i < 416; i++)
        image[i] = (uint8_t)(0xA5 ^ (i * 37)); /* XMM0-15 */
    __asm__ volatile("fxrstor %0" ::"m"(image));
    if (avx) { /* the YMM upper halves through XRSTOR too: its AVX component */
        static uint8_t area[4096] __attribute__((aligned(64)));
        __asm__ volatile("xsave %0" : "=m"(area) : "a"(7), "d"(0));
        for (unsigned i = 0; i < 256; i++)
            area[avx_offset + i] = (uint8_t)(0x5A ^ (i * 29));
        area[512] |= 4; /* XSTATE_BV: the AVX component is in the area */
        __asm__ volatile("xrstor %0" ::"m"(area), "a"(7), "d"(0));
    }
}

static void save_vector_state(uint8_t *fx, uint8_t *ymm)
{
    __asm__ volatile("fxsave %0" : "=m"(*(uint8_t(*)[512])fx));
    if (avx) {
        static uint8_t area[4096] __attribute__((aligned(64)));
        __asm__ volatile("xsave %0" : "=m"(area) : "a"(7), "d"(0));
        for (unsigned i = 0; i < 256; i++)
            ymm[i] = area[avx_offset + i];
    }
}

/* CPUID says AVX and XSAVE: turn them on (CR4.OSXSAVE, XCR0 = x87 | SSE | AVX). */
static void enable_avx(void)
{
    uint32_t a = 1, b, c, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
    if (!(c & (1u << 26)) || !(c & (1u << 28)))
        return;
    a = 0xD, c = 2;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    avx_offset = b; /* where XSAVE keeps the YMM upper halves */
    uint64_t cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("mov %0, %%cr4" ::"r"(cr4 | (1ULL << 18)));
    __asm__ volatile("xsetbv" ::"c"(0), "a"(7), "d"(0));
    avx = true;
}

struct tables {
    uint64_t cr0, cr3, cr4, efer;
    uint8_t gdt[10], idt[10];
    uint16_t cs, ds, ss, tr;
    uint64_t dr[4], dr7;
};

static void read_tables(struct tables *t)
{
    __asm__ volatile("mov %%cr0, %0; mov %%cr3, %1; mov %%cr4, %2" : "=r"(t->cr0), "=r"(t->cr3), "=r"(t->cr4));
    t->efer = rdmsr(0xC0000080);
    __asm__ volatile("sgdt %0; sidt %1" : "=m"(t->gdt), "=m"(t->idt));
    __asm__ volatile("mov %%cs, %0; mov %%ds, %1; mov %%ss, %2; str %3" : "=r"(t->cs), "=r"(t->ds), "=r"(t->ss), "=r"(t->tr));
    __asm__ volatile("mov %%dr0, %0; mov %%dr1, %1; mov %%dr2, %2; mov %%dr3, %3; mov %%dr7, %4"
                     : "=r"(t->dr[0]), "=r"(t->dr[1]), "=r"(t->dr[2]), "=r"(t->dr[3]), "=r"(t->dr7));
}

/* The hypercall with every general register holding a value of its own; returns RAX, and
 * whether each register (and RFLAGS' DF and CF) came back. */
static int64_t roundtrip_with_registers(bool *regs_same, uint32_t function)
{
    uint64_t out[15]; /* the 14 registers, then RFLAGS */
    uint64_t *outp = out;
    int64_t rax = function;
    /* Every register but RAX and RSP holds a pattern: the pointer to `out` waits on the stack. */
    __asm__ volatile("push %[outp]\n"
                     "push %%rbp\n"
                     "mov $0x1111111111111111, %%rbx; mov $0x2222222222222222, %%rcx\n"
                     "mov $0x3333333333333333, %%rsi; mov $0x4444444444444444, %%rdi\n"
                     "mov $0x5555555555555555, %%rbp\n"
                     "mov $0x0808080808080808, %%r8; mov $0x0909090909090909, %%r9\n"
                     "mov $0x1010101010101010, %%r10; mov $0x1111111111111110, %%r11\n"
                     "mov $0x1212121212121212, %%r12; mov $0x1313131313131313, %%r13\n"
                     "mov $0x1414141414141414, %%r14; mov $0x1515151515151515, %%r15\n"
                     "mov %[port], %%edx\n"
                     "std; stc\n"
                     "outl %%eax, %%dx\n"
                     "pushf\n"
                     "push %%r15\n"
                     "mov 24(%%rsp), %%r15\n"
                     "mov %%rbx, 0(%%r15); mov %%rcx, 8(%%r15); mov %%rsi, 16(%%r15); mov %%rdi, 24(%%r15)\n"
                     "mov %%rbp, 32(%%r15); mov %%r8, 40(%%r15); mov %%r9, 48(%%r15); mov %%r10, 56(%%r15)\n"
                     "mov %%r11, 64(%%r15); mov %%r12, 72(%%r15); mov %%r13, 80(%%r15); mov %%r14, 88(%%r15)\n"
                     "pop 96(%%r15)\n"
                     "mov %%rdx, 104(%%r15)\n"
                     "pop 112(%%r15)\n"
                     "cld\n"
                     "pop %%rbp\n"
                     "add $8, %%rsp\n"
                     : "+a"(rax)
                     : [outp] "m"(outp), [port] "i"(SLATE_HYPERCALL_PORT)
                     : "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
                       "r15", "memory", "cc");
    uint64_t flags = out[14];
    static const uint64_t want[14] = {0x1111111111111111, 0x2222222222222222, 0x3333333333333333,
                                      0x4444444444444444, 0x5555555555555555, 0x0808080808080808,
                                      0x0909090909090909, 0x1010101010101010, 0x1111111111111110,
                                      0x1212121212121212, 0x1313131313131313, 0x1414141414141414,
                                      0x1515151515151515, SLATE_HYPERCALL_PORT};
    *regs_same = (flags & 0x401) == 0x401; /* DF and CF */
    for (int i = 0; i < 14; i++)
        *regs_same &= out[i] == want[i];
    return rax;
}

/* ---- what a snapshot must keep besides the CPU ---- */
#define PATTERN_WORDS (2u << 20) / 8
static uint64_t pattern[PATTERN_WORDS];
static uint16_t timer_port;
static volatile uint32_t device_ticks;

__attribute__((interrupt)) static void on_device_timer(struct interrupt_frame *f)
{
    (void)f;
    device_ticks++;
    slate_outl(timer_port + SLATE_TIMER_IRQ_STATUS, 1);
    lapic_eoi();
}

static uint64_t clock_ns(void)
{
    uint32_t lo = slate_inl(timer_port + SLATE_TIMER_CLOCK_LO);
    return ((uint64_t)slate_inl(timer_port + SLATE_TIMER_CLOCK_HI) << 32) | lo;
}

static uint64_t pattern_sum(void)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < PATTERN_WORDS; i++)
        sum = sum * 31 + pattern[i];
    return sum;
}

/* A long init's traces: memory written, and the timer device's timer 0 firing every 5 ms. */
static void snapshot_setup(const struct slate_info *info)
{
    for (uint32_t i = 0; i < PATTERN_WORDS; i++)
        pattern[i] = i * 0x9E3779B97F4A7C15ULL;
    const struct slate_device *d = slate_find_device(info, SLATE_DEV_TIMER, 0);
    timer_port = d->port_base;
    idt_set(0x41, on_device_timer);
    slate_outl(timer_port + d->irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(timer_port + d->irq_reg + SLATE_IRQ_VECTOR, 0x41);
    slate_outl(timer_port + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_LO, 5000000);
    slate_outl(timer_port + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_HI, 0);
    slate_outl(timer_port + SLATE_TIMER_BANK(0) + SLATE_TIMER_PERIOD_LO, 5000000);
    slate_outl(timer_port + SLATE_TIMER_BANK(0) + SLATE_TIMER_PERIOD_HI, 0);
    slate_outl(timer_port + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
    WAIT_FOR(device_ticks >= 1);
}

KMAIN kmain(const struct slate_info *info)
{
    bool snapshot = str_eq(cmdline(info), "snapshot");
    idt_set(VEC_TIMER, on_timer);
    idt_load();
    lapic_enable();
    mmio_write32(SLATE_LAPIC_ADDR + 0x80, 0x10); /* TPR */
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_TIMER_DIVIDE, 0xB);
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_LVT_TIMER, VEC_TIMER | SLATE_LAPIC_TIMER_PERIODIC);
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_TIMER_INIT, 2000000); /* 2 ms at 1 GHz */
    __asm__ volatile("sti");
    WAIT_FOR(ticks >= 2);

    if (str_eq(cmdline(info), "avx")) /* a PVM host cannot run XSAVE and AVX instructions */
        enable_avx();
    for (int i = 0; i < MSR_COUNT; i++)
        wrmsr(msr_index[i], 0x40000000u + (uint64_t)i * 0x1000 + (i == 7 ? 0 : 0xFFFF800000000000ULL * (i >= 4 && i <= 6)));
    wrmsr(0x174, 0x10); /* SYSENTER_CS: a selector */
    wrmsr(0x277, 0x0007040600070106ULL); /* PAT: one entry changed */
    uint64_t msr_before[MSR_COUNT + 1], msr_after[MSR_COUNT + 1];
    for (int i = 0; i < MSR_COUNT; i++)
        msr_before[i] = rdmsr(msr_index[i]);
    msr_before[MSR_COUNT] = rdmsr(0x277);
    __asm__ volatile("mov %0, %%dr0; mov %1, %%dr1; mov %2, %%dr2; mov %3, %%dr3; mov %4, %%dr7"
                     ::"r"(0x1000ULL), "r"(0x2000ULL), "r"(0x3008ULL), "r"(0x4000ULL), "r"(0x00550400ULL));
    struct tables before, after;
    read_tables(&before);
    load_vector_state();
    save_vector_state(fx_before, ymm_before);
    uint32_t lvt = mmio_read32(SLATE_LAPIC_ADDR + LAPIC_LVT_TIMER), tpr = mmio_read32(SLATE_LAPIC_ADDR + 0x80);
    uint64_t sum_before = 0, clock_before = 0;
    if (snapshot) {
        snapshot_setup(info);
        sum_before = pattern_sum();
        clock_before = clock_ns();
    }
    uint64_t tsc_before = rdtsc();

    bool regs_same;
    int64_t rc = roundtrip_with_registers(&regs_same, snapshot ? SLATE_HC_SNAPSHOT : SLATE_HC_DEBUG_BREAK);

    uint64_t tsc_after = rdtsc();
    if (snapshot) {
        uint64_t clock_after = clock_ns();
        puts_hc(rc == 0 ? "snapshot: saved\n" : rc == 1 ? "snapshot: restored\n" : "snapshot: failed\n");
        report("memory", pattern_sum() == sum_before);
        report("clock", clock_after >= clock_before);
        uint32_t t0 = device_ticks;
        WAIT_FOR(device_ticks >= t0 + 2);
        report("device timer", true);
    }
    save_vector_state(fx_after, ymm_after);
    read_tables(&after);
    for (int i = 0; i < MSR_COUNT; i++)
        msr_after[i] = rdmsr(msr_index[i]);
    msr_after[MSR_COUNT] = rdmsr(0x277);
    if (!snapshot)
        puts_hc(rc == 2 ? "round trip: done\n" : rc == 0 ? "round trip: none (no SLATE_TEST_CPU_ROUNDTRIP)\n"
                                                         : "round trip: failed\n");
    puts_hc(avx ? "avx: on\n" : "avx: not offered\n");
    report("registers", regs_same);
    report("control registers and tables",
           before.cr0 == after.cr0 && before.cr3 == after.cr3 && before.cr4 == after.cr4 &&
               before.efer == after.efer && bytes_equal(before.gdt, after.gdt, 10) &&
               bytes_equal(before.idt, after.idt, 10) && before.cs == after.cs && before.ds == after.ds &&
               before.ss == after.ss && before.tr == after.tr);
    report("msrs", bytes_equal((const uint8_t *)msr_before, (const uint8_t *)msr_after, sizeof(msr_before)));
    /* FCW, FSW, FTW, MXCSR, ST0-7 and XMM0-15; not FOP/FIP/FDP, which the saves themselves move */
    report("fpu", bytes_equal(fx_before, fx_after, 6) && bytes_equal(fx_before + 24, fx_after + 24, 4) &&
                      bytes_equal(fx_before + 32, fx_after + 32, 416 - 32) &&
                      (!avx || bytes_equal(ymm_before, ymm_after, sizeof(ymm_before))));
    report("debug registers", bytes_equal((const uint8_t *)before.dr, (const uint8_t *)after.dr, sizeof(before.dr)) &&
                                  (before.dr7 & 0xFFFF03FF) == (after.dr7 & 0xFFFF03FF));
    report("tsc", tsc_after > tsc_before);
    uint32_t lvt_after = mmio_read32(SLATE_LAPIC_ADDR + LAPIC_LVT_TIMER);
    uint32_t tpr_after = mmio_read32(SLATE_LAPIC_ADDR + 0x80);
    bool lapic_same = lvt == lvt_after && tpr == tpr_after;
    report("lapic registers", lapic_same);
    if (lapic_same) { /* (a stopped timer would never wake the HLT below) */
        uint32_t t0 = ticks;
        WAIT_FOR(ticks >= t0 + 3);
        report("lapic timer", true);
    }
    guest_exit(0);
}
