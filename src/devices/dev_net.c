/* dev_net.c - the network card (type 1): a transmit and a receive ring in shared memory, a TX
 * doorbell that is a KVM ioeventfd (no exit to user space), and one I/O thread per card that
 * drains the transmit ring into the backend and fills the receive ring from it. Interrupts are
 * coalesced: raised on a 0 -> 1 edge of IRQ_STATUS, so a burst costs one. */
#include "device.h"
#include "options.h"
#include "module.h"
#include "net.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { C_RX_FRAMES, C_RX_BYTES, C_TX_FRAMES, C_TX_BYTES, C_RX_DROPS, C_TX_ERRORS, C_COUNT };

struct net_dev {
    struct nic nic;
    int tx_notify_fd; /* the ioeventfd behind TX_NOTIFY; RESET and RX_NOTIFY also write it */
    int stop_fd;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* guards irq_status */
    /* Held by the I/O thread while it works the rings, so a snapshot sees them between two
     * rounds: nothing half-sent, nothing half-received. */
    pthread_mutex_t io_lock;
    uint32_t irq_status;
    _Atomic uint32_t counters[C_COUNT];
    _Atomic bool error;
    _Atomic bool reset_requested;
    uint32_t tx_tail, rx_head; /* the device's own indexes; only the I/O thread touches them */
    /* --record: frames from the backend wait here for the vCPU's next stop (record_sync), and
     * the transmit ring is worked at the guest's TX_NOTIFY exit; --replay: no backend, no
     * thread, the log writes what the card did. Both are the choice made at start: a recording
     * that crashed turns into a replay (device_record_mode), with its start-up choices kept. */
    bool recording, replaying;
    pthread_mutex_t arrived_lock;
    struct arrived_frame {
        uint16_t len;
        uint8_t data[SLATE_NET_FRAME_MAX];
    } *arrived;
    unsigned arrived_count;
};
#define ARRIVED_MAX 64 /* frames held for the next stop; more are dropped (RX_DROPS) */

static struct net_dev *nd_of(struct nic *nic) { return (struct net_dev *)nic; }
static struct slate_net_window *window(struct net_dev *nd) { return nd->nic.dev->window; }

static void raise_irq(struct net_dev *nd, uint32_t bit)
{
    pthread_mutex_lock(&nd->lock);
    if (!(nd->irq_status & bit)) {
        nd->irq_status |= bit;
        device_raise(nd->nic.dev, 0);
    }
    pthread_mutex_unlock(&nd->lock);
}

/* Recording: `len` bytes the card wrote at `at` in its window (a slot, a ring's header). */
static void note_window(struct net_dev *nd, const void *at, uint64_t len)
{
    struct device *dev = nd->nic.dev;
    device_wrote(dev, dev->window_gpa + (uint64_t)((const uint8_t *)at - (const uint8_t *)window(nd)), at, len);
}

/* Puts one frame into the receive ring (or counts it dropped). Recording, names what it wrote. */
static void put_frame(struct net_dev *nd, const uint8_t *frame, size_t len)
{
    struct nic *nic = &nd->nic;
    struct slate_net_window *w = window(nd);
    uint32_t tail = __atomic_load_n(&w->rx.tail, __ATOMIC_ACQUIRE);
    uint32_t used = nd->rx_head - tail;
    if (used >= SLATE_NET_RING_SIZE || len < 14 || len > SLATE_NET_FRAME_MAX) {
        if (used > SLATE_NET_RING_SIZE)
            device_warn(nd->nic.dev, "%s: rx.tail %u is not within a ring of rx.head %u; "
                             "dropping frames until the guest fixes it", nic->dev->name, tail,
                             nd->rx_head);
        atomic_fetch_add(&nd->counters[C_RX_DROPS], 1);
        return;
    }
    struct slate_net_slot *slot = &w->rx_slots[nd->rx_head % SLATE_NET_RING_SIZE];
    memcpy(slot->frame, frame, len);
    slot->length = (uint16_t)len;
    slot->status = SLATE_NET_OK;
    nd->rx_head++;
    __atomic_store_n(&w->rx.head, nd->rx_head, __ATOMIC_RELEASE);
    atomic_fetch_add(&nd->counters[C_RX_FRAMES], 1);
    atomic_fetch_add(&nd->counters[C_RX_BYTES], (uint32_t)len);
    if (nd->recording) {
        note_window(nd, slot, offsetof(struct slate_net_slot, frame) + len);
        note_window(nd, &w->rx, sizeof(w->rx));
    }
    raise_irq(nd, SLATE_NET_IRQ_RX);
}

