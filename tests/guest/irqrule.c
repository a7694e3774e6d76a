/* The one interrupt rule every device follows (docs/machine.md, "Interrupts"): a line is raised
 * only when a new event sets an IRQ_STATUS bit, never by the acknowledge itself. This kernel is
 * the pattern that rule must allow: the handler only acknowledges and counts, the main loop does
 * all the reading. A device that re-raised its line while events were still queued would never
 * let the main loop run; the handler stops the test after STORM interrupts.
 * The command line names the device: serial, keyboard, pointer, block, net or timer. */
#include "netlib.h"

#define VEC 0x40
#define STORM 2000
#define KEYS 10  /* keyboard: events the test sends (5 keys, down and up) */

static const struct slate_info *info;
static const struct slate_device *dev;
static volatile uint32_t interrupts;

__attribute__((interrupt)) static void on_irq(struct interrupt_frame *f)
{
    (void)f;
    if (++interrupts > STORM) {
        puts_hc("interrupt storm: the main loop never ran\n");
        guest_exit(1);
    }
    uint16_t status_reg = dev->type == SLATE_DEV_SERIAL ? SLATE_SERIAL_IRQ_STATUS
                        : dev->type == SLATE_DEV_KEYBOARD ? SLATE_KEYBOARD_IRQ_STATUS
                        : dev->type == SLATE_DEV_POINTER ? SLATE_POINTER_IRQ_STATUS
                        : dev->type == SLATE_DEV_BLOCK ? SLATE_BLOCK_IRQ_STATUS
                        : dev->type == SLATE_DEV_NET ? SLATE_NET_IRQ_STATUS
                                                     : SLATE_TIMER_IRQ_STATUS;
    slate_outl(dev->port_base + status_reg, 0xFFFFFFFF); /* acknowledge everything; read nothing */
    /* Some work after the acknowledge, as a real handler does: long enough that a line raised
     * again by the acknowledge is pending by the EOI, on any host. */
    uint64_t until = rdtsc() + info->tsc_khz / 5; /* 200 us */
    while (rdtsc() < until)
        __asm__ volatile("pause");
    lapic_eoi();
}

/* The main loop waits for the next interrupt (the test's --timeout bounds a lost one). */
static void wait_a_little(void)
{
    __asm__ volatile("sti; hlt; cli" ::: "memory");
}

