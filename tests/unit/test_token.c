/*
 * test_token.c - token signing and verification, every kind of tampering,
 * key ids; and the pixel path helpers that sit next to it.
 */
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "server/cidr.h"
#include "server/keys.h"
#include "server/pixel.h"
#include "server/token.h"
#include "tests/unit/check.h"


static void
keyring_one(struct keyring *kr, uint8_t id)
{
    memset(kr, 0, sizeof(*kr));
    kr->n = 1;
    kr->ids[0] = id;
    randombytes_buf(kr->keys[0], KEYS_KEY_BYTES);
}


static int
verifies(const struct keyring *kr, const char *tok, uint64_t *id)
{
    return token_verify(kr, tok, strlen(tok), id) == 0;
}


static void
token_should_round_trip(void)
{
    static const uint64_t ids[] = { 0, 1, 255, 65536, 1234567890123ULL,
                                    UINT64_MAX };
    struct keyring kr;
    char tok[TOKEN_LEN + 1];
    uint64_t got;

    keyring_one(&kr, 1);
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        token_sign(&kr, ids[i], tok);
        CHECK(strlen(tok) == TOKEN_LEN);
        CHECK(strlen(tok) <= TOKEN_MAX_LEN);
        CHECK(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789-_") == TOKEN_LEN);
        got = 42;
        CHECK(verifies(&kr, tok, &got));
        CHECK(got == ids[i]);
    }
}


/* Every single-character change anywhere must be refused. */
static void
token_should_refuse_any_changed_character(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    struct keyring kr;
    char tok[TOKEN_LEN + 1], bad[TOKEN_LEN + 1];
    uint64_t got;
    int accepted = 0;

    keyring_one(&kr, 7);
    token_sign(&kr, 99, tok);
    for (size_t pos = 0; pos < TOKEN_LEN; pos++) {
        for (size_t a = 0; a < 64; a++) {
            if (alphabet[a] == tok[pos]) {
                continue;
            }
            memcpy(bad, tok, sizeof(bad));
            bad[pos] = alphabet[a];
            accepted += verifies(&kr, bad, &got);
        }
    }
    CHECK(accepted == 0);
}


static void
token_should_refuse_bad_shapes(void)
{
    struct keyring kr;
    char tok[TOKEN_LEN + 1], buf[128];
    uint64_t got;

    keyring_one(&kr, 1);
    token_sign(&kr, 5, tok);

    CHECK(token_verify(&kr, tok, TOKEN_LEN - 1, &got) != 0);   /* truncated */
    CHECK(token_verify(&kr, tok, 0, &got) != 0);

    snprintf(buf, sizeof(buf), "%sA", tok);                     /* longer */
    CHECK(!verifies(&kr, buf, &got));
    memset(buf, 'A', 100);
    buf[100] = '\0';
    CHECK(!verifies(&kr, buf, &got));

    memcpy(buf, tok, sizeof(tok));                              /* padding */
    buf[TOKEN_LEN - 1] = '=';
    CHECK(!verifies(&kr, buf, &got));
    buf[TOKEN_LEN - 1] = '+';                                   /* base64 */
    CHECK(!verifies(&kr, buf, &got));
    buf[TOKEN_LEN - 1] = '\0';
    CHECK(token_verify(&kr, buf, TOKEN_LEN, &got) != 0);        /* NUL */
    CHECK(!verifies(&kr, "", &got));
}


static void
token_should_select_key_by_id(void)
{
    struct keyring old, both, other;
    char tok_old[TOKEN_LEN + 1], tok_new[TOKEN_LEN + 1];
    uint64_t got;

    keyring_one(&old, 1);
    both = old;
    both.n = 2;
    both.ids[1] = 2;
    randombytes_buf(both.keys[1], KEYS_KEY_BYTES);
    both.current = 1;

    token_sign(&old, 10, tok_old);
    token_sign(&both, 11, tok_new);

    CHECK(verifies(&both, tok_old, &got) && got == 10);  /* old still ok */
    CHECK(verifies(&both, tok_new, &got) && got == 11);
    CHECK(!verifies(&old, tok_new, &got));               /* unknown id 2 */
    CHECK(strcmp(tok_old, tok_new) != 0);

    /* Same id, different key material: the MAC must fail. */
    keyring_one(&other, 1);
    CHECK(!verifies(&other, tok_old, &got));
}


static void
keys_should_create_load_and_refuse_overwrite(void)
{
    char dir[] = "/tmp/beacon-test-XXXXXX";
    char path[64], err[256], api[KEYS_API_KEY_MAX];
    struct keyring kr;
    int created;
    FILE *f;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/signing.key", dir);

    CHECK(keys_load_or_create(&kr, path, &created, err, sizeof(err)) == 0);
    CHECK(created == 1 && kr.n == 1 && kr.ids[0] == 1);
    CHECK(keys_create(path, err, sizeof(err)) != 0);
    CHECK(strstr(err, "File exists") != NULL);

    f = fopen(path, "a");
    fprintf(f, "9 %064d\n", 0);
    fclose(f);
    CHECK(keys_load(&kr, path, err, sizeof(err)) == 0);
    CHECK(kr.n == 2 && kr.ids[kr.current] == 9);

    f = fopen(path, "a");
    fputs("300 abc\n", f);
    fclose(f);
    CHECK(keys_load(&kr, path, err, sizeof(err)) != 0);
    CHECK(strstr(err, ":5:") != NULL);
    unlink(path);

    snprintf(path, sizeof(path), "%s/api.key", dir);
    CHECK(keys_api_load_or_create(path, api, sizeof(api), &created, err,
                                  sizeof(err)) == 0);
    CHECK(created == 1 && strlen(api) == 43);
    unlink(path);
    rmdir(dir);
}


