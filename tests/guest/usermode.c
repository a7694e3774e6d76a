/* Hypercalls from user mode (CPL 3), as a kernel that maps the hypercall page to user mode and
 * sets IOPL 3 would let them happen. What user mode may call is the kernel's to say
 * (SLATE_HC_USER_HYPERCALLS), and every address it passes is reached with its own privilege:
 *   - a console write of its own memory prints; of a supervisor-only page, SLATE_EFAULT;
 *   - EXIT, START_CPU, SCREENSHOT, DEBUG_BREAK, PROFILE and USER_HYPERCALLS get SLATE_EPERM,
 *     through the port and through the MMIO page;
 *   - once the kernel allows EXIT and START_CPU: a start whose stack frame would land on a
 *     read-only or a supervisor page gets SLATE_EFAULT, one on its own stack starts the CPU, and
 *     EXIT from user mode ends the machine (status 42).
 * The kernel at CPL 0 checks SMAP too, where the CPU offers it: a console write of a user page
 * with CR4.SMAP set fails unless RFLAGS.AC is set. Run with --smp 2. */
#include "guest.h"

#define SEL_KDATA 0x10
#define SEL_KCODE 0x18 /* the boot GDT's 64-bit code selector, so CS needs no reload */
#define SEL_UDATA 0x20
#define SEL_UCODE 0x28
#define SEL_TSS 0x30
#define CR4_SMAP (1ULL << 21)
#define PTE_P 1ULL
#define PTE_W 2ULL
#define PTE_U 4ULL
#define PTE_PCD 0x10ULL
#define PTE_PS 0x80ULL

struct __attribute__((packed)) tss64 {
    uint32_t reserved0;
    uint64_t rsp[3], reserved1, ist[7], reserved2;
    uint16_t reserved3, iomap_base;
    uint8_t iomap[8192 + 1]; /* a clear bit lets CPL 3 use that port; the last byte is all ones */
};

static uint64_t gdt[8] __attribute__((aligned(16))) = {
    0, 0x00CF9A000000FFFFULL, 0x00CF92000000FFFFULL, 0x00AF9A000000FFFFULL,
    0x00CFF2000000FFFFULL, /* user data, DPL 3 */
    0x00AFFA000000FFFFULL, /* user code, 64-bit, DPL 3 */
};
static struct tss64 tss;
static uint8_t kernel_stack[8192] __attribute__((aligned(16)));
static uint8_t user_stack[8192] __attribute__((aligned(4096)));
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd_low[512] __attribute__((aligned(4096)));
static uint64_t pd_hole[512] __attribute__((aligned(4096)));
static uint64_t pt_low[512] __attribute__((aligned(4096)));
static char secret[4096] __attribute__((aligned(4096))) = "SECRET: a supervisor-only page\n";
static uint8_t read_only[4096] __attribute__((aligned(4096)));
static volatile int64_t results[16];
static volatile uint32_t ap_ran;
uint64_t kernel_rsp __attribute__((used));

/* enter_user(entry, stack): runs entry at CPL 3 (IOPL 3, interrupts off) until it executes
 * ud2; then returns. back_to_kernel is the #UD handler. */
void enter_user(void (*entry)(void), void *stack);
__asm__(".globl enter_user\n"
        "enter_user:\n"
        "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
        "  mov %rsp, kernel_rsp(%rip)\n"
        "  pushq $0x23\n" /* SS = user data | RPL 3 */
        "  push %rsi\n"
        "  pushq $0x3002\n" /* IOPL 3 */
        "  pushq $0x2b\n" /* CS = user code | RPL 3 */
        "  push %rdi\n"
        "  iretq\n"
        ".globl back_to_kernel\n"
        "back_to_kernel:\n"
        "  mov kernel_rsp(%rip), %rsp\n"
        "  mov $0x10, %ax\n  mov %ax, %ds\n  mov %ax, %es\n"
        "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
        "  ret\n"
        ".globl user_gp\n" /* a #GP in user mode: port I/O the CPU did not allow */
        "user_gp:\n"
        "  movl $1, port_faults(%rip)\n"
        "  jmp back_to_kernel\n");
void back_to_kernel(void);
void user_gp(void);
uint32_t port_faults __attribute__((used));

static int64_t mmio_hypercall(uint32_t fn, uint64_t a, uint64_t b, uint64_t c)
{
    int64_t r = fn;
    __asm__ volatile("movl %%eax, (%1)" : "+a"(r) : "r"(SLATE_HYPERCALL_PAGE), "D"(a), "S"(b), "c"(c)
                     : "memory");
    return r;
}

