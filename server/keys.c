/*
 * keys.c - reads and creates the signing key file and the API key file.
 *
 * Both files are secrets: they are created with mode 0600 through
 * O_EXCL (never overwritten), and key bytes are wiped from buffers once
 * copied where they belong.
 */
#include "server/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define LINE_MAX_LEN 256


/*
 * Creates path holding text, mode 0600, never replacing a file.  The text
 * goes to a private temporary file first and is then linked into place,
 * so a process that finds path sees it whole.  On failure errno tells
 * why (EEXIST: path was already there).
 */
static int
write_new_file(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[4096];
    size_t len = strlen(text);
    ssize_t n;
    int fd, e;

    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path,
                          (long) getpid()) >= sizeof(tmp)) {
        snprintf(err, errlen, "path too long: %.200s", path);
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(e));
        errno = e;
        return -1;
    }

    n = write(fd, text, len);
    e = n < 0 ? errno : (size_t) n != len ? EIO : 0;
    if (e == 0 && fsync(fd) != 0) {
        e = errno;
    }
    if (close(fd) != 0 && e == 0) {
        e = errno;
    }
    if (e == 0 && link(tmp, path) != 0) {
        e = errno;
    }
    unlink(tmp);
    if (e != 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    return 0;
}


int
keys_create(const char *path, char *err, size_t errlen)
{
    uint8_t key[KEYS_KEY_BYTES];
    char hex[KEYS_KEY_BYTES * 2 + 1];
    char text[LINE_MAX_LEN];
    int rc;

    randombytes_buf(key, sizeof(key));
    sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
    snprintf(text, sizeof(text),
             "# Beacon signing keys, one per line: ID HEX.\n"
             "# Every key verifies; the last one signs new tokens.\n"
             "1 %s\n", hex);

    rc = write_new_file(path, text, err, errlen);

    sodium_memzero(key, sizeof(key));
    sodium_memzero(hex, sizeof(hex));
    sodium_memzero(text, sizeof(text));
    return rc;
}


/* Parses "ID HEX" into kr's next slot.  -1 with err on a bad line. */
static int
parse_key_line(struct keyring *kr, const char *line, const char *path,
               int lineno, char *err, size_t errlen)
{
    char hex[KEYS_KEY_BYTES * 2 + 2];
    size_t bin_len;
    unsigned id;
    int used;

    if (sscanf(line, "%u %65s %n", &id, hex, &used) < 2
        || line[used] != '\0' || id < 1 || id > 255
        || strlen(hex) != KEYS_KEY_BYTES * 2) {
        snprintf(err, errlen,
                 "%s:%d: expected \"ID HEX\" with ID 1..255 and 64 hex "
                 "digits", path, lineno);
        sodium_memzero(hex, sizeof(hex));
        return -1;
    }

    for (size_t i = 0; i < kr->n; i++) {
        if (kr->ids[i] == id) {
            snprintf(err, errlen, "%s:%d: key id %u listed twice", path,
                     lineno, id);
            sodium_memzero(hex, sizeof(hex));
            return -1;
        }
    }

    if (kr->n == KEYS_MAX) {
        snprintf(err, errlen, "%s: more than %d keys", path, KEYS_MAX);
        sodium_memzero(hex, sizeof(hex));
        return -1;
    }

    if (sodium_hex2bin(kr->keys[kr->n], KEYS_KEY_BYTES, hex, strlen(hex),
                       NULL, &bin_len, NULL) != 0
        || bin_len != KEYS_KEY_BYTES) {
        snprintf(err, errlen, "%s:%d: key is not 64 hex digits", path,
                 lineno);
        sodium_memzero(hex, sizeof(hex));
        return -1;
    }

    sodium_memzero(hex, sizeof(hex));
    kr->ids[kr->n] = (uint8_t) id;
    kr->current = (uint8_t) kr->n;
    kr->n++;
    return 0;
}


int
keys_load(struct keyring *kr, const char *path, char *err, size_t errlen)
{
    char line[LINE_MAX_LEN];
    int lineno = 0;
    int rc = 0;
    FILE *f;

    memset(kr, 0, sizeof(*kr));
    f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }

    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        char *p = line;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '\0' || *p == '#') {
            continue;
        }
        rc = parse_key_line(kr, p, path, lineno, err, errlen);
    }

    fclose(f);
    sodium_memzero(line, sizeof(line));
    if (rc == 0 && kr->n == 0) {
        snprintf(err, errlen, "%s holds no key", path);
        rc = -1;
    }
    if (rc != 0) {
        keys_clear(kr);
    }
    return rc;
}


int
keys_load_or_create(struct keyring *kr, const char *path, int *created,
                    char *err, size_t errlen)
{
    *created = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        /* Another process starting at the same moment may win the race:
         * then its file is the one to read. */
        if (keys_create(path, err, errlen) == 0) {
            *created = 1;
        } else if (errno != EEXIST) {
            return -1;
        }
    }
    return keys_load(kr, path, err, errlen);
}


void
keys_clear(struct keyring *kr)
{
    sodium_memzero(kr, sizeof(*kr));
}


static int
api_key_create(const char *path, char *err, size_t errlen)
{
    uint8_t raw[32];
    char text[64];
    int rc;

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(text, sizeof(text) - 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    strcat(text, "\n");

    rc = write_new_file(path, text, err, errlen);

    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(text, sizeof(text));
    return rc;
}


int
keys_api_load_or_create(const char *path, char *out, size_t outlen,
                        int *created, char *err, size_t errlen)
{
    size_t len;
    FILE *f;

    *created = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        if (api_key_create(path, err, errlen) == 0) {
            *created = 1;
        } else if (errno != EEXIST) {
            return -1;
        }
    }

    f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(out, (int) outlen, f) == NULL) {
        out[0] = '\0';
    }
    fclose(f);

    out[strcspn(out, "\r\n")] = '\0';
    len = strlen(out);
    if (len < 16 || len >= KEYS_API_KEY_MAX) {
        snprintf(err, errlen, "%s: the API key must be 16 to %d characters "
                 "on the first line", path, KEYS_API_KEY_MAX - 1);
        sodium_memzero(out, outlen);
        return -1;
    }
    return 0;
}
