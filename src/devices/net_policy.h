/* net_policy.h - what a guest on user-mode networking may reach on the host. libslirp turns a
 * guest's packet into a host socket sending to the packet's destination, and some destinations
 * are the host itself: 127.0.0.0/8 and 0.0.0.0/8 are its loopback, 10.0.2.2 is translated to
 * 127.0.0.1, 10.0.2.3 to the host's resolver (often on its loopback too, at any port the guest
 * names), broadcasts and multicasts reach local listeners. On the loopback listen slate's own
 * monitor, gdb stub and VNC server, other slates' and every local service. This is the one policy
 * that decides, per guest frame, by what the destination *is*. Pure: unit-tested with a table. */
#ifndef SLATE_NET_POLICY_H
#define SLATE_NET_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The guest's network as libslirp is configured for it (net_user.c), in host byte order. */
#define NET_USER_NETWORK 0x0A000200u   /* 10.0.2.0/24 */
#define NET_USER_GATEWAY 0x0A000202u   /* 10.0.2.2: the host, via its loopback */
#define NET_USER_DNS 0x0A000203u       /* 10.0.2.3: the host's resolver */
#define NET_USER_BROADCAST 0x0A0002FFu /* 10.0.2.255 */

/* What a destination is, from the host's side. */
enum net_dest {
    NET_DEST_OUTSIDE,   /* anything else: sent on through the host's routes */
    NET_DEST_LOOPBACK,  /* 127/8, ::1, and their IPv4-mapped and -compatible forms */
    NET_DEST_THIS_HOST, /* 0/8 and :: (Linux sends these to its own loopback) */
    NET_DEST_GATEWAY,   /* 10.0.2.2 (libslirp sends it to 127.0.0.1) */
    NET_DEST_DNS,       /* 10.0.2.3 (libslirp sends it to the host's resolver, any port) */
    NET_DEST_BROADCAST, /* 255.255.255.255 and 10.0.2.255 */
    NET_DEST_MULTICAST, /* 224/4, ff00::/8, and the reserved 240/4 */
};

enum net_verdict {
    NET_PASS,        /* to libslirp */
    NET_DROP,        /* dropped, with a warning */
    NET_REFUSE,      /* a TCP SYN: dropped, and the guest is answered with a reset */
    NET_PASS_IF_FLOW /* UDP to the gateway: only a reply within a flow a hostfwd opened */
};

/* The parts of a guest frame the policy looks at. */
struct net_packet {
    bool ip;        /* IPv4 or IPv6; anything else (ARP) is not the policy's business */
    bool ipv6;
    bool malformed; /* an IP header cut short or inconsistent */
    bool fragment;  /* a fragment: its ports may be in another one */
    uint8_t proto;  /* 1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6, ... */
    bool tcp_syn;   /* a SYN without ACK: a new connection */
    bool icmp_echo; /* an ICMP echo request (a ping) */
    bool has_ports;
    uint16_t sport, dport;
    uint8_t dst[16]; /* IPv4 in the first 4 bytes, in network order */
    size_t l4;       /* the transport header's offset in the frame */
};

/* Reads an Ethernet frame's IP header and transport ports (all lengths checked). */
void net_packet_parse(const uint8_t *frame, size_t len, struct net_packet *p);

/* What an IPv4 address (host byte order) or an IPv6 address (16 bytes) is. */
enum net_dest net_dest_ipv4(uint32_t addr);
enum net_dest net_dest_ipv6(const uint8_t addr[16]);

/* The verdict for a parsed frame; `loopback` is the user's loopback=on. *why gets a phrase for
 * the warning when the frame is not passed. */
enum net_verdict net_policy(const struct net_packet *p, bool loopback, const char **why);

#endif
