/* A tiny network stack on the network card: ARP, ICMP echo, UDP echo on port 7, a DHCP client.
 * The command line configures it: "ip=A.B.C.D" or "dhcp", "peer=A.B.C.D", and a mode:
 *   serve     answer ARP, ping and UDP echo until a UDP datagram "quit" arrives (then exit 0)
 *   hello     send "hello from slate" to peer:9999, then serve
 *   ping      ping the peer 10 times, print how many answered, tell it "quit", exit 0
 *   hostile   break the rings on purpose; the device must refuse and survive
 *   knock     (with port=N) send a UDP datagram and a TCP SYN to peer:N, print the TCP answer
 *             (SYN-ACK, RST) or the ICMP error, exit 0
 *   flows     (with port=N udp=U tcp=T) send one UDP datagram from each of U source ports and a
 *             TCP SYN from each of T, all to peer:N, print "flows sent", then serve
 * "via=A.B.C.D" sends to the peer through that router (its MAC), for a peer off the network.
 * Everything waits with HLT for the card's interrupt. */
#include "netlib.h"

#define VEC_NET 0x48
#define PING_COUNT 10

static const struct slate_device *nic;
static volatile uint8_t tcp_answer, icmp_error;
static volatile struct slate_net_window *win;
static uint8_t my_mac[6], peer_mac[6];
static uint32_t my_ip, peer_ip, arp_ip, offered_ip, dhcp_server;
static volatile bool peer_known, done, dhcp_offered, dhcp_acked;
static volatile uint32_t pongs;
static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};


__attribute__((interrupt)) static void on_net(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(nic->port_base + SLATE_NET_IRQ_STATUS, SLATE_NET_IRQ_RX | SLATE_NET_IRQ_TX);
    lapic_eoi();
}

static void send_frame(const void *frame, unsigned len)
{
    WAIT_FOR(win->tx.head - win->tx.tail < SLATE_NET_RING_SIZE);
    net_queue(win, frame, len);
    if (slate_net_notify_needed(win)) /* version 2: not while the card is sending */
        slate_outl(nic->port_base + SLATE_NET_TX_NOTIFY, 1);
}

static unsigned eth_header(uint8_t *buf, const uint8_t *dst, uint16_t type)
{
    struct eth *e = (struct eth *)buf;
    net_copy(e->dst, dst, 6);
    net_copy(e->src, my_mac, 6);
    e->type = htons(type);
    return sizeof(*e);
}

static void send_arp(uint16_t oper, const uint8_t *dst_mac, uint32_t target_ip)
{
    uint8_t buf[64] = {0};
    unsigned n = eth_header(buf, oper == 1 ? broadcast : dst_mac, 0x0806);
    struct arp *a = (struct arp *)(buf + n);
    *a = (struct arp){htons(1), htons(0x0800), 6, 4, htons(oper), {0}, my_ip, {0}, target_ip};
    net_copy(a->sha, my_mac, 6);
    if (oper == 2)
        net_copy(a->tha, dst_mac, 6);
    send_frame(buf, 60);
}

/* An IPv4 packet around `payload`; returns the frame length. */
static unsigned ip_packet(uint8_t *buf, const uint8_t *dst_mac, uint32_t src, uint32_t dst, uint8_t proto,
                          const void *payload, unsigned len)
{
    unsigned n = eth_header(buf, dst_mac, 0x0800);
    struct ip4 *ip = (struct ip4 *)(buf + n);
    *ip = (struct ip4){0x45, 0, htons((uint16_t)(20 + len)), 0, 0, 64, proto, 0, src, dst};
    ip->sum = net_checksum(ip, 20);
    net_copy(buf + n + 20, payload, len);
    n += 20 + len;
    return n < 60 ? 60 : n;
}

static void send_udp(const uint8_t *dst_mac, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                     const void *data, unsigned len)
{
    uint8_t payload[1500], frame[1514] = {0};
    struct udp *u = (struct udp *)payload;
    *u = (struct udp){htons(sport), htons(dport), htons((uint16_t)(8 + len)), 0};
    net_copy(payload + 8, data, len);
    send_frame(frame, ip_packet(frame, dst_mac, src, dst, 17, payload, 8 + len));
}

