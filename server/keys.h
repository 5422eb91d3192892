/*
 * keys.h - signing keys and the API key, read from files.
 *
 * A signing key file holds one key per line, "ID HEX", where ID is 1..255
 * and HEX is 64 hex digits; '#' starts a comment.  The last key listed is
 * the current one (it signs new tokens); every listed key verifies.  Files
 * are created 0600 and never overwritten.
 */
#ifndef BEACON_KEYS_H
#define BEACON_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_KEY_BYTES 32
#define KEYS_MAX 16
#define KEYS_API_KEY_MAX 128

struct keyring {
    size_t n;
    uint8_t current;                    /* index into ids/keys */
    uint8_t ids[KEYS_MAX];
    uint8_t keys[KEYS_MAX][KEYS_KEY_BYTES];
};

/* Loads path into kr.  -1 with a message in err on any problem. */
int keys_load(struct keyring *kr, const char *path, char *err,
              size_t errlen);

/*
 * Creates path (mode 0600, failing if it exists) holding one fresh key
 * with id 1.
 */
int keys_create(const char *path, char *err, size_t errlen);

/* Loads path, creating it first when it does not exist. */
int keys_load_or_create(struct keyring *kr, const char *path, int *created,
                        char *err, size_t errlen);

/* Wipes the key material. */
void keys_clear(struct keyring *kr);

/*
 * The API key: one line in a 0600 file, created with a random value when
 * missing.  out receives it without the newline.
 */
int keys_api_load_or_create(const char *path, char *out, size_t outlen,
                            int *created, char *err, size_t errlen);

#endif
