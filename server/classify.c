/*
 * classify.c - the rules file and the classifier built on it (see
 * classify.h; the file format is documented in docs/RULES.md).
 *
 * Loading turns the file into plain arrays: lower-cased needles, parsed
 * networks and numbers, so that classifying a fetch only walks the rules
 * in order, allocates nothing and cannot fail.  The first rule whose
 * conditions all hold decides the verdict.
 */
#include "server/classify.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cidr.h"
#include "server/log.h"

#define RULES_MAX 1000
#define RULES_LINE_MAX 1000                 /* bytes, line end excluded */
#define RULES_ID_MAX (STORE_RULE_MAX - 1)   /* 47 */
#define RULES_REASON_MAX (STORE_REASON_MAX - 1)     /* 159 */
#define RULES_CONDS_MAX 16                  /* conditions in one rule */
#define RULES_SETS_MAX 64                   /* named network sets */
#define RULES_SET_NAME_MAX 31
#define RULES_NETS_MAX 4096                 /* networks in a set or list */
#define RULES_NUMBER_MAX 1000000000000LL    /* secs and burst bound */

/* The widest networks Beacon stores (server/pixel.c cuts to these). */
#define STORED_V4_BITS 24
#define STORED_V6_BITS 48

/* Bytes of a User-Agent that are searched (the store keeps 512). */
#define UA_VIEW_MAX 4096

enum cond_kind {
    COND_METHOD,        /* num: 1 for HEAD, 0 for GET */
    COND_UA_HAS,        /* text: lower-cased, never empty */
    COND_UA_LACKS,
    COND_UA_IS,         /* text: lower-cased, may be empty */
    COND_NET,           /* nets */
    COND_SECS_LT,       /* num */
    COND_SECS_GE,
    COND_BURST_GE,
    COND_REFERER_IS     /* text: lower-cased, may be empty */
};

struct cond {
    enum cond_kind kind;
    long long num;
    char *text;
    struct cidr *nets;
    size_t n_nets;
};

struct rule {
    char id[STORE_RULE_MAX];
    char reason[STORE_REASON_MAX];
    int cls;
    int whole_burst;            /* a burst condition decided it */
    unsigned line;
    struct cond *conds;
    size_t n_conds;
};

struct rules {
    struct rule *v;
    size_t n;
};

/* A named network set, "net NAME CIDR,...", alive while loading only. */
struct netset {
    char name[RULES_SET_NAME_MAX + 1];
    struct cidr *nets;
    size_t n;
    unsigned used_on;           /* line of the first rule using it, or 0 */
};

struct parser {
    const char *path;
    unsigned line;
    char *err;
    size_t errlen;
    struct rules *rules;
    struct netset sets[RULES_SETS_MAX];
    size_t n_sets;
};

/* How a condition is written: KEY OP VALUE. */
static const struct {
    const char *key;
    const char *op;
    enum cond_kind kind;
} cond_forms[] = {
    { "method", "=", COND_METHOD },
    { "ua", "!~", COND_UA_LACKS },
    { "ua", "~", COND_UA_HAS },
    { "ua", "=", COND_UA_IS },
    { "net", "=", COND_NET },
    { "secs", "<", COND_SECS_LT },
    { "secs", ">=", COND_SECS_GE },
    { "burst", ">=", COND_BURST_GE },
    { "referer", "=", COND_REFERER_IS },
};


static char
ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}


static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}


static const char *
skip_blanks(const char *s)
{
    while (is_blank(*s)) {
        s++;
    }
    return s;
}


/* A copy of s lower-cased (ASCII), or NULL when out of memory. */
static char *
lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);

    if (d != NULL) {
        for (size_t i = 0; i <= n; i++) {
            d[i] = ascii_lower(s[i]);
        }
    }
    return d;
}


/* Non-zero when s equals the lower-case text low, ignoring ASCII case. */
static int
equal_nocase(const char *s, const char *low)
{
    while (*s != '\0' && ascii_lower(*s) == *low) {
        s++;
        low++;
    }
    return *s == '\0' && *low == '\0';
}


