/*
 * alerts.c - the two-proportion test and the words of an alert.
 *
 * Exports alert_judge() and alert_message() (alerts.h).
 */
#include "api/alerts.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

/*
 * drop is a difference of two quotients: 0.5 - 0.4 is 0.0999...98 in
 * doubles, and a caller asking for min_drop 0.1 means that drop too.
 */
#define DROP_TOLERANCE 1e-9


static int
enough(const struct alert_sample *s, int64_t min_sent)
{
    return s->sent > 0 && s->sent >= min_sent;
}


/* The pooled standard error of the difference of the two rates. */
static double
pooled_se(const struct alert_sample *a, const struct alert_sample *b)
{
    double n1 = (double) a->sent, n2 = (double) b->sent;
    double p = (double) (a->opened + b->opened) / (n1 + n2);

    return sqrt(p * (1.0 - p) * (1.0 / n1 + 1.0 / n2));
}


enum alert_verdict
alert_judge(const struct alert_sample *current,
            const struct alert_sample *baseline,
            const struct alert_params *params, struct alert_test *out)
{
    double se;

    out->drop = 0;
    out->z = 0;
    out->p_value = 1;
    if (!enough(current, params->min_sent)
        || !enough(baseline, params->min_sent)) {
        out->p_value = 0;
        return ALERT_NOT_ENOUGH_DATA;
    }

    out->drop = (double) baseline->opened / (double) baseline->sent
                - (double) current->opened / (double) current->sent;
    se = pooled_se(current, baseline);
    if (se > 0) {
        out->z = out->drop / se;
        out->p_value = 0.5 * erfc(out->z / sqrt(2.0));
    }
    if (out->p_value < params->alpha
        && out->drop + DROP_TOLERANCE >= params->min_drop)
        return ALERT_FLAGGED;
    return ALERT_STEADY;
}


/* A rate as a whole percentage, rounded half up. */
static int
percent(const struct alert_sample *s)
{
    if (s->sent <= 0)
        return 0;
    return (int) floor(100.0 * (double) s->opened / (double) s->sent + 0.5);
}


void
alert_message(char *out, size_t len, const char *domain,
              const struct alert_sample *current,
              const struct alert_sample *baseline, const char *window_words)
{
    snprintf(out, len, "%s: %d%% opened %s, %d%% before; %" PRId64
             " repl%s", domain, percent(current), window_words,
             percent(baseline), current->sent,
             current->sent == 1 ? "y" : "ies");
}
