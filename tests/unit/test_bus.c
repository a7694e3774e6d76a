/* The port and MMIO bus: registration refuses overlaps, dispatch finds the right handler. */
#include "unit.h"

#include "bus.h"

#include <errno.h>

struct probe {
    int calls;
    uint64_t last_offset;
};

static void record(void *opaque, struct bus_io *io)
{
    struct probe *p = opaque;
    p->calls++;
    p->last_offset = io->offset;
    if (!io->is_write)
        io->value = 0xABCD;
}

static void overlaps_are_refused(void **state)
{
    (void)state;
    static struct bus bus;
    struct probe p = {0};
    assert_int_equal(bus_register(&bus, 0x1000, 0x20, "a", record, &p), 0);
    assert_int_equal(bus_register(&bus, 0x1010, 0x20, "b", record, &p), -EEXIST);
    assert_int_equal(bus_register(&bus, 0x0FF0, 0x11, "c", record, &p), -EEXIST);
    assert_int_equal(bus_register(&bus, 0x0F00, 0x200, "d", record, &p), -EEXIST);
    assert_int_equal(bus_register(&bus, 0x0FE0, 0x20, "e", record, &p), 0); /* touching is fine */
    assert_int_equal(bus_register(&bus, 0x1020, 0x20, "f", record, &p), 0);
    assert_int_equal(bus_register(&bus, 0x2000, 0, "g", record, &p), -EINVAL);
    assert_int_equal(bus_register(&bus, UINT64_MAX - 4, 0x10, "h", record, &p), -EINVAL);
    assert_int_equal(bus.count, 3);
    for (unsigned i = 1; i < bus.count; i++)
        assert_true(bus.ranges[i - 1].base < bus.ranges[i].base);
}

static void dispatch_passes_offsets(void **state)
{
    (void)state;
    static struct bus bus;
    struct probe a = {0}, b = {0};
    assert_int_equal(bus_register(&bus, 0x1100, 0x10, "b", record, &b), 0);
    assert_int_equal(bus_register(&bus, 0x1000, 0x20, "a", record, &a), 0);
    struct bus_io io = {.width = 4};
    assert_true(bus_dispatch(&bus, 0x1004, &io));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.last_offset, 4);
    assert_int_equal(io.value, 0xABCD);
    io = (struct bus_io){.width = 4, .is_write = true, .value = 1};
    assert_true(bus_dispatch(&bus, 0x110C, &io));
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.last_offset, 0xC);
    assert_false(bus_dispatch(&bus, 0x1020, &io));
    assert_false(bus_dispatch(&bus, 0x0FFF, &io));
    assert_false(bus_dispatch(&bus, 0x1110, &io));
    assert_string_equal(bus_find(&bus, 0x101F)->name, "a");
    assert_null(bus_find(&bus, 0x5000));
}

static void a_full_bus_says_so(void **state)
{
    (void)state;
    static struct bus bus;
    struct probe p = {0};
    for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
        assert_int_equal(bus_register(&bus, 0x10000 + 0x10 * i, 0x10, "x", record, &p), 0);
    assert_int_equal(bus_register(&bus, 0x1, 1, "y", record, &p), -ENOSPC);
    /* binary search over a full table still lands on the right range */
    for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
        assert_int_equal(bus_find(&bus, 0x10000 + 0x10 * i + 7)->base, 0x10000 + 0x10 * i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overlaps_are_refused),
        cmocka_unit_test(dispatch_passes_offsets),
        cmocka_unit_test(a_full_bus_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
