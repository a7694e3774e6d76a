/* Prints, then halts with interrupts off: only --timeout or a signal ends it. */
#include "guest.h"

KMAIN kmain(const struct slate_info *info)
{
    (void)info;
    puts_hc("halting\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}
