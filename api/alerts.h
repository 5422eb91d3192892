/*
 * alerts.h - the test behind GET /api/v1/alerts: did a domain's open
 * rate in the current window fall significantly below its baseline?
 *
 * Pure arithmetic, no I/O, so the unit tests can hold it to hand-computed
 * values.
 */
#ifndef BEACON_ALERTS_H
#define BEACON_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#define ALERT_MESSAGE_MAX 400   /* bytes of alert_message()'s text */

/* Messages sent to a domain in one window, and how many were opened. */
struct alert_sample {
    int64_t sent;
    int64_t opened;
};

struct alert_params {
    int64_t min_sent;           /* each window needs this many, >= 1 */
    double alpha;               /* significance level, in (0, 1) */
    double min_drop;            /* smallest drop in rate worth a flag */
};

enum alert_verdict {
    ALERT_NOT_ENOUGH_DATA = 0,  /* a window has fewer than min_sent */
    ALERT_STEADY,               /* tested, not flagged */
    ALERT_FLAGGED
};

/* The test's figures; all 0 for ALERT_NOT_ENOUGH_DATA. */
struct alert_test {
    double drop;                /* rate_baseline - rate_current */
    double z;
    double p_value;
};

/*
 * One-sided two-proportion z-test with the pooled proportion, current
 * (n1, o1) against baseline (n2, o2):
 *   p = (o1 + o2) / (n1 + n2),  se = sqrt(p (1 - p) (1/n1 + 1/n2)),
 *   z = (o2/n2 - o1/n1) / se,   p_value = erfc(z / sqrt 2) / 2
 * (z 0 and p_value 1 when se is 0: both rates are 0 or both 1).
 * Flagged when p_value < alpha and drop >= min_drop.  A window with
 * fewer than min_sent messages (or none) is never flagged.
 */
enum alert_verdict alert_judge(const struct alert_sample *current,
                               const struct alert_sample *baseline,
                               const struct alert_params *params,
                               struct alert_test *out);

/*
 * The alert in words: "yahoo.com: 9% opened this week, 52% before; 140
 * replies".  window_words is "this week" or "in the last 3d"; the
 * percentages are rounded to whole numbers, the replies are the current
 * window's messages.
 */
void alert_message(char *out, size_t len, const char *domain,
                   const struct alert_sample *current,
                   const struct alert_sample *baseline,
                   const char *window_words);

#endif
