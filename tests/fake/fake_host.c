/* fake_host.c - see fake_host.h: device.h implemented without KVM. */
#include "fake_host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(99);
}

static unsigned device_slot(const struct device *dev)
{
    return (unsigned)(dev - dev->vm->devices);
}

struct vm *fake_vm_new(void)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        die("calloc");
    vm->cfg.ram_size = FAKE_RAM_BYTES;
    vm->cfg.smp = 1;
    vm->cfg.kernel = "fake";
    vm->console = (struct console){.out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC), .in_fd = -1};
    pthread_mutex_init(&vm->console.lock, NULL);
    vm->ram = mmap(NULL, FAKE_RAM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vm->ram == MAP_FAILED)
        die("mmap");
    if (event_loop_init(&vm->loop))
        die("event_loop_init");
    vm->cpus = 1;
    atomic_store(&vm->status, -1);
    vm->boot_ns = clock_now_ns();
    pthread_mutex_init(&vm->lock, NULL);
    pthread_mutex_init(&vm->inputs.lock, NULL);
    return vm;
}

void fake_vm_free(struct vm *vm)
{
    for (unsigned i = vm->device_count; i-- > 0;) {
        struct device *dev = &vm->devices[i];
        if (dev->ops->teardown)
            dev->ops->teardown(dev);
        if (dev->window)
            munmap(dev->window, dev->window_bytes);
    }
    event_loop_close(&vm->loop);
    munmap(vm->ram, FAKE_RAM_BYTES);
    if (vm->console.out_fd >= 0)
        close(vm->console.out_fd);
    if (vm->console.in_fd >= 0)
        close(vm->console.in_fd);
    pthread_mutex_destroy(&vm->console.lock);
    pthread_mutex_destroy(&vm->lock);
    pthread_mutex_destroy(&vm->inputs.lock);
    free(vm);
}

