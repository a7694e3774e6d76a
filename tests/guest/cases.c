/* A kernel with its own test suite, run by `slate --each CASE... cases.elf` (docs/testing-your-
 * kernel.md): it initialises once (here: fills a table, which stands for a memory manager or a
 * file system), then calls SLATE_HC_SNAPSHOT with a buffer for the case. Every case starts from
 * that point with its file's bytes in the buffer; a case file is one command:
 *   pass        checks that nothing of an earlier case is left, exits 0
 *   exit N      exits N
 *   crash       loads an empty IDT and faults: a triple fault
 *   hang        waits forever with interrupts off (--case-timeout ends it)
 *   scribble    writes over the table and the boot stack, then exits 0: the next case must
 *               not see it
 * Each case prints what it is doing (its own N-NAME.log). With init-ms=N on the command line the
 * init also waits N ms (the benchmark's stand-in for a kernel that takes that long to start). */
#include "guest.h"

#define TABLE_WORDS 4096
static uint64_t table[TABLE_WORDS];
static volatile uint32_t cases_run; /* how many cases this memory has seen: 1 if resets work */
static char input[256];
static volatile bool woke;

__attribute__((interrupt)) static void on_timer(struct interrupt_frame *f)
{
    (void)f;
    woke = true;
    lapic_eoi();
}

/* Sleeps ms milliseconds on the timer device's one-shot timer 0, halted. */
static void sleep_ms(const struct slate_info *info, uint64_t ms)
{
    const struct slate_device *d = slate_find_device(info, SLATE_DEV_TIMER, 0);
    uint16_t port = d->port_base;
    idt_set(0x40, on_timer);
    idt_load();
    lapic_enable();
    slate_outl(port + d->irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(port + d->irq_reg + SLATE_IRQ_VECTOR, 0x40);
    slate_outl(port + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_LO, (uint32_t)(ms * 1000000));
    slate_outl(port + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_HI, (uint32_t)(ms * 1000000 >> 32));
    slate_outl(port + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
    WAIT_FOR(woke);
    __asm__ volatile("cli");
}

static bool table_intact(void)
{
    for (uint32_t i = 0; i < TABLE_WORDS; i++)
        if (table[i] != i * 7 + 1)
            return false;
    return true;
}

static int64_t snapshot(void *buf, uint64_t size, uint64_t *len)
{
    int64_t rax = SLATE_HC_SNAPSHOT;
    uint64_t rdx = SLATE_HYPERCALL_PORT;
    __asm__ volatile("outl %%eax, %%dx" : "+a"(rax), "+d"(rdx) : "D"(buf), "S"(size), "c"(0), "b"(0) : "memory");
    *len = rdx;
    return rax;
}

KMAIN kmain(const struct slate_info *info)
{
    for (uint32_t i = 0; i < TABLE_WORDS; i++) /* the long init */
        table[i] = i * 7 + 1;
    uint64_t init_ms = cmdline_number(cmdline(info), "init-ms=", 0);
    if (init_ms)
        sleep_ms(info, init_ms);
    puts_hc("init done\n");
    uint64_t len;
    int64_t n = snapshot(input, sizeof(input) - 1, &len);
    if (n < 1) {
        puts_hc("SLATE_HC_SNAPSHOT returned ");
        put_dec(n);
        puts_hc(" (run me with slate --each)\n");
        guest_exit(3);
    }
    input[len] = 0;
    cases_run++;
    puts_hc("case ");
    put_dec(n);
    puts_hc(": ");
    puts_hc(input);
    if (str_starts(input, "pass")) {
        GUEST_ASSERT(cases_run == 1);
        GUEST_ASSERT(table_intact());
        guest_exit(0);
    }
    if (str_starts(input, "exit ")) {
        uint32_t code = 0;
        for (const char *p = input + 5; *p >= '0' && *p <= '9'; p++)
            code = code * 10 + (uint32_t)(*p - '0');
        guest_exit(code);
    }
    if (str_starts(input, "crash")) {
        struct __attribute__((packed)) { uint16_t limit; uint64_t base; } empty = {0, 0};
        __asm__ volatile("lidt %0; ud2" ::"m"(empty));
    }
    if (str_starts(input, "hang"))
        for (;;)
            __asm__ volatile("cli; hlt");
    if (str_starts(input, "scribble")) {
        for (uint32_t i = 0; i < TABLE_WORDS; i++)
            table[i] = 0xDEAD;
        guest_exit(0);
    }
    puts_hc("unknown case\n");
    guest_exit(2);
}