static void
rule_release(struct rule *r)
{
    for (size_t i = 0; i < r->n_conds; i++) {
        free(r->conds[i].text);
        free(r->conds[i].nets);
    }
    free(r->conds);
    r->conds = NULL;
    r->n_conds = 0;
}


void
rules_free(struct rules *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        rule_release(&r->v[i]);
    }
    free(r->v);
    free(r);
}


size_t
rules_count(const struct rules *r)
{
    return r != NULL ? r->n : 0;
}


/* Writes "PATH:LINE: what" into the caller's buffer; returns -1. */
static int
fail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->errlen == 0) {
        return -1;
    }
    n = snprintf(p->err, p->errlen, "%s:%u: ", p->path, p->line);
    if (n >= 0 && (size_t) n < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t) n, fmt, ap);
        va_end(ap);
    }
    return -1;
}


/* ---- reading lines and tokens ---------------------------------------- */


/*
 * Reads the next line of f into buf (RULES_LINE_MAX + 2 bytes) without
 * its end ("\n" or "\r\n").  1 for a line, 0 at the end of the file, -1
 * with a message for an over-long line, a control byte or a read error.
 */
static int
read_line(struct parser *p, FILE *f, char *buf)
{
    size_t n = 0;
    int c;

    p->line++;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (n > RULES_LINE_MAX) {
            return fail(p, "line longer than %d bytes", RULES_LINE_MAX);
        }
        buf[n++] = (char) c;
    }
    if (ferror(f)) {
        return fail(p, "read error: %s", strerror(errno));
    }
    if (c == EOF && n == 0) {
        return 0;
    }

    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    if (n > RULES_LINE_MAX) {
        return fail(p, "line longer than %d bytes", RULES_LINE_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char u = (unsigned char) buf[i];

        if ((u < 0x20 && u != '\t') || u == 0x7f) {
            return fail(p, "control byte 0x%02x in line", u);
        }
    }
    buf[n] = '\0';
    return 1;
}


/*
 * Copies the next blank-separated token at *cur into out (which holds a
 * whole line), dropping the quotes of a quoted part: ua~"Office 365"
 * gives ua~Office 365.  1 for a token, 0 when none is left, -1 with a
 * message for a bad quote.
 */
static int
next_token(struct parser *p, const char **cur, char *out)
{
    const char *s = skip_blanks(*cur);
    size_t n = 0;

    if (*s == '\0') {
        *cur = s;
        return 0;
    }

    while (*s != '\0' && !is_blank(*s) && *s != '"') {
        out[n++] = *s++;
    }
    if (*s == '"') {
        const char *end = strchr(s + 1, '"');

        if (end == NULL) {
            return fail(p, "unterminated quote");
        }
        memcpy(out + n, s + 1, (size_t) (end - s - 1));
        n += (size_t) (end - s - 1);
        s = end + 1;
        if (*s != '\0' && !is_blank(*s)) {
            return fail(p, "text after a closing quote");
        }
    }

    out[n] = '\0';
    *cur = s;
    return 1;
}