void nic_receive(struct nic *nic, const uint8_t *frame, size_t len)
{
    struct net_dev *nd = nd_of(nic);
    if (!nd->recording) {
        put_frame(nd, frame, len);
        return;
    }
    /* Recording: not now, from this thread, but at the vCPU's next stop (net_record_sync). Once
     * a recording that crashed replays its own log, nothing syncs: what arrives stays here. */
    pthread_mutex_lock(&nd->arrived_lock);
    bool kept = nd->arrived_count < ARRIVED_MAX && len <= SLATE_NET_FRAME_MAX;
    if (kept) {
        struct arrived_frame *a = &nd->arrived[nd->arrived_count++];
        a->len = (uint16_t)len;
        memcpy(a->data, frame, len);
    }
    pthread_mutex_unlock(&nd->arrived_lock);
    if (kept)
        device_record_kick(nic->dev);
    else
        atomic_fetch_add(&nd->counters[C_RX_DROPS], 1);
}

static void net_record_sync(struct device *dev)
{
    struct net_dev *nd = dev->state;
    if (!nd || !nd->recording)
        return;
    pthread_mutex_lock(&nd->arrived_lock);
    for (unsigned i = 0; i < nd->arrived_count; i++)
        put_frame(nd, nd->arrived[i].data, nd->arrived[i].len);
    nd->arrived_count = 0;
    pthread_mutex_unlock(&nd->arrived_lock);
}


/* One frame from a transmit slot to the backend: straight from guest memory when the backend
 * reads it once (a guest that rewrites it meanwhile only garbles its own frame), else from a
 * private copy. */
static int send_frame(struct nic *nic, const uint8_t *slot_frame, uint16_t len)
{
    if (nic->backend->reads_once)
        return nic->backend->send(nic, slot_frame, len);
    uint8_t frame[SLATE_NET_FRAME_MAX];
    memcpy(frame, slot_frame, len);
    return nic->backend->send(nic, frame, len);
}

/* Sends the frames from tx.tail up to `head`. Each slot's length is read once and checked.
 * *unsignalled counts the frames sent since the last IRQ_TX (tx.irq_batch). False when the guest
 * moved tx.head more than a ring ahead (transmit stops). */
