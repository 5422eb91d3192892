/*
 * test_csv.c - RFC 4180 quoting and record endings of csv.c.
 */
#include <stdio.h>
#include <string.h>

#include "api/csv.h"
#include "tests/unit/check.h"

struct field_case {
    const char *id;
    const char *in;
    const char *want;
};

static const struct field_case field_cases[] = {
    { "plain", "abc", "abc" },
    { "empty", "", "" },
    { "null", NULL, "" },
    { "spaces-kept", " a b ", " a b " },
    { "comma", "a,b", "\"a,b\"" },
    { "quote", "he said \"hi\"", "\"he said \"\"hi\"\"\"" },
    { "only-quote", "\"", "\"\"\"\"" },
    { "cr", "a\rb", "\"a\rb\"" },
    { "lf", "a\nb", "\"a\nb\"" },
    { "crlf", "a\r\nb", "\"a\r\nb\"" },
    { "all", ",\"\r\n", "\",\"\"\r\n\"" },
    { "utf8", "M\xc3\xbcller", "M\xc3\xbcller" },
    { "semicolon", "a;b", "a;b" },
};

static void
csv_field_should_quote_as_rfc4180(void)
{
    size_t i;

    for (i = 0; i < sizeof field_cases / sizeof field_cases[0]; i++) {
        const struct field_case *c = &field_cases[i];
        struct csv_buf b = { NULL, 0, 0, 0 };

        csv_field(&b, c->in, 1);
        if (b.len != strlen(c->want) || b.data == NULL
            || memcmp(b.data, c->want, b.len) != 0)
            fprintf(stderr, "case %s: got [%s]\n", c->id,
                    b.data != NULL ? b.data : "(null)");
        CHECK(b.len == strlen(c->want));
        CHECK(b.data != NULL && memcmp(b.data, c->want, b.len) == 0);
        CHECK(b.data != NULL && b.data[b.len] == '\0');
        CHECK(!b.failed);
        csv_free(&b);
    }
}


static void
csv_should_separate_fields_and_end_records(void)
{
    struct csv_buf b = { NULL, 0, 0, 0 };

    csv_field(&b, "recipient", 1);
    csv_field(&b, "name", 0);
    csv_end_record(&b);
    csv_field(&b, "a@x.com", 1);
    csv_field(&b, NULL, 0);
    csv_field(&b, "", 0);
    csv_field(&b, "Doe, J", 0);
    csv_end_record(&b);
    CHECK_STR(b.data, "recipient,name\r\na@x.com,,,\"Doe, J\"\r\n");
    CHECK(b.len == strlen(b.data));

    csv_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    csv_free(&b);
    csv_free(NULL);
}


/* A record ending alone is a blank line: just CRLF. */
static void
csv_end_record_should_write_crlf(void)
{
    struct csv_buf b = { NULL, 0, 0, 0 };

    csv_end_record(&b);
    CHECK_STR(b.data, "\r\n");
    csv_free(&b);
}


/* Growth past the first allocation keeps every byte. */
static void
csv_should_grow(void)
{
    struct csv_buf b = { NULL, 0, 0, 0 };
    size_t i, bad = 0;

    for (i = 0; i < 5000; i++)
        csv_field(&b, "x\"y", i == 0);
    CHECK(!b.failed);
    CHECK(b.len == 5000 * 6 + 4999);
    for (i = 0; i < 5000 && b.data != NULL; i++)
        if (memcmp(b.data + i * 7, "\"x\"\"y\"", 6) != 0)
            bad++;
    CHECK(bad == 0);
    CHECK(b.cap > b.len);
    csv_free(&b);
}


int
main(void)
{
    csv_field_should_quote_as_rfc4180();
    csv_should_separate_fields_and_end_records();
    csv_end_record_should_write_crlf();
    csv_should_grow();
    return check_done();
}
