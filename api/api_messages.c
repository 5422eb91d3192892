/*
 * api_messages.c - registering messages, recording customer replies and
 * the team's calls, and reading tickets back.
 *
 * POST /api/v1/messages, /events and /calls validate the whole body
 * before touching the store, so a rejected request stores nothing; the
 * store then writes in one transaction.  A registration's reply carries
 * its signed pixel and where to put it.  GET /api/v1/tickets/{ticket_id}
 * lists a ticket's messages, their figures and their stored fetches.
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
#include "server/text.h"
#include "store/store.h"

#define RECIPIENT_MAX 320       /* bytes, RFC 3696 with its erratum */
#define MESSAGE_ID_MAX 998      /* bytes, the RFC 5322 line limit */
#define CUSTOMER_NAME_MAX 256   /* bytes */
#define CUSTOMER_PHONE_MAX 64   /* bytes */
#define KIND_MAX 16             /* bytes; longer is never a valid kind */
#define TIME_TEXT_MAX 64        /* bytes; longer is never a valid time */
#define TYPE_MAX 32             /* bytes; longer is never a valid type */
#define DOMAIN_MAX 256          /* bytes, NUL included */
#define OUTCOME_MAX 16          /* bytes; longer is never an outcome */
#define CALL_NOTE_MAX 1000      /* bytes */

/* JSON numbers are doubles: integers beyond 2^53 are not exact. */
#define SAFE_INTEGER_MAX 9007199254740991.0

/*
 * How far in the future a reply event's "at" may lie: the help-desk's
 * clock may run ahead of ours, but a reply stamped much later would keep
 * its customer off the call list until then.
 */
#define EVENT_FUTURE_SLACK_MS INT64_C(3600000)

/* Which ticket and recipient a body names.  Strings point into it. */
struct ticket_recipient {
    const char *ticket_id;
    const char *recipient;
    char ticket_text[24];       /* an integer ticket_id as decimal text */
    char domain[DOMAIN_MAX];
};

/* A validated registration. */
struct registration {
    struct store_message_in in;
    struct ticket_recipient who;
    int64_t html_bytes;         /* -1: not given */
};

/* A validated event; customer_reply is the only type. */
struct reply_event {
    struct ticket_recipient who;
    int64_t at_ms;
};

/* The member called name, or NULL when it is absent or JSON null. */
static const cJSON *
member(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsNull(item) ? NULL : item;
}


/* Checks one string value: its length, encoding and characters. */
static int
check_text(const char *s, const char *label, size_t max, int empty_ok,
           char *err, size_t errlen)
{
    size_t n = strlen(s);

    if (n == 0 && !empty_ok)
        return api_fail(err, errlen, "%s must not be empty", label);
    if (n > max)
        return api_fail(err, errlen, "%s is longer than %zu bytes", label, max);
    if (!text_is_clean(s))
        return api_fail(err, errlen, "%s is not valid UTF-8 or contains a "
                    "control character", label);
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
        return api_fail(err, errlen, "%s must be a string", label);
    if (check_text(item->valuestring, label, max, 1, err, errlen) != 0)
        return -1;
    *out = item->valuestring;
    return 0;
}


/* ticket_id: a non-empty string, or an integer kept as decimal text. */
static int
read_ticket_id(const cJSON *root, struct ticket_recipient *r, char *err,
               size_t errlen)
{
    const cJSON *item = member(root, "ticket_id");
    double d;

    if (item == NULL)
        return api_fail(err, errlen, "ticket_id is required");
    if (cJSON_IsString(item)) {
        if (check_text(item->valuestring, "ticket_id", API_TICKET_ID_MAX,
                       0, err, errlen) != 0)
            return -1;
        r->ticket_id = item->valuestring;
        return 0;
    }

    d = cJSON_IsNumber(item) ? item->valuedouble : 0.5;
    if (!(d >= -SAFE_INTEGER_MAX && d <= SAFE_INTEGER_MAX)
        || (double) (int64_t) d != d)
        return api_fail(err, errlen,
                        "ticket_id must be a string or an integer");
    snprintf(r->ticket_text, sizeof r->ticket_text, "%" PRId64,
             (int64_t) d);
    r->ticket_id = r->ticket_text;
    return 0;
}


