/*
 * test_keys.c - the signing key file: the old one-key format, rotate and
 * remove, whole-file replacement under concurrent readers and writers,
 * and the running server's keyring swapped while threads verify.
 */
#include <dirent.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/keys.h"
#include "server/token.h"
#include "tests/unit/check.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char g_dir[] = "/tmp/beacon-test-keys-XXXXXX";


static void
path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", g_dir, name);
}


static void
write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}


/* Files in the test directory: a temporary file left behind shows. */
static int
files_in_dir(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}


static int
verifies(const struct keyring *kr, const char *tok, uint64_t want)
{
    uint64_t got = 0;

    return token_verify(kr, tok, strlen(tok), &got) == 0 && got == want;
}


/* A file as older Beacons wrote it: one key, comments, blank lines. */
static void
old_format_should_load_and_rotate(void)
{
    struct keyring before, after;
    char path[128], err[256], tok[TOKEN_LEN + 1];
    struct stat st;
    unsigned id = 0;

    path_of(path, sizeof path, "old.key");
    write_text(path, "# a comment\n\n  7 " HEX_A "\n", 0600);
    CHECK(keys_load(&before, path, err, sizeof err) == 0);
    CHECK(before.n == 1 && before.ids[0] == 7 && before.current == 0);
    token_sign(&before, 41, tok);

    CHECK(keys_rotate(path, &id, err, sizeof err) == 0);
    CHECK(id == 8);
    CHECK(keys_load(&after, path, err, sizeof err) == 0);
    CHECK(after.n == 2 && after.ids[0] == 7 && after.ids[1] == 8);
    CHECK(after.current == 1);
    CHECK(memcmp(after.keys[0], before.keys[0], KEYS_KEY_BYTES) == 0);
    CHECK(verifies(&after, tok, 41));       /* the old key still verifies */
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    unlink(path);
}


static void
rotate_should_pick_the_next_free_id_and_stop_at_the_limit(void)
{
    char path[128], err[256], text[2048];
    struct keyring kr;
    unsigned id = 0;
    size_t used;
    struct stat st;

    /* Past 255 the lowest free id is taken. */
    path_of(path, sizeof path, "wrap.key");
    write_text(path, "1 " HEX_A "\n255 " HEX_B "\n", 0644);
    CHECK(keys_rotate(path, &id, err, sizeof err) == 0);
    CHECK(id == 2);
    CHECK(keys_load(&kr, path, err, sizeof err) == 0);
    CHECK(kr.n == 3 && kr.ids[kr.current] == 2);
    /* The file was 0644; its replacement is 0600 whatever it was. */
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* KEYS_MAX keys: refused, the file untouched. */
    used = 0;
    for (int i = 1; i <= KEYS_MAX; i++)
        used += (size_t) snprintf(text + used, sizeof text - used,
                                  "%d %s\n", i * 10, HEX_A);
    write_text(path, text, 0600);
    CHECK(keys_rotate(path, &id, err, sizeof err) == -1);
    CHECK(strstr(err, "already holds 16 keys") != NULL);
    CHECK(keys_load(&kr, path, err, sizeof err) == 0 && kr.n == KEYS_MAX);

    CHECK(keys_rotate("/nonexistent/dir/k", &id, err, sizeof err) == -1);
    CHECK(strstr(err, "No such file") != NULL);
    unlink(path);
}


