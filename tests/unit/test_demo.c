/*
 * test_demo.c - unit tests of the demo month (server/demo.c).
 *
 * demo_fill() writes into a fresh database under /tmp with a fixed now,
 * and everything is read back through the store: the counts for the
 * default seed, yahoo.com's collapse as the alerts route would judge it
 * (store_domains over the last 7 days and the 28 before, the same
 * two-proportion test), every class of fetch, and a call list led by
 * valuable customers.  argv[1] is the source tree (for the rules file).
 */
#include "server/demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/alerts.h"
#include "tests/unit/check.h"

#define DAY_MS (24LL * 3600 * 1000)
/* 2026-04-01T12:34:56.789Z: a fixed end of the month. */
#define NOW_MS 1775046896789LL
#define MAX_DOMAINS 32
#define TMP_PREFIX "/tmp/beacon-test-demo-"

/* What the default seed writes for a month ending at NOW_MS. */
#define EXPECT_TICKETS 585
#define EXPECT_MESSAGES 1979
#define EXPECT_FETCHES 1870
#define EXPECT_REPLIES 70

static char tmp_dir[sizeof(TMP_PREFIX) + 6];
static char rules_path[4096];

struct window {
    size_t n;
    char domain[MAX_DOMAINS][64];
    int64_t sent[MAX_DOMAINS];
    int64_t opened[MAX_DOMAINS];
    int64_t by_class[STORE_N_CLASSES];
};


static int
collect(void *ctx, const struct store_domain_row *r)
{
    struct window *w = ctx;

    for (int c = 0; c < STORE_N_CLASSES; c++) {
        w->by_class[c] += r->by_class[c];
    }
    if (w->n == MAX_DOMAINS) {
        return 0;
    }
    snprintf(w->domain[w->n], sizeof(w->domain[0]), "%s", r->domain);
    w->sent[w->n] = r->sent;
    w->opened[w->n] = r->opened;
    w->n++;
    return 0;
}


static void
read_window(struct store *st, int64_t since, int64_t until,
            struct window *w)
{
    memset(w, 0, sizeof(*w));
    CHECK(store_domains(st, since, until, collect, w) == STORE_OK);
}


/* Index of domain in w, or -1. */
static int
find(const struct window *w, const char *domain)
{
    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->domain[i], domain) == 0) {
            return (int) i;
        }
    }
    return -1;
}


static double
rate(int64_t opened, int64_t sent)
{
    return sent > 0 ? (double) opened / (double) sent : 0.0;
}


/* The alerts route's verdict with its default parameters. */
static int
flagged(int64_t o1, int64_t n1, int64_t o2, int64_t n2)
{
    const struct alert_sample current = { n1, o1 };
    const struct alert_sample baseline = { n2, o2 };
    const struct alert_params defaults = { 30, 0.01, 0.10 };
    struct alert_test t;

    return alert_judge(&current, &baseline, &defaults, &t) == ALERT_FLAGGED;
}


static struct store *
fresh_store(const char *name)
{
    struct store *st = NULL;
    char path[512], err[256] = "";

    snprintf(path, sizeof(path), "%s/%s.db", tmp_dir, name);
    if (store_open(&st, path, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "store_open %s: %s\n", path, err);
    }
    return st;
}


static int
fill(struct store *st, uint64_t seed, int64_t now, struct demo_counts *n,
     char *err, size_t errlen)
{
    struct demo_options o = {
        .rules_path = rules_path, .seed = seed, .now_ms = now
    };

    return demo_fill(st, &o, n, err, errlen);
}


/* How many domains the alert test flags for a month ending at now; sets
 * *yahoo when yahoo.com is one of them. */
static int
count_flagged(struct store *st, int64_t now, int *yahoo)
{
    struct window cur, base;
    int n = 0;

    read_window(st, now - 7 * DAY_MS, now, &cur);
    read_window(st, now - 35 * DAY_MS, now - 7 * DAY_MS, &base);
    *yahoo = 0;
    for (size_t i = 0; i < cur.n; i++) {
        int b = find(&base, cur.domain[i]);

        if (b >= 0 && flagged(cur.opened[i], cur.sent[i], base.opened[b],
                              base.sent[b])) {
            n++;
            *yahoo |= strcmp(cur.domain[i], "yahoo.com") == 0;
            printf("flagged %s: %lld/%lld vs %lld/%lld\n", cur.domain[i],
                   (long long) cur.opened[i], (long long) cur.sent[i],
                   (long long) base.opened[b], (long long) base.sent[b]);
        }
    }
    return n;
}


