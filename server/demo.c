/*
 * demo.c - a made-up month of a support team's mail, written through the
 * store and classified by the real rules.
 *
 * The month: a few hundred customers at a dozen providers, each with one
 * to three tickets (a confirmation, then one to four replies), fetched
 * the way each provider fetches (Gmail's image proxy, Apple's privacy
 * relay, a company's security gateway, people's own mail clients), some
 * customers answering.  yahoo.com stops opening in the last seven days,
 * as when a provider starts junking the team's mail, so the alerts have
 * something to find.  One seeded generator drives every choice.
 */
#include "server/demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/classify.h"

#define SEC_MS 1000LL
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

#define N_CUSTOMERS 400
#define MONTH_DAYS 30
#define COLLAPSE_DAYS 7
#define BATCH_MAX 64            /* fetches held before a write */
#define TICKET_REPLIES_MAX 4

/* Nothing is sent or fetched closer to now than this: the month ends
 * with a quiet moment rather than with mail still in flight. */
#define QUIET_MS (5 * MIN_MS)

/*
 * The team's office, added to the rules for the demo: the shipped rules
 * leave the office rule for each team to fill in, and without it no view
 * is internal.  198.51.100.0/24 is TEST-NET-2, which no real client uses.
 */
#define OFFICE_NET "198.51.100.0"
static const char office_rules[] =
    "\n# Added by beacon demo: the support team's own office.\n"
    "net demo-office 198.51.100.0/24\n"
    "demo-office internal net=@demo-office : opened from the support "
    "team's office (demo)\n";


/* ---- the generator ------------------------------------------------- */


/* SplitMix64 as a sequence: small, fast and the same on every machine. */
struct rng {
    uint64_t state;
};


static uint64_t
rng_next(struct rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}


/* Uniform in [0, 1). */
static double
rng_unit(struct rng *r)
{
    return (double) (rng_next(r) >> 11) * 0x1.0p-53;
}


/* Uniform in [0, n); n > 0.  The modulo bias is far below what a demo
 * could show. */
static unsigned
rng_below(struct rng *r, unsigned n)
{
    return (unsigned) (rng_next(r) % n);
}


static int
rng_chance(struct rng *r, double p)
{
    return rng_unit(r) < p;
}


/* Uniform in [lo, hi] milliseconds. */
static int64_t
rng_span(struct rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t) (rng_next(r) % (uint64_t) (hi - lo + 1));
}


/* ---- providers and people ------------------------------------------ */


/* How a provider's mail gets fetched besides by the reader. */
enum fetcher {
    PLAIN,                      /* only the reader's own clients */
    GMAIL_PROXY,                /* every open through Google's proxy */
    YAHOO_PROXY,                /* webmail opens through Yahoo's proxy */
    APPLE_MPP,                  /* Apple prefetches on delivery */
    HEAD_CHECKS,                /* link checkers send HEADs */
    SCANNER_BURST,              /* a gateway fans out to three scanners */
    GATEWAY_UA                  /* a gateway that names itself */
};

struct provider {
    const char *host;
    unsigned weight;            /* share of the customers */
    double open_rate;           /* a typical reader's chance to open */
    enum fetcher fetcher;
    char country;               /* phone style: 'u' US, 'k' UK, 'd' DE */
    int collapses;              /* opens stop in the last week */
};

static const struct provider providers[] = {
    { "gmail.com", 24, 0.62, GMAIL_PROXY, 'u', 0 },
    { "yahoo.com", 13, 0.58, YAHOO_PROXY, 'u', 1 },
    { "outlook.com", 9, 0.55, HEAD_CHECKS, 'u', 0 },
    { "hotmail.com", 7, 0.50, HEAD_CHECKS, 'u', 0 },
    { "icloud.com", 8, 0.30, APPLE_MPP, 'u', 0 },
    { "gmx.de", 6, 0.55, PLAIN, 'd', 0 },
    { "web.de", 5, 0.50, PLAIN, 'd', 0 },
    { "aol.com", 4, 0.40, PLAIN, 'u', 0 },
    { "proton.me", 4, 0.35, PLAIN, 'd', 0 },
    { "acme.example", 5, 0.60, SCANNER_BURST, 'u', 0 },
    { "eu.acme.example", 2, 0.60, SCANNER_BURST, 'd', 0 },
    { "globex.example", 4, 0.55, GATEWAY_UA, 'u', 0 },
    { "yahoo.co.uk", 3, 0.50, YAHOO_PROXY, 'k', 0 },
    { "mail.yahoo.co.uk", 2, 0.50, YAHOO_PROXY, 'k', 0 },
};
#define N_PROVIDERS (sizeof(providers) / sizeof(providers[0]))