/* A TCP SYN from `sport`, its checksum over the pseudo-header. */
static void send_syn(const uint8_t *dst_mac, uint32_t dst, uint16_t sport, uint16_t dport)
{
    struct __attribute__((packed)) {
        uint32_t src, dst;
        uint8_t zero, proto;
        uint16_t len;
        struct tcp t;
    } p = {my_ip, dst, 0, 6, htons(20), {htons(sport), htons(dport), htonl(1000), 0, 5 << 4, 0x02,
                                         htons(8192), 0, 0}};
    p.t.sum = net_checksum(&p, sizeof(p));
    uint8_t frame[1514] = {0};
    send_frame(frame, ip_packet(frame, dst_mac, my_ip, dst, 6, &p.t, sizeof(p.t)));
}

static void dhcp_send(uint8_t type)
{
    static struct dhcp d;
    for (unsigned i = 0; i < sizeof(d); i++)
        ((uint8_t *)&d)[i] = 0;
    d.op = 1, d.htype = 1, d.hlen = 6, d.xid = 0x5ca7e;
    net_copy(d.chaddr, my_mac, 6);
    d.magic = htonl(0x63825363);
    uint8_t *o = d.options;
    *o++ = 53, *o++ = 1, *o++ = type;
    if (type == 3) { /* REQUEST: the offered address, from that server */
        *o++ = 50, *o++ = 4, net_copy(o, &offered_ip, 4), o += 4;
        *o++ = 54, *o++ = 4, net_copy(o, &dhcp_server, 4), o += 4;
    }
    *o = 255;
    send_udp(broadcast, 0, 0xFFFFFFFF, 68, 67, &d, sizeof(d));
}

static void handle_dhcp(const struct dhcp *d, unsigned len)
{
    if (len < 240 || d->xid != 0x5ca7e || d->op != 2)
        return;
    uint8_t type = 0;
    for (const uint8_t *o = d->options; o < (const uint8_t *)d + len && *o != 255; o += 2 + o[1]) {
        if (*o == 0) {
            o -= 1;
            continue;
        }
        if (*o == 53)
            type = o[2];
        if (*o == 54)
            net_copy(&dhcp_server, o + 2, 4);
    }
    if (type == 2) {
        offered_ip = d->yiaddr;
        dhcp_offered = true;
    } else if (type == 5) {
        my_ip = d->yiaddr;
        dhcp_acked = true;
    }
}

static void handle_udp(const struct eth *e, const struct ip4 *ip, const struct udp *u, unsigned len)
{
    const uint8_t *data = (const uint8_t *)(u + 1);
    unsigned n = htons(u->len) - 8;
    if (n > len - 8)
        return;
    if (htons(u->dport) == 68) {
        handle_dhcp((const struct dhcp *)data, n);
    } else if (htons(u->dport) == 7 && ip->dst == my_ip) {
        if (n == 4 && data[0] == 'q' && data[1] == 'u' && data[2] == 'i' && data[3] == 't')
            done = true;
        else
            send_udp(e->src, my_ip, ip->src, 7, htons(u->sport), data, n);
    }
}

static void handle_frame(const uint8_t *frame, unsigned len)
{
    const struct eth *e = (const void *)frame;
    if (len < 42)
        return;
    if (e->type == htons(0x0806)) {
        const struct arp *a = (const void *)(e + 1);
        if (a->spa == arp_ip && arp_ip) {
            net_copy(peer_mac, a->sha, 6);
            peer_known = true;
        }
        if (a->oper == htons(1) && a->tpa == my_ip && my_ip)
            send_arp(2, a->sha, a->spa);
        return;
    }
    if (e->type != htons(0x0800))
        return;
    const struct ip4 *ip = (const void *)(e + 1);
    unsigned ip_len = htons(ip->len);
    if ((ip->ver_ihl & 0xF) != 5 || ip_len < 28 || ip_len > len - 14)
        return;
    if (ip->proto == 17) {
        handle_udp(e, ip, (const void *)(ip + 1), ip_len - 20);
    } else if (ip->proto == 6 && ip->dst == my_ip && ip_len >= 40) {
        const struct tcp *t = (const void *)(ip + 1);
        if (t->dport == htons(4444))
            tcp_answer = t->flags;
    } else if (ip->proto == 1 && ip->dst == my_ip && ((const struct icmp *)(ip + 1))->type == 3) {
        icmp_error = 1; /* destination unreachable */
    } else if (ip->proto == 1 && ip->dst == my_ip) {
        const struct icmp *ic = (const void *)(ip + 1);
        if (ic->type == 0) {
            pongs++;
        } else if (ic->type == 8) {
            uint8_t reply[1500];
            net_copy(reply, ic, ip_len - 20);
            ((struct icmp *)reply)->type = 0;
            ((struct icmp *)reply)->sum = 0;
            ((struct icmp *)reply)->sum = net_checksum(reply, ip_len - 20);
            uint8_t out[1514] = {0};
            send_frame(out, ip_packet(out, e->src, my_ip, ip->src, 1, reply, ip_len - 20));
        }
    }
}

