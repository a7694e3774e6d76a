/* The power device against the fake machine: EXIT ends the machine with the guest's code (codes
 * past 123 are clamped and warned about), RESET asks for a reset, reads are zero. */
#include "unit.h"

#include "fake_host.h"

extern const struct device_ops power_device;

static void exit_with_a_code(void **state)
{
    (void)state;
    struct vm *vm = fake_vm_new();
    struct device *dev = fake_add(vm, &power_device, 0);
    assert_int_equal(device_machine_status(dev), -1);
    fake_write(dev, SLATE_POWER_EXIT, 42);
    assert_int_equal(atomic_load(&vm->status), 42);
    fake_write(dev, SLATE_POWER_EXIT, 7); /* the first request wins */
    assert_int_equal(atomic_load(&vm->status), 42);
    assert_int_equal(atomic_load(&vm->stops), 2);
    assert_int_equal(fake_read(dev, SLATE_POWER_EXIT), 0);
    fake_vm_free(vm);
}

static void codes_past_123_are_clamped(void **state)
{
    (void)state;
    struct vm *vm = fake_vm_new();
    struct device *dev = fake_add(vm, &power_device, 0);
    fake_write(dev, SLATE_POWER_EXIT, 200);
    assert_int_equal(atomic_load(&vm->status), EXIT_GUEST_MAX);
    fake_vm_free(vm);
}

static void reset(void **state)
{
    (void)state;
    struct vm *vm = fake_vm_new();
    struct device *dev = fake_add(vm, &power_device, 0);
    fake_write(dev, SLATE_POWER_RESET, 0x1234);
    assert_int_equal(atomic_load(&vm->status), DEVICE_RESET);
    fake_vm_free(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exit_with_a_code),
        cmocka_unit_test(codes_past_123_are_clamped),
        cmocka_unit_test(reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
