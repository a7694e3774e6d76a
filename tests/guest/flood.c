/* A guest that tries to make slate grow: for "ops=N" rounds it touches a new unclaimed port and
 * a new unclaimed hole address, calls an unknown hypercall, fills the network card's transmit
 * ring with frames that provoke replies it never reads (ARP requests to the slirp gateway) and
 * frames nobody wants, submits disk requests with buffers outside RAM, and scatters pixels over a
 * 640x480 framebuffer; 1.2 s later, one more unknown hypercall. Each of those costs a naive hypervisor memory or a log line; limits.t runs
 * it with few and with many rounds and compares slate's peak memory and its stderr. It starts on
 * the first key press, so the test's VNC client is connected in both runs. */
#include "netlib.h"

#define VEC_KEY 0x40
#define VEC_TIMER 0x41

static const struct slate_device *keyboard, *timer;
static volatile bool key_pressed, timer_fired;

__attribute__((interrupt)) static void on_timer(struct interrupt_frame *f)
{
    (void)f;
    timer_fired = true;
    slate_outl(timer->port_base + SLATE_TIMER_IRQ_STATUS, 1);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_key(struct interrupt_frame *f)
{
    (void)f;
    key_pressed = true;
    slate_outl(keyboard->port_base + SLATE_KEYBOARD_IRQ_STATUS, 1);
    lapic_eoi();
}

/* An ARP request for 10.0.2.2 from 10.0.2.15 (slirp answers each one), or a frame of an unused
 * EtherType that every backend drops. */
static void make_frame(volatile struct slate_net_slot *slot, bool arp)
{
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    uint8_t frame[60] = {0};
    if (arp) {
        net_arp_request(frame, mac, 0x0F02000A /* 10.0.2.15 */, 0x0202000A /* 10.0.2.2 */);
    } else {
        for (int i = 0; i < 12; i++)
            frame[i] = 0xFF;
        frame[12] = 0x88, frame[13] = 0xB5;
    }
    net_copy(slot->frame, frame, sizeof(frame));
    slot->length = 60;
}

KMAIN kmain(const struct slate_info *info)
{
    uint64_t ops = cmdline_number(cmdline(info), "ops=", 1000);
    const struct slate_device *net = slate_find_device(info, SLATE_DEV_NET, 0);
    const struct slate_device *disk = slate_find_device(info, SLATE_DEV_BLOCK, 0);
    const struct slate_device *display = slate_find_device(info, SLATE_DEV_DISPLAY, 0);
    keyboard = slate_find_device(info, SLATE_DEV_KEYBOARD, 0);
    timer = slate_find_device(info, SLATE_DEV_TIMER, 0);
    GUEST_ASSERT(net && disk && display && keyboard && timer);
    volatile struct slate_net_window *win = (void *)net->window_base;
    volatile struct slate_block_ring *ring = (void *)disk->window_base;
    volatile uint32_t *fb = (void *)display->window_base;
    slate_outl(display->port_base + SLATE_DISPLAY_WIDTH, 640);
    slate_outl(display->port_base + SLATE_DISPLAY_HEIGHT, 480);
    slate_outl(display->port_base + SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    for (unsigned i = 0; i < SLATE_NET_RING_SIZE; i++)
        make_frame(&win->tx_slots[i], i % 2);
    idt_set(VEC_KEY, on_key);
    idt_set(VEC_TIMER, on_timer);
    idt_load();
    lapic_enable();
    slate_outl(keyboard->port_base + keyboard->irq_reg + SLATE_IRQ_VECTOR, VEC_KEY);
    puts_hc("waiting for a key\n");
    WAIT_FOR(key_pressed);
    __asm__ volatile("cli"); /* the flood runs without interrupts: the keyboard is done */

    for (uint64_t i = 0; i < ops; i++) {
        slate_outb((uint16_t)(0x4000 + i % 0xBF00), 1);                   /* a new unclaimed port */
        (void)mmio_read32(0xC0400000ULL + (i % 0x8000) * 0x1000);   /* a new unclaimed address */
        hypercall(1000 + (uint32_t)i, 0, 0, 0);                     /* no such hypercall */
        fb[(i * 7919) % (640 * 480)] = (uint32_t)(i * 2654435761u); /* one pixel somewhere */
        if (i % 16 == 0) { /* the whole free part of the transmit ring */
            __atomic_store_n(&win->tx.head, win->tx.tail + SLATE_NET_RING_SIZE, __ATOMIC_RELEASE);
            slate_outl(net->port_base + SLATE_NET_TX_NOTIFY, 1);
        }
        if (i % 64 == 8) { /* a ring of requests whose buffers are past the end of RAM */
            for (unsigned s = 0; s < SLATE_BLOCK_RING_SIZE; s++) {
                volatile struct slate_block_request *r = &ring->slots[s];
                r->op = SLATE_BLOCK_OP_READ, r->count = 8, r->sector = 0;
                r->buffer = info->ram_total + s * 4096;
            }
            __atomic_store_n(&ring->submitted, ring->completed + SLATE_BLOCK_RING_SIZE, __ATOMIC_RELEASE);
            slate_outl(disk->port_base + SLATE_BLOCK_NOTIFY, 1);
        }
    }
    /* 1.2 s later, when the rate limiter lets a message through again, one more warning: it
     * carries the count of those that were suppressed. */
    slate_outl(timer->port_base + SLATE_TIMER_IRQ_REG + SLATE_IRQ_VECTOR, VEC_TIMER);
    slate_outl(timer->port_base + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_LO, 1200000000);
    slate_outl(timer->port_base + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
    WAIT_FOR(timer_fired);
    hypercall(999, 0, 0, 0);
    puts_hc("flood survived ");
    put_dec((int64_t)ops);
    puts_hc(" rounds; rx drops ");
    put_dec(slate_inl(net->port_base + SLATE_NET_RX_DROPS));
    puts_hc("\n");
    guest_exit(0);
}
