/* disk.c - the block device: sectors in and out through a ring of requests.
 *
 * A request names an operation, a sector, a count and a buffer (a physical address: ours are
 * identity-mapped). Put it in the ring slot at `submitted`, bump `submitted`, write NOTIFY unless
 * the device says it is busy (it then sees the request anyway); the device does the I/O on a host
 * thread and bumps `completed`, with an interrupt. This driver submits one request at a time and
 * sleeps until it completes.
 */
#include "kernel.h"

static const struct slate_device *disk;
static volatile struct slate_block_ring *ring;
static uint64_t capacity;
static uint8_t sector_buffer[SLATE_BLOCK_SECTOR_SIZE] __attribute__((aligned(SLATE_BLOCK_SECTOR_SIZE)));

__attribute__((interrupt)) static void on_disk(struct interrupt_frame *frame)
{
    (void)frame;
    slate_outl(disk->port_base + SLATE_BLOCK_IRQ_STATUS, 1);
    lapic_eoi();
}

/* One request, start to finish; returns its SLATE_BLOCK_* status. */
static unsigned disk_request(uint8_t op, uint64_t sector, uint32_t count, void *buffer)
{
    uint32_t slot_index = ring->submitted;
    volatile struct slate_block_request *slot = &ring->slots[slot_index % SLATE_BLOCK_RING_SIZE];
    slot->op = op;
    slot->count = count;
    slot->sector = sector;
    slot->buffer = (uint64_t)buffer;
    slot->status = SLATE_BLOCK_PENDING;
    __atomic_store_n(&ring->submitted, slot_index + 1, __ATOMIC_RELEASE);
    if (slate_block_notify_needed(ring))
        slate_outl(disk->port_base + SLATE_BLOCK_NOTIFY, 1);
    WAIT_UNTIL(__atomic_load_n(&ring->completed, __ATOMIC_ACQUIRE) - (slot_index + 1) < 0x80000000u);
    return slot->status;
}

void disk_init(void)
{
    disk = device_find(SLATE_DEV_BLOCK);
    if (!disk)
        return;
    ring = (volatile struct slate_block_ring *)disk->window_base;
    idt_set(VEC_BLOCK, on_disk);
    irq_route(disk, 0, VEC_BLOCK, 0);
    if (disk_request(SLATE_BLOCK_OP_IDENTIFY, 0, 1, sector_buffer) != SLATE_BLOCK_OK) {
        kprintf("%s: IDENTIFY failed\n", disk->name);
        disk = NULL;
        return;
    }
    const struct slate_block_identity *id = (const void *)sector_buffer;
    capacity = id->capacity;
    kprintf("%s: \"%s\" %s, %lu sectors (%lu KiB)%s\n", disk->name, id->model, id->serial, capacity,
            capacity / 2, id->flags & SLATE_BLOCK_READ_ONLY ? ", read-only" : "");
}

static const char *status_text(unsigned status)
{
    switch (status) {
    case SLATE_BLOCK_OK: return "ok";
    case SLATE_BLOCK_IO_ERROR: return "I/O error on the host";
    case SLATE_BLOCK_OUT_OF_RANGE: return "past the end of the disk";
    case SLATE_BLOCK_READ_ONLY_ERR: return "the disk is read-only";
    default: return "refused";
    }
}

/* 16 bytes a line, hex then printable characters. */
static void hexdump(const uint8_t *p, unsigned len)
{
    for (unsigned off = 0; off < len; off += 16) {
        char text[17];
        kprintf("%04x ", off);
        for (unsigned i = 0; i < 16; i++) {
            kprintf(" %02x", p[off + i]);
            text[i] = p[off + i] >= 0x20 && p[off + i] < 0x7F ? (char)p[off + i] : '.';
        }
        text[16] = 0;
        kprintf("  %s\n", text);
    }
}

static void disk_read(uint64_t sector)
{
    unsigned status = disk_request(SLATE_BLOCK_OP_READ, sector, 1, sector_buffer);
    if (status != SLATE_BLOCK_OK) {
        kprintf("disk read %lu: %s\n", sector, status_text(status));
        return;
    }
    kprintf("sector %lu (first 64 bytes):\n", sector);
    hexdump(sector_buffer, 64);
}

/* The text, then zeros to the end of the sector; then a FLUSH, so it is on the host's disk. */
static void disk_write(uint64_t sector, const char *text)
{
    memset(sector_buffer, 0, sizeof(sector_buffer));
    size_t len = strlen(text);
    memcpy(sector_buffer, text, len < sizeof(sector_buffer) ? len : sizeof(sector_buffer));
    unsigned status = disk_request(SLATE_BLOCK_OP_WRITE, sector, 1, sector_buffer);
    if (status == SLATE_BLOCK_OK)
        status = disk_request(SLATE_BLOCK_OP_FLUSH, 0, 0, NULL);
    kprintf("disk write %lu: %s\n", sector, status_text(status));
}

/* "disk", "disk read N", "disk write N TEXT". */
void disk_command(const char *args)
{
    uint64_t sector;
    if (!disk) {
        kprintf("disk: no disk (start slate with --disk FILE)\n");
        return;
    }
    args = skip_spaces(args);
    if (!*args) {
        kprintf("%s: %lu sectors of %u bytes\n", disk->name, capacity, SLATE_BLOCK_SECTOR_SIZE);
    } else if (!strncmp(args, "read ", 5) && (args = skip_spaces(args + 5), parse_u64(&args, &sector))) {
        disk_read(sector);
    } else if (!strncmp(args, "write ", 6) && (args = skip_spaces(args + 6), parse_u64(&args, &sector))) {
        disk_write(sector, skip_spaces(args));
    } else {
        kprintf("usage: disk | disk read SECTOR | disk write SECTOR TEXT\n");
    }
}