static const char *const first_names[] = {
    "Anna", "Ben", "Carla", "David", "Emma", "Felix", "Grace", "Hannah",
    "Ivan", "Julia", "Karim", "Laura", "Mateo", "Nina", "Oliver", "Priya",
    "Quentin", "Rosa", "Samuel", "Tara", "Umar", "Vera", "William",
    "Ximena", "Yusuf", "Zoe", "Lena", "Jonas", "Mia", "Lukas", "Sofia",
    "Noah", "Aisha", "Chen", "Marta", "Pedro", "Ingrid", "Kenji", "Olga",
    "Tom",
};

static const char *const last_names[] = {
    "Schmidt", "Miller", "Garcia", "Nguyen", "Kowalski", "Rossi",
    "Johnson", "Weber", "Smith", "Tanaka", "Dubois", "Fischer", "Brown",
    "Silva", "Novak", "Meyer", "Wilson", "Lopez", "Kim", "Jansen",
    "Hughes", "Becker", "Moreau", "Patel", "Larsen", "Costa", "Wagner",
    "Taylor", "Ivanova", "Schulz", "Murphy", "Hoffmann", "Martin",
    "Andersen", "Clarke", "Kaya", "Popescu", "Walsh", "Lindqvist",
    "Evans",
};
#define N_FIRST (sizeof(first_names) / sizeof(first_names[0]))
#define N_LAST (sizeof(last_names) / sizeof(last_names[0]))

/* Mail clients on a computer: Outlook, Apple Mail, Thunderbird, and
 * webmail in a browser. */
static const char *const desktop_uas[] = {
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook "
    "16.0.17328; Pro)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
    " (KHTML, like Gecko)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 "
    "Thunderbird/115.6.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML,"
    " like Gecko) Chrome/120.0.0.0 Safari/537.36",
};

/* Mail apps on a phone. */
static const char *const mobile_uas[] = {
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML,"
    " like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
};
#define N_DESKTOP (sizeof(desktop_uas) / sizeof(desktop_uas[0]))
#define N_MOBILE (sizeof(mobile_uas) / sizeof(mobile_uas[0]))

static const char gmail_proxy_ua[] =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
    "(via ggpht.com GoogleImageProxy)";
static const char yahoo_proxy_ua[] =
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-"
    "SLN28749.html";
static const char gateway_ua[] = "Barracuda Sentinel (EE)";
static const char head_check_ua[] =
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)";

/* First octets of consumer networks, clear of every network the shipped
 * rules name (Apple, Microsoft, the gateways). */
static const unsigned home_octets[] = {
    24, 31, 46, 73, 78, 79, 82, 84, 86, 88, 91, 94, 109, 176, 188, 212,
};
#define N_HOME (sizeof(home_octets) / sizeof(home_octets[0]))

struct customer {
    const struct provider *prov;
    char recipient[96];
    char name[48];
    char phone[32];             /* "" when the team has none */
    double value;
    double open_p;              /* chance to open a given message */
    char home_net[STORE_ADDR_MAX];
    char mobile_net[STORE_ADDR_MAX];
    const char *desktop_ua;
    const char *mobile_ua;
};


/* ---- one run ------------------------------------------------------- */


struct gen {
    struct store *st;
    struct rules *rules;
    struct rng rng;
    int64_t now;
    struct demo_counts *counts;
    unsigned next_ticket;
    struct store_fetch_rec batch[BATCH_MAX];
    size_t n_batch;
    int64_t reply_at[TICKET_REPLIES_MAX + 1];
    size_t n_replies;
    char *err;
    size_t errlen;
};


static void
classify_with_rules(void *ctx, const struct store_fetch_facts *f,
                    struct store_verdict *v)
{
    rules_classify(ctx, f, v);
}


static int
add_sent(void *ctx, const struct store_domain_row *r)
{
    *(int64_t *) ctx += r->sent;
    return 0;
}


/* Demo data goes only into a database without messages. */
static int
check_empty(struct store *st, char *err, size_t errlen)
{
    int64_t sent = 0;

    if (store_domains(st, INT64_MIN, INT64_MAX, add_sent, &sent)
        != STORE_OK) {
        snprintf(err, errlen, "%s", store_errmsg(st));
        return -1;
    }
    if (sent > 0) {
        snprintf(err, errlen, "the database already holds %lld messages; "
                 "demo data goes only into an empty one",
                 (long long) sent);
        return -1;
    }
    return 0;
}


