/*
 * test_alerts.c - api/alerts.c, the alert test, against values worked
 * out by hand, and api/domain_group.c, the Public Suffix grouping.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/alerts.h"
#include "api/domain_group.h"
#include "tests/unit/check.h"

static const struct alert_params defaults = { 30, 0.01, 0.10 };

/*
 * a rounds to b, a value written with 3 significant digits: within half
 * a unit of the third digit, at most 0.5% of b.
 */
static int
near3(double a, double b)
{
    return fabs(a - b) <= 5e-3 * fabs(b);
}


/*
 * Current n1 = 140, o1 = 13; baseline n2 = 520, o2 = 270.
 *   rates   13/140 = 0.092857,  270/520 = 0.519231;  drop 0.426374
 *   pooled  p = 283/660 = 0.428788,  p(1-p) = 0.244929
 *   se      sqrt(0.244929 * (1/140 + 1/520))
 *         = sqrt(0.244929 * 0.00906593) = sqrt(0.00222051) = 0.0471223
 *   z       0.426374 / 0.0471223 = 9.048
 *   p_value erfc(9.048 / 1.41421) / 2 = 7.26e-20
 */
static void
alert_should_match_the_hand_computation(void)
{
    struct alert_sample cur = { 140, 13 }, base = { 520, 270 };
    struct alert_test t;

    CHECK(alert_judge(&cur, &base, &defaults, &t) == ALERT_FLAGGED);
    CHECK(near3(t.drop, 0.426374));
    CHECK(near3(t.z, 9.048));
    CHECK(near3(t.p_value, 7.26e-20));
}


/*
 * Current 30, 10; baseline 30, 20.
 *   rates 0.333333, 0.666667; drop 0.333333; p = 30/60 = 0.5
 *   se = sqrt(0.25 * (2/30)) = sqrt(0.0166667) = 0.129099
 *   z = 0.333333 / 0.129099 = 2.582;  p_value = 0.00491
 * Flagged at alpha 0.01, not at 0.001; not with min_drop 0.4.
 */
static void
alert_should_respect_alpha_and_min_drop(void)
{
    struct alert_sample cur = { 30, 10 }, base = { 30, 20 };
    struct alert_params p = defaults;
    struct alert_test t;

    CHECK(alert_judge(&cur, &base, &p, &t) == ALERT_FLAGGED);
    CHECK(near3(t.z, 2.582));
    CHECK(near3(t.p_value, 0.00491));
    p.alpha = 0.001;
    CHECK(alert_judge(&cur, &base, &p, &t) == ALERT_STEADY);
    CHECK(near3(t.p_value, 0.00491));
    p.alpha = 0.01;
    p.min_drop = 0.4;
    CHECK(alert_judge(&cur, &base, &p, &t) == ALERT_STEADY);
}


/*
 * Current 2000, 800; baseline 2000, 1000: a drop of exactly 0.1
 * (0.0999...98 in doubles) with p = 0.45, se = sqrt(0.2475 * 0.001) =
 * 0.0157321, z = 6.356, p_value = 1.03e-10: flagged at min_drop 0.1.
 */
static void
alert_should_flag_a_drop_equal_to_min_drop(void)
{
    struct alert_sample cur = { 2000, 800 }, base = { 2000, 1000 };
    struct alert_test t;

    CHECK(alert_judge(&cur, &base, &defaults, &t) == ALERT_FLAGGED);
    CHECK(near3(t.z, 6.356));
    CHECK(near3(t.p_value, 1.03e-10));
}


static void
alert_should_never_flag_thin_data(void)
{
    struct alert_sample big = { 500, 400 }, none = { 0, 0 };
    struct alert_sample thin = { 29, 0 }, enough = { 30, 0 };
    struct alert_params p = defaults;
    struct alert_test t;

    CHECK(alert_judge(&thin, &big, &p, &t) == ALERT_NOT_ENOUGH_DATA);
    CHECK(alert_judge(&big, &thin, &p, &t) == ALERT_NOT_ENOUGH_DATA);
    CHECK(alert_judge(&none, &big, &p, &t) == ALERT_NOT_ENOUGH_DATA);
    CHECK(alert_judge(&big, &none, &p, &t) == ALERT_NOT_ENOUGH_DATA);
    CHECK(t.drop == 0 && t.z == 0);
    /* 30 of 30 is enough: 0 of 30 against 400 of 500 is flagged. */
    CHECK(alert_judge(&enough, &big, &p, &t) == ALERT_FLAGGED);
    /* min_sent 1 still refuses an empty window (no division by 0). */
    p.min_sent = 1;
    CHECK(alert_judge(&none, &none, &p, &t) == ALERT_NOT_ENOUGH_DATA);
}