/* Rule ids and set names: letters, digits, '.', '_', '-'. */
static int
is_name(const char *s)
{
    if (*s == '\0') {
        return 0;
    }
    for (; *s != '\0'; s++) {
        char c = ascii_lower(*s);

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}


/* ---- networks ------------------------------------------------------ */


static struct netset *
find_set(struct parser *p, const char *name)
{
    for (size_t i = 0; i < p->n_sets; i++) {
        if (strcmp(p->sets[i].name, name) == 0) {
            return &p->sets[i];
        }
    }
    return NULL;
}


/* Appends n networks to the array *v of *len; -1 with a message. */
static int
add_nets(struct parser *p, struct cidr **v, size_t *len,
         const struct cidr *nets, size_t n)
{
    struct cidr *grown;

    if (n > RULES_NETS_MAX - *len) {
        return fail(p, "more than %d networks in one list or set",
                    RULES_NETS_MAX);
    }
    grown = realloc(*v, (*len + n) * sizeof(**v));
    if (grown == NULL) {
        return fail(p, "out of memory");
    }
    memcpy(grown + *len, nets, n * sizeof(*nets));
    *v = grown;
    *len += n;
    return 0;
}


/*
 * Parses one CIDR of a list.  Beacon stores IPv4 networks cut to /24 and
 * IPv6 ones to /48, so a narrower network could never match: rejected.
 */
static int
parse_one_net(struct parser *p, const char *s, struct cidr *out)
{
    unsigned widest;

    if (cidr_parse(s, out) != 0) {
        return fail(p, "\"%.60s\" is not a network (ADDRESS/BITS)", s);
    }
    widest = out->net.family == AF_INET ? STORED_V4_BITS : STORED_V6_BITS;
    if (out->bits > widest) {
        return fail(p, "network %.60s is narrower than /%u: Beacon stores "
                    "only the /%u network of a client, so it could never "
                    "match", s, widest, widest);
    }
    return 0;
}


/*
 * Parses "CIDR,@set,..." onto the array *v.  A set is copied as it is
 * now; it is marked used so that it cannot grow later.
 */
static int
parse_net_list(struct parser *p, const char *list, struct cidr **v,
               size_t *len, int allow_sets)
{
    char item[RULES_LINE_MAX + 1];

    while (1) {
        const char *comma = strchr(list, ',');
        size_t n = comma != NULL ? (size_t) (comma - list) : strlen(list);
        struct cidr one;

        if (n == 0) {
            return fail(p, "empty network in a list");
        }
        memcpy(item, list, n);
        item[n] = '\0';

        if (item[0] == '@') {
            struct netset *set = allow_sets ? find_set(p, item + 1) : NULL;

            if (!allow_sets) {
                return fail(p, "a set cannot include another (%.40s)", item);
            }
            if (set == NULL) {
                return fail(p, "unknown network set %.40s (define it with "
                            "a \"net\" line above)", item);
            }
            if (set->used_on == 0) {
                set->used_on = p->line;
            }
            if (add_nets(p, v, len, set->nets, set->n) != 0) {
                return -1;
            }
        } else if (parse_one_net(p, item, &one) != 0
                   || add_nets(p, v, len, &one, 1) != 0) {
            return -1;
        }

        if (comma == NULL) {
            return 0;
        }
        list = comma + 1;
    }
}


/*
 * Non-zero when s holds a word starting with a single ':' (the mark
 * before a rule's reason); "::/0" and other IPv6 networks do not count.
 */
static int
has_reason_mark(const char *s)
{
    for (const char *c = s; *c != '\0'; c++) {
        if (*c == ':' && c[1] != ':' && (c == s || is_blank(c[-1]))) {
            return 1;
        }
    }
    return 0;
}


/* "net NAME CIDR[,CIDR...] ..." - defines or extends a network set. */
static int
parse_set_line(struct parser *p, const char *cur)
{
    char tok[RULES_LINE_MAX + 1];
    struct netset *set;
    int rc;

    if (has_reason_mark(cur)) {
        return fail(p, "a rule cannot be called \"net\": the word starts "
                    "a network set line");
    }
    rc = next_token(p, &cur, tok);
    if (rc <= 0) {
        return rc < 0 ? -1 : fail(p, "\"net\" needs a set name and networks");
    }
    if (!is_name(tok) || strlen(tok) > RULES_SET_NAME_MAX) {
        return fail(p, "bad network set name \"%.40s\" (letters, digits, "
                    "'.', '_', '-'; at most %d)", tok, RULES_SET_NAME_MAX);
    }

    set = find_set(p, tok);
    if (set == NULL) {
        if (p->n_sets == RULES_SETS_MAX) {
            return fail(p, "more than %d network sets", RULES_SETS_MAX);
        }
        set = &p->sets[p->n_sets++];
        memcpy(set->name, tok, strlen(tok) + 1);    /* length checked */
    } else if (set->used_on != 0) {
        return fail(p, "network set \"%s\" is already used by the rule on "
                    "line %u: add its networks before its first use",
                    set->name, set->used_on);
    }

    rc = next_token(p, &cur, tok);
    if (rc == 0) {
        return fail(p, "network set \"%s\" needs networks", set->name);
    }
    for (; rc > 0; rc = next_token(p, &cur, tok)) {
        if (parse_net_list(p, tok, &set->nets, &set->n, 0) != 0) {
            return -1;
        }
    }
    return rc;
}


static void
sets_release(struct parser *p)
{
    for (size_t i = 0; i < p->n_sets; i++) {
        free(p->sets[i].nets);
    }
    p->n_sets = 0;
}


/* ---- conditions ---------------------------------------------------- */


/* A decimal number 0..RULES_NUMBER_MAX; -1 with a message. */
static int
parse_number(struct parser *p, const char *s, const char *tok,
             long long *out)
{
    long long v = 0;

    if (*s == '\0') {
        return fail(p, "\"%.60s\" needs a number", tok);
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return fail(p, "\"%.60s\": not a whole number", tok);
        }
        v = v * 10 + (*s - '0');
        if (v > RULES_NUMBER_MAX) {
            return fail(p, "\"%.60s\": number too large", tok);
        }
    }
    *out = v;
    return 0;
}


