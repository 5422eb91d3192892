/*
 * store_bench.c - how fast the writer's store call and the domains report
 * run, without HTTP.
 *
 * Opens a store on a fresh file in a temporary directory, registers
 * 2 * N messages (N for each pattern) over DOMAINS recipient domains,
 * then times store_fetches_write() in batches as the writer thread calls
 * it, with a trivial classifier (every fetch human, rule "b"):
 *   repeat    every one of N messages fetched K times by one client,
 *             the list walked K times in order, as bench/pixel.sh's wrk
 *             script walks its tokens: most fetches join an existing row;
 *   distinct  every fetch a different, never fetched message.
 * One client (network and User-Agent) makes every fetch, as wrk does
 * in bench/pixel.sh.  Then store_domains() over all of it, cold (first
 * call) and warm.
 *
 * usage: store_bench [N [K [BATCH]]]    defaults 20000 10 2000
 * Prints fetches/s per pattern and milliseconds per domains call.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DOMAINS 200
#define REGISTERED_AT 1700000000000LL     /* a fixed server clock, ms */
#define GAP_MS 300          /* between two walks of the token list */
#define DOMAINS_RUNS 5      /* warm domains calls, the best one counts */

struct bench {
    struct store *st;
    char dir[64];
    char path[96];
    long n;                 /* messages per pattern */
    long k;                 /* fetches per message, repeat pattern */
    long batch;
    int64_t first_id;       /* of the 2 * n messages, in id order */
    struct store_fetch_rec *recs;
};


static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static void
classify_human(void *ctx, const struct store_fetch_facts *f,
               struct store_verdict *out)
{
    (void) ctx;
    (void) f;
    out->cls = STORE_HUMAN;
    snprintf(out->rule, sizeof(out->rule), "b");
    snprintf(out->reason, sizeof(out->reason), "bench");
}


/* Registers message i: domain i % DOMAINS, sent over the last 30 days. */
static int
add_message(struct bench *b, long i, int64_t *id)
{
    char ticket[32], recipient[64], domain[32];
    struct store_message_in m;

    snprintf(ticket, sizeof(ticket), "T%ld", i / 3);
    snprintf(domain, sizeof(domain), "d%ld.example", i % DOMAINS);
    snprintf(recipient, sizeof(recipient), "c%ld@%s", i % 5000, domain);
    memset(&m, 0, sizeof(m));
    m.ticket_id = ticket;
    m.recipient = recipient;
    m.domain = domain;
    m.kind = i % 4 == 0 ? "confirmation" : "reply";
    m.sent_at_ms = REGISTERED_AT - (int64_t) (i % 2592000) * 1000;
    m.registered_at_ms = REGISTERED_AT;
    return store_message_add(b->st, &m, id);
}


static int
register_all(struct bench *b)
{
    int64_t id = 0;

    for (long i = 0; i < 2 * b->n; i++) {
        if (add_message(b, i, &id) != STORE_OK) {
            fprintf(stderr, "register: %s\n", store_errmsg(b->st));
            return -1;
        }
        if (i == 0) {
            b->first_id = id;
        }
    }
    return 0;
}


/* Fetch number seq of the pattern: which message, when, from whom. */
static void
make_rec(const struct bench *b, int distinct, long seq,
         struct store_fetch_rec *r)
{
    long msg = distinct ? b->n + seq : seq % b->n;
    long walk = distinct ? 0 : seq / b->n;

    memset(r, 0, sizeof(*r));
    r->message_id = b->first_id + msg;
    r->at_ms = REGISTERED_AT + 1000 + walk * GAP_MS + msg / 100;
    /* One client for all, as wrk on loopback is. */
    snprintf(r->addr, sizeof(r->addr), "127.0.0.0");
    snprintf(r->user_agent, sizeof(r->user_agent), "wrk");
}


/* Writes total fetches of one pattern in batches; prints the rate. */
static int
run_pattern(struct bench *b, int distinct, long total)
{
    struct store_write_result res;
    long collapsed = 0;
    double t0 = now_s();

    for (long done = 0; done < total; done += b->batch) {
        long n = total - done < b->batch ? total - done : b->batch;

        for (long i = 0; i < n; i++) {
            make_rec(b, distinct, done + i, &b->recs[i]);
        }
        if (store_fetches_write(b->st, b->recs, (size_t) n, classify_human,
                                NULL, &res) != STORE_OK) {
            fprintf(stderr, "write: %s\n", store_errmsg(b->st));
            return -1;
        }
        collapsed += (long) res.collapsed;
    }

    double dt = now_s() - t0;
    printf("%-9s %8ld fetches %7.3f s %9.0f fetches/s (%ld collapsed)\n",
           distinct ? "distinct" : "repeat", total, dt,
           (double) total / dt, collapsed);
    return 0;
}


static int
count_row(void *ctx, const struct store_domain_row *r)
{
    (void) r;
    ++*(long *) ctx;
    return 0;
}


/* Times the domains report over every message: cold, then best warm. */
static int
time_domains(struct bench *b)
{
    double best = 1e9, first = 0;
    long rows = 0;

    for (int i = 0; i <= DOMAINS_RUNS; i++) {
        double t0 = now_s();

        rows = 0;
        if (store_domains(b->st, 0, INT64_MAX, count_row, &rows)
            != STORE_OK) {
            fprintf(stderr, "domains: %s\n", store_errmsg(b->st));
            return -1;
        }
        double dt = (now_s() - t0) * 1e3;

        first = i == 0 ? dt : first;
        best = i > 0 && dt < best ? dt : best;
    }
    printf("domains   %ld rows over %ld messages: first %.2f ms,"
           " warm %.2f ms\n", rows, 2 * b->n, first, best);
    return 0;
}


static long
arg_or(int argc, char **argv, int i, long def)
{
    long v = argc > i ? strtol(argv[i], NULL, 10) : def;

    return v > 0 ? v : def;
}


static int
setup(struct bench *b, int argc, char **argv)
{
    char err[256] = "";

    b->n = arg_or(argc, argv, 1, 20000);
    b->k = arg_or(argc, argv, 2, 10);
    b->batch = arg_or(argc, argv, 3, 2000);
    b->recs = calloc((size_t) b->batch, sizeof(*b->recs));
    snprintf(b->dir, sizeof(b->dir), "/tmp/beacon-store-bench-XXXXXX");
    if (b->recs == NULL || mkdtemp(b->dir) == NULL) {
        perror("store_bench");
        return -1;
    }
    snprintf(b->path, sizeof(b->path), "%s/bench.db", b->dir);
    if (store_open(&b->st, b->path, err, sizeof(err)) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return 0;
}


/* Closes the store and removes the database, its WAL and the directory. */
static void
teardown(struct bench *b)
{
    static const char *const suffix[] = { "", "-wal", "-shm" };
    char p[128];

    store_close(b->st);
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", b->path, suffix[i]);
        unlink(p);
    }
    rmdir(b->dir);
    free(b->recs);
}


int
main(int argc, char **argv)
{
    struct bench b;
    int rc = 1;

    memset(&b, 0, sizeof(b));
    if (setup(&b, argc, argv) == 0 && register_all(&b) == 0) {
        printf("%ld + %ld messages, %ld fetches each (repeat),"
               " batches of %ld\n", b.n, b.n, b.k, b.batch);
        if (run_pattern(&b, 0, b.n * b.k) == 0
            && run_pattern(&b, 1, b.n) == 0 && time_domains(&b) == 0) {
            rc = 0;
        }
    }
    teardown(&b);
    return rc;
}
