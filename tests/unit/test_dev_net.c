/* The network card against the fake machine, with its Unix-datagram backend and the test as the
 * other end of the cable: frames the guest queues are sent through the doorbell, frames that
 * arrive fill the receive ring, each raises its interrupt bit, and what the guest controls is
 * checked (bad lengths, a full ring, a transmit index more than a ring ahead, RESET). */
#include "unit.h"

#include "fake_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern const struct device_ops net_device;

struct rig {
    struct vm *vm;
    struct device *dev;
    char base[64];
    int peer; /* the test's end: bound to BASE.0, so the card takes BASE.1 */
    struct sockaddr_un card;
    uint32_t tx_head;
};

static int setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));
    snprintf(r->base, sizeof(r->base), "/tmp/slate-test-net-%d", (int)getpid());
    struct sockaddr_un me = {.sun_family = AF_UNIX};
    snprintf(me.sun_path, sizeof(me.sun_path), "%s.0", r->base);
    snprintf(r->card.sun_path, sizeof(r->card.sun_path), "%s.1", r->base);
    r->card.sun_family = AF_UNIX;
    unlink(me.sun_path);
    r->peer = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(r->peer, (struct sockaddr *)&me, sizeof(me)), 0);
    struct timeval limit = {5, 0};
    setsockopt(r->peer, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    r->vm = fake_vm_new();
    struct net_spec *spec = &r->vm->cfg.nics[0];
    spec->kind = NET_SOCKET;
    snprintf(spec->name, sizeof(spec->name), "%s", r->base);
    memcpy(spec->mac, (uint8_t[]){0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, 6);
    spec->has_mac = true;
    r->vm->cfg.nic_count = 1;
    r->dev = fake_add(r->vm, &net_device, 0);
    assert_non_null(r->dev);
    fake_write(r->dev, SLATE_NET_IRQ_REG + SLATE_IRQ_VECTOR, 0x48);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct rig *r = *state;
    fake_vm_free(r->vm);
    close(r->peer);
    char path[80];
    snprintf(path, sizeof(path), "%s.0", r->base);
    unlink(path);
    unlink(r->card.sun_path);
    free(r);
    return 0;
}

static struct slate_net_window *win(struct rig *r) { return r->dev->window; }

static void queue_frame(struct rig *r, uint16_t len, uint8_t fill)
{
    struct slate_net_slot *slot = &win(r)->tx_slots[r->tx_head % SLATE_NET_RING_SIZE];
    slot->length = len;
    memset(slot->frame, fill, sizeof(slot->frame));
    r->tx_head++;
}

static void ring_tx(struct rig *r)
{
    __atomic_store_n(&win(r)->tx.head, r->tx_head, __ATOMIC_RELEASE);
    assert_true(fake_ring(r->dev, SLATE_NET_TX_NOTIFY));
}

static bool tx_done(void *arg)
{
    struct rig *r = arg;
    return __atomic_load_n(&win(r)->tx.tail, __ATOMIC_ACQUIRE) == r->tx_head;
}

static void mac_and_link(void **state)
{
    struct rig *r = *state;
    assert_int_equal(fake_read(r->dev, SLATE_NET_MAC_LO), 0x12005452);
    assert_int_equal(fake_read(r->dev, SLATE_NET_MAC_HI), 0x5634);
    assert_int_equal(fake_read(r->dev, SLATE_NET_STATUS), SLATE_NET_LINK_UP);
    assert_int_equal(fake_read(r->dev, SLATE_NET_MTU), 1500);
}

static void queued_frames_go_out(void **state)
{
    struct rig *r = *state;
    queue_frame(r, 60, 0xAB);
    queue_frame(r, 10, 0xCD); /* too short: refused */
    queue_frame(r, 1514, 0xEF);
    ring_tx(r);
    uint8_t buf[2048];
    assert_int_equal(recv(r->peer, buf, sizeof(buf), 0), 60);
    assert_int_equal(buf[59], 0xAB);
    assert_int_equal(recv(r->peer, buf, sizeof(buf), 0), 1514);
    assert_true(fake_wait(tx_done, r, 5000));
    assert_int_equal(win(r)->tx_slots[0].status, SLATE_NET_OK);
    assert_int_equal(win(r)->tx_slots[1].status, SLATE_NET_BAD_LENGTH);
    assert_int_equal(fake_read(r->dev, SLATE_NET_TX_FRAMES), 2);
    assert_int_equal(fake_read(r->dev, SLATE_NET_TX_BYTES), 60 + 1514);
    assert_int_equal(fake_read(r->dev, SLATE_NET_TX_ERRORS), 1);
    assert_contains(r->vm->last_warning, "transmit slot 1 has a bad length 10");
    assert_true(fake_read(r->dev, SLATE_NET_IRQ_STATUS) & SLATE_NET_IRQ_TX);
    assert_int_equal(fake_raised(r->dev, 0), 1);
}

/* Version 2: the card says when it is idle (a frame then needs TX_NOTIFY), and IRQ_TX comes
 * every irq_batch frames as well as at the end. */
static void an_idle_card_says_so_and_batches_its_interrupts(void **state)
{
    struct rig *r = *state;
    win(r)->tx.irq_batch = 2;
    for (int i = 0; i < 5; i++)
        queue_frame(r, 60, (uint8_t)i);
    ring_tx(r);
    uint8_t buf[2048];
    for (int i = 0; i < 5; i++)
        assert_int_equal(recv(r->peer, buf, sizeof(buf), 0), 60);
    assert_true(fake_wait(tx_done, r, 5000));
    assert_int_equal(__atomic_load_n(&win(r)->tx.busy, __ATOMIC_ACQUIRE), 0); /* caught up: idle */
    assert_int_equal(fake_raised(r->dev, 0), 1); /* (one until acknowledged) */
    /* Idle: a frame queued without TX_NOTIFY stays queued ... */
    queue_frame(r, 60, 0x77);
    __atomic_store_n(&win(r)->tx.head, r->tx_head, __ATOMIC_RELEASE);
    struct timeval short_wait = {0, 200000};
    setsockopt(r->peer, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof(short_wait));
    assert_int_equal(recv(r->peer, buf, sizeof(buf), 0), -1);
    /* ... until the doorbell */
    assert_true(fake_ring(r->dev, SLATE_NET_TX_NOTIFY));
    assert_int_equal(recv(r->peer, buf, sizeof(buf), 0), 60);
    assert_int_equal(buf[0], 0x77);
}

static bool received(void *arg)
{
    struct rig *r = arg;
    return fake_read(r->dev, SLATE_NET_RX_FRAMES) + fake_read(r->dev, SLATE_NET_RX_DROPS) >= 1;
}

static void arriving_frames_fill_the_receive_ring(void **state)
{
    struct rig *r = *state;
    uint8_t frame[100];
    memset(frame, 0x5A, sizeof(frame));
    assert_int_equal(sendto(r->peer, frame, sizeof(frame), 0, (struct sockaddr *)&r->card, sizeof(r->card)),
                     (ssize_t)sizeof(frame));
    assert_true(fake_wait(received, r, 5000));
    assert_int_equal(win(r)->rx.head, 1);
    assert_int_equal(win(r)->rx_slots[0].length, 100);
    assert_int_equal(win(r)->rx_slots[0].frame[99], 0x5A);
    assert_int_equal(fake_read(r->dev, SLATE_NET_IRQ_STATUS), SLATE_NET_IRQ_RX);
    assert_int_equal(fake_raised(r->dev, 0), 1);
}

static bool many_received(void *arg)
{
    struct rig *r = arg;
    return fake_read(r->dev, SLATE_NET_RX_FRAMES) + fake_read(r->dev, SLATE_NET_RX_DROPS) >= SLATE_NET_RING_SIZE + 5;
}

static void a_full_ring_drops_and_counts(void **state)
{
    struct rig *r = *state;
    uint8_t frame[64] = {0};
    for (int i = 0; i < SLATE_NET_RING_SIZE + 5; i++) {
        frame[0] = (uint8_t)i;
        while (sendto(r->peer, frame, sizeof(frame), 0, (struct sockaddr *)&r->card, sizeof(r->card)) < 0)
            usleep(1000); /* the socket's queue is full: the card's thread drains it */
    }
    assert_true(fake_wait(many_received, r, 5000));
    assert_int_equal(fake_read(r->dev, SLATE_NET_RX_FRAMES), SLATE_NET_RING_SIZE);
    assert_int_equal(fake_read(r->dev, SLATE_NET_RX_DROPS), 5);
}

static bool errored(void *arg)
{
    struct rig *r = arg;
    return fake_read(r->dev, SLATE_NET_STATUS) & SLATE_NET_ERROR;
}

static void a_transmit_index_a_ring_ahead_stops_until_reset(void **state)
{
    struct rig *r = *state;
    r->tx_head = SLATE_NET_RING_SIZE + 1;
    ring_tx(r);
    assert_true(fake_wait(errored, r, 5000));
    assert_int_equal(win(r)->tx.tail, 0);
    fake_write(r->dev, SLATE_NET_RESET, 1);
    assert_contains(r->vm->last_warning, "tx.head 129 is more than a ring ahead");
    for (int i = 0; i < 1000 && errored(r); i++)
        usleep(1000);
    assert_false(errored(r));
    assert_int_equal(win(r)->tx.head, 0);
    r->tx_head = 0;
    queue_frame(r, 60, 1);
    ring_tx(r);
    uint8_t buf[2048];
    assert_int_equal(recv(r->peer, buf, sizeof(buf), 0), 60); /* transmitting again */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(mac_and_link, setup, teardown),
        cmocka_unit_test_setup_teardown(queued_frames_go_out, setup, teardown),
        cmocka_unit_test_setup_teardown(an_idle_card_says_so_and_batches_its_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(arriving_frames_fill_the_receive_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_ring_drops_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(a_transmit_index_a_ring_ahead_stops_until_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
