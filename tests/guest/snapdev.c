/* Snapshots with devices busy (tests/t/snapshot.t): run with --disk, --net user and a display.
 * Before SLATE_HC_SNAPSHOT the kernel writes sector 0 and reads it back, gets an ARP reply from
 * the user-mode network's gateway (so both rings have moved), and draws a picture in a 64x48
 * graphics mode. After it, on the saving and the restored side alike, it checks that the disk
 * still holds what it wrote and its ring takes new requests, that the card's rings still carry
 * an ARP exchange, and that the display is in its mode with its picture; one line each:
 * "same: PART" or "CHANGED: PART", then "side: saved|restored". */
#include "netlib.h"

#define VEC_DISK 0x70
#define VEC_NET 0x71

static const struct slate_device *disk, *nic, *display;
static volatile struct slate_block_ring *ring;
static volatile struct slate_net_window *win;
static uint8_t sector[SLATE_BLOCK_SECTOR_SIZE] __attribute__((aligned(4096)));
static uint8_t mac[6];

__attribute__((interrupt)) static void on_disk(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(disk->port_base + SLATE_BLOCK_IRQ_STATUS, 1);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_net(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(nic->port_base + SLATE_NET_IRQ_STATUS, SLATE_NET_IRQ_RX | SLATE_NET_IRQ_TX);
    lapic_eoi();
}

static uint8_t disk_request(uint8_t op, uint64_t lba)
{
    uint32_t seq = ring->submitted;
    volatile struct slate_block_request *r = &ring->slots[seq % SLATE_BLOCK_RING_SIZE];
    r->op = op, r->status = SLATE_BLOCK_PENDING, r->count = 1, r->sector = lba;
    r->buffer = (uint64_t)sector, r->tag = seq;
    __atomic_store_n(&ring->submitted, seq + 1, __ATOMIC_RELEASE);
    slate_outl(disk->port_base + SLATE_BLOCK_NOTIFY, 1);
    WAIT_FOR((int32_t)(ring->completed - (seq + 1)) >= 0);
    return r->status;
}

static bool sector_is(uint8_t value)
{
    for (unsigned i = 0; i < sizeof(sector); i++)
        if (sector[i] != value)
            return false;
    return true;
}

static bool disk_round(uint64_t lba, uint8_t value)
{
    for (unsigned i = 0; i < sizeof(sector); i++)
        sector[i] = value;
    if (disk_request(SLATE_BLOCK_OP_WRITE, lba) != SLATE_BLOCK_OK)
        return false;
    for (unsigned i = 0; i < sizeof(sector); i++)
        sector[i] = 0;
    return disk_request(SLATE_BLOCK_OP_READ, lba) == SLATE_BLOCK_OK && sector_is(value);
}

/* Asks the gateway (10.0.2.2) for its MAC; true when its reply arrives within about a second. */
static bool arp_exchange(void)
{
    uint8_t frame[60];
    net_arp_request(frame, mac, htonl(0x0A00020F), htonl(0x0A000202));
    net_queue(win, frame, sizeof(frame));
    slate_outl(nic->port_base + SLATE_NET_TX_NOTIFY, 1);
    for (int wait = 0; wait < 100; wait++) {
        while (win->rx.tail != __atomic_load_n(&win->rx.head, __ATOMIC_ACQUIRE)) {
            volatile struct slate_net_slot *slot = &win->rx_slots[win->rx.tail % SLATE_NET_RING_SIZE];
            const volatile struct eth *e = (const volatile struct eth *)slot->frame;
            const volatile struct arp *a = (const volatile struct arp *)(slot->frame + sizeof(struct eth));
            bool reply = e->type == htons(0x0806) && a->oper == htons(2) && a->spa == htonl(0x0A000202);
            __atomic_store_n(&win->rx.tail, win->rx.tail + 1, __ATOMIC_RELEASE);
            if (reply)
                return true;
        }
        slate_outl(nic->port_base + SLATE_NET_RX_NOTIFY, 1);
        uint64_t until = rdtsc() + 10000000; /* ~10 ms between looks, halted in between */
        WAIT_FOR(win->rx.tail != win->rx.head || rdtsc() > until);
    }
    return false;
}

static uint32_t pixel(unsigned x, unsigned y) { return (x * 4) << 16 | (y * 5) << 8 | ((x ^ y) & 0xFF); }

static void draw(void)
{
    slate_outl(display->port_base + SLATE_DISPLAY_WIDTH, 64);
    slate_outl(display->port_base + SLATE_DISPLAY_HEIGHT, 48);
    slate_outl(display->port_base + SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    volatile uint32_t *fb = (volatile uint32_t *)display->window_base;
    for (unsigned y = 0; y < 48; y++)
        for (unsigned x = 0; x < 64; x++)
            fb[y * 64 + x] = pixel(x, y);
}

static bool picture_intact(void)
{
    volatile uint32_t *fb = (volatile uint32_t *)display->window_base;
    for (unsigned y = 0; y < 48; y++)
        for (unsigned x = 0; x < 64; x++)
            if (fb[y * 64 + x] != pixel(x, y))
                return false;
    return slate_inl(display->port_base + SLATE_DISPLAY_MODE) == SLATE_DISPLAY_GRAPHICS &&
           slate_inl(display->port_base + SLATE_DISPLAY_WIDTH) == 64 &&
           slate_inl(display->port_base + SLATE_DISPLAY_HEIGHT) == 48;
}

static void report(const char *part, bool same)
{
    puts_hc(same ? "same: " : "CHANGED: ");
    puts_hc(part);
    puts_hc("\n");
}

KMAIN kmain(const struct slate_info *info)
{
    disk = slate_find_device(info, SLATE_DEV_BLOCK, 0);
    nic = slate_find_device(info, SLATE_DEV_NET, 0);
    display = slate_find_device(info, SLATE_DEV_DISPLAY, 0);
    GUEST_ASSERT(disk && nic && display);
    ring = (volatile struct slate_block_ring *)disk->window_base;
    win = (volatile struct slate_net_window *)nic->window_base;
    idt_set(VEC_DISK, on_disk);
    idt_set(VEC_NET, on_net);
    idt_load();
    lapic_enable();
    slate_outl(disk->port_base + disk->irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(disk->port_base + disk->irq_reg + SLATE_IRQ_VECTOR, VEC_DISK);
    slate_outl(nic->port_base + nic->irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(nic->port_base + nic->irq_reg + SLATE_IRQ_VECTOR, VEC_NET);
    net_mac(nic, mac);

    GUEST_ASSERT(disk_round(0, 0xB0));
    GUEST_ASSERT(arp_exchange());
    draw();

    int64_t side = hypercall(SLATE_HC_SNAPSHOT, 0, 0, 0);

    for (unsigned i = 0; i < sizeof(sector); i++)
        sector[i] = 0;
    report("disk contents", disk_request(SLATE_BLOCK_OP_READ, 0) == SLATE_BLOCK_OK && sector_is(0xB0));
    report("disk ring", disk_round(1, (uint8_t)(0x5A + side)));
    report("network rings", arp_exchange());
    report("display", picture_intact());
    puts_hc(side == 0 ? "side: saved\n" : side == 1 ? "side: restored\n" : "side: failed\n");
    guest_exit(0);
}
