/* The block device. Modes (the command line):
 *   write     fills the disk with a pattern (sector s, word w -> s << 32 | w), flushes, exits
 *   read      reads the whole disk back, checks the pattern, prints a checksum
 *   errors    every refusal: out of range, bad buffers, unknown op, read-only; then a broken ring
 *   crash     writes 4 KiB blocks one by one, flushing each and printing "flushed N"
 *   bench     sequential 1 MiB and random 4 KiB throughput as the guest sees it (the doorbell
 *             rung only when the device is idle, an interrupt per half queue: version 2)
 *   batching  the same 256 reads twice, 32 in flight: as a version-1 driver does (NOTIFY after
 *             every submission, an interrupt per completion), then with device_busy and
 *             irq_batch; prints the doorbells rung and interrupts taken for each
 *   failing   (the host limits the image to 1 MiB) a write past it fails; FLUSH keeps failing
 *             until the guest clears WRITE_ERRORS
 * Completions arrive by interrupt; the CPU halts while it waits. */
#include "guest.h"

#define VEC_DISK 0x70
#define CHUNK_SECTORS 128 /* 64 KiB */

static const struct slate_info *info;
static const struct slate_device *disk;
static volatile struct slate_block_ring *ring;
static uint64_t capacity;
static volatile uint32_t interrupts; /* taken, for the batching mode */
static uint32_t notifies;            /* NOTIFY writes */
static bool frugal;                  /* ring only when the device is idle (version 2) */
static uint8_t buffer[8 << 20] __attribute__((aligned(4096)));
static struct slate_block_identity identity;

__attribute__((interrupt)) static void on_disk(struct interrupt_frame *f)
{
    (void)f;
    interrupts++;
    slate_outl(disk->port_base + SLATE_BLOCK_IRQ_STATUS, 1);
    lapic_eoi();
}

/* Queues one request without waiting; returns its sequence number. */
static uint32_t submit(uint8_t op, uint64_t sector, uint32_t count, uint64_t buf)
{
    uint32_t seq = ring->submitted;
    volatile struct slate_block_request *r = &ring->slots[seq % SLATE_BLOCK_RING_SIZE];
    r->op = op;
    r->status = SLATE_BLOCK_PENDING;
    r->count = count;
    r->sector = sector;
    r->buffer = buf;
    r->tag = seq;
    __atomic_store_n(&ring->submitted, seq + 1, __ATOMIC_RELEASE);
    return seq;
}

static void notify(void)
{
    if (frugal && !slate_block_notify_needed(ring))
        return;
    notifies++;
    slate_outl(disk->port_base + SLATE_BLOCK_NOTIFY, 1);
}

static uint8_t wait_for(uint32_t seq)
{
    WAIT_FOR((int32_t)(ring->completed - (seq + 1)) >= 0);
    volatile struct slate_block_request *r = &ring->slots[seq % SLATE_BLOCK_RING_SIZE];
    GUEST_ASSERT(r->tag == seq); /* the device left the tag alone */
    return r->status;
}

static uint8_t request(uint8_t op, uint64_t sector, uint32_t count, uint64_t buf)
{
    uint32_t seq = submit(op, sector, count, buf);
    notify();
    return wait_for(seq);
}

static uint64_t pattern(uint64_t sector, unsigned word) { return sector << 32 | word; }

static void fill(uint64_t first_sector, uint32_t count)
{
    uint64_t *w = (uint64_t *)buffer;
    for (uint32_t s = 0; s < count; s++)
        for (unsigned i = 0; i < SLATE_BLOCK_SECTOR_SIZE / 8; i++)
            *w++ = pattern(first_sector + s, i);
}

static void write_all(void)
{
    for (uint64_t s = 0; s < capacity; s += CHUNK_SECTORS) {
        uint32_t n = capacity - s < CHUNK_SECTORS ? (uint32_t)(capacity - s) : CHUNK_SECTORS;
        fill(s, n);
        GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, s, n, (uint64_t)buffer) == SLATE_BLOCK_OK);
    }
    GUEST_ASSERT(request(SLATE_BLOCK_OP_FLUSH, 0, 0, 0) == SLATE_BLOCK_OK);
    puts_hc("wrote and flushed the disk\n");
}

