/* libFuzzer harness: every register of the devices that are only registers (serial, timer and
 * clock, power, keyboard, pointer), built by their real setup, reached through the port bus as
 * a vCPU exit reaches them (any port, width and value, aligned or not, the IRQ registers
 * included), interleaved with what a VNC client can send (any keysym, any pointer position and
 * button mask). Checks that the keyboard queue never claims more than its 64 events. */
#include "fuzz_devices.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const struct device_ops serial_device, timer_device, power_device, keyboard_device,
    pointer_device;

static const struct device_ops *const types[] = {&serial_device, &timer_device, &power_device,
                                                 &keyboard_device, &pointer_device};
#define TYPES (sizeof(types) / sizeof(types[0]))

static uint32_t read_register(struct device *dev, uint64_t offset) { return fake_read(dev, offset); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct device *devs[TYPES];
    struct vm *m = fuzz_vm();
    if (!devs[0]) {
        m->cpus = 2;
        for (size_t i = 0; i < TYPES; i++)
            assert((devs[i] = fake_add(m, types[i], 0)));
    }
    fuzz_vm_reset(m);
    for (size_t i = 0; i < TYPES; i++) { /* fresh state for every input */
        if (types[i]->teardown)
            types[i]->teardown(devs[i]);
        assert(types[i]->setup(devs[i], 0) == 0);
    }

    struct fuzz_input in = {data, size};
    while (in.left) {
        switch (fuzz_take(&in, 1) % 4) {
        case 0: case 1: fuzz_register_access(&in, devs[fuzz_take(&in, 1) % TYPES]); break;
        case 2: {
            uint32_t keysym = fuzz_take(&in, 1) & 0x80 ? (uint32_t)fuzz_take(&in, 4)
                                                       : 0xFF00 | (uint32_t)fuzz_take(&in, 1);
            device_input_key(devs[3], keysym, fuzz_take(&in, 1) & 1);
            break;
        }
        default:
            device_input_pointer(devs[4], (int)fuzz_take(&in, 4), (int)fuzz_take(&in, 4), (uint32_t)fuzz_take(&in, 1));
        }
        assert(read_register(devs[3], SLATE_KEYBOARD_PENDING) <= 64);
    }
    return 0;
}
