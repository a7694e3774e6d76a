/* demo.c - the kernel `make run` boots: it reads the info block the hypervisor wrote, prints what
 * the machine has on the serial console, echoes what is typed until Ctrl-D or "exit", and powers
 * off. It is deliberately small; the full demo OS grows from here. */
#include "guest.h"

static const struct slate_device *serial;

static void serial_putc(char c)
{
    while (!(inl(serial->port_base + SLATE_SERIAL_STATUS) & SLATE_SERIAL_TX_READY))
        ;
    outl(serial->port_base + SLATE_SERIAL_DATA, (uint8_t)c);
}

static void print(const char *s)
{
    if (!serial) {
        puts_hc(s);
        return;
    }
    for (; *s; s++) {
        if (*s == '\n')
            serial_putc('\r');
        serial_putc(*s);
    }
}

static void print_dec(uint64_t v)
{
    char buf[24];
    int i = 23;
    buf[i] = 0;
    do
        buf[--i] = (char)('0' + v % 10);
    while (v /= 10);
    print(buf + i);
}

static void print_hex(uint64_t v)
{
    char buf[19];
    int i = 18;
    buf[i] = 0;
    do
        buf[--i] = "0123456789abcdef"[v & 15];
    while (v >>= 4);
    buf[--i] = 'x';
    buf[--i] = '0';
    print(buf + i);
}

static const char *device_name(uint16_t type)
{
    switch (type) {
    case SLATE_DEV_SERIAL: return "serial";
    case SLATE_DEV_POWER: return "power";
    case SLATE_DEV_TIMER: return "timer";
    case SLATE_DEV_BLOCK: return "disk";
    case SLATE_DEV_NET: return "network";
    default: return "device";
    }
}

static void describe_machine(const struct slate_info *info)
{
    const struct slate_ram_region *ram = (const void *)((const uint8_t *)info + info->ram_offset);
    uint64_t total = 0;
    for (uint32_t i = 0; i < info->ram_count; i++)
        total += ram[i].size;
    print("slate demo kernel\n");
    print("  cpus:    ");
    print_dec(info->cpu_count);
    print("\n  memory:  ");
    print_dec(total >> 20);
    print(" MiB in ");
    print_dec(info->ram_count);
    print(" region(s)\n  cmdline: ");
    print((const char *)info + info->cmdline_offset);
    print("\n");
    const uint8_t *table = (const uint8_t *)info + info->device_offset;
    for (uint32_t i = 0; i < info->device_count; i++) {
        const struct slate_device *d = (const void *)(table + i * info->device_entry_size);
        print("  device:  ");
        print(device_name(d->type));
        print(" at port ");
        print_hex(d->port_base);
        print("\n");
    }
}

static volatile bool input_waiting, input_closed;

/* The serial interrupt only records what happened; the main loop reads the bytes. */
__attribute__((interrupt)) static void on_serial(struct interrupt_frame *frame)
{
    (void)frame;
    uint32_t pending = inl(serial->port_base + SLATE_SERIAL_IRQ_STATUS);
    outl(serial->port_base + SLATE_SERIAL_IRQ_STATUS, pending);
    if (pending & SLATE_SERIAL_IRQ_RX)
        input_waiting = true;
    if (pending & SLATE_SERIAL_IRQ_CLOSED)
        input_closed = true;
    lapic_eoi();
}

/* Returns the next typed byte, halting the CPU until the serial interrupt says one came; -1 when
 * the input has ended. */
static int read_char(void)
{
    for (;;) {
        uint32_t c = inl(serial->port_base + SLATE_SERIAL_DATA);
        if (c != 0xFFFFFFFF)
            return (int)c;
        if (inl(serial->port_base + SLATE_SERIAL_STATUS) & SLATE_SERIAL_RX_CLOSED)
            return -1;
        __asm__ volatile("cli");
        if (!input_waiting && !input_closed)
            __asm__ volatile("sti; hlt"); /* sti takes effect after hlt: no lost wake-up */
        __asm__ volatile("sti");
        input_waiting = false;
    }
}

/* Echo typed lines; returns when the user types "exit", Ctrl-D, or the input ends. */
static void echo_lines(void)
{
    idt_set(0x40, on_serial);
    idt_load();
    lapic_enable();
    outl(serial->port_base + serial->irq_reg + SLATE_IRQ_CPU, 0);
    outl(serial->port_base + serial->irq_reg + SLATE_IRQ_VECTOR, 0x40);

    char line[80];
    size_t len = 0;
    print("type a line (\"exit\" or Ctrl-D powers off; Ctrl-A x kills the VM)\n> ");
    for (;;) {
        int c = read_char();
        if (c < 0 || c == 4) {
            print("\n");
            return;
        }
        if (c == '\r' || c == '\n') {
            line[len] = 0;
            print("\n");
            if (str_eq(line, "exit"))
                return;
            if (len) {
                print("you typed: ");
                print(line);
                print("\n");
            }
            print("> ");
            len = 0;
        } else if ((c == 127 || c == 8) && len) {
            len--;
            print("\b \b");
        } else if (c >= ' ' && c < 127 && len < sizeof(line) - 1) {
            line[len++] = (char)c;
            serial_putc((char)c);
        }
    }
}

KMAIN kmain(const struct slate_info *info)
{
    serial = find_device(info, SLATE_DEV_SERIAL);
    describe_machine(info);
    if (serial)
        echo_lines();
    print("goodbye\n");
    const struct slate_device *power = find_device(info, SLATE_DEV_POWER);
    if (power)
        outl(power->port_base + SLATE_POWER_EXIT, 0);
    guest_exit(0);
}
