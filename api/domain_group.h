/*
 * domain_group.h - merging the domains report's host rows into their
 * registrable domains (mail.yahoo.co.uk and yahoo.co.uk -> yahoo.co.uk)
 * with the Public Suffix List.
 */
#ifndef BEACON_DOMAIN_GROUP_H
#define BEACON_DOMAIN_GROUP_H

#include <stddef.h>

#include "store/store.h"

/* One host's row, copied: row.domain is name, group points into it. */
struct domain_group_host {
    struct store_domain_row row;
    char *name;
    const char *group;
};

/*
 * One registrable domain: total sums its hosts' counts and class counts
 * (last_open_at the newest; total.domain is the group's name), and its
 * hosts are hosts[first] .. hosts[first + n - 1].
 */
struct domain_group {
    struct store_domain_row total;
    size_t first;
    size_t n;
};

/* Zero it to start; release with domain_grouping_free(). */
struct domain_grouping {
    struct domain_group_host *hosts;
    size_t n_hosts;
    size_t cap_hosts;
    struct domain_group *groups;
    size_t n_groups;
};

/*
 * The registrable domain of host (lower-case ASCII, as the store keeps
 * it): a pointer into host, which is its own group when the list knows
 * no registrable part ("localhost", a bare public suffix).
 */
const char *domain_registrable(const char *host);

/* Copies a row of the report in.  0, or -1 when out of memory. */
int domain_grouping_add(struct domain_grouping *g,
                        const struct store_domain_row *r);

/*
 * Forms the groups: sorted by sent descending then name, as the report
 * is, with each group's hosts in the same order.  0, or -1 when out of
 * memory.  Call once, after the last domain_grouping_add().
 */
int domain_grouping_finish(struct domain_grouping *g);

void domain_grouping_free(struct domain_grouping *g);

#endif
