/* net_user.c - user-mode networking with libslirp (DHCP, DNS, host port forwards; no root), a
 * module (slate-netuser.so, module.h): only a run with --net user loads libslirp and GLib.
 * Everything here runs on the NIC's own I/O thread. */
#include "net.h"

#include "listen.h"
#include "log.h"
#include "net_policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

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

/* A UDP flow a port forward opened: the host's port that sent to the guest's forwarded port. */
#define UDP_FLOWS 64
struct udp_flow {
    uint16_t guest_port, host_port;
};

/* A guest UDP source port libslirp holds a host socket for, as far as this side can tell. */
struct udp_port {
    uint16_t port;
    int64_t last_ms;
};
/* libslirp closes a UDP socket after this long without traffic (its SO_EXPIRE). */
#define UDP_SOCKET_IDLE_MS 240000

struct user_net {
    Slirp *slirp;
    struct nic *nic;
    /* The host-socket budget: libslirp opens one per TCP connection, UDP source port and ping,
     * without a limit of its own. `polled` is how many it waited on in the last round, `admitted`
     * the new flows let through since. */
    unsigned max_sockets, polled, admitted;
    struct udp_port *udp_ports; /* max_sockets of them */
    unsigned udp_port_count;
    struct udp_flow flows[UDP_FLOWS]; /* replaced round-robin */
    unsigned next_flow;
    struct poll_set *set; /* during a fill or a poll: the NIC's set */
    struct slirp_timer timers[SLIRP_TIMERS_MAX];
};

