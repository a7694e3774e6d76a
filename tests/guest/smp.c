/* SMP: application processors started by the start hypercall ("start"), by INIT-SIPI-SIPI with a
 * real-mode trampoline ("sipi"), and IPI ping-pong between CPU 0 and CPU 1 ("ipi"). Each AP
 * reports in by incrementing its slot and sending CPU 0 an IPI; CPU 0 waits with HLT. */
#include "guest.h"

#define MAX_CPUS 64
#define VEC_ARRIVED 0x50
#define VEC_PING 0x51
#define VEC_PONG 0x52
#define PING_ROUNDS 1000 /* unless "ipi rounds=N" says otherwise */
#define TRAMPOLINE 0x8000

static volatile uint32_t seen[MAX_CPUS];
static volatile uint32_t arrived;
static volatile uint32_t pings, pongs;
static uint8_t stacks[MAX_CPUS][4096] __attribute__((aligned(16)));

__attribute__((interrupt)) static void on_arrived(struct interrupt_frame *f) { (void)f; lapic_eoi(); }

__attribute__((interrupt)) static void on_ping(struct interrupt_frame *f) /* on CPU 1 */
{
    (void)f;
    pings++;
    lapic_eoi();
    send_ipi(0, VEC_PONG);
}

__attribute__((interrupt)) static void on_pong(struct interrupt_frame *f) /* on CPU 0 */
{
    (void)f;
    pongs++;
    lapic_eoi();
}

