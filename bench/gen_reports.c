/*
 * gen_reports.c - fills a new database for bench/reports.sh.
 *
 *   gen_reports --db PATH --messages N --domains D --fetches F
 *               [--days 60] [--seed S]
 *
 * Everything goes through store.h (store_message_add,
 * store_fetches_write, store_reply_record), so the file always has the
 * current schema and every figure the reports read is kept exactly as
 * the server keeps it.  The shape is meant to look like a support
 * team's mail:
 * - recipient domains follow a Zipf law (rank r weighs 1 / r): a few
 *   big providers (gmail.com first), then a long tail d0012.example;
 * - about N / 3 customers, each with a value, most of them small;
 * - messages sent over the last --days days in id order, 80% replies;
 * - about 60% of messages fetched at least once, F fetches in all, with
 *   a mix of classes picked by a hash of the fetch (45% human, 10%
 *   proxy, 15% privacy_prefetch, 20% scanner, 5% internal, 5%
 *   head_probe) and a User-Agent and network that go with the class;
 * - a customer reply on about 3% of the replies.
 * The same arguments and seed give the same database.  Fetches are
 * written message by message, 5,000 per transaction: the order that
 * fills a file fastest, not the order in which a server sees them.
 */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#define BATCH 5000              /* fetches per store_fetches_write() */
#define MAX_MESSAGES 50000000LL
#define MAX_DOMAINS 1000000LL
#define MAX_FETCHES 1000000000LL
#define MAX_DAYS 3650LL
#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL
#define FETCHED_SHARE 0.60      /* messages fetched at least once */
#define REPLY_SHARE 0.80        /* kind "reply", the rest confirmations */
#define CUSTOMER_REPLY_SHARE 0.03
#define MAX_VALUE 100000.0
#define DOMAIN_NAME_MAX 32
#define PROGRESS_STEPS 10

/* Salts: one independent stream of the hash per decision. */
enum salt {
    SALT_CUSTOMER = 1,
    SALT_CUSTOMER_DOMAIN,
    SALT_VALUE,
    SALT_KIND,
    SALT_SENT,
    SALT_FETCHED,
    SALT_EXTRA,
    SALT_CLASS,
    SALT_DELAY,
    SALT_AGENT,
    SALT_NET,
    SALT_REPLY,
    SALT_REPLY_DELAY
};

struct options {
    const char *db;
    long long messages;
    long long domains;
    long long fetches;
    long long days;
    uint64_t seed;
};

/* The big providers, most popular first; the tail is named dNNNN. */
static const char *const providers[] = {
    "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
    "aol.com", "gmx.de", "web.de", "yandex.ru", "mail.ru", "proton.me",
    "comcast.net", "orange.fr", "libero.it", "qq.com", "t-online.de",
};

#define N_PROVIDERS (sizeof(providers) / sizeof(providers[0]))

/*
 * What each class of fetch looks like: its share in thousandths, a few
 * User-Agents and the first octet of its networks.  The classifier maps
 * a User-Agent back to its class, so the class is the generator's pick.
 */
struct class_shape {
    int cls;
    unsigned share;             /* per 1000 fetches */
    long long delay_max_ms;     /* after registration, before skew */
    unsigned net_a;             /* first octet of the network */
    const char *agents[3];
};

static const struct class_shape shapes[] = {
    { STORE_HUMAN, 450, 7 * DAY_MS, 198, {
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) "
        "Gecko/20100101 Thunderbird/115.6.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0)" } },
    { STORE_PROXY, 100, 7 * DAY_MS, 66, {
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
        "(via ggpht.com GoogleImageProxy)",
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy",
        "Mozilla/5.0 (compatible; OutlookImageProxy)" } },
    { STORE_PRIVACY_PREFETCH, 150, 60000, 17, {
        "Mozilla/5.0", "Mozilla/5.0 (Macintosh)", "Mozilla/5.0 (iPhone)" } },
    { STORE_SCANNER, 200, 30000, 52, {
        "Barracuda Sentinel (EE)", "Mimecast URL Protect",
        "python-requests/2.31.0" } },
    { STORE_INTERNAL, 50, 600000, 10, {
        "Beacon-Internal-Preview/1.0", "HelpdeskPreview/3.2",
        "Beacon-Internal-Preview/1.1" } },
    { STORE_HEAD_PROBE, 50, 60000, 52, {
        "curl/7.88.1", "Go-http-client/1.1", "Wget/1.21.3" } },
};

