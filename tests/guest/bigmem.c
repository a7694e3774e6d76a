/* Lists the RAM map and writes then reads the first and last byte of every region, above 4 GiB
 * included (the boot page tables map all of it). */
#include "guest.h"

KMAIN kmain(const struct slate_info *info)
{
    const uint8_t *t = (const uint8_t *)info + info->ram_offset;
    for (uint32_t i = 0; i < info->ram_count; i++) {
        const struct slate_ram_region *r = (const void *)(t + i * info->ram_entry_size);
        volatile uint8_t *first = (volatile uint8_t *)(r->base ? r->base : 0x200000);
        volatile uint8_t *last = (volatile uint8_t *)(r->base + r->size - 1);
        *first = 0xA5;
        *last = 0x5A;
        GUEST_ASSERT(*first == 0xA5 && *last == 0x5A);
        puts_hc("region ");
        put_hex(r->base);
        puts_hc("-");
        put_hex(r->base + r->size);
        puts_hc(" ok\n");
    }
    guest_exit(0);
}
