/* input.c - keyboard and pointer.
 *
 * No PS/2 controller, no scancode sets, no keymap: each keyboard event says which key (its USB
 * HID usage), whether it went down, and which character it types, if any. The handler queues the
 * characters of key presses as console input. The pointer is absolute, in screen pixels.
 */
#include "kernel.h"

static const struct slate_device *keyboard, *pointer;
static volatile bool pointer_changed;

__attribute__((interrupt)) static void on_keyboard(struct interrupt_frame *frame)
{
    (void)frame;
    uint16_t base = keyboard->port_base;
    slate_outl(base + SLATE_KEYBOARD_IRQ_STATUS, 1); /* first, so an event after the loop raises it again */
    uint32_t event;
    while ((event = slate_inl(base + SLATE_KEYBOARD_EVENT)) != 0) {
        uint32_t ch = slate_inl(base + SLATE_KEYBOARD_CHAR);
        if ((event & SLATE_KEYBOARD_PRESSED) && ch && ch < 0x100)
            console_put_input(ch == '\r' ? '\n' : (char)ch);
    }
    lapic_eoi();
}

void keyboard_init(void)
{
    keyboard = device_find(SLATE_DEV_KEYBOARD);
    if (!keyboard)
        return;
    idt_set(VEC_KEYBOARD, on_keyboard);
    irq_route(keyboard, 0, VEC_KEYBOARD, 0);
}

__attribute__((interrupt)) static void on_pointer(struct interrupt_frame *frame)
{
    (void)frame;
    slate_outl(pointer->port_base + SLATE_POINTER_IRQ_STATUS, 1);
    pointer_changed = true;
    lapic_eoi();
}

bool pointer_init(void)
{
    pointer = device_find(SLATE_DEV_POINTER);
    if (!pointer)
        return false;
    idt_set(VEC_POINTER, on_pointer);
    irq_route(pointer, 0, VEC_POINTER, 0);
    return true;
}

/* The pointer's state, if it changed since the last call. */
bool pointer_take(struct pointer_state *out)
{
    if (!pointer || !pointer_changed)
        return false;
    pointer_changed = false;
    uint16_t base = pointer->port_base;
    out->x = slate_inl(base + SLATE_POINTER_X);
    out->y = slate_inl(base + SLATE_POINTER_Y);
    out->buttons = slate_inl(base + SLATE_POINTER_BUTTONS);
    out->wheel = (int32_t)slate_inl(base + SLATE_POINTER_WHEEL);
    return true;
}