/* Fills c from the value part of a condition token. */
static int
parse_cond_value(struct parser *p, struct cond *c, const char *val,
                 const char *tok)
{
    switch (c->kind) {
    case COND_METHOD:
        if (equal_nocase(val, "get") || equal_nocase(val, "head")) {
            c->num = equal_nocase(val, "head");
            return 0;
        }
        return fail(p, "method must be GET or HEAD, not \"%.40s\"", val);
    case COND_UA_HAS:
    case COND_UA_LACKS:
        if (*val == '\0') {
            return fail(p, "\"%.60s\" needs text to look for", tok);
        }
        break;
    case COND_UA_IS:
    case COND_REFERER_IS:
        break;
    case COND_NET:
        if (*val == '\0') {
            return fail(p, "net= needs networks or @set");
        }
        return parse_net_list(p, val, &c->nets, &c->n_nets, 1);
    case COND_SECS_LT:
    case COND_SECS_GE:
        return parse_number(p, val, tok, &c->num);
    case COND_BURST_GE:
        if (parse_number(p, val, tok, &c->num) != 0) {
            return -1;
        }
        return c->num >= 1 ? 0 : fail(p, "burst>= needs at least 1");
    }

    c->text = lower_dup(val);
    return c->text != NULL ? 0 : fail(p, "out of memory");
}


/* Parses one condition token into a new condition of r. */
static int
parse_cond(struct parser *p, struct rule *r, const char *tok)
{
    struct cond *c;
    struct cond *grown;

    if (r->n_conds == RULES_CONDS_MAX) {
        return fail(p, "more than %d conditions in one rule",
                    RULES_CONDS_MAX);
    }
    grown = realloc(r->conds, (r->n_conds + 1) * sizeof(*grown));
    if (grown == NULL) {
        return fail(p, "out of memory");
    }
    r->conds = grown;
    c = &r->conds[r->n_conds];
    memset(c, 0, sizeof(*c));

    for (size_t i = 0; i < sizeof(cond_forms) / sizeof(cond_forms[0]);
         i++) {
        size_t klen = strlen(cond_forms[i].key);
        size_t olen = strlen(cond_forms[i].op);

        if (strncmp(tok, cond_forms[i].key, klen) == 0
            && strncmp(tok + klen, cond_forms[i].op, olen) == 0) {
            c->kind = cond_forms[i].kind;
            r->n_conds++;
            r->whole_burst |= c->kind == COND_BURST_GE;
            return parse_cond_value(p, c, tok + klen + olen, tok);
        }
    }
    return fail(p, "unknown condition \"%.60s\" (method=, ua~, ua!~, ua=, "
                "net=, secs<, secs>=, burst>=, referer=)", tok);
}


