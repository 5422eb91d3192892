/*
 * keys.c - reads, creates, rotates and prunes the signing key file, keeps
 * the running server's keyring, and reads the API key file.
 *
 * Both files are secrets: they are created with mode 0600 through
 * O_EXCL, a signing key file is only ever replaced whole by a 0600
 * temporary file renamed over it, and key bytes are wiped from buffers
 * once copied where they belong.
 */

/* pthread_rwlockattr_setkind_np(): a reload must not wait behind a
 * stream of pixel threads. */
#define _GNU_SOURCE

#include "server/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define LINE_MAX_LEN 256
#define PATH_LEN 4096
#define FILE_HEADER \
    "# Beacon signing keys, one per line: ID HEX.\n" \
    "# Every key verifies; the last one signs new tokens.\n"
/* The header, then KEYS_MAX lines of "ID HEX\n" at most. */
#define FILE_TEXT_MAX (sizeof(FILE_HEADER) + KEYS_MAX * 72)

struct keys_live {
    pthread_rwlock_t lock;
    struct keyring *kr;         /* in force; replaced, never changed */
};


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
    snprintf(text, sizeof(text), FILE_HEADER "1 %s\n", hex);

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


/* Reads the key lines of f (named path in messages) into kr. */
static int
load_stream(struct keyring *kr, FILE *f, const char *path, char *err,
            size_t errlen)
{
    char line[LINE_MAX_LEN];
    int lineno = 0;
    int rc = 0;

    memset(kr, 0, sizeof(*kr));
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

    sodium_memzero(line, sizeof(line));
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read %s", path);
        rc = -1;
    }
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
keys_load(struct keyring *kr, const char *path, char *err, size_t errlen)
{
    FILE *f;
    int rc;

    memset(kr, 0, sizeof(*kr));
    f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    rc = load_stream(kr, f, path, err, errlen);
    fclose(f);
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


/*
 * Opens path and takes an exclusive flock on it, for a read-modify-write
 * of the file.  A rename by the previous holder leaves this process
 * locking the old inode: when path no longer names the locked file, it
 * tries again on the new one.  The fd, or -1 with err.
 */
static int
lock_file(const char *path, char *err, size_t errlen)
{
    struct stat held, now;
    int fd;

    for (;;) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path,
                     strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX) != 0 || fstat(fd, &held) != 0) {
            snprintf(err, errlen, "cannot lock %s: %s", path,
                     strerror(errno));
            close(fd);
            return -1;
        }
        if (stat(path, &now) == 0 && now.st_dev == held.st_dev
            && now.st_ino == held.st_ino) {
            return fd;
        }
        close(fd);
    }
}


/* Reads the locked file fd (named path) into kr. */
static int
load_fd(struct keyring *kr, int fd, const char *path, char *err,
        size_t errlen)
{
    int copy = dup(fd);
    FILE *f;
    int rc;

    f = copy >= 0 ? fdopen(copy, "r") : NULL;
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        if (copy >= 0) {
            close(copy);
        }
        return -1;
    }
    rc = load_stream(kr, f, path, err, errlen);
    fclose(f);
    return rc;
}


/* Appends key i of kr as a line "ID HEX" at text + *used. */
static void
format_line(const struct keyring *kr, size_t i, char *text, size_t len,
            size_t *used)
{
    char hex[KEYS_KEY_BYTES * 2 + 1];
    int n;

    if (*used >= len) {
        return;
    }
    sodium_bin2hex(hex, sizeof(hex), kr->keys[i], KEYS_KEY_BYTES);
    n = snprintf(text + *used, len - *used, "%u %s\n",
                 (unsigned) kr->ids[i], hex);
    *used = n > 0 ? *used + (size_t) n : len;
    sodium_memzero(hex, sizeof(hex));
}


/*
 * Writes kr as a key file: the others in their order, the current key
 * last (that is what makes it current).  -1 if text is too short.
 */
static int
format_file(const struct keyring *kr, char *text, size_t len)
{
    size_t used = 0;

    used = (size_t) snprintf(text, len, "%s", FILE_HEADER);
    for (size_t i = 0; i < kr->n; i++) {
        if (i != kr->current) {
            format_line(kr, i, text, len, &used);
        }
    }
    format_line(kr, kr->current, text, len, &used);
    return used < len ? 0 : -1;
}


