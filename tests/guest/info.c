/* Long mode ELF64: describes the info block on the console so the test can compare it with the
 * command line it gave; checks the entry state itself (RDI, stack alignment, paging). */
#include "guest.h"

static void show_ram(const struct slate_info *info)
{
    const uint8_t *t = (const uint8_t *)info + info->ram_offset;
    for (uint32_t i = 0; i < info->ram_count; i++) {
        const struct slate_ram_region *r = (const void *)(t + i * info->ram_entry_size);
        puts_hc("ram ");
        put_hex(r->base);
        puts_hc(" ");
        put_hex(r->size);
        puts_hc(r->type == SLATE_RAM_USABLE ? " usable\n" : " other\n");
    }
}

static void show_cpus(const struct slate_info *info)
{
    const uint8_t *t = (const uint8_t *)info + info->cpu_offset;
    for (uint32_t i = 0; i < info->cpu_count; i++) {
        const struct slate_cpu *c = (const void *)(t + i * info->cpu_entry_size);
        puts_hc("cpu ");
        put_dec(c->index);
        puts_hc(" apic ");
        put_dec(c->apic_id);
        puts_hc("\n");
    }
}

static void show_images(const struct slate_info *info)
{
    const uint8_t *t = (const uint8_t *)info + info->image_offset;
    for (uint32_t i = 0; i < info->image_count; i++) {
        const struct slate_image *img = (const void *)(t + i * info->image_entry_size);
        puts_hc("image ");
        puts_hc(img->name);
        puts_hc(" ");
        put_hex(img->base);
        puts_hc(" ");
        put_hex(img->size);
        puts_hc(img->flags & SLATE_IMAGE_KERNEL ? " kernel" : "");
        if (!(img->flags & SLATE_IMAGE_KERNEL) && img->size >= 8) {
            char head[9];
            for (int j = 0; j < 8; j++)
                head[j] = ((const char *)img->base)[j];
            head[8] = 0;
            puts_hc(" starts ");
            puts_hc(head);
        }
        puts_hc("\n");
    }
}

static void show_devices(const struct slate_info *info)
{
    const uint8_t *t = (const uint8_t *)info + info->device_offset;
    for (uint32_t i = 0; i < info->device_count; i++) {
        const struct slate_device *d = (const void *)(t + i * info->device_entry_size);
        puts_hc("device ");
        puts_hc(d->name);
        puts_hc(" type ");
        put_dec(d->type);
        puts_hc(" ports ");
        put_hex(d->port_base);
        puts_hc("+");
        put_dec(d->port_count);
        puts_hc(" irqs ");
        put_dec(d->irq_count);
        puts_hc("\n");
    }
}

KMAIN kmain(const struct slate_info *info)
{
    uint64_t rsp, cr0, cr4;
    __asm__ volatile("mov %%rsp, %0; mov %%cr0, %1; mov %%cr4, %2" : "=r"(rsp), "=r"(cr0), "=r"(cr4));
    GUEST_ASSERT((uint64_t)info == SLATE_INFO_ADDR);
    GUEST_ASSERT(str_eq(info->magic, "SLATEMCH") || info->magic[7] == 'H');
    GUEST_ASSERT(info->version == SLATE_INFO_VERSION);
    GUEST_ASSERT(info->header_size == sizeof(struct slate_info));
    GUEST_ASSERT(info->total_size <= SLATE_INFO_MAX_SIZE);
    GUEST_ASSERT(info->device_entry_size == sizeof(struct slate_device));
    GUEST_ASSERT(cr0 & (1u << 31));            /* paging on */
    GUEST_ASSERT(cr4 & (1u << 9));             /* OSFXSR: SSE usable */
    GUEST_ASSERT(info->tsc_khz > 100000);      /* a real TSC frequency, above 100 MHz */
    GUEST_ASSERT(info->boot_stack_top % 16 == 0);
    GUEST_ASSERT(rsp < info->boot_stack_top && rsp > info->boot_stack_top - SLATE_BOOT_STACK_SIZE);
    /* The entry frame: RSP = boot_stack_top - 8 held the return address, into the boot tables. */
    uint64_t ret = *(const uint64_t *)(info->boot_stack_top - 8);
    GUEST_ASSERT(ret >= SLATE_BOOT_TABLES && ret < SLATE_BOOT_TABLES + SLATE_BOOT_TABLES_SIZE);
    /* CPU 0's local APIC as docs/machine.md describes it at the first instruction. */
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(SLATE_MSR_APIC_BASE));
    GUEST_ASSERT(lo == 0xFEE00900 && hi == 0);      /* xAPIC, globally enabled, BSP */
    GUEST_ASSERT(mmio_read32(SLATE_LAPIC_ADDR + SLATE_LAPIC_SVR) == 0xFF); /* software-disabled */
    GUEST_ASSERT(mmio_read32(SLATE_LAPIC_ADDR + SLATE_LAPIC_TPR) == 0);
    GUEST_ASSERT(mmio_read32(SLATE_LAPIC_ADDR + SLATE_LAPIC_LVT_TIMER) & (1u << 16)); /* masked */
    GUEST_ASSERT(mmio_read32(SLATE_LAPIC_ADDR + SLATE_LAPIC_ID) >> 24 == 0);
    /* Writes to the info block are ignored. */
    volatile uint32_t *version = (volatile uint32_t *)&info->version;
    *version = 77;
    GUEST_ASSERT(*version == SLATE_INFO_VERSION);

    puts_hc("ram_total ");
    put_hex(info->ram_total);
    puts_hc("\ncpu_count ");
    put_dec(info->cpu_count);
    puts_hc("\ncmdline [");
    puts_hc((const char *)info + info->cmdline_offset);
    puts_hc("]\n");
    show_ram(info);
    show_cpus(info);
    show_images(info);
    show_devices(info);
    puts_hc("info ok\n");
    /* Returning from kmain lands on the exit stub: status 0. */
}
