/*
 * cidr.c - IP networks and membership (see cidr.h).
 */
#include "server/cidr.h"

#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

static const uint8_t v4_mapped_prefix[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};


/* Turns ::ffff:a.b.c.d into the IPv4 address a.b.c.d. */
static void
unmap_v4(struct cidr_addr *a)
{
    if (a->family == AF_INET6
        && memcmp(a->bytes, v4_mapped_prefix, 12) == 0) {
        memmove(a->bytes, a->bytes + 12, 4);
        memset(a->bytes + 4, 0, 12);
        a->family = AF_INET;
    }
}


int
cidr_addr_parse(const char *s, struct cidr_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, out->bytes) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->bytes) == 1) {
        out->family = AF_INET6;
        unmap_v4(out);
        return 0;
    }
    return -1;
}


int
cidr_addr_from_sockaddr(const struct sockaddr *sa, struct cidr_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa != NULL && sa->sa_family == AF_INET) {
        memcpy(out->bytes, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        out->family = AF_INET;
        return 0;
    }
    if (sa != NULL && sa->sa_family == AF_INET6) {
        memcpy(out->bytes, &((const struct sockaddr_in6 *) sa)->sin6_addr,
               16);
        out->family = AF_INET6;
        unmap_v4(out);
        return 0;
    }
    return -1;
}


static void
clear_host_bits(struct cidr *c)
{
    unsigned total = c->net.family == AF_INET ? 32 : 128;

    for (unsigned bit = c->bits; bit < total; bit++) {
        c->net.bytes[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    }
}


int
cidr_parse(const char *s, struct cidr *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t len = slash != NULL ? (size_t) (slash - s) : strlen(s);
    unsigned max;

    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (cidr_addr_parse(buf, &out->net) != 0) {
        return -1;
    }

    /* A mapped address was unmapped: its prefix length shrinks by 96. */
    max = out->net.family == AF_INET ? 32 : 128;
    int mapped = out->net.family == AF_INET && strchr(buf, ':') != NULL;
    out->bits = max;
    if (slash != NULL) {
        char *end;
        unsigned long bits;

        if (slash[1] < '0' || slash[1] > '9') {
            return -1;
        }
        bits = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || bits > (mapped ? 128 : max)
            || (mapped && bits < 96)) {
            return -1;
        }
        out->bits = (unsigned) (mapped ? bits - 96 : bits);
    }

    clear_host_bits(out);
    return 0;
}


int
cidr_contains(const struct cidr *c, const struct cidr_addr *a)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;

    if (c->net.family != a->family
        || memcmp(c->net.bytes, a->bytes, full) != 0) {
        return 0;
    }
    if (rest == 0) {
        return 1;
    }
    uint8_t mask = (uint8_t) (0xffu << (8 - rest));
    return (c->net.bytes[full] & mask) == (a->bytes[full] & mask);
}
