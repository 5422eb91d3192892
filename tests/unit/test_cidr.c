/*
 * test_cidr.c - server/cidr.c: addresses and networks in text, IPv4-mapped
 * IPv6, prefix edges, host bits and garbage.
 */
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "server/cidr.h"
#include "tests/unit/check.h"


/* Non-zero when text parses as an address inside the network net. */
static int
inside(const char *net, const char *addr)
{
    struct cidr c;
    struct cidr_addr a;

    if (cidr_parse(net, &c) != 0 || cidr_addr_parse(addr, &a) != 0) {
        return -1;
    }
    return cidr_contains(&c, &a);
}


static void
addr_should_parse_ipv4_and_ipv6(void)
{
    static const uint8_t v6[16] = {
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01
    };
    struct cidr_addr a;

    CHECK(cidr_addr_parse("192.0.2.1", &a) == 0);
    CHECK(a.family == AF_INET);
    CHECK(memcmp(a.bytes, "\xc0\x00\x02\x01", 4) == 0);

    CHECK(cidr_addr_parse("2001:db8::1", &a) == 0);
    CHECK(a.family == AF_INET6);
    CHECK(memcmp(a.bytes, v6, 16) == 0);

    CHECK(cidr_addr_parse("::1", &a) == 0);
    CHECK(a.family == AF_INET6);
    CHECK(cidr_addr_parse("::", &a) == 0);
    CHECK(a.family == AF_INET6);
}


static void
addr_should_unmap_ipv4_mapped(void)
{
    struct cidr_addr a;

    CHECK(cidr_addr_parse("::ffff:192.0.2.1", &a) == 0);
    CHECK(a.family == AF_INET);
    CHECK(memcmp(a.bytes, "\xc0\x00\x02\x01", 4) == 0);

    /* The same address written in hex groups. */
    CHECK(cidr_addr_parse("::ffff:c000:201", &a) == 0);
    CHECK(a.family == AF_INET);
    CHECK(memcmp(a.bytes, "\xc0\x00\x02\x01", 4) == 0);

    /* IPv4-compatible (::a.b.c.d) and NAT64 forms are not mapped ones. */
    CHECK(cidr_addr_parse("::192.0.2.1", &a) == 0);
    CHECK(a.family == AF_INET6);
    CHECK(cidr_addr_parse("64:ff9b::192.0.2.1", &a) == 0);
    CHECK(a.family == AF_INET6);
}


static void
addr_should_reject_garbage(void)
{
    static const char *const bad[] = {
        "", " ", "192.0.2", "192.0.2.256", "1.2.3.4.5", "1.2.3.4 ",
        " 1.2.3.4", "1.2.3.-4", "2001:db8:::1", "gggg::1", "1.2.3.4/24",
        "2001:db8::/32", "unknown", "localhost", "::ffff:1.2.3", "12345::",
        "1:2:3:4:5:6:7:8:9"
    };
    struct cidr_addr a;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(cidr_addr_parse(bad[i], &a) == -1);
        if (cidr_addr_parse(bad[i], &a) != -1) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        }
    }
}


static void
parse_should_read_prefix_lengths(void)
{
    struct cidr c;

    CHECK(cidr_parse("10.0.0.0/8", &c) == 0);
    CHECK(c.net.family == AF_INET && c.bits == 8);
    CHECK(cidr_parse("0.0.0.0/0", &c) == 0 && c.bits == 0);
    CHECK(cidr_parse("192.0.2.7/32", &c) == 0 && c.bits == 32);
    CHECK(cidr_parse("2001:db8::/32", &c) == 0);
    CHECK(c.net.family == AF_INET6 && c.bits == 32);
    CHECK(cidr_parse("::/0", &c) == 0 && c.bits == 0);
    CHECK(cidr_parse("2001:db8::5/128", &c) == 0 && c.bits == 128);

    /* A bare address is a network of one. */
    CHECK(cidr_parse("192.0.2.7", &c) == 0 && c.bits == 32);
    CHECK(cidr_parse("2001:db8::5", &c) == 0 && c.bits == 128);
}