static void read_all(void)
{
    uint64_t sum = 0;
    for (uint64_t s = 0; s < capacity; s += CHUNK_SECTORS) {
        uint32_t n = capacity - s < CHUNK_SECTORS ? (uint32_t)(capacity - s) : CHUNK_SECTORS;
        GUEST_ASSERT(request(SLATE_BLOCK_OP_READ, s, n, (uint64_t)buffer) == SLATE_BLOCK_OK);
        const uint64_t *w = (const uint64_t *)buffer;
        for (uint32_t i = 0; i < n; i++)
            for (unsigned j = 0; j < SLATE_BLOCK_SECTOR_SIZE / 8; j++, w++) {
                GUEST_ASSERT(*w == pattern(s + i, j));
                sum = sum * 31 + *w;
            }
    }
    puts_hc("read back the pattern; checksum ");
    put_hex(sum);
    puts_hc("\n");
}

static void errors(void)
{
    uint64_t buf = (uint64_t)buffer;
    uint64_t ram_end = 0;
    const struct slate_ram_region *ram = (const void *)((const uint8_t *)info + info->ram_offset);
    ram_end = ram[0].base + ram[0].size;
    GUEST_ASSERT(request(SLATE_BLOCK_OP_READ, capacity, 1, buf) == SLATE_BLOCK_OUT_OF_RANGE);
    GUEST_ASSERT(request(SLATE_BLOCK_OP_READ, capacity - 1, 2, buf) == SLATE_BLOCK_OUT_OF_RANGE);
    GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, ~0ULL, 8, buf) == SLATE_BLOCK_OUT_OF_RANGE);
    GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, 0, 0, buf) == SLATE_BLOCK_OUT_OF_RANGE);
    GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, 0, SLATE_BLOCK_MAX_SECTORS + 1, buf) == SLATE_BLOCK_OUT_OF_RANGE);
    GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, 0, 1, SLATE_INFO_ADDR) == SLATE_BLOCK_BAD_BUFFER);
    GUEST_ASSERT(request(SLATE_BLOCK_OP_READ, 0, 1, SLATE_INFO_ADDR) == SLATE_BLOCK_BAD_BUFFER);
    GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, 0, 2, ram_end - 512) == SLATE_BLOCK_BAD_BUFFER);
    GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, 0, 1, ~0ULL - 100) == SLATE_BLOCK_BAD_BUFFER);
    GUEST_ASSERT(request(99, 0, 1, buf) == SLATE_BLOCK_UNSUPPORTED);
    bool ro = slate_inl(disk->port_base + SLATE_BLOCK_FLAGS) & SLATE_BLOCK_READ_ONLY;
    if (ro) {
        GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, 0, 1, buf) == SLATE_BLOCK_READ_ONLY_ERR);
        GUEST_ASSERT(request(SLATE_BLOCK_OP_DISCARD, 0, 8, 0) == SLATE_BLOCK_READ_ONLY_ERR);
        GUEST_ASSERT(request(SLATE_BLOCK_OP_READ, 0, 1, buf) == SLATE_BLOCK_OK);
        GUEST_ASSERT(request(SLATE_BLOCK_OP_FLUSH, 0, 0, 0) == SLATE_BLOCK_OK);
        puts_hc("read-only refusals ok\n");
    }
    /* A broken ring: claim far more requests than the ring holds. The device stops and says so. */
    GUEST_ASSERT(slate_inl(disk->port_base + SLATE_BLOCK_ERROR) == 0);
    ring->submitted += 10 * SLATE_BLOCK_RING_SIZE;
    notify();
    const struct slate_device *timer = slate_find_device(info, SLATE_DEV_TIMER, 0);
    uint32_t start = slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO);
    while (slate_inl(disk->port_base + SLATE_BLOCK_ERROR) == 0 &&
           slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO) - start < 1000000000u)
        __asm__ volatile("pause");
    GUEST_ASSERT(slate_inl(disk->port_base + SLATE_BLOCK_ERROR) != 0);
    puts_hc("block errors ok\n");
}

