/*
 * keys.h - signing keys and the API key, read from files.
 *
 * A signing key file holds one key per line, "ID HEX", where ID is 1..255
 * and HEX is 64 hex digits; '#' starts a comment.  The last key listed is
 * the current one (it signs new tokens); every listed key verifies.  A
 * single-key file from an older Beacon is such a file.  Files are
 * created 0600; keys_rotate() and keys_remove() replace a file whole
 * (a temporary file renamed over it), so a reader never sees half of one.
 *
 * A running server keeps its keyring in a struct keys_live: pixel and API
 * threads hold it for the length of one sign or verify while SIGHUP may
 * swap in a keyring read again from the file.
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
 * Adds a fresh key to the existing file path and makes it the current
 * one; the others stay and keep verifying.  Its id is the one after the
 * highest listed, or when that would pass 255 the lowest unused one;
 * *new_id receives it.  Concurrent calls on one file are serialised
 * (each sees the other's key).  -1 with err: no such file, a bad file,
 * or KEYS_MAX keys already.
 */
int keys_rotate(const char *path, unsigned *new_id, char *err,
                size_t errlen);

/*
 * Removes key id from the file path.  Refuses an id the file does not
 * list and the current key (rotate first: a file always has a key that
 * signs).  -1 with err.
 */
int keys_remove(const char *path, unsigned id, char *err, size_t errlen);

/*
 * The keyring of a running server, swappable while other threads use it.
 * keys_live_hold() returns the keyring in force and keeps it alive (a
 * read lock) until keys_live_release(); hold it briefly, and never twice
 * on one thread.
 */
struct keys_live;

/* A holder starting with a copy of kr.  -1 with err. */
int keys_live_new(struct keys_live **out, const struct keyring *kr,
                  char *err, size_t errlen);

/* Wipes and frees; no thread may hold it.  NULL ok. */
void keys_live_free(struct keys_live *kl);

/* Puts a copy of kr in force; the previous keyring is wiped.  -1 (out
 * of memory, err says so) leaves the previous one in force. */
int keys_live_set(struct keys_live *kl, const struct keyring *kr,
                  char *err, size_t errlen);

/* Reads path and puts it in force; on any error the keyring in force
 * stays and err says why. */
int keys_live_reload(struct keys_live *kl, const char *path, char *err,
                     size_t errlen);

const struct keyring *keys_live_hold(struct keys_live *kl);
void keys_live_release(struct keys_live *kl);

/*
 * The API key: one line in a 0600 file, created with a random value when
 * missing.  out receives it without the newline.
 */
int keys_api_load_or_create(const char *path, char *out, size_t outlen,
                            int *created, char *err, size_t errlen);

#endif