/* Makes the rename of a file in path's directory durable. */
static void
sync_parent(const char *path)
{
    char dir[PATH_LEN];
    char *slash;
    int fd;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == dir) {
        slash[1] = '\0';
    } else if (slash != NULL) {
        *slash = '\0';
    } else {
        snprintf(dir, sizeof(dir), ".");
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void) fsync(fd);
        close(fd);
    }
}


/*
 * Replaces path with text: a 0600 temporary file beside it is written,
 * synced and renamed over path, so a reader sees the old file or the new
 * one, whole.
 */
static int
replace_file(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[PATH_LEN];
    size_t len = strlen(text);
    ssize_t n;
    int fd, e = 0;

    if ((size_t) snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path)
        >= sizeof(tmp)) {
        snprintf(err, errlen, "path too long: %.200s", path);
        return -1;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file beside %s: %s", path,
                 strerror(errno));
        return -1;
    }

    if (fchmod(fd, 0600) != 0) {
        e = errno;
    }
    n = e == 0 ? write(fd, text, len) : -1;
    if (e == 0) {
        e = n < 0 ? errno : (size_t) n != len ? EIO : 0;
    }
    if (e == 0 && fsync(fd) != 0) {
        e = errno;
    }
    if (close(fd) != 0 && e == 0) {
        e = errno;
    }
    if (e == 0 && rename(tmp, path) != 0) {
        e = errno;
    }
    if (e != 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot replace %s: %s", path, strerror(e));
        return -1;
    }
    sync_parent(path);
    return 0;
}


/* Whether kr lists id; *at receives its index when it does. */
static int
find_id(const struct keyring *kr, unsigned id, size_t *at)
{
    for (size_t i = 0; i < kr->n; i++) {
        if (kr->ids[i] == id) {
            *at = i;
            return 1;
        }
    }
    return 0;
}


/* The id after the highest listed, else the lowest free; 0 if none. */
static unsigned
next_id(const struct keyring *kr)
{
    unsigned top = 0;
    size_t at;

    for (size_t i = 0; i < kr->n; i++) {
        top = kr->ids[i] > top ? kr->ids[i] : top;
    }
    if (top < 255) {
        return top + 1;
    }
    for (unsigned id = 1; id <= 255; id++) {
        if (!find_id(kr, id, &at)) {
            return id;
        }
    }
    return 0;
}


/* Appends a fresh key to kr as its current key. */
static int
add_key(struct keyring *kr, const char *path, unsigned *new_id, char *err,
        size_t errlen)
{
    unsigned id = next_id(kr);

    if (kr->n == KEYS_MAX || id == 0) {
        snprintf(err, errlen, "%s already holds %d keys; remove one first "
                 "(beacon keygen --remove ID)", path, KEYS_MAX);
        return -1;
    }
    randombytes_buf(kr->keys[kr->n], KEYS_KEY_BYTES);
    kr->ids[kr->n] = (uint8_t) id;
    kr->current = (uint8_t) kr->n;
    kr->n++;
    *new_id = id;
    return 0;
}


/* Drops key id from kr, unless it is unknown or the current one. */
static int
drop_key(struct keyring *kr, const char *path, unsigned id, char *err,
         size_t errlen)
{
    size_t at;

    if (!find_id(kr, id, &at)) {
        snprintf(err, errlen, "%s has no key with id %u", path, id);
        return -1;
    }
    if (at == kr->current) {
        snprintf(err, errlen, "key %u is the current key of %s (it signs "
                 "new tokens); run beacon keygen --rotate first, then "
                 "remove it", id, path);
        return -1;
    }

    memmove(kr->ids + at, kr->ids + at + 1, kr->n - at - 1);
    memmove(kr->keys[at], kr->keys[at + 1],
            (kr->n - at - 1) * KEYS_KEY_BYTES);
    kr->n--;
    sodium_memzero(kr->keys[kr->n], KEYS_KEY_BYTES);
    kr->current = (uint8_t) (kr->current > at ? kr->current - 1
                                              : kr->current);
    return 0;
}


