/* net.c - the network card, and just enough IPv4 to be reachable: ARP, ping (ICMP echo) both
 * ways, and a DHCP client for `--net user`.
 *
 * The card is two rings of frame slots in a shared window. To send: fill the slot at tx.head,
 * bump tx.head, write TX_NOTIFY (unless the card says it is still sending). To receive: frames
 * appear at rx.head; take them from rx.tail and bump it. An interrupt says something happened;
 * the work is done in net_poll, outside the handler, by whoever is waiting (the shell's idle
 * loop, a sleeping command).
 *
 * Configuration comes from the command line, "ip=A.B.C.D/PREFIX gw=A.B.C.D"; without ip= the
 * card asks DHCP. Addresses are kept in network byte order throughout.
 */
#include "kernel.h"

#define ETH_ARP 0x0806
#define ETH_IPV4 0x0800
#define IP_ICMP 1
#define IP_UDP 17
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8
#define DHCP_CLIENT_PORT 68
#define DHCP_SERVER_PORT 67
#define DHCP_MAGIC 0x63825363
#define DHCP_XID 0x51a7e001
#define PING_ID 0x5147
#define ARP_CACHE 16

struct __attribute__((packed)) eth {
    uint8_t dst[6], src[6];
    uint16_t type;
};
struct __attribute__((packed)) arp {
    uint16_t htype, ptype;
    uint8_t hlen, plen;
    uint16_t oper;
    uint8_t sha[6];
    uint32_t spa;
    uint8_t tha[6];
    uint32_t tpa;
};
struct __attribute__((packed)) ipv4 {
    uint8_t ver_ihl, tos;
    uint16_t len, id, frag;
    uint8_t ttl, proto;
    uint16_t sum;
    uint32_t src, dst;
};
struct __attribute__((packed)) udp {
    uint16_t sport, dport, len, sum;
};
struct __attribute__((packed)) icmp_echo {
    uint8_t type, code;
    uint16_t sum, id, seq;
    uint64_t sent_ns; /* our payload: when the request left */
};
struct __attribute__((packed)) dhcp {
    uint8_t op, htype, hlen, hops;
    uint32_t xid;
    uint16_t secs, flags;
    uint32_t ciaddr, yiaddr, siaddr, giaddr;
    uint8_t chaddr[16], sname[64], file[128];
    uint32_t magic;
    uint8_t options[64];
};

enum dhcp_state { DHCP_OFF, DHCP_DISCOVERING, DHCP_REQUESTING, DHCP_BOUND };

static const struct slate_device *nic;
static volatile struct slate_net_window *window;
static uint8_t my_mac[6];
static uint32_t my_ip, netmask, gateway;
static enum dhcp_state dhcp_state;
static uint32_t dhcp_offer, dhcp_server;
static uint64_t dhcp_retry_at;
static volatile bool nic_interrupted;

static struct {
    uint32_t ip;
    uint8_t mac[6];
} arp_cache[ARP_CACHE];
static unsigned arp_next;

static struct {
    uint16_t seq;
    bool answered;
    uint64_t rtt_ns;
} ping_wait;