#define N_SHAPES (sizeof(shapes) / sizeof(shapes[0]))
#define AGENTS 3

struct gen {
    struct options o;
    struct store *st;
    int64_t now_ms;
    int64_t start_ms;           /* sent_at of message 0 */
    char (*domain_names)[DOMAIN_NAME_MAX];
    double *domain_cdf;         /* cumulative Zipf weights */
    long long customers;
    int64_t *ids;               /* message id of message i */
    int64_t *sent;              /* sent_at of message i */
    unsigned char *is_reply;
    uint32_t *fetch_count;      /* fetches planned for message i */
    struct store_fetch_rec *batch;
    size_t in_batch;
    long long written;
    struct store_write_result totals;
    double t0;
};


/* SplitMix64: a fast, well-mixed hash of the seed, a salt and two keys. */
static uint64_t
mix(uint64_t seed, unsigned salt, uint64_t a, uint64_t b)
{
    uint64_t z = seed ^ ((uint64_t) salt * 0x9e3779b97f4a7c15ULL);

    z ^= a * 0xbf58476d1ce4e5b9ULL;
    z ^= (b + 1) * 0x94d049bb133111ebULL;
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}


/* A uniform double in [0, 1) from the same hash. */
static double
unit(const struct gen *g, unsigned salt, uint64_t a, uint64_t b)
{
    return (double) (mix(g->o.seed, salt, a, b) >> 11) * 0x1.0p-53;
}


static double
now_secs(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static int
usage(void)
{
    fprintf(stderr, "usage: gen_reports --db PATH --messages N "
            "--domains D --fetches F [--days 60] [--seed S]\n"
            "  PATH must not exist yet.\n");
    return 2;
}


/* Parses a decimal integer within [lo, hi]; -1 when it is not one. */
static int
parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}


static int
parse_args(int argc, char **argv, struct options *o)
{
    long long seed = 1;
    int i;

    *o = (struct options) { NULL, -1, -1, -1, 60, 1 };
    for (i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        int rc = 0;

        if (strcmp(k, "--db") == 0) {
            o->db = v;
        } else if (strcmp(k, "--messages") == 0) {
            rc = parse_ll(v, 1, MAX_MESSAGES, &o->messages);
        } else if (strcmp(k, "--domains") == 0) {
            rc = parse_ll(v, 1, MAX_DOMAINS, &o->domains);
        } else if (strcmp(k, "--fetches") == 0) {
            rc = parse_ll(v, 0, MAX_FETCHES, &o->fetches);
        } else if (strcmp(k, "--days") == 0) {
            rc = parse_ll(v, 1, MAX_DAYS, &o->days);
        } else if (strcmp(k, "--seed") == 0) {
            rc = parse_ll(v, 0, INT64_MAX, &seed);
        } else {
            fprintf(stderr, "gen_reports: unknown option %s\n", k);
            return -1;
        }
        if (rc != 0) {
            fprintf(stderr, "gen_reports: %s: bad value \"%s\"\n", k, v);
            return -1;
        }
    }
    if (i != argc || o->db == NULL || o->messages < 0 || o->domains < 0
        || o->fetches < 0) {
        return -1;
    }
    o->seed = (uint64_t) seed;
    return 0;
}


/* Domain names and the Zipf table: rank r (from 1) weighs 1 / r. */
static int
domains_init(struct gen *g)
{
    size_t n = (size_t) g->o.domains, r;
    double sum = 0;

    g->domain_names = calloc(n, sizeof(*g->domain_names));
    g->domain_cdf = calloc(n, sizeof(*g->domain_cdf));
    if (g->domain_names == NULL || g->domain_cdf == NULL) {
        return -1;
    }
    for (r = 0; r < n; r++) {
        if (r < N_PROVIDERS) {
            snprintf(g->domain_names[r], DOMAIN_NAME_MAX, "%s",
                     providers[r]);
        } else {
            snprintf(g->domain_names[r], DOMAIN_NAME_MAX, "d%04zu.example",
                     r);
        }
        sum += 1.0 / (double) (r + 1);
        g->domain_cdf[r] = sum;
    }
    return 0;
}