static bool send_queued(struct net_dev *nd, uint32_t head, uint32_t *unsignalled)
{
    struct slate_net_window *w = window(nd);
    struct nic *nic = &nd->nic;
    if (head - nd->tx_tail > SLATE_NET_RING_SIZE) {
        device_warn(nd->nic.dev, "%s: tx.head %u is more than a ring ahead of tx.tail %u; "
                         "transmit stops until the guest writes RESET", nic->dev->name, head, nd->tx_tail);
        atomic_store(&nd->error, true);
        return false;
    }
    uint32_t frames = 0, bytes = 0, errors = 0;
    while (nd->tx_tail != head) {
        struct slate_net_slot *slot = &w->tx_slots[nd->tx_tail % SLATE_NET_RING_SIZE];
        uint16_t len = __atomic_load_n(&slot->length, __ATOMIC_RELAXED);
        uint16_t status = SLATE_NET_OK;
        if (len < 14 || len > SLATE_NET_FRAME_MAX) {
            device_warn(nd->nic.dev, "%s: transmit slot %u has a bad length %u (14..%d)",
                             nic->dev->name, nd->tx_tail % SLATE_NET_RING_SIZE, len, SLATE_NET_FRAME_MAX);
            status = SLATE_NET_BAD_LENGTH;
            errors++;
        } else if (send_frame(nic, slot->frame, len) == 0) {
            frames++, bytes += len;
        } else {
            errors++;
        }
        slot->status = status;
        if (nd->recording)
            note_window(nd, slot, offsetof(struct slate_net_slot, frame)); /* its status */
        nd->tx_tail++;
        __atomic_store_n(&w->tx.tail, nd->tx_tail, __ATOMIC_RELEASE);
        uint32_t batch = __atomic_load_n(&w->tx.irq_batch, __ATOMIC_RELAXED);
        if (batch && ++*unsignalled >= batch) { /* the guest may refill while the rest go */
            *unsignalled = 0;
            raise_irq(nd, SLATE_NET_IRQ_TX);
        }
    }
    atomic_fetch_add(&nd->counters[C_TX_FRAMES], frames);
    atomic_fetch_add(&nd->counters[C_TX_BYTES], bytes);
    atomic_fetch_add(&nd->counters[C_TX_ERRORS], errors);
    return true;
}

/* Sends what the guest queued, and what it queues meanwhile: while tx.busy is 1 the guest need
 * not write TX_NOTIFY. Having caught up, the card clears it and looks at tx.head once more (both
 * sides store, fence, then load, so a frame queued as the flag went down is not left behind).
 * One IRQ_TX for the lot. */
static void drain_tx(struct net_dev *nd)
{
    struct slate_net_window *w = window(nd);
    if (atomic_load(&nd->error))
        return;
    uint32_t first = nd->tx_tail, unsignalled = 0; /* (every drain ends with an IRQ_TX) */
    __atomic_store_n(&w->tx.busy, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        uint32_t head = __atomic_load_n(&w->tx.head, __ATOMIC_ACQUIRE);
        if (head != nd->tx_tail && nd->tx_tail - first >= 4 * SLATE_NET_RING_SIZE && !nd->recording) {
            /* A guest that keeps the ring full would keep the card from receiving: come back
             * after a look at the backend, still busy (the guest rings for nothing meanwhile). */
            eventfd_write(nd->tx_notify_fd, 1);
            raise_irq(nd, SLATE_NET_IRQ_TX);
            return;
        }
        if (head != nd->tx_tail) {
            if (!send_queued(nd, head, &unsignalled))
                break;
            continue;
        }
        __atomic_store_n(&w->tx.busy, 0, __ATOMIC_SEQ_CST);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&w->tx.head, __ATOMIC_ACQUIRE) == nd->tx_tail)
            break;
        __atomic_store_n(&w->tx.busy, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&w->tx.busy, 0, __ATOMIC_RELEASE);
    if (nd->tx_tail != first)
        raise_irq(nd, SLATE_NET_IRQ_TX);
}

static void reset_rings(struct net_dev *nd)
{
    struct slate_net_window *w = window(nd);
    nd->tx_tail = nd->rx_head = 0;
    __atomic_store_n(&w->tx.head, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&w->tx.tail, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&w->rx.head, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&w->rx.tail, 0, __ATOMIC_RELEASE);
    atomic_store(&nd->error, false);
}

static void *nic_thread(void *arg)
{
    struct net_dev *nd = arg;
    struct nic *nic = &nd->nic;
    struct poll_set set = {.limit = &nic->limit};
    for (;;) {
        int timeout = -1;
        set.count = 0;
        if (poll_set_add(&set, nd->tx_notify_fd, POLLIN) != 0 || poll_set_add(&set, nd->stop_fd, POLLIN) != 1)
            break; /* out of memory for two fds: nothing can work */
        nic->backend->poll_fill(nic, &set, &timeout);
        if (poll(set.fds, (nfds_t)set.count, timeout) < 0 && errno != EINTR)
            break;
        if (set.fds[1].revents & POLLIN)
            break;
        pthread_mutex_lock(&nd->io_lock);
        if (set.fds[0].revents & POLLIN) {
            eventfd_t ignored;
            eventfd_read(nd->tx_notify_fd, &ignored);
            if (atomic_exchange(&nd->reset_requested, false))
                reset_rings(nd);
            drain_tx(nd);
        }
        nic->backend->poll_done(nic, &set);
        pthread_mutex_unlock(&nd->io_lock);
    }
    free(set.fds);
    return NULL;
}

