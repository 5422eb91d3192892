/*
 * test_domain.c - domain_from_address(): the domain an address reports
 * under, and domain_normalize() for a bare domain.  Table-driven; every
 * case has an id that a failure prints.
 */
#include <stdio.h>
#include <string.h>

#include "api/domain.h"
#include "tests/unit/check.h"

struct domain_case {
    const char *id;
    const char *in;
    const char *want;           /* NULL: must be rejected */
};

static const struct domain_case cases[] = {
    { "case", "Name@Example.COM", "example.com" },
    { "trailing-dot", "a@example.com.", "example.com" },
    { "upper-trailing-dot", "a@EXAMPLE.COM.", "example.com" },
    { "idn", "user@b\xc3\xbc" "cher.example", "xn--bcher-kva.example" },
    { "idn-upper", "x@M\xc3\x9cNCHEN.de", "xn--mnchen-3ya.de" },
    { "idn-ascii-upper", "x@XN--BCHER-KVA.example",
      "xn--bcher-kva.example" },
    { "idn2008-sharp-s", "x@fa\xc3\x9f.de", "xn--fa-hia.de" },
    { "subdomain", "j@mail.yahoo.co.uk", "mail.yahoo.co.uk" },
    { "subdomain-upper", "j@Mail.Yahoo.CO.UK", "mail.yahoo.co.uk" },
    { "last-at-quoted", "\"a@b\"@c.com", "c.com" },
    { "last-at-plain", "a@b@C.com", "c.com" },
    { "digits-hyphen", "a@mx-1.example9.com", "mx-1.example9.com" },
    { "underscore", "a@host_name.example", "host_name.example" },
    { "single-label", "root@localhost", "localhost" },
    { "no-at", "nodomain", NULL },
    { "no-domain", "a@", NULL },
    { "only-dot", "a@.", NULL },
    { "no-local", "@example.com", NULL },
    { "empty", "", NULL },
    { "leading-dot", "a@.example.com", NULL },
    { "empty-label", "a@example..com", NULL },
    { "two-trailing-dots", "a@example.com..", NULL },
    { "space", "a@exa mple.com", NULL },
    { "trailing-space", "a@example.com ", NULL },
    { "leading-space", "a@ example.com", NULL },
    { "tab", "a@exa\tmple.com", NULL },
    { "newline", "a@example.com\n", NULL },
    { "angle", "a@exa<mple.com", NULL },
    { "address-literal", "a@[192.0.2.1]", NULL },
    { "bad-punycode", "a@xn--zz.com", NULL },
    { "hyphen-start", "a@-a.com", NULL },
    { "long-label",
      "a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      ".com", NULL },
};

static void
domain_should_follow_table(void)
{
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct domain_case *c = &cases[i];
        char out[256] = "unchanged", err[128] = "";
        int rc = domain_from_address(c->in, out, sizeof out, err,
                                     sizeof err);

        if (c->want != NULL && (rc != 0 || strcmp(out, c->want) != 0))
            fprintf(stderr, "case %s: rc=%d out=%s err=%s\n", c->id, rc,
                    out, err);
        if (c->want == NULL && rc != -1)
            fprintf(stderr, "case %s: accepted as %s\n", c->id, out);

        if (c->want != NULL) {
            CHECK(rc == 0);
            CHECK_STR(out, c->want);
        } else {
            CHECK(rc == -1);
            CHECK(err[0] != '\0');
        }
    }
}


/* Labels of 63, 63, 63 and 61 characters: 253 in all, the maximum. */
static void
domain_should_bound_the_name_length(void)
{
    char addr[300], out[256], err[128];
    size_t n = 0;
    int lens[4] = { 63, 63, 63, 61 };
    int l, k;

    addr[n++] = 'a';
    addr[n++] = '@';
    for (l = 0; l < 4; l++) {
        for (k = 0; k < lens[l]; k++)
            addr[n++] = 'x';
        addr[n++] = '.';
    }
    addr[--n] = '\0';
    CHECK(strlen(addr + 2) == 253);
    CHECK(domain_from_address(addr, out, sizeof out, err, sizeof err) == 0);
    CHECK(strlen(out) == 253);

    addr[n++] = 'x';
    addr[n] = '\0';
    CHECK(domain_from_address(addr, out, sizeof out, err, sizeof err) == -1);
}


static void
domain_should_explain_rejections(void)
{
    char out[64], err[128];

    CHECK(domain_from_address("nodomain", out, sizeof out, err,
                              sizeof err) == -1);
    CHECK(strstr(err, "'@'") != NULL);
    CHECK(domain_from_address("@x.com", out, sizeof out, err,
                              sizeof err) == -1);
    CHECK(strstr(err, "local part") != NULL);
    CHECK(domain_from_address("a@x y.com", out, sizeof out, err,
                              sizeof err) == -1);
    CHECK(strstr(err, "space") != NULL);
    CHECK(domain_from_address("a@x..com", out, sizeof out, err,
                              sizeof err) == -1);
    CHECK(strstr(err, "empty label") != NULL);
}


static void
domain_should_respect_the_output_size(void)
{
    char out[11], err[128];

    CHECK(domain_from_address("a@example.com", out, sizeof out, err,
                              sizeof err) == -1);
    CHECK(domain_from_address("a@example.co", out, sizeof out, err,
                              sizeof err) == 0);
    CHECK_STR(out, "example.co");
    CHECK(domain_from_address(NULL, out, sizeof out, err, sizeof err)
          == -1);
}


/* A domain on its own: the same normal form, and no address parts. */
static void
domain_should_normalize_a_bare_name(void)
{
    char out[64] = "", err[128] = "";

    CHECK(domain_normalize("Mail.Yahoo.CO.UK.", out, sizeof out, err,
                           sizeof err) == 0);
    CHECK_STR(out, "mail.yahoo.co.uk");
    CHECK(domain_normalize("b\xc3\xbc" "cher.example", out, sizeof out,
                           err, sizeof err) == 0);
    CHECK_STR(out, "xn--bcher-kva.example");

    CHECK(domain_normalize("", out, sizeof out, err, sizeof err) == -1);
    CHECK_STR(err, "domain is empty");
    CHECK(domain_normalize(NULL, out, sizeof out, err, sizeof err) == -1);
    CHECK(domain_normalize("a@b.com", out, sizeof out, err, sizeof err)
          == -1);
    CHECK(strstr(err, "'@'") != NULL);
    CHECK(domain_normalize("x..com", out, sizeof out, err, sizeof err)
          == -1);
    CHECK(strstr(err, "empty label") != NULL);
    CHECK(domain_normalize(".", out, sizeof out, err, sizeof err) == -1);
}


int
main(void)
{
    domain_should_follow_table();
    domain_should_bound_the_name_length();
    domain_should_explain_rejections();
    domain_should_respect_the_output_size();
    domain_should_normalize_a_bare_name();
    return check_done();
}
