/*
 * fuzz.h - what every libFuzzer target in tests/fuzz/ shares.
 *
 * libFuzzer calls LLVMFuzzerTestOneInput() once per input; a target
 * aborts (or lets a sanitizer abort) when the code under test breaks a
 * contract, and returns 0 otherwise.  The prototypes are here because
 * the build's -Wmissing-prototypes wants them.
 */
#ifndef BEACON_FUZZ_H
#define BEACON_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A NUL-terminated heap copy of the input (the parsers take C strings);
 * never NULL.  Free it with free().
 */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL) {
        abort();
    }
    if (size > 0) {
        memcpy(s, data, size);
    }
    s[size] = '\0';
    return s;
}

/* Stops the run with a message when a contract does not hold. */
#define FUZZ_ASSERT(cond)                                               \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__,   \
                    __LINE__, #cond);                                   \
            abort();                                                    \
        }                                                               \
    } while (0)

#endif
