/* What a guest on user-mode networking may reach: a table of destinations, each as TCP SYN, TCP
 * within a connection, UDP, ICMP and a fragment, with and without loopback=on. */
#include "unit.h"

#include "net_policy.h"

#include <arpa/inet.h>

enum kind { SYN, TCP, UDP, ICMP, FRAG };

/* An Ethernet frame with an IPv4 packet of `kind` to `dst`:dport. */
static size_t ipv4_frame(uint8_t *f, const char *dst, enum kind kind, uint16_t dport)
{
    memset(f, 0, 128);
    f[12] = 0x08, f[13] = 0x00;
    uint8_t *ip = f + 14, *l4 = ip + 20;
    ip[0] = 0x45, ip[8] = 64;
    ip[9] = kind == SYN || kind == TCP ? 6 : kind == ICMP ? 1 : 17;
    if (kind == FRAG)
        ip[6] = 0x20; /* more fragments */
    inet_pton(AF_INET, "10.0.2.15", ip + 12);
    assert_int_equal(inet_pton(AF_INET, dst, ip + 16), 1);
    l4[0] = 0x30, l4[1] = 0x39; /* from port 12345 */
    l4[2] = (uint8_t)(dport >> 8), l4[3] = (uint8_t)dport;
    if (kind == SYN)
        l4[13] = 0x02;
    if (kind == TCP)
        l4[13] = 0x10; /* ACK */
    return 14 + 20 + 20;
}

static enum net_verdict judge(const char *dst, enum kind kind, uint16_t dport, bool loopback)
{
    uint8_t f[128];
    size_t len = ipv4_frame(f, dst, kind, dport);
    struct net_packet p;
    net_packet_parse(f, len, &p);
    const char *why;
    enum net_verdict v = net_policy(&p, loopback, &why);
    if (v != NET_PASS && !why)
        fail_msg("%s: a verdict other than pass must say why", dst);
    return v;
}

static void the_host_is_closed(void **state)
{
    (void)state;
    static const char *const closed[] = {"127.0.0.1", "127.1.2.3", "127.255.255.255", "0.0.0.0",
                                         "0.1.2.3", "255.255.255.255", "10.0.2.255", "224.0.0.251",
                                         "239.255.255.250", "240.0.0.1"};
    for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++) {
        const char *dst = closed[i];
        assert_int_equal(judge(dst, SYN, 22, false), NET_REFUSE);
        assert_int_equal(judge(dst, TCP, 22, false), NET_DROP);
        assert_int_equal(judge(dst, UDP, 9, false), NET_DROP);
        assert_int_equal(judge(dst, ICMP, 0, false), NET_DROP);
        assert_int_equal(judge(dst, FRAG, 9, false), NET_DROP);
        /* loopback=on: everything goes, as QEMU's user networking always does */
        assert_int_equal(judge(dst, SYN, 22, true), NET_PASS);
        assert_int_equal(judge(dst, UDP, 9, true), NET_PASS);
        assert_int_equal(judge(dst, FRAG, 9, true), NET_PASS);
    }
}

static void the_gateway_answers_ping_and_dhcp_only(void **state)
{
    (void)state;
    assert_int_equal(judge("10.0.2.2", SYN, 5900, false), NET_REFUSE);
    assert_int_equal(judge("10.0.2.2", TCP, 5900, false), NET_PASS); /* a hostfwd connection */
    assert_int_equal(judge("10.0.2.2", UDP, 9, false), NET_PASS_IF_FLOW);
    assert_int_equal(judge("10.0.2.2", UDP, 67, false), NET_PASS);
    assert_int_equal(judge("10.0.2.2", ICMP, 0, false), NET_PASS);
    assert_int_equal(judge("10.0.2.2", FRAG, 67, false), NET_DROP);
    assert_int_equal(judge("255.255.255.255", UDP, 67, false), NET_PASS); /* DHCP discover */
    assert_int_equal(judge("255.255.255.255", FRAG, 67, false), NET_DROP);
}