/* ---- rules --------------------------------------------------------- */


static int
parse_class(struct parser *p, const char *tok)
{
    char names[160];
    size_t n = 0;
    int cls = store_class_parse(tok);

    if (cls >= 0) {
        return cls;
    }
    names[0] = '\0';
    for (int i = 0; i < STORE_N_CLASSES && n < sizeof(names); i++) {
        const char *name = store_class_name(i);
        int w = snprintf(names + n, sizeof(names) - n, "%s%s",
                         i > 0 ? ", " : "", name != NULL ? name : "?");

        n += w > 0 ? (size_t) w : 0;
    }
    return fail(p, "unknown class \"%.40s\" (%s)", tok, names);
}


/* The id and class that start a rule line. */
static int
parse_rule_head(struct parser *p, struct rule *r, const char **cur)
{
    char tok[RULES_LINE_MAX + 1];
    int rc = next_token(p, cur, tok);

    if (rc <= 0) {
        return rc < 0 ? -1 : fail(p, "missing rule id");
    }
    if (!is_name(tok)) {
        return fail(p, "bad rule id \"%.60s\" (letters, digits, '.', '_', "
                    "'-')", tok);
    }
    if (strlen(tok) > RULES_ID_MAX) {
        return fail(p, "rule id \"%.60s\" is longer than %d characters", tok,
                    RULES_ID_MAX);
    }
    if (strcmp(tok, "default") == 0) {
        return fail(p, "rule id \"default\" is kept for fetches no rule "
                    "matches");
    }
    for (size_t i = 0; i < p->rules->n; i++) {
        if (strcmp(p->rules->v[i].id, tok) == 0) {
            return fail(p, "rule id \"%s\" is already used on line %u", tok,
                        p->rules->v[i].line);
        }
    }
    memcpy(r->id, tok, strlen(tok) + 1);    /* length checked above */

    if (**cur == '\0' || *skip_blanks(*cur) == ':') {
        return fail(p, "rule \"%s\" needs a class after its id", r->id);
    }
    if (next_token(p, cur, tok) <= 0) {
        return -1;
    }
    r->cls = parse_class(p, tok);
    return r->cls < 0 ? -1 : 0;
}


/* The reason after ':', blanks trimmed. */
static int
parse_reason(struct parser *p, struct rule *r, const char *s)
{
    const char *end;

    s = skip_blanks(s);
    end = s + strlen(s);
    while (end > s && is_blank(end[-1])) {
        end--;
    }
    if (end == s) {
        return fail(p, "rule \"%s\" has no reason after ':'", r->id);
    }
    if (end - s > RULES_REASON_MAX) {
        return fail(p, "reason longer than %d bytes", RULES_REASON_MAX);
    }
    memcpy(r->reason, s, (size_t) (end - s));
    r->reason[end - s] = '\0';
    return 0;
}


