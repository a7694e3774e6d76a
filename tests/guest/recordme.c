/* A kernel whose run depends on timing and input (tests/t/record.t): a 1 kHz timer interrupt
 * stirs a table for 200 ms, the CLOCK register is read as it goes, serial input arrives by
 * interrupt, (with a disk) every 20th tick starts a disk read whose data and completion
 * interrupt come whenever they come, and (with a network card) every 25th tick sends an ARP
 * request for 10.0.2.2, user networking's gateway, whose answers arrive whenever they do. What it prints (ticks, where the clock was, a hash of the
 * table, the input, the disk's data) and its exit status differ from run to run, and a replay of
 * one recorded run must give them exactly. */
#include "netlib.h"

#define VEC_TICK 0x50
#define VEC_END 0x51
#define VEC_SERIAL 0x52
#define VEC_DISK 0x53
#define VEC_NET 0x54

static uint16_t timer, serial;
static volatile uint32_t ticks, ended;
static uint64_t table[64], clock_sum;
static char input[64];
static volatile unsigned input_len;
static volatile struct slate_block_ring *ring; /* the disk's, or 0 */
static uint16_t disk;
static uint64_t disk_buffer[512], disk_hash;
static volatile uint32_t disk_sent, disk_done;
static const struct slate_device *nic; /* or 0 */
static volatile struct slate_net_window *net;
static uint8_t mac[6];
static volatile uint32_t frames_in;
static uint64_t net_hash = 14695981039346656037ULL;

/* An ARP request for the gateway (IPs in network order: 10.0.2.15 asks for 10.0.2.2). */
static void net_ask(void)
{
    uint8_t frame[60];
    unsigned len = net_arp_request(frame, mac, htonl(0x0A00020F), htonl(0x0A000202));
    if (net->tx.head - net->tx.tail >= SLATE_NET_RING_SIZE)
        return;
    net_queue(net, frame, len);
    if (slate_net_notify_needed(net))
        slate_outl(nic->port_base + SLATE_NET_TX_NOTIFY, 1);
}

__attribute__((interrupt)) static void on_net(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(nic->port_base + SLATE_NET_IRQ_STATUS, SLATE_NET_IRQ_RX | SLATE_NET_IRQ_TX);
    while (net->rx.tail != __atomic_load_n(&net->rx.head, __ATOMIC_ACQUIRE)) {
        volatile struct slate_net_slot *slot = &net->rx_slots[net->rx.tail % SLATE_NET_RING_SIZE];
        for (unsigned i = 0; i < slot->length && i < sizeof(slot->frame); i++)
            net_hash = (net_hash ^ slot->frame[i]) * 1099511628211ULL;
        frames_in++;
        __atomic_store_n(&net->rx.tail, net->rx.tail + 1, __ATOMIC_RELEASE);
    }
    lapic_eoi();
}

/* Starts a read of 8 sectors (4 KiB) at `sector`; the disk's interrupt says when it is done. */
static void disk_read(uint64_t sector)
{
    uint32_t seq = ring->submitted;
    volatile struct slate_block_request *r = &ring->slots[seq % SLATE_BLOCK_RING_SIZE];
    r->op = SLATE_BLOCK_OP_READ, r->status = SLATE_BLOCK_PENDING, r->count = 8;
    r->sector = sector, r->buffer = (uint64_t)disk_buffer, r->tag = seq;
    __atomic_store_n(&ring->submitted, seq + 1, __ATOMIC_RELEASE);
    disk_sent++;
    if (slate_block_notify_needed(ring))
        slate_outl(disk + SLATE_BLOCK_NOTIFY, 1);
}

static uint64_t clock_ns(void)
{
    uint32_t lo = slate_inl(timer + SLATE_TIMER_CLOCK_LO);
    return ((uint64_t)slate_inl(timer + SLATE_TIMER_CLOCK_HI) << 32) | lo;
}