/* The domain rank a uniform u picks: the first cdf entry above u * sum. */
static size_t
domain_pick(const struct gen *g, double u)
{
    size_t lo = 0, hi = (size_t) g->o.domains - 1;
    double x = u * g->domain_cdf[hi];

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (g->domain_cdf[mid] > x) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}


/*
 * Customer c's value: 1 to MAX_VALUE, most of them small (u to the
 * fourth power), whole units.
 */
static double
customer_value(const struct gen *g, long long c)
{
    double u = unit(g, SALT_VALUE, (uint64_t) c, 0);

    return 1.0 + (double) (long long) (MAX_VALUE * u * u * u * u);
}


static void
progress(const struct gen *g, const char *what, long long done,
         long long total)
{
    double t = now_secs() - g->t0;

    printf("gen_reports: %-8s %10lld / %lld  (%.1f s)\n", what, done, total,
           t);
    fflush(stdout);
}


/* Registers message i; its customer, domain and time come from hashes. */
static int
add_message(struct gen *g, long long i)
{
    long long c = (long long) (mix(g->o.seed, SALT_CUSTOMER, (uint64_t) i, 0)
                               % (uint64_t) g->customers);
    size_t d = domain_pick(g, unit(g, SALT_CUSTOMER_DOMAIN, (uint64_t) c, 0));
    int64_t span = g->now_ms - g->start_ms;
    char ticket[32], recipient[64], name[48], mid[48];
    struct store_message_in m;
    int64_t id;

    snprintf(ticket, sizeof ticket, "T%08lld", i);
    snprintf(recipient, sizeof recipient, "c%lld@%s", c,
             g->domain_names[d]);
    snprintf(name, sizeof name, "Customer %lld", c);
    snprintf(mid, sizeof mid, "<m%lld@support.bench.example>", i);
    g->sent[i] = g->start_ms + (int64_t) ((double) span * (double) i
                                          / (double) g->o.messages);
    g->is_reply[i] = unit(g, SALT_KIND, (uint64_t) i, 0) < REPLY_SHARE;
    m = (struct store_message_in) {
        .ticket_id = ticket, .recipient = recipient,
        .domain = g->domain_names[d],
        .kind = g->is_reply[i] ? "reply" : "confirmation",
        .sent_at_ms = g->sent[i], .registered_at_ms = g->sent[i],
        .header_message_id = mid,
        .customer_fields = STORE_CUSTOMER_NAME | STORE_CUSTOMER_VALUE,
        .customer_name = name, .customer_value = customer_value(g, c),
    };
    if (store_message_add(g->st, &m, &id) != STORE_OK) {
        fprintf(stderr, "gen_reports: message %lld: %s\n", i,
                store_errmsg(g->st));
        return -1;
    }
    g->ids[i] = id;
    return 0;
}


static int
add_messages(struct gen *g)
{
    long long i, step = g->o.messages / PROGRESS_STEPS;

    for (i = 0; i < g->o.messages; i++) {
        if (add_message(g, i) != 0) {
            return -1;
        }
        if (step > 0 && (i + 1) % step == 0) {
            progress(g, "messages", i + 1, g->o.messages);
        }
    }
    return 0;
}


/*
 * Plans how many fetches each message gets: one for each message picked
 * as fetched (FETCHED_SHARE of them, in id order while F lasts), the
 * rest spread uniformly over those.  Exactly F in all, unless there is
 * no message to fetch.
 */
static int
plan_fetches(struct gen *g)
{
    size_t n = (size_t) g->o.messages, nf = 0, i;
    uint32_t *fetched = malloc(n * sizeof(*fetched));
    long long left = g->o.fetches, j;

    if (fetched == NULL) {
        return -1;
    }
    for (i = 0; i < n && left > 0; i++) {
        if (unit(g, SALT_FETCHED, i, 0) < FETCHED_SHARE) {
            g->fetch_count[i] = 1;
            fetched[nf++] = (uint32_t) i;
            left--;
        }
    }
    for (j = 0; j < left && nf > 0; j++) {
        uint64_t h = mix(g->o.seed, SALT_EXTRA, (uint64_t) j, 0);

        g->fetch_count[fetched[h % nf]]++;
    }
    free(fetched);
    return 0;
}


