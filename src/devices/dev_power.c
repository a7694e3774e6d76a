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

/* The power device has no state: its registers only act. */
static int power_save(struct device *dev, struct device_state *out)
{
    (void)dev, (void)out;
    return 0;
}

static int power_load(struct device *dev, struct device_state *in)
{
    if (!device_state_done(in)) {
        log_error("%s: unexpected saved state", dev->name);
        return -1;
    }
    return 0;
}

const struct device_ops power_device = {
    .name = "power",
    .type = SLATE_DEV_POWER,
    .version = 1,
    .port_count = 0x10,
    .setup = power_setup,
    .pio = power_pio,
    .state_version = 1,
    .save = power_save,
    .load = power_load,
};
