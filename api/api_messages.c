/*
 * api_messages.c - registering messages and reading tickets back.
 *
 * POST /api/v1/messages validates the whole body before touching the
 * store, so a rejected request stores nothing; the store then registers
 * the message in one transaction and the reply carries its signed pixel.
 * GET /api/v1/tickets/{ticket_id} lists a ticket's messages and opens.
 */
#include "api/api_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/domain.h"
#include "api/parse.h"
#include "server/token.h"
#include "store/store.h"

#define RECIPIENT_MAX 320       /* bytes, RFC 3696 with its erratum */
#define MESSAGE_ID_MAX 998      /* bytes, the RFC 5322 line limit */
#define CUSTOMER_NAME_MAX 256   /* bytes */
#define CUSTOMER_PHONE_MAX 64   /* bytes */
#define KIND_MAX 16             /* bytes; longer is never a valid kind */
#define TIME_TEXT_MAX 64        /* bytes; longer is never a valid time */
#define DOMAIN_MAX 256          /* bytes, NUL included */

/* JSON numbers are doubles: integers beyond 2^53 are not exact. */
#define SAFE_INTEGER_MAX 9007199254740991.0

/* A validated registration.  Strings point into the parsed body. */
struct registration {
    struct store_message_in in;
    char ticket_text[24];       /* an integer ticket_id as decimal text */
    char domain[DOMAIN_MAX];
};

static int
fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}


/* The member called name, or NULL when it is absent or JSON null. */
static const cJSON *
member(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsNull(item) ? NULL : item;
}


/* Length of the UTF-8 sequence a lead byte starts, 0 if it starts none. */
static size_t
utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}


/*
 * True when s is well-formed UTF-8: no stray continuation bytes, no
 * overlong forms, no surrogates, nothing above U+10FFFF.
 */
static int
utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t n, i;

    while (*p != '\0') {
        n = utf8_seq_len(p[0]);
        if (n == 0)
            return 0;
        for (i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f)
            || (p[0] == 0xf0 && p[1] < 0x90)
            || (p[0] == 0xf4 && p[1] > 0x8f))
            return 0;
        p += n;
    }
    return 1;
}


static int
has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char) *s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}


/* Checks one string value: its length, encoding and characters. */
static int
check_text(const char *s, const char *label, size_t max, int empty_ok,
           char *err, size_t errlen)
{
    size_t n = strlen(s);

    if (n == 0 && !empty_ok)
        return fail(err, errlen, "%s must not be empty", label);
    if (n > max)
        return fail(err, errlen, "%s is longer than %zu bytes", label, max);
    if (!utf8_valid(s))
        return fail(err, errlen, "%s is not valid UTF-8", label);
    if (has_control(s))
        return fail(err, errlen, "%s contains a control character", label);
    return 0;
}


/*
 * Reads the optional string member name of obj into *out (NULL when
 * absent).  label names it in errors.  Empty strings are accepted.
 */
static int
optional_string(const cJSON *obj, const char *name, const char *label,
                size_t max, const char **out, char *err, size_t errlen)
{
    const cJSON *item = member(obj, name);

    *out = NULL;
    if (item == NULL)
        return 0;
    if (!cJSON_IsString(item))
        return fail(err, errlen, "%s must be a string", label);
    if (check_text(item->valuestring, label, max, 1, err, errlen) != 0)
        return -1;
    *out = item->valuestring;
    return 0;
}


/* ticket_id: a non-empty string, or an integer kept as decimal text. */
static int
read_ticket_id(const cJSON *root, struct registration *r, char *err,
               size_t errlen)
{
    const cJSON *item = member(root, "ticket_id");
    double d;

    if (item == NULL)
        return fail(err, errlen, "ticket_id is required");
    if (cJSON_IsString(item)) {
        if (check_text(item->valuestring, "ticket_id", API_TICKET_ID_MAX,
                       0, err, errlen) != 0)
            return -1;
        r->in.ticket_id = item->valuestring;
        return 0;
    }

    d = cJSON_IsNumber(item) ? item->valuedouble : 0.5;
    if (!(d >= -SAFE_INTEGER_MAX && d <= SAFE_INTEGER_MAX)
        || (double) (int64_t) d != d)
        return fail(err, errlen, "ticket_id must be a string or an integer");
    snprintf(r->ticket_text, sizeof r->ticket_text, "%" PRId64,
             (int64_t) d);
    r->in.ticket_id = r->ticket_text;
    return 0;
}


