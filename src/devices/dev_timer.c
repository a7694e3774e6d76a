/* dev_timer.c - the timer and clock device (type 4): a monotonic and a wall clock, and
 * SLATE_TIMER_COUNT one-shot/periodic timers, each a timerfd in the event loop that raises its
 * own MSI line through an irqfd. */
#include "device.h"
#include "options.h"

#include <pthread.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* A 10 us floor keeps a guest from making the host's event thread spin on timer wake-ups. */
#define TIMER_MIN_PERIOD_NS 10000ULL
#define TIMER_PORTS 0x100

struct timer {
    struct timer_dev *owner;
    unsigned index;
    struct event_source source; /* the timerfd */
    uint64_t delay, period;
    bool armed, error;
    uint32_t expirations;
};

struct timer_dev {
    struct device *dev;
    pthread_mutex_t lock; /* guards the timers and irq_status */
    struct timer timers[SLATE_TIMER_COUNT];
    uint32_t irq_status;
    /* Per-CPU halves latched by CLOCK_LO and WALL_LO, so two CPUs reading at once each get a
     * consistent 64-bit value. */
    uint32_t *clock_hi, *wall_hi;
};

static void set_half(uint64_t *value, bool high, uint32_t half)
{
    if (high)
        *value = (*value & 0xFFFFFFFFULL) | ((uint64_t)half << 32);
    else
        *value = (*value & ~0xFFFFFFFFULL) | half;
}

static void timer_expired(void *opaque, uint32_t events);

/* Lock held. A timer's timerfd is made when it is first armed: most guests use one timer, and
 * four timerfds cost a boot more than the rest of the device. */
static bool timer_open(struct timer_dev *td, struct timer *t)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0) {
        device_warn(td->dev, "%s: timer %u: timerfd_create: %s", td->dev->name, t->index, strerror(errno));
        return false;
    }
    t->source = (struct event_source){.fd = fd, .fn = timer_expired, .opaque = t};
    int rc = device_watch(td->dev, &t->source, EPOLLIN);
    if (rc) {
        device_warn(td->dev, "%s: timer %u: cannot watch its timerfd: %s", td->dev->name, t->index,
                    strerror(-rc));
        close(fd);
        t->source.fd = -1;
        return false;
    }
    return true;
}

/* Lock held. Arms or disarms the timerfd; returns false if the kernel refused. */
static bool timer_program(struct timer_dev *td, struct timer *t, bool absolute)
{
    struct device *dev = td->dev;
    struct itimerspec spec = {0};
    if (t->armed) {
        /* Deadlines past a century are clamped: they never fire either way, and cannot overflow. */
        const uint64_t far = 100ULL * 365 * 24 * 3600 * 1000000000;
        uint64_t delay = t->delay < far ? t->delay : far;
        int64_t guest_deadline = absolute ? (int64_t)delay : device_clock_ns(dev) + (int64_t)delay;
        int64_t host = device_host_time(dev, guest_deadline);
        if (host <= 0)
            host = 1; /* it_value 0 would disarm: a deadline in the past fires now */
        spec.it_value = (struct timespec){host / 1000000000, host % 1000000000};
        spec.it_interval = (struct timespec){(time_t)(t->period / 1000000000), (long)(t->period % 1000000000)};
    }
    if (t->source.fd < 0 && !t->armed)
        return true; /* never armed: nothing to stop */
    if (t->source.fd < 0 && !timer_open(td, t)) {
        t->armed = false;
        return false;
    }
    if (timerfd_settime(t->source.fd, TFD_TIMER_ABSTIME, &spec, NULL) < 0) {
        log_warn("%s: timer %u: timerfd_settime: %s", td->dev->name, t->index, strerror(errno));
        t->armed = false;
        return false;
    }
    return true;
}

/* Lock held. A guest write to CTRL. */
static void timer_control(struct timer_dev *td, struct timer *t, uint32_t ctrl)
{
    struct device *dev = td->dev;
    t->error = false;
    if (ctrl & ~(uint32_t)(SLATE_TIMER_START | SLATE_TIMER_ABSOLUTE)) {
        device_warn(dev, "%s: timer %u: CTRL %#x has unknown bits; refused",
                         dev->name, t->index, ctrl);
        t->error = true;
        return;
    }
    if ((ctrl & SLATE_TIMER_START) && t->period && t->period < TIMER_MIN_PERIOD_NS) {
        device_warn(dev, "%s: timer %u: period %llu ns is below the "
                         "minimum of %llu ns; refused", dev->name, t->index,
                         (unsigned long long)t->period, TIMER_MIN_PERIOD_NS);
        t->error = true;
        return;
    }
    t->armed = ctrl & SLATE_TIMER_START;
    if (t->armed)
        t->expirations = 0; /* a stop keeps the count, so the guest can read it afterwards */
    if (!timer_program(td, t, ctrl & SLATE_TIMER_ABSOLUTE))
        t->error = true;
}

