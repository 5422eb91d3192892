/*
 * csv.c - RFC 4180 output into a growing buffer.
 *
 * Exports csv_field(), csv_end_record() and csv_free().  A struct csv_buf
 * starts zeroed.  The data stays NUL-terminated so it can be handed on as
 * a C string.  After an allocation failure the buffer is released, failed
 * is set, and every later call does nothing.
 *
 * Limitation: fields are quoted exactly as RFC 4180 asks; a value that
 * starts with '=', '+', '-' or '@' is not defused for spreadsheets
 * (phone numbers such as "+44 ..." would be corrupted by that).
 */
#include "api/csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CSV_INITIAL_CAP 256

static void
set_failed(struct csv_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 1;
}


/* Makes room for more bytes plus the NUL.  0, or -1 after failing b. */
static int
reserve(struct csv_buf *b, size_t more)
{
    size_t need, cap;
    char *data;

    if (b->failed)
        return -1;
    if (more > SIZE_MAX - b->len - 1) {
        set_failed(b);
        return -1;
    }
    need = b->len + more + 1;
    if (need <= b->cap)
        return 0;

    cap = b->cap > 0 ? b->cap : CSV_INITIAL_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    data = realloc(b->data, cap);
    if (data == NULL) {
        set_failed(b);
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}


static void
append(struct csv_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}


static int
needs_quotes(const char *s)
{
    return strpbrk(s, ",\"\r\n") != NULL;
}


/* Appends s between quotes, each quote inside doubled. */
static void
append_quoted(struct csv_buf *b, const char *s)
{
    const char *quote;

    append(b, "\"", 1);
    quote = strchr(s, '"');
    while (quote != NULL) {
        append(b, s, (size_t) (quote - s) + 1);
        append(b, "\"", 1);
        s = quote + 1;
        quote = strchr(s, '"');
    }
    append(b, s, strlen(s));
    append(b, "\"", 1);
}


void
csv_field(struct csv_buf *b, const char *s, int first)
{
    if (!first)
        append(b, ",", 1);
    if (s == NULL)
        s = "";

    if (needs_quotes(s))
        append_quoted(b, s);
    else
        append(b, s, strlen(s));
}


void
csv_end_record(struct csv_buf *b)
{
    append(b, "\r\n", 2);
}


void
csv_free(struct csv_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}
