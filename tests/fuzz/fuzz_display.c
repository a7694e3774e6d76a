/* libFuzzer harness: the display's registers (any mode, width, height and cursor in any order),
 * the text cells and framebuffer the guest writes, and the refresh that compares dirty pages
 * with what was last shown, against a fake window and any dirty-page bitmap. A screenshot now
 * and then renders whatever mode the guest left. Checks that the shown mode always fits the
 * window. */
#include "../../src/devices/dev_display.c"

#include "fuzz_devices.h"

#include <assert.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct device *dev;
    static struct display *d;
    static char shot[64];
    struct vm *m = fuzz_vm();
    if (!dev) {
        dev = fuzz_device(m, &display_device);
        d = display_new(dev); /* kept: its 8 MiB copy of the screen is costly to make each time */
        assert(d);
        snprintf(shot, sizeof(shot), "/tmp/slate-fuzz-display-%d.png", (int)getpid());
    }
    fuzz_vm_reset(m);
    /* As display_new leaves it. What `shown` and text_fb hold does not matter: entering graphics
     * copies the window into `shown`, and an invalid shadow redraws every cell. */
    d->mode = SLATE_DISPLAY_TEXT, d->width = TEXT_W, d->height = TEXT_H;
    d->req_width = d->req_height = d->cursor = d->shown_cursor = 0;
    d->error = d->shadow_valid = false;

    struct fuzz_input in = {data, size};
    while (in.left) {
        switch (fuzz_take(&in, 1) % 6) {
        case 0: case 1: fuzz_register_access(&in, dev); break;
        case 2: { /* pixels or cells anywhere in the window */
            uint64_t off = fuzz_take(&in, 4) % WINDOW_BYTES;
            uint8_t buf[64];
            size_t n = fuzz_bytes(&in, buf, fuzz_take(&in, 1) % sizeof(buf));
            memcpy((uint8_t *)dev->window + off, buf, n < WINDOW_BYTES - off ? n : WINDOW_BYTES - off);
            break;
        }
        case 3: { /* a run of dirty pages, as KVM might report them */
            memset(d->dirty, 0, BITMAP_BYTES);
            uint64_t first = fuzz_take(&in, 2) % SLOT_PAGES, count = fuzz_take(&in, 2) % 512;
            for (uint64_t p = first; p < first + count && p < SLOT_PAGES; p++)
                d->dirty[p / (8 * sizeof(long))] |= 1UL << (p % (8 * sizeof(long)));
            break;
        }
        case 4: /* the refresh thread's turn */
            pthread_mutex_lock(&d->lock);
            assert((uint64_t)d->width * d->height * 4 <= WINDOW_BYTES);
            if (d->mode == SLATE_DISPLAY_TEXT)
                refresh_text(d);
            else
                refresh_dirty_rows(d);
            pthread_mutex_unlock(&d->lock);
            break;
        default:
            if (fuzz_take(&in, 1) == 0x5C) /* rarely: it writes a file */
                assert(display_png(d, shot) == 0);
        }
    }
    unlink(shot);
    return 0;
}
