/* Writes v=N to port=P as QEMU's isa-debug-exit expects (width=1 for outb, else outl), then exits
 * with 7 through the hypercall: 7 means the write did not end the machine. */
#include "guest.h"

KMAIN kmain(const struct slate_info *info)
{
    const char *cmd = cmdline(info);
    uint16_t port = (uint16_t)cmdline_number(cmd, "port=", 0xf4);
    uint32_t v = (uint32_t)cmdline_number(cmd, "v=", 0);
    if (cmdline_number(cmd, "width=", 4) == 1)
        slate_outb(port, (uint8_t)v);
    else
        slate_outl(port, v);
    guest_exit(7);
}