/*
 * The read-modify-write behind rotate and remove: under the file's lock,
 * loads it, applies the change (add when id is 0, else drop id), and
 * replaces it.
 */
static int
change_file(const char *path, unsigned id, unsigned *new_id, char *err,
            size_t errlen)
{
    struct keyring kr;
    char text[FILE_TEXT_MAX];
    int fd, rc;

    fd = lock_file(path, err, errlen);
    if (fd < 0) {
        return -1;
    }
    rc = load_fd(&kr, fd, path, err, errlen);
    if (rc == 0) {
        rc = id == 0 ? add_key(&kr, path, new_id, err, errlen)
                     : drop_key(&kr, path, id, err, errlen);
    }
    if (rc == 0 && format_file(&kr, text, sizeof(text)) != 0) {
        snprintf(err, errlen, "%s: the keys do not fit", path);
        rc = -1;
    }
    if (rc == 0) {
        rc = replace_file(path, text, err, errlen);
    }

    sodium_memzero(text, sizeof(text));
    keys_clear(&kr);
    close(fd);
    return rc;
}


int
keys_rotate(const char *path, unsigned *new_id, char *err, size_t errlen)
{
    *new_id = 0;
    return change_file(path, 0, new_id, err, errlen);
}


int
keys_remove(const char *path, unsigned id, char *err, size_t errlen)
{
    unsigned unused;

    if (id < 1 || id > 255) {
        snprintf(err, errlen, "key ids are 1..255, not %u", id);
        return -1;
    }
    return change_file(path, id, &unused, err, errlen);
}


/* Wipes and frees a keyring of a holder. */
static void
keyring_free(struct keyring *kr)
{
    if (kr != NULL) {
        keys_clear(kr);
        free(kr);
    }
}


int
keys_live_new(struct keys_live **out, const struct keyring *kr, char *err,
              size_t errlen)
{
    pthread_rwlockattr_t attr;
    struct keys_live *kl;
    int rc;

    *out = NULL;
    kl = calloc(1, sizeof(*kl));
    if (kl != NULL) {
        kl->kr = malloc(sizeof(*kl->kr));
    }
    if (kl == NULL || kl->kr == NULL) {
        free(kl);
        snprintf(err, errlen, "keys: out of memory");
        return -1;
    }
    *kl->kr = *kr;

    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(&kl->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        keyring_free(kl->kr);
        free(kl);
        snprintf(err, errlen, "keys: cannot create a lock: %s",
                 strerror(rc));
        return -1;
    }
    *out = kl;
    return 0;
}


void
keys_live_free(struct keys_live *kl)
{
    if (kl == NULL) {
        return;
    }
    pthread_rwlock_destroy(&kl->lock);
    keyring_free(kl->kr);
    free(kl);
}


int
keys_live_set(struct keys_live *kl, const struct keyring *kr, char *err,
              size_t errlen)
{
    struct keyring *next, *old;

    next = malloc(sizeof(*next));
    if (next == NULL) {
        snprintf(err, errlen, "keys: out of memory");
        return -1;
    }
    *next = *kr;

    /* The write lock waits for the threads verifying with the old
     * keyring; once it is taken, no one holds the old one. */
    pthread_rwlock_wrlock(&kl->lock);
    old = kl->kr;
    kl->kr = next;
    pthread_rwlock_unlock(&kl->lock);

    keyring_free(old);
    return 0;
}


int
keys_live_reload(struct keys_live *kl, const char *path, char *err,
                 size_t errlen)
{
    struct keyring kr;
    int rc;

    if (keys_load(&kr, path, err, errlen) != 0) {
        return -1;
    }
    rc = keys_live_set(kl, &kr, err, errlen);
    keys_clear(&kr);
    return rc;
}


const struct keyring *
keys_live_hold(struct keys_live *kl)
{
    pthread_rwlock_rdlock(&kl->lock);
    return kl->kr;
}


void
keys_live_release(struct keys_live *kl)
{
    pthread_rwlock_unlock(&kl->lock);
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
