/*
 * classify.h - tells people from machines.
 *
 * A rules file (format in docs/RULES.md, the shipped set in
 * rules/beacon.rules) maps the evidence about one fetch (User-Agent,
 * network, seconds since the message was registered, burst size, HEAD,
 * Referer host) to a class, a rule id and a reason.  The first rule that
 * matches wins.
 */
#ifndef BEACON_CLASSIFY_H
#define BEACON_CLASSIFY_H

#include <stddef.h>

#include "store/store.h"

struct rules;

/* Reads and checks a rules file.  -1 with "PATH:LINE: what" in err. */
int rules_load(struct rules **out, const char *path, char *err,
               size_t errlen);

void rules_free(struct rules *r);

/* How many rules were loaded. */
size_t rules_count(const struct rules *r);

/* Fills v for f.  When no rule matches: human, rule "default". */
void rules_classify(const struct rules *r, const struct store_fetch_facts *f,
                    struct store_verdict *v);

/*
 * A rules set that can be replaced while in use: the writer thread
 * classifies through it while SIGHUP reloads the file.
 */
struct classifier;

int classifier_new(struct classifier **out, const char *path, char *err,
                   size_t errlen);

/* Reads the file again; on any error keeps the rules it had. */
int classifier_reload(struct classifier *c, char *err, size_t errlen);

void classifier_free(struct classifier *c);

/* A store_classify_fn; ctx is the struct classifier. */
void classifier_classify(void *ctx, const struct store_fetch_facts *f,
                         struct store_verdict *v);

#endif
