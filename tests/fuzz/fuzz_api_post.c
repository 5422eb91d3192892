/*
 * fuzz_api_post.c - the JSON body of every POST route through
 * api_handle(): the first byte picks /api/v1/messages, /api/v1/events
 * or /api/v1/calls, the rest is the body, sent with a valid key.
 *
 * Bodies that are valid register messages, events and calls in the
 * temporary database, so later inputs meet a store with rows in it.
 */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_api.h"

static const char *const routes[] = {
    "/api/v1/messages", "/api/v1/events", "/api/v1/calls"
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_call call;

    /*
     * libFuzzer's buffer holds exactly the input, so ASan catches a read
     * past the body's end; the server never sends more than API_BODY_MAX.
     */
    if (size == 0 || size - 1 > API_BODY_MAX) {
        return 0;
    }

    memset(&call, 0, sizeof call);
    fuzz_api_call("POST", routes[data[0] % 3],
                  size > 1 ? (const char *) data + 1 : NULL, size - 1,
                  &call);
    return 0;
}
