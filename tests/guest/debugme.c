/* A kernel to debug with the real gdb (built with -g). Modes (the command line):
 *   run    calls add() ten times, hits the break hypercall, prints the counter, exits 0
 *   spin   spins forever (for Ctrl-C from gdb)
 *   smp    CPU 1 spins in ap_spin() while CPU 0 spins in spin()
 *   crash  dereferences a bad pointer in crash_here(): a triple fault (no IDT) */
#include "guest.h"

volatile int counter;
static volatile uint64_t sink;
static uint8_t ap_stack[4096] __attribute__((aligned(16)));

__attribute__((noinline)) int add(int a, int b)
{
    int sum = a + b;
    counter += sum;
    return sum;
}

__attribute__((noinline)) static void spin(void)
{
    for (;;)
        sink++;
}

__attribute__((noinline)) static void ap_spin(uint64_t arg)
{
    (void)arg;
    for (;;)
        sink += 2;
}

__attribute__((noinline)) void crash_here(volatile uint64_t *where)
{
    *where = 42; /* unmapped: #PF with no IDT, then #DF, then a triple fault */
}

__attribute__((noinline)) void crash_caller(void)
{
    crash_here((volatile uint64_t *)0x7000000000ULL);
    puts_hc("not reached\n");
}

KMAIN kmain(const struct slate_info *info)
{
    const char *mode = cmdline(info);
    if (str_eq(mode, "spin"))
        spin();
    if (str_eq(mode, "smp")) {
        GUEST_ASSERT(slate_hypercall(SLATE_HC_START_CPU, 1, (uint64_t)ap_spin,
                                (uint64_t)ap_stack + sizeof(ap_stack), 0) == 0);
        spin();
    }
    if (str_eq(mode, "crash"))
        crash_caller();
    for (int i = 0; i < 10; i++)
        add(i, 2 * i);
    int64_t attached = hypercall(SLATE_HC_DEBUG_BREAK, 0, 0, 0);
    puts_hc(attached ? "debugger was attached\n" : "no debugger\n");
    puts_hc("counter ");
    put_dec(counter);
    puts_hc("\n");
    guest_exit(0);
}