/* Copies the file at path to out, then the office rules. */
static int
write_rules_copy(const char *path, FILE *out, char *err, size_t errlen)
{
    char buf[4096];
    size_t n;
    FILE *in = fopen(path, "r");

    if (in == NULL) {
        snprintf(err, errlen, "cannot read %.200s", path);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        if (fwrite(buf, 1, n, out) != n) {
            break;
        }
    }
    int bad = ferror(in) || ferror(out);
    fclose(in);
    if (bad || fputs(office_rules, out) == EOF) {
        snprintf(err, errlen, "cannot copy %.200s to a temporary file",
                 path);
        return -1;
    }
    return 0;
}


/*
 * Loads the rules file at path with the demo's office rule appended, by
 * way of a temporary copy (rules_load reads files only).  The file alone
 * is loaded first so that its errors name it, not the copy.
 */
static int
load_rules(struct rules **out, const char *path, char *err, size_t errlen)
{
    const char *dir = getenv("TMPDIR");
    char tmp[512];
    FILE *f = NULL;
    int fd, rc;

    if (rules_load(out, path, err, errlen) != 0) {
        return -1;
    }
    rules_free(*out);
    *out = NULL;

    snprintf(tmp, sizeof(tmp), "%s/beacon-demo-rules-XXXXXX",
             dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    fd = mkstemp(tmp);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "cannot create a temporary rules file in "
                 "%.200s", dir != NULL ? dir : "/tmp");
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return -1;
    }
    rc = write_rules_copy(path, f, err, errlen);
    if (fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot write a temporary rules file");
        rc = -1;
    }
    if (rc == 0) {
        rc = rules_load(out, tmp, err, errlen);
    }
    unlink(tmp);
    return rc;
}


/* ---- customers ----------------------------------------------------- */


static const struct provider *
pick_provider(struct rng *r)
{
    unsigned total = 0, x;

    for (size_t i = 0; i < N_PROVIDERS; i++) {
        total += providers[i].weight;
    }
    x = rng_below(r, total);
    for (size_t i = 0; i < N_PROVIDERS; i++) {
        if (x < providers[i].weight) {
            return &providers[i];
        }
        x -= providers[i].weight;
    }
    return &providers[0];
}


/* A made-up number in each country's style; US numbers in 555-01xx and
 * UK ones in 020 7946 0xxx, the ranges kept for fiction. */
static void
make_phone(struct rng *r, char country, char *out, size_t len)
{
    if (country == 'k') {
        snprintf(out, len, "+44 20 7946 0%03u", rng_below(r, 1000));
    } else if (country == 'd') {
        snprintf(out, len, "+49 30 %04u %04u", 1000 + rng_below(r, 9000),
                 rng_below(r, 10000));
    } else {
        snprintf(out, len, "+1 %03u-555-01%02u", 201 + rng_below(r, 780),
                 rng_below(r, 100));
    }
}


/* A skewed value: most customers are worth a little, a few a lot
 * (Pareto with shape 1 from 80: half under 160, one in a hundred over
 * 8000), in whole units. */
static double
make_value(struct rng *r)
{
    double v = 80.0 / (1.0 - rng_unit(r));

    return (double) (int64_t) (v > 50000.0 ? 50000.0 : v);
}


static void
make_net(struct rng *r, char *out)
{
    snprintf(out, STORE_ADDR_MAX, "%u.%u.%u.0",
             home_octets[rng_below(r, N_HOME)], rng_below(r, 256),
             rng_below(r, 256));
}


/*
 * A reader's habit: about one in eight never loads images (on the call
 * list for good), the rest open around their provider's rate.
 */
static double
make_open_p(struct rng *r, const struct provider *p)
{
    double x;

    if (rng_chance(r, 0.08)) {
        return 0.0;
    }
    x = p->open_rate * (0.75 + 0.5 * rng_unit(r));
    return x > 0.95 ? 0.95 : x;
}


/* Names are drawn without repeats, so every customer has their own
 * address. */
static void
make_name(struct rng *r, unsigned char used[N_FIRST][N_LAST],
          struct customer *c)
{
    size_t f, l;

    do {
        f = rng_below(r, N_FIRST);
        l = rng_below(r, N_LAST);
    } while (used[f][l]);
    used[f][l] = 1;

