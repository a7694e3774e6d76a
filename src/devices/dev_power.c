/* dev_power.c - the power device (type 8): exit with a code, or reset the machine. */
#include "device.h"
#include "options.h"

#include <inttypes.h>

static void power_pio(struct device *dev, struct bus_io *io)
{
    if (!io->is_write) {
        io->value = 0;
        return;
    }
    if (io->offset == SLATE_POWER_EXIT) {
        int status = (int)io->value;
        if (io->value > EXIT_GUEST_MAX) {
            log_warn("%s: guest exit code %" PRIu64 " is outside 0..%d; exiting with %d",
                     dev->name, io->value, EXIT_GUEST_MAX, EXIT_GUEST_MAX);
            status = EXIT_GUEST_MAX;
        }
        device_stop_machine(dev, status);
    } else if (io->offset == SLATE_POWER_RESET) {
        device_stop_machine(dev, DEVICE_RESET);
    }
}

static int power_setup(struct device *dev, unsigned index)
{
    (void)dev;
    (void)index;
    return 0;
}

const struct device_ops power_device = {
    .name = "power",
    .type = SLATE_DEV_POWER,
    .version = 1,
    .port_count = 0x10,
    .setup = power_setup,
    .pio = power_pio,
};
