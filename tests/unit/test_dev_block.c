/* The block device against the fake machine and a temporary image: requests in the ring are read,
 * written, flushed, discarded and identified through the doorbell, each completion raises the
 * line (once until acknowledged), and what the guest controls is checked: sectors past the end,
 * buffers outside RAM, writes to a read-only disk, and a ring index that runs ahead. */
#include "unit.h"

#include "fake_host.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern const struct device_ops block_device;

#define SECTORS 64

struct rig {
    struct vm *vm;
    struct device *dev;
    char path[64];
    uint32_t submitted;
};

static struct rig *open_rig(bool read_only)
{
    struct rig *r = calloc(1, sizeof(*r));
    snprintf(r->path, sizeof(r->path), "/tmp/slate-test-block-XXXXXX");
    int fd = mkstemp(r->path);
    assert_true(fd >= 0);
    char sector[512];
    for (int i = 0; i < SECTORS; i++) { /* sector i is full of the byte 'A' + i % 26 */
        memset(sector, 'A' + i % 26, sizeof(sector));
        assert_int_equal(write(fd, sector, sizeof(sector)), 512);
    }
    close(fd);
    r->vm = fake_vm_new();
    snprintf(r->vm->cfg.disks[0].path, sizeof(r->vm->cfg.disks[0].path), "%s", r->path);
    r->vm->cfg.disks[0].read_only = read_only;
    r->vm->cfg.disk_count = 1;
    r->dev = fake_add(r->vm, &block_device, 0);
    assert_non_null(r->dev);
    fake_write(r->dev, SLATE_BLOCK_IRQ_REG + SLATE_IRQ_VECTOR, 0x70);
    return r;
}

static int setup(void **state)
{
    *state = open_rig(false);
    return 0;
}

static int setup_ro(void **state)
{
    *state = open_rig(true);
    return 0;
}

static int teardown(void **state)
{
    struct rig *r = *state;
    fake_vm_free(r->vm);
    unlink(r->path);
    free(r);
    return 0;
}

static struct slate_block_ring *ring(struct rig *r) { return r->dev->window; }

static bool all_completed(void *arg)
{
    struct rig *r = arg;
    return __atomic_load_n(&ring(r)->completed, __ATOMIC_ACQUIRE) == r->submitted;
}

/* Submits one request and waits for it; returns its status. */
static uint8_t submit(struct rig *r, uint8_t op, uint64_t sector, uint32_t count, uint64_t buffer)
{
    struct slate_block_request *slot = &ring(r)->slots[r->submitted % SLATE_BLOCK_RING_SIZE];
    *slot = (struct slate_block_request){.op = op, .status = SLATE_BLOCK_PENDING, .count = count,
                                         .sector = sector, .buffer = buffer, .tag = 0xC0FFEE};
    __atomic_store_n(&ring(r)->submitted, ++r->submitted, __ATOMIC_RELEASE);
    assert_true(fake_ring(r->dev, SLATE_BLOCK_NOTIFY));
    assert_true(fake_wait(all_completed, r, 5000));
    assert_int_equal(slot->tag, 0xC0FFEE); /* the guest's own value is left alone */
    return slot->status;
}

static void capacity_and_identity(void **state)
{
    struct rig *r = *state;
    assert_int_equal(fake_read(r->dev, SLATE_BLOCK_CAPACITY_LO), SECTORS);
    assert_int_equal(fake_read(r->dev, SLATE_BLOCK_CAPACITY_HI), 0);
    assert_int_equal(fake_read(r->dev, SLATE_BLOCK_FLAGS), 0);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_IDENTIFY, 0, 0, 0x1000), SLATE_BLOCK_OK);
    const struct slate_block_identity *id = (const void *)(r->vm->ram + 0x1000);
    assert_int_equal(id->capacity, SECTORS);
    assert_int_equal(id->sector_size, 512);
    assert_string_equal(id->serial, "slate-disk-0");
}

static void read_and_write_reach_the_image(void **state)
{
    struct rig *r = *state;
    assert_int_equal(submit(r, SLATE_BLOCK_OP_READ, 2, 2, 0x2000), SLATE_BLOCK_OK);
    assert_int_equal(r->vm->ram[0x2000], 'C');
    assert_int_equal(r->vm->ram[0x2000 + 1023], 'D');
    memset(r->vm->ram + 0x3000, 'z', 512);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_WRITE, 5, 1, 0x3000), SLATE_BLOCK_OK);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_FLUSH, 0, 0, 0), SLATE_BLOCK_OK);
    char byte = 0;
    int fd = open(r->path, O_RDONLY);
    assert_int_equal(pread(fd, &byte, 1, 5 * 512 + 100), 1);
    close(fd);
    assert_int_equal(byte, 'z');
}

