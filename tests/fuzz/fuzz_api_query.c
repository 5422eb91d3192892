/*
 * fuzz_api_query.c - the query parameters and Accept header of the GET
 * routes through api_handle(): since/until bounds, tz, bucket, group,
 * domain, min_value, older_than, reason, format, and the content
 * negotiation between JSON and CSV.
 *
 * Input: one byte picks the route, then the query string ("a=1&b=2",
 * values as the server hands them over, already decoded), then
 * optionally a newline and the Accept header.
 */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_api.h"

static const char *const routes[] = {
    "/api/v1/domains", "/api/v1/domains/trend", "/api/v1/alerts",
    "/api/v1/unopened", "/api/v1/stats", "/api/v1/tickets/T1",
    "/healthz"
};

#define N_ROUTES (sizeof routes / sizeof routes[0])

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_call call;
    char *text, *nl;

    /* Query strings and headers are bounded well below this. */
    if (size == 0 || size > 4096) {
        return 0;
    }
    text = fuzz_cstr(data + 1, size - 1);

    memset(&call, 0, sizeof call);
    call.query = text;
    nl = strchr(text, '\n');
    if (nl != NULL) {
        *nl = '\0';
        call.accept = nl + 1;
    }
    fuzz_api_call("GET", routes[data[0] % N_ROUTES], NULL, 0, &call);
    free(text);
    return 0;
}
