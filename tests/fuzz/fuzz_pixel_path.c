/*
 * fuzz_pixel_path.c - a request path through the server's routing: the
 * %HH decoding the library calls back (http_unescape()), the choice
 * between pixel, API and static files, and for a pixel path the token
 * it names (pixel_token_from_path(), then token_verify()).
 *
 * The input is the path as the request line carries it, up to the first
 * NUL (a C string is all the library hands over).
 */
#include "tests/fuzz/fuzz.h"

#include <sodium.h>

#include "api/api.h"
#include "server/http.h"
#include "server/keys.h"
#include "server/pixel.h"
#include "server/token.h"

static struct keyring ring;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    if (sodium_init() < 0) {
        abort();
    }
    ring.n = 1;
    ring.ids[0] = 1;
    memset(ring.keys[0], 0x11, KEYS_KEY_BYTES);
    return 0;
}


/* The checks on a pixel path once it is decoded. */
static void
check_pixel(const char *path, size_t len)
{
    const char *tok = NULL;
    size_t n = 0;
    uint64_t id;

    if (pixel_token_from_path(path, &tok, &n) != 0) {
        return;
    }

    /* The token lies inside the path, right after the prefix. */
    FUZZ_ASSERT(tok == path + strlen(PIXEL_PREFIX));
    FUZZ_ASSERT(n > 0 && n <= TOKEN_MAX_LEN);
    FUZZ_ASSERT(tok + n <= path + len);
    FUZZ_ASSERT(memchr(tok, '\0', n) == NULL);
    if (token_verify(&ring, tok, n, &id) == 0) {
        FUZZ_ASSERT(n == TOKEN_LEN);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = fuzz_cstr(data, size);
    size_t before = strlen(path);
    size_t len = http_unescape(path);

    /* Decoding only shrinks, and never makes a NUL (%00 stays). */
    FUZZ_ASSERT(len <= before);
    FUZZ_ASSERT(strlen(path) == len);

    if (strncmp(path, PIXEL_PREFIX, strlen(PIXEL_PREFIX)) == 0) {
        check_pixel(path, len);
    } else {
        (void) api_owns_path(path);
    }
    free(path);
    return 0;
}
