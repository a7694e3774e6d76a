/* net_backend.c - where the network card's frames go: a TAP device or a Unix datagram socket
 * shared by two VMs (libslirp's user-mode network is net_user.c, a module). Everything here runs
 * on the NIC's own I/O thread. */
#include "net.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RX_BURST 64 /* frames read per wake-up, so one busy backend cannot starve the rest */


/* Reads frames from a packet fd (TAP, datagram socket) until it is empty or a burst is done. */
static void read_frames(struct nic *nic, int fd)
{
    uint8_t frame[65536];
    for (int i = 0; i < RX_BURST; i++) {
        ssize_t n = recv(fd, frame, sizeof(frame), MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
            n = read(fd, frame, sizeof(frame));
        if (n <= 0)
            return;
        nic_receive(nic, frame, (size_t)n);
    }
}

int poll_set_add(struct poll_set *set, int fd, short events)
{
    if (set->count == set->cap) {
        int cap = set->cap ? set->cap * 2 : 16;
        struct pollfd *grown = cap <= NET_POLL_MAX ? realloc(set->fds, (size_t)cap * sizeof(*grown)) : NULL;
        if (!grown) {
            log_warn_limited(set->limit, "network: more than %d sockets to wait on; some wait "
                             "a round", set->cap);
            return -1;
        }
        set->fds = grown, set->cap = cap;
    }
    set->fds[set->count] = (struct pollfd){.fd = fd, .events = events};
    return set->count++;
}

/* For backends with one fd: it is the first after the NIC's own two. */
static int backend_fd_index(struct poll_set *set, int fd)
{
    for (int i = set->count - 1; i >= 0; i--)
        if (set->fds[i].fd == fd)
            return i;
    return -1;
}

/* ---- TAP ------------------------------------------------------------------------------------ */

struct tap {
    int fd;
};

static int tap_open(struct nic *nic)
{
    struct tap *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    nic->backend_state = t;
    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->fd < 0) {
        log_error("--net tap:%s: /dev/net/tun: %s", nic->spec->name, strerror(errno));
        return -1;
    }
    /* IFF_NO_PI: plain Ethernet frames, with no packet-information header. */
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%.15s", nic->spec->name);
    if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
        log_error("--net tap:%s: %s%s", nic->spec->name, strerror(errno),
                  errno == EPERM ? " (create it for your user first: sudo ip tuntap add dev NAME "
                                   "mode tap user $USER)"
                  : errno == EBUSY ? " (another program has it open)" : "");
        return -1;
    }
    return 0;
}

static int tap_send(struct nic *nic, const uint8_t *frame, size_t len)
{
    struct tap *t = nic->backend_state;
    return write(t->fd, frame, len) == (ssize_t)len ? 0 : -1;
}

static void tap_poll_fill(struct nic *nic, struct poll_set *set, int *timeout_ms)
{
    (void)timeout_ms;
    poll_set_add(set, ((struct tap *)nic->backend_state)->fd, POLLIN);
}

static void tap_poll_done(struct nic *nic, struct poll_set *set)
{
    int fd = ((struct tap *)nic->backend_state)->fd, i = backend_fd_index(set, fd);
    if (i >= 0 && (set->fds[i].revents & POLLIN))
        read_frames(nic, fd);
}

static void tap_close(struct nic *nic)
{
    struct tap *t = nic->backend_state;
    if (t && t->fd >= 0)
        close(t->fd);
    free(t);
}

const struct net_backend_ops net_tap_backend = {tap_open, tap_send, tap_poll_fill, tap_poll_done, tap_close, true};

/* ---- a Unix datagram socket between two VMs --------------------------------------------------
 * The two ends are PATH.0 and PATH.1: the first VM takes the free one, and each sends to the
 * other. A socket file left by a VM that died is recognised (nobody answers) and replaced. */

struct dgram {
    int fd;
    struct sockaddr_un self, peer;
};

static int bind_end(struct dgram *d, const char *base, int side)
{
    d->self = (struct sockaddr_un){.sun_family = AF_UNIX};
    d->peer = (struct sockaddr_un){.sun_family = AF_UNIX};
    snprintf(d->self.sun_path, sizeof(d->self.sun_path), "%.100s.%c", base, side ? '1' : '0');
    snprintf(d->peer.sun_path, sizeof(d->peer.sun_path), "%.100s.%c", base, side ? '0' : '1');
    if (bind(d->fd, (struct sockaddr *)&d->self, sizeof(d->self)) == 0)
        return 0;
    if (errno != EADDRINUSE)
        return -1;
    int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool stale = probe >= 0 && connect(probe, (struct sockaddr *)&d->self, sizeof(d->self)) < 0 &&
                 errno == ECONNREFUSED;
    if (probe >= 0)
        close(probe);
    if (!stale) {
        errno = EADDRINUSE;
        return -1;
    }
    unlink(d->self.sun_path);
    return bind(d->fd, (struct sockaddr *)&d->self, sizeof(d->self));
}

static int dgram_open(struct nic *nic)
{
    struct dgram *d = calloc(1, sizeof(*d));
    if (!d)
        return -1;
    nic->backend_state = d;
    d->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->fd < 0) {
        log_error("--net socket:%s: %s", nic->spec->name, strerror(errno));
        return -1;
    }
    for (int side = 0; side < 2; side++) {
        if (bind_end(d, nic->spec->name, side) == 0) {
            nic->mac[5] ^= (uint8_t)side; /* two VMs on one socket get different default MACs */
            return 0;
        }
        if (errno != EADDRINUSE)
            break;
    }
    log_error("--net socket:%s: %s", nic->spec->name,
              errno == EADDRINUSE ? "both ends (.0 and .1) are in use by other VMs" : strerror(errno));
    d->self.sun_path[0] = 0;
    return -1;
}

static int dgram_send(struct nic *nic, const uint8_t *frame, size_t len)
{
    struct dgram *d = nic->backend_state;
    ssize_t n = sendto(d->fd, frame, len, 0, (struct sockaddr *)&d->peer, sizeof(d->peer));
    /* No peer yet, or its queue is full: the frame is lost, as on a cable with nobody there. */
    return n == (ssize_t)len || errno == ENOENT || errno == ECONNREFUSED || errno == EAGAIN ? 0 : -1;
}

static void dgram_poll_fill(struct nic *nic, struct poll_set *set, int *timeout_ms)
{
    (void)timeout_ms;
    poll_set_add(set, ((struct dgram *)nic->backend_state)->fd, POLLIN);
}

static void dgram_poll_done(struct nic *nic, struct poll_set *set)
{
    int fd = ((struct dgram *)nic->backend_state)->fd, i = backend_fd_index(set, fd);
    if (i >= 0 && (set->fds[i].revents & POLLIN))
        read_frames(nic, fd);
}

static void dgram_close(struct nic *nic)
{
    struct dgram *d = nic->backend_state;
    if (!d)
        return;
    if (d->fd >= 0)
        close(d->fd);
    if (d->self.sun_path[0])
        unlink(d->self.sun_path);
    free(d);
}

const struct net_backend_ops net_socket_backend = {dgram_open, dgram_send, dgram_poll_fill,
                                                   dgram_poll_done, dgram_close, true};
