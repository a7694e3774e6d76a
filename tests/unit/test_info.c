/* The info block as a guest reads it: every table found through its offset, sizes as declared. */
#include "unit.h"

#include "info.h"
#include "loader.h"
#include "memory.h"
#include "slate/slate.h"

static uint8_t block[SLATE_INFO_MAX_SIZE];

static long build(unsigned cpus, const char *cmdline, unsigned devices, uint64_t ram)
{
    static struct guest_memory mem;
    static struct boot_plan plan;
    static struct slate_device devs[8];
    memset(&mem, 0, sizeof(mem));
    memory_layout(&mem, ram);
    plan = (struct boot_plan){.entry = ENTRY_LONG, .image_count = 2};
    plan.images[0] = (struct loaded_image){.base = 0x100000, .size = 0x5000, .flags = SLATE_IMAGE_KERNEL, .name = "kernel.elf"};
    plan.images[1] = (struct loaded_image){.base = 0x400000, .size = 18, .name = "initrd.img"};
    for (unsigned i = 0; i < devices && i < 8; i++)
        devs[i] = (struct slate_device){.type = SLATE_DEV_SERIAL, .version = 1,
                                        .port_base = (uint16_t)(0x1000 + 0x100 * i), .port_count = 0x20,
                                        .name = "serial0", .irq_reg = 0x10, .irq_count = 1};
    struct info_input in = {.mem = &mem, .cpu_count = cpus, .tsc_khz = 2500000,
                            .boot_tsc = 123456789, .boot_unix_ns = 1795573435000000000ULL,
                            .boot_stack_top = 0x8000000, .cmdline = cmdline, .plan = &plan,
                            .devices = devs, .device_count = devices};
    return info_build(block, sizeof(block), &in);
}

static void header_and_tables(void **state)
{
    (void)state;
    long size = build(2, "console=ttyS0 quiet", 2, 5ULL << 30);
    assert_true(size > (long)sizeof(struct slate_info));
    const struct slate_info *info = (const void *)block;
    assert_memory_equal(info->magic, "SLATEMCH", 8);
    assert_int_equal(info->version, SLATE_INFO_VERSION);
    assert_int_equal(info->total_size, size);
    assert_int_equal(info->header_size, sizeof(struct slate_info));
    assert_int_equal(info->tsc_khz, 2500000);
    assert_int_equal(info->ram_total, 5ULL << 30);
    assert_int_equal(info->boot_stack_top, 0x8000000);
    assert_int_equal(info->boot_tsc, 123456789);
    assert_int_equal(info->boot_unix_ns, 1795573435000000000ULL);

    const struct slate_ram_region *ram = (const void *)(block + info->ram_offset);
    assert_int_equal(info->ram_count, 2);
    assert_int_equal(info->ram_entry_size, sizeof(*ram));
    assert_int_equal(ram[0].base, 0);
    assert_int_equal(ram[0].size, SLATE_LOW_RAM_MAX);
    assert_int_equal(ram[1].base, SLATE_HIGH_RAM_BASE);
    assert_int_equal(ram[1].type, SLATE_RAM_USABLE);

    const struct slate_cpu *cpu = (const void *)(block + info->cpu_offset);
    assert_int_equal(info->cpu_count, 2);
    assert_int_equal(cpu[1].index, 1);
    assert_int_equal(cpu[1].apic_id, 1);

    assert_string_equal((const char *)block + info->cmdline_offset, "console=ttyS0 quiet");
    assert_int_equal(info->cmdline_size, sizeof("console=ttyS0 quiet"));

    const struct slate_image *img = (const void *)(block + info->image_offset);
    assert_int_equal(info->image_count, 2);
    assert_true(img[0].flags & SLATE_IMAGE_KERNEL);
    assert_string_equal(img[1].name, "initrd.img");
    assert_int_equal(img[1].base, 0x400000);

    const struct slate_device *dev = (const void *)(block + info->device_offset);
    assert_int_equal(info->device_count, 2);
    assert_int_equal(info->device_entry_size, sizeof(*dev));
    assert_int_equal(dev[1].port_base, 0x1100);

    /* every table is 8-byte aligned and inside the block */
    const uint32_t offsets[] = {info->ram_offset, info->cpu_offset, info->image_offset, info->device_offset};
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(offsets[i] % 8, 0);
        assert_true(offsets[i] >= sizeof(struct slate_info) && offsets[i] < (uint32_t)size);
    }
    assert_true(info->cmdline_offset + info->cmdline_size <= (uint32_t)size);
}

static void no_cmdline_is_an_empty_string(void **state)
{
    (void)state;
    assert_true(build(1, NULL, 0, 128ULL << 20) > 0);
    const struct slate_info *info = (const void *)block;
    assert_int_equal(info->cmdline_size, 1);
    assert_int_equal(block[info->cmdline_offset], 0);
}

static void the_largest_machine_fits(void **state)
{
    (void)state;
    static char cmdline[4096];
    memset(cmdline, 'x', sizeof(cmdline) - 1);
    long size = build(1024, cmdline, 8, 256ULL << 30);
    assert_true(size > 0 && size <= (long)SLATE_INFO_MAX_SIZE);
    const struct slate_info *info = (const void *)block;
    const struct slate_cpu *cpu = (const void *)(block + info->cpu_offset);
    assert_int_equal(cpu[1023].apic_id, 1023);
}

static void too_small_a_buffer_fails_cleanly(void **state)
{
    (void)state;
    static struct guest_memory mem;
    memory_layout(&mem, 1 << 20);
    struct boot_plan plan = {0};
    struct info_input in = {.mem = &mem, .cpu_count = 1024, .plan = &plan};
    uint8_t small[256];
    assert_int_equal(info_build(small, sizeof(small), &in), -1);
    assert_int_equal(info_build(small, 16, &in), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_and_tables),
        cmocka_unit_test(no_cmdline_is_an_empty_string),
        cmocka_unit_test(the_largest_machine_fits),
        cmocka_unit_test(too_small_a_buffer_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
