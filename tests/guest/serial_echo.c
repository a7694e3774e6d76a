/* Serial input by interrupt: the serial device's MSI wakes a halted CPU; each line read is echoed
 * back as "got: LINE". The line "quit" ends the test with status 0, end of input with 5. */
#include "guest.h"

static uint16_t serial;
static volatile int interrupts;
static char line[128];
static unsigned len;
static volatile bool done;

static void serial_putc(char c) { slate_outl(serial + SLATE_SERIAL_DATA, (uint8_t)c); }
static void serial_puts(const char *s)
{
    while (*s)
        serial_putc(*s++);
}

static void serial_drain(void)
{
    uint32_t c;
    while ((c = slate_inl(serial + SLATE_SERIAL_DATA)) != 0xFFFFFFFF) {
        if (c != '\n' && len < sizeof(line) - 1) {
            line[len++] = (char)c;
            continue;
        }
        line[len] = 0;
        len = 0;
        if (str_eq(line, "quit")) {
            done = true;
            return;
        }
        serial_puts("got: ");
        serial_puts(line);
        serial_puts("\n");
    }
}

__attribute__((interrupt)) static void on_serial(struct interrupt_frame *frame)
{
    (void)frame;
    interrupts++;
    slate_outl(serial + SLATE_SERIAL_IRQ_STATUS, SLATE_SERIAL_IRQ_RX); /* acknowledge, then drain */
    serial_drain();
    lapic_eoi();
}

KMAIN kmain(const struct slate_info *info)
{
    const struct slate_device *dev = slate_find_device(info, SLATE_DEV_SERIAL, 0);
    GUEST_ASSERT(dev && dev->irq_count == 1);
    serial = dev->port_base;
    idt_set(0x40, on_serial);
    idt_load();
    lapic_enable();
    slate_outl(serial + dev->irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(serial + dev->irq_reg + SLATE_IRQ_VECTOR, 0x40);
    GUEST_ASSERT(slate_inl(serial + dev->irq_reg + SLATE_IRQ_VECTOR) == 0x40);
    serial_puts("ready\n");
    while (!done)
        __asm__ volatile("sti; hlt; cli");
    serial_puts("interrupts seen: ");
    puts_hc(interrupts > 0 ? "yes\n" : "no\n");
    guest_exit(0);
}
