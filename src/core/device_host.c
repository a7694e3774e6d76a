/* device_host.c - the machine as devices see it: the core's side of device.h. Everything a device
 * needs from KVM, the event loop or the other rooms goes through here, so a device file never
 * includes vm.h and tests/unit/fake_machine.c can stand in for all of it. */
#include "device.h"

#include "record.h"
#include "snapshot.h"
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

const struct slate_config *device_config(const struct device *dev) { return dev->vm->cfg; }

void *device_ram(struct device *dev, uint64_t gpa, uint64_t len)
{
    return memory_ram_ptr(&dev->vm->mem, gpa, len);
}

void device_raise(struct device *dev, unsigned line)
{
    if (line < dev->ops->irq_count)
        irq_line_raise(&dev->irq[line]);
}

void device_route(struct device *dev, unsigned line, uint32_t vector, uint32_t cpu)
{
    irq_line_configure(&dev->irq[line], vector, cpu);
}

enum device_record_mode device_record_mode(const struct device *dev)
{
    const struct slate_config *cfg = dev->vm->cfg;
    if (dev->vm->record && record_replaying(dev->vm))
        return DEVICE_REPLAYING; /* (also a recording that crashed, run again for time travel) */
    return cfg->record_path ? DEVICE_RECORDING : cfg->replay_path ? DEVICE_REPLAYING : DEVICE_LIVE;
}

void device_wrote(struct device *dev, uint64_t gpa, const void *host, uint64_t len)
{
    if (dev->vm->record)
        record_wrote(dev->vm, gpa, host, len);
}

void device_record_kick(struct device *dev)
{
    if (dev->vm->record)
        vcpu_kick(&dev->vm->vcpus[0]);
}

int device_doorbell(struct device *dev, uint16_t offset, int fd)
{
    if (device_record_mode(dev) != DEVICE_LIVE)
        return 0; /* an exit, handled where the log can place it */
    struct kvm_ioeventfd doorbell = {.addr = (uint64_t)dev->port_base + offset, .len = 4, .fd = fd,
                                     .flags = KVM_IOEVENTFD_FLAG_PIO};
    if (ioctl(dev->vm->vm_fd, KVM_IOEVENTFD, &doorbell) < 0) {
        int err = -errno;
        log_error("%s: KVM_IOEVENTFD at port %#x: %s", dev->name, dev->port_base + offset,
                  strerror(errno));
        return err;
    }
    return 0;
}

int device_watch(struct device *dev, struct event_source *src, uint32_t events)
{
    return event_add(&dev->vm->loop, src, events);
}

int device_watch_modify(struct device *dev, struct event_source *src, uint32_t events)
{
    return event_modify(&dev->vm->loop, src, events);
}

void device_unwatch(struct device *dev, struct event_source *src) { event_remove(&dev->vm->loop, src); }

bool device_window_dirty(struct device *dev, unsigned long *bitmap)
{
    bool handled = false, known = each_window_dirty(dev->vm, dev->window_slot, bitmap, &handled);
    if (handled) /* --each reads the log too: it hands the device its share */
        return known;
    struct kvm_dirty_log log = {.slot = dev->window_slot, .dirty_bitmap = bitmap};
    return ioctl(dev->vm->vm_fd, KVM_GET_DIRTY_LOG, &log) == 0;
}

void device_stop_machine(struct device *dev, int status)
{
    vm_request_stop(dev->vm, status == DEVICE_RESET ? VM_STATUS_RESET : status);
}

int device_machine_status(const struct device *dev)
{
    int status = atomic_load(&dev->vm->status);
    return status == VM_STATUS_RESET ? DEVICE_RESET : status;
}

int64_t device_clock_ns(const struct device *dev) { return vm_clock_ns(dev->vm); }

int64_t device_host_time(const struct device *dev, int64_t guest_ns)
{
    return vm_host_time(dev->vm, guest_ns);
}

unsigned device_cpu_count(const struct device *dev) { return dev->vm->vcpu_count; }

const struct boot_screen *device_boot_screen(const struct device *dev) { return &dev->vm->plan.screen; }

struct console *device_console(struct device *dev) { return dev->vm->console; }

void device_warn(struct device *dev, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    log_warn_limited(&dev->vm->guest_limit, "%s", text);
}

int device_add_hypercall(struct device *dev, uint64_t function, device_hypercall_fn fn)
{
    return vm_add_hypercall(dev->vm, &(struct hypercall){.function = function, .device_fn = fn,
                                                          .opaque = dev});
}

void device_attach_input(struct device *dev, const struct input_sink *sink)
{
    input_sinks_attach(&dev->vm->inputs, dev, sink);
}

void device_input_key(struct device *from, uint32_t keysym, bool down)
{
    input_sinks_key(&from->vm->inputs, keysym, down);
}

void device_input_pointer(struct device *from, int x, int y, uint32_t buttons)
{
    input_sinks_pointer(&from->vm->inputs, x, y, buttons);
}

void device_offer_screenshot(struct device *dev, device_screenshot_fn fn)
{
    dev->vm->screen = fn ? dev : NULL;
    dev->vm->screenshot = fn;
}