static void net_pio(struct device *dev, struct bus_io *io)
{
    struct net_dev *nd = dev->state;
    enum device_record_mode mode = device_record_mode(dev); /* (a crashed recording replays) */
    static const unsigned counter_regs[C_COUNT] = {SLATE_NET_RX_FRAMES, SLATE_NET_RX_BYTES,
                                                   SLATE_NET_TX_FRAMES, SLATE_NET_TX_BYTES,
                                                   SLATE_NET_RX_DROPS, SLATE_NET_TX_ERRORS};
    if (io->is_write) {
        switch (io->offset) {
        case SLATE_NET_TX_NOTIFY: /* a notify narrower than 32 bits lands here */
        case SLATE_NET_RX_NOTIFY:
            if (mode == DEVICE_RECORDING && io->offset == SLATE_NET_TX_NOTIFY) { /* the work, at this exit */
                pthread_mutex_lock(&nd->io_lock);
                drain_tx(nd);
                note_window(nd, &window(nd)->tx, sizeof(window(nd)->tx));
                pthread_mutex_unlock(&nd->io_lock);
            } else if (mode == DEVICE_LIVE) {
                eventfd_write(nd->tx_notify_fd, 1);
            }
            break;
        case SLATE_NET_RESET:
            if (mode == DEVICE_RECORDING) {
                struct slate_net_window *w = window(nd);
                pthread_mutex_lock(&nd->io_lock);
                reset_rings(nd);
                note_window(nd, &w->tx, sizeof(w->tx));
                note_window(nd, &w->rx, sizeof(w->rx));
                pthread_mutex_unlock(&nd->io_lock);
            } else if (mode == DEVICE_LIVE) {
                atomic_store(&nd->reset_requested, true);
                eventfd_write(nd->tx_notify_fd, 1);
            }
            break;
        case SLATE_NET_IRQ_STATUS:
            pthread_mutex_lock(&nd->lock);
            nd->irq_status &= ~(uint32_t)io->value;
            pthread_mutex_unlock(&nd->lock);
            break;
        }
        return;
    }
    const uint8_t *mac = nd->nic.mac;
    switch (io->offset) {
    case SLATE_NET_MAC_LO: io->value = mac[0] | mac[1] << 8 | mac[2] << 16 | (uint32_t)mac[3] << 24; return;
    case SLATE_NET_MAC_HI: io->value = mac[4] | mac[5] << 8; return;
    case SLATE_NET_STATUS: io->value = SLATE_NET_LINK_UP | (atomic_load(&nd->error) ? SLATE_NET_ERROR : 0); return;
    case SLATE_NET_MTU: io->value = 1500; return;
    case SLATE_NET_IRQ_STATUS:
        pthread_mutex_lock(&nd->lock);
        io->value = nd->irq_status;
        pthread_mutex_unlock(&nd->lock);
        return;
    }
    for (int i = 0; i < C_COUNT; i++) {
        if (io->offset == counter_regs[i]) {
            io->value = atomic_load(&nd->counters[i]);
            return;
        }
    }
    io->value = 0;
}

static void net_irq_enabled(struct device *dev, unsigned line)
{
    struct net_dev *nd = dev->state;
    pthread_mutex_lock(&nd->lock);
    if (nd->irq_status)
        device_raise(dev, line);
    pthread_mutex_unlock(&nd->lock);
}

