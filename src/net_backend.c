/* net_backend.c - where the network card's frames go: a TAP device, libslirp's user-mode
 * network (DHCP, DNS, host port forwards; no root), or a Unix datagram socket shared by two VMs.
 * Everything here runs on the NIC's own I/O thread. */
#include "net.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RX_BURST 64 /* frames read per wake-up, so one busy backend cannot starve the rest */

static struct ratelimit backend_limit = RATELIMIT_INIT;

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

static int single_fd_fill(int fd, struct pollfd *fds, int max)
{
    if (max < 1)
        return 0;
    fds[0] = (struct pollfd){.fd = fd, .events = POLLIN};
    return 1;
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

static int tap_poll_fill(struct nic *nic, struct pollfd *fds, int max, int *timeout_ms)
{
    (void)timeout_ms;
    return single_fd_fill(((struct tap *)nic->backend_state)->fd, fds, max);
}

static void tap_poll_done(struct nic *nic, struct pollfd *fds, int count)
{
    if (count > 0 && (fds[0].revents & POLLIN))
        read_frames(nic, ((struct tap *)nic->backend_state)->fd);
}

static void tap_close(struct nic *nic)
{
    struct tap *t = nic->backend_state;
    if (t && t->fd >= 0)
        close(t->fd);
    free(t);
}

const struct net_backend_ops net_tap_backend = {tap_open, tap_send, tap_poll_fill, tap_poll_done, tap_close};

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

static int dgram_poll_fill(struct nic *nic, struct pollfd *fds, int max, int *timeout_ms)
{
    (void)timeout_ms;
    return single_fd_fill(((struct dgram *)nic->backend_state)->fd, fds, max);
}

static void dgram_poll_done(struct nic *nic, struct pollfd *fds, int count)
{
    if (count > 0 && (fds[0].revents & POLLIN))
        read_frames(nic, ((struct dgram *)nic->backend_state)->fd);
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
                                                   dgram_poll_done, dgram_close};

/* ---- user-mode networking (libslirp) --------------------------------------------------------
 * The guest's network is 10.0.2.0/24: the host (gateway) is 10.0.2.2, DNS 10.0.2.3, and DHCP
 * hands out 10.0.2.15 first, as in QEMU. */

#define SLIRP_TIMERS_MAX 16

struct slirp_timer {
    bool used, armed;
    int64_t expire_ms;
    SlirpTimerCb cb;
    void *cb_opaque;
};

struct user_net {
    Slirp *slirp;
    struct nic *nic;
    struct pollfd *fds; /* during a fill: where add_poll puts them */
    int count, max;
    struct slirp_timer timers[SLIRP_TIMERS_MAX];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static ssize_t user_send_packet(const void *buf, size_t len, void *opaque)
{
    struct user_net *u = opaque;
    nic_receive(u->nic, buf, len);
    return (ssize_t)len;
}

static void user_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    log_warn_limited(&backend_limit, "user network: %s", msg);
}

static int64_t user_clock_ns(void *opaque)
{
    (void)opaque;
    return now_ns();
}

static void *user_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct user_net *u = opaque;
    for (int i = 0; i < SLIRP_TIMERS_MAX; i++) {
        if (!u->timers[i].used) {
            u->timers[i] = (struct slirp_timer){.used = true, .cb = cb, .cb_opaque = cb_opaque};
            return &u->timers[i];
        }
    }
    log_warn("user network: out of timers");
    return NULL;
}

static void user_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    if (timer)
        ((struct slirp_timer *)timer)->used = false;
}

static void user_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    if (!timer)
        return;
    ((struct slirp_timer *)timer)->expire_ms = expire_ms;
    ((struct slirp_timer *)timer)->armed = true;
}

static void user_register_fd(int fd, void *opaque)
{
    (void)fd, (void)opaque; /* every fd is collected afresh by slirp_pollfds_fill */
}

static void user_notify(void *opaque)
{
    (void)opaque; /* slirp runs on this thread only, which polls again right after */
}

static const SlirpCb user_callbacks = {
    .send_packet = user_send_packet,
    .guest_error = user_guest_error,
    .clock_get_ns = user_clock_ns,
    .timer_new = user_timer_new,
    .timer_free = user_timer_free,
    .timer_mod = user_timer_mod,
    .register_poll_fd = user_register_fd,
    .unregister_poll_fd = user_register_fd,
    .notify = user_notify,
};