static void poll_rx(void)
{
    while (win->rx.tail != __atomic_load_n(&win->rx.head, __ATOMIC_ACQUIRE)) {
        volatile struct slate_net_slot *slot = &win->rx_slots[win->rx.tail % SLATE_NET_RING_SIZE];
        handle_frame((const uint8_t *)slot->frame, slot->length);
        __atomic_store_n(&win->rx.tail, win->rx.tail + 1, __ATOMIC_RELEASE);
    }
}

/* Serves the network until `cond` holds. */
#define NET_WAIT(cond)                                                                             \
    do {                                                                                           \
        for (;;) {                                                                                 \
            poll_rx();                                                                             \
            if (cond)                                                                              \
                break;                                                                             \
            WAIT_FOR(win->rx.tail != win->rx.head);                                                \
        }                                                                                          \
    } while (0)

static uint32_t parse_ip(const char *s)
{
    uint32_t ip = 0;
    for (int part = 0; part < 4; part++) {
        uint32_t v = 0;
        while (*s >= '0' && *s <= '9')
            v = v * 10 + (uint32_t)(*s++ - '0');
        ip |= v << (8 * part);
        if (*s == '.')
            s++;
    }
    return ip;
}

static const char *option(const char *cmd, const char *key)
{
    for (const char *p = cmd; *p; p++)
        if ((p == cmd || p[-1] == ' ') && str_starts(p, key))
            return p + str_len(key);
    return NULL;
}

static void put_ip(uint32_t ip)
{
    for (int i = 0; i < 4; i++) {
        put_dec((ip >> (8 * i)) & 0xFF);
        if (i < 3)
            puts_hc(".");
    }
}

static void resolve_peer(void)
{
    for (int tries = 0; !peer_known && tries < 50; tries++) {
        send_arp(1, broadcast, arp_ip);
        const struct slate_device *timer = slate_find_device((const void *)SLATE_INFO_ADDR, SLATE_DEV_TIMER, 0);
        uint32_t start = slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO);
        while (!peer_known && slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO) - start < 100000000u) {
            poll_rx();
            __asm__ volatile("pause");
        }
    }
    GUEST_ASSERT(peer_known);
}

/* mode=blast size=N count=M [v1]: M frames of N bytes to the broadcast address, as fast as the
 * ring allows; prints frames per second as the guest measured it, and the doorbells it rang. */
