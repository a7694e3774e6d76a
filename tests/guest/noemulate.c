/* An instruction the host's KVM may not be able to emulate, run early (before any IDT, as a
 * kernel's first lines would): on a nested host (PVM) `fldcw` fails KVM's emulation and the run
 * ends in a KVM internal error, which the crash report must not call a triple fault. Where KVM
 * runs it, the kernel says so and exits with status 0. */
#include "guest.h"

KMAIN kmain(const struct slate_info *info)
{
    (void)info;
    puts_hc("about to load the x87 control word\n");
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } empty = {0, 0};
    static uint16_t control = 0x037F;
    __asm__ volatile("lidt %0; fldcw %1" ::"m"(empty), "m"(control));
    puts_hc("the host's KVM ran fldcw\n");
    guest_exit(0);
}