/* recipient: required; its domain must normalise. */
static int
read_recipient(const cJSON *root, struct ticket_recipient *r, char *err,
               size_t errlen)
{
    char why[API_ERR_MAX / 2];
    const char *s;

    if (optional_string(root, "recipient", "recipient", RECIPIENT_MAX, &s,
                        err, errlen) != 0)
        return -1;
    if (s == NULL || s[0] == '\0')
        return api_fail(err, errlen, "recipient is required");
    if (domain_from_address(s, r->domain, sizeof r->domain, why,
                            sizeof why) != 0)
        return api_fail(err, errlen, "recipient: %s", why);
    r->recipient = s;
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
        return api_fail(err, errlen,
                    "kind must be \"reply\" or \"confirmation\"");
    r->in.kind = s;
    return 0;
}


/* A time member: an RFC 3339 date-time with a zone; default now. */
static int
read_time(const cJSON *root, const char *name, int64_t now_ms, int64_t *ms,
          char *err, size_t errlen)
{
    const char *s;

    if (optional_string(root, name, name, TIME_TEXT_MAX, &s, err,
                        errlen) != 0)
        return -1;
    *ms = now_ms;
    if (s != NULL && parse_time(s, 0, ms, NULL) != 0)
        return api_fail(err, errlen, "%s must be an RFC 3339 date-time "
                    "such as 2026-12-03T17:40:41Z", name);
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
        return api_fail(err, errlen, "customer.value must be a number");
    if (!isfinite(item->valuedouble) || item->valuedouble < 0)
        return api_fail(err, errlen,
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
        return api_fail(err, errlen, "customer must be an object");

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


/*
 * html_bytes: the optional size of the mail's HTML, an integer >= 0.  It
 * only decides where the pixel should go and is not stored.  Unlike the
 * older optional members, null is refused: a caller that sends the size
 * but has none is told so rather than silently given "bottom".
 */
static int
read_html_bytes(const cJSON *root, struct registration *r, char *err,
                size_t errlen)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "html_bytes");
    double d;

    r->html_bytes = -1;
    if (item == NULL)
        return 0;
    d = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
    if (!(d >= 0 && d <= SAFE_INTEGER_MAX) || (double) (int64_t) d != d)
        return api_fail(err, errlen, "html_bytes must be an integer >= 0");
    r->html_bytes = (int64_t) d;
    return 0;
}


/* Validates the body.  Unknown members are ignored. */
static int
read_registration(const cJSON *root, int64_t now_ms, struct registration *r,
                  char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->in.registered_at_ms = now_ms;
    if (!cJSON_IsObject(root))
        return api_fail(err, errlen, "the body must be a JSON object");

    if (read_ticket_id(root, &r->who, err, errlen) != 0
        || read_recipient(root, &r->who, err, errlen) != 0
        || read_kind(root, r, err, errlen) != 0
        || read_time(root, "sent_at", now_ms, &r->in.sent_at_ms, err,
                     errlen) != 0
        || read_message_id(root, r, err, errlen) != 0
        || read_customer(root, r, err, errlen) != 0
        || read_html_bytes(root, r, err, errlen) != 0)
        return -1;

    r->in.ticket_id = r->who.ticket_id;
    r->in.recipient = r->who.recipient;
    r->in.domain = r->who.domain;
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


/*
 * Where the pixel should go.  Gmail clips a large mail and hides what
 * follows the cut, so near that size the pixel must come first ("top");
 * otherwise, and when the size is unknown, at the end ("bottom"), where
 * it cannot push the text down.
 */
static const char *
placement(const struct api_config *cfg, int64_t html_bytes)
{
    if (html_bytes >= 0 && html_bytes >= (int64_t) cfg->clip_threshold)
        return "top";
    return "bottom";
}


static cJSON *
created_doc(int64_t id, const char *token, const char *url, const char *tag,
            const char *where)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL || url == NULL || tag == NULL
        || cJSON_AddNumberToObject(doc, "id", (double) id) == NULL
        || cJSON_AddStringToObject(doc, "token", token) == NULL
        || cJSON_AddStringToObject(doc, "pixel_url", url) == NULL
        || cJSON_AddStringToObject(doc, "img_tag", tag) == NULL
        || cJSON_AddStringToObject(doc, "placement", where) == NULL) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/* 201 with the new message's id, token, pixel URL, img tag, placement. */
static void
reply_created(struct api *api, int64_t id, int64_t html_bytes,
              struct api_reply *reply)
{
    const struct api_config *cfg = api_config(api);
    char token[TOKEN_LEN + 1];
    char *url, *tag = NULL;