/* Lock held: counts what the timerfd says expired and raises the timer's line on a new event. */
static void timer_take_expirations(struct timer_dev *td, struct timer *t)
{
    uint64_t count;
    /* Read under the lock: a re-arm clears the count, so what is read belongs to this arming. */
    if (t->source.fd < 0 || read(t->source.fd, &count, sizeof(count)) != sizeof(count) || !t->armed)
        return;
    t->expirations += (uint32_t)count;
    if (!t->period)
        t->armed = false;
    uint32_t bit = 1u << t->index;
    if (!(td->irq_status & bit)) {
        td->irq_status |= bit;
        device_raise(td->dev, t->index);
    }
}

/* Event thread: the timerfd fired. */
static void timer_expired(void *opaque, uint32_t events)
{
    struct timer *t = opaque;
    struct timer_dev *td = t->owner;
    (void)events;
    pthread_mutex_lock(&td->lock);
    timer_take_expirations(td, t);
    pthread_mutex_unlock(&td->lock);
}

/* Lock held. A register in timer t's bank. */
static void timer_bank_io(struct timer_dev *td, struct timer *t, unsigned reg, struct bus_io *io)
{
    uint32_t v = (uint32_t)io->value;
    switch (reg) {
    case SLATE_TIMER_DELAY_LO:
    case SLATE_TIMER_DELAY_HI:
        if (io->is_write)
            set_half(&t->delay, reg == SLATE_TIMER_DELAY_HI, v);
        else
            io->value = (uint32_t)(reg == SLATE_TIMER_DELAY_HI ? t->delay >> 32 : t->delay);
        break;
    case SLATE_TIMER_PERIOD_LO:
    case SLATE_TIMER_PERIOD_HI:
        if (io->is_write)
            set_half(&t->period, reg == SLATE_TIMER_PERIOD_HI, v);
        else
            io->value = (uint32_t)(reg == SLATE_TIMER_PERIOD_HI ? t->period >> 32 : t->period);
        break;
    case SLATE_TIMER_CTRL:
        if (io->is_write)
            timer_control(td, t, v);
        else
            io->value = (t->armed ? SLATE_TIMER_ARMED : 0) | (t->error ? SLATE_TIMER_ERROR : 0);
        break;
    case SLATE_TIMER_EXPIRATIONS:
        if (!io->is_write)
            io->value = t->expirations;
        break;
    default:
        if (!io->is_write)
            io->value = 0;
    }
}

/* The clock registers: LO reads latch HI for the reading CPU. */
static void clock_io(struct timer_dev *td, struct bus_io *io)
{
    unsigned cpu = io->cpu_index < device_cpu_count(td->dev) ? io->cpu_index : 0;
    uint64_t now;
    switch (io->offset) {
    case SLATE_TIMER_CLOCK_LO:
        now = (uint64_t)device_clock_ns(td->dev);
        td->clock_hi[cpu] = (uint32_t)(now >> 32);
        io->value = (uint32_t)now;
        break;
    case SLATE_TIMER_CLOCK_HI: io->value = td->clock_hi[cpu]; break;
    case SLATE_TIMER_WALL_LO:
        now = (uint64_t)clock_read_ns(CLOCK_REALTIME);
        td->wall_hi[cpu] = (uint32_t)(now >> 32);
        io->value = (uint32_t)now;
        break;
    case SLATE_TIMER_WALL_HI: io->value = td->wall_hi[cpu]; break;
    }
}

static void timer_pio(struct device *dev, struct bus_io *io)
{
    struct timer_dev *td = dev->state;
    uint64_t off = io->offset;
    if (off >= SLATE_TIMER_BANK(0)) {
        unsigned n = (unsigned)((off - SLATE_TIMER_BANK(0)) / 0x20);
        if (n >= SLATE_TIMER_COUNT) {
            device_warn(dev, "%s: there is no timer %u (%d timers)",
                             dev->name, n, SLATE_TIMER_COUNT);
            if (!io->is_write)
                io->value = 0xFFFFFFFF;
            return;
        }
        pthread_mutex_lock(&td->lock);
        timer_bank_io(td, &td->timers[n], (unsigned)((off - SLATE_TIMER_BANK(0)) % 0x20), io);
        pthread_mutex_unlock(&td->lock);
        return;
    }
    if (io->is_write) {
        if (off == SLATE_TIMER_IRQ_STATUS) {
            pthread_mutex_lock(&td->lock);
            td->irq_status &= ~(uint32_t)io->value;
            pthread_mutex_unlock(&td->lock);
        }
        return;
    }
    switch (off) {
    case SLATE_TIMER_CLOCK_LO:
    case SLATE_TIMER_CLOCK_HI:
    case SLATE_TIMER_WALL_LO:
    case SLATE_TIMER_WALL_HI: clock_io(td, io); break;
    case SLATE_TIMER_IRQ_STATUS:
        pthread_mutex_lock(&td->lock);
        io->value = td->irq_status;
        pthread_mutex_unlock(&td->lock);
        break;
    case SLATE_TIMER_NUM_TIMERS: io->value = SLATE_TIMER_COUNT; break;
    case SLATE_TIMER_MIN_PERIOD: io->value = TIMER_MIN_PERIOD_NS; break;
    default: io->value = 0;
    }
}

