/* netlib.h - what slate's test kernels share to put frames on the network card: the wire formats
 * (Ethernet, ARP, IPv4, UDP, ICMP, TCP, DHCP), the Internet checksum, the card's MAC address, an
 * ARP request, and queueing a frame in the transmit ring. */
#ifndef SLATE_TEST_NETLIB_H
#define SLATE_TEST_NETLIB_H

#include "guest.h"

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
struct __attribute__((packed)) ip4 {
    uint8_t ver_ihl, tos;
    uint16_t len, id, frag;
    uint8_t ttl, proto;
    uint16_t sum;
    uint32_t src, dst;
};
struct __attribute__((packed)) udp {
    uint16_t sport, dport, len, sum;
};
struct __attribute__((packed)) icmp {
    uint8_t type, code;
    uint16_t sum, id, seq;
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

struct __attribute__((packed)) tcp {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t offset, flags;
    uint16_t window, sum, urgent;
};

static inline uint16_t htons(uint16_t v) { return (uint16_t)(v << 8 | v >> 8); }
static inline uint32_t htonl(uint32_t v) { return __builtin_bswap32(v); }

static inline void net_copy(volatile void *dst, const void *src, unsigned n)
{
    volatile uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
}

/* The Internet checksum of len bytes (ready to store: in network order). */
static inline uint16_t net_checksum(const void *data, unsigned len)
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

/* The card's MAC address, from its MAC_LO and MAC_HI registers. */
static inline void net_mac(const struct slate_device *nic, uint8_t mac[6])
{
    uint32_t lo = slate_inl(nic->port_base + SLATE_NET_MAC_LO), hi = slate_inl(nic->port_base + SLATE_NET_MAC_HI);
    const uint8_t bytes[6] = {(uint8_t)lo, (uint8_t)(lo >> 8), (uint8_t)(lo >> 16), (uint8_t)(lo >> 24),
                              (uint8_t)hi, (uint8_t)(hi >> 8)};
    net_copy(mac, bytes, 6);
}

/* A broadcast ARP request from (mac, sender_ip) for target_ip (IPs in network order) in frame,
 * padded to the 60-byte minimum; returns 60. */
static inline unsigned net_arp_request(uint8_t frame[60], const uint8_t mac[6], uint32_t sender_ip,
                                       uint32_t target_ip)
{
    for (unsigned i = 0; i < 60; i++)
        frame[i] = 0;
    struct eth *e = (struct eth *)frame;
    for (int i = 0; i < 6; i++)
        e->dst[i] = 0xFF;
    net_copy(e->src, mac, 6);
    e->type = htons(0x0806);
    struct arp *a = (struct arp *)(frame + sizeof(*e));
    *a = (struct arp){htons(1), htons(0x0800), 6, 4, htons(1), {0}, sender_ip, {0}, target_ip};
    net_copy(a->sha, mac, 6);
    return 60;
}

/* Puts a frame in the next transmit slot and publishes it (the caller rings TX_NOTIFY); the ring
 * must have room. */
static inline void net_queue(volatile struct slate_net_window *win, const void *frame, unsigned len)
{
    volatile struct slate_net_slot *slot = &win->tx_slots[win->tx.head % SLATE_NET_RING_SIZE];
    net_copy(slot->frame, frame, len);
    slot->length = (uint16_t)len;
    __atomic_store_n(&win->tx.head, win->tx.head + 1, __ATOMIC_RELEASE);
}

#endif
