/* dev_pointer.c - the pointer (type 6): the position, buttons and wheel from the display's front
 * ends (VNC, SDL), latched with an interrupt when something changes. */
#include "device.h"
#include "options.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

struct pointer {
    struct device *dev;
    pthread_mutex_t lock;
    uint32_t x, y, buttons, irq_status;
    int32_t wheel;
    uint32_t last_mask;
};

/* The machine's pointer sink: called by a front end's thread, under the machine's input lock. */
static void pointer_move(struct device *dev, int x, int y, uint32_t mask)
{
    struct pointer *p = dev->state;
    pthread_mutex_lock(&p->lock);
    p->x = x < 0 ? 0 : (uint32_t)x;
    p->y = y < 0 ? 0 : (uint32_t)y;
    p->buttons = mask & 7;
    uint32_t pressed = mask & ~p->last_mask; /* wheel steps are presses of buttons 4 and 5 */
    if ((pressed & 8) && p->wheel < INT32_MAX) /* a client may send steps for ever; the */
        p->wheel++;                            /* guest may never read them             */
    if ((pressed & 16) && p->wheel > INT32_MIN)
        p->wheel--;
    p->last_mask = mask;
    if (!(p->irq_status & 1)) {
        p->irq_status |= 1;
        device_raise(dev, 0);
    }
    pthread_mutex_unlock(&p->lock);
}

static void pointer_pio(struct device *dev, struct bus_io *io)
{
    struct pointer *p = dev->state;
    pthread_mutex_lock(&p->lock);
    if (io->is_write) {
        if (io->offset == SLATE_POINTER_IRQ_STATUS)
            p->irq_status &= ~(uint32_t)io->value;
    } else {
        switch (io->offset) {
        case SLATE_POINTER_X: io->value = p->x; break;
        case SLATE_POINTER_Y: io->value = p->y; break;
        case SLATE_POINTER_BUTTONS: io->value = p->buttons; break;
        case SLATE_POINTER_WHEEL:
            io->value = (uint32_t)p->wheel;
            p->wheel = 0;
            break;
        case SLATE_POINTER_IRQ_STATUS: io->value = p->irq_status; break;
        default: io->value = 0;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

static void pointer_irq_enabled(struct device *dev, unsigned line)
{
    struct pointer *p = dev->state;
    pthread_mutex_lock(&p->lock);
    if (p->irq_status)
        device_raise(dev, line);
    pthread_mutex_unlock(&p->lock);
}

static unsigned with_display(const struct slate_config *cfg) { return cfg->display ? 1 : 0; }

static const struct input_sink pointer_sink = {.pointer = pointer_move};

static int pointer_setup(struct device *dev, unsigned index)
{
    (void)index;
    struct pointer *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->dev = dev;
    pthread_mutex_init(&p->lock, NULL);
    dev->state = p;
    device_attach_input(dev, &pointer_sink);
    return 0;
}

static void pointer_teardown(struct device *dev)
{
    struct pointer *p = dev->state;
    if (!p)
        return;
    device_attach_input(dev, NULL); /* from here on no front end can reach it */
    pthread_mutex_destroy(&p->lock);
    free(p);
    dev->state = NULL;
}

static int pointer_save(struct device *dev, struct device_state *out)
{
    struct pointer *p = dev->state;
    pthread_mutex_lock(&p->lock);
    uint32_t regs[6] = {p->x, p->y, p->buttons, p->irq_status, (uint32_t)p->wheel, p->last_mask};
    device_state_put(out, regs, sizeof(regs));
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static int pointer_load(struct device *dev, struct device_state *in)
{
    struct pointer *p = dev->state;
    uint32_t regs[6];
    device_state_get(in, regs, sizeof(regs));
    if (!device_state_done(in)) {
        log_error("%s: the saved pointer state is malformed", dev->name);
        return -1;
    }
    pthread_mutex_lock(&p->lock);
    p->x = regs[0], p->y = regs[1], p->buttons = regs[2], p->irq_status = regs[3];
    p->wheel = (int32_t)regs[4], p->last_mask = regs[5];
    pthread_mutex_unlock(&p->lock);
    return 0;
}

const struct device_ops pointer_device = {
    .name = "pointer",
    .type = SLATE_DEV_POINTER,
    .version = 1,
    .port_count = 0x20,
    .irq_reg = SLATE_POINTER_IRQ_REG,
    .irq_status_reg = SLATE_POINTER_IRQ_STATUS,
    .irq_count = 1,
    .instances = with_display,
    .setup = pointer_setup,
    .pio = pointer_pio,
    .irq_enabled = pointer_irq_enabled,
    .teardown = pointer_teardown,
    .state_version = 1,
    .save = pointer_save,
    .load = pointer_load,
};