struct device *fake_add(struct vm *vm, const struct device_ops *ops, unsigned index)
{
    if (vm->device_count == DEVICE_MAX)
        die("too many fake devices");
    struct device *dev = &vm->devices[vm->device_count];
    *dev = (struct device){.ops = ops, .vm = vm,
                           .port_base = (uint16_t)(0x1000 + 0x100 * vm->device_count)};
    snprintf(dev->name, sizeof(dev->name), "%s%u", ops->name, index);
    for (unsigned i = 0; i < DEVICE_MAX_IRQS; i++)
        dev->irq[i] = (struct irq_line){.fd = -1};
    if (ops->window_size) {
        dev->window_bytes = (ops->window_size + 0xFFFFF) & ~0xFFFFFULL;
        dev->window_gpa = SLATE_DEVICE_WINDOWS; /* (the fake does not map windows for the guest) */
        dev->window = mmap(NULL, dev->window_bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (dev->window == MAP_FAILED)
            die("mmap");
    }
    vm->device_count++;
    if (ops->setup(dev, index)) {
        if (ops->teardown)
            ops->teardown(dev);
        if (dev->window)
            munmap(dev->window, dev->window_bytes);
        vm->device_count--;
        return NULL;
    }
    return dev;
}

uint32_t fake_read_on(struct device *dev, uint64_t offset, unsigned cpu)
{
    struct bus_io io = {.offset = offset, .width = 4, .cpu_index = cpu};
    device_register_io(dev, &io);
    return (uint32_t)io.value;
}

uint32_t fake_read(struct device *dev, uint64_t offset) { return fake_read_on(dev, offset, 0); }

void fake_write(struct device *dev, uint64_t offset, uint32_t value)
{
    struct bus_io io = {.offset = offset, .width = 4, .is_write = true, .value = value};
    device_register_io(dev, &io);
}

unsigned fake_raised(struct device *dev, unsigned line)
{
    return atomic_load(&dev->vm->raised[device_slot(dev)][line]);
}

bool fake_ring(struct device *dev, uint16_t offset)
{
    struct vm *vm = dev->vm;
    unsigned slot = device_slot(dev);
    int fd = -1;
    pthread_mutex_lock(&vm->lock);
    for (unsigned i = 0; i < vm->doorbell_count[slot]; i++)
        if (vm->doorbells[slot][i].offset == offset)
            fd = vm->doorbells[slot][i].fd;
    pthread_mutex_unlock(&vm->lock);
    return fd >= 0 && eventfd_write(fd, 1) == 0;
}

int fake_serve(struct vm *vm, int timeout_ms) { return event_loop_run_once(&vm->loop, timeout_ms); }

int64_t fake_hypercall(struct vm *vm, uint64_t function)
{
    const uint64_t args[4] = {0};
    for (unsigned i = 0; i < vm->hypercall_count; i++)
        if (vm->hypercalls[i].function == function)
            return vm->hypercalls[i].fn(vm->hypercalls[i].dev, args);
    return SLATE_ENOSYS;
}

bool fake_wait(bool (*done)(void *arg), void *arg, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited++) {
        if (done(arg))
            return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return done(arg);
}

/* ---- device.h ------------------------------------------------------------------------------ */

const struct slate_config *device_config(const struct device *dev) { return &dev->vm->cfg; }

void *device_ram(struct device *dev, uint64_t gpa, uint64_t len)
{
    if (gpa >= FAKE_RAM_BYTES || len > FAKE_RAM_BYTES - gpa)
        return NULL;
    return dev->vm->ram + gpa;
}

void device_raise(struct device *dev, unsigned line)
{
    if (line < dev->ops->irq_count && atomic_load(&dev->irq[line].vector))
        atomic_fetch_add(&dev->vm->raised[device_slot(dev)][line], 1);
}

void device_route(struct device *dev, unsigned line, uint32_t vector, uint32_t cpu)
{
    atomic_store(&dev->irq[line].vector, vector);
    atomic_store(&dev->irq[line].cpu, cpu);
}

int device_doorbell(struct device *dev, uint16_t offset, int fd)
{
    struct vm *vm = dev->vm;
    unsigned slot = device_slot(dev);
    pthread_mutex_lock(&vm->lock);
    int rc = -ENOSPC;
    if (vm->doorbell_count[slot] < FAKE_DOORBELLS) {
        vm->doorbells[slot][vm->doorbell_count[slot]].offset = offset;
        vm->doorbells[slot][vm->doorbell_count[slot]++].fd = fd;
        rc = 0;
    }
    pthread_mutex_unlock(&vm->lock);
    return rc;
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
    if (dev->vm->dirty_unknown)
        return false;
    memset(bitmap, 0xFF, dev->window_bytes / 4096 / 8); /* the fake cannot tell: all of it */
    return true;
}

void device_stop_machine(struct device *dev, int status)
{
    int none = -1;
    atomic_compare_exchange_strong(&dev->vm->status, &none, status);
    atomic_fetch_add(&dev->vm->stops, 1);
}

int device_machine_status(const struct device *dev) { return atomic_load(&dev->vm->status); }

enum device_record_mode device_record_mode(const struct device *dev)
{
    (void)dev;
    return DEVICE_LIVE;
}

void device_record_kick(struct device *dev) { (void)dev; }

void device_wrote(struct device *dev, uint64_t gpa, const void *host, uint64_t len)
{
    (void)dev, (void)gpa, (void)host, (void)len;
}

int64_t device_clock_ns(const struct device *dev) { return clock_now_ns() - dev->vm->boot_ns; }

int64_t device_host_time(const struct device *dev, int64_t guest_ns) { return dev->vm->boot_ns + guest_ns; }

unsigned device_cpu_count(const struct device *dev) { return dev->vm->cpus; }

const struct boot_screen *device_boot_screen(const struct device *dev) { return &dev->vm->boot_screen; }

struct console *device_console(struct device *dev) { return &dev->vm->console; }

void device_warn(struct device *dev, const char *fmt, ...)
{
    struct vm *vm = dev->vm;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&vm->lock);
    vsnprintf(vm->last_warning, sizeof(vm->last_warning), fmt, ap);
    pthread_mutex_unlock(&vm->lock);
    va_end(ap);
    atomic_fetch_add(&vm->warnings, 1);
}

int device_add_hypercall(struct device *dev, uint64_t function, device_hypercall_fn fn)
{
    struct vm *vm = dev->vm;
    for (unsigned i = 0; i < vm->hypercall_count; i++)
        if (vm->hypercalls[i].function == function)
            return -EEXIST;
    if (vm->hypercall_count == sizeof(vm->hypercalls) / sizeof(vm->hypercalls[0]))
        return -ENOSPC;
    vm->hypercalls[vm->hypercall_count].function = function;
    vm->hypercalls[vm->hypercall_count].fn = fn;
    vm->hypercalls[vm->hypercall_count++].dev = dev;
    return 0;
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