/* "ID CLASS CONDITION... : REASON" */
static int
parse_rule_line(struct parser *p, const char *cur)
{
    char tok[RULES_LINE_MAX + 1];
    struct rule r;
    struct rule *grown;

    memset(&r, 0, sizeof(r));
    r.line = p->line;
    if (p->rules->n == RULES_MAX) {
        return fail(p, "more than %d rules", RULES_MAX);
    }
    if (parse_rule_head(p, &r, &cur) != 0) {
        goto fail;
    }

    while (*(cur = skip_blanks(cur)) != ':') {
        if (*cur == '\0') {
            fail(p, "rule \"%s\" needs ': reason' at its end", r.id);
            goto fail;
        }
        if (next_token(p, &cur, tok) < 0 || parse_cond(p, &r, tok) != 0) {
            goto fail;
        }
    }
    if (parse_reason(p, &r, cur + 1) != 0) {
        goto fail;
    }

    grown = realloc(p->rules->v, (p->rules->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        fail(p, "out of memory");
        goto fail;
    }
    p->rules->v = grown;
    p->rules->v[p->rules->n++] = r;
    return 0;

fail:
    rule_release(&r);
    return -1;
}


static int
parse_line(struct parser *p, const char *line)
{
    const char *s = skip_blanks(line);

    if (*s == '\0' || *s == '#') {
        return 0;
    }
    if (strncmp(s, "net", 3) == 0 && (is_blank(s[3]) || s[3] == '\0')) {
        return parse_set_line(p, s + 3);
    }
    return parse_rule_line(p, s);
}


int
rules_load(struct rules **out, const char *path, char *err, size_t errlen)
{
    char line[RULES_LINE_MAX + 2];
    struct parser p;
    FILE *f;
    int rc;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    p.path = path;
    p.err = err;
    p.errlen = errlen;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    p.rules = calloc(1, sizeof(*p.rules));
    if (p.rules == NULL) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }

    while ((rc = read_line(&p, f, line)) > 0 && parse_line(&p, line) == 0) {
    }
    fclose(f);
    sets_release(&p);

    /* An empty file is almost surely a mistake: it would count every
     * machine as a person. */
    if (rc == 0 && p.rules->n == 0) {
        snprintf(err, errlen, "%s: holds no rule", path);
        rc = -1;
    }
    if (rc != 0) {
        rules_free(p.rules);
        return -1;
    }
    *out = p.rules;
    return 0;
}


/* ---- matching ------------------------------------------------------ */


/* The facts of one fetch, prepared once for every rule. */
struct view {
    const struct store_fetch_facts *f;
    char ua[UA_VIEW_MAX];       /* lower-cased, cut at UA_VIEW_MAX - 1 */
    int ua_whole;
    struct cidr_addr addr;
    int have_addr;
};


static void
view_init(struct view *w, const struct store_fetch_facts *f)
{
    const char *ua = f->user_agent != NULL ? f->user_agent : "";
    size_t n = 0;

    w->f = f;
    /* Limitation: only the first UA_VIEW_MAX - 1 bytes are searched. */
    while (ua[n] != '\0' && n < UA_VIEW_MAX - 1) {
        w->ua[n] = ascii_lower(ua[n]);
        n++;
    }
    w->ua[n] = '\0';
    w->ua_whole = ua[n] == '\0';
    w->have_addr = f->network != NULL
                   && cidr_addr_parse(f->network, &w->addr) == 0;
}


static int
net_matches(const struct view *w, const struct cond *c)
{
    if (!w->have_addr) {
        return 0;
    }
    for (size_t i = 0; i < c->n_nets; i++) {
        if (cidr_contains(&c->nets[i], &w->addr)) {
            return 1;
        }
    }
    return 0;
}


static int
cond_holds(const struct view *w, const struct cond *c)
{
    const struct store_fetch_facts *f = w->f;

    switch (c->kind) {
    case COND_METHOD:
        return (f->is_head != 0) == (c->num != 0);
    case COND_UA_HAS:
        return strstr(w->ua, c->text) != NULL;
    case COND_UA_LACKS:
        return strstr(w->ua, c->text) == NULL;
    case COND_UA_IS:
        return w->ua_whole && strcmp(w->ua, c->text) == 0;
    case COND_NET:
        return net_matches(w, c);
    case COND_SECS_LT:
        return f->secs_since_send < c->num;
    case COND_SECS_GE:
        return f->secs_since_send >= c->num;
    case COND_BURST_GE:
        return (long long) f->burst_clients >= c->num;
    case COND_REFERER_IS:
        return equal_nocase(f->referer_host != NULL ? f->referer_host : "",
                            c->text);
    }
    return 0;
}


static int
rule_holds(const struct view *w, const struct rule *r)
{
    for (size_t i = 0; i < r->n_conds; i++) {
        if (!cond_holds(w, &r->conds[i])) {
            return 0;
        }
    }
    return 1;
}


void
rules_classify(const struct rules *r, const struct store_fetch_facts *f,
               struct store_verdict *v)
{
    const struct rule *own = NULL, *burst = NULL;
    struct view w;