static int user_open(struct nic *nic)
{
    struct user_net *u = calloc(1, sizeof(*u));
    if (!u)
        return -1;
    nic->backend_state = u;
    u->nic = nic;
    SlirpConfig cfg = {.version = 3, .in_enabled = true};
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.vhostname = "slate";
    u->slirp = slirp_new(&cfg, &user_callbacks, u);
    if (!u->slirp) {
        log_error("--net user: libslirp could not start");
        return -1;
    }
    struct in_addr guest;
    inet_pton(AF_INET, "10.0.2.15", &guest);
    for (unsigned i = 0; i < nic->spec->fwd_count; i++) {
        const struct hostfwd *f = &nic->spec->fwd[i];
        struct in_addr host;
        if (inet_pton(AF_INET, f->host_addr, &host) != 1 ||
            slirp_add_hostfwd(u->slirp, f->udp, host, f->host_port, guest, f->guest_port) < 0) {
            log_error("--net user: hostfwd %s:%s:%u-:%u: cannot listen there (address in use?)",
                      f->udp ? "udp" : "tcp", f->host_addr, f->host_port, f->guest_port);
            return -1;
        }
    }
    return 0;
}

static int user_send(struct nic *nic, const uint8_t *frame, size_t len)
{
    slirp_input(((struct user_net *)nic->backend_state)->slirp, frame, (int)len);
    return 0;
}

static int user_add_poll(int fd, int events, void *opaque)
{
    struct user_net *u = opaque;
    if (u->count == u->max)
        return -1;
    short ev = (short)(((events & SLIRP_POLL_IN) ? POLLIN : 0) | ((events & SLIRP_POLL_OUT) ? POLLOUT : 0) |
                       ((events & SLIRP_POLL_PRI) ? POLLPRI : 0));
    u->fds[u->count] = (struct pollfd){.fd = fd, .events = ev};
    return u->count++;
}

static int user_get_revents(int idx, void *opaque)
{
    struct user_net *u = opaque;
    if (idx < 0 || idx >= u->count)
        return 0;
    short r = u->fds[idx].revents;
    return ((r & POLLIN) ? SLIRP_POLL_IN : 0) | ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
           ((r & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((r & POLLERR) ? SLIRP_POLL_ERR : 0) |
           ((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

static int user_poll_fill(struct nic *nic, struct pollfd *fds, int max, int *timeout_ms)
{
    struct user_net *u = nic->backend_state;
    u->fds = fds, u->count = 0, u->max = max;
    uint32_t timeout = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
    slirp_pollfds_fill(u->slirp, &timeout, user_add_poll, u);
    int64_t now_ms = now_ns() / 1000000;
    for (int i = 0; i < SLIRP_TIMERS_MAX; i++) {
        const struct slirp_timer *t = &u->timers[i];
        if (t->used && t->armed) {
            int64_t wait = t->expire_ms > now_ms ? t->expire_ms - now_ms : 0;
            if (wait < timeout)
                timeout = (uint32_t)wait;
        }
    }
    *timeout_ms = timeout == UINT32_MAX ? -1 : (int)timeout;
    return u->count;
}

static void user_poll_done(struct nic *nic, struct pollfd *fds, int count)
{
    struct user_net *u = nic->backend_state;
    u->fds = fds, u->count = count;
    int64_t now_ms = now_ns() / 1000000;
    for (int i = 0; i < SLIRP_TIMERS_MAX; i++) {
        struct slirp_timer *t = &u->timers[i];
        if (t->used && t->armed && t->expire_ms <= now_ms) {
            t->armed = false;
            t->cb(t->cb_opaque);
        }
    }
    slirp_pollfds_poll(u->slirp, 0, user_get_revents, u);
}

static void user_close(struct nic *nic)
{
    struct user_net *u = nic->backend_state;
    if (u && u->slirp)
        slirp_cleanup(u->slirp);
    free(u);
}

const struct net_backend_ops net_user_backend = {user_open, user_send, user_poll_fill, user_poll_done,
                                                 user_close};
