/*
 * domain.c - the recipient domain an address reports under.
 *
 * Exports domain_from_address() and domain_normalize().  The domain of
 * an address is what follows its last '@' (a quoted local part may itself
 * contain '@').  It is checked for the
 * mistakes libidn2 lets through (spaces, empty labels), lower-cased, and
 * converted to its ASCII form with UTS #46 processing.
 */
#include "api/domain.h"

#include "api/api_internal.h"

#include <idn2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN_NAME_MAX 253     /* RFC 1035, without the trailing dot */
#define DOMAIN_LABEL_MAX 63

static char
ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}


/*
 * Checks the domain as typed, before conversion: libidn2 passes spaces,
 * control characters and empty labels through unchanged.  n excludes a
 * trailing dot already dropped by the caller.
 */
static int
check_input(const char *d, size_t n, char *err, size_t errlen)
{
    size_t i;

    if (n == 0)
        return api_fail(err, errlen, "address has no domain after '@'");
    if (d[0] == '.')
        return api_fail(err, errlen, "domain starts with a dot");
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) d[i];

        if (c <= 0x20 || c == 0x7f)
            return api_fail(err, errlen,
                        "domain contains a space or control character");
        if (c == '.' && i + 1 < n && d[i + 1] == '.')
            return api_fail(err, errlen, "domain has an empty label");
    }
    return 0;
}


static int
label_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
           || c == '_';
}


/*
 * Checks the converted name: labels of 1..63 letters, digits, '-' or '_'
 * (underscores occur in real host names), at most 253 characters.
 */
static int
check_ascii(const char *a, char *err, size_t errlen)
{
    size_t label = 0;
    const char *p;

    if (*a == '\0')
        return api_fail(err, errlen, "address has no domain after '@'");
    if (strlen(a) > DOMAIN_NAME_MAX)
        return api_fail(err, errlen, "domain is longer than %d characters",
                    DOMAIN_NAME_MAX);
    for (p = a; *p != '\0'; p++) {
        if (*p == '.') {
            if (label == 0)
                return api_fail(err, errlen, "domain has an empty label");
            label = 0;
            continue;
        }
        if (!label_char_ok(*p))
            return api_fail(err, errlen,
                            "domain contains an invalid character");
        if (++label > DOMAIN_LABEL_MAX)
            return api_fail(err, errlen, "a domain label is longer than %d "
                        "characters", DOMAIN_LABEL_MAX);
    }
    if (label == 0)
        return api_fail(err, errlen, "domain has an empty label");
    return 0;
}


/*
 * Converts the lower-cased UTF-8 name to ASCII: non-transitional UTS #46
 * first (IDNA 2008: "faß.de" stays distinct from "fass.de"), then
 * transitional for names only the older rules accept.  *out is from
 * libidn2's allocator; release it with idn2_free().
 */
static int
to_ascii(const char *name, char **out, char *err, size_t errlen)
{
    int rc;

    *out = NULL;
    rc = idn2_to_ascii_8z(name, out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK)
        rc = idn2_to_ascii_8z(name, out, IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
    if (rc != IDN2_OK) {
        *out = NULL;
        return api_fail(err, errlen, "domain is not a valid name: %s",
                    idn2_strerror(rc));
    }
    return 0;
}


/* Copies the first n bytes of s, ASCII lower-cased, into a new string. */
static char *
lower_copy(const char *s, size_t n)
{
    char *copy = malloc(n + 1);
    size_t i;

    if (copy == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        copy[i] = ascii_lower(s[i]);
    copy[n] = '\0';
    return copy;
}


/*
 * The shared half of both entry points: d is the domain as typed, after
 * the '@' of an address.  The messages for an empty name speak of an
 * address: domain_normalize() refuses an empty name before this.
 */
static int
normalize(const char *d, char *out, size_t outlen, char *err, size_t errlen)
{
    char *name = NULL, *ascii = NULL;
    size_t n = strlen(d);
    int rc = -1;

    if (n > 0 && d[n - 1] == '.')
        n--;
    if (check_input(d, n, err, errlen) != 0)
        return -1;

    name = lower_copy(d, n);
    if (name == NULL) {
        api_fail(err, errlen, "out of memory");
        goto out;
    }
    if (to_ascii(name, &ascii, err, errlen) != 0
        || check_ascii(ascii, err, errlen) != 0)
        goto out;

    if (strlen(ascii) >= outlen) {
        api_fail(err, errlen, "domain does not fit in %zu bytes", outlen);
        goto out;
    }
    memcpy(out, ascii, strlen(ascii) + 1);
    rc = 0;

out:
    idn2_free(ascii);
    free(name);
    return rc;
}


int
domain_from_address(const char *address, char *out, size_t outlen,
                    char *err, size_t errlen)
{
    const char *at;

    at = address != NULL ? strrchr(address, '@') : NULL;
    if (at == NULL)
        return api_fail(err, errlen, "address has no '@'");
    if (at == address)
        return api_fail(err, errlen, "address has no local part before '@'");
    /* Only a quoted local part ("a b"@example.com) may hold spaces. */
    if (address[0] != '"' && memchr(address, ' ', (size_t) (at - address)))
        return api_fail(err, errlen, "the local part contains a space");
    return normalize(at + 1, out, outlen, err, errlen);
}


int
domain_normalize(const char *domain, char *out, size_t outlen, char *err,
                 size_t errlen)
{
    if (domain == NULL || domain[0] == '\0')
        return api_fail(err, errlen, "domain is empty");
    if (strchr(domain, '@') != NULL)
        return api_fail(err, errlen, "a domain has no '@'");
    return normalize(domain, out, outlen, err, errlen);
}