static void
pixel_should_extract_token_from_path(void)
{
    char long_path[64];
    const char *tok;
    size_t len;

    memset(long_path, 'A', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    memcpy(long_path, "/p/", 3);

    CHECK(pixel_token_from_path("/p/abc.gif", &tok, &len) == 0 && len == 3);
    CHECK(strncmp(tok, "abc", 3) == 0);
    CHECK(pixel_token_from_path("/p/abc", &tok, &len) == 0 && len == 3);
    CHECK(pixel_token_from_path("/p/.gif", &tok, &len) != 0);
    CHECK(pixel_token_from_path("/p/", &tok, &len) != 0);
    CHECK(pixel_token_from_path("/x/abc", &tok, &len) != 0);
    CHECK(pixel_token_from_path(long_path, &tok, &len) != 0);
}


static void
truncated(const char *addr, char out[STORE_ADDR_MAX])
{
    struct cidr_addr a;

    CHECK(cidr_addr_parse(addr, &a) == 0);
    pixel_addr_truncate(&a, out);
}


static void
pixel_should_truncate_addresses(void)
{
    struct sockaddr_in v4 = { .sin_family = AF_INET };
    struct cidr_addr a;
    char out[STORE_ADDR_MAX];

    truncated("192.0.2.201", out);
    CHECK_STR(out, "192.0.2.0");
    truncated("2001:db8:abcd:12:34::5", out);
    CHECK_STR(out, "2001:db8:abcd::");
    truncated("::ffff:198.51.100.77", out);
    CHECK_STR(out, "198.51.100.0");

    inet_pton(AF_INET, "203.0.113.9", &v4.sin_addr);
    CHECK(cidr_addr_from_sockaddr((struct sockaddr *) &v4, &a) == 0);
    pixel_addr_truncate(&a, out);
    CHECK_STR(out, "203.0.113.0");

    pixel_addr_truncate(NULL, out);
    CHECK_STR(out, "unknown");
}


static void
pixel_should_take_the_referer_host(void)
{
    static const struct {
        const char *referer, *want;
    } cases[] = {
        { "https://Desk.Example.com:8443/tickets/1?x=y", "desk.example.com" },
        { "http://desk.example.com", "desk.example.com" },
        { "https://user:pw@desk.example.com/", "desk.example.com" },
        { "https://desk.example.com#frag", "desk.example.com" },
        { "ftp://desk.example.com/", "" },
        { "desk.example.com", "" },
        { "https://bad host/", "" },
        { "https://b\"ad/", "" },
        { "", "" },
    };
    char out[STORE_REFERER_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pixel_referer_host(cases[i].referer, out);
        CHECK_STR(out, cases[i].want);
    }
    pixel_referer_host(NULL, out);
    CHECK_STR(out, "");
}


static void
pixel_should_believe_forwarded_for_only_from_trusted_proxies(void)
{
    static const struct {
        const char *peer, *xff, *want;
    } cases[] = {
        { "10.0.0.5", "192.0.2.7", "192.0.2.0" },           /* trusted */
        { "198.51.100.1", "192.0.2.7", "198.51.100.0" },    /* not */
        { "10.0.0.5", NULL, "10.0.0.0" },
        { "10.0.0.5", "203.0.113.9, 192.0.2.7", "192.0.2.0" },
        { "10.0.0.5", "192.0.2.7, 10.0.0.9", "192.0.2.0" }, /* hop skipped */
        { "10.0.0.5", "garbage", "10.0.0.0" },
        { "10.0.0.5", "192.0.2.7, garbage", "10.0.0.0" },
        { "10.0.0.5", "10.0.0.1,10.0.0.2", "10.0.0.0" },    /* all trusted */
        { "10.0.0.5", "[2001:db8:1:2::3]", "2001:db8:1::" },
        { "10.0.0.5", " 2001:db8:7:8::1 ", "2001:db8:7::" },
        { "10.0.0.5", "", "10.0.0.0" },
    };
    struct cidr trusted;
    struct cidr_addr peer, client;
    char out[STORE_ADDR_MAX];

    CHECK(cidr_parse("10.0.0.0/8", &trusted) == 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(cidr_addr_parse(cases[i].peer, &peer) == 0);
        pixel_client_addr(&peer, cases[i].xff, &trusted, 1, &client);
        pixel_addr_truncate(&client, out);
        CHECK_STR(out, cases[i].want);
    }

    /* With no trusted proxy configured, the header is never read. */
    CHECK(cidr_addr_parse("10.0.0.5", &peer) == 0);
    pixel_client_addr(&peer, "192.0.2.7", NULL, 0, &client);
    pixel_addr_truncate(&client, out);
    CHECK_STR(out, "10.0.0.0");
}


static void
pixel_gif_should_be_a_1x1_gif(void)
{
    CHECK(pixel_gif_len == 43);
    CHECK(memcmp(pixel_gif, "GIF89a", 6) == 0);
    CHECK(pixel_gif[6] == 1 && pixel_gif[7] == 0);      /* width */
    CHECK(pixel_gif[8] == 1 && pixel_gif[9] == 0);      /* height */
    CHECK(pixel_gif[pixel_gif_len - 1] == 0x3b);
}


int
main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    token_should_round_trip();
    token_should_refuse_any_changed_character();
    token_should_refuse_bad_shapes();
    token_should_select_key_by_id();
    keys_should_create_load_and_refuse_overwrite();
    pixel_should_extract_token_from_path();
    pixel_should_truncate_addresses();
    pixel_should_take_the_referer_host();
    pixel_should_believe_forwarded_for_only_from_trusted_proxies();
    pixel_gif_should_be_a_1x1_gif();
    return check_done();
}