static void
parse_should_clear_host_bits(void)
{
    struct cidr c;

    CHECK(cidr_parse("17.1.2.3/8", &c) == 0);
    CHECK(memcmp(c.net.bytes, "\x11\x00\x00\x00", 4) == 0);
    CHECK(cidr_parse("192.0.2.255/23", &c) == 0);
    CHECK(memcmp(c.net.bytes, "\xc0\x00\x02\x00", 4) == 0);
    CHECK(cidr_parse("203.0.113.77/0", &c) == 0);
    CHECK(memcmp(c.net.bytes, "\x00\x00\x00\x00", 4) == 0);
    CHECK(cidr_parse("2001:db8:1:2:3:4:5:6/48", &c) == 0);
    CHECK(memcmp(c.net.bytes, "\x20\x01\x0d\xb8\x00\x01", 6) == 0);
    CHECK(memcmp(c.net.bytes + 6, "\0\0\0\0\0\0\0\0\0\0", 10) == 0);
    CHECK(cidr_parse("2001:db8::ffff/127", &c) == 0);
    CHECK(c.net.bytes[15] == 0xfe);
}


static void
parse_should_map_ipv4_mapped_networks(void)
{
    struct cidr c;

    /* ::ffff:0:0/96 is all of IPv4: the prefix shrinks by 96. */
    CHECK(cidr_parse("::ffff:10.0.0.0/104", &c) == 0);
    CHECK(c.net.family == AF_INET && c.bits == 8);
    CHECK(cidr_parse("::ffff:10.1.2.0/120", &c) == 0);
    CHECK(c.net.family == AF_INET && c.bits == 24);
    CHECK(cidr_parse("::ffff:10.0.0.0/96", &c) == 0 && c.bits == 0);
    CHECK(cidr_parse("::ffff:1.2.3.4", &c) == 0);
    CHECK(c.net.family == AF_INET && c.bits == 32);
    CHECK(cidr_parse("::ffff:10.0.0.0/128", &c) == 0 && c.bits == 32);

    /* Shorter than /96 would reach past the mapped prefix. */
    CHECK(cidr_parse("::ffff:10.0.0.0/95", &c) == -1);
    CHECK(cidr_parse("::ffff:10.0.0.0/129", &c) == -1);
    CHECK(cidr_parse("::ffff:10.0.0.0/8", &c) == -1);

    /* A mapped network matches plain IPv4 addresses and mapped ones. */
    CHECK(inside("::ffff:10.0.0.0/104", "10.200.0.1") == 1);
    CHECK(inside("::ffff:10.0.0.0/104", "::ffff:10.200.0.1") == 1);
    CHECK(inside("10.0.0.0/8", "::ffff:10.200.0.1") == 1);
    CHECK(inside("10.0.0.0/8", "::ffff:11.0.0.1") == 0);
}


static void
parse_should_reject_garbage(void)
{
    static const char *const bad[] = {
        "", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129",
        "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0/ 8",
        "10.0.0.0 /8", "10.0.0.0//8", "10.0.0.0/8/8", "10.0.0/8",
        "10.0.0.0/99999999999999999999", "10.0.0.0/0x8", "garbage/8",
        "2001:db8::/4294967328", "2001:db8:::/32", "@apple",
        "0000000000000000000000000000000000000000000000000000000000001.2.3.4",
        "1.2.3.4,5.6.7.8"
    };
    struct cidr c;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(cidr_parse(bad[i], &c) == -1);
        if (cidr_parse(bad[i], &c) != -1) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        }
    }
}