static void report_in(uint64_t index)
{
    GUEST_ASSERT(cpu_index() == index);
    GUEST_ASSERT(mmio_read32(SLATE_LAPIC_ADDR + LAPIC_ID) >> 24 == index);
    __atomic_add_fetch(&seen[index], 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
    send_ipi(0, VEC_ARRIVED);
}

/* Entered by the start hypercall: RDI = the argument, a call frame on the stack. */
static void ap_main(uint64_t index)
{
    lapic_enable();
    report_in(index);
    if (index == 1) { /* the ping-pong partner: everything happens in on_ping */
        for (;;)
            __asm__ volatile("sti; hlt");
    }
    /* returning parks this CPU (cli; hlt) through the boot tables' stub */
}

static int64_t start_cpu(uint64_t index, void (*entry)(uint64_t), uint64_t stack, uint64_t arg)
{
    return slate_hypercall(SLATE_HC_START_CPU, index, (uint64_t)entry, stack, arg);
}

static uint64_t stack_top(unsigned i) { return (uint64_t)stacks[i] + sizeof(stacks[i]); }

static void check_errors(unsigned n)
{
    GUEST_ASSERT(start_cpu(0, ap_main, stack_top(0), 0) == SLATE_EBUSY); /* itself, running */
    GUEST_ASSERT(start_cpu(n, ap_main, stack_top(0), n) == SLATE_EINVAL);
    GUEST_ASSERT(start_cpu(~0ULL, ap_main, stack_top(0), 0) == SLATE_EINVAL);
    if (n < 2)
        return;
    GUEST_ASSERT(start_cpu(1, ap_main, stack_top(1) - 8, 1) == SLATE_EINVAL); /* misaligned */
    GUEST_ASSERT(start_cpu(1, ap_main, SLATE_HYPERCALL_PAGE + 0x100, 1) == SLATE_EFAULT);
    GUEST_ASSERT(start_cpu(1, ap_main, 0x7FFFFFFF0000ULL, 1) == SLATE_EFAULT); /* unmapped */
    GUEST_ASSERT(arrived == 0); /* and none of that started anything */
}

static void start_all(unsigned n)
{
    check_errors(n);
    for (unsigned i = 1; i < n; i++)
        GUEST_ASSERT(start_cpu(i, ap_main, stack_top(i), i) == 0);
    WAIT_FOR(arrived == n - 1);
    if (n >= 2)
        GUEST_ASSERT(start_cpu(1, ap_main, stack_top(1), 1) == SLATE_EBUSY); /* twice */
}

/* ---- INIT-SIPI-SIPI: the AP starts in real mode at TRAMPOLINE, climbs to long mode with the
 * boot GDT and CPU 0's page tables, and calls sipi_main on its own stack. ---- */
extern const uint8_t trampoline_start[], trampoline_end[];
extern uint64_t trampoline_cr3, trampoline_stacks, trampoline_entry;
#define TRAMP(sym) (TRAMPOLINE + ((const uint8_t *)&(sym) - trampoline_start))

static void sipi_main(uint64_t index)
{
    lapic_enable();
    report_in(index);
}

__asm__(".pushsection .rodata\n"
        ".globl trampoline_start, trampoline_end, trampoline_cr3, trampoline_stacks, trampoline_entry\n"
        ".code16\n"
        "trampoline_start:\n"
        "  cli\n"
        "  xor %ax, %ax\n"
        "  mov %ax, %ds\n"
        "  lgdtl " "(0x8000 + tramp_gdtr - trampoline_start)\n"
        "  mov %cr0, %eax\n"
        "  or $1, %eax\n"
        "  mov %eax, %cr0\n"
        "  ljmpl $0x08, $(0x8000 + tramp_pm32 - trampoline_start)\n"
        ".code32\n"
        "tramp_pm32:\n"
        "  mov $0x10, %ax\n"
        "  mov %ax, %ds\n"
        "  mov %ax, %ss\n"
        "  mov %cr4, %eax\n"
        "  or $0x620, %eax\n"          /* PAE, OSFXSR, OSXMMEXCPT */
        "  mov %eax, %cr4\n"
        "  mov (0x8000 + trampoline_cr3 - trampoline_start), %eax\n"
        "  mov %eax, %cr3\n"
        "  mov $0xC0000080, %ecx\n"   /* EFER.LME */
        "  rdmsr\n"
        "  or $0x100, %eax\n"
        "  wrmsr\n"
        "  mov %cr0, %eax\n"
        "  or $0x80000000, %eax\n"
        "  mov %eax, %cr0\n"
        "  ljmp $0x18, $(0x8000 + tramp_lm64 - trampoline_start)\n"
        ".code64\n"
        "tramp_lm64:\n"
        "  mov $0xFFFE, %dx\n"         /* this CPU's index picks its stack */
        "  in %dx, %eax\n"
        "  mov %eax, %edi\n"
        "  inc %eax\n"
        "  shl $12, %rax\n"
        "  add (0x8000 + trampoline_stacks - trampoline_start), %rax\n"
        "  mov %rax, %rsp\n"
        "  call *(0x8000 + trampoline_entry - trampoline_start)\n"
        "1: cli\n"
        "  hlt\n"
        "  jmp 1b\n"
        ".balign 8\n"
        "tramp_gdtr: .word 31\n"
        "  .long 0xC0100000\n"         /* slate's boot GDT: 0x08 code32, 0x10 data, 0x18 code64 */
        ".balign 8\n"
        "trampoline_cr3: .quad 0\n"
        "trampoline_stacks: .quad 0\n"
        "trampoline_entry: .quad 0\n"
        "trampoline_end:\n"
        ".popsection\n");

static void copy_trampoline(void)
{
    uint8_t *dst = (uint8_t *)TRAMPOLINE;
    for (const uint8_t *p = trampoline_start; p < trampoline_end; p++)
        *dst++ = *p;
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    *(uint64_t *)TRAMP(trampoline_cr3) = cr3;
    *(uint64_t *)TRAMP(trampoline_stacks) = (uint64_t)stacks;
    *(uint64_t *)TRAMP(trampoline_entry) = (uint64_t)sipi_main;
}

static void sipi_all(unsigned n)
{
    copy_trampoline();
    for (unsigned i = 1; i < n; i++) {
        lapic_send(i, 0x4500);                      /* INIT, level assert */
        lapic_send(i, 0x4600 | (TRAMPOLINE >> 12)); /* SIPI, twice as the MP spec says */
        lapic_send(i, 0x4600 | (TRAMPOLINE >> 12));
    }
    WAIT_FOR(arrived == n - 1);
    if (n >= 2) /* a CPU started by SIPI is running: the hypercall must refuse it */
        GUEST_ASSERT(start_cpu(1, ap_main, stack_top(1), 1) == SLATE_EBUSY);
}

/* Every AP writes 100 lines at once with one CONSOLE_WRITE each: no line may be cut by another. */
static void line_writer(uint64_t index)
{
    char line[80] = "cpu ?? line ??? xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
    line[4] = (char)('0' + index / 10), line[5] = (char)('0' + index % 10);
    for (unsigned l = 0; l < 100; l++) {
        line[12] = (char)('0' + l / 100), line[13] = (char)('0' + l / 10 % 10), line[14] = (char)('0' + l % 10);
        hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)line, str_len(line), 0);
    }
    report_in(index);
}