static void blast(const char *cmd)
{
    const char *v;
    uint32_t size = 64, count = 100000, notifies = 0;
    bool v1 = option(cmd, "v1") != 0; /* TX_NOTIFY after every batch, as a version-1 driver */
    if ((v = option(cmd, "size=")))
        for (size = 0; *v >= '0' && *v <= '9'; v++)
            size = size * 10 + (uint32_t)(*v - '0');
    if ((v = option(cmd, "count=")))
        for (count = 0; *v >= '0' && *v <= '9'; v++)
            count = count * 10 + (uint32_t)(*v - '0');
    GUEST_ASSERT(size >= 60 && size <= SLATE_NET_FRAME_MAX);
    uint8_t frame[SLATE_NET_FRAME_MAX] = {0};
    eth_header(frame, broadcast, 0x88B5); /* the IEEE "local experimental" EtherType */
    const struct slate_info *info = (const void *)SLATE_INFO_ADDR;
    /* Every slot gets the same header and length once: the loop below only moves the index, so
     * it measures the card, not this (slow, nested) guest's copying. */
    for (unsigned i = 0; i < SLATE_NET_RING_SIZE; i++) {
        net_copy((void *)win->tx_slots[i].frame, frame, 14);
        win->tx_slots[i].length = (uint16_t)size;
    }
    win->tx.irq_batch = v1 ? 0 : SLATE_NET_RING_SIZE / 2; /* refill while the card sends */
    uint64_t t0 = rdtsc();
    for (uint32_t sent = 0; sent < count;) {
        uint32_t free = SLATE_NET_RING_SIZE - (win->tx.head - win->tx.tail);
        if (free == 0) { /* full: sleep until the card has sent some */
            WAIT_FOR(win->tx.head - win->tx.tail < SLATE_NET_RING_SIZE);
            continue;
        }
        uint32_t n = free < count - sent ? free : count - sent;
        __atomic_store_n(&win->tx.head, win->tx.head + n, __ATOMIC_RELEASE); /* a batch at once */
        if (v1 || slate_net_notify_needed(win)) { /* version 2: not while the card is sending */
            slate_outl(nic->port_base + SLATE_NET_TX_NOTIFY, 1);
            notifies++;
        }
        sent += n;
    }
    WAIT_FOR(win->tx.tail == win->tx.head);
    uint64_t us = (rdtsc() - t0) * 1000 / info->tsc_khz;
    win->tx.irq_batch = 0;
    puts_hc("blast frames/s ");
    put_dec((int64_t)((uint64_t)count * 1000000 / (us + 1)));
    puts_hc(" doorbells ");
    put_dec(notifies);
    puts_hc("\n");
}

static void hostile(void)
{
    uint16_t p = nic->port_base;
    uint32_t errors = slate_inl(p + SLATE_NET_TX_ERRORS);
    win->tx_slots[win->tx.head % SLATE_NET_RING_SIZE].length = 5; /* too short */
    win->tx_slots[(win->tx.head + 1) % SLATE_NET_RING_SIZE].length = 60000; /* too long */
    uint32_t base = win->tx.head;
    win->tx.head = base + 2;
    slate_outl(p + SLATE_NET_TX_NOTIFY, 1);
    WAIT_FOR(win->tx.tail == base + 2);
    GUEST_ASSERT(win->tx_slots[base % SLATE_NET_RING_SIZE].status == SLATE_NET_BAD_LENGTH);
    GUEST_ASSERT(slate_inl(p + SLATE_NET_TX_ERRORS) == errors + 2);
    win->tx.head += 5000; /* far beyond the ring */
    slate_outl(p + SLATE_NET_TX_NOTIFY, 1);
    const struct slate_device *timer = slate_find_device((const void *)SLATE_INFO_ADDR, SLATE_DEV_TIMER, 0);
    uint32_t start = slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO);
    while (!(slate_inl(p + SLATE_NET_STATUS) & SLATE_NET_ERROR) &&
           slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO) - start < 1000000000u)
        __asm__ volatile("pause");
    GUEST_ASSERT(slate_inl(p + SLATE_NET_STATUS) & SLATE_NET_ERROR);
    slate_outl(p + SLATE_NET_RESET, 1);
    start = slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO);
    while ((slate_inl(p + SLATE_NET_STATUS) & SLATE_NET_ERROR) &&
           slate_inl(timer->port_base + SLATE_TIMER_CLOCK_LO) - start < 1000000000u)
        __asm__ volatile("pause");
    GUEST_ASSERT(!(slate_inl(p + SLATE_NET_STATUS) & SLATE_NET_ERROR));
    GUEST_ASSERT(win->tx.head == 0 && win->tx.tail == 0);
    win->rx.tail = 12345; /* nonsense: the device must drop, not write past the ring */
    puts_hc("hostile ok\n");
}