/* From user mode through the port where the CPU lets user mode use it (IOPL 3 and the TSS's I/O
 * bitmap: a PVM host allows neither), else through the MMIO page. */
static int64_t user_hypercall(uint32_t fn, uint64_t a, uint64_t b, uint64_t c)
{
    return port_faults ? mmio_hypercall(fn, a, b, c) : hypercall(fn, a, b, c);
}

static void user_probe(void)
{
    hypercall(SLATE_HC_NOP, 0, 0, 0);
    __asm__ volatile("ud2");
}

static void ap_entry(void)
{
    ap_ran = 1;
    for (;;)
        __asm__ volatile("pause");
}

static const char user_hello[] = "user mode says hello\n";

static void user_first(void)
{
    results[0] = user_hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)user_hello, sizeof(user_hello) - 1, 0);
    results[1] = user_hypercall(SLATE_HC_CONSOLE_WRITE, (uint64_t)secret, 31, 0);
    results[2] = user_hypercall(SLATE_HC_EXIT, 7, 0, 0);
    results[3] = user_hypercall(SLATE_HC_START_CPU, 1, (uint64_t)ap_entry, (uint64_t)(user_stack + 4096));
    results[4] = user_hypercall(SLATE_HC_SCREENSHOT, 0, 0, 0);
    results[5] = user_hypercall(SLATE_HC_DEBUG_BREAK, 0, 0, 0);
    results[6] = user_hypercall(SLATE_HC_PROFILE, 1, 0, 0);
    results[7] = user_hypercall(SLATE_HC_USER_HYPERCALLS, ~0ULL, 0, 0);
    results[8] = mmio_hypercall(SLATE_HC_EXIT, 7, 0, 0);
    results[9] = user_hypercall(SLATE_HC_NOP, 0, 0, 0);
    __asm__ volatile("ud2");
}

static void user_second(void)
{
    results[0] = user_hypercall(SLATE_HC_START_CPU, 1, (uint64_t)ap_entry, (uint64_t)(read_only + 4096));
    results[1] = user_hypercall(SLATE_HC_START_CPU, 1, (uint64_t)ap_entry, (uint64_t)(secret + 4096));
    results[2] = user_hypercall(SLATE_HC_START_CPU, 1, (uint64_t)ap_entry, (uint64_t)(user_stack + 4096));
    __asm__ volatile("ud2");
}

static void user_last(void)
{
    user_hypercall(SLATE_HC_EXIT, 42, 0, 0);
    results[0] = -100; /* not reached */
    __asm__ volatile("ud2");
}

/* The first 2 MiB in 4 KiB user pages (the secret page supervisor-only, one page read-only),
 * the rest of the first GiB supervisor-only, and the info block and hypercall page for all. */
static void map_memory(void)
{
    for (uint64_t i = 0; i < 512; i++) {
        pt_low[i] = i * 4096 | PTE_P | PTE_W | PTE_U;
        pd_low[i] = i << 21 | PTE_P | PTE_W | PTE_PS;
    }
    pt_low[(uint64_t)secret >> 12] &= ~PTE_U;
    pt_low[(uint64_t)read_only >> 12] &= ~PTE_W;
    pd_low[0] = (uint64_t)pt_low | PTE_P | PTE_W | PTE_U;
    pd_hole[0] = SLATE_INFO_ADDR | PTE_P | PTE_W | PTE_U | PTE_PCD | PTE_PS;
    pdpt[0] = (uint64_t)pd_low | PTE_P | PTE_W | PTE_U;
    pdpt[3] = (uint64_t)pd_hole | PTE_P | PTE_W | PTE_U;
    pml4[0] = (uint64_t)pdpt | PTE_P | PTE_W | PTE_U;
    __asm__ volatile("mov %0, %%cr3" ::"r"(pml4) : "memory");
}

static void load_tables(void)
{
    uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
    tss.rsp[0] = (uint64_t)(kernel_stack + sizeof(kernel_stack));
    tss.iomap_base = __builtin_offsetof(struct tss64, iomap);
    for (unsigned i = 0; i < sizeof(tss.iomap); i++)
        tss.iomap[i] = 0xFF;
    tss.iomap[SLATE_HYPERCALL_PORT / 8] &= (uint8_t)~(1u << (SLATE_HYPERCALL_PORT % 8));
    gdt[6] = (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 | 0x89ULL << 40 | ((limit >> 16) & 0xF) << 48 |
             ((base >> 24) & 0xFF) << 56;
    gdt[7] = base >> 32;
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } d = {sizeof(gdt) - 1, (uint64_t)gdt};
    __asm__ volatile("lgdt %0; ltr %w1" ::"m"(d), "r"(SEL_TSS) : "memory");
    /* user mode comes back with ud2 (#UD): a PVM host does not deliver a software interrupt
     * (int N) from user mode to the guest's IDT */
    idt_set(6, (void (*)(struct interrupt_frame *))back_to_kernel);
    idt_set(13, (void (*)(struct interrupt_frame *))user_gp);
    idt_load();
}

