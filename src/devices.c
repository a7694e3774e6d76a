/* devices.c - the list of device types; the only place that names them all. */
#include "device.h"

extern const struct device_ops serial_device;
extern const struct device_ops power_device;
extern const struct device_ops timer_device;
extern const struct device_ops block_device;
extern const struct device_ops net_device;
extern const struct device_ops display_device;
extern const struct device_ops keyboard_device;
extern const struct device_ops pointer_device;

const struct device_ops *const device_types[] = {
    &serial_device,
    &power_device,
    &timer_device,
    &block_device,
    &net_device,
    &display_device,
    &keyboard_device,
    &pointer_device,
    NULL,
};
