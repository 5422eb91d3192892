/*
 * cidr.h - IP networks: parsing "192.0.2.0/24" or "2001:db8::/32" and
 * asking whether an address lies inside.  IPv4-mapped IPv6 addresses
 * (::ffff:192.0.2.1) are treated as the IPv4 address they carry.
 */
#ifndef BEACON_CIDR_H
#define BEACON_CIDR_H

#include <stdint.h>

#include <sys/socket.h>

struct cidr_addr {
    int family;                 /* AF_INET or AF_INET6 */
    uint8_t bytes[16];          /* 4 used for AF_INET */
};

struct cidr {
    struct cidr_addr net;       /* host bits cleared */
    unsigned bits;
};

/* Parses an address in text.  0, or -1 when it is not one. */
int cidr_addr_parse(const char *s, struct cidr_addr *out);

/* Takes a socket address.  0, or -1 for a family other than IP. */
int cidr_addr_from_sockaddr(const struct sockaddr *sa,
                            struct cidr_addr *out);

/*
 * Parses "ADDR/BITS", or a bare address (a network of one).  0, or -1
 * when s is not a network.  Host bits set past BITS are cleared.
 */
int cidr_parse(const char *s, struct cidr *out);

/* Non-zero when a lies inside c. */
int cidr_contains(const struct cidr *c, const struct cidr_addr *a);

#endif