/* ---- keeping the host's services closed ------------------------------------------------------
 * What the guest may reach is net_policy.c's decision; here it is applied. A refused connection
 * is answered with a reset from its destination, so the guest sees "connection refused" at once.
 * UDP replies to the gateway pass within a flow a UDP port forward opened. */

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint16_t fold_sum(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint32_t add_words(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += be16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

/* Answers a refused SYN with RST|ACK from the gateway, so the guest sees "connection refused". */
static void refuse_syn(struct user_net *u, const uint8_t *f, size_t tcp)
{
    uint8_t r[60] = {0}; /* 54 bytes of headers, padded to Ethernet's minimum */
    memcpy(r, f + 6, 6);       /* to the guest's MAC */
    memcpy(r + 6, f, 6);       /* from the gateway's */
    r[12] = 0x08;
    uint8_t *ip = r + 14, *t = r + 34;
    ip[0] = 0x45, ip[3] = 40, ip[8] = 64, ip[9] = 6;
    memcpy(ip + 12, f + 30, 4); /* from 10.0.2.2 */
    memcpy(ip + 16, f + 26, 4); /* to the guest */
    uint16_t sum = fold_sum(add_words(0, ip, 20));
    ip[10] = (uint8_t)(sum >> 8), ip[11] = (uint8_t)sum;
    memcpy(t, f + tcp + 2, 2); /* ports swapped */
    memcpy(t + 2, f + tcp, 2);
    uint32_t ack = ((uint32_t)be16(f + tcp + 4) << 16 | be16(f + tcp + 6)) + 1;
    t[8] = (uint8_t)(ack >> 24), t[9] = (uint8_t)(ack >> 16), t[10] = (uint8_t)(ack >> 8), t[11] = (uint8_t)ack;
    t[12] = 5 << 4, t[13] = 0x14; /* RST|ACK */
    uint32_t pseudo = add_words(0, ip + 12, 8) + 6 + 20;
    sum = fold_sum(add_words(pseudo, t, 20));
    t[16] = (uint8_t)(sum >> 8), t[17] = (uint8_t)sum;
    nic_receive(u->nic, r, sizeof(r));
}

static bool in_udp_flow(const struct user_net *u, const struct net_packet *p)
{
    for (unsigned i = 0; i < UDP_FLOWS; i++)
        if (u->flows[i].guest_port == p->sport && u->flows[i].host_port == p->dport && p->sport)
            return true;
    return false;
}

/* The guest's UDP source port in the table, refreshed; or NULL when libslirp has (as far as this
 * side knows) no socket for it. Expired entries are dropped on the way. */
static struct udp_port *known_udp_port(struct user_net *u, uint16_t port, int64_t now_ms)
{
    for (unsigned i = 0; i < u->udp_port_count;) {
        struct udp_port *e = &u->udp_ports[i];
        if (now_ms - e->last_ms > UDP_SOCKET_IDLE_MS) {
            *e = u->udp_ports[--u->udp_port_count];
            continue;
        }
        if (e->port == port) {
            e->last_ms = now_ms;
            return e;
        }
        i++;
    }
    return NULL;
}

/* True when a frame libslirp would give a host socket of its own is within the budget. Frames of
 * existing flows always are. */
static bool within_socket_budget(struct user_net *u, const struct net_packet *p)
{
    int64_t now_ms = clock_now_ns() / 1000000;
    bool new_udp = p->proto == 17 && p->has_ports && p->dport != 67 &&
                   !known_udp_port(u, p->sport, now_ms);
    /* libslirp answers pings to 10.0.2.2 and 10.0.2.3 itself; others get a socket each */
    uint32_t dst = (uint32_t)p->dst[0] << 24 | (uint32_t)p->dst[1] << 16 | (uint32_t)p->dst[2] << 8 | p->dst[3];
    bool new_ping = p->icmp_echo && !p->ipv6 && dst != NET_USER_GATEWAY && dst != NET_USER_DNS;
    bool new_flow = p->tcp_syn || new_udp || new_ping;
    if (!new_flow)
        return true;
    if (u->polled + u->admitted >= u->max_sockets) {
        log_warn_limited(&u->nic->limit, "--net user: the guest's flows hold %u host sockets, the "
                         "most this card may (sockets=%u); a new %s refused", u->polled + u->admitted,
                         u->max_sockets, p->tcp_syn ? "connection" : p->proto == 17 ? "UDP flow" : "ping");
        return false;
    }
    u->admitted++;
    if (new_udp && u->udp_port_count < u->max_sockets)
        u->udp_ports[u->udp_port_count++] = (struct udp_port){p->sport, now_ms};
    return true;
}

/* True when a guest frame may go to slirp. */
static bool user_filter(struct user_net *u, const uint8_t *f, size_t len)
{
    struct net_packet p;
    net_packet_parse(f, len, &p);
    const char *why;
    enum net_verdict verdict = net_policy(&p, u->nic->spec->host_loopback, &why);
    if (verdict == NET_PASS_IF_FLOW && in_udp_flow(u, &p))
        return true; /* a reply within a hostfwd flow: its socket is the forward's own */
    if (verdict == NET_PASS) {
        if (within_socket_budget(u, &p))
            return true;
        if (p.tcp_syn && !p.ipv6)
            refuse_syn(u, f, p.l4);
        return false;
    }
    char port[16] = "";
    if (p.has_ports)
        snprintf(port, sizeof(port), " to port %u", p.dport);
    log_warn_limited(&u->nic->limit, "--net user: %s%s %s: %s (loopback=on allows it)",
                     p.tcp_syn ? "a connection" : "a packet", port,
                     verdict == NET_REFUSE ? "refused" : "dropped", why);
    if (verdict == NET_REFUSE && !p.ipv6)
        refuse_syn(u, f, p.l4);
    return false;
}

/* Slirp to guest: a UDP datagram from the gateway to a forwarded port opens a flow for replies. */
static void note_udp_flow(struct user_net *u, const uint8_t *f, size_t len)
{
    if (len < 42 || be16(f + 12) != 0x0800 || f[23] != 17)
        return;
    uint32_t src;
    memcpy(&src, f + 26, 4);
    size_t l4 = 14 + (size_t)(f[14] & 0xF) * 4;
    if (ntohl(src) != NET_USER_GATEWAY || len < l4 + 8)
        return;
    uint16_t host_port = be16(f + l4), guest_port = be16(f + l4 + 2);
    const struct net_spec *spec = u->nic->spec;
    for (unsigned i = 0; i < spec->fwd_count; i++) {
        if (!spec->fwd[i].udp || spec->fwd[i].guest_port != guest_port)
            continue;
        for (unsigned j = 0; j < UDP_FLOWS; j++)
            if (u->flows[j].guest_port == guest_port && u->flows[j].host_port == host_port)
                return;
        u->flows[u->next_flow++ % UDP_FLOWS] = (struct udp_flow){guest_port, host_port};
        return;
    }
}

static ssize_t user_send_packet(const void *buf, size_t len, void *opaque)
{
    struct user_net *u = opaque;
    if (!u->nic->spec->host_loopback)
        note_udp_flow(u, buf, len);
    nic_receive(u->nic, buf, len);
    return (ssize_t)len;
}

static void user_guest_error(const char *msg, void *opaque)
{
    struct user_net *u = opaque;
    log_warn_limited(&u->nic->limit, "user network: %s", msg);
}

static int64_t user_clock_ns(void *opaque)
{
    (void)opaque;
    return clock_now_ns();
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

/* The card's share of the process's descriptors, after what slate keeps for itself. */
static unsigned socket_budget(const struct net_spec *spec)
{
    unsigned asked = spec->max_sockets ? spec->max_sockets : NET_USER_SOCKETS_DEFAULT;
    int share = (listen_fd_ceiling() - LISTEN_FD_RESERVE) / MAX_NICS;
    unsigned most = share < NET_USER_SOCKETS_MIN ? NET_USER_SOCKETS_MIN : (unsigned)share;
    if (asked <= most)
        return asked;
    if (spec->max_sockets)
        log_warn("--net user,sockets=%u: this process may open %d descriptors (ulimit -n, and at "
                 "most %d for VNC); this card holds at most %u", asked, listen_fd_ceiling(),
                 FD_SETSIZE, most);
    return most;
}

static int user_open(struct nic *nic)
{
    struct user_net *u = calloc(1, sizeof(*u));
    if (!u)
        return -1;
    nic->backend_state = u;
    u->nic = nic;
    u->max_sockets = socket_budget(nic->spec);
    if (!(u->udp_ports = calloc(u->max_sockets, sizeof(*u->udp_ports)))) {
        log_error("--net user: out of memory");
        return -1;
    }
    /* libslirp's own disable_host_loopback would also drop the replies of UDP port forwards:
     * user_filter below keeps the host's loopback closed instead. */
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
    struct user_net *u = nic->backend_state;
    if (user_filter(u, frame, len))
        slirp_input(u->slirp, frame, (int)len);
    return 0;
}

static int user_add_poll(int fd, int events, void *opaque)
{
    struct user_net *u = opaque;
    short ev = (short)(((events & SLIRP_POLL_IN) ? POLLIN : 0) | ((events & SLIRP_POLL_OUT) ? POLLOUT : 0) |
                       ((events & SLIRP_POLL_PRI) ? POLLPRI : 0));
    return poll_set_add(u->set, fd, ev);
}

static int user_get_revents(int idx, void *opaque)
{
    struct user_net *u = opaque;
    if (idx < 0 || idx >= u->set->count)
        return 0;
    short r = u->set->fds[idx].revents;
    return ((r & POLLIN) ? SLIRP_POLL_IN : 0) | ((r & POLLOUT) ? SLIRP_POLL_OUT : 0) |
           ((r & POLLPRI) ? SLIRP_POLL_PRI : 0) | ((r & POLLERR) ? SLIRP_POLL_ERR : 0) |
           ((r & POLLHUP) ? SLIRP_POLL_HUP : 0);
}

static void user_poll_fill(struct nic *nic, struct poll_set *set, int *timeout_ms)
{
    struct user_net *u = nic->backend_state;
    u->set = set;
    int before = set->count;
    uint32_t timeout = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
    slirp_pollfds_fill(u->slirp, &timeout, user_add_poll, u);
    u->polled = (unsigned)(set->count - before), u->admitted = 0;
    int64_t now_ms = clock_now_ns() / 1000000;
    for (int i = 0; i < SLIRP_TIMERS_MAX; i++) {
        const struct slirp_timer *t = &u->timers[i];
        if (t->used && t->armed) {
            int64_t wait = t->expire_ms > now_ms ? t->expire_ms - now_ms : 0;
            if (wait < timeout)
                timeout = (uint32_t)wait;
        }
    }
    *timeout_ms = timeout == UINT32_MAX ? -1 : (int)timeout;
}

static void user_poll_done(struct nic *nic, struct poll_set *set)
{
    struct user_net *u = nic->backend_state;
    u->set = set;
    int64_t now_ms = clock_now_ns() / 1000000;
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
    if (u)
        free(u->udp_ports);
    free(u);
}

const struct net_backend_ops net_user_backend = {user_open, user_send, user_poll_fill, user_poll_done,
                                                 user_close, false}; /* libslirp parses the frame */
