/*
 * domain_group.c - host rows merged per registrable domain.
 *
 * Exports domain_group.h.  The Public Suffix List is libpsl's built-in
 * copy (psl_builtin(): read-only, so safe on every thread); a host it
 * cannot place is its own group rather than an error, as the report
 * must show every message somewhere.
 */
#include "api/domain_group.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>

#define HOSTS_FIRST_CAP 64

const char *
domain_registrable(const char *host)
{
    const psl_ctx_t *psl = psl_builtin();
    const char *reg = psl != NULL ? psl_registrable_domain(psl, host)
                                  : NULL;

    return reg != NULL ? reg : host;
}


static int
grow_hosts(struct domain_grouping *g)
{
    size_t cap = g->cap_hosts != 0 ? g->cap_hosts * 2 : HOSTS_FIRST_CAP;
    struct domain_group_host *v;

    if (cap > SIZE_MAX / sizeof *v)
        return -1;
    v = realloc(g->hosts, cap * sizeof *v);
    if (v == NULL)
        return -1;
    g->hosts = v;
    g->cap_hosts = cap;
    return 0;
}


int
domain_grouping_add(struct domain_grouping *g,
                    const struct store_domain_row *r)
{
    struct domain_group_host *h;
    char *name;

    if (g->n_hosts == g->cap_hosts && grow_hosts(g) != 0)
        return -1;
    name = strdup(r->domain);
    if (name == NULL)
        return -1;
    h = &g->hosts[g->n_hosts++];
    h->name = name;
    h->row = *r;
    h->row.domain = name;
    h->group = domain_registrable(name);
    return 0;
}


/* The report's order: sent descending, then name. */
static int
row_order(const struct store_domain_row *a, const struct store_domain_row *b)
{
    if (a->sent != b->sent)
        return a->sent > b->sent ? -1 : 1;
    return strcmp(a->domain, b->domain);
}


/* By group, then the report's order within it. */
static int
host_order(const void *x, const void *y)
{
    const struct domain_group_host *a = x, *b = y;
    int c = strcmp(a->group, b->group);

    return c != 0 ? c : row_order(&a->row, &b->row);
}


static int
group_order(const void *x, const void *y)
{
    const struct domain_group *a = x, *b = y;

    return row_order(&a->total, &b->total);
}


/* Adds one host's figures to its group's total. */
static void
add_to_total(struct store_domain_row *t, const struct store_domain_row *r)
{
    int c;

    t->sent += r->sent;
    t->reached += r->reached;
    t->opened += r->opened;
    t->total_opens += r->total_opens;
    t->fetches += r->fetches;
    for (c = 0; c < STORE_N_CLASSES; c++)
        t->by_class[c] += r->by_class[c];
    if (r->last_open_at_ms > t->last_open_at_ms)
        t->last_open_at_ms = r->last_open_at_ms;
}


int
domain_grouping_finish(struct domain_grouping *g)
{
    struct domain_group *cur = NULL;
    size_t i;

    if (g->n_hosts == 0)
        return 0;
    qsort(g->hosts, g->n_hosts, sizeof g->hosts[0], host_order);
    g->groups = calloc(g->n_hosts, sizeof g->groups[0]);
    if (g->groups == NULL)
        return -1;

    for (i = 0; i < g->n_hosts; i++) {
        if (cur == NULL || strcmp(cur->total.domain, g->hosts[i].group)
                               != 0) {
            cur = &g->groups[g->n_groups++];
            cur->total.domain = g->hosts[i].group;
            cur->first = i;
        }
        cur->n++;
        add_to_total(&cur->total, &g->hosts[i].row);
    }
    qsort(g->groups, g->n_groups, sizeof g->groups[0], group_order);
    return 0;
}


void
domain_grouping_free(struct domain_grouping *g)
{
    size_t i;

    for (i = 0; i < g->n_hosts; i++)
        free(g->hosts[i].name);
    free(g->hosts);
    free(g->groups);
    memset(g, 0, sizeof *g);
}
