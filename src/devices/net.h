/* net.h - the network card's backends (TAP, user-mode networking with libslirp, a Unix datagram
 * socket between two VMs) behind one small interface. Each NIC has its own I/O thread; every
 * backend call happens on it. */
#ifndef SLATE_NET_H
#define SLATE_NET_H

#include "log.h"
#include "options.h"

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

struct nic;

/* The fds a NIC's thread waits on: grows as a backend asks (libslirp has one per guest
 * connection), up to NET_POLL_MAX. */
#define NET_POLL_MAX 4096
struct poll_set {
    struct pollfd *fds;
    int count, cap;
    struct ratelimit *limit; /* its NIC's, for the warning when it cannot grow */
};

/* Adds fd; returns its index, or -1 when the set cannot grow (the fd is then not polled this
 * round, which the caller reports). */
int poll_set_add(struct poll_set *set, int fd, short events);

struct net_backend_ops {
    /* Opens the backend; logs "why" and returns -1 on failure. */
    int (*open)(struct nic *nic);
    /* One frame from the guest. Failures are counted by the caller. Returns 0 or -1. */
    int (*send)(struct nic *nic, const uint8_t *frame, size_t len);
    /* Adds the fds to wait on to `set`; may lower *timeout_ms. */
    void (*poll_fill)(struct nic *nic, struct poll_set *set, int *timeout_ms);
    /* After poll: reads what is ready and hands frames to nic_receive. `set` is as filled. */
    void (*poll_done)(struct nic *nic, struct poll_set *set);
    void (*close)(struct nic *nic);
    /* send only hands the bytes to the host kernel (one write: a single copy), so the frame may
     * be passed straight from guest memory; otherwise (a parser such as libslirp's reads it
     * more than once) it gets a private copy first, which the guest cannot change under it. */
    bool reads_once;
};

extern const struct net_backend_ops net_tap_backend, net_socket_backend;
/* In the netuser module (net_user.c, loaded with module_load): libslirp and GLib are loaded only
 * by a run with --net user. */
extern const struct net_backend_ops net_user_backend __attribute__((weak));

/* The parts of a NIC the backends use. */
struct nic {
    const struct net_spec *spec;
    const struct net_backend_ops *backend;
    void *backend_state;
    uint8_t mac[6];
    struct device *dev;
    struct ratelimit limit; /* the backend's warnings about host-side trouble */
};

/* A frame for the guest: into the receive ring, or counted as dropped. I/O thread only. */
void nic_receive(struct nic *nic, const uint8_t *frame, size_t len);

#endif
