/* vm_devices.c - the one place that takes resources from KVM for the devices: each gets its ports
 * on the bus, its shared window as a memory slot, its interrupt lines, and its line in the info
 * block's device table; and gives them back. */
#include "vm.h"

#include "info.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static int device_create(struct vm *vm, const struct device_place *place)
{
    const struct device_ops *ops = place->ops;
    struct device *dev = &vm->devices[vm->device_count];
    *dev = (struct device){.ops = ops, .vm = vm, .port_base = place->port_base};
    snprintf(dev->name, sizeof(dev->name), "%s%u", ops->name, place->index);
    for (unsigned i = 0; i < DEVICE_MAX_IRQS; i++)
        dev->irq[i].fd = -1;
    for (unsigned i = 0; i < ops->irq_count; i++)
        if (irq_line_init(vm, &dev->irq[i]))
            return -1;
    if (place->window_bytes) {
        dev->window_gpa = place->window_gpa;
        dev->window_bytes = place->window_bytes;
        dev->window = vm_map_anonymous(place->window_bytes);
        dev->window_slot = vm->slot_count;
        if (!dev->window || vm_add_slot(vm, dev->window_gpa, place->window_bytes, dev->window,
                                        ops->window_dirty_log || vm->cfg->each ? KVM_MEM_LOG_DIRTY_PAGES : 0,
                                        dev->name))
            return -1;
    }
    vm->device_count++; /* from here on, teardown covers it */
    if (ops->setup(dev, place->index))
        return -1;
    int rc = bus_register(&vm->pio, dev->port_base, ops->port_count, dev->name, device_register_io, dev);
    if (rc) {
        log_error("%s: cannot claim ports %#x+%u: %s", dev->name, dev->port_base,
                  ops->port_count, strerror(-rc));
        return -1;
    }
    return 0;
}

int vm_setup_devices(struct vm *vm)
{
    struct device_place places[DEVICE_MAX];
    char err[256];
    int count = device_plan(vm->cfg, places, err, sizeof(err));
    if (count < 0) {
        log_error("%s", err);
        return -1;
    }
    for (int i = 0; i < count; i++)
        if (device_create(vm, &places[i]))
            return -1;
    return 0;
}

int vm_write_info(struct vm *vm)
{
    struct slate_device table[VM_MAX_DEVICES];
    for (unsigned i = 0; i < vm->device_count; i++) {
        const struct device *d = &vm->devices[i];
        table[i] = (struct slate_device){
            .type = d->ops->type,
            .version = d->ops->version,
            .port_base = d->port_base,
            .port_count = d->ops->port_count,
            .window_base = d->window_gpa,
            .window_size = d->ops->window_size,
            .irq_reg = d->ops->irq_reg,
            .irq_count = d->ops->irq_count,
        };
        memcpy(table[i].name, d->name, sizeof(table[i].name));
    }
    struct info_input in = {
        .mem = &vm->mem,
        .cpu_count = vm->vcpu_count,
        .tsc_khz = vm->tsc_khz,
        .boot_tsc = vm->boot_tsc,
        .boot_unix_ns = vm->boot_unix_ns,
        .boot_stack_top = vm->plan.entry == ENTRY_REAL ? 0 : loader_boot_stack_top(&vm->mem),
        .cmdline = vm->cfg->append,
        .plan = &vm->plan,
        .devices = table,
        .device_count = vm->device_count,
    };
    if (info_build(vm->info, SLATE_INFO_MAX_SIZE, &in) < 0) {
        log_error("the info block does not fit in %llu bytes",
                  (unsigned long long)SLATE_INFO_MAX_SIZE);
        return -1;
    }
    return 0;
}

void vm_teardown_devices(struct vm *vm)
{
    for (unsigned i = vm->device_count; i-- > 0;) {
        struct device *dev = &vm->devices[i];
        if (dev->ops->teardown)
            dev->ops->teardown(dev);
        for (unsigned j = 0; j < dev->ops->irq_count; j++)
            irq_line_close(&dev->irq[j]);
        if (dev->window)
            munmap(dev->window, dev->window_bytes);
    }
}
