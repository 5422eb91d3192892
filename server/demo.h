/*
 * demo.h - fills an empty database with a month of made-up support
 * traffic, so a new install shows a living dashboard at once.
 *
 * Everything goes through the store interface and the real classifier:
 * the data is what `beacon serve` would have recorded had these replies
 * been sent and fetched.  The same seed and the same now give the same
 * database.
 */
#ifndef BEACON_DEMO_H
#define BEACON_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define DEMO_SEED_DEFAULT 20260401u

struct demo_options {
    const char *rules_path;     /* the rules file `serve` would use */
    uint64_t seed;
    int64_t now_ms;             /* the month ends here */
};

/* What demo_fill() wrote. */
struct demo_counts {
    int64_t customers;
    int64_t tickets;
    int64_t messages;
    int64_t fetches;            /* handed to the store, HEADs included */
    int64_t replies;            /* customer replies recorded */
};

/*
 * Writes the demo month into st.  Refuses (-1, "... already holds N
 * messages ...") a store that has any message, so demo data never mixes
 * with real data.  Returns 0, or -1 with a one-line reason in err; on
 * failure part of the month may have been written.
 */
int demo_fill(struct store *st, const struct demo_options *o,
              struct demo_counts *out, char *err, size_t errlen);

#endif