static void show(const char *what, int64_t got, int64_t want)
{
    puts_hc(what);
    puts_hc(": ");
    put_dec(got);
    puts_hc(got == want ? "\n" : " (wrong)\n");
}

/* CR4.SMAP on, a console write of a user page without and with RFLAGS.AC. All in registers:
 * nothing here may touch a user page while SMAP is on (the boot stack is supervisor-only). */
static void check_smap(void)
{
    uint32_t ebx;
    __asm__ volatile("cpuid" : "=b"(ebx) : "a"(7), "c"(0) : "edx");
    if (!(ebx & (1u << 20))) {
        puts_hc("smap: not offered by this CPU\n");
        return;
    }
    static const char msg[] = "stac lets the kernel print a user page\n";
    int64_t without, with;
    uint64_t cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    __asm__ volatile("mov %[on], %%cr4\n"
                     "mov %[fn], %%eax\n outl %%eax, %%dx\n mov %%rax, %[without]\n"
                     /* AC by popf, not stac: a PVM host emulates stac, and its emulator's
                      * fetch of the instruction from a user page trips SMAP itself */
                     "pushf\n orq $0x40000, (%%rsp)\n popf\n"
                     "mov %[fn], %%eax\n outl %%eax, %%dx\n"
                     "pushf\n andq $~0x40000, (%%rsp)\n popf\n"
                     "mov %[off], %%cr4\n"
                     : [without] "=&r"(without), "=&a"(with)
                     : [on] "r"(cr4 | CR4_SMAP), [off] "r"(cr4), [fn] "i"(SLATE_HC_CONSOLE_WRITE),
                       "d"(SLATE_HYPERCALL_PORT), "D"(msg), "S"(sizeof(msg) - 1)
                     : "memory");
    show("smap: a user page without AC", without, SLATE_EFAULT);
    show("smap: with AC", with, sizeof(msg) - 1);
}

KMAIN kmain(const struct slate_info *info)
{
    (void)info;
    map_memory();
    load_tables();
    check_smap();
    enter_user(user_probe, user_stack + sizeof(user_stack));
    puts_hc(port_faults ? "user mode: port I/O refused by this CPU; hypercalls through the MMIO page\n"
                        : "user mode: hypercalls through the port (IOPL 3)\n");
    enter_user(user_first, user_stack + sizeof(user_stack));
    static const char *const first[] = {"console write of its own page", "console write of a supervisor page",
                                        "exit", "start-cpu", "screenshot", "debug-break", "profile",
                                        "user-hypercalls", "exit through the MMIO page", "nop"};
    static const int64_t want[] = {sizeof(user_hello) - 1, SLATE_EFAULT, SLATE_EPERM, SLATE_EPERM,
                                   SLATE_EPERM, SLATE_EPERM, SLATE_EPERM, SLATE_EPERM, SLATE_EPERM, 0};
    for (int i = 0; i < 10; i++)
        show(first[i], results[i], want[i]);
    int64_t previous = hypercall(SLATE_HC_USER_HYPERCALLS,
                                 SLATE_HC_USER_DEFAULT | 1ULL << SLATE_HC_EXIT | 1ULL << SLATE_HC_START_CPU, 0, 0);
    show("the kernel allows exit and start-cpu; the mask was", previous, SLATE_HC_USER_DEFAULT);
    enter_user(user_second, user_stack + sizeof(user_stack));
    show("start-cpu with its frame on a read-only page", results[0], SLATE_EFAULT);
    show("start-cpu with its frame on a supervisor page", results[1], SLATE_EFAULT);
    show("start-cpu on its own stack", results[2], 0);
    /* No interrupt would wake a halted CPU 0 here (cpu 1 only sets the flag): if cpu 1 ran after
     * the flag was read and before a HLT, CPU 0 would sleep for ever. So spin: it is short. */
    while (!ap_ran)
        __asm__ volatile("pause" ::: "memory");
    puts_hc("cpu 1 ran\n");
    enter_user(user_last, user_stack + sizeof(user_stack));
    puts_hc("exit from user mode did not end the machine\n");
    guest_exit(1);
}
