/* The cost of --record (bench/run.sh), and a replay of interrupts that land while a kernel
 * computes (tests/t/record.t): the kernel computes for one second of its CLOCK (or `ms=N`
 * milliseconds) and says how much it got done. `disk`: meanwhile a 1 kHz timer starts a 4 KiB
 * disk read every tick, so an interrupt and a disk read land every millisecond; `compute`:
 * nothing interrupts it. */
#include "guest.h"

#define VEC_TICK 0x50
#define VEC_DISK 0x51

static uint16_t timer, disk;
static volatile struct slate_block_ring *ring;
static uint64_t buffer[512];
static volatile uint32_t sent, done;

static uint64_t clock_ns(void)
{
    uint32_t lo = slate_inl(timer + SLATE_TIMER_CLOCK_LO);
    return ((uint64_t)slate_inl(timer + SLATE_TIMER_CLOCK_HI) << 32) | lo;
}

__attribute__((interrupt)) static void on_tick(struct interrupt_frame *f)
{
    (void)f;
    if (sent == done) {
        uint32_t seq = ring->submitted;
        volatile struct slate_block_request *r = &ring->slots[seq % SLATE_BLOCK_RING_SIZE];
        r->op = SLATE_BLOCK_OP_READ, r->status = SLATE_BLOCK_PENDING, r->count = 8;
        r->sector = (uint64_t)(seq % 256) * 8, r->buffer = (uint64_t)buffer, r->tag = seq;
        __atomic_store_n(&ring->submitted, seq + 1, __ATOMIC_RELEASE);
        sent++;
        if (slate_block_notify_needed(ring))
            slate_outl(disk + SLATE_BLOCK_NOTIFY, 1);
    }
    slate_outl(timer + SLATE_TIMER_IRQ_STATUS, 1);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_disk(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(disk + SLATE_BLOCK_IRQ_STATUS, 1);
    done = ring->completed;
    lapic_eoi();
}

static void line(unsigned irq_reg, uint16_t port, uint8_t vector)
{
    slate_outl(port + irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(port + irq_reg + SLATE_IRQ_VECTOR, vector);
}

KMAIN kmain(const struct slate_info *info)
{
    const struct slate_device *t = slate_find_device(info, SLATE_DEV_TIMER, 0);
    const struct slate_device *b = slate_find_device(info, SLATE_DEV_BLOCK, 0);
    timer = t->port_base;
    const char *cmd = cmdline(info);
    uint64_t run_ns = cmdline_number(cmd, "ms=", 1000) * 1000000ULL;
    if (str_starts(cmd, "disk") && b) {
        disk = b->port_base;
        ring = (volatile struct slate_block_ring *)b->window_base;
        idt_set(VEC_TICK, on_tick);
        idt_set(VEC_DISK, on_disk);
        idt_load();
        lapic_enable();
        line(t->irq_reg, timer, VEC_TICK);
        line(b->irq_reg, disk, VEC_DISK);
        slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_LO, 1000000);
        slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_HI, 0);
        slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_PERIOD_LO, 1000000);
        slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_PERIOD_HI, 0);
        slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
        __asm__ volatile("sti");
    }
    uint64_t start = clock_ns(), rounds = 0, x = 1;
    while (clock_ns() - start < run_ns) {
        for (int i = 0; i < 4096; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        __asm__ volatile("" ::"r"(x));
        rounds++;
    }
    __asm__ volatile("cli");
    puts_hc("rounds ");
    put_dec((int64_t)rounds);
    puts_hc(" reads ");
    put_dec(done);
    puts_hc("\n");
    guest_exit(0);
}