/* recipient: required; its domain must normalise. */
static int
read_recipient(const cJSON *root, struct registration *r, char *err,
               size_t errlen)
{
    char why[API_ERR_MAX / 2];
    const char *s;

    if (optional_string(root, "recipient", "recipient", RECIPIENT_MAX, &s,
                        err, errlen) != 0)
        return -1;
    if (s == NULL || s[0] == '\0')
        return fail(err, errlen, "recipient is required");
    if (domain_from_address(s, r->domain, sizeof r->domain, why,
                            sizeof why) != 0)
        return fail(err, errlen, "recipient: %s", why);
    r->in.recipient = s;
    r->in.domain = r->domain;
    return 0;
}


/* kind: "reply" (the default) or "confirmation". */
static int
read_kind(const cJSON *root, struct registration *r, char *err,
          size_t errlen)
{
    const char *s;

    if (optional_string(root, "kind", "kind", KIND_MAX, &s, err,
                        errlen) != 0)
        return -1;
    if (s == NULL)
        s = "reply";
    if (strcmp(s, "reply") != 0 && strcmp(s, "confirmation") != 0)
        return fail(err, errlen,
                    "kind must be \"reply\" or \"confirmation\"");
    r->in.kind = s;
    return 0;
}


/* sent_at: an RFC 3339 date-time with a zone; default now. */
static int
read_sent_at(const cJSON *root, int64_t now_ms, struct registration *r,
             char *err, size_t errlen)
{
    const char *s;

    if (optional_string(root, "sent_at", "sent_at", TIME_TEXT_MAX, &s, err,
                        errlen) != 0)
        return -1;
    r->in.sent_at_ms = now_ms;
    if (s != NULL && parse_time(s, 0, &r->in.sent_at_ms, NULL) != 0)
        return fail(err, errlen, "sent_at must be an RFC 3339 date-time "
                    "such as 2026-12-03T17:40:41Z");
    return 0;
}


/* message_id: the optional Message-ID header; "" counts as absent. */
static int
read_message_id(const cJSON *root, struct registration *r, char *err,
                size_t errlen)
{
    const char *s;

    if (optional_string(root, "message_id", "message_id", MESSAGE_ID_MAX,
                        &s, err, errlen) != 0)
        return -1;
    r->in.header_message_id = s != NULL && s[0] != '\0' ? s : NULL;
    return 0;
}


static int
read_customer_value(const cJSON *cust, struct registration *r, char *err,
                    size_t errlen)
{
    const cJSON *item = member(cust, "value");

    if (item == NULL)
        return 0;
    if (!cJSON_IsNumber(item))
        return fail(err, errlen, "customer.value must be a number");
    if (!isfinite(item->valuedouble) || item->valuedouble < 0)
        return fail(err, errlen,
                    "customer.value must be a finite number >= 0");
    r->in.customer_value = item->valuedouble;
    r->in.customer_fields |= STORE_CUSTOMER_VALUE;
    return 0;
}


/*
 * customer: optional {name, phone, value}.  Only the members present are
 * flagged, so a later message updates just what it carries.
 */
static int
read_customer(const cJSON *root, struct registration *r, char *err,
              size_t errlen)
{
    const cJSON *cust = member(root, "customer");

    if (cust == NULL)
        return 0;
    if (!cJSON_IsObject(cust))
        return fail(err, errlen, "customer must be an object");

    if (optional_string(cust, "name", "customer.name", CUSTOMER_NAME_MAX,
                        &r->in.customer_name, err, errlen) != 0
        || optional_string(cust, "phone", "customer.phone",
                           CUSTOMER_PHONE_MAX, &r->in.customer_phone, err,
                           errlen) != 0)
        return -1;
    if (r->in.customer_name != NULL)
        r->in.customer_fields |= STORE_CUSTOMER_NAME;
    if (r->in.customer_phone != NULL)
        r->in.customer_fields |= STORE_CUSTOMER_PHONE;
    return read_customer_value(cust, r, err, errlen);
}