static void lines(unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        GUEST_ASSERT(start_cpu(i, line_writer, stack_top(i), i) == 0);
    WAIT_FOR(arrived == n - 1);
    guest_exit(0);
}

/* A CPU that ran and parked: the hypercall refuses it, INIT and one start-up IPI restart it. */
static void restart(unsigned n)
{
    GUEST_ASSERT(n >= 3);
    GUEST_ASSERT(start_cpu(2, ap_main, stack_top(2), 2) == 0);
    WAIT_FOR(arrived == 1); /* ap_main returns after reporting: CPU 2 parks */
    GUEST_ASSERT(start_cpu(2, ap_main, stack_top(2), 2) == SLATE_EBUSY);
    copy_trampoline();
    lapic_send(2, 0x4500);
    lapic_send(2, 0x4600 | (TRAMPOLINE >> 12));
    WAIT_FOR(arrived == 2);
    GUEST_ASSERT(seen[2] == 2);
    puts_hc("parked cpu 2 restarted by INIT-SIPI\n");
    guest_exit(0);
}

static void ping_pong(uint32_t rounds)
{
    GUEST_ASSERT(start_cpu(1, ap_main, stack_top(1), 1) == 0);
    WAIT_FOR(arrived == 1);
    uint64_t t0 = rdtsc();
    for (uint32_t i = 0; i < rounds; i++) {
        send_ipi(1, VEC_PING);
        WAIT_FOR(pongs == i + 1);
    }
    uint64_t cycles = rdtsc() - t0;
    GUEST_ASSERT(pings == rounds && pongs == rounds);
    puts_hc("ipi round trips: ");
    put_dec(rounds);
    puts_hc("\nipi round trip ns: ");
    const struct slate_info *info = (const void *)SLATE_INFO_ADDR;
    put_dec((int64_t)(cycles * 1000000 / info->tsc_khz / rounds));
    puts_hc("\n");
}

KMAIN kmain(const struct slate_info *info)
{
    unsigned n = info->cpu_count;
    GUEST_ASSERT(n <= MAX_CPUS);
    idt_set(VEC_ARRIVED, on_arrived);
    idt_set(VEC_PING, on_ping);
    idt_set(VEC_PONG, on_pong);
    idt_load();
    lapic_enable();
    const char *mode = cmdline(info);
    if (str_eq(mode, "start"))
        start_all(n);
    else if (str_eq(mode, "sipi"))
        sipi_all(n);
    else if (str_starts(mode, "ipi"))
        ping_pong((uint32_t)cmdline_number(mode, "rounds=", PING_ROUNDS));
    else if (str_eq(mode, "restart"))
        restart(n);
    else if (str_eq(mode, "lines"))
        lines(n);
    else if (str_eq(mode, "startloop")) { /* every CPU started, one after another, then spin */
        puts_hc("starting\n");
        for (unsigned i = 1; i < n; i++)
            GUEST_ASSERT(start_cpu(i, ap_main, stack_top(i), i) == 0);
        puts_hc("all started\n");
        for (;;)
            GUEST_ASSERT(start_cpu(1, ap_main, stack_top(1), 1) == SLATE_EBUSY);
    }
    else if (str_eq(mode, "halt")) { /* every CPU halted with interrupts off: only a stop ends it */
        start_all(n);
        puts_hc("all halted\n");
        for (;;)
            __asm__ volatile("cli; hlt");
    }
    else
        GUEST_ASSERT(!"unknown mode");
    for (unsigned i = 1; i < n && !str_starts(mode, "ipi"); i++)
        GUEST_ASSERT(seen[i] == 1);
    puts_hc("cpus running: ");
    put_dec(1 + arrived);
    puts_hc("\n");
    guest_exit(0);
}
