/*
 * token.h - the signed, URL-safe name of one message.
 *
 * Binary layout (26 bytes), then base64url without padding (35 chars):
 *   version (1) | key id (1) | message id (8, big-endian) | MAC (16)
 * The MAC is keyed BLAKE2b (crypto_generichash) with a 128-bit output over
 * the first 10 bytes, checked in constant time.
 */
#ifndef BEACON_TOKEN_H
#define BEACON_TOKEN_H

#include <stddef.h>
#include <stdint.h>

struct keyring;
struct keys_live;

#define TOKEN_VERSION 1
#define TOKEN_MAX_LEN 48        /* longest token accepted, in characters */
#define TOKEN_LEN 35            /* length of tokens this version makes */

/* Writes the token for message_id signed with the current key. */
void token_sign(const struct keyring *kr, uint64_t message_id,
                char out[TOKEN_LEN + 1]);

/*
 * Checks the token s (len characters, no NUL needed).  Returns 0 and sets
 * *message_id when it is well-formed, of a known version and key, and its
 * MAC verifies; -1 otherwise, saying nothing about why.
 */
int token_verify(const struct keyring *kr, const char *s, size_t len,
                 uint64_t *message_id) __attribute__((warn_unused_result));

/*
 * The same with the keyring in force in kl, held for the call: a reload
 * may swap it at any time (keys.h).
 */
void token_sign_live(struct keys_live *kl, uint64_t message_id,
                     char out[TOKEN_LEN + 1]);
int token_verify_live(struct keys_live *kl, const char *s, size_t len,
                      uint64_t *message_id)
    __attribute__((warn_unused_result));

#endif
