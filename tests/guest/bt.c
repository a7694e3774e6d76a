/* Backtraces (backtrace.c), as a newcomer's kernel gives them: kmain -> level1 -> level2 -> leaf,
 * where leaf needs no frame of its own. Built twice: bt.elf as gcc -O2 leaves it (no frame
 * pointers: the unwinder reads the call frame information) and bt-fp.elf with frame pointers.
 *   crash     leaf executes ud2 with an empty IDT: a triple fault, whose report has a backtrace
 *   handler   a timer interrupt whose handler never returns: the hang report's backtrace goes
 *             through the interrupt frame into the code it interrupted */
#include "guest.h"

#define VEC_TIMER 0x40

static volatile int sink;

__attribute__((noinline)) static void leaf(volatile int *p)
{
    *p = 1;
    __asm__ volatile("ud2");
}

__attribute__((noinline)) static void level2(volatile int *p)
{
    leaf(p);
    __asm__ volatile(""); /* no tail call: level2 stays on the stack */
}

__attribute__((noinline)) static void level1(volatile int *p)
{
    level2(p);
    __asm__ volatile("");
}

__attribute__((interrupt)) static void on_timer(struct interrupt_frame *f)
{
    (void)f;
    for (;;)
        __asm__ volatile("pause");
}

__attribute__((noinline)) static void wait_for_tick(void)
{
    for (;;)
        __asm__ volatile("sti; hlt");
}

KMAIN kmain(const struct slate_info *info)
{
    if (str_eq(cmdline(info), "handler")) {
        idt_set(VEC_TIMER, on_timer);
        idt_load();
        lapic_enable();
        mmio_write32(SLATE_LAPIC_ADDR + LAPIC_TIMER_DIVIDE, 0xB);
        mmio_write32(SLATE_LAPIC_ADDR + LAPIC_LVT_TIMER, VEC_TIMER);
        mmio_write32(SLATE_LAPIC_ADDR + LAPIC_TIMER_INIT, 1000000);
        wait_for_tick();
    }
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } empty = {0, 0};
    __asm__ volatile("lidt %0" ::"m"(empty));
    level1(&sink);
    guest_exit(0);
}