/* A stable default MAC: 52:54:00 (locally administered, as QEMU uses) and a hash of the kernel
 * path and the card's index, so a VM keeps its address from run to run. */
static void default_mac(struct net_dev *nd, const char *kernel, unsigned index)
{
    uint32_t h = 2166136261u;
    for (const char *p = kernel; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ index) * 16777619u;
    uint8_t mac[6] = {0x52, 0x54, 0x00, (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h};
    memcpy(nd->nic.mac, mac, 6);
}

/* ---- --net ------------------------------------------------------------------------------------- */

/* tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT, as QEMU writes it. */
static int parse_hostfwd(const char *text, size_t len, struct hostfwd *fwd)
{
    char buf[96], addr[16] = "";
    unsigned host_port, guest_port;
    int used = 0;
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = 0;
    fwd->udp = !strncmp(buf, "udp:", 4);
    if (strncmp(buf, "tcp:", 4) && !fwd->udp)
        return -1;
    const char *p = buf + 4;
    if (*p == ':') {
        p++;
    } else if (sscanf(p, "%15[0-9.]:%n", addr, &used) == 1 && used) {
        p += used;
    } else {
        return -1;
    }
    if (sscanf(p, "%u-:%u%n", &host_port, &guest_port, &used) != 2 || p[used] || !host_port ||
        !guest_port || host_port > 65535 || guest_port > 65535)
        return -1;
    snprintf(fwd->host_addr, sizeof(fwd->host_addr), "%s", addr[0] ? addr : "127.0.0.1");
    fwd->host_port = (uint16_t)host_port;
    fwd->guest_port = (uint16_t)guest_port;
    return 0;
}

/* tap:IFNAME | user | socket:PATH, then ,mac=... and (user) ,hostfwd=... options. */
static int parse_net(struct slate_config *cfg, const char *arg, char *err, size_t errlen)
{
    if (cfg->nic_count == MAX_NICS)
        return error_text(err, errlen, "--net: at most %d network cards", MAX_NICS);
    struct net_spec *net = &cfg->nics[cfg->nic_count];
    *net = (struct net_spec){0};
    size_t len = strcspn(arg, ",");
    if (len == 4 && !strncmp(arg, "user", 4)) {
        net->kind = NET_USER;
    } else if (len > 4 && !strncmp(arg, "tap:", 4) && len - 4 < 16) {
        net->kind = NET_TAP;
        memcpy(net->name, arg + 4, len - 4);
    } else if (len > 7 && !strncmp(arg, "socket:", 7) && len - 7 < 100) {
        net->kind = NET_SOCKET;
        memcpy(net->name, arg + 7, len - 7);
    } else {
        return error_text(err, errlen, "--net %s: expected tap:IFNAME (up to 15 characters), user, or "
                    "socket:PATH", arg);
    }
    for (const char *p = arg + len; *p == ',';) {
        const char *opt = p + 1;
        size_t n = strcspn(opt, ",");
        unsigned m[6];
        int used = 0;
        if (n == 21 && sscanf(opt, "mac=%2x:%2x:%2x:%2x:%2x:%2x%n", &m[0], &m[1], &m[2], &m[3], &m[4],
                              &m[5], &used) == 6 && used == 21) {
            for (int i = 0; i < 6; i++)
                net->mac[i] = (uint8_t)m[i];
            if (net->mac[0] & 1)
                return error_text(err, errlen, "--net %s: the MAC address is a multicast address", arg);
            net->has_mac = true;
        } else if (net->kind == NET_USER && n == 11 && !strncmp(opt, "loopback=on", 11)) {
            net->host_loopback = true;
        } else if (net->kind == NET_USER && n == 12 && !strncmp(opt, "loopback=off", 12)) {
            net->host_loopback = false;
        } else if (net->kind == NET_USER && !strncmp(opt, "sockets=", 8)) {
            char *end;
            unsigned long v = strtoul(opt + 8, &end, 10);
            if (end != opt + n || v < NET_USER_SOCKETS_MIN || v > NET_USER_SOCKETS_MAX)
                return error_text(err, errlen, "--net %s: sockets= takes %d to %d", arg,
                                  NET_USER_SOCKETS_MIN, NET_USER_SOCKETS_MAX);
            net->max_sockets = (unsigned)v;
        } else if (net->kind == NET_USER && !strncmp(opt, "hostfwd=", 8)) {
            if (net->fwd_count == MAX_HOSTFWD)
                return error_text(err, errlen, "--net: at most %d hostfwd rules", MAX_HOSTFWD);
            if (parse_hostfwd(opt + 8, n - 8, &net->fwd[net->fwd_count++]))
                return error_text(err, errlen, "--net %s: '%.*s' is not tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT",
                            arg, (int)(n - 8), opt + 8);
        } else {
            return error_text(err, errlen, "--net %s: unknown option '%.*s'", arg, (int)n, opt);
        }
        p = opt + n;
    }
    cfg->nic_count++;
    return 0;
}

static const struct device_option net_options[] = {
    {"net", true,
     "  --net tap:IFNAME|user|socket:PATH[,mac=XX:XX:XX:XX:XX:XX]\n"
     "                         a network card (repeatable, up to 4); user mode takes\n"
     "                         ,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT (repeatable)\n"
     "                         ,loopback=on to let the guest reach the host's 127.0.0.1,\n"
     "                         and ,sockets=N: the most host sockets it may hold (default 200)\n",
     parse_net},
    {0},
};

static unsigned net_instances(const struct slate_config *cfg) { return cfg->nic_count; }

static int net_setup(struct device *dev, unsigned index)
{
    const struct slate_config *cfg = device_config(dev);
    struct net_dev *nd = calloc(1, sizeof(*nd));
    if (!nd) {
        log_error("out of memory");
        return -ENOMEM;
    }
    dev->state = nd;
    const struct net_spec *spec = &cfg->nics[index];
    nd->tx_notify_fd = nd->stop_fd = -1;
    pthread_mutex_init(&nd->lock, NULL);
    pthread_mutex_init(&nd->io_lock, NULL);
    pthread_mutex_init(&nd->arrived_lock, NULL);
    nd->recording = device_record_mode(dev) == DEVICE_RECORDING;
    nd->replaying = device_record_mode(dev) == DEVICE_REPLAYING;
    if (nd->replaying) { /* no backend, no thread: what the card did comes from the log */
        nd->nic = (struct nic){.spec = spec, .dev = dev, .limit = RATELIMIT_INIT};
        return 0;
    }
    if (nd->recording && !(nd->arrived = calloc(ARRIVED_MAX, sizeof(*nd->arrived)))) {
        log_error("out of memory");
        return -ENOMEM;
    }
    const struct net_backend_ops *backend =
        spec->kind == NET_TAP ? &net_tap_backend
        : spec->kind == NET_SOCKET ? &net_socket_backend
        : module_load("netuser", "net_user_backend", &net_user_backend, "--net user");
    if (!backend)
        return -EIO;
    nd->nic = (struct nic){.spec = spec, .backend = backend, .dev = dev, .limit = RATELIMIT_INIT};
    if (spec->has_mac)
        memcpy(nd->nic.mac, spec->mac, 6);
    else
        default_mac(nd, cfg->kernel, index);
    if (nd->nic.backend->open(&nd->nic))
        return -EIO;
    if (spec->has_mac)
        memcpy(nd->nic.mac, spec->mac, 6); /* a backend may vary the default, never a given one */
    nd->tx_notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    nd->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (nd->tx_notify_fd < 0 || nd->stop_fd < 0) {
        log_error("%s: cannot set up its doorbell: %s", dev->name, strerror(errno));
        return -EIO;
    }
    if (device_doorbell(dev, SLATE_NET_TX_NOTIFY, nd->tx_notify_fd))
        return -EIO;
    int rc = pthread_create(&nd->thread, NULL, nic_thread, nd);
    if (rc) {
        log_error("%s: cannot start its I/O thread: %s", dev->name, strerror(rc));
        return -EIO;
    }
    nd->thread_started = true;
    return 0;
}

static void net_teardown(struct device *dev)
{
    struct net_dev *nd = dev->state;
    if (!nd)
        return;
    if (nd->thread_started) {
        eventfd_write(nd->stop_fd, 1);
        pthread_join(nd->thread, NULL);
    }
    if (nd->nic.backend)
        nd->nic.backend->close(&nd->nic);
    if (nd->tx_notify_fd >= 0)
        close(nd->tx_notify_fd);
    if (nd->stop_fd >= 0)
        close(nd->stop_fd);
    pthread_mutex_destroy(&nd->lock);
    pthread_mutex_destroy(&nd->io_lock);
    pthread_mutex_destroy(&nd->arrived_lock);
    free(nd->arrived);
    free(nd);
    dev->state = NULL;
}

/* The card's side of the rings (the rings themselves are in its window, which the core saves),
 * its counters and interrupt status. Frames the guest queued are sent first. Connections of the
 * user-mode backend live in the host and are not saved: after a restore the guest's TCP
 * connections through it are gone, as after a cable is pulled. */
struct saved_nic {
    uint32_t tx_tail, rx_head, irq_status, error;
    uint32_t counters[C_COUNT];
};

static int net_save(struct device *dev, struct device_state *out)
{
    struct net_dev *nd = dev->state;
    pthread_mutex_lock(&nd->io_lock);
    if (atomic_exchange(&nd->reset_requested, false))
        reset_rings(nd);
    drain_tx(nd);
    struct saved_nic st = {.tx_tail = nd->tx_tail, .rx_head = nd->rx_head, .error = atomic_load(&nd->error)};
    for (int i = 0; i < C_COUNT; i++)
        st.counters[i] = atomic_load(&nd->counters[i]);
    pthread_mutex_lock(&nd->lock);
    st.irq_status = nd->irq_status;
    pthread_mutex_unlock(&nd->lock);
    pthread_mutex_unlock(&nd->io_lock);
    device_state_put(out, &st, sizeof(st));
    return 0;
}

static int net_load(struct device *dev, struct device_state *in)
{
    struct net_dev *nd = dev->state;
    struct saved_nic st;
    device_state_get(in, &st, sizeof(st));
    if (!device_state_done(in) || st.error > 1 || (st.irq_status & ~(uint32_t)(SLATE_NET_IRQ_RX | SLATE_NET_IRQ_TX))) {
        log_error("%s: the saved card state is malformed", dev->name);
        return -1;
    }
    pthread_mutex_lock(&nd->io_lock);
    nd->tx_tail = st.tx_tail, nd->rx_head = st.rx_head;
    atomic_store(&nd->error, st.error != 0);
    atomic_store(&nd->reset_requested, false);
    for (int i = 0; i < C_COUNT; i++)
        atomic_store(&nd->counters[i], st.counters[i]);
    pthread_mutex_lock(&nd->lock);
    nd->irq_status = st.irq_status;
    pthread_mutex_unlock(&nd->lock);
    pthread_mutex_unlock(&nd->io_lock);
    return 0;
}

const struct device_ops net_device = {
    .name = "net",
    .type = SLATE_DEV_NET,
    .version = 2,
    .port_count = 0x40,
    .window_size = sizeof(struct slate_net_window),
    .irq_reg = SLATE_NET_IRQ_REG,
    .irq_status_reg = SLATE_NET_IRQ_STATUS,
    .irq_count = 1,
    .options = net_options,
    .instances = net_instances,
    .setup = net_setup,
    .pio = net_pio,
    .irq_enabled = net_irq_enabled,
    .teardown = net_teardown,
    .state_version = 1,
    .save = net_save,
    .load = net_load,
    .record_sync = net_record_sync,
};
