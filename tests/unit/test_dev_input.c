/* The keyboard and pointer against the fake machine, fed as the display's front ends feed them
 * (device_input_key/pointer): HID usages with characters and modifiers, a 64-event queue that
 * counts overflows, one interrupt per new event (none on an acknowledge), the pointer latched
 * with its wheel, and nothing delivered once a device is gone. */
#include "unit.h"

#include "fake_host.h"

#include <rfb/keysym.h>
#include <stdlib.h>

extern const struct device_ops keyboard_device, pointer_device, power_device;

struct rig {
    struct vm *vm;
    struct device *kbd, *ptr, *front; /* front: any device, standing for the display */
};

static int setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));
    r->vm = fake_vm_new();
    r->front = fake_add(r->vm, &power_device, 0);
    r->kbd = fake_add(r->vm, &keyboard_device, 0);
    r->ptr = fake_add(r->vm, &pointer_device, 0);
    assert_non_null(r->kbd);
    assert_non_null(r->ptr);
    fake_write(r->kbd, SLATE_KEYBOARD_IRQ_REG + SLATE_IRQ_VECTOR, 0x60);
    fake_write(r->ptr, SLATE_POINTER_IRQ_REG + SLATE_IRQ_VECTOR, 0x61);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct rig *r = *state;
    fake_vm_free(r->vm);
    free(r);
    return 0;
}

static void keys_arrive_as_hid_usages(void **state)
{
    struct rig *r = *state;
    device_input_key(r->front, XK_Shift_L, true);
    device_input_key(r->front, XK_A, true);
    device_input_key(r->front, XK_A, false);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_PENDING), 3);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_EVENT), 0xE1 | SLATE_KEYBOARD_PRESSED | SLATE_KEY_MOD_SHIFT << 24);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_CHAR), 0);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_EVENT), 0x04 | SLATE_KEYBOARD_PRESSED | SLATE_KEY_MOD_SHIFT << 24);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_CHAR), 'A');
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_EVENT), 0x04 | SLATE_KEY_MOD_SHIFT << 24);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_EVENT), 0); /* empty */
    device_input_key(r->front, 0x12345678, true); /* no HID usage: dropped */
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_PENDING), 0);
}

static void ctrl_letters_type_control_characters(void **state)
{
    struct rig *r = *state;
    device_input_key(r->front, XK_Control_L, true);
    device_input_key(r->front, XK_c, true);
    fake_read(r->kbd, SLATE_KEYBOARD_EVENT);
    fake_read(r->kbd, SLATE_KEYBOARD_EVENT);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_CHAR), 3);
}

static void the_queue_holds_64_and_counts_overflows(void **state)
{
    struct rig *r = *state;
    for (int i = 0; i < 70; i++)
        device_input_key(r->front, XK_b, i % 2 == 0);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_PENDING), 64);
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_OVERFLOWS), 6);
}

static void one_interrupt_per_new_event(void **state)
{
    struct rig *r = *state;
    device_input_key(r->front, XK_x, true);
    device_input_key(r->front, XK_x, false);
    assert_int_equal(fake_raised(r->kbd, 0), 1); /* the status bit was still set */
    fake_write(r->kbd, SLATE_KEYBOARD_IRQ_STATUS, 1);
    assert_int_equal(fake_raised(r->kbd, 0), 1); /* events queued: still no storm */
    assert_int_equal(fake_read(r->kbd, SLATE_KEYBOARD_IRQ_STATUS), 0);
    device_input_key(r->front, XK_y, true);
    assert_int_equal(fake_raised(r->kbd, 0), 2);
}

static void the_pointer_latches_position_buttons_and_wheel(void **state)
{
    struct rig *r = *state;
    device_input_pointer(r->front, 10, 20, 1);
    device_input_pointer(r->front, 30, -5, 1 | 8); /* wheel up pressed */
    device_input_pointer(r->front, 30, 0, 1);
    device_input_pointer(r->front, 30, 0, 1 | 8);
    device_input_pointer(r->front, 30, 0, 16); /* wheel down, left released */
    assert_int_equal(fake_read(r->ptr, SLATE_POINTER_X), 30);
    assert_int_equal(fake_read(r->ptr, SLATE_POINTER_Y), 0); /* negative: clamped to 0 */
    assert_int_equal(fake_read(r->ptr, SLATE_POINTER_BUTTONS), 0);
    assert_int_equal(fake_read(r->ptr, SLATE_POINTER_WHEEL), 1); /* up, up, down */
    assert_int_equal(fake_read(r->ptr, SLATE_POINTER_WHEEL), 0); /* read clears it */
    assert_int_equal(fake_raised(r->ptr, 0), 1);
    fake_write(r->ptr, SLATE_POINTER_IRQ_STATUS, 1);
    device_input_pointer(r->front, 31, 0, 0);
    assert_int_equal(fake_raised(r->ptr, 0), 2);
}

static void nothing_reaches_a_device_that_is_gone(void **state)
{
    struct rig *r = *state;
    keyboard_device.teardown(r->kbd);
    device_input_key(r->front, XK_a, true); /* would use freed state if it reached it */
    assert_null(r->kbd->state);
    assert_int_equal(keyboard_device.setup(r->kbd, 0), 0); /* for fake_vm_free's teardown */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(keys_arrive_as_hid_usages, setup, teardown),
        cmocka_unit_test_setup_teardown(ctrl_letters_type_control_characters, setup, teardown),
        cmocka_unit_test_setup_teardown(the_queue_holds_64_and_counts_overflows, setup, teardown),
        cmocka_unit_test_setup_teardown(one_interrupt_per_new_event, setup, teardown),
        cmocka_unit_test_setup_teardown(the_pointer_latches_position_buttons_and_wheel, setup, teardown),
        cmocka_unit_test_setup_teardown(nothing_reaches_a_device_that_is_gone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