    token_sign_live(cfg->keys, (uint64_t) id, token);
    url = pixel_url(cfg->base_url, token);
    if (url != NULL)
        tag = img_tag(url);

    api_reply_json(reply, 201, created_doc(id, token, url, tag,
                                           placement(cfg, html_bytes)));
    free(tag);
    free(url);
}


/*
 * Parses a POST body as a JSON document, or fills reply with the 413 or
 * 400 and returns NULL.
 */
static cJSON *
read_body(struct api *api, const struct api_request *req,
          struct api_reply *reply)
{
    char err[API_ERR_MAX];
    cJSON *root;

    if (req->body_len > API_BODY_MAX) {
        api_reply_error(reply, 413, "the body is larger than %d bytes",
                        API_BODY_MAX);
        return NULL;
    }
    root = api_parse_json(api, req->body, req->body_len, err, sizeof err);
    if (root == NULL)
        api_reply_error(reply, 400, "%s", err);
    return root;
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
    root = read_body(api, req, reply);
    if (root == NULL)
        return;
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
        reply_created(api, id, r.html_bytes, reply);
}


/*
 * Writes the store's key for a recipient: its local part as given and
 * its normalised domain.
 */
static void
canonical_recipient(const struct ticket_recipient *who, char *out,
                    size_t outlen)
{
    const char *at = strrchr(who->recipient, '@');

    snprintf(out, outlen, "%.*s@%s", (int) (at - who->recipient),
             who->recipient, who->domain);
}


/* type: required; "customer_reply" is the only event there is. */
static int
read_event_type(const cJSON *root, char *err, size_t errlen)
{
    const char *s;

    if (optional_string(root, "type", "type", TYPE_MAX, &s, err,
                        errlen) != 0)
        return -1;
    if (s == NULL || s[0] == '\0')
        return api_fail(err, errlen, "type is required");
    if (strcmp(s, "customer_reply") != 0)
        return api_fail(err, errlen, "type must be \"customer_reply\"");
    return 0;
}


/* Validates an event body.  Unknown members are ignored. */
static int
read_event(const cJSON *root, int64_t now_ms, struct reply_event *e,
           char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    if (!cJSON_IsObject(root))
        return api_fail(err, errlen, "the body must be a JSON object");

    if (read_event_type(root, err, errlen) != 0
        || read_ticket_id(root, &e->who, err, errlen) != 0
        || read_recipient(root, &e->who, err, errlen) != 0
        || read_time(root, "at", now_ms, &e->at_ms, err, errlen) != 0)
        return -1;
    if (e->at_ms > now_ms + EVENT_FUTURE_SLACK_MS)
        return api_fail(err, errlen, "at lies more than an hour in the future");
    return 0;
}


static cJSON *
event_doc(const struct reply_event *e, int64_t marked)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL
        || cJSON_AddStringToObject(doc, "type", "customer_reply") == NULL
        || cJSON_AddStringToObject(doc, "ticket_id", e->who.ticket_id)
               == NULL
        || cJSON_AddStringToObject(doc, "recipient", e->who.recipient)
               == NULL
        || api_add_count(doc, "marked", marked) != 0) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/*
 * POST /api/v1/events: a customer answered a ticket, so they read it.
 * Their messages on it sent at or before "at" count as opened and
 * reached from now on; "marked" says how many.
 */
void
api_events_post(struct api *api, const struct api_request *req,
                const char *arg, struct api_reply *reply)
{
    char err[API_ERR_MAX];
    char canonical[RECIPIENT_MAX + 2 * DOMAIN_MAX];
    struct reply_event e;
    struct store *st;
    cJSON *root;
    int64_t marked = 0;
    int rc;

    (void) arg;
    root = read_body(api, req, reply);
    if (root == NULL)
        return;
    if (read_event(root, req->now_ms, &e, err, sizeof err) != 0) {
        cJSON_Delete(root);
        api_reply_error(reply, 400, "%s", err);
        return;
    }

    canonical_recipient(&e.who, canonical, sizeof canonical);

    st = api_store_take(api);
    rc = store_reply_record(st, e.who.ticket_id, canonical, e.at_ms,
                            &marked);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        api_reply_store_error(reply, st, rc, "reply_record");
    api_store_give(api, st);

    if (rc == STORE_OK)
        api_reply_json(reply, 201, event_doc(&e, marked));
    else if (rc == STORE_NOTFOUND)
        api_reply_error(reply, 404,
                        "the ticket has no message to that recipient");
    cJSON_Delete(root);
}