/* Rates both 0 or both 1 (se 0), and a rise: never flagged. */
static void
alert_should_not_flag_equal_or_rising_rates(void)
{
    struct alert_sample zero = { 50, 0 }, all = { 50, 50 };
    struct alert_sample low = { 100, 20 }, high = { 100, 60 };
    struct alert_test t;

    CHECK(alert_judge(&zero, &zero, &defaults, &t) == ALERT_STEADY);
    CHECK(t.p_value == 1 && t.z == 0);
    CHECK(alert_judge(&all, &all, &defaults, &t) == ALERT_STEADY);
    CHECK(t.p_value == 1);
    CHECK(alert_judge(&high, &low, &defaults, &t) == ALERT_STEADY);
    CHECK(t.z < 0 && t.p_value > 0.5);
}


static void
alert_message_should_say_it_in_words(void)
{
    struct alert_sample cur = { 140, 13 }, base = { 520, 270 };
    struct alert_sample one = { 1, 0 };
    char m[ALERT_MESSAGE_MAX];

    alert_message(m, sizeof m, "yahoo.com", &cur, &base, "this week");
    CHECK_STR(m, "yahoo.com: 9% opened this week, 52% before; 140 "
              "replies");
    alert_message(m, sizeof m, "a.example", &one, &base, "in the last 3d");
    CHECK_STR(m, "a.example: 0% opened in the last 3d, 52% before; 1 "
              "reply");
}


/* Rows of the domains report, only the fields grouping reads. */
static struct store_domain_row
row(const char *domain, int64_t sent, int64_t opened, int64_t last_open)
{
    struct store_domain_row r;

    memset(&r, 0, sizeof r);
    r.domain = domain;
    r.sent = sent;
    r.reached = sent;
    r.opened = opened;
    r.by_class[0] = opened;
    r.last_open_at_ms = last_open;
    return r;
}


static void
grouping_should_merge_hosts_by_registrable_domain(void)
{
    struct store_domain_row rows[] = {
        row("gmail.com", 50, 10, 5), row("mail.yahoo.co.uk", 30, 3, 9),
        row("localhost", 8, 0, 0), row("yahoo.co.uk", 10, 5, 7),
        row("a.b.example.com", 2, 1, 1), row("co.uk", 1, 0, 0),
    };
    struct domain_grouping g;
    const struct domain_group *y;
    size_t i;

    CHECK_STR(domain_registrable("mail.yahoo.co.uk"), "yahoo.co.uk");
    CHECK_STR(domain_registrable("co.uk"), "co.uk");
    CHECK_STR(domain_registrable("localhost"), "localhost");

    memset(&g, 0, sizeof g);
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK(domain_grouping_add(&g, &rows[i]) == 0);
    CHECK(domain_grouping_finish(&g) == 0);
    CHECK(g.n_groups == 5);
    CHECK_STR(g.groups[0].total.domain, "gmail.com");
    y = &g.groups[1];
    CHECK_STR(y->total.domain, "yahoo.co.uk");
    CHECK(y->total.sent == 40 && y->total.opened == 8);
    CHECK(y->total.reached == 40 && y->total.by_class[0] == 8);
    CHECK(y->total.last_open_at_ms == 9);
    CHECK(y->n == 2);
    CHECK_STR(g.hosts[y->first].row.domain, "mail.yahoo.co.uk");
    CHECK_STR(g.hosts[y->first + 1].row.domain, "yahoo.co.uk");
    CHECK_STR(g.groups[2].total.domain, "localhost");
    CHECK_STR(g.groups[3].total.domain, "example.com");
    CHECK_STR(g.groups[4].total.domain, "co.uk");
    domain_grouping_free(&g);

    /* Nothing to group. */
    CHECK(domain_grouping_finish(&g) == 0 && g.n_groups == 0);
    domain_grouping_free(&g);
}


int
main(void)
{
    alert_should_match_the_hand_computation();
    alert_should_respect_alpha_and_min_drop();
    alert_should_flag_a_drop_equal_to_min_drop();
    alert_should_never_flag_thin_data();
    alert_should_not_flag_equal_or_rising_rates();
    alert_message_should_say_it_in_words();
    grouping_should_merge_hosts_by_registrable_domain();
    return check_done();
}
