/*
 * token.c - signs and verifies pixel tokens (layout in token.h).
 *
 * token_verify() runs on every pixel fetch, so it decodes with a table
 * rather than a general base64 routine, rejects on length before any
 * work, and never allocates.  A non-canonical encoding (stray bits in
 * the last character) is rejected, so each message has exactly one
 * valid token per key.
 */
#include "server/token.h"

#include <string.h>

#include <sodium.h>

#include "server/keys.h"

#define RAW_LEN 26              /* version, key id, message id, MAC */
#define SIGNED_LEN 10           /* the bytes the MAC covers */
#define MAC_LEN 16

/*
 * Character to 6-bit value plus one; 0 marks a character outside the
 * alphabet.  Built at compile time so the pixel threads share it freely.
 */
static const uint8_t b64url_rev[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
    ['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
    ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
    ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
    ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
    ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
    ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64
};


static void
mac_compute(const uint8_t key[KEYS_KEY_BYTES], const uint8_t *msg,
            uint8_t mac[MAC_LEN])
{
    crypto_generichash(mac, MAC_LEN, msg, SIGNED_LEN, key, KEYS_KEY_BYTES);
}


void
token_sign(const struct keyring *kr, uint64_t message_id,
           char out[TOKEN_LEN + 1])
{
    uint8_t raw[RAW_LEN];

    raw[0] = TOKEN_VERSION;
    raw[1] = kr->ids[kr->current];
    for (int i = 0; i < 8; i++) {
        raw[2 + i] = (uint8_t) (message_id >> (56 - 8 * i));
    }
    mac_compute(kr->keys[kr->current], raw, raw + SIGNED_LEN);

    sodium_bin2base64(out, TOKEN_LEN + 1, raw, RAW_LEN,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}


/* Decodes exactly TOKEN_LEN characters into RAW_LEN bytes; -1 if bad. */
static int
decode(const char *s, uint8_t raw[RAW_LEN])
{
    uint32_t acc = 0;
    size_t bits = 0;
    size_t n = 0;

    for (size_t i = 0; i < TOKEN_LEN; i++) {
        uint8_t v = b64url_rev[(uint8_t) s[i]];

        if (v == 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t) (v - 1);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[n++] = (uint8_t) (acc >> bits);
        }
    }

    /* The bits left over must be zero for the encoding to be canonical. */
    return (acc & ((1u << bits) - 1)) == 0 ? 0 : -1;
}


int
token_verify(const struct keyring *kr, const char *s, size_t len,
             uint64_t *message_id)
{
    uint8_t raw[RAW_LEN];
    uint8_t mac[MAC_LEN];
    const uint8_t *key = NULL;
    uint64_t id = 0;
    int ok;

    if (len != TOKEN_LEN || decode(s, raw) != 0 || raw[0] != TOKEN_VERSION) {
        return -1;
    }

    for (size_t i = 0; i < kr->n; i++) {
        if (kr->ids[i] == raw[1]) {
            key = kr->keys[i];
        }
    }
    if (key == NULL) {
        return -1;
    }

    mac_compute(key, raw, mac);
    ok = crypto_verify_16(mac, raw + SIGNED_LEN) == 0;
    sodium_memzero(mac, sizeof(mac));
    if (!ok) {
        return -1;
    }

    for (int i = 0; i < 8; i++) {
        id = (id << 8) | raw[2 + i];
    }
    *message_id = id;
    return 0;
}


void
token_sign_live(struct keys_live *kl, uint64_t message_id,
                char out[TOKEN_LEN + 1])
{
    token_sign(keys_live_hold(kl), message_id, out);
    keys_live_release(kl);
}


int
token_verify_live(struct keys_live *kl, const char *s, size_t len,
                  uint64_t *message_id)
{
    int rc;

    /* Cheap refusals first, without the lock. */
    if (len != TOKEN_LEN) {
        return -1;
    }
    rc = token_verify(keys_live_hold(kl), s, len, message_id);
    keys_live_release(kl);
    return rc;
}
