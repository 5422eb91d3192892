/*
 * check.h - the few macros the unit tests share.  CHECK records a failure
 * with its place and expression and carries on, so one run reports every
 * broken expectation; check_done() prints the closing count line ctest's
 * log readers look for and gives main's exit status.
 */
#ifndef BEACON_TEST_CHECK_H
#define BEACON_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed;
static int check_failed;

#define CHECK(expr)                                                       \
    do {                                                                  \
        if (expr) {                                                       \
            check_passed++;                                               \
        } else {                                                          \
            check_failed++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,        \
                    __LINE__, #expr);                                     \
        }                                                                 \
    } while (0)

#define CHECK_STR(got, want)                                              \
    do {                                                                  \
        const char *g_ = (got), *w_ = (want);                             \
        if (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0) {            \
            check_passed++;                                               \
        } else {                                                          \
            check_failed++;                                               \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s is \"%s\", "     \
                    "want \"%s\"\n", __FILE__, __LINE__, #got,            \
                    g_ ? g_ : "(null)", w_ ? w_ : "(null)");              \
        }                                                                 \
    } while (0)

static inline int
check_done(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed == 0 ? 0 : 1;
}

#endif
