/* An empty IDT and a breakpoint: #BP, #GP, double fault, triple fault. */
#include "guest.h"

KMAIN kmain(const struct slate_info *info)
{
    (void)info;
    puts_hc("about to triple fault\n");
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } empty = {0, 0};
    __asm__ volatile("lidt %0; int3" ::"m"(empty));
    guest_exit(0);
}
