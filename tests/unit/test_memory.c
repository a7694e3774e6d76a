/* The guest-physical memory map, and the checked translation every guest address goes through. */
#include "unit.h"

#include "memory.h"
#include "slate/slate.h"

#include <stdlib.h>

static void small_ram_is_one_region(void **state)
{
    (void)state;
    struct guest_memory mem = {0};
    memory_layout(&mem, 128ULL << 20);
    assert_int_equal(mem.ram_count, 1);
    assert_int_equal(mem.ram[0].gpa, 0);
    assert_int_equal(mem.ram[0].size, 128ULL << 20);
    assert_int_equal(mem.ram_total, 128ULL << 20);
}

static void exactly_3g_fills_low_ram(void **state)
{
    (void)state;
    struct guest_memory mem = {0};
    memory_layout(&mem, 3ULL << 30);
    assert_int_equal(mem.ram_count, 1);
    assert_int_equal(mem.ram[0].size, SLATE_LOW_RAM_MAX);
}

static void big_ram_splits_around_the_hole(void **state)
{
    (void)state;
    struct guest_memory mem = {0};
    memory_layout(&mem, 5ULL << 30);
    assert_int_equal(mem.ram_count, 2);
    assert_int_equal(mem.ram[0].gpa, 0);
    assert_int_equal(mem.ram[0].size, SLATE_LOW_RAM_MAX);
    assert_int_equal(mem.ram[1].gpa, SLATE_HIGH_RAM_BASE);
    assert_int_equal(mem.ram[1].size, 2ULL << 30);
    assert_int_equal(mem.ram_total, 5ULL << 30);
    assert_true(mem.map_top >= SLATE_HIGH_RAM_BASE + (2ULL << 30));
}

/* Fake host backing: only the pointer arithmetic is tested, nothing is dereferenced. */
static struct guest_memory two_regions(void)
{
    struct guest_memory mem = {0};
    memory_layout(&mem, 4ULL << 30);
    mem.ram[0].host = (uint8_t *)0x10000000000ULL;
    mem.ram[1].host = (uint8_t *)0x20000000000ULL;
    return mem;
}

static void ram_pointers_are_bounds_checked(void **state)
{
    (void)state;
    struct guest_memory mem = two_regions();
    assert_ptr_equal(memory_ram_ptr(&mem, 0, 4096), mem.ram[0].host);
    assert_ptr_equal(memory_ram_ptr(&mem, 0x1000, 16), mem.ram[0].host + 0x1000);
    assert_ptr_equal(memory_ram_ptr(&mem, SLATE_LOW_RAM_MAX - 1, 1), mem.ram[0].host + SLATE_LOW_RAM_MAX - 1);
    assert_ptr_equal(memory_ram_ptr(&mem, SLATE_HIGH_RAM_BASE + 8, 8), mem.ram[1].host + 8);
    /* the hole, straddling its edges, spanning both regions, past the end, wrapping */
    assert_null(memory_ram_ptr(&mem, SLATE_INFO_ADDR, 1));
    assert_null(memory_ram_ptr(&mem, SLATE_LOW_RAM_MAX - 1, 2));
    assert_null(memory_ram_ptr(&mem, SLATE_LOW_RAM_MAX - 8, SLATE_HIGH_RAM_BASE));
    assert_null(memory_ram_ptr(&mem, SLATE_HIGH_RAM_BASE + (1ULL << 30), 1));
    assert_null(memory_ram_ptr(&mem, SLATE_HIGH_RAM_BASE + (1ULL << 30) - 4, 8));
    assert_null(memory_ram_ptr(&mem, 0x1000, UINT64_MAX));
    assert_null(memory_ram_ptr(&mem, UINT64_MAX - 3, 8));
    assert_null(memory_ram_ptr(&mem, UINT64_MAX, 0));
    assert_non_null(memory_ram_ptr(&mem, 0, SLATE_LOW_RAM_MAX));
    assert_null(memory_ram_ptr(&mem, 0, SLATE_LOW_RAM_MAX + 1));
}

static void the_info_block_is_readable_but_not_ram(void **state)
{
    (void)state;
    struct guest_memory mem = two_regions();
    static uint8_t info[SLATE_INFO_MAX_SIZE];
    assert_int_equal(memory_add_extra(&mem, SLATE_INFO_ADDR, sizeof(info), info), 0);
    assert_ptr_equal(memory_readable_ptr(&mem, SLATE_INFO_ADDR + 16, 8), info + 16);
    assert_ptr_equal(memory_readable_ptr(&mem, 0x2000, 8), mem.ram[0].host + 0x2000);
    assert_null(memory_ram_ptr(&mem, SLATE_INFO_ADDR + 16, 8));
    assert_null(memory_readable_ptr(&mem, SLATE_INFO_ADDR + sizeof(info) - 4, 8));
    assert_null(memory_readable_ptr(&mem, SLATE_HYPERCALL_PAGE, 4));
}

static void mapping_is_lazy_and_zeroed(void **state)
{
    (void)state;
    struct guest_memory mem = {0};
    memory_layout(&mem, 64ULL << 30); /* reserving 64 GiB must not commit it */
    assert_int_equal(memory_map(&mem), 0);
    uint8_t *p = memory_ram_ptr(&mem, SLATE_HIGH_RAM_BASE + (40ULL << 30), 4096);
    assert_non_null(p);
    assert_int_equal(p[100], 0);
    p[100] = 7;
    assert_int_equal(*(uint8_t *)memory_ram_ptr(&mem, SLATE_HIGH_RAM_BASE + (40ULL << 30) + 100, 1), 7);
    memory_unmap(&mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_ram_is_one_region),
        cmocka_unit_test(exactly_3g_fills_low_ram),
        cmocka_unit_test(big_ram_splits_around_the_hole),
        cmocka_unit_test(ram_pointers_are_bounds_checked),
        cmocka_unit_test(the_info_block_is_readable_but_not_ram),
        cmocka_unit_test(mapping_is_lazy_and_zeroed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
