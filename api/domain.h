/* domain.h - the recipient domain an address reports under. */
#ifndef BEACON_DOMAIN_H
#define BEACON_DOMAIN_H

#include <stddef.h>

/*
 * The part of address after its last '@', lower-cased, a trailing dot
 * removed, internationalised labels in their ASCII (xn--) form.
 * Subdomains are kept as given.  Returns 0, or -1 with a reason in err
 * when there is no local part, no domain, or the domain is not valid.
 */
int domain_from_address(const char *address, char *out, size_t outlen,
                        char *err, size_t errlen);

/*
 * The same normal form for a domain given on its own ("Mail.Yahoo.COM",
 * "b\xc3\xbccher.example").  Returns 0, or -1 with a reason in err.
 */
int domain_normalize(const char *domain, char *out, size_t outlen,
                     char *err, size_t errlen);

#endif