/* The shape of fetch k of message i: a hash picks by the shares. */
static const struct class_shape *
shape_pick(const struct gen *g, long long i, uint32_t k)
{
    unsigned x = (unsigned) (mix(g->o.seed, SALT_CLASS, (uint64_t) i, k)
                             % 1000);
    size_t s;

    for (s = 0; s + 1 < N_SHAPES; s++) {
        if (x < shapes[s].share) {
            break;
        }
        x -= shapes[s].share;
    }
    return &shapes[s];
}


/* The class whose User-Agent ua is; human for one not generated here. */
static int
agent_class(const char *ua)
{
    size_t s, a;

    for (s = 0; s < N_SHAPES; s++) {
        for (a = 0; a < AGENTS; a++) {
            if (strcmp(ua, shapes[s].agents[a]) == 0) {
                return shapes[s].cls;
            }
        }
    }
    return STORE_HUMAN;
}


/*
 * The classifier: the class is the one whose User-Agent the generator
 * gave the fetch (a HEAD is a head_probe whatever its agent).  Not a
 * real classifier: the point is a known mix, cheaply.
 */
static void
classify(void *ctx, const struct store_fetch_facts *f,
         struct store_verdict *out)
{
    int cls = f->is_head ? STORE_HEAD_PROBE : agent_class(f->user_agent);

    (void) ctx;
    memset(out, 0, sizeof *out);
    out->cls = cls;
    snprintf(out->rule, sizeof out->rule, "bench.%s", store_class_name(cls));
    snprintf(out->reason, sizeof out->reason,
             "gen_reports: User-Agent of a %s fetch", store_class_name(cls));
}


static int
flush_batch(struct gen *g)
{
    struct store_write_result res;

    if (g->in_batch == 0) {
        return 0;
    }
    memset(&res, 0, sizeof res);
    if (store_fetches_write(g->st, g->batch, g->in_batch, classify,
                            NULL, &res) != STORE_OK) {
        fprintf(stderr, "gen_reports: writing fetches: %s\n",
                store_errmsg(g->st));
        return -1;
    }
    g->totals.unknown += res.unknown;
    g->totals.collapsed += res.collapsed;
    g->totals.not_kept += res.not_kept;
    g->written += (long long) g->in_batch;
    g->in_batch = 0;
    return 0;
}


/*
 * Fetch k of message i into the batch.  Its delay after sending is
 * skewed towards the start of the class's range (u cubed) and never
 * past now.
 */
static void
fill_fetch(struct gen *g, long long i, uint32_t k,
           struct store_fetch_rec *r)
{
    const struct class_shape *s = shape_pick(g, i, k);
    double u = unit(g, SALT_DELAY, (uint64_t) i, k);
    uint64_t h = mix(g->o.seed, SALT_NET, (uint64_t) i, k);
    int64_t at = g->sent[i] + 1000
                 + (int64_t) ((double) s->delay_max_ms * u * u * u);
    size_t a = (size_t) (mix(g->o.seed, SALT_AGENT, (uint64_t) i, k)
                         % AGENTS);

    memset(r, 0, sizeof *r);
    r->message_id = g->ids[i];
    r->at_ms = at < g->now_ms ? at : g->now_ms;
    r->is_head = s->cls == STORE_HEAD_PROBE;
    snprintf(r->addr, sizeof r->addr, "%u.%u.%u.0", s->net_a,
             (unsigned) (h & 0xff), (unsigned) ((h >> 8) & 0xff));
    snprintf(r->user_agent, sizeof r->user_agent, "%s", s->agents[a]);
}


static int
add_fetches(struct gen *g)
{
    long long i, step = g->o.fetches / PROGRESS_STEPS, next = step;
    uint32_t k;

    for (i = 0; i < g->o.messages; i++) {
        for (k = 0; k < g->fetch_count[i]; k++) {
            fill_fetch(g, i, k, &g->batch[g->in_batch++]);
            if (g->in_batch == BATCH && flush_batch(g) != 0) {
                return -1;
            }
            if (step > 0 && g->written >= next) {
                progress(g, "fetches", g->written, g->o.fetches);
                while (next <= g->written) {
                    next += step;
                }
            }
        }
    }
    return flush_batch(g);
}


