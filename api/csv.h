/* csv.h - RFC 4180 output. */
#ifndef BEACON_CSV_H
#define BEACON_CSV_H

#include <stddef.h>

struct csv_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed;             /* an allocation failed; data is unusable */
};

/*
 * Appends one field, quoted when it holds a comma, quote, CR or LF (quotes
 * doubled), preceded by a comma unless first is set.  NULL is empty.
 */
void csv_field(struct csv_buf *b, const char *s, int first);

/* Ends a record with CRLF. */
void csv_end_record(struct csv_buf *b);

void csv_free(struct csv_buf *b);

#endif
