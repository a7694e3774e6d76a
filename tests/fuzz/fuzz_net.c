/* libFuzzer harness: the network card's transmit and receive rings and registers, driven as a
 * hostile guest would (indexes moved by anything, slot lengths of any size, RESET at any time)
 * while the backend delivers frames of any length, against fake guest memory. Checks that only
 * frames of a legal length reach the backend or the receive ring, that one wake-up never sends
 * more than a ring, and that a frame is received only into a free slot. */
#include "../../src/devices/dev_net.c"

#include "fuzz_devices.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fake_send(struct nic *nic, const uint8_t *frame, size_t len)
{
    (void)nic;
    assert(len >= 14 && len <= SLATE_NET_FRAME_MAX);
    return frame[0] == 0xFF ? -1 : 0; /* a backend that sometimes fails */
}

static const struct net_backend_ops fake_backend = {.send = fake_send};

/* One pass of the card's I/O thread after its doorbell rang. */
static void io_thread_wakes(struct net_dev *nd)
{
    if (atomic_exchange(&nd->reset_requested, false))
        reset_rings(nd);
    uint32_t tail = nd->tx_tail;
    drain_tx(nd);
    if (nd->tx_tail != tail) /* it published how far it got */
        assert(__atomic_load_n(&window(nd)->tx.tail, __ATOMIC_RELAXED) == nd->tx_tail);
    assert(nd->tx_tail - tail <= SLATE_NET_RING_SIZE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct device *dev;
    struct vm *m = fuzz_vm();
    if (!dev)
        dev = fuzz_device(m, &net_device);
    fuzz_vm_reset(m);
    struct net_spec spec = {0};
    struct net_dev *nd = calloc(1, sizeof(*nd));
    assert(nd);
    nd->nic = (struct nic){.spec = &spec, .backend = &fake_backend, .dev = dev, .mac = {0x52, 0x54}};
    nd->tx_notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    nd->stop_fd = -1;
    assert(nd->tx_notify_fd >= 0);
    pthread_mutex_init(&nd->lock, NULL);
    dev->state = nd;
    struct slate_net_window *w = dev->window;

    struct fuzz_input in = {data, size};
    while (in.left) {
        static uint8_t frame[2 * SLATE_NET_FRAME_MAX];
        switch (fuzz_take(&in, 1) % 6) {
        case 0: { /* a transmit slot: any length, a few bytes of frame */
            struct slate_net_slot *slot = &w->tx_slots[fuzz_take(&in, 1) % SLATE_NET_RING_SIZE];
            slot->length = (uint16_t)fuzz_take(&in, 2);
            fuzz_bytes(&in, slot->frame, fuzz_take(&in, 1) % 32);
            break;
        }
        case 1: /* an index: a step, or anything */
        {
            uint32_t *index[4] = {&w->tx.head, &w->tx.tail, &w->rx.head, &w->rx.tail};
            uint32_t *which = index[fuzz_take(&in, 1) % 4];
            *which = fuzz_take(&in, 1) & 0x80 ? (uint32_t)fuzz_take(&in, 4) : *which + (uint32_t)fuzz_take(&in, 1) % 4;
            break;
        }
        case 2: fuzz_register_access(&in, dev); break;
        case 3: io_thread_wakes(nd); break;
        case 4: { /* the backend hands over a frame of any length, as a TAP read or slirp might */
            size_t len = fuzz_take(&in, 2) % sizeof(frame);
            memset(frame, 0xAB, len);
            fuzz_bytes(&in, frame, len < 16 ? len : 16);
            uint32_t head = nd->rx_head;
            nic_receive(&nd->nic, frame, len);
            if (nd->rx_head != head) /* taken: it was a legal frame and there was room */
                assert(len >= 14 && len <= SLATE_NET_FRAME_MAX &&
                       head - __atomic_load_n(&w->rx.tail, __ATOMIC_RELAXED) < SLATE_NET_RING_SIZE);
            break;
        }
        default: { /* raw bytes into the window's first page: indexes and what lies beside them */
            uint8_t buf[64];
            size_t off = fuzz_take(&in, 2) % 4096, n = fuzz_bytes(&in, buf, fuzz_take(&in, 1) % sizeof(buf));
            memcpy((uint8_t *)w + off, buf, n < 4096 - off ? n : 4096 - off);
        }
        }
    }
    close(nd->tx_notify_fd);
    pthread_mutex_destroy(&nd->lock);
    free(nd);
    dev->state = NULL;
    return 0;
}