KMAIN kmain(const struct slate_info *info)
{
    nic = slate_find_device(info, SLATE_DEV_NET, 0);
    GUEST_ASSERT(nic && nic->window_size >= sizeof(struct slate_net_window));
    win = (volatile struct slate_net_window *)nic->window_base;
    net_mac(nic, my_mac);
    GUEST_ASSERT(slate_inl(nic->port_base + SLATE_NET_STATUS) & SLATE_NET_LINK_UP);
    GUEST_ASSERT(slate_inl(nic->port_base + SLATE_NET_MTU) == 1500);
    idt_set(VEC_NET, on_net);
    idt_load();
    lapic_enable();
    slate_outl(nic->port_base + nic->irq_reg + SLATE_IRQ_VECTOR, VEC_NET);
    const char *cmd = cmdline(info);
    const char *v;
    if ((v = option(cmd, "peer=")))
        peer_ip = parse_ip(v);
    arp_ip = (v = option(cmd, "via=")) ? parse_ip(v) : peer_ip; /* a router, for a peer beyond it */
    if (option(cmd, "mode=blast")) {
        blast(cmd);
        guest_exit(0);
    }
    if (option(cmd, "mode=hostile")) {
        hostile();
        guest_exit(0);
    }
    if ((v = option(cmd, "ip="))) {
        my_ip = parse_ip(v);
    } else if (option(cmd, "dhcp")) {
        dhcp_send(1);
        NET_WAIT(dhcp_offered);
        dhcp_send(3);
        NET_WAIT(dhcp_acked);
        puts_hc("dhcp: got ");
        put_ip(my_ip);
        puts_hc("\n");
    }
    GUEST_ASSERT(my_ip);
    if (option(cmd, "mode=hello") || option(cmd, "mode=ping") || option(cmd, "mode=knock") ||
        option(cmd, "mode=flows"))
        resolve_peer();
    if (option(cmd, "mode=flows")) { /* each source port a new flow for the host to carry */
        uint16_t port = (uint16_t)cmdline_number(cmd, "port=", 0);
        uint32_t udp = (uint32_t)cmdline_number(cmd, "udp=", 0), tcp = (uint32_t)cmdline_number(cmd, "tcp=", 0);
        for (uint32_t i = 0; i < udp; i++)
            send_udp(peer_mac, my_ip, peer_ip, (uint16_t)(10000 + i), port, "flow", 4);
        for (uint32_t i = 0; i < tcp; i++)
            send_syn(peer_mac, peer_ip, (uint16_t)(40000 + i), port);
        WAIT_FOR(win->tx.tail == win->tx.head);
        puts_hc("flows sent\n");
    }
    if (option(cmd, "mode=knock")) {
        uint16_t port = (uint16_t)cmdline_number(cmd, "port=", 0);
        send_udp(peer_mac, my_ip, peer_ip, 5555, port, "knock", 5);
        send_syn(peer_mac, peer_ip, 4444, port);
        NET_WAIT(tcp_answer || icmp_error);
        puts_hc(tcp_answer == 0x12 ? "tcp answer: syn-ack\n"
                : tcp_answer ? "tcp answer: reset\n" : "tcp answer: unreachable\n");
        guest_exit(0);
    }
    if (option(cmd, "mode=hello")) {
        static const char hello[] = "hello from slate";
        send_udp(peer_mac, my_ip, peer_ip, 5555, 9999, hello, sizeof(hello) - 1);
    }
    if (option(cmd, "mode=ping")) {
        for (uint16_t seq = 0; seq < PING_COUNT; seq++) {
            struct icmp req = {8, 0, 0, htons(0x51a7), htons(seq)};
            req.sum = net_checksum(&req, sizeof(req));
            uint8_t out[1514] = {0};
            uint32_t before = pongs;
            send_frame(out, ip_packet(out, peer_mac, my_ip, peer_ip, 1, &req, sizeof(req)));
            NET_WAIT(pongs != before);
        }
        puts_hc("pings answered: ");
        put_dec(pongs);
        puts_hc("\n");
        send_udp(peer_mac, my_ip, peer_ip, 7, 7, "quit", 4);
        WAIT_FOR(win->tx.tail == win->tx.head); /* powering off drops what the card has not sent */
        guest_exit(0);
    }
    puts_hc("ready ip=");
    put_ip(my_ip);
    puts_hc("\n");
    NET_WAIT(done);
    puts_hc("quit received\n");
    guest_exit(0);
}