static void completions_raise_the_line_until_acknowledged(void **state)
{
    struct rig *r = *state;
    submit(r, SLATE_BLOCK_OP_READ, 0, 1, 0x2000);
    submit(r, SLATE_BLOCK_OP_READ, 1, 1, 0x2000);
    assert_int_equal(fake_raised(r->dev, 0), 1);
    assert_int_equal(fake_read(r->dev, SLATE_BLOCK_IRQ_STATUS), 1);
    fake_write(r->dev, SLATE_BLOCK_IRQ_STATUS, 1);
    assert_int_equal(fake_raised(r->dev, 0), 1);
    submit(r, SLATE_BLOCK_OP_READ, 2, 1, 0x2000);
    assert_int_equal(fake_raised(r->dev, 0), 2);
}

static bool completed_five(void *arg)
{
    struct rig *r = arg;
    return __atomic_load_n(&ring(r)->completed, __ATOMIC_ACQUIRE) == 5;
}

/* Version 2: with irq_batch over the batch size, the one interrupt comes when the device has
 * caught up; the device then says it is idle, and a request submitted without NOTIFY waits. */
static void batched_interrupts_and_an_idle_device(void **state)
{
    struct rig *r = *state;
    assert_int_equal(fake_read(r->dev, SLATE_BLOCK_IRQ_STATUS), 0);
    ring(r)->irq_batch = 100;
    for (int i = 0; i < 5; i++) {
        ring(r)->slots[i] = (struct slate_block_request){.op = SLATE_BLOCK_OP_READ, .status = SLATE_BLOCK_PENDING,
                                                         .count = 1, .sector = (uint64_t)i, .buffer = 0x2000};
    }
    r->submitted = 5;
    __atomic_store_n(&ring(r)->submitted, 5, __ATOMIC_RELEASE);
    assert_true(fake_ring(r->dev, SLATE_BLOCK_NOTIFY));
    assert_true(fake_wait(completed_five, r, 5000));
    assert_true(fake_wait(all_completed, r, 5000));
    for (int i = 0; i < 5; i++)
        assert_int_equal(ring(r)->slots[i].status, SLATE_BLOCK_OK);
    for (int i = 0; i < 100 && fake_raised(r->dev, 0) == 0; i++)
        usleep(10000);
    assert_int_equal(fake_raised(r->dev, 0), 1); /* on catching up, though 5 < 100 */
    assert_int_equal(__atomic_load_n(&ring(r)->device_busy, __ATOMIC_ACQUIRE), 0);
    /* Idle: no NOTIFY, no progress ... */
    ring(r)->slots[5] = (struct slate_block_request){.op = SLATE_BLOCK_OP_READ, .status = SLATE_BLOCK_PENDING,
                                                     .count = 1, .sector = 7, .buffer = 0x2000};
    __atomic_store_n(&ring(r)->submitted, ++r->submitted, __ATOMIC_RELEASE);
    usleep(200000);
    assert_int_equal(__atomic_load_n(&ring(r)->completed, __ATOMIC_ACQUIRE), 5);
    /* ... until the doorbell */
    assert_true(fake_ring(r->dev, SLATE_BLOCK_NOTIFY));
    assert_true(fake_wait(all_completed, r, 5000));
    assert_int_equal(r->vm->ram[0x2000], 'A' + 7);
}

static void put_request(struct rig *r, uint8_t op, uint64_t sector, uint32_t count, uint64_t buffer)
{
    ring(r)->slots[r->submitted % SLATE_BLOCK_RING_SIZE] = (struct slate_block_request){
        .op = op, .status = SLATE_BLOCK_PENDING, .count = count, .sector = sector, .buffer = buffer};
    r->submitted++;
}

/* Adjacent requests queued together go to the host in one preadv or pwritev: each still lands in
 * its own buffer, a bad one among them gets its own status, and the rest are done. */
