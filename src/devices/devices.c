/* devices.c - the list of device types; the only place that names them all. */
#include "device.h"
#include "options.h"

#include "slate/slate.h"

#include <stdatomic.h>
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

/* The common IRQ_VECTOR/IRQ_CPU registers, then the device's own. Registers are 32-bit at
 * 4-byte-aligned offsets; narrower accesses see the low bytes. */
void device_register_io(void *opaque, struct bus_io *io)
{
    struct device *dev = opaque;
    const struct device_ops *ops = dev->ops;
    if (io->offset & 3) {
        device_warn(dev, "%s: unaligned register access at offset %#llx", dev->name,
                    (unsigned long long)io->offset);
        if (!io->is_write)
            io->value = ~0ULL;
        return;
    }
    if (io->is_write)
        io->value &= io->width >= 4 ? 0xFFFFFFFFULL : (1ULL << (8 * io->width)) - 1;
    uint64_t irq_end = ops->irq_reg + (uint64_t)SLATE_IRQ_STRIDE * ops->irq_count;
    if (ops->irq_count && io->offset >= ops->irq_reg && io->offset < irq_end) {
        unsigned index = (unsigned)((io->offset - ops->irq_reg) / SLATE_IRQ_STRIDE);
        struct irq_line *line = &dev->irq[index];
        bool is_vector = (io->offset - ops->irq_reg) % SLATE_IRQ_STRIDE == SLATE_IRQ_VECTOR;
        if (!io->is_write) {
            io->value = is_vector ? atomic_load(&line->vector) : atomic_load(&line->cpu);
            return;
        }
        uint32_t vector = is_vector ? (uint32_t)io->value : atomic_load(&line->vector);
        uint32_t cpu = is_vector ? atomic_load(&line->cpu) : (uint32_t)io->value;
        if (cpu >= device_cpu_count(dev))
            cpu = 0; /* documented: a CPU that does not exist means CPU 0 */
        if (vector > 255 || (vector != 0 && vector < 32)) {
            device_warn(dev, "%s: IRQ vector %u is invalid (use 32..255)", dev->name, vector);
            device_route(dev, index, 0, cpu); /* refused: the line is disabled */
            return;
        }
        device_route(dev, index, vector, cpu);
        if (vector && ops->irq_enabled)
            ops->irq_enabled(dev, index); /* deliver what is pending */
        return;
    }
    ops->pio(dev, io);
}

void input_sinks_attach(struct input_sinks *s, struct device *dev, const struct input_sink *sink)
{
    pthread_mutex_lock(&s->lock);
    if (sink && sink->key)
        s->key = dev, s->key_ops = sink;
    else if (sink && sink->pointer)
        s->pointer = dev, s->pointer_ops = sink;
    if (!sink && s->key == dev)
        s->key = NULL, s->key_ops = NULL;
    if (!sink && s->pointer == dev)
        s->pointer = NULL, s->pointer_ops = NULL;
    pthread_mutex_unlock(&s->lock);
}

void input_sinks_key(struct input_sinks *s, uint32_t keysym, bool down)
{
    pthread_mutex_lock(&s->lock);
    if (s->key)
        s->key_ops->key(s->key, keysym, down);
    pthread_mutex_unlock(&s->lock);
}

void input_sinks_pointer(struct input_sinks *s, int x, int y, uint32_t buttons)
{
    pthread_mutex_lock(&s->lock);
    if (s->pointer)
        s->pointer_ops->pointer(s->pointer, x, y, buttons);
    pthread_mutex_unlock(&s->lock);
}
