/* console.c - the console: what the kernel prints goes to the serial port and to the screen;
 * what the user types on either arrives in one input queue.
 *
 * The serial device is the simplest on the machine: a write to DATA sends a byte, a read takes
 * one (0xFFFFFFFF when none is waiting), and an interrupt says input arrived. The handler moves
 * input into a ring at once, so the device never has to hold it.
 */
#include "kernel.h"

#define INPUT_RING 1024

static const struct slate_device *serial;
static char input[INPUT_RING];
static volatile unsigned input_head, input_tail; /* head: interrupt handlers; tail: the shell */
static volatile bool serial_closed;

/* Called from interrupt handlers (on CPU 0 only, where interrupts do not nest). */
void console_put_input(char c)
{
    if (input_head - input_tail < INPUT_RING)
        input[input_head++ % INPUT_RING] = c;
}

bool console_input_pending(void) { return input_head != input_tail; }

int console_get_input(void)
{
    if (!console_input_pending())
        return -1;
    return (unsigned char)input[input_tail++ % INPUT_RING];
}

/* The host's side of the serial port closed (stdin was a file, and it ended). */
bool console_input_ended(void) { return serial_closed && !console_input_pending(); }

__attribute__((interrupt)) static void on_serial(struct interrupt_frame *frame)
{
    (void)frame;
    uint16_t base = serial->port_base;
    uint32_t pending = slate_inl(base + SLATE_SERIAL_IRQ_STATUS);
    slate_outl(base + SLATE_SERIAL_IRQ_STATUS, pending); /* first: input after the drain raises it again */
    uint32_t byte;
    while (input_head - input_tail < INPUT_RING && (byte = slate_inl(base + SLATE_SERIAL_DATA)) != 0xFFFFFFFF)
        console_put_input((char)byte);
    if (pending & SLATE_SERIAL_IRQ_CLOSED)
        serial_closed = true;
    lapic_eoi();
}

void serial_init(void)
{
    serial = device_find(SLATE_DEV_SERIAL);
    if (!serial)
        return;
    idt_set(VEC_SERIAL, on_serial);
    irq_route(serial, 0, VEC_SERIAL, 0);
    if (slate_inl(serial->port_base + SLATE_SERIAL_STATUS) & SLATE_SERIAL_RX_CLOSED)
        serial_closed = true;
}

/* Terminals want CR LF; the kernel writes LF. */
void serial_write(const char *s, size_t len)
{
    if (!serial)
        return;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n')
            slate_outl(serial->port_base + SLATE_SERIAL_DATA, '\r');
        slate_outl(serial->port_base + SLATE_SERIAL_DATA, (uint8_t)s[i]);
    }
}

void console_write(const char *s, size_t len)
{
    serial_write(s, len);
    screen_write(s, len);
}
