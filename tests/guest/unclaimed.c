/* Touches ports and hole addresses nothing claims: each reads as all-ones (twice, to show the
 * warning comes once per address). Under --strict the first access stops the machine. */
#include "guest.h"

KMAIN kmain(const struct slate_info *info)
{
    (void)info;
    GUEST_ASSERT(slate_inb(0x80) == 0xFF);
    GUEST_ASSERT(slate_inb(0x80) == 0xFF);
    GUEST_ASSERT(slate_inl(0x3F8) == 0xFFFFFFFF);
    slate_outb(0x80, 1);
    GUEST_ASSERT(mmio_read32(0xE0000000) == 0xFFFFFFFF);
    GUEST_ASSERT(mmio_read32(0xE0000000) == 0xFFFFFFFF);
    mmio_write32(0xE0001000, 5);
    puts_hc("unclaimed ok\n");
    guest_exit(0);
}
