/*
 * fuzz_token.c - token_verify() on arbitrary bytes.
 *
 * Two keys (ids 1 and 2, fixed bytes) so the seeds in corpus/token/ can
 * hold real tokens for the fuzzer to mutate.  Beyond "no crash", a token
 * that verifies must be exactly the one token_sign() makes for its id
 * and key: the encoding is canonical, so nobody can make a second valid
 * token for a message.
 */
#include "tests/fuzz/fuzz.h"

#include <sodium.h>

#include "server/keys.h"
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

    /* The keys the real tokens in corpus/token/ were signed with. */
    ring.n = 2;
    ring.current = 0;
    ring.ids[0] = 1;
    ring.ids[1] = 2;
    memset(ring.keys[0], 0x11, KEYS_KEY_BYTES);
    memset(ring.keys[1], 0x22, KEYS_KEY_BYTES);
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *) data;
    char again[TOKEN_LEN + 1];
    struct keyring one = ring;
    uint64_t id = 0;
    int same = 0;

    if (token_verify(&ring, s, size, &id) != 0) {
        return 0;
    }

    /* Re-signed with one of the keys, it must come out the same. */
    FUZZ_ASSERT(size == TOKEN_LEN);
    for (one.current = 0; one.current < ring.n; one.current++) {
        token_sign(&one, id, again);
        same |= memcmp(again, s, TOKEN_LEN) == 0;
    }
    FUZZ_ASSERT(same);
    return 0;
}