/* A customer reply on CUSTOMER_REPLY_SHARE of the replies. */
static int
add_replies(struct gen *g, long long *n)
{
    long long i;

    *n = 0;
    for (i = 0; i < g->o.messages; i++) {
        long long c;
        size_t d;
        char ticket[32], recipient[64];
        double u;
        int64_t at, marked;

        if (!g->is_reply[i]
            || unit(g, SALT_REPLY, (uint64_t) i, 0) >= CUSTOMER_REPLY_SHARE) {
            continue;
        }
        c = (long long) (mix(g->o.seed, SALT_CUSTOMER, (uint64_t) i, 0)
                         % (uint64_t) g->customers);
        d = domain_pick(g, unit(g, SALT_CUSTOMER_DOMAIN, (uint64_t) c, 0));
        snprintf(ticket, sizeof ticket, "T%08lld", i);
        snprintf(recipient, sizeof recipient, "c%lld@%s", c,
                 g->domain_names[d]);
        u = unit(g, SALT_REPLY_DELAY, (uint64_t) i, 0);
        at = g->sent[i] + HOUR_MS / 6
             + (int64_t) ((double) (3 * DAY_MS) * u * u);
        if (store_reply_record(g->st, ticket, recipient,
                               at < g->now_ms ? at : g->now_ms,
                               &marked) != STORE_OK) {
            fprintf(stderr, "gen_reports: reply to %s: %s\n", ticket,
                    store_errmsg(g->st));
            return -1;
        }
        (*n)++;
    }
    return 0;
}


static int
gen_init(struct gen *g)
{
    size_t n = (size_t) g->o.messages;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    g->now_ms = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    g->start_ms = g->now_ms - g->o.days * DAY_MS;
    g->customers = g->o.messages / 3 > 0 ? g->o.messages / 3 : 1;
    g->ids = calloc(n, sizeof(*g->ids));
    g->sent = calloc(n, sizeof(*g->sent));
    g->is_reply = calloc(n, sizeof(*g->is_reply));
    g->fetch_count = calloc(n, sizeof(*g->fetch_count));
    g->batch = calloc(BATCH, sizeof(*g->batch));
    if (g->ids == NULL || g->sent == NULL || g->is_reply == NULL
        || g->fetch_count == NULL || g->batch == NULL
        || domains_init(g) != 0) {
        fprintf(stderr, "gen_reports: out of memory\n");
        return -1;
    }
    return 0;
}


static void
gen_free(struct gen *g)
{
    store_close(g->st);
    free(g->domain_names);
    free(g->domain_cdf);
    free(g->ids);
    free(g->sent);
    free(g->is_reply);
    free(g->fetch_count);
    free(g->batch);
}


static int
generate(struct gen *g)
{
    char err[256];
    long long replies = 0;
    double t_msg, t_fetch;

    if (store_open(&g->st, g->o.db, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "gen_reports: %s: %s\n", g->o.db, err);
        return -1;
    }
    g->t0 = now_secs();
    if (add_messages(g) != 0 || plan_fetches(g) != 0) {
        return -1;
    }
    t_msg = now_secs();
    if (add_fetches(g) != 0) {
        return -1;
    }
    t_fetch = now_secs();
    if (add_replies(g, &replies) != 0) {
        return -1;
    }
    printf("gen_reports: %lld messages (%lld customers, %lld domains) in "
           "%.1f s, %lld fetches in %.1f s (%zu collapsed, %zu not kept, "
           "%zu unknown), %lld replies in %.1f s\n",
           g->o.messages, g->customers, g->o.domains, t_msg - g->t0,
           g->written, t_fetch - t_msg, g->totals.collapsed,
           g->totals.not_kept, g->totals.unknown, replies,
           now_secs() - t_fetch);
    printf("gen_reports: total %.1f s\n", now_secs() - g->t0);
    return 0;
}


int
main(int argc, char **argv)
{
    struct gen g;
    struct stat sb;
    int rc;

    memset(&g, 0, sizeof g);
    if (parse_args(argc, argv, &g.o) != 0) {
        return usage();
    }
    if (stat(g.o.db, &sb) == 0) {
        fprintf(stderr, "gen_reports: %s exists; give a new path\n",
                g.o.db);
        return 2;
    }
    rc = gen_init(&g) == 0 && generate(&g) == 0 ? 0 : 1;
    gen_free(&g);
    return rc;
}