/* A validated call. */
struct call {
    struct ticket_recipient who;        /* ticket_id unused */
    const char *outcome;
    const char *note;
};

/* outcome: required; one of the four a call can have. */
static int
read_outcome(const cJSON *root, struct call *c, char *err, size_t errlen)
{
    static const char *const outcomes[] = {
        "reached", "voicemail", "no_answer", "wrong_number"
    };
    size_t i;

    if (optional_string(root, "outcome", "outcome", OUTCOME_MAX,
                        &c->outcome, err, errlen) != 0)
        return -1;
    if (c->outcome == NULL || c->outcome[0] == '\0')
        return api_fail(err, errlen, "outcome is required");
    for (i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
        if (strcmp(c->outcome, outcomes[i]) == 0)
            return 0;
    return api_fail(err, errlen, "outcome must be \"reached\", "
                    "\"voicemail\", \"no_answer\" or \"wrong_number\"");
}


/* Validates a call body.  Unknown members are ignored. */
static int
read_call(const cJSON *root, struct call *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(root))
        return api_fail(err, errlen, "the body must be a JSON object");
    if (read_recipient(root, &c->who, err, errlen) != 0
        || read_outcome(root, c, err, errlen) != 0
        || optional_string(root, "note", "note", CALL_NOTE_MAX, &c->note,
                           err, errlen) != 0)
        return -1;
    return 0;
}


static cJSON *
call_doc(const struct call *c, int64_t id, int64_t at_ms, int64_t hide_ms)
{
    cJSON *doc = cJSON_CreateObject();
    int reached = strcmp(c->outcome, "reached") == 0;

    if (doc == NULL
        || api_add_count(doc, "id", id) != 0
        || cJSON_AddStringToObject(doc, "recipient", c->who.recipient)
               == NULL
        || cJSON_AddStringToObject(doc, "outcome", c->outcome) == NULL
        || api_add_string_or_null(doc, "note", c->note) != 0
        || api_add_time(doc, "at", at_ms) != 0
        || api_add_time_or_null(doc, "hidden_until",
                                reached ? at_ms + hide_ms : 0) != 0) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}


/*
 * POST /api/v1/calls: the team called a customer.  The call becomes the
 * last call on their call-list row; one that reached them hides them
 * from the list for the configured time ("hidden_until").
 */
void
api_calls_post(struct api *api, const struct api_request *req,
               const char *arg, struct api_reply *reply)
{
    char err[API_ERR_MAX];
    char canonical[RECIPIENT_MAX + 2 * DOMAIN_MAX];
    struct store_call_in in;
    struct call c;
    struct store *st;
    cJSON *root;
    int64_t id = 0;
    int rc;

    (void) arg;
    root = read_body(api, req, reply);
    if (root == NULL)
        return;
    if (read_call(root, &c, err, sizeof err) != 0) {
        cJSON_Delete(root);
        api_reply_error(reply, 400, "%s", err);
        return;
    }

    canonical_recipient(&c.who, canonical, sizeof canonical);
    in = (struct store_call_in) { canonical, req->now_ms, c.outcome,
                                  c.note };
    st = api_store_take(api);
    rc = store_call_add(st, &in, &id);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        api_reply_store_error(reply, st, rc, "call_add");
    api_store_give(api, st);

    if (rc == STORE_OK)
        api_reply_json(reply, 201, call_doc(&c, id, req->now_ms,
                                            api_config(api)->call_hide_ms));
    else if (rc == STORE_NOTFOUND)
        api_reply_error(reply, 404, "recipient: no such customer");
    cJSON_Delete(root);
}


/* Walking a ticket's rows into {"messages": [...]}. */
struct ticket_walk {
    cJSON *messages;
    cJSON *fetches;             /* of the message being filled */
    int64_t current;            /* its id */
};

/* What the message is: the same for each of its rows. */
static int
add_message_head(cJSON *m, const struct store_ticket_row *r)
{
    if (api_add_count(m, "id", r->message_id) != 0
        || api_add_string_or_null(m, "recipient", r->recipient) != 0
        || api_add_string_or_null(m, "kind", r->kind) != 0
        || api_add_time(m, "sent_at", r->sent_at_ms) != 0
        || api_add_time(m, "registered_at", r->registered_at_ms) != 0
        || api_add_string_or_null(m, "message_id",
                                  r->header_message_id) != 0)
        return -1;
    return 0;
}


