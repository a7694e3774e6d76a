/* fake_machine.c - see fake_machine.h. */
#include "fake_machine.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(1);
}

struct fake_machine *fake_machine(void)
{
    static struct fake_machine m;
    static bool built;
    if (built)
        return &m;
    built = true;
    /* Device warnings are expected by the thousand here. */
    log_output = fopen("/dev/null", "w");
    if (!log_output)
        die("/dev/null");
    struct vm *vm = &m.vm;
    m.cfg.ram_size = FAKE_RAM_BYTES;
    m.cfg.smp = 1;
    m.cfg.kernel = "fuzz";
    m.console = (struct console){.out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC), .in_fd = -1};
    pthread_mutex_init(&m.console.lock, NULL);
    *vm = (struct vm){.cfg = &m.cfg, .console = &m.console, .kvm_fd = -1, .vm_fd = -1,
                      .vcpus = &m.cpu, .vcpu_count = 1, .status = -1,
                      .unclaimed_limit = RATELIMIT_INIT, .guest_limit = RATELIMIT_INIT};
    memory_layout(&vm->mem, FAKE_RAM_BYTES);
    if (memory_map(&vm->mem))
        die("memory_map");
    if (event_loop_init(&vm->loop))
        die("event_loop_init");
    pthread_mutex_init(&vm->irq_lock, NULL);
    pthread_mutex_init(&vm->pause_lock, NULL);
    pthread_mutex_init(&vm->inputs.lock, NULL);
    pthread_cond_init(&vm->pause_cond, NULL);
    vm->routes = calloc(1, sizeof(*vm->routes) + 256 * sizeof(vm->routes->entries[0]));
    if (!vm->routes)
        die("calloc");
    m.cpu = (struct vcpu){.vm = vm, .fd = -1, .run = &m.run};
    pthread_mutex_init(&m.cpu.lock, NULL);
    pthread_mutex_init(&m.cpu.kick_lock, NULL);
    pthread_mutex_init(&m.cpu.debug_lock, NULL);
    pthread_cond_init(&m.cpu.cond, NULL);
    vm->parked = vm->vcpu_count; /* its vCPU never runs: a pause needs nothing to wait for */
    vm->boot_mono_ns = clock_now_ns();
    return &m;
}

struct device *fake_device_add(struct fake_machine *m, const struct device_ops *ops, bool run_setup)
{
    struct vm *vm = &m->vm;
    if (vm->device_count == VM_MAX_DEVICES)
        die("too many fake devices");
    struct device *dev = &vm->devices[vm->device_count++];
    *dev = (struct device){.ops = ops, .vm = vm};
    snprintf(dev->name, sizeof(dev->name), "%s0", ops->name);
    dev->port_base = (uint16_t)(0x1000 + 0x100 * (vm->device_count - 1));
    for (unsigned i = 0; i < DEVICE_MAX_IRQS; i++) {
        dev->irq[i] = (struct irq_line){.vm = vm, .gsi = vm->next_gsi++, .fd = -1};
        if (i < ops->irq_count && (dev->irq[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            die("eventfd");
    }
    if (ops->window_size) {
        uint64_t size = (ops->window_size + 0xFFFFF) & ~0xFFFFFULL;
        uint64_t next_window = SLATE_DEVICE_WINDOWS;
        for (unsigned d = 0; d + 1 < vm->device_count; d++)
            next_window += vm->devices[d].window_bytes;
        dev->window_gpa = next_window;
        dev->window_bytes = size;
        dev->window = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (dev->window == MAP_FAILED)
            die("mmap");
    }
    if (run_setup && ops->setup(dev, 0))
        die(ops->name);
    if (bus_register(&vm->pio, dev->port_base, ops->port_count, dev->name, device_register_io, dev))
        die("bus_register");
    return dev;
}

void fake_machine_reset(struct fake_machine *m)
{
    struct vm *vm = &m->vm;
    for (unsigned i = 0; i < vm->mem.ram_count; i++)
        if (madvise(vm->mem.ram[i].host, vm->mem.ram[i].size, MADV_DONTNEED))
            die("madvise");
    for (unsigned d = 0; d < vm->device_count; d++) {
        struct device *dev = &vm->devices[d];
        if (dev->window &&
            madvise(dev->window, dev->window_bytes, MADV_DONTNEED))
            die("madvise");
        for (unsigned i = 0; i < dev->ops->irq_count; i++)
            atomic_store(&dev->irq[i].vector, 0);
    }
    vm->routes->nr = 0;
    vm->parked = vm->vcpu_count;
    vm->holds = 0;
    atomic_store(&vm->status, -1);
    atomic_store(&vm->stopping, false);
    uint64_t drained;
    while (read(vm->loop.stop_fd, &drained, sizeof(drained)) > 0)
        ;
}

uint64_t fuzz_address(struct fuzz_input *in, const struct fake_machine *m)
{
    return fuzz_guest_address(in, m->vm.mem.ram_total);
}

void fuzz_register_access(struct fuzz_input *in, struct device *dev)
{
    static const unsigned widths[4] = {1, 2, 4, 8};
    uint8_t how = (uint8_t)fuzz_take(in, 1);
    struct bus_io io = {
        .offset = fuzz_take(in, 1) % (dev->ops->port_count + 8u),
        .width = widths[how & 3],
        .is_write = how & 4,
        .value = fuzz_take(in, 4),
        .cpu = &dev->vm->vcpus[0],
    };
    /* Through the bus, as a vCPU exit dispatches it: an access past the device's ports finds
     * the next device or nobody. */
    if (!bus_dispatch(&dev->vm->pio, dev->port_base + io.offset, &io) && !io.is_write)
        io.value = ~0ULL;
}
