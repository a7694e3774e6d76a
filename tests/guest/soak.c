/* The soak test's guest: for "secs=N" seconds by the machine's clock, on every 10 ms timer tick,
 * writes a disk block, reads it back and checks it, and sends a burst of Ethernet frames. Then
 * it reads the whole disk and ends with a summary line carrying the 32-bit sum of every word on
 * it, which soak.sh compares with the image file. (Ticks are not the clock: on a loaded host
 * several expirations of the periodic timer arrive as one interrupt.) */
#include "guest.h"

#define VEC_TICK 0x60
#define VEC_DISK 0x61

static const struct slate_device *timer, *disk, *net;
static volatile struct slate_block_ring *ring;
static volatile struct slate_net_window *win;
static volatile uint32_t ticks;
static uint8_t block[4096] __attribute__((aligned(4096)));

__attribute__((interrupt)) static void on_tick(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    slate_outl(timer->port_base + SLATE_TIMER_IRQ_STATUS, 1);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_disk(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(disk->port_base + SLATE_BLOCK_IRQ_STATUS, 1);
    lapic_eoi();
}

/* The machine's monotonic clock: reading CLOCK_LO latches CLOCK_HI. */
static uint64_t clock_ns(void)
{
    uint32_t lo = slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO);
    return (uint64_t)slate_inl(timer->port_base + SLATE_TIMER_CLOCK_HI) << 32 | lo;
}

static uint8_t disk_io(uint8_t op, uint64_t sector)
{
    uint32_t seq = ring->submitted;
    volatile struct slate_block_request *r = &ring->slots[seq % SLATE_BLOCK_RING_SIZE];
    r->op = op, r->status = SLATE_BLOCK_PENDING, r->count = 8, r->sector = sector, r->buffer = (uint64_t)block;
    __atomic_store_n(&ring->submitted, seq + 1, __ATOMIC_RELEASE);
    slate_outl(disk->port_base + SLATE_BLOCK_NOTIFY, 1);
    WAIT_FOR(ring->completed == seq + 1);
    return r->status;
}

KMAIN kmain(const struct slate_info *info)
{
    timer = slate_find_device(info, SLATE_DEV_TIMER, 0);
    disk = slate_find_device(info, SLATE_DEV_BLOCK, 0);
    net = slate_find_device(info, SLATE_DEV_NET, 0);
    GUEST_ASSERT(timer && disk && net);
    ring = (volatile struct slate_block_ring *)disk->window_base;
    win = (volatile struct slate_net_window *)net->window_base;
    uint64_t secs = 0;
    for (const char *p = cmdline(info) + 5; *p >= '0' && *p <= '9'; p++)
        secs = secs * 10 + (uint64_t)(*p - '0');
    idt_set(VEC_TICK, on_tick);
    idt_set(VEC_DISK, on_disk);
    idt_load();
    lapic_enable();
    slate_outl(timer->port_base + SLATE_TIMER_IRQ_REG + SLATE_IRQ_VECTOR, VEC_TICK);
    slate_outl(disk->port_base + disk->irq_reg + SLATE_IRQ_VECTOR, VEC_DISK);
    slate_outl(timer->port_base + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_LO, 10000000);
    slate_outl(timer->port_base + SLATE_TIMER_BANK(0) + SLATE_TIMER_PERIOD_LO, 10000000);
    slate_outl(timer->port_base + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
    for (unsigned i = 0; i < SLATE_NET_RING_SIZE; i++) { /* broadcast frames, prepared once */
        for (int b = 0; b < 6; b++)
            win->tx_slots[i].frame[b] = 0xFF;
        win->tx_slots[i].frame[12] = 0x88, win->tx_slots[i].frame[13] = 0xB5;
        win->tx_slots[i].length = 60;
    }
    uint64_t capacity = slate_inl(disk->port_base + SLATE_BLOCK_CAPACITY_LO), frames = 0, blocks = 0;
    uint32_t seen = 0;
    while (clock_ns() < secs * 1000000000ULL) {
        WAIT_FOR(ticks != seen);
        seen = ticks;
        uint64_t sector = (seen * 8) % (capacity - 8);
        for (int i = 0; i < 512; i++)
            ((uint64_t *)block)[i] = (uint64_t)seen << 32 | (uint32_t)i;
        GUEST_ASSERT(disk_io(SLATE_BLOCK_OP_WRITE, sector) == SLATE_BLOCK_OK);
        for (int i = 0; i < 512; i++)
            ((uint64_t *)block)[i] = 0;
        GUEST_ASSERT(disk_io(SLATE_BLOCK_OP_READ, sector) == SLATE_BLOCK_OK);
        for (int i = 0; i < 512; i++)
            GUEST_ASSERT(((uint64_t *)block)[i] == ((uint64_t)seen << 32 | (uint32_t)i));
        blocks++;
        uint32_t room = SLATE_NET_RING_SIZE - (win->tx.head - win->tx.tail), burst = room < 16 ? room : 16;
        __atomic_store_n(&win->tx.head, win->tx.head + burst, __ATOMIC_RELEASE);
        slate_outl(net->port_base + SLATE_NET_TX_NOTIFY, 1);
        frames += burst;
    }
    uint32_t sum = 0;
    for (uint64_t sector = 0; sector + 8 <= capacity; sector += 8) {
        GUEST_ASSERT(disk_io(SLATE_BLOCK_OP_READ, sector) == SLATE_BLOCK_OK);
        for (int i = 0; i < 1024; i++)
            sum += ((uint32_t *)block)[i];
    }
    puts_hc("soak ok ticks=");
    put_dec(ticks);
    puts_hc(" blocks=");
    put_dec((int64_t)blocks);
    puts_hc(" frames=");
    put_dec((int64_t)frames);
    puts_hc(" disk-sum=");
    put_hex(sum);
    puts_hc("\n");
    guest_exit(0);
}