__attribute__((interrupt)) static void on_tick(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    table[ticks % 64] = table[(ticks * 7) % 64] * 31 + ticks;
    if (ticks % 16 == 0)
        clock_sum += clock_ns() / 1000000; /* where the clock was, to the millisecond */
    if (ring && ticks % 20 == 0 && disk_sent == disk_done)
        disk_read((uint64_t)(table[ticks % 64] % 256) * 8);
    if (nic && ticks % 25 == 0)
        net_ask();
    slate_outl(timer + SLATE_TIMER_IRQ_STATUS, 1);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_end(struct interrupt_frame *f)
{
    (void)f;
    ended = 1;
    slate_outl(timer + SLATE_TIMER_IRQ_STATUS, 2);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_disk(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(disk + SLATE_BLOCK_IRQ_STATUS, 1);
    if (ring->completed != disk_done) {
        disk_done = ring->completed;
        for (int i = 0; i < 512; i++)
            disk_hash = (disk_hash ^ disk_buffer[i]) * 1099511628211ULL;
        table[disk_hash % 64] ^= disk_hash; /* what the disk said changes what comes next */
    }
    lapic_eoi();
}

__attribute__((interrupt)) static void on_serial(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(serial + SLATE_SERIAL_IRQ_STATUS, SLATE_SERIAL_IRQ_RX);
    uint32_t c;
    while ((c = slate_inl(serial + SLATE_SERIAL_DATA)) != 0xFFFFFFFF)
        if (c != '\n' && input_len < sizeof(input) - 1)
            input[input_len++] = (char)c;
    lapic_eoi();
}

static void line(unsigned irq_reg, uint16_t port, unsigned n, uint8_t vector)
{
    slate_outl(port + irq_reg + SLATE_IRQ_STRIDE * n + SLATE_IRQ_CPU, 0);
    slate_outl(port + irq_reg + SLATE_IRQ_STRIDE * n + SLATE_IRQ_VECTOR, vector);
}

static void timer_start(unsigned n, uint32_t delay, uint32_t period)
{
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_DELAY_LO, delay);
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_DELAY_HI, 0);
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_PERIOD_LO, period);
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_PERIOD_HI, 0);
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
}

KMAIN kmain(const struct slate_info *info)
{
    const struct slate_device *t = slate_find_device(info, SLATE_DEV_TIMER, 0);
    const struct slate_device *s = slate_find_device(info, SLATE_DEV_SERIAL, 0);
    timer = t->port_base, serial = s->port_base;
    /* Recording, CPUID offers no TSC deadline and no TSC frequency (KVM cannot trap RDTSC). */
    uint32_t leaf = 1, ebx, ecx = 0, edx;
    __asm__ volatile("cpuid" : "+a"(leaf), "=b"(ebx), "+c"(ecx), "=d"(edx));
    puts_hc(ecx & (1u << 24) ? "cpuid: tsc-deadline, " : "cpuid: no tsc-deadline, ");
    leaf = 0x40000010, ecx = 0;
    __asm__ volatile("cpuid" : "+a"(leaf), "=b"(ebx), "+c"(ecx), "=d"(edx));
    puts_hc(leaf ? "tsc frequency\n" : "no tsc frequency\n");
    idt_set(VEC_TICK, on_tick);
    idt_set(VEC_END, on_end);
    idt_set(VEC_SERIAL, on_serial);
    idt_load();
    lapic_enable();
    line(t->irq_reg, timer, 0, VEC_TICK);
    line(t->irq_reg, timer, 1, VEC_END);
    line(s->irq_reg, serial, 0, VEC_SERIAL);
    const struct slate_device *b = slate_find_device(info, SLATE_DEV_BLOCK, 0);
    if (b) {
        disk = b->port_base;
        idt_set(VEC_DISK, on_disk);
        line(b->irq_reg, disk, 0, VEC_DISK);
        ring = (volatile struct slate_block_ring *)b->window_base;
    }
    if ((nic = slate_find_device(info, SLATE_DEV_NET, 0))) {
        net = (volatile struct slate_net_window *)nic->window_base;
        net_mac(nic, mac);
        idt_set(VEC_NET, on_net);
        line(nic->irq_reg, nic->port_base, 0, VEC_NET);
    }
    for (int i = 0; i < 64; i++)
        table[i] = (uint64_t)i;
    timer_start(1, 200000000, 0);      /* 200 ms */
    timer_start(0, 1000000, 1000000);  /* 1 kHz */
    WAIT_FOR(ended);
    slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, 0);
    WAIT_FOR(disk_done == disk_sent);
    __asm__ volatile("cli");
    uint64_t hash = 14695981039346656037ULL;
    for (int i = 0; i < 64; i++)
        hash = (hash ^ table[i]) * 1099511628211ULL;
    input[input_len] = 0;
    puts_hc("ticks: ");
    put_dec(ticks);
    puts_hc("\nclock sum: ");
    put_dec((int64_t)clock_sum);
    puts_hc("\ntable hash: ");
    put_hex(hash);
    puts_hc("\ninput: ");
    puts_hc(input);
    puts_hc("\n");
    if (ring) {
        puts_hc("disk reads: ");
        put_dec(disk_done);
        puts_hc(", data hash ");
        put_hex(disk_hash);
        puts_hc("\n");
    }
    if (nic) {
        puts_hc("frames in: ");
        put_dec(frames_in);
        puts_hc(", hash ");
        put_hex(net_hash);
        puts_hc("\n");
    }
    guest_exit(ticks % 100);
}