/* Validates the body.  Unknown members are ignored. */
static int
read_registration(const cJSON *root, int64_t now_ms, struct registration *r,
                  char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->in.registered_at_ms = now_ms;
    if (!cJSON_IsObject(root))
        return fail(err, errlen, "the body must be a JSON object");

    if (read_ticket_id(root, r, err, errlen) != 0
        || read_recipient(root, r, err, errlen) != 0
        || read_kind(root, r, err, errlen) != 0
        || read_sent_at(root, now_ms, r, err, errlen) != 0
        || read_message_id(root, r, err, errlen) != 0
        || read_customer(root, r, err, errlen) != 0)
        return -1;
    return 0;
}


/* The pixel URL: base_url "/p/" token ".gif".  Free with free(). */
static char *
pixel_url(const char *base_url, const char *token)
{
    size_t n = strlen(base_url) + strlen("/p/") + strlen(token)
               + strlen(".gif") + 1;
    char *url = malloc(n);

    if (url != NULL)
        snprintf(url, n, "%s/p/%s.gif", base_url, token);
    return url;
}


static const char *
html_entity(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}


/* s escaped for an HTML attribute value.  Free with free(). */
static char *
html_escape(const char *s)
{
    const char *p, *e;
    size_t n = 1;
    char *out, *o;

    for (p = s; *p != '\0'; p++) {
        e = html_entity(*p);
        n += e != NULL ? strlen(e) : 1;
    }
    out = malloc(n);
    if (out == NULL)
        return NULL;

    o = out;
    for (p = s; *p != '\0'; p++) {
        e = html_entity(*p);
        if (e != NULL) {
            memcpy(o, e, strlen(e));
            o += strlen(e);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}


/*
 * The tag to paste into an HTML mail: 1x1, empty alt, no border (the
 * style for current clients, the attribute for old ones).
 */
static char *
img_tag(const char *url)
{
    static const char head[] = "<img src=\"";
    static const char tail[] = "\" width=\"1\" height=\"1\" alt=\"\" "
                               "style=\"border:0\" border=\"0\">";
    char *esc = html_escape(url);
    char *tag = NULL;
    size_t n;

    if (esc == NULL)
        return NULL;
    n = sizeof head - 1 + strlen(esc) + sizeof tail;
    tag = malloc(n);
    if (tag != NULL)
        snprintf(tag, n, "%s%s%s", head, esc, tail);
    free(esc);
    return tag;
}


static cJSON *
created_doc(int64_t id, const char *token, const char *url, const char *tag)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL || url == NULL || tag == NULL
        || cJSON_AddNumberToObject(doc, "id", (double) id) == NULL
        || cJSON_AddStringToObject(doc, "token", token) == NULL
        || cJSON_AddStringToObject(doc, "pixel_url", url) == NULL
        || cJSON_AddStringToObject(doc, "img_tag", tag) == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/* 201 with the new message's id, token, pixel URL and img tag. */
static void
reply_created(struct api *api, int64_t id, struct api_reply *reply)
{
    const struct api_config *cfg = api_config(api);
    char token[TOKEN_LEN + 1];
    char *url, *tag = NULL;

    token_sign(cfg->keys, (uint64_t) id, token);
    url = pixel_url(cfg->base_url, token);
    if (url != NULL)
        tag = img_tag(url);

    api_reply_json(reply, 201, created_doc(id, token, url, tag));
    free(tag);
    free(url);
}


/* POST /api/v1/messages */
void
api_messages_post(struct api *api, const struct api_request *req,
                  const char *arg, struct api_reply *reply)
{
    char err[API_ERR_MAX];
    struct registration r;
    struct store *st;
    cJSON *root;
    int64_t id = 0;
    int rc;

    (void) arg;
    if (req->body_len > API_BODY_MAX) {
        api_reply_error(reply, 413, "the body is larger than %d bytes",
                        API_BODY_MAX);
        return;
    }
    root = api_parse_json(api, req->body, req->body_len, err, sizeof err);
    if (root == NULL) {
        api_reply_error(reply, 400, "%s", err);
        return;
    }
    if (read_registration(root, req->now_ms, &r, err, sizeof err) != 0) {
        cJSON_Delete(root);
        api_reply_error(reply, 400, "%s", err);
        return;
    }

    st = api_store_take(api);
    rc = store_message_add(st, &r.in, &id);
    if (rc != STORE_OK)
        api_reply_store_error(reply, st, rc, "message_add");
    api_store_give(api, st);
    cJSON_Delete(root);

    if (rc == STORE_OK)
        reply_created(api, id, reply);
}


/* Walking a ticket's rows into {"messages": [...]}. */
struct ticket_walk {
    cJSON *messages;
    cJSON *opens;               /* of the message being filled */
    int64_t current;            /* its id */
};

static cJSON *
message_doc(const struct store_ticket_row *r, cJSON **opens)
{
    cJSON *m = cJSON_CreateObject();

    if (m == NULL
        || cJSON_AddNumberToObject(m, "id", (double) r->message_id) == NULL
        || api_add_string_or_null(m, "recipient", r->recipient) != 0
        || api_add_string_or_null(m, "kind", r->kind) != 0
        || api_add_time(m, "sent_at", r->sent_at_ms) != 0
        || api_add_string_or_null(m, "message_id",
                                  r->header_message_id) != 0) {
        cJSON_Delete(m);
        return NULL;
    }
    *opens = cJSON_AddArrayToObject(m, "opens");
    if (*opens == NULL) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}


static int
add_open(cJSON *opens, const struct store_ticket_row *r)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToArray(opens, o)) {
        cJSON_Delete(o);
        return -1;
    }
    if (api_add_time(o, "at", r->open_at_ms) != 0
        || api_add_string_or_null(o, "user_agent", r->open_user_agent) != 0
        || api_add_string_or_null(o, "addr", r->open_addr) != 0)
        return -1;
    return 0;
}


