/* libFuzzer harness: the block device's registers and request ring, driven as a hostile guest
 * would (ring slots, indexes, buffer addresses and lengths, register writes in any order)
 * against fake guest memory and an in-memory image. Checks what a guest must never achieve:
 * writing a read-only image, growing or shrinking the image, or the device losing count of the
 * requests it completed. */
#include "../../src/devices/dev_block.c"

#include "fuzz_devices.h"

#include <assert.h>
#include <sys/mman.h>

#define IMAGE_SECTORS 64
#define IMAGE_BYTES (IMAGE_SECTORS * SECTOR)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t image_pattern[IMAGE_BYTES];

static uint64_t image_size(int fd)
{
    struct stat st;
    assert(fstat(fd, &st) == 0);
    return (uint64_t)st.st_size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct device *dev;
    static int image_fd = -1;
    struct vm *m = fuzz_vm();
    if (!dev) {
        dev = fuzz_device(m, &block_device);
        image_fd = memfd_create("fuzz-image", MFD_CLOEXEC);
        assert(image_fd >= 0);
        for (size_t i = 0; i < IMAGE_BYTES; i++)
            image_pattern[i] = (uint8_t)(i * 7 + i / SECTOR);
    }
    fuzz_vm_reset(m);
    assert(ftruncate(image_fd, IMAGE_BYTES) == 0);
    assert(pwrite(image_fd, image_pattern, IMAGE_BYTES, 0) == IMAGE_BYTES);

    struct fuzz_input in = {data, size};
    struct disk_spec spec = {.path = "fuzz-image", .read_only = fuzz_take(&in, 1) & 1};
    struct disk d = {.dev = dev, .spec = &spec, .fd = image_fd, .capacity = IMAGE_SECTORS,
                     .notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), .stop_fd = -1};
    assert(d.notify_fd >= 0);
    pthread_mutex_init(&d.lock, NULL);
    dev->state = &d;
    struct slate_block_ring *ring = dev->window;

    while (in.left) {
        uint8_t buf[256];
        switch (fuzz_take(&in, 1) % 5) {
        case 0: { /* a whole request in a slot: sector, count, op, buffer as a guest picks them */
            struct slate_block_request req = {
                .op = (uint8_t)fuzz_take(&in, 1) % 8, .count = (uint32_t)fuzz_take(&in, 2) % 300,
                .sector = fuzz_take(&in, 1) & 0x80 ? fuzz_take(&in, 8) : fuzz_take(&in, 1),
                .buffer = fuzz_address(&in)};
            memcpy(&ring->slots[fuzz_take(&in, 1) % SLATE_BLOCK_RING_SIZE], &req, sizeof(req));
            break;
        }
        case 1: /* raw bytes anywhere in the window: indexes, half-written slots */
        {
            size_t off = fuzz_take(&in, 2) % sizeof(*ring), n = fuzz_bytes(&in, buf, fuzz_take(&in, 1) % 64);
            memcpy((uint8_t *)ring + off, buf, n < sizeof(*ring) - off ? n : sizeof(*ring) - off);
            break;
        }
        case 2: /* submit: move the index on by a little or by anything */
            ring->submitted = fuzz_take(&in, 1) & 0x80 ? (uint32_t)fuzz_take(&in, 4)
                                                       : ring->submitted + (uint32_t)fuzz_take(&in, 1) % 8;
            break;
        case 3: fuzz_register_access(&in, dev); break;
        default: { /* the worker wakes up */
            uint32_t consumed = d.consumed;
            process_ring(&d);
            if (d.consumed != consumed) /* it published each completion */
                assert(__atomic_load_n(&ring->completed, __ATOMIC_RELAXED) == d.consumed);
        }
        }
    }

    assert(image_size(image_fd) == IMAGE_BYTES);
    if (spec.read_only) {
        static uint8_t now[IMAGE_BYTES];
        assert(pread(image_fd, now, IMAGE_BYTES, 0) == IMAGE_BYTES);
        assert(memcmp(now, image_pattern, IMAGE_BYTES) == 0);
    }
    close(d.notify_fd);
    pthread_mutex_destroy(&d.lock);
    dev->state = NULL;
    return 0;
}
