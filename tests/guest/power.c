/* Exits through the power device with the code given as "code=N" on the command line (after
 * "wait=MS" milliseconds, if given), or resets the machine for "reset" (printing "boot" each time
 * it starts), or prints for ever for "spew". */
#include "guest.h"

KMAIN kmain(const struct slate_info *info)
{
    const char *cmd = (const char *)info + info->cmdline_offset;
    const struct slate_device *power = slate_find_device(info, SLATE_DEV_POWER, 0);
    GUEST_ASSERT(power);
    puts_hc("boot\n");
    if (str_eq(cmd, "spew")) /* output for ever: for a reader that stops reading */
        for (;;)
            puts_hc("spew spew spew spew spew spew spew spew spew spew spew spew spew spew spew\n");
    if (str_eq(cmd, "reset"))
        slate_outl(power->port_base + SLATE_POWER_RESET, 1);
    GUEST_ASSERT(cmd[0] == 'c' && cmd[4] == '=');
    uint32_t code = 0;
    for (const char *p = cmd + 5; *p >= '0' && *p <= '9'; p++)
        code = code * 10 + (uint32_t)(*p - '0');
    uint64_t wait_ms = cmdline_number(cmd, "wait=", 0);
    for (uint64_t end = rdtsc() + wait_ms * info->tsc_khz; rdtsc() < end;)
        __asm__ volatile("pause");
    slate_outl(power->port_base + SLATE_POWER_EXIT, code);
    GUEST_ASSERT(!"power exit returned");
}
