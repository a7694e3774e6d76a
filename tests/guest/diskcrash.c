/* A kernel that writes one sector twice, then crashes (tests/t/reverse.t). Recorded and stopped
 * by its crash, it is run backwards over both writes and forwards again over the first: the disk
 * image must keep what the recorded run wrote last, since a recording that crashed replays
 * itself and a replay writes nothing to a disk. */
#include "guest.h"

#define VEC_DISK 0x53

static volatile struct slate_block_ring *ring;
static uint16_t disk;
static char buffer[512] __attribute__((aligned(512)));
static volatile uint32_t completed;

__attribute__((interrupt)) static void on_disk(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(disk + SLATE_BLOCK_IRQ_STATUS, 1);
    completed = ring->completed;
    lapic_eoi();
}

/* Writes `text` (NUL-padded) to sector 0 and waits for the disk to say it is done. */
static void write_sector(const char *text)
{
    unsigned i = 0;
    for (; i < sizeof(buffer) && text[i]; i++)
        buffer[i] = text[i];
    for (; i < sizeof(buffer); i++)
        buffer[i] = 0;
    uint32_t seq = ring->submitted;
    volatile struct slate_block_request *r = &ring->slots[seq % SLATE_BLOCK_RING_SIZE];
    r->op = SLATE_BLOCK_OP_WRITE, r->status = SLATE_BLOCK_PENDING, r->count = 1;
    r->sector = 0, r->buffer = (uint64_t)buffer, r->tag = seq;
    __atomic_store_n(&ring->submitted, seq + 1, __ATOMIC_RELEASE);
    if (slate_block_notify_needed(ring))
        slate_outl(disk + SLATE_BLOCK_NOTIFY, 1);
    WAIT_FOR(completed == seq + 1);
}

KMAIN kmain(const struct slate_info *info)
{
    const struct slate_device *b = slate_find_device(info, SLATE_DEV_BLOCK, 0);
    disk = b->port_base;
    ring = (volatile struct slate_block_ring *)b->window_base;
    idt_set(VEC_DISK, on_disk);
    idt_load();
    lapic_enable();
    slate_outl(disk + b->irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(disk + b->irq_reg + SLATE_IRQ_VECTOR, VEC_DISK);
    write_sector("first");  /* the first write */
    write_sector("second"); /* the second write */
    puts_hc("written twice\n");
    *(volatile uint64_t *)0x7000000000ULL = 1; /* no page there, no handler: a triple fault */
}