static const uint8_t broadcast_mac[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

static uint16_t htons(uint16_t v) { return (uint16_t)(v << 8 | v >> 8); }
static uint32_t htonl(uint32_t v) { return __builtin_bswap32(v); }

static uint16_t checksum(const void *data, unsigned len)
{
    const uint8_t *p = data;
    uint32_t sum = 0;
    for (unsigned i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return htons((uint16_t)~sum);
}

static void print_ip(const char *before, uint32_t ip)
{
    kprintf("%s%u.%u.%u.%u", before, ip & 0xFF, ip >> 8 & 0xFF, ip >> 16 & 0xFF, ip >> 24);
}

static unsigned prefix_length(uint32_t mask)
{
    unsigned n = 0;
    for (; mask; mask >>= 1)
        n += mask & 1;
    return n;
}

/* ---- the card ---- */

__attribute__((interrupt)) static void on_nic(struct interrupt_frame *frame)
{
    (void)frame;
    slate_outl(nic->port_base + SLATE_NET_IRQ_STATUS, SLATE_NET_IRQ_RX | SLATE_NET_IRQ_TX);
    nic_interrupted = true;
    lapic_eoi();
}

/* Frames shorter than Ethernet's 60-byte minimum are padded with zeros. */
static void send_frame(const void *frame, unsigned len)
{
    while (window->tx.head - __atomic_load_n(&window->tx.tail, __ATOMIC_ACQUIRE) >= SLATE_NET_RING_SIZE)
        __asm__ volatile("sti; hlt"); /* the ring is full: the card's IRQ_TX says when it drains */
    volatile struct slate_net_slot *slot = &window->tx_slots[window->tx.head % SLATE_NET_RING_SIZE];
    memcpy((void *)slot->frame, frame, len);
    if (len < 60)
        memset((void *)(slot->frame + len), 0, 60 - len), len = 60;
    slot->length = (uint16_t)len;
    __atomic_store_n(&window->tx.head, window->tx.head + 1, __ATOMIC_RELEASE);
    if (slate_net_notify_needed(window)) /* not while the card is still sending */
        slate_outl(nic->port_base + SLATE_NET_TX_NOTIFY, 1);
}

static unsigned eth_header(uint8_t *frame, const uint8_t *dst, uint16_t type)
{
    struct eth *e = (struct eth *)frame;
    memcpy(e->dst, dst, 6);
    memcpy(e->src, my_mac, 6);
    e->type = htons(type);
    return sizeof(*e);
}

/* ---- ARP ---- */

static const uint8_t *arp_lookup(uint32_t ip)
{
    for (unsigned i = 0; i < ARP_CACHE; i++)
        if (arp_cache[i].ip == ip && ip)
            return arp_cache[i].mac;
    return NULL;
}

static void arp_learn(uint32_t ip, const uint8_t *mac)
{
    if (!ip || arp_lookup(ip))
        return;
    arp_cache[arp_next].ip = ip;
    memcpy(arp_cache[arp_next].mac, mac, 6);
    arp_next = (arp_next + 1) % ARP_CACHE;
}

static void send_arp(uint16_t oper, const uint8_t *dst_mac, uint32_t target_ip)
{
    uint8_t frame[60];
    unsigned n = eth_header(frame, dst_mac, ETH_ARP);
    struct arp *a = (struct arp *)(frame + n);
    *a = (struct arp){htons(1), htons(ETH_IPV4), 6, 4, htons(oper), {0}, my_ip, {0}, target_ip};
    memcpy(a->sha, my_mac, 6);
    if (oper == 2)
        memcpy(a->tha, dst_mac, 6);
    send_frame(frame, n + sizeof(*a));
}

static void handle_arp(const struct arp *a)
{
    arp_learn(a->spa, a->sha);
    if (a->oper == htons(1) && my_ip && a->tpa == my_ip)
        send_arp(2, a->sha, a->spa); /* "who has my address?": me */
}

/* ---- IPv4 ---- */

static void send_ipv4(const uint8_t *dst_mac, uint32_t src, uint32_t dst, uint8_t proto, const void *payload,
                      unsigned len)
{
    static uint8_t frame[SLATE_NET_FRAME_MAX];
    static uint16_t next_id;
    if (len > SLATE_NET_FRAME_MAX - 14 - 20)
        return;
    unsigned n = eth_header(frame, dst_mac, ETH_IPV4);
    struct ipv4 *ip = (struct ipv4 *)(frame + n);
    *ip = (struct ipv4){0x45, 0, htons((uint16_t)(20 + len)), htons(next_id++), 0, 64, proto, 0, src, dst};
    ip->sum = checksum(ip, 20);
    memcpy(frame + n + 20, payload, len);
    send_frame(frame, n + 20 + len);
}

static void handle_icmp(const struct eth *e, const struct ipv4 *ip, const uint8_t *data, unsigned len)
{
    static uint8_t reply[1500];
    const struct icmp_echo *echo = (const void *)data;
    if (len < 8 || checksum(data, len) != 0)
        return;
    if (echo->type == ICMP_ECHO_REQUEST) {
        memcpy(reply, data, len);
        reply[0] = ICMP_ECHO_REPLY;
        reply[2] = reply[3] = 0;
        uint16_t sum = checksum(reply, len);
        memcpy(reply + 2, &sum, 2);
        send_ipv4(e->src, my_ip, ip->src, IP_ICMP, reply, len);
    } else if (echo->type == ICMP_ECHO_REPLY && len >= sizeof(*echo) && echo->id == htons(PING_ID) &&
               echo->seq == htons(ping_wait.seq)) {
        ping_wait.rtt_ns = clock_ns() - echo->sent_ns;
        ping_wait.answered = true;
    }
}

/* ---- DHCP ---- */

static void dhcp_send(uint8_t type)
{
    static struct dhcp d;
    static uint8_t packet[sizeof(struct udp) + sizeof(struct dhcp)];
    memset(&d, 0, sizeof(d));
    d.op = 1, d.htype = 1, d.hlen = 6, d.xid = htonl(DHCP_XID), d.flags = htons(0x8000);
    memcpy(d.chaddr, my_mac, 6);
    d.magic = htonl(DHCP_MAGIC);
    uint8_t *o = d.options;
    *o++ = 53, *o++ = 1, *o++ = type; /* message type: 1 DISCOVER, 3 REQUEST */
    if (type == 3) {
        *o++ = 50, *o++ = 4, memcpy(o, &dhcp_offer, 4), o += 4;  /* the address offered */
        *o++ = 54, *o++ = 4, memcpy(o, &dhcp_server, 4), o += 4; /* by this server */
    }
    *o++ = 55, *o++ = 2, *o++ = 1, *o++ = 3; /* please tell us the netmask and the router */
    *o = 255;
    struct udp *u = (struct udp *)packet;
    *u = (struct udp){htons(DHCP_CLIENT_PORT), htons(DHCP_SERVER_PORT), htons(sizeof(packet)), 0};
    memcpy(packet + sizeof(*u), &d, sizeof(d));
    send_ipv4(broadcast_mac, 0, 0xFFFFFFFF, IP_UDP, packet, sizeof(packet));
    dhcp_retry_at = clock_ns() + 1000000000;
}

static void dhcp_start(void)
{
    dhcp_state = DHCP_DISCOVERING;
    dhcp_send(1);
}

static void handle_dhcp(const struct dhcp *d, unsigned len)
{
    const uint8_t *end = (const uint8_t *)d + len;
    uint8_t type = 0;
    uint32_t server = 0, mask = 0, router = 0;
    if (len < offsetof(struct dhcp, options) || d->op != 2 || d->xid != htonl(DHCP_XID))
        return;
    for (const uint8_t *o = d->options; o < end && *o != 255;) {
        if (*o == 0) { /* padding */
            o++;
            continue;
        }
        if (o + 2 > end || o + 2 + o[1] > end)
            break;
        if (*o == 53 && o[1] >= 1)
            type = o[2];
        else if (*o == 54 && o[1] == 4)
            memcpy(&server, o + 2, 4);
        else if (*o == 1 && o[1] == 4)
            memcpy(&mask, o + 2, 4);
        else if (*o == 3 && o[1] >= 4)
            memcpy(&router, o + 2, 4);
        o += 2 + o[1];
    }
    if (type == 2 && dhcp_state == DHCP_DISCOVERING) { /* OFFER: ask for it */
        dhcp_offer = d->yiaddr, dhcp_server = server;
        dhcp_state = DHCP_REQUESTING;
        dhcp_send(3);
    } else if (type == 5 && dhcp_state == DHCP_REQUESTING) { /* ACK: it is ours */
        my_ip = d->yiaddr, netmask = mask ? mask : htonl(0xFFFFFF00), gateway = router;
        dhcp_state = DHCP_BOUND;
        print_ip("net: ", my_ip);
        kprintf("/%u", prefix_length(netmask));
        print_ip(" gateway ", gateway);
        kprintf(" (DHCP)\n");
    }
}

static void handle_udp(const uint8_t *data, unsigned len)
{
    const struct udp *u = (const void *)data;
    if (len < sizeof(*u) || htons(u->len) < sizeof(*u) || htons(u->len) > len)
        return;
    if (u->dport == htons(DHCP_CLIENT_PORT))
        handle_dhcp((const void *)(u + 1), htons(u->len) - sizeof(*u));
}

static void handle_ipv4(const struct eth *e, const uint8_t *data, unsigned len)
{
    const struct ipv4 *ip = (const void *)data;
    if (len < sizeof(*ip) || ip->ver_ihl != 0x45 || htons(ip->len) < sizeof(*ip) || htons(ip->len) > len ||
        checksum(ip, 20) != 0 || (ip->frag & htons(0x3FFF)))
        return; /* options, fragments and broken headers: not for this small stack */
    unsigned payload_len = htons(ip->len) - sizeof(*ip);
    if (ip->proto == IP_ICMP && my_ip && ip->dst == my_ip)
        handle_icmp(e, ip, data + sizeof(*ip), payload_len);
    else if (ip->proto == IP_UDP)
        handle_udp(data + sizeof(*ip), payload_len);
}

static void handle_frame(const uint8_t *frame, unsigned len)
{
    const struct eth *e = (const void *)frame;
    if (len < sizeof(*e) || len > SLATE_NET_FRAME_MAX)
        return;
    if (e->type == htons(ETH_ARP) && len >= sizeof(*e) + sizeof(struct arp))
        handle_arp((const void *)(e + 1));
    else if (e->type == htons(ETH_IPV4))
        handle_ipv4(e, frame + sizeof(*e), len - sizeof(*e));
}

void net_poll(void)
{
    if (!nic)
        return;
    nic_interrupted = false;
    while (window->rx.tail != __atomic_load_n(&window->rx.head, __ATOMIC_ACQUIRE)) {
        static uint8_t frame[SLATE_NET_FRAME_MAX];
        volatile struct slate_net_slot *slot = &window->rx_slots[window->rx.tail % SLATE_NET_RING_SIZE];
        unsigned len = slot->length <= sizeof(frame) ? slot->length : 0;
        memcpy(frame, (const void *)slot->frame, len); /* a copy: the slot is the card's again */
        __atomic_store_n(&window->rx.tail, window->rx.tail + 1, __ATOMIC_RELEASE);
        handle_frame(frame, len);
    }
    if ((dhcp_state == DHCP_DISCOVERING || dhcp_state == DHCP_REQUESTING) && clock_ns() >= dhcp_retry_at)
        dhcp_start(); /* no answer for a second: start over */
}

/* ---- set-up ---- */

static bool configure_from_cmdline(void)
{
    const char *s = cmdline_option("ip=");
    uint64_t prefix = 24;
    if (!s)
        return false;
    if (!parse_ipv4(&s, &my_ip) || (*s == '/' && (s++, !parse_u64(&s, &prefix) || prefix < 1 || prefix > 32))) {
        kprintf("net: cannot read ip= on the command line (want ip=A.B.C.D/PREFIX)\n");
        my_ip = 0;
        return true;
    }
    netmask = htonl(~0u << (32 - prefix));
    const char *g = cmdline_option("gw=");
    if (g && !parse_ipv4(&g, &gateway))
        kprintf("net: cannot read gw= on the command line\n");
    print_ip("net: ", my_ip);
    kprintf("/%u", (unsigned)prefix);
    if (gateway)
        print_ip(" gateway ", gateway);
    kprintf(" (from the command line)\n");
    return true;
}

void net_init(void)
{
    nic = device_find(SLATE_DEV_NET);
    if (!nic)
        return;
    window = (volatile struct slate_net_window *)nic->window_base;
    uint32_t lo = slate_inl(nic->port_base + SLATE_NET_MAC_LO), hi = slate_inl(nic->port_base + SLATE_NET_MAC_HI);
    for (int i = 0; i < 6; i++)
        my_mac[i] = (uint8_t)((i < 4 ? lo >> (8 * i) : hi >> (8 * (i - 4))) & 0xFF);
    idt_set(VEC_NET, on_nic);
    irq_route(nic, 0, VEC_NET, 0);
    slate_outl(nic->port_base + SLATE_NET_RESET, 1);
    if (configure_from_cmdline())
        return;
    dhcp_start();
    uint64_t give_up = clock_ns() + 2000000000ull; /* a lease before the prompt, if it comes soon */
    while (dhcp_state != DHCP_BOUND && clock_ns() < give_up)
        sleep_ms(10);
    if (dhcp_state != DHCP_BOUND)
        kprintf("net: no DHCP answer yet; still asking (or boot with ip=A.B.C.D/24)\n");
}

/* ---- ping ---- */

/* Waits up to `ms` for `cond`, serving the network meanwhile. */
#define NET_WAIT(cond, ms)                                                                         \
    ({                                                                                             \
        uint64_t until_ = clock_ns() + (ms) * 1000000ull;                                          \
        while (!(cond) && clock_ns() < until_) {                                                   \
            net_poll();                                                                            \
            if (!(cond) && !nic_interrupted)                                                       \
                __asm__ volatile("sti; hlt");                                                      \
        }                                                                                          \
        (cond);                                                                                    \
    })

static const uint8_t *resolve(uint32_t ip)
{
    for (int attempt = 0; attempt < 3 && !arp_lookup(ip); attempt++) {
        send_arp(1, broadcast_mac, ip);
        NET_WAIT(arp_lookup(ip) != NULL, 500);
    }
    return arp_lookup(ip);
}

void net_ping(uint32_t dst, unsigned count)
{
    if (!nic) {
        kprintf("ping: no network card (start slate with --net user or --net tap:IFNAME)\n");
        return;
    }
    if (!NET_WAIT(my_ip != 0, 3000)) {
        kprintf("ping: no address yet\n");
        return;
    }
    uint32_t hop = (dst & netmask) == (my_ip & netmask) || !gateway ? dst : gateway;
    const uint8_t *mac = resolve(hop);
    if (!mac) {
        print_ip("ping: no ARP answer from ", hop);
        kprintf("\n");
        return;
    }
    unsigned answered = 0;
    for (unsigned seq = 1; seq <= count; seq++) {
        struct icmp_echo echo = {ICMP_ECHO_REQUEST, 0, 0, htons(PING_ID), htons((uint16_t)seq), clock_ns()};
        echo.sum = checksum(&echo, sizeof(echo));
        ping_wait.seq = (uint16_t)seq, ping_wait.answered = false;
        send_ipv4(mac, my_ip, dst, IP_ICMP, &echo, sizeof(echo));
        uint64_t next = echo.sent_ns + 1000000000ull;
        if (NET_WAIT(ping_wait.answered, 1000)) {
            answered++;
            print_ip("reply from ", dst);
            kprintf(": seq=%u time=%lu.%03lu ms\n", seq, ping_wait.rtt_ns / 1000000, ping_wait.rtt_ns / 1000 % 1000);
        } else {
            kprintf("seq=%u: no reply\n", seq);
        }
        if (seq < count)
            NET_WAIT(clock_ns() >= next, 1000);
    }
    kprintf("%u sent, %u received\n", count, answered);
}

void print_net(void)
{
    if (!nic) {
        kprintf("no network card\n");
        return;
    }
    kprintf("%s: mac %02x:%02x:%02x:%02x:%02x:%02x, link %s\n", nic->name, my_mac[0], my_mac[1], my_mac[2],
            my_mac[3], my_mac[4], my_mac[5],
            slate_inl(nic->port_base + SLATE_NET_STATUS) & SLATE_NET_LINK_UP ? "up" : "down");
    if (my_ip) {
        print_ip("  address ", my_ip);
        kprintf("/%u", prefix_length(netmask));
        if (gateway)
            print_ip(" gateway ", gateway);
        kprintf("%s\n", dhcp_state == DHCP_BOUND ? " (DHCP)" : "");
    } else {
        kprintf("  no address yet\n");
    }
    kprintf("  received %u frames, sent %u, dropped %u\n", slate_inl(nic->port_base + SLATE_NET_RX_FRAMES),
            slate_inl(nic->port_base + SLATE_NET_TX_FRAMES), slate_inl(nic->port_base + SLATE_NET_RX_DROPS));
}