    view_init(&w, f);
    for (size_t i = 0; r != NULL && i < r->n && burst == NULL; i++) {
        const struct rule *rule = &r->v[i];

        if ((own == NULL || rule->whole_burst) && rule_holds(&w, rule)) {
            own = own == NULL ? rule : own;
            burst = rule->whole_burst ? rule : NULL;
        }
    }

    /*
     * A burst is judged apart from the fetch's own rule, so that it does
     * not matter which of its fetches a higher rule caught: the burst
     * verdict goes to the earlier human fetches of the burst, and to this
     * one when its own verdict is human.
     */
    memset(v, 0, sizeof(*v));
    if (burst != NULL) {
        v->whole_burst = 1;
        v->burst_cls = burst->cls;
        snprintf(v->burst_rule, sizeof(v->burst_rule), "%s", burst->id);
        snprintf(v->burst_reason, sizeof(v->burst_reason), "%s",
                 burst->reason);
        if (own == NULL || own->cls == STORE_HUMAN) {
            own = burst;
        }
    }

    if (own != NULL) {
        v->cls = own->cls;
        snprintf(v->rule, sizeof(v->rule), "%s", own->id);
        snprintf(v->reason, sizeof(v->reason), "%s", own->reason);
    } else {
        v->cls = STORE_HUMAN;
        snprintf(v->rule, sizeof(v->rule), "default");
        snprintf(v->reason, sizeof(v->reason),
                 "no rule matched: counted as a person");
    }
}


/* ---- the replaceable classifier ------------------------------------ */


struct classifier {
    pthread_rwlock_t lock;      /* guards rules */
    char *path;
    struct rules *rules;
};


int
classifier_new(struct classifier **out, const char *path, char *err,
               size_t errlen)
{
    struct classifier *c;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(c);
        return -1;
    }
    if (rules_load(&c->rules, path, err, errlen) != 0) {
        free(c->path);
        free(c);
        return -1;
    }
    if (pthread_rwlock_init(&c->lock, NULL) != 0) {
        snprintf(err, errlen, "%s: cannot create a lock", path);
        rules_free(c->rules);
        free(c->path);
        free(c);
        return -1;
    }

    log_msg(LOG_INFO, "rules.loaded", "path=%s rules=%zu", path,
            rules_count(c->rules));
    *out = c;
    return 0;
}


int
classifier_reload(struct classifier *c, char *err, size_t errlen)
{
    struct rules *fresh;
    struct rules *old;
    size_t before;

    /* The new file is read in full before the lock is taken. */
    if (rules_load(&fresh, c->path, err, errlen) != 0) {
        pthread_rwlock_rdlock(&c->lock);
        before = rules_count(c->rules);
        pthread_rwlock_unlock(&c->lock);
        log_msg(LOG_WARN, "rules.reload_failed", "path=%s kept=%zu "
                "error=\"%s\"", c->path, before, errlen > 0 ? err : "");
        return -1;
    }

    pthread_rwlock_wrlock(&c->lock);
    old = c->rules;
    c->rules = fresh;
    pthread_rwlock_unlock(&c->lock);

    before = rules_count(old);
    rules_free(old);
    log_msg(LOG_INFO, "rules.reloaded", "path=%s rules=%zu previous=%zu",
            c->path, rules_count(fresh), before);
    return 0;
}


void
classifier_free(struct classifier *c)
{
    if (c == NULL) {
        return;
    }
    pthread_rwlock_destroy(&c->lock);
    rules_free(c->rules);
    free(c->path);
    free(c);
}


void
classifier_classify(void *ctx, const struct store_fetch_facts *f,
                    struct store_verdict *v)
{
    struct classifier *c = ctx;

    if (c == NULL) {
        rules_classify(NULL, f, v);
        return;
    }
    pthread_rwlock_rdlock(&c->lock);
    rules_classify(c->rules, f, v);
    pthread_rwlock_unlock(&c->lock);
}