static void
remove_should_refuse_unknown_and_current_ids(void)
{
    struct keyring old, kr;
    char path[128], err[256], tok1[TOKEN_LEN + 1], tok2[TOKEN_LEN + 1];
    unsigned id;

    path_of(path, sizeof path, "remove.key");
    CHECK(keys_create(path, err, sizeof err) == 0);
    CHECK(keys_remove(path, 1, err, sizeof err) == -1);
    CHECK(strstr(err, "current key") != NULL);
    CHECK(keys_remove(path, 9, err, sizeof err) == -1);
    CHECK(strstr(err, "no key with id 9") != NULL);
    CHECK(keys_remove(path, 0, err, sizeof err) == -1);
    CHECK(keys_remove(path, 256, err, sizeof err) == -1);

    CHECK(keys_load(&old, path, err, sizeof err) == 0);
    token_sign(&old, 1001, tok1);
    CHECK(keys_rotate(path, &id, err, sizeof err) == 0 && id == 2);
    CHECK(keys_rotate(path, &id, err, sizeof err) == 0 && id == 3);
    CHECK(keys_load(&kr, path, err, sizeof err) == 0);
    CHECK(verifies(&kr, tok1, 1001));

    /* Removing a middle key keeps the order and the current key. */
    CHECK(keys_remove(path, 2, err, sizeof err) == 0);
    CHECK(keys_load(&kr, path, err, sizeof err) == 0);
    CHECK(kr.n == 2 && kr.ids[0] == 1 && kr.ids[1] == 3);
    CHECK(kr.ids[kr.current] == 3);
    token_sign(&kr, 1002, tok2);
    CHECK(strcmp(tok1, tok2) != 0);

    /* Key 1 removed: its token is refused, the current key's is not. */
    CHECK(keys_remove(path, 1, err, sizeof err) == 0);
    CHECK(keys_load(&kr, path, err, sizeof err) == 0);
    CHECK(kr.n == 1 && kr.ids[0] == 3);
    CHECK(!verifies(&kr, tok1, 1001));
    CHECK(verifies(&kr, tok2, 1002));
    CHECK(files_in_dir() == 1);             /* no temporary file left */
    unlink(path);
}


/* Several processes rotating one file at once: every key lands. */
static void
concurrent_rotations_should_all_land(void)
{
    enum { PROCS = 6 };
    char path[128], err[256];
    struct keyring kr;
    pid_t pids[PROCS];
    int status, ok = 0;

    path_of(path, sizeof path, "race.key");
    CHECK(keys_create(path, err, sizeof err) == 0);
    for (int i = 0; i < PROCS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            unsigned id;

            _exit(keys_rotate(path, &id, err, sizeof err) == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < PROCS; i++) {
        if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i]
            && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ok++;
    }
    CHECK(ok == PROCS);
    CHECK(keys_load(&kr, path, err, sizeof err) == 0);
    CHECK(kr.n == 1 + PROCS);
    for (size_t i = 0; i < kr.n; i++)
        CHECK(kr.ids[i] == i + 1);
    CHECK(files_in_dir() == 1);
    unlink(path);
}


struct reader {
    const char *path;
    volatile int stop;
    int loads;
    int failures;
};


static void *
read_loop(void *arg)
{
    struct reader *r = arg;
    struct keyring kr;
    char err[256];

    while (!r->stop) {
        if (keys_load(&kr, r->path, err, sizeof err) != 0 || kr.n < 1)
            r->failures++;
        r->loads++;
    }
    return NULL;
}


/* A reader never sees half a file while rotate and remove replace it. */
static void
readers_should_never_see_a_partial_file(void)
{
    struct reader r = { 0 };
    char path[128], err[256];
    pthread_t t;
    unsigned id;
    int changes = 0;

    path_of(path, sizeof path, "busy.key");
    CHECK(keys_create(path, err, sizeof err) == 0);
    r.path = path;
    CHECK(pthread_create(&t, NULL, read_loop, &r) == 0);
    for (int i = 0; i < 200; i++) {
        changes += keys_rotate(path, &id, err, sizeof err) == 0;
        changes += keys_remove(path, id - 1, err, sizeof err) == 0;
    }
    r.stop = 1;
    pthread_join(t, NULL);
    CHECK(changes == 400);
    CHECK(r.loads > 0 && r.failures == 0);
    unlink(path);
}


struct verifier {
    struct keys_live *kl;
    const char *tok;
    atomic_int stop;
    atomic_long ok;
    atomic_long bad;
};