/* store_ticket_read() callback; 1 stops the walk when out of memory. */
static int
ticket_row(void *ctx, const struct store_ticket_row *r)
{
    struct ticket_walk *w = ctx;
    cJSON *m;

    if (w->opens == NULL || r->message_id != w->current) {
        m = message_doc(r, &w->opens);
        if (m == NULL || !cJSON_AddItemToArray(w->messages, m)) {
            cJSON_Delete(m);
            return 1;
        }
        w->current = r->message_id;
    }
    if (r->has_open && add_open(w->opens, r) != 0)
        return 1;
    return 0;
}


/* {"ticket_id": id, "messages": []}, or NULL when out of memory. */
static cJSON *
ticket_doc(const char *ticket_id, cJSON **messages)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL
        || cJSON_AddStringToObject(doc, "ticket_id", ticket_id) == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    *messages = cJSON_AddArrayToObject(doc, "messages");
    if (*messages == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/* GET /api/v1/tickets/{ticket_id}; arg is the decoded ticket id. */
void
api_ticket_get(struct api *api, const struct api_request *req,
               const char *arg, struct api_reply *reply)
{
    struct ticket_walk w = { NULL, NULL, 0 };
    struct store *st;
    cJSON *doc;
    int rc;

    (void) req;
    if (strlen(arg) > API_TICKET_ID_MAX) {
        api_reply_error(reply, 400, "ticket_id is longer than %d bytes",
                        API_TICKET_ID_MAX);
        return;
    }
    doc = ticket_doc(arg, &w.messages);
    if (doc == NULL) {
        api_reply_json(reply, 500, NULL);
        return;
    }

    st = api_store_take(api);
    rc = store_ticket_read(st, arg, ticket_row, &w);
    if (rc < 0 && rc != STORE_NOTFOUND)
        api_reply_store_error(reply, st, rc, "ticket_read");
    api_store_give(api, st);

    if (rc == STORE_OK) {
        api_reply_json(reply, 200, doc);
        return;
    }
    cJSON_Delete(doc);
    if (rc == STORE_NOTFOUND)
        api_reply_error(reply, 404, "no such ticket");
    else if (rc > 0)
        api_reply_json(reply, 500, NULL);
}