/* The default seed's month: the counts, and the store agrees. */
static void
test_default_month(struct store *st, const struct demo_counts *counts)
{
    struct demo_counts n = *counts;
    struct window all, cur, base;
    int64_t sent = 0;
    int y, yc, yb;

    printf("demo: %lld customers, %lld tickets, %lld messages, %lld "
           "fetches, %lld replies\n", (long long) n.customers,
           (long long) n.tickets, (long long) n.messages,
           (long long) n.fetches, (long long) n.replies);
    /* Exact for this seed and now: any change to the generator shows. */
    CHECK(n.customers == 400);
    CHECK(n.tickets == EXPECT_TICKETS);
    CHECK(n.messages == EXPECT_MESSAGES);
    CHECK(n.fetches == EXPECT_FETCHES);
    CHECK(n.replies == EXPECT_REPLIES);

    /* The store holds what demo says it wrote, all within the month. */
    read_window(st, NOW_MS - 30 * DAY_MS, NOW_MS, &all);
    for (size_t i = 0; i < all.n; i++) {
        sent += all.sent[i];
    }
    CHECK(sent == n.messages);
    CHECK(all.n == 14);
    CHECK(find(&all, "mail.yahoo.co.uk") >= 0);
    CHECK(find(&all, "yahoo.co.uk") >= 0);
    for (int c = 0; c < STORE_N_CLASSES; c++) {
        printf("class %s: %lld\n", store_class_name(c),
               (long long) all.by_class[c]);
        CHECK(all.by_class[c] > 0);
    }

    /* yahoo.com: about half opened before, under a tenth this week. */
    read_window(st, NOW_MS - 7 * DAY_MS, NOW_MS, &cur);
    read_window(st, NOW_MS - 35 * DAY_MS, NOW_MS - 7 * DAY_MS, &base);
    yc = find(&cur, "yahoo.com");
    yb = find(&base, "yahoo.com");
    CHECK(yc >= 0 && yb >= 0);
    if (yc >= 0 && yb >= 0) {
        double rc = rate(cur.opened[yc], cur.sent[yc]);
        double rb = rate(base.opened[yb], base.sent[yb]);

        printf("yahoo.com: last 7 days %lld/%lld = %.3f, 28 days before "
               "%lld/%lld = %.3f\n", (long long) cur.opened[yc],
               (long long) cur.sent[yc], rc, (long long) base.opened[yb],
               (long long) base.sent[yb], rb);
        CHECK(rc < 0.15);
        CHECK(rb > 0.4);
        CHECK(cur.sent[yc] >= 30 && base.sent[yb] >= 30);
    }

    /* The alerts route would flag yahoo.com and nothing else. */
    CHECK(count_flagged(st, NOW_MS, &y) == 1 && y);
}


/* The month moves with now: whatever the hour it ends, the demo shows
 * one alert, yahoo.com's. */
static void
test_times_of_day(void)
{
    for (int h = 3; h < 24; h += 6) {
        int64_t now = NOW_MS + h * 3600000LL;
        struct demo_counts n;
        char name[32], err[256] = "";
        struct store *st;
        int y = 0;

        snprintf(name, sizeof(name), "hour%d", h);
        st = fresh_store(name);
        CHECK(st != NULL);
        CHECK(fill(st, DEMO_SEED_DEFAULT, now, &n, err, sizeof(err)) == 0);
        CHECK(count_flagged(st, now, &y) == 1);
        CHECK(y);
        store_close(st);
    }
}


struct call_list {
    int64_t rows;
    int64_t over_1000;
    double first_value;
    int64_t never_fetched, machine_only, opened_nothing_recent;
};


