/* dev_keyboard.c - the keyboard (type 5): keys from the display's front ends (VNC, SDL), queued
 * with an interrupt when one arrives. Keys are USB HID usage codes with the Unicode character they
 * type, so a guest needs no keymap. */
#include "device.h"
#include "options.h"

#include <errno.h>
#include <pthread.h>
#include <rfb/keysym.h>
#include <stdint.h>
#include <stdlib.h>

#define KEY_QUEUE 64

struct keyboard {
    struct device *dev;
    pthread_mutex_t lock;
    struct {
        uint32_t event, ch;
    } queue[KEY_QUEUE];
    unsigned head, count;
    uint32_t last_char, overflows, modifiers, irq_status;
};

/* X11 keysyms to USB HID usage codes (keyboard page). */
static uint32_t hid_usage(uint32_t ks)
{
    if (ks >= XK_a && ks <= XK_z)
        return 0x04 + (ks - XK_a);
    if (ks >= XK_A && ks <= XK_Z)
        return 0x04 + (ks - XK_A);
    if (ks >= XK_1 && ks <= XK_9)
        return 0x1E + (ks - XK_1);
    if (ks >= XK_F1 && ks <= XK_F12)
        return 0x3A + (ks - XK_F1);
    static const struct {
        uint32_t keysym, usage;
    } table[] = {
        {XK_0, 0x27}, {XK_Return, 0x28}, {XK_Escape, 0x29}, {XK_BackSpace, 0x2A}, {XK_Tab, 0x2B},
        {XK_space, 0x2C}, {XK_minus, 0x2D}, {XK_underscore, 0x2D}, {XK_equal, 0x2E}, {XK_plus, 0x2E},
        {XK_bracketleft, 0x2F}, {XK_braceleft, 0x2F}, {XK_bracketright, 0x30}, {XK_braceright, 0x30},
        {XK_backslash, 0x31}, {XK_bar, 0x31}, {XK_semicolon, 0x33}, {XK_colon, 0x33},
        {XK_apostrophe, 0x34}, {XK_quotedbl, 0x34}, {XK_grave, 0x35}, {XK_asciitilde, 0x35},
        {XK_comma, 0x36}, {XK_less, 0x36}, {XK_period, 0x37}, {XK_greater, 0x37}, {XK_slash, 0x38},
        {XK_question, 0x38}, {XK_exclam, 0x1E}, {XK_at, 0x1F}, {XK_numbersign, 0x20},
        {XK_dollar, 0x21}, {XK_percent, 0x22}, {XK_asciicircum, 0x23}, {XK_ampersand, 0x24},
        {XK_asterisk, 0x25}, {XK_parenleft, 0x26}, {XK_parenright, 0x27}, {XK_Insert, 0x49},
        {XK_Home, 0x4A}, {XK_Page_Up, 0x4B}, {XK_Delete, 0x4C}, {XK_End, 0x4D},
        {XK_Page_Down, 0x4E}, {XK_Right, 0x4F}, {XK_Left, 0x50}, {XK_Down, 0x51}, {XK_Up, 0x52},
        {XK_Control_L, 0xE0}, {XK_Shift_L, 0xE1}, {XK_Alt_L, 0xE2}, {XK_Super_L, 0xE3},
        {XK_Control_R, 0xE4}, {XK_Shift_R, 0xE5}, {XK_Alt_R, 0xE6}, {XK_Super_R, 0xE7},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].keysym == ks)
            return table[i].usage;
    return 0;
}

/* The character a keysym types: Latin-1 keysyms are their own code point. */
static uint32_t key_char(uint32_t ks, uint32_t modifiers)
{
    if (ks >= 0x20 && ks <= 0xFF) {
        if ((modifiers & SLATE_KEY_MOD_CTRL) && ((ks >= 'a' && ks <= 'z') || (ks >= 'A' && ks <= 'Z')))
            return (ks & 0x1F); /* Ctrl-C is 3, as on a terminal */
        return ks;
    }
    switch (ks) {
    case XK_Return: return '\r';
    case XK_BackSpace: return 8;
    case XK_Tab: return '\t';
    case XK_Escape: return 27;
    case XK_Delete: return 127;
    default: return 0;
    }
}

static uint32_t modifier_bit(uint32_t ks)
{
    switch (ks) {
    case XK_Control_L: case XK_Control_R: return SLATE_KEY_MOD_CTRL;
    case XK_Shift_L: case XK_Shift_R: return SLATE_KEY_MOD_SHIFT;
    case XK_Alt_L: case XK_Alt_R: return SLATE_KEY_MOD_ALT;
    default: return 0;
    }
}

