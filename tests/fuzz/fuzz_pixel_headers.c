/*
 * fuzz_pixel_headers.c - the request headers the pixel route reads
 * before it stores an open: the Referer host (pixel_referer_host()) and
 * the client behind trusted proxies from X-Forwarded-For
 * (pixel_client_addr()), then the stored network (pixel_addr_truncate()).
 *
 * The whole input is used as both header values.
 */
#include "tests/fuzz/fuzz.h"

#include <ctype.h>

#include "server/cidr.h"
#include "server/pixel.h"
#include "store/store.h"

static struct cidr trusted[2];
static struct cidr_addr peer;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    /* The peer is a trusted proxy, so X-Forwarded-For is walked. */
    if (cidr_parse("10.0.0.0/8", &trusted[0]) != 0
        || cidr_parse("2001:db8::/32", &trusted[1]) != 0
        || cidr_addr_parse("10.1.2.3", &peer) != 0) {
        abort();
    }
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = fuzz_cstr(data, size);
    char host[STORE_REFERER_MAX];
    char addr[STORE_ADDR_MAX];
    struct cidr_addr client;

    /* A host is "" or lower-case letters, digits, '-' and '.' only. */
    pixel_referer_host(value, host);
    FUZZ_ASSERT(strlen(host) < STORE_REFERER_MAX);
    for (const char *p = host; *p != '\0'; p++) {
        FUZZ_ASSERT(islower((unsigned char) *p)
                    || isdigit((unsigned char) *p) || *p == '-'
                    || *p == '.');
    }

    pixel_client_addr(&peer, value, trusted, 2, &client);
    pixel_addr_truncate(&client, addr);
    FUZZ_ASSERT(strlen(addr) < STORE_ADDR_MAX);
    free(value);
    return 0;
}