static void route(uint16_t type)
{
    dev = slate_find_device(info, type, 0);
    GUEST_ASSERT(dev && dev->irq_count >= 1);
    slate_outl(dev->port_base + dev->irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(dev->port_base + dev->irq_reg + SLATE_IRQ_VECTOR, VEC);
}

/* With events still queued and none new, an acknowledge must leave the status bit clear: the
 * deterministic face of the rule (a re-raising device sets it again at once). Interrupts off. */
static void ack_leaves_bit_clear(uint16_t status_reg, uint32_t bit)
{
    slate_outl(dev->port_base + status_reg, bit);
    uint32_t after = slate_inl(dev->port_base + status_reg);
    puts_hc(after & bit ? "acknowledged with events queued: status set again\n"
                        : "acknowledged with events queued: status stays clear\n");
    GUEST_ASSERT(!(after & bit));
}

static void report(const char *what, uint64_t items)
{
    puts_hc(what);
    puts_hc(": main loop read ");
    put_dec((int64_t)items);
    puts_hc(" with interrupts ");
    put_dec(interrupts);
    puts_hc("\n");
}

/* stdin is a file of known length; the loop reads it all, then sees the input end. */
static void serial(void)
{
    route(SLATE_DEV_SERIAL);
    while (!(slate_inl(dev->port_base + SLATE_SERIAL_STATUS) & SLATE_SERIAL_RX_READY))
        wait_a_little();
    ack_leaves_bit_clear(SLATE_SERIAL_IRQ_STATUS, SLATE_SERIAL_IRQ_RX);
    uint64_t bytes = 0;
    for (;;) {
        uint32_t c;
        while ((c = slate_inl(dev->port_base + SLATE_SERIAL_DATA)) != 0xFFFFFFFF)
            bytes++;
        if (slate_inl(dev->port_base + SLATE_SERIAL_STATUS) & SLATE_SERIAL_RX_CLOSED)
            break;
        wait_a_little();
    }
    report("serial", bytes);
}

static void keyboard(void)
{
    route(SLATE_DEV_KEYBOARD);
    puts_hc("ready\n");
    while (slate_inl(dev->port_base + SLATE_KEYBOARD_PENDING) < KEYS)
        wait_a_little();
    ack_leaves_bit_clear(SLATE_KEYBOARD_IRQ_STATUS, 1);
    uint64_t events = 0;
    while (events < KEYS) {
        while (slate_inl(dev->port_base + SLATE_KEYBOARD_EVENT) != 0)
            events++;
        if (events < KEYS)
            wait_a_little();
    }
    report("keyboard", events);
}

static void pointer(void)
{
    route(SLATE_DEV_POINTER);
    puts_hc("ready\n");
    uint64_t reads = 0;
    while (slate_inl(dev->port_base + SLATE_POINTER_X) != 300) { /* the test's last position */
        reads++;
        wait_a_little();
    }
    report("pointer", reads);
}

static uint8_t sector_buf[4][512];

static void block(void)
{
    route(SLATE_DEV_BLOCK);
    volatile struct slate_block_ring *ring = (volatile void *)dev->window_base;
    uint32_t first = ring->submitted;
    for (uint32_t i = 0; i < 4; i++) {
        volatile struct slate_block_request *r = &ring->slots[(first + i) % SLATE_BLOCK_RING_SIZE];
        r->op = SLATE_BLOCK_OP_READ;
        r->count = 1;
        r->sector = i;
        r->buffer = (uint64_t)sector_buf[i];
        r->status = SLATE_BLOCK_PENDING;
    }
    ring->submitted = first + 4;
    slate_outl(dev->port_base + SLATE_BLOCK_NOTIFY, 1);
    while (ring->completed != first + 4)
        wait_a_little();
    for (uint32_t i = 0; i < 4; i++)
        GUEST_ASSERT(ring->slots[(first + i) % SLATE_BLOCK_RING_SIZE].status == SLATE_BLOCK_OK);
    report("block", 4);
}

/* An ARP request for the slirp gateway 10.0.2.2; the loop waits for the reply in the ring. */
static void net(void)
{
    route(SLATE_DEV_NET);
    volatile struct slate_net_window *win = (volatile void *)dev->window_base;
    uint8_t mac[6], frame[60];
    net_mac(dev, mac);
    net_queue(win, frame, net_arp_request(frame, mac, 0x0F02000A /* 10.0.2.15 */, 0x0202000A /* 10.0.2.2 */));
    slate_outl(dev->port_base + SLATE_NET_TX_NOTIFY, 1);
    uint64_t frames = 0;
    for (;;) {
        while (win->rx.tail != win->rx.head) {
            win->rx.tail++;
            frames++;
        }
        if (frames)
            break;
        wait_a_little();
    }
    report("net", frames);
}

static void timer(void)
{
    route(SLATE_DEV_TIMER);
    uint16_t bank = dev->port_base + SLATE_TIMER_BANK(0);
    slate_outl(bank + SLATE_TIMER_DELAY_LO, 1000000);
    slate_outl(bank + SLATE_TIMER_PERIOD_LO, 1000000);
    slate_outl(bank + SLATE_TIMER_CTRL, SLATE_TIMER_START);
    uint64_t reads = 0;
    while (slate_inl(bank + SLATE_TIMER_EXPIRATIONS) < 50) {
        reads++;
        wait_a_little();
    }
    slate_outl(bank + SLATE_TIMER_CTRL, 0);
    report("timer", reads);
}

KMAIN kmain(const struct slate_info *boot_info)
{
    info = boot_info;
    idt_set(VEC, on_irq);
    idt_load();
    lapic_enable();
    const char *mode = cmdline(info);
    if (str_eq(mode, "serial"))
        serial();
    else if (str_eq(mode, "keyboard"))
        keyboard();
    else if (str_eq(mode, "pointer"))
        pointer();
    else if (str_eq(mode, "block"))
        block();
    else if (str_eq(mode, "net"))
        net();
    else if (str_eq(mode, "timer"))
        timer();
    else if (str_eq(mode, "reroute")) { /* the same vector and CPU written again and again */
        route(SLATE_DEV_SERIAL);
        for (int i = 0; i < 100; i++)
            route(SLATE_DEV_SERIAL);
        report("reroute", 101);
    }
    else
        GUEST_ASSERT(!"unknown mode");
    guest_exit(0);
}
