/*
 * api_recipients.c - DELETE /api/v1/recipients/{address}: erasing a
 * recipient on request (a data-subject erasure).
 *
 * The address is keyed as the store keys customers: its local part as
 * given and its normalised domain (domain.h), compared in ASCII lower
 * case, so any spelling of the domain erases the one customer.
 */
#include "api/api_internal.h"

#include <stdio.h>
#include <string.h>

#include "api/domain.h"
#include "store/store.h"

#define ADDRESS_MAX 320         /* bytes, RFC 3696 with its erratum */
#define ADDR_DOMAIN_MAX 256     /* bytes, NUL included */


/*
 * Checks the address in the path and writes its store key to out.
 * 0, or -1 with a reason in err.
 */
static int
address_key_of(const char *arg, char *out, size_t outlen, char *err,
               size_t errlen)
{
    char domain[ADDR_DOMAIN_MAX];
    char why[API_ERR_MAX / 2];
    const char *at;

    if (arg == NULL || arg[0] == '\0')
        return api_fail(err, errlen, "the path needs an address");
    if (strlen(arg) > ADDRESS_MAX)
        return api_fail(err, errlen, "the address is longer than %d bytes",
                        ADDRESS_MAX);
    if (strchr(arg, '/') != NULL)
        return api_fail(err, errlen, "the address must not contain '/'");
    if (domain_from_address(arg, domain, sizeof domain, why,
                            sizeof why) != 0)
        return api_fail(err, errlen, "address: %s", why);

    at = strrchr(arg, '@');
    snprintf(out, outlen, "%.*s@%s", (int) (at - arg), arg, domain);
    return 0;
}


static cJSON *
erased_doc(const char *key, const struct store_erase_result *r)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL)
        return NULL;
    if (cJSON_AddStringToObject(doc, "recipient", key) == NULL
        || api_add_count(doc, "messages", r->messages) != 0
        || api_add_count(doc, "fetches", r->fetches) != 0
        || api_add_count(doc, "fetch_rows", r->fetch_rows) != 0
        || api_add_count(doc, "calls", r->calls) != 0
        || cJSON_AddBoolToObject(doc, "customer", r->customer) == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/*
 * DELETE /api/v1/recipients/{address}: their messages, every fetch of
 * them, their calls and their customer row go in one transaction; the
 * reply says how many of each.  404 when no customer has the address.
 */
void
api_recipients_delete(struct api *api, const struct api_request *req,
                      const char *arg, struct api_reply *reply)
{
    char key[ADDRESS_MAX + ADDR_DOMAIN_MAX + 2];
    char err[API_ERR_MAX];
    struct store_erase_result res;
    struct store *st;
    int rc;

    (void) req;
    if (address_key_of(arg, key, sizeof key, err, sizeof err) != 0) {
        api_reply_error(reply, 400, "%s", err);
        return;
    }

    st = api_store_take(api);
    rc = store_recipient_erase(st, key, &res);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        api_reply_store_error(reply, st, rc, "recipient_erase");
    api_store_give(api, st);

    if (rc == STORE_OK)
        api_reply_json(reply, 200, erased_doc(key, &res));
    else if (rc == STORE_NOTFOUND)
        api_reply_error(reply, 404, "no recipient with that address");
}