    snprintf(c->name, sizeof(c->name), "%s %s", first_names[f],
             last_names[l]);
    snprintf(c->recipient, sizeof(c->recipient), "%s.%s@%s",
             first_names[f], last_names[l], c->prov->host);
    for (char *p = c->recipient; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char) (*p - 'A' + 'a');
        }
    }
}


static void
make_customers(struct rng *r, struct customer *v, size_t n)
{
    static unsigned char used[N_FIRST][N_LAST];

    memset(used, 0, sizeof(used));
    for (size_t i = 0; i < n; i++) {
        struct customer *c = &v[i];

        c->prov = pick_provider(r);
        make_name(r, used, c);
        c->phone[0] = '\0';
        if (rng_chance(r, 0.8)) {
            make_phone(r, c->prov->country, c->phone, sizeof(c->phone));
        }
        c->value = make_value(r);
        c->open_p = make_open_p(r, c->prov);
        make_net(r, c->home_net);
        make_net(r, c->mobile_net);
        c->desktop_ua = desktop_uas[rng_below(r, N_DESKTOP)];
        c->mobile_ua = mobile_uas[rng_below(r, N_MOBILE)];
    }
}


/* ---- fetches ------------------------------------------------------- */


static int
by_time(const void *a, const void *b)
{
    const struct store_fetch_rec *x = a, *y = b;

    return (x->at_ms > y->at_ms) - (x->at_ms < y->at_ms);
}


/* Writes the held fetches in time order, as the writer would have. */
static int
flush_fetches(struct gen *g)
{
    struct store_write_result res;

    if (g->n_batch == 0) {
        return 0;
    }
    qsort(g->batch, g->n_batch, sizeof(g->batch[0]), by_time);
    if (store_fetches_write(g->st, g->batch, g->n_batch,
                            classify_with_rules, g->rules, &res)
        != STORE_OK) {
        snprintf(g->err, g->errlen, "writing fetches: %s",
                 store_errmsg(g->st));
        return -1;
    }
    g->counts->fetches += (int64_t) g->n_batch;
    g->n_batch = 0;
    return 0;
}


/* Holds one fetch; a fetch after the month's end never happened. */
static int
add_fetch(struct gen *g, int64_t id, int64_t at, int is_head,
          const char *net, const char *ua, const char *referer)
{
    struct store_fetch_rec *f;

    if (at > g->now - QUIET_MS) {
        return 0;
    }
    if (g->n_batch == BATCH_MAX && flush_fetches(g) != 0) {
        return -1;
    }
    f = &g->batch[g->n_batch++];
    memset(f, 0, sizeof(*f));
    f->message_id = id;
    f->at_ms = at;
    f->is_head = is_head;
    snprintf(f->addr, sizeof(f->addr), "%s", net);
    snprintf(f->user_agent, sizeof(f->user_agent), "%s", ua);
    snprintf(f->referer_host, sizeof(f->referer_host), "%s", referer);
    return 0;
}


/* The machines that fetch on delivery, whether or not anyone reads. */
static int
add_delivery_fetches(struct gen *g, const struct customer *c, int64_t id,
                     int64_t reg)
{
    struct rng *r = &g->rng;
    char net[STORE_ADDR_MAX];
    int rc = 0;

    switch (c->prov->fetcher) {
    case APPLE_MPP:
        snprintf(net, sizeof(net), "17.58.%u.0", 56 + rng_below(r, 40));
        rc = add_fetch(g, id, reg + rng_span(r, 20 * SEC_MS, 15 * MIN_MS),
                       0, net, "Mozilla/5.0", "");
        break;
    case SCANNER_BURST:
        /* Three sandboxes, a browser each, within seconds: the burst
         * rule, not any one User-Agent, gives them away. */
        for (unsigned i = 0; i < 3 && rc == 0; i++) {
            rc = add_fetch(g, id, reg + rng_span(r, 2 * SEC_MS, 9 * SEC_MS),
                           0, "203.0.113.0", desktop_uas[1 + i], "");
        }
        break;
    case GATEWAY_UA:
        rc = add_fetch(g, id, reg + rng_span(r, SEC_MS, 20 * SEC_MS), 0,
                       "64.235.150.0", gateway_ua, "");
        break;
    case HEAD_CHECKS:
        if (rng_chance(r, 0.15)) {
            rc = add_fetch(g, id, reg + rng_span(r, SEC_MS, 40 * SEC_MS),
                           1, "40.92.18.0", head_check_ua, "");
        }
        break;
    default:
        break;
    }
    return rc;
}


