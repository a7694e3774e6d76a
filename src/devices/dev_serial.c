/* dev_serial.c - the serial console (type 3): output to the console backend, input buffered from
 * it with an interrupt when bytes arrive. */
#include "console.h"
#include "device.h"
#include "options.h"

#include <pthread.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define SERIAL_RX_SIZE 4096

struct serial {
    struct device *dev;
    pthread_mutex_t lock;
    uint8_t rx[SERIAL_RX_SIZE];
    unsigned rx_head, rx_count;
    uint32_t irq_status;
    struct event_source input;
    bool watching; /* input is in the event loop and not paused for a full buffer */
    bool pollable; /* false for a regular file or /dev/null: read on demand instead */
    bool input_done;
};

/* Called with s->lock held when input arrived: raises the RX interrupt on a 0 -> 1 edge of its
 * status bit. Never called on an acknowledge (the rule for every device: only a new event
 * raises a line), so a handler that acknowledges and leaves the reading to its main loop gets
 * no storm of interrupts. */
static void serial_update_irq(struct serial *s)
{
    if (s->rx_count && !(s->irq_status & SLATE_SERIAL_IRQ_RX)) {
        s->irq_status |= SLATE_SERIAL_IRQ_RX;
        device_raise(s->dev, 0);
    }
}

/* Reads what the console has into the free part of the ring. Lock held. Returns the last escape
 * command typed, for the caller to carry out once the lock is released. */
static enum console_command serial_fill(struct serial *s)
{
    struct device *dev = s->dev;
    enum console_command last = CONSOLE_NONE;
    unsigned before = s->rx_count;
    while (!s->input_done && s->rx_count < SERIAL_RX_SIZE) {
        unsigned tail = (s->rx_head + s->rx_count) % SERIAL_RX_SIZE;
        unsigned room = tail >= s->rx_head ? SERIAL_RX_SIZE - tail : s->rx_head - tail;
        enum console_command cmd;
        ssize_t n = console_read(device_console(dev), s->rx + tail, room, &cmd);
        if (cmd != CONSOLE_NONE)
            last = cmd;
        if (n < 0) {
            s->input_done = true;
            s->irq_status |= SLATE_SERIAL_IRQ_CLOSED; /* reported once: it cannot happen again */
            device_raise(s->dev, 0);
            if (s->watching)
                device_unwatch(dev, &s->input);
            s->watching = false;
        }
        if (n <= 0)
            break;
        s->rx_count += (unsigned)n;
        if (s->pollable)
            break; /* one read per readiness event: the next read could block */
    }
    if (s->pollable && s->watching && s->rx_count == SERIAL_RX_SIZE) {
        device_watch_modify(dev, &s->input, 0); /* full: the guest must read first */
        s->watching = false;
    }
    if (s->rx_count > before)
        serial_update_irq(s); /* new input only */
    return last;
}

static void serial_on_input(void *opaque, uint32_t events)
{
    struct serial *s = opaque;
    (void)events;
    pthread_mutex_lock(&s->lock);
    enum console_command cmd = serial_fill(s);
    pthread_mutex_unlock(&s->lock);
    console_run_command(device_console(s->dev), cmd); /* outside the lock: a pause waits for
                                                        * every vCPU, which may wait for it */
}

/* Lock held. Resumes reading once the guest has made room. */
static void serial_refill(struct serial *s)
{
    if (s->input_done)
        return;
    if (!s->pollable) {
        if (s->rx_count == 0)
            serial_fill(s);
    } else if (!s->watching && s->rx_count < SERIAL_RX_SIZE) {
        if (device_watch_modify(s->dev, &s->input, EPOLLIN) == 0)
            s->watching = true;
    }
}

static uint32_t serial_read_data(struct serial *s)
{
    serial_refill(s);
    if (!s->rx_count)
        return 0xFFFFFFFF;
    uint8_t byte = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
    s->rx_count--;
    serial_refill(s);
    return byte;
}