static int
count_call(void *ctx, const struct store_unopened_row *r)
{
    struct call_list *l = ctx;

    if (l->rows++ == 0) {
        l->first_value = r->value;
    }
    l->over_1000 += r->value >= 1000;
    l->never_fetched += r->reason == STORE_NEVER_FETCHED;
    l->machine_only += r->reason == STORE_MACHINE_ONLY;
    l->opened_nothing_recent += r->reason == STORE_OPENED_NOTHING_RECENT;
    return 0;
}


/* The call list has people to phone, the most valuable first, for every
 * reason a customer can be on it. */
static void
test_call_list(struct store *st, const struct demo_counts *n)
{
    struct store_unopened_query q = {
        .min_value = 0, .sent_before_ms = NOW_MS, .reasons = 0,
        .hide_reached_after_ms = INT64_MAX
    };
    struct call_list l = { 0 };

    CHECK(store_unopened(st, &q, count_call, &l) == STORE_OK);
    printf("call list: %lld rows, %lld worth 1000 or more, first %.0f; "
           "never_fetched %lld, machine_only %lld, opened_nothing_recent "
           "%lld\n", (long long) l.rows, (long long) l.over_1000,
           l.first_value, (long long) l.never_fetched,
           (long long) l.machine_only, (long long) l.opened_nothing_recent);
    CHECK(l.rows >= 20 && l.rows < n->customers);
    CHECK(l.over_1000 >= 3);
    CHECK(l.first_value >= 5000);
    CHECK(l.never_fetched > 0);
    CHECK(l.machine_only > 0);
    CHECK(l.opened_nothing_recent > 0);
}


/* A database with messages is refused, with the count, and left alone;
 * the same seed gives the same month, another seed another. */
static void
test_refusal_and_seeds(void)
{
    struct store *st = fresh_store("seeds");
    struct store *again = fresh_store("seeds-again");
    struct store *other = fresh_store("seeds-other");
    struct demo_counts a, b, c, d;
    char err[256] = "";

    CHECK(fill(st, 7, NOW_MS, &a, err, sizeof(err)) == 0);
    CHECK(fill(st, 7, NOW_MS, &d, err, sizeof(err)) == -1);
    CHECK(strstr(err, "already holds") != NULL);
    CHECK(d.messages == 0);

    CHECK(fill(again, 7, NOW_MS, &b, err, sizeof(err)) == 0);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    CHECK(fill(other, 8, NOW_MS, &c, err, sizeof(err)) == 0);
    CHECK(a.messages != c.messages || a.fetches != c.fetches);
    store_close(st);
    store_close(again);
    store_close(other);
}


/* A rules file that cannot be read fails with its name, before any
 * message is written. */
static void
test_bad_rules(void)
{
    struct store *st = fresh_store("rules");
    struct demo_options o = {
        .rules_path = "/nonexistent/beacon.rules", .seed = 1,
        .now_ms = NOW_MS
    };
    struct demo_counts n;
    char err[256] = "";

    CHECK(demo_fill(st, &o, &n, err, sizeof(err)) == -1);
    CHECK(strstr(err, "/nonexistent/beacon.rules") != NULL);
    CHECK(n.messages == 0);
    store_close(st);
}


static void
remove_tmp_dir(void)
{
    char cmd[sizeof(tmp_dir) + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    }
}


int
main(int argc, char **argv)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "%sXXXXXX", TMP_PREFIX);
    if (argc < 2 || mkdtemp(tmp_dir) == NULL) {
        fprintf(stderr, "usage: test_demo SOURCE_DIR (and a writable "
                "/tmp)\n");
        return 2;
    }
    snprintf(rules_path, sizeof(rules_path), "%s/rules/beacon.rules",
             argv[1]);

    struct store *st = fresh_store("default");
    struct demo_counts n = { 0 };
    char err[256] = "";

    CHECK(st != NULL);
    CHECK(fill(st, DEMO_SEED_DEFAULT, NOW_MS, &n, err, sizeof(err)) == 0);
    test_default_month(st, &n);
    test_call_list(st, &n);
    store_close(st);

    test_times_of_day();
    test_refusal_and_seeds();
    test_bad_rules();

    remove_tmp_dir();
    return check_done();
}
