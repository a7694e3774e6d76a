/* net_policy.c - see net_policy.h. */
#include "net_policy.h"

#include <string.h>

#define ETH_HEADER 14
#define DHCP_SERVER_PORT 67 /* answered by libslirp itself: no host socket */
#define DNS_PORT 53

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }

/* The transport header at `l4`, when it is all in the frame. */
static void parse_ports(const uint8_t *f, size_t len, struct net_packet *p)
{
    size_t need = p->proto == 6 ? 20 : p->proto == 17 ? 8 : 0;
    if (p->proto == 1 && !p->fragment && len > p->l4)
        p->icmp_echo = f[p->l4] == 8;
    if (!need || p->fragment)
        return;
    if (len < p->l4 + need) {
        p->malformed = true;
        return;
    }
    p->has_ports = true;
    p->sport = be16(f + p->l4);
    p->dport = be16(f + p->l4 + 2);
    p->tcp_syn = p->proto == 6 && (f[p->l4 + 13] & 0x12) == 0x02;
}

static void parse_ipv4(const uint8_t *f, size_t len, struct net_packet *p)
{
    const uint8_t *ip = f + ETH_HEADER;
    size_t ihl = (size_t)(ip[0] & 0xF) * 4;
    if (len < ETH_HEADER + 20 || (ip[0] >> 4) != 4 || ihl < 20 || len < ETH_HEADER + ihl) {
        p->malformed = true;
        return;
    }
    memcpy(p->dst, ip + 16, 4);
    p->proto = ip[9];
    p->fragment = (be16(ip + 6) & 0x3FFF) != 0; /* more fragments, or an offset */
    p->l4 = ETH_HEADER + ihl;
    parse_ports(f, len, p);
}

/* IPv6 extension headers are not walked: a packet whose first next-header is not TCP, UDP or
 * ICMPv6 has no ports here, and is judged by its destination alone. */
static void parse_ipv6(const uint8_t *f, size_t len, struct net_packet *p)
{
    if (len < ETH_HEADER + 40 || (f[ETH_HEADER] >> 4) != 6) {
        p->malformed = true;
        return;
    }
    p->ipv6 = true;
    memcpy(p->dst, f + ETH_HEADER + 24, 16);
    p->proto = f[ETH_HEADER + 6];
    p->fragment = p->proto == 44;
    p->l4 = ETH_HEADER + 40;
    parse_ports(f, len, p);
}

void net_packet_parse(const uint8_t *frame, size_t len, struct net_packet *p)
{
    *p = (struct net_packet){0};
    if (len < ETH_HEADER)
        return;
    uint16_t type = be16(frame + 12);
    if (type != 0x0800 && type != 0x86DD)
        return;
    p->ip = true;
    if (type == 0x0800)
        parse_ipv4(frame, len, p);
    else
        parse_ipv6(frame, len, p);
}

enum net_dest net_dest_ipv4(uint32_t a)
{
    if (a >> 24 == 127)
        return NET_DEST_LOOPBACK;
    if (a >> 24 == 0)
        return NET_DEST_THIS_HOST;
    if (a == 0xFFFFFFFFu || a == NET_USER_BROADCAST)
        return NET_DEST_BROADCAST;
    if (a >> 28 >= 0xE)
        return NET_DEST_MULTICAST;
    if (a == NET_USER_GATEWAY)
        return NET_DEST_GATEWAY;
    if (a == NET_USER_DNS)
        return NET_DEST_DNS;
    return NET_DEST_OUTSIDE;
}

enum net_dest net_dest_ipv6(const uint8_t a[16])
{
    static const uint8_t zeros[12], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (a[0] == 0xFF)
        return NET_DEST_MULTICAST;
    /* ::ffff:a.b.c.d (mapped) and ::a.b.c.d (the old compatible form): the IPv4 address decides;
     * ::1 and :: are in the second range too. */
    if (!memcmp(a, mapped, 12))
        return net_dest_ipv4(be32(a + 12));
    if (!memcmp(a, zeros, 12)) {
        uint32_t v4 = be32(a + 12);
        return v4 == 1 ? NET_DEST_LOOPBACK : v4 == 0 ? NET_DEST_THIS_HOST : net_dest_ipv4(v4);
    }
    return NET_DEST_OUTSIDE;
}

/* TCP SYNs are answered with a reset, so the guest sees "connection refused" at once. */
static enum net_verdict closed(const struct net_packet *p, const char **why, const char *what)
{
    *why = what;
    return p->tcp_syn ? NET_REFUSE : NET_DROP;
}

static enum net_verdict to_gateway(const struct net_packet *p, const char **why)
{
    if (p->proto == 1)
        return NET_PASS; /* ping 10.0.2.2: libslirp answers it itself */
    if (p->fragment)
        return closed(p, why, "10.0.2.2 is the host's loopback (and a fragment hides its ports)");
    if (p->proto == 6)
        return p->tcp_syn ? closed(p, why, "10.0.2.2 is the host's loopback")
                          : NET_PASS; /* within a connection a hostfwd opened */
    if (p->proto == 17 && p->dport == DHCP_SERVER_PORT)
        return NET_PASS;
    if (p->proto == 17) {
        *why = "10.0.2.2 is the host's loopback";
        return NET_PASS_IF_FLOW;
    }
    return closed(p, why, "10.0.2.2 is the host's loopback");
}

static enum net_verdict to_dns(const struct net_packet *p, const char **why)
{
    if (p->proto == 1)
        return NET_PASS; /* answered by libslirp itself */
    if (!p->fragment && (p->proto == 6 || p->proto == 17) && p->dport == DNS_PORT)
        return NET_PASS;
    return closed(p, why, "10.0.2.3 takes only DNS (port 53): libslirp sends the rest to the "
                          "host's resolver, which may be on the host's loopback");
}

enum net_verdict net_policy(const struct net_packet *p, bool loopback, const char **why)
{
    *why = NULL;
    if (!p->ip || loopback)
        return NET_PASS;
    if (p->malformed) {
        *why = "its IP header is malformed";
        return NET_DROP;
    }
    enum net_dest dest = p->ipv6 ? net_dest_ipv6(p->dst) : net_dest_ipv4(be32(p->dst));
    switch (dest) {
    case NET_DEST_OUTSIDE:
        return NET_PASS;
    case NET_DEST_LOOPBACK:
        return closed(p, why, "127.0.0.0/8 and ::1 are the host's loopback");
    case NET_DEST_THIS_HOST:
        return closed(p, why, "0.0.0.0/8 and :: are the host itself");
    case NET_DEST_GATEWAY:
        return to_gateway(p, why);
    case NET_DEST_DNS:
        return to_dns(p, why);
    case NET_DEST_BROADCAST:
        if (!p->ipv6 && be32(p->dst) == 0xFFFFFFFFu && p->proto == 17 && p->dport == DHCP_SERVER_PORT)
            return NET_PASS; /* DHCP: answered by libslirp itself */
        return closed(p, why, "a broadcast other than DHCP would reach the host's own listeners");
    case NET_DEST_MULTICAST:
        return closed(p, why, "a multicast or reserved destination would reach the host's "
                              "own listeners");
    }
    return NET_DROP;
}
