/* devices.c - the list of device types; the only place that names them all. */
#include "device.h"

#include "slate/slate.h"

#include <stdio.h>

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

int device_plan(const struct slate_config *cfg, struct device_place places[DEVICE_MAX], char *err,
                size_t errlen)
{
    unsigned count = 0;
    uint64_t next_window = SLATE_DEVICE_WINDOWS;
    for (const struct device_ops *const *ops = device_types; *ops; ops++) {
        unsigned n = (*ops)->instances ? (*ops)->instances(cfg) : 1;
        for (unsigned i = 0; i < n; i++) {
            if (count == DEVICE_MAX) {
                snprintf(err, errlen, "too many devices (at most %d)", DEVICE_MAX);
                return -1;
            }
            struct device_place *p = &places[count];
            *p = (struct device_place){.ops = *ops, .index = i,
                                       .port_base = (uint16_t)(0x1000 + 0x100 * count)};
            if ((*ops)->window_size) {
                p->window_bytes = ((*ops)->window_size + 0xFFFFF) & ~0xFFFFFULL;
                if (next_window + p->window_bytes > SLATE_DEVICE_WINDOWS_END) {
                    snprintf(err, errlen, "%s%u: no room for its %llu-byte window", (*ops)->name,
                             i, (unsigned long long)p->window_bytes);
                    return -1;
                }
                p->window_gpa = next_window;
                next_window += p->window_bytes;
            }
            count++;
        }
    }
    return (int)count;
}