/* One 4 KiB block at a time, each flushed before it is reported; never returns. */
static void crash_loop(void)
{
    for (uint64_t block = 0; block * 8 < capacity; block++) {
        fill(block * 8, 8);
        GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, block * 8, 8, (uint64_t)buffer) == SLATE_BLOCK_OK);
        GUEST_ASSERT(request(SLATE_BLOCK_OP_FLUSH, 0, 0, 0) == SLATE_BLOCK_OK);
        puts_hc("flushed ");
        put_dec((int64_t)block);
        puts_hc("\n");
    }
    puts_hc("disk full\n");
    for (;;)
        __asm__ volatile("cli; hlt");
}

static uint64_t now_ns(void)
{
    uint64_t delta = rdtsc() - info->boot_tsc, khz = info->tsc_khz;
    return delta / khz * 1000000 + delta % khz * 1000000 / khz;
}

/* Keeps `depth` requests in flight; returns the elapsed ns for `total` requests. */
static uint64_t run_queue(uint8_t op, uint32_t sectors, uint32_t total, uint32_t depth, bool random)
{
    uint64_t blocks = capacity / sectors, rng = 88172645463325252ULL;
    uint32_t base = ring->submitted, issued = 0, done = 0;
    notifies = 0, interrupts = 0;
    uint64_t t0 = now_ns();
    while (done < total) {
        while (issued < total && issued - done < depth) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            uint64_t block = random ? rng % blocks : issued % blocks;
            uint64_t buf = (uint64_t)buffer + (issued % depth) * (uint64_t)sectors * 512 % sizeof(buffer);
            submit(op, block * sectors, sectors, buf);
            issued++;
        }
        notify();
        GUEST_ASSERT(wait_for(base + done) == SLATE_BLOCK_OK);
        done = ring->completed - base;
    }
    return now_ns() - t0;
}

static void report(const char *what, uint64_t ns, uint32_t requests, uint32_t sectors)
{
    puts_hc(what);
    puts_hc(": MB/s ");
    put_dec((int64_t)((uint64_t)requests * sectors * 512 / (ns / 1000 + 1)));
    puts_hc(" IOPS ");
    put_dec((int64_t)((uint64_t)requests * 1000000000 / (ns + 1)));
    puts_hc(" doorbells/request ");
    put_dec((int64_t)(notifies * 100 / requests));
    puts_hc("% interrupts/request ");
    put_dec((int64_t)(interrupts * 100 / requests));
    puts_hc("%\n");
}

/* The same reads the old way and the new: the doorbells and interrupts each costs. */
static void batching(void)
{
    GUEST_ASSERT(disk->version >= 2);
    for (int round = 0; round < 2; round++) {
        frugal = round == 1;
        ring->irq_batch = frugal ? 16 : 0;
        notifies = 0, interrupts = 0;
        uint32_t before = ring->completed;
        run_queue(SLATE_BLOCK_OP_READ, 8, 256, 32, true);
        GUEST_ASSERT(ring->completed - before == 256);
        puts_hc(frugal ? "batched" : "one by one");
        puts_hc(": 256 requests, ");
        put_dec(notifies);
        puts_hc(" doorbells, ");
        put_dec(interrupts);
        puts_hc(" interrupts\n");
    }
    ring->irq_batch = 0;
}