static void serial_pio(struct device *dev, struct bus_io *io)
{
    struct serial *s = dev->state;
    if (io->is_write && io->offset == SLATE_SERIAL_DATA) {
        uint8_t byte = (uint8_t)io->value;
        console_write(device_console(dev), &byte, 1);
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (io->is_write && io->offset == SLATE_SERIAL_IRQ_STATUS) {
        s->irq_status &= ~(uint32_t)io->value; /* only new input raises it again */
    } else if (!io->is_write && io->offset == SLATE_SERIAL_DATA) {
        io->value = serial_read_data(s);
    } else if (!io->is_write && io->offset == SLATE_SERIAL_STATUS) {
        serial_refill(s);
        io->value = SLATE_SERIAL_TX_READY | (s->rx_count ? SLATE_SERIAL_RX_READY : 0) |
                    (s->input_done && !s->rx_count ? SLATE_SERIAL_RX_CLOSED : 0);
    } else if (!io->is_write && io->offset == SLATE_SERIAL_IRQ_STATUS) {
        io->value = s->irq_status;
    } else if (!io->is_write) {
        io->value = 0; /* reserved registers read as zero and ignore writes */
    }
    pthread_mutex_unlock(&s->lock);
}

static void serial_irq_enabled(struct device *dev, unsigned line)
{
    struct serial *s = dev->state;
    (void)line;
    pthread_mutex_lock(&s->lock);
    serial_refill(s); /* input from a file: read now, so its end is reported without polling */
    if (s->irq_status)
        device_raise(dev, 0);
    else
        serial_update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

static int serial_setup(struct device *dev, unsigned index)
{
    (void)index;
    struct serial *s = calloc(1, sizeof(*s));
    if (!s) {
        log_error("out of memory");
        return -ENOMEM;
    }
    s->dev = dev;
    dev->state = s;
    pthread_mutex_init(&s->lock, NULL);
    s->input = (struct event_source){.fd = device_console(dev)->in_fd, .fn = serial_on_input,
                                     .opaque = s};
    if (s->input.fd < 0) {
        s->input_done = true;
        s->irq_status = SLATE_SERIAL_IRQ_CLOSED;
        return 0;
    }
    int rc = device_watch(dev, &s->input, EPOLLIN);
    if (rc == -EPERM) {
        s->pollable = false; /* a regular file: epoll refuses it, but reads never block */
        return 0;
    }
    if (rc) {
        log_error("cannot watch the console input: %s", strerror(-rc));
        return rc;
    }
    s->pollable = s->watching = true;
    return 0;
}

static void serial_teardown(struct device *dev)
{
    struct serial *s = dev->state;
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s);
    dev->state = NULL;
}

/* The input not yet read, oldest first, and whether the guest has been told of it. Whether the
 * console's input has ended belongs to the backend, which is the restoring slate's own. */
static int serial_save(struct device *dev, struct device_state *out)
{
    struct serial *s = dev->state;
    pthread_mutex_lock(&s->lock);
    uint32_t count = s->rx_count, pending = s->irq_status & SLATE_SERIAL_IRQ_RX;
    device_state_put(out, &count, sizeof(count));
    device_state_put(out, &pending, sizeof(pending));
    for (unsigned i = 0; i < count; i++)
        device_state_put(out, &s->rx[(s->rx_head + i) % SERIAL_RX_SIZE], 1);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int serial_load(struct device *dev, struct device_state *in)
{
    struct serial *s = dev->state;
    uint32_t count, pending;
    if (!device_state_get(in, &count, sizeof(count)) || !device_state_get(in, &pending, sizeof(pending)) ||
        count > SERIAL_RX_SIZE || (pending & ~(uint32_t)SLATE_SERIAL_IRQ_RX) || in->len - in->pos != count) {
        log_error("%s: the saved input queue is malformed", dev->name);
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    device_state_get(in, s->rx, count);
    s->rx_head = 0, s->rx_count = count;
    s->irq_status = (s->irq_status & ~(uint32_t)SLATE_SERIAL_IRQ_RX) | pending;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

const struct device_ops serial_device = {
    .name = "serial",
    .type = SLATE_DEV_SERIAL,
    .version = 1,
    .port_count = 0x20,
    .irq_reg = SLATE_SERIAL_IRQ_REG,
    .irq_status_reg = SLATE_SERIAL_IRQ_STATUS,
    .irq_count = 1,
    .setup = serial_setup,
    .pio = serial_pio,
    .irq_enabled = serial_irq_enabled,
    .teardown = serial_teardown,
    .state_version = 1,
    .save = serial_save,
    .load = serial_load,
};