static void
contains_should_respect_prefix_edges(void)
{
    /* /0 holds every address of its family and none of the other. */
    CHECK(inside("0.0.0.0/0", "255.255.255.255") == 1);
    CHECK(inside("0.0.0.0/0", "0.0.0.0") == 1);
    CHECK(inside("0.0.0.0/0", "2001:db8::1") == 0);
    CHECK(inside("::/0", "2001:db8::1") == 1);
    CHECK(inside("::/0", "192.0.2.1") == 0);
    CHECK(inside("::/0", "::ffff:192.0.2.1") == 0);

    /* /8 */
    CHECK(inside("17.0.0.0/8", "17.0.0.0") == 1);
    CHECK(inside("17.0.0.0/8", "17.255.255.255") == 1);
    CHECK(inside("17.0.0.0/8", "16.255.255.255") == 0);
    CHECK(inside("17.0.0.0/8", "18.0.0.0") == 0);

    /* /24 */
    CHECK(inside("192.0.2.0/24", "192.0.2.0") == 1);
    CHECK(inside("192.0.2.0/24", "192.0.2.255") == 1);
    CHECK(inside("192.0.2.0/24", "192.0.3.0") == 0);
    CHECK(inside("192.0.2.0/24", "192.0.1.255") == 0);

    /* Prefixes off a byte boundary. */
    CHECK(inside("192.0.2.0/23", "192.0.3.200") == 1);
    CHECK(inside("192.0.2.0/23", "192.0.4.0") == 0);
    CHECK(inside("40.92.0.0/15", "40.93.255.255") == 1);
    CHECK(inside("40.92.0.0/15", "40.94.0.0") == 0);
    CHECK(inside("104.47.0.0/17", "104.47.127.255") == 1);
    CHECK(inside("104.47.0.0/17", "104.47.128.0") == 0);

    /* /32 */
    CHECK(inside("192.0.2.7/32", "192.0.2.7") == 1);
    CHECK(inside("192.0.2.7/32", "192.0.2.6") == 0);
    CHECK(inside("192.0.2.7/32", "192.0.2.8") == 0);

    /* /48 */
    CHECK(inside("2001:db8:1::/48", "2001:db8:1::") == 1);
    CHECK(inside("2001:db8:1::/48", "2001:db8:1:ffff:ffff:ffff:ffff:ffff")
          == 1);
    CHECK(inside("2001:db8:1::/48", "2001:db8:2::") == 0);
    CHECK(inside("2001:db8:1::/48", "2001:db8:0:ffff::1") == 0);

    /* /128 */
    CHECK(inside("2001:db8::5/128", "2001:db8::5") == 1);
    CHECK(inside("2001:db8::5/128", "2001:db8::4") == 0);
    CHECK(inside("2001:db8::5/128", "2001:db8::6") == 0);

    /* The family decides before the bytes do. */
    CHECK(inside("0.0.0.0/8", "::1") == 0);
    CHECK(inside("::/8", "0.0.0.1") == 0);
}


static void
sockaddr_should_convert_ip_families_only(void)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
    struct cidr_addr a;

    memset(&in4, 0, sizeof(in4));
    in4.sin_family = AF_INET;
    inet_pton(AF_INET, "198.51.100.9", &in4.sin_addr);
    CHECK(cidr_addr_from_sockaddr((struct sockaddr *) &in4, &a) == 0);
    CHECK(a.family == AF_INET);
    CHECK(memcmp(a.bytes, "\xc6\x33\x64\x09", 4) == 0);

    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:198.51.100.9", &in6.sin6_addr);
    CHECK(cidr_addr_from_sockaddr((struct sockaddr *) &in6, &a) == 0);
    CHECK(a.family == AF_INET);
    CHECK(memcmp(a.bytes, "\xc6\x33\x64\x09", 4) == 0);

    inet_pton(AF_INET6, "2001:db8::9", &in6.sin6_addr);
    CHECK(cidr_addr_from_sockaddr((struct sockaddr *) &in6, &a) == 0);
    CHECK(a.family == AF_INET6);
    CHECK(a.bytes[15] == 9);

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    CHECK(cidr_addr_from_sockaddr((struct sockaddr *) &un, &a) == -1);
    CHECK(cidr_addr_from_sockaddr(NULL, &a) == -1);
}


int
main(void)
{
    addr_should_parse_ipv4_and_ipv6();
    addr_should_unmap_ipv4_mapped();
    addr_should_reject_garbage();
    parse_should_read_prefix_lengths();
    parse_should_clear_host_bits();
    parse_should_map_ipv4_mapped_networks();
    parse_should_reject_garbage();
    contains_should_respect_prefix_edges();
    sockaddr_should_convert_ip_families_only();
    return check_done();
}