/* One open by the reader, through their provider's proxy or their own
 * client. */
static int
add_open_fetch(struct gen *g, const struct customer *c, int64_t id,
               int64_t at)
{
    struct rng *r = &g->rng;
    char net[STORE_ADDR_MAX];

    if (c->prov->fetcher == GMAIL_PROXY) {
        snprintf(net, sizeof(net), "66.249.%u.0", 80 + rng_below(r, 12));
        return add_fetch(g, id, at, 0, net, gmail_proxy_ua, "");
    }
    if (c->prov->fetcher == YAHOO_PROXY && rng_chance(r, 0.7)) {
        snprintf(net, sizeof(net), "98.136.%u.0", 40 + rng_below(r, 20));
        return add_fetch(g, id, at, 0, net, yahoo_proxy_ua, "");
    }
    if (rng_chance(r, 0.55)) {
        return add_fetch(g, id, at, 0, c->home_net, c->desktop_ua, "");
    }
    return add_fetch(g, id, at, 0, c->mobile_net, c->mobile_ua, "");
}


/* Minutes to a day and a half after delivery, half within two hours. */
static int64_t
open_delay(struct rng *r)
{
    double u = rng_unit(r);

    return 2 * MIN_MS + (int64_t) (u * u * u * u * (double) DAY_MS);
}


/* yahoo.com's mail goes to the spam folder in the last week. */
static int
in_spam(const struct gen *g, const struct customer *c, int64_t sent)
{
    return c->prov->collapses
           && sent >= g->now - COLLAPSE_DAYS * DAY_MS;
}


/* The reader's chance to open this message: images stay blocked in the
 * spam folder, and few look there. */
static double
open_chance(const struct gen *g, const struct customer *c, int64_t sent)
{
    if (in_spam(g, c, sent)) {
        return c->open_p > 0 ? 0.05 : 0.0;
    }
    return c->open_p;
}


/*
 * The reader's side of one message: maybe an open, a second look, and
 * for a reply maybe an answer (recorded once the ticket's fetches are
 * written).
 */
static int
add_reader_fetches(struct gen *g, const struct customer *c, int64_t id,
                   int64_t sent, int64_t reg, int is_reply)
{
    struct rng *r = &g->rng;
    int64_t at;

    if (!rng_chance(r, open_chance(g, c, sent))) {
        return 0;
    }
    at = reg + open_delay(r);
    if (add_open_fetch(g, c, id, at) != 0) {
        return -1;
    }
    if (rng_chance(r, 0.35)
        && add_open_fetch(g, c, id, at + rng_span(r, HOUR_MS, 2 * DAY_MS))
           != 0) {
        return -1;
    }
    /* Only a reader who found the mail in the inbox answers it. */
    if (is_reply && rng_chance(r, 0.1) && !in_spam(g, c, sent)) {
        int64_t answer = at + rng_span(r, 10 * MIN_MS, 2 * HOUR_MS);

        if (answer <= g->now - QUIET_MS
            && g->n_replies < TICKET_REPLIES_MAX + 1) {
            g->reply_at[g->n_replies++] = answer;
        }
    }
    return 0;
}


/* An agent looks at a sent reply in the help desk, from the office. */
static int
add_internal_fetch(struct gen *g, int64_t id, int64_t reg)
{
    struct rng *r = &g->rng;

    if (!rng_chance(r, 0.04)) {
        return 0;
    }
    return add_fetch(g, id, reg + rng_span(r, 30 * SEC_MS, 3 * HOUR_MS),
                     0, OFFICE_NET, desktop_uas[3], "helpdesk.example.com");
}


/* ---- tickets ------------------------------------------------------- */


static int
add_message(struct gen *g, const struct customer *c, const char *ticket,
            const char *kind, int64_t sent)
{
    struct rng *r = &g->rng;
    int64_t id, reg = sent + rng_span(r, SEC_MS, 6 * SEC_MS);
    struct store_message_in m = {
        .ticket_id = ticket, .recipient = c->recipient,
        .domain = c->prov->host, .kind = kind, .sent_at_ms = sent,
        .registered_at_ms = reg, .header_message_id = NULL,
        .customer_fields = STORE_CUSTOMER_NAME | STORE_CUSTOMER_VALUE,
        .customer_name = c->name, .customer_phone = c->phone,
        .customer_value = c->value
    };

    if (c->phone[0] != '\0') {
        m.customer_fields |= STORE_CUSTOMER_PHONE;
    }
    if (store_message_add(g->st, &m, &id) != STORE_OK) {
        snprintf(g->err, g->errlen, "adding a message: %s",
                 store_errmsg(g->st));
        return -1;
    }
    g->counts->messages++;

    int is_reply = strcmp(kind, "reply") == 0;
    if (add_delivery_fetches(g, c, id, reg) != 0
        || (is_reply && add_internal_fetch(g, id, reg) != 0)) {
        return -1;
    }
    return add_reader_fetches(g, c, id, sent, reg, is_reply);
}