/* Appends the string s to the array list; 0 when out of memory. */
static int
push_string(cJSON *list, const char *s)
{
    cJSON *item = cJSON_CreateString(s);

    if (item == NULL || !cJSON_AddItemToArray(list, item)) {
        cJSON_Delete(item);
        return 0;
    }
    return 1;
}


/*
 * Why the message counts as opened, as a list: "fetch" (a human or proxy
 * fetch) and "replied" (the customer answered the ticket).  Empty when
 * it was not opened.
 */
static int
add_open_evidence(cJSON *m, const struct store_ticket_row *r)
{
    cJSON *list = cJSON_AddArrayToObject(m, "opened_by");
    int64_t opens = r->by_class[STORE_HUMAN] + r->by_class[STORE_PROXY];

    if (list == NULL)
        return -1;
    if (opens > 0 && !push_string(list, "fetch"))
        return -1;
    if (r->replied_at_ms != 0 && !push_string(list, "replied"))
        return -1;
    return 0;
}


/*
 * What happened to it.  opened: a person opened it (a human or proxy
 * fetch, or the customer's reply), first at first_open_at.  reached_at:
 * the first delivery evidence (a fetch of any class but internal, or a
 * reply).  fetches_by_class counts every fetch, stored or not;
 * fetches_not_kept those over the per-message rows cap, which are
 * counted but have no row in "fetches".
 */
static int
add_message_figures(cJSON *m, const struct store_ticket_row *r)
{
    if (cJSON_AddBoolToObject(m, "opened", r->first_open_at_ms != 0)
            == NULL
        || add_open_evidence(m, r) != 0
        || api_add_time_or_null(m, "first_open_at", r->first_open_at_ms)
               != 0
        || api_add_time_or_null(m, "reached_at", r->reached_at_ms) != 0
        || api_add_time_or_null(m, "replied_at", r->replied_at_ms) != 0
        || api_add_by_class(m, "fetches_by_class", r->by_class) != 0
        || api_add_count(m, "fetches_not_kept", r->not_kept) != 0)
        return -1;
    return 0;
}


static cJSON *
message_doc(const struct store_ticket_row *r, cJSON **fetches)
{
    cJSON *m = cJSON_CreateObject();

    if (m == NULL || add_message_head(m, r) != 0
        || add_message_figures(m, r) != 0) {
        cJSON_Delete(m);
        return NULL;
    }
    *fetches = cJSON_AddArrayToObject(m, "fetches");
    if (*fetches == NULL) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}


/*
 * One stored fetch row.  A collapsed run of identical fetches is one row:
 * at is its first fetch, last_at its last, count how many it holds.
 */
static int
add_fetch(cJSON *fetches, const struct store_ticket_row *r)
{
    const char *referer = r->fetch_referer_host;
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToArray(fetches, o)) {
        cJSON_Delete(o);
        return -1;
    }
    if (referer != NULL && referer[0] == '\0')
        referer = NULL;
    if (api_add_time(o, "at", r->fetch_at_ms) != 0
        || api_add_time(o, "last_at", r->fetch_last_at_ms) != 0
        || api_add_count(o, "count", r->fetch_count) != 0
        || api_add_string_or_null(o, "class",
                                  store_class_name(r->fetch_class)) != 0
        || api_add_string_or_null(o, "rule", r->fetch_rule) != 0
        || api_add_string_or_null(o, "reason", r->fetch_reason) != 0
        || api_add_string_or_null(o, "user_agent", r->fetch_user_agent) != 0
        || api_add_string_or_null(o, "addr", r->fetch_addr) != 0
        || api_add_string_or_null(o, "referer_host", referer) != 0
        || api_add_count(o, "secs_since_send", r->fetch_secs_since_send)
               != 0)
        return -1;
    return 0;
}


/* store_ticket_read() callback; 1 stops the walk when out of memory. */
static int
ticket_row(void *ctx, const struct store_ticket_row *r)
{
    struct ticket_walk *w = ctx;
    cJSON *m;

    if (w->fetches == NULL || r->message_id != w->current) {
        m = message_doc(r, &w->fetches);
        if (m == NULL || !cJSON_AddItemToArray(w->messages, m)) {
            cJSON_Delete(m);
            return 1;
        }
        w->current = r->message_id;
    }
    if (r->has_fetch && add_fetch(w->fetches, r) != 0)
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