static void the_resolver_takes_dns_only(void **state)
{
    (void)state;
    assert_int_equal(judge("10.0.2.3", UDP, 53, false), NET_PASS);
    assert_int_equal(judge("10.0.2.3", SYN, 53, false), NET_PASS);
    assert_int_equal(judge("10.0.2.3", ICMP, 0, false), NET_PASS);
    assert_int_equal(judge("10.0.2.3", UDP, 9, false), NET_DROP);
    assert_int_equal(judge("10.0.2.3", SYN, 80, false), NET_REFUSE);
    assert_int_equal(judge("10.0.2.3", FRAG, 53, false), NET_DROP);
}

static void the_outside_is_open(void **state)
{
    (void)state;
    static const char *const open[] = {"192.0.2.1", "198.51.100.7", "10.0.2.4", "203.0.113.255",
                                       "223.255.255.255"};
    for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++) {
        assert_int_equal(judge(open[i], SYN, 80, false), NET_PASS);
        assert_int_equal(judge(open[i], UDP, 9, false), NET_PASS);
        assert_int_equal(judge(open[i], ICMP, 0, false), NET_PASS);
        assert_int_equal(judge(open[i], FRAG, 9, false), NET_PASS);
    }
}

static void ipv6_destinations(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        enum net_dest dest;
    } cases[] = {
        {"::1", NET_DEST_LOOPBACK},          {"::", NET_DEST_THIS_HOST},
        {"::ffff:127.0.0.1", NET_DEST_LOOPBACK}, {"::ffff:127.9.9.9", NET_DEST_LOOPBACK},
        {"::ffff:0.0.0.0", NET_DEST_THIS_HOST},  {"::127.0.0.1", NET_DEST_LOOPBACK},
        {"::ffff:10.0.2.2", NET_DEST_GATEWAY},   {"ff02::1", NET_DEST_MULTICAST},
        {"2001:db8::1", NET_DEST_OUTSIDE},       {"fe80::1", NET_DEST_OUTSIDE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t a[16];
        assert_int_equal(inet_pton(AF_INET6, cases[i].addr, a), 1);
        if (net_dest_ipv6(a) != cases[i].dest)
            fail_msg("%s: %d, want %d", cases[i].addr, net_dest_ipv6(a), cases[i].dest);
    }
    /* A whole frame: a SYN to ::1 is refused; the policy reads the IPv6 header. */
    uint8_t f[128] = {0};
    f[12] = 0x86, f[13] = 0xDD, f[14] = 0x60, f[20] = 6;
    inet_pton(AF_INET6, "::1", f + 38);
    f[54 + 13] = 0x02;
    struct net_packet p;
    net_packet_parse(f, 54 + 20, &p);
    const char *why;
    assert_true(p.ipv6 && p.tcp_syn);
    assert_int_equal(net_policy(&p, false, &why), NET_REFUSE);
}

static void short_and_strange_frames(void **state)
{
    (void)state;
    uint8_t f[128];
    struct net_packet p;
    const char *why;
    size_t len = ipv4_frame(f, "127.0.0.1", SYN, 80);
    for (size_t cut = 0; cut < len; cut++) { /* every truncation: never passed to the loopback */
        net_packet_parse(f, cut, &p);
        enum net_verdict v = net_policy(&p, false, &why);
        if (p.ip && v == NET_PASS)
            fail_msg("a frame cut at %zu bytes passes", cut);
    }
    ipv4_frame(f, "127.0.0.1", UDP, 9);
    f[14] = 0x4F; /* a header length past the frame */
    net_packet_parse(f, 40, &p);
    assert_int_equal(net_policy(&p, false, &why), NET_DROP);
    f[12] = 0x08, f[13] = 0x06; /* ARP: not the policy's business */
    net_packet_parse(f, 60, &p);
    assert_int_equal(net_policy(&p, false, &why), NET_PASS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_host_is_closed),
        cmocka_unit_test(the_gateway_answers_ping_and_dhcp_only),
        cmocka_unit_test(the_resolver_takes_dns_only),
        cmocka_unit_test(the_outside_is_open),
        cmocka_unit_test(ipv6_destinations),
        cmocka_unit_test(short_and_strange_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