static void *
verify_loop(void *arg)
{
    struct verifier *v = arg;
    uint64_t id;

    while (!atomic_load(&v->stop)) {
        if (token_verify_live(v->kl, v->tok, strlen(v->tok), &id) == 0
            && id == 77)
            atomic_fetch_add(&v->ok, 1);
        else
            atomic_fetch_add(&v->bad, 1);
    }
    return NULL;
}


/*
 * Threads verify through the holder while the keyring is swapped under
 * them: a token of a key in every keyring always verifies.  Then the
 * key is dropped, and a bad file leaves the keyring in force.
 */
static void
live_keyring_should_swap_under_readers(void)
{
    struct keyring a, b;
    struct keys_live *kl = NULL;
    struct verifier v;
    char err[256], tok[TOKEN_LEN + 1], path[128];
    pthread_t t[2];
    uint64_t id;
    long swaps = 0, swaps_ok = 0;

    memset(&a, 0, sizeof a);
    a.n = 1;
    a.ids[0] = 1;
    randombytes_buf(a.keys[0], KEYS_KEY_BYTES);
    b = a;
    b.n = 2;
    b.ids[1] = 2;
    b.current = 1;
    randombytes_buf(b.keys[1], KEYS_KEY_BYTES);
    token_sign(&a, 77, tok);

    CHECK(keys_live_new(&kl, &a, err, sizeof err) == 0);
    if (kl == NULL)
        return;
    atomic_init(&v.stop, 0);
    atomic_init(&v.ok, 0);
    atomic_init(&v.bad, 0);
    v.kl = kl;
    v.tok = tok;
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, verify_loop, &v) == 0);
    /* Swaps go on until the readers have verified many times over
     * (bounded, should a thread never get going). */
    for (int i = 0; i < 2000 || (atomic_load(&v.ok) < 20000 && i < 200000);
         i++) {
        swaps_ok += keys_live_set(kl, i % 2 ? &a : &b, err, sizeof err)
                    == 0;
        swaps++;
    }
    atomic_store(&v.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(swaps_ok == swaps);
    CHECK(atomic_load(&v.ok) >= 20000 && atomic_load(&v.bad) == 0);

    /* New tokens come from the current key of the keyring in force. */
    CHECK(keys_live_set(kl, &a, err, sizeof err) == 0);
    token_sign_live(kl, 5, tok);
    CHECK(verifies(&a, tok, 5));
    CHECK(keys_live_set(kl, &b, err, sizeof err) == 0);
    token_sign_live(kl, 6, tok);
    CHECK(!verifies(&a, tok, 6) && verifies(&b, tok, 6));

    /* A bad file keeps the keyring in force. */
    path_of(path, sizeof path, "bad.key");
    write_text(path, "1 nothex\n", 0600);
    CHECK(keys_live_reload(kl, path, err, sizeof err) == -1);
    CHECK(strstr(err, ":1:") != NULL);
    CHECK(token_verify_live(kl, tok, strlen(tok), &id) == 0 && id == 6);
    CHECK(keys_live_reload(kl, "/nonexistent/k", err, sizeof err) == -1);
    CHECK(token_verify_live(kl, tok, strlen(tok), &id) == 0 && id == 6);

    /* A file without key 2 makes key 2's token unknown. */
    write_text(path, "1 " HEX_A "\n", 0600);
    CHECK(keys_live_reload(kl, path, err, sizeof err) == 0);
    CHECK(token_verify_live(kl, tok, strlen(tok), &id) == -1);
    CHECK(token_verify_live(kl, tok, 3, &id) == -1);
    unlink(path);
    keys_live_free(kl);
}


int
main(void)
{
    if (sodium_init() < 0 || mkdtemp(g_dir) == NULL)
        return 1;
    old_format_should_load_and_rotate();
    rotate_should_pick_the_next_free_id_and_stop_at_the_limit();
    remove_should_refuse_unknown_and_current_ids();
    concurrent_rotations_should_all_land();
    readers_should_never_see_a_partial_file();
    live_keyring_should_swap_under_readers();
    rmdir(g_dir);
    return check_done();
}