static int
record_replies(struct gen *g, const struct customer *c, const char *ticket)
{
    int64_t marked;

    for (size_t i = 0; i < g->n_replies; i++) {
        if (store_reply_record(g->st, ticket, c->recipient, g->reply_at[i],
                               &marked) != STORE_OK) {
            snprintf(g->err, g->errlen, "recording a reply: %s",
                     store_errmsg(g->st));
            return -1;
        }
        g->counts->replies++;
    }
    g->n_replies = 0;
    return 0;
}


/* A working-hours moment (07:00 to 18:59 UTC) on a day of the month. */
static int64_t
ticket_start(struct gen *g)
{
    struct rng *r = &g->rng;
    int64_t day = g->now - g->now % DAY_MS
                  - (int64_t) rng_below(r, MONTH_DAYS) * DAY_MS;

    return day + rng_span(r, 7 * HOUR_MS, 19 * HOUR_MS - 1);
}


/*
 * A ticket: the customer writes in, a confirmation goes out within a
 * minute, then one to four replies hours apart.  Mail that would go out
 * after now is not sent.
 */
static int
add_ticket(struct gen *g, const struct customer *c)
{
    struct rng *r = &g->rng;
    int64_t at = ticket_start(g) + rng_span(r, 5 * SEC_MS, MIN_MS);
    unsigned n_replies = 1 + rng_below(r, TICKET_REPLIES_MAX);
    char ticket[32];

    if (at > g->now - QUIET_MS) {
        return 0;
    }
    snprintf(ticket, sizeof(ticket), "SUP-%05u", g->next_ticket++);
    g->counts->tickets++;
    if (add_message(g, c, ticket, "confirmation", at) != 0) {
        return -1;
    }
    for (unsigned i = 0; i < n_replies; i++) {
        at += rng_span(r, 40 * MIN_MS, 30 * HOUR_MS);
        if (at > g->now - QUIET_MS) {
            break;
        }
        if (add_message(g, c, ticket, "reply", at) != 0) {
            return -1;
        }
    }
    if (flush_fetches(g) != 0) {
        return -1;
    }
    return record_replies(g, c, ticket);
}


static int
add_customer_tickets(struct gen *g, const struct customer *c)
{
    struct rng *r = &g->rng;
    unsigned n = 1 + (unsigned) rng_chance(r, 0.35)
                 + (unsigned) rng_chance(r, 0.10);

    for (unsigned i = 0; i < n; i++) {
        if (add_ticket(g, c) != 0) {
            return -1;
        }
    }
    g->counts->customers++;
    return 0;
}


int
demo_fill(struct store *st, const struct demo_options *o,
          struct demo_counts *out, char *err, size_t errlen)
{
    struct customer *customers = NULL;
    struct gen *g = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (check_empty(st, err, errlen) != 0) {
        return -1;
    }
    customers = calloc(N_CUSTOMERS, sizeof(*customers));
    g = calloc(1, sizeof(*g));
    if (customers == NULL || g == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    *g = (struct gen) {
        .st = st, .rng = { o->seed }, .now = o->now_ms, .counts = out,
        .next_ticket = 10001, .err = err, .errlen = errlen
    };
    if (load_rules(&g->rules, o->rules_path, err, errlen) != 0) {
        goto done;
    }

    make_customers(&g->rng, customers, N_CUSTOMERS);
    rc = 0;
    for (size_t i = 0; i < N_CUSTOMERS && rc == 0; i++) {
        /* A stream per customer: a ticket cut short by the month's end
         * (which moves with the time of day) changes no one else's. */
        g->rng.state = o->seed ^ (0xd1342543de82ef95ULL * (i + 1));
        rc = add_customer_tickets(g, &customers[i]);
    }

done:
    if (g != NULL) {
        rules_free(g->rules);
    }
    free(g);
    free(customers);
    return rc;
}