/* The machine's key sink: called by a front end's thread, under the machine's input lock. */
static void keyboard_key(struct device *dev, uint32_t keysym, bool down)
{
    struct keyboard *k = dev->state;
    uint32_t usage = hid_usage(keysym);
    if (!usage)
        return;
    pthread_mutex_lock(&k->lock);
    uint32_t mod = modifier_bit(keysym);
    k->modifiers = down ? k->modifiers | mod : k->modifiers & ~mod;
    if (k->count == KEY_QUEUE) {
        k->overflows++;
    } else {
        unsigned slot = (k->head + k->count++) % KEY_QUEUE;
        k->queue[slot].event = usage | (down ? SLATE_KEYBOARD_PRESSED : 0) | k->modifiers << 24;
        k->queue[slot].ch = down ? key_char(keysym, k->modifiers) : 0;
        if (!(k->irq_status & 1)) {
            k->irq_status |= 1;
            device_raise(dev, 0);
        }
    }
    pthread_mutex_unlock(&k->lock);
}

static void keyboard_pio(struct device *dev, struct bus_io *io)
{
    struct keyboard *k = dev->state;
    pthread_mutex_lock(&k->lock);
    if (io->is_write) {
        /* Only a new event raises the line again, never the acknowledge itself: a handler that
         * acknowledges and leaves the queue to its main loop must not be interrupted forever. */
        if (io->offset == SLATE_KEYBOARD_IRQ_STATUS)
            k->irq_status &= ~(uint32_t)io->value;
    } else {
        switch (io->offset) {
        case SLATE_KEYBOARD_EVENT:
            io->value = 0;
            if (k->count) {
                io->value = k->queue[k->head].event;
                k->last_char = k->queue[k->head].ch;
                k->head = (k->head + 1) % KEY_QUEUE;
                k->count--;
            }
            break;
        case SLATE_KEYBOARD_CHAR: io->value = k->last_char; break;
        case SLATE_KEYBOARD_PENDING: io->value = k->count; break;
        case SLATE_KEYBOARD_OVERFLOWS: io->value = k->overflows; break;
        case SLATE_KEYBOARD_IRQ_STATUS: io->value = k->irq_status; break;
        default: io->value = 0;
        }
    }
    pthread_mutex_unlock(&k->lock);
}

static void keyboard_irq_enabled(struct device *dev, unsigned line)
{
    struct keyboard *k = dev->state;
    pthread_mutex_lock(&k->lock);
    if (k->irq_status)
        device_raise(dev, line);
    pthread_mutex_unlock(&k->lock);
}

static unsigned with_display(const struct slate_config *cfg) { return cfg->display ? 1 : 0; }

static const struct input_sink keyboard_sink = {.key = keyboard_key};

static int keyboard_setup(struct device *dev, unsigned index)
{
    (void)index;
    struct keyboard *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->dev = dev;
    pthread_mutex_init(&k->lock, NULL);
    dev->state = k;
    device_attach_input(dev, &keyboard_sink);
    return 0;
}

static void keyboard_teardown(struct device *dev)
{
    struct keyboard *k = dev->state;
    if (!k)
        return;
    device_attach_input(dev, NULL); /* from here on no front end can reach it */
    pthread_mutex_destroy(&k->lock);
    free(k);
    dev->state = NULL;
}

/* The queue of key events the guest has not read, and the registers it reads them through. */
static int keyboard_save(struct device *dev, struct device_state *out)
{
    struct keyboard *k = dev->state;
    pthread_mutex_lock(&k->lock);
    uint32_t regs[4] = {k->last_char, k->overflows, k->modifiers, k->irq_status}, count = k->count;
    device_state_put(out, regs, sizeof(regs));
    device_state_put(out, &count, sizeof(count));
    for (unsigned i = 0; i < count; i++)
        device_state_put(out, &k->queue[(k->head + i) % KEY_QUEUE], sizeof(k->queue[0]));
    pthread_mutex_unlock(&k->lock);
    return 0;
}

static int keyboard_load(struct device *dev, struct device_state *in)
{
    struct keyboard *k = dev->state;
    uint32_t regs[4], count;
    device_state_get(in, regs, sizeof(regs));
    device_state_get(in, &count, sizeof(count));
    if (in->failed || count > KEY_QUEUE || in->len - in->pos != count * sizeof(k->queue[0])) {
        log_error("%s: the saved key queue is malformed", dev->name);
        return -1;
    }
    pthread_mutex_lock(&k->lock);
    k->last_char = regs[0], k->overflows = regs[1], k->modifiers = regs[2], k->irq_status = regs[3];
    device_state_get(in, k->queue, count * sizeof(k->queue[0]));
    k->head = 0, k->count = count;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

const struct device_ops keyboard_device = {
    .name = "keyboard",
    .type = SLATE_DEV_KEYBOARD,
    .version = 1,
    .port_count = 0x20,
    .irq_reg = SLATE_KEYBOARD_IRQ_REG,
    .irq_status_reg = SLATE_KEYBOARD_IRQ_STATUS,
    .irq_count = 1,
    .instances = with_display,
    .setup = keyboard_setup,
    .pio = keyboard_pio,
    .irq_enabled = keyboard_irq_enabled,
    .teardown = keyboard_teardown,
    .state_version = 1,
    .save = keyboard_save,
    .load = keyboard_load,
};