static void adjacent_requests_are_joined_and_still_exact(void **state)
{
    struct rig *r = *state;
    for (int i = 0; i < 4; i++) /* writes: sectors 10..17 from four buffers, 2 sectors each */
        memset(r->vm->ram + 0x10000 + i * 0x1000, 'a' + i, 1024);
    uint32_t first = r->submitted;
    for (int i = 0; i < 4; i++)
        put_request(r, SLATE_BLOCK_OP_WRITE, 10 + 2 * (uint64_t)i, 2, 0x10000 + (uint64_t)i * 0x1000);
    put_request(r, SLATE_BLOCK_OP_WRITE, 18, 1, FAKE_RAM_BYTES - 100); /* adjacent, but a bad buffer */
    put_request(r, SLATE_BLOCK_OP_READ, 10, 3, 0x20000);                 /* reads: 10..12, 13..17 */
    put_request(r, SLATE_BLOCK_OP_READ, 13, 5, 0x30000);
    __atomic_store_n(&ring(r)->submitted, r->submitted, __ATOMIC_RELEASE);
    assert_true(fake_ring(r->dev, SLATE_BLOCK_NOTIFY));
    assert_true(fake_wait(all_completed, r, 5000));
    for (uint32_t i = 0; i < 7; i++)
        assert_int_equal(ring(r)->slots[(first + i) % SLATE_BLOCK_RING_SIZE].status,
                         i == 4 ? SLATE_BLOCK_BAD_BUFFER : SLATE_BLOCK_OK);
    int fd = open(r->path, O_RDONLY);
    char image[8 * 512];
    assert_int_equal(pread(fd, image, sizeof(image), 10 * 512), (ssize_t)sizeof(image));
    close(fd);
    for (int s = 0; s < 8; s++)
        assert_int_equal(image[s * 512 + 7], 'a' + s / 2);
    assert_int_equal(r->vm->ram[0x20000], 'a');
    assert_int_equal(r->vm->ram[0x20000 + 2 * 512], 'b');
    assert_int_equal(r->vm->ram[0x30000], 'b');          /* sector 13 */
    assert_int_equal(r->vm->ram[0x30000 + 4 * 512 + 511], 'd'); /* sector 17 */
}

static void what_the_guest_controls_is_checked(void **state)
{
    struct rig *r = *state;
    assert_int_equal(submit(r, SLATE_BLOCK_OP_READ, SECTORS - 1, 2, 0x2000), SLATE_BLOCK_OUT_OF_RANGE);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_READ, 0, 0, 0x2000), SLATE_BLOCK_OUT_OF_RANGE);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_READ, UINT64_MAX, 1, 0x2000), SLATE_BLOCK_OUT_OF_RANGE);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_READ, 0, 1, FAKE_RAM_BYTES - 256), SLATE_BLOCK_BAD_BUFFER);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_READ, 0, 1, UINT64_MAX - 100), SLATE_BLOCK_BAD_BUFFER);
    assert_int_equal(submit(r, 99, 0, 1, 0x2000), SLATE_BLOCK_UNSUPPORTED);
    assert_int_equal(fake_read(r->dev, SLATE_BLOCK_ERROR), 0);
}

static bool broken(void *arg)
{
    struct rig *r = arg;
    return fake_read(r->dev, SLATE_BLOCK_ERROR) != 0;
}

static void a_ring_index_that_runs_ahead_stops_the_device(void **state)
{
    struct rig *r = *state;
    __atomic_store_n(&ring(r)->submitted, SLATE_BLOCK_RING_SIZE + 1, __ATOMIC_RELEASE);
    assert_true(fake_ring(r->dev, SLATE_BLOCK_NOTIFY));
    assert_true(fake_wait(broken, r, 5000));
    assert_int_equal(ring(r)->completed, 0); /* nothing was carried out */
    assert_contains(r->vm->last_warning, "the guest submitted 257 requests");
}

static void a_read_only_disk_refuses_writes(void **state)
{
    struct rig *r = *state;
    assert_int_equal(fake_read(r->dev, SLATE_BLOCK_FLAGS), SLATE_BLOCK_READ_ONLY);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_WRITE, 0, 1, 0x2000), SLATE_BLOCK_READ_ONLY_ERR);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_DISCARD, 0, 1, 0), SLATE_BLOCK_READ_ONLY_ERR);
    assert_int_equal(submit(r, SLATE_BLOCK_OP_READ, 0, 1, 0x2000), SLATE_BLOCK_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(capacity_and_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(read_and_write_reach_the_image, setup, teardown),
        cmocka_unit_test_setup_teardown(completions_raise_the_line_until_acknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(batched_interrupts_and_an_idle_device, setup, teardown),
        cmocka_unit_test_setup_teardown(adjacent_requests_are_joined_and_still_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(what_the_guest_controls_is_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(a_ring_index_that_runs_ahead_stops_the_device, setup, teardown),
        cmocka_unit_test_setup_teardown(a_read_only_disk_refuses_writes, setup_ro, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