static void timer_irq_enabled(struct device *dev, unsigned line)
{
    struct timer_dev *td = dev->state;
    pthread_mutex_lock(&td->lock);
    if (td->irq_status & (1u << line))
        device_raise(dev, line);
    pthread_mutex_unlock(&td->lock);
}

static int timer_setup(struct device *dev, unsigned index)
{
    (void)index;
    struct timer_dev *td = calloc(1, sizeof(*td));
    if (!td) {
        log_error("out of memory");
        return -ENOMEM;
    }
    dev->state = td;
    td->dev = dev;
    pthread_mutex_init(&td->lock, NULL);
    for (unsigned i = 0; i < SLATE_TIMER_COUNT; i++)
        td->timers[i].source.fd = -1;
    td->clock_hi = calloc(device_cpu_count(dev), sizeof(uint32_t));
    td->wall_hi = calloc(device_cpu_count(dev), sizeof(uint32_t));
    if (!td->clock_hi || !td->wall_hi) {
        log_error("out of memory");
        return -ENOMEM;
    }
    for (unsigned i = 0; i < SLATE_TIMER_COUNT; i++) {
        td->timers[i].owner = td;
        td->timers[i].index = i;
    }
    return 0;
}

static void timer_teardown(struct device *dev)
{
    struct timer_dev *td = dev->state;
    if (!td)
        return;
    for (unsigned i = 0; i < SLATE_TIMER_COUNT; i++)
        if (td->timers[i].source.fd >= 0)
            close(td->timers[i].source.fd);
    free(td->clock_hi);
    free(td->wall_hi);
    pthread_mutex_destroy(&td->lock);
    free(td);
    dev->state = NULL;
}

/* What the guest programmed, and for an armed timer its next deadline on the guest clock, which
 * continues across a restore: a timer due 3 ms after the snapshot fires 3 ms after the resume. */
struct saved_timer {
    uint64_t delay, period;
    int64_t deadline; /* guest ns; meaningful when armed */
    uint32_t expirations;
    uint8_t armed, error, pad[2];
};

static int timer_save(struct device *dev, struct device_state *out)
{
    struct timer_dev *td = dev->state;
    pthread_mutex_lock(&td->lock);
    device_state_put(out, &td->irq_status, sizeof(td->irq_status));
    for (unsigned i = 0; i < SLATE_TIMER_COUNT; i++) {
        struct timer *t = &td->timers[i];
        timer_take_expirations(td, t); /* an expiry the event loop has not read yet */
        struct saved_timer st = {.delay = t->delay, .period = t->period, .expirations = t->expirations,
                                 .armed = t->armed, .error = t->error};
        struct itimerspec left;
        if (t->armed && timerfd_gettime(t->source.fd, &left) == 0)
            st.deadline = device_clock_ns(dev) + left.it_value.tv_sec * 1000000000LL + left.it_value.tv_nsec;
        device_state_put(out, &st, sizeof(st));
    }
    pthread_mutex_unlock(&td->lock);
    return 0;
}

static int timer_load(struct device *dev, struct device_state *in)
{
    struct timer_dev *td = dev->state;
    uint32_t irq_status;
    struct saved_timer saved[SLATE_TIMER_COUNT];
    device_state_get(in, &irq_status, sizeof(irq_status));
    device_state_get(in, saved, sizeof(saved));
    bool ok = device_state_done(in) && !(irq_status >> SLATE_TIMER_COUNT);
    for (unsigned i = 0; i < SLATE_TIMER_COUNT; i++)
        ok = ok && saved[i].armed <= 1 && saved[i].error <= 1 && saved[i].deadline >= 0 &&
             (!saved[i].armed || !saved[i].period || saved[i].period >= TIMER_MIN_PERIOD_NS);
    if (!ok) {
        log_error("%s: the saved timers are malformed", dev->name);
        return -1;
    }
    pthread_mutex_lock(&td->lock);
    td->irq_status = irq_status;
    for (unsigned i = 0; i < SLATE_TIMER_COUNT && ok; i++) {
        struct timer *t = &td->timers[i];
        t->period = saved[i].period, t->expirations = saved[i].expirations;
        t->armed = saved[i].armed, t->error = saved[i].error;
        t->delay = (uint64_t)saved[i].deadline; /* programmed as an absolute deadline */
        ok = timer_program(td, t, true);
        t->delay = saved[i].delay; /* then the register holds what the guest wrote */
    }
    pthread_mutex_unlock(&td->lock);
    if (!ok)
        log_error("%s: cannot re-arm a timer", dev->name);
    return ok ? 0 : -1;
}

const struct device_ops timer_device = {
    .name = "timer",
    .type = SLATE_DEV_TIMER,
    .version = 1,
    .port_count = TIMER_PORTS,
    .irq_reg = SLATE_TIMER_IRQ_REG,
    .irq_status_reg = SLATE_TIMER_IRQ_STATUS,
    .irq_count = SLATE_TIMER_COUNT,
    .setup = timer_setup,
    .pio = timer_pio,
    .irq_enabled = timer_irq_enabled,
    .teardown = timer_teardown,
    .state_version = 1,
    .save = timer_save,
    .load = timer_load,
};