/* bench-v1: as a version-1 driver does, for a comparison in the same run. */
static void bench(bool v1)
{
    uint32_t mib = (uint32_t)(capacity / 2048);
    frugal = disk->version >= 2 && !v1;
    ring->irq_batch = frugal ? 4 : 0; /* 8 in flight: woken with half of them done */
    report("seq-read-1M", run_queue(SLATE_BLOCK_OP_READ, 2048, 4 * mib, 8, false), 4 * mib, 2048);
    report("seq-write-1M", run_queue(SLATE_BLOCK_OP_WRITE, 2048, 4 * mib, 8, false), 4 * mib, 2048);
    ring->irq_batch = frugal ? 16 : 0; /* 32 in flight */
    report("rand-read-4K", run_queue(SLATE_BLOCK_OP_READ, 8, 4000, 32, true), 4000, 8);
    report("rand-write-4K", run_queue(SLATE_BLOCK_OP_WRITE, 8, 4000, 32, true), 4000, 8);
}

KMAIN kmain(const struct slate_info *boot_info)
{
    info = boot_info;
    disk = slate_find_device(info, SLATE_DEV_BLOCK, 0);
    GUEST_ASSERT(disk && disk->irq_count == 1);
    GUEST_ASSERT(disk->window_size >= sizeof(struct slate_block_ring));
    ring = (volatile struct slate_block_ring *)disk->window_base;
    idt_set(VEC_DISK, on_disk);
    idt_load();
    lapic_enable();
    slate_outl(disk->port_base + disk->irq_reg + SLATE_IRQ_VECTOR, VEC_DISK);
    capacity = slate_inl(disk->port_base + SLATE_BLOCK_CAPACITY_LO) |
               (uint64_t)slate_inl(disk->port_base + SLATE_BLOCK_CAPACITY_HI) << 32;
    GUEST_ASSERT(request(SLATE_BLOCK_OP_IDENTIFY, 0, 0, (uint64_t)&identity) == SLATE_BLOCK_OK);
    GUEST_ASSERT(identity.capacity == capacity && identity.sector_size == 512);
    GUEST_ASSERT(str_eq(identity.model, "slate disk"));
    const char *mode = cmdline(info);
    if (str_eq(mode, "write"))
        write_all();
    else if (str_eq(mode, "read"))
        read_all();
    else if (str_eq(mode, "errors"))
        errors();
    else if (str_eq(mode, "crash"))
        crash_loop();
    else if (str_eq(mode, "failing")) {
        uint64_t buf = (uint64_t)buffer;
        GUEST_ASSERT(request(SLATE_BLOCK_OP_WRITE, 0, 8, buf) == SLATE_BLOCK_OK);
        GUEST_ASSERT(request(SLATE_BLOCK_OP_FLUSH, 0, 0, 0) == SLATE_BLOCK_OK);
        uint8_t past = request(SLATE_BLOCK_OP_WRITE, 4096, 8, buf); /* at 2 MiB */
        uint8_t flush1 = request(SLATE_BLOCK_OP_FLUSH, 0, 0, 0);
        uint8_t flush2 = request(SLATE_BLOCK_OP_FLUSH, 0, 0, 0);
        uint32_t lost = slate_inl(disk->port_base + SLATE_BLOCK_WRITE_ERRORS);
        slate_outl(disk->port_base + SLATE_BLOCK_WRITE_ERRORS, 0);
        uint8_t flush3 = request(SLATE_BLOCK_OP_FLUSH, 0, 0, 0);
        puts_hc("write past the limit ");
        put_dec(past);
        puts_hc(", flushes ");
        put_dec(flush1);
        puts_hc(" ");
        put_dec(flush2);
        puts_hc(", write errors ");
        put_dec(lost);
        puts_hc(", flush after clearing ");
        put_dec(flush3);
        puts_hc("\n");
    } else if (str_eq(mode, "batching")) {
        batching();
    } else if (str_eq(mode, "bench") || str_eq(mode, "bench-v1"))
        bench(str_eq(mode, "bench-v1"));
    else if (str_eq(mode, "identify")) {
        puts_hc("serial ");
        puts_hc(identity.serial);
        puts_hc("\n");
    } else
        GUEST_ASSERT(!"unknown mode");
    guest_exit(0);
}
