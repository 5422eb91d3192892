/*
 * test_classify.c - server/classify.c: the shipped rules against the
 * table of real-world fetches (tests/data/user-agents.tsv), the rules
 * file parser (every condition, quoting, sets, every error with its line,
 * limits), matching, and reloading.
 *
 * Usage: test_classify SOURCE_ROOT
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/cidr.h"
#include "server/classify.h"
#include "server/log.h"
#include "server/pixel.h"
#include "tests/unit/check.h"

static char tmp_dir[64];
static char rules_path[128];


/* Writes text to the scratch rules file. */
static void
write_rules(const char *text)
{
    FILE *f = fopen(rules_path, "w");

    if (f == NULL) {
        perror(rules_path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}


static int
load(const char *text, struct rules **r, char *err, size_t errlen)
{
    write_rules(text);
    return rules_load(r, rules_path, err, errlen);
}


static struct store_fetch_facts
facts(int head, const char *ua, const char *net, int64_t secs,
      unsigned burst, const char *referer)
{
    struct store_fetch_facts f;

    f.is_head = head;
    f.user_agent = ua;
    f.network = net;
    f.referer_host = referer;
    f.secs_since_send = secs;
    f.burst_clients = burst;
    return f;
}


/* Classifies a GET with only a User-Agent; returns the rule id. */
static const char *
rule_for(const struct rules *r, const char *ua, const char *net,
         int64_t secs, unsigned burst, const char *referer,
         struct store_verdict *v)
{
    struct store_fetch_facts f = facts(0, ua, net, secs, burst, referer);

    rules_classify(r, &f, v);
    return v->rule;
}


/* ---- the table of real-world fetches ------------------------------- */


/* Cuts a textual address to the stored network, as the server does. */
static int
truncate_addr(const char *addr, char out[STORE_ADDR_MAX])
{
    struct cidr_addr a;

    if (cidr_addr_parse(addr, &a) != 0) {
        return -1;
    }
    pixel_addr_truncate(&a, out);
    return 0;
}


/* Splits line at tabs into exactly n fields; -1 otherwise. */
static int
split_tabs(char *line, char **fields, int n)
{
    int i = 0;

    fields[i++] = line;
    for (char *p = line; *p != '\0'; p++) {
        if (*p == '\t') {
            if (i == n) {
                return -1;
            }
            *p = '\0';
            fields[i++] = p + 1;
        }
    }
    return i == n ? 0 : -1;
}


/* One row: method, addr, secs, user_agent, class, note.  1 if it held. */
static int
table_row(const struct rules *r, char *line, unsigned lineno,
          int *seen_class)
{
    char *col[6];
    char net[STORE_ADDR_MAX];
    struct store_fetch_facts f;
    struct store_verdict v;
    int want;
    long long secs;

    if (split_tabs(line, col, 6) != 0 || truncate_addr(col[1], net) != 0
        || (strcmp(col[0], "GET") != 0 && strcmp(col[0], "HEAD") != 0)) {
        fprintf(stderr, "user-agents.tsv:%u: malformed row\n", lineno);
        return 0;
    }
    want = store_class_parse(col[4]);
    if (want < 0) {
        fprintf(stderr, "user-agents.tsv:%u: unknown class\n", lineno);
        return 0;
    }
    secs = strtoll(col[2], NULL, 10);

    /* A lone fetch: one client in its burst while the window is open. */
    f = facts(strcmp(col[0], "HEAD") == 0, col[3], net, secs,
              secs * 1000 < STORE_BURST_MS ? 1 : 0, "");
    rules_classify(r, &f, &v);
    seen_class[want] = 1;
    if (v.cls != want) {
        fprintf(stderr, "user-agents.tsv:%u: %s: got %s (rule %s), "
                "want %s\n", lineno, col[5], store_class_name(v.cls),
                v.rule, col[4]);
        return 0;
    }
    return 1;
}


static void
shipped_rules_should_classify_the_table(const char *root)
{
    char path[4096];
    char line[4096];
    int seen_class[STORE_N_CLASSES] = { 0 };
    struct rules *r = NULL;
    char err[512];
    unsigned lineno = 0, rows = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/rules/beacon.rules", root);
    CHECK(rules_load(&r, path, err, sizeof(err)) == 0);
    if (r == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    snprintf(path, sizeof(path), "%s/tests/data/user-agents.tsv", root);
    f = fopen(path, "r");
    CHECK(f != NULL);

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0'
            || strncmp(line, "method\t", 7) == 0) {
            continue;
        }
        rows++;
        CHECK(table_row(r, line, lineno, seen_class));
    }

    /* The table is not allowed to shrink to nothing, and covers all but
     * internal (a team's own networks are not in a public table). */
    CHECK(rows >= 60);
    for (int c = 0; c < STORE_N_CLASSES; c++) {
        CHECK(seen_class[c] || c == STORE_INTERNAL);
    }
    if (f != NULL) {
        fclose(f);
    }
    rules_free(r);
}


/* Situations the table cannot hold: bursts and the order of rules. */
static void
shipped_rules_should_handle_bursts(const char *root)
{
    static const char chrome[] = "Mozilla/5.0 (Windows NT 10.0; Win64; "
        "x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36";
    char path[4096];
    char err[512];
    struct rules *r = NULL;
    struct store_verdict v;

    snprintf(path, sizeof(path), "%s/rules/beacon.rules", root);
    CHECK(rules_load(&r, path, err, sizeof(err)) == 0);
    CHECK(rules_count(r) >= 30);

    CHECK_STR(rule_for(r, chrome, "198.51.100.0", 20, 3, "", &v), "burst");
    CHECK(v.cls == STORE_SCANNER && v.whole_burst == 1);
    CHECK_STR(rule_for(r, chrome, "198.51.100.0", 20, 2, "", &v),
              "default");
    CHECK(v.cls == STORE_HUMAN && v.whole_burst == 0);

    /* Proxies and Apple's relay are never swallowed by the burst rule. */
    CHECK_STR(rule_for(r, "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko "
                       "Firefox/11.0 (via ggpht.com GoogleImageProxy)",
                       "66.249.84.0", 2, 5, "", &v), "gmail-proxy");
    CHECK(v.cls == STORE_PROXY);

    /*
     * The burst is judged whichever rule gives the fetch its own verdict,
     * so the order of a gateway's fetches does not matter: the earlier
     * human fetches take the burst verdict.
     */
    CHECK_STR(rule_for(r, "Barracuda Sentinel (EE)", "203.0.113.0", 1, 3,
                       "", &v), "barracuda-ua");
    CHECK(v.cls == STORE_SCANNER && v.whole_burst == 1);
    CHECK(v.burst_cls == STORE_SCANNER);
    CHECK_STR(v.burst_rule, "burst");
    CHECK_STR(rule_for(r, "Mozilla/5.0", "203.0.113.0", 1, 3, "", &v),
              "apple-bare-ua");
    CHECK(v.cls == STORE_PRIVACY_PREFETCH && v.whole_burst == 1);
    CHECK_STR(v.burst_rule, "burst");
    CHECK_STR(rule_for(r, "Barracuda Sentinel (EE)", "203.0.113.0", 1, 2,
                       "", &v), "barracuda-ua");
    CHECK(v.whole_burst == 0);
    CHECK_STR(rule_for(r, "Mozilla/5.0", "17.58.100.0", 2, 4, "", &v),
              "apple-mpp");
    CHECK(v.cls == STORE_PRIVACY_PREFETCH);

    /* Microsoft's sandbox window: 9 s is the sandbox, 10 s is not. */
    CHECK_STR(rule_for(r, chrome, "40.97.140.0", 9, 1, "", &v),
              "microsoft-sandbox");
    CHECK_STR(rule_for(r, chrome, "40.97.140.0", 10, 1, "", &v),
              "default");
    rules_free(r);
}


/* ---- the parser ---------------------------------------------------- */


static void
parser_should_read_every_condition(void)
{
    char err[512];
    struct rules *r = NULL;
    struct store_fetch_facts f;
    struct store_verdict v;

    CHECK(load("# a comment\n"
               "\n"
               "   # an indented comment\n"
               "net office 198.51.100.0/24\n"
               "net office 2001:db8:100::/48 192.0.2.0/24\n"
               "h head_probe method=HEAD : head\n"
               "g scanner method=get ua~curl : get curl\n"
               "in internal net=@office,203.0.113.0/24 : office\n"
               "ref internal referer=Helpdesk.Example.COM : help desk\n"
               "q scanner ua~\"Office Protection\" ua!~outlook : quoted\n"
               "bare privacy_prefetch ua=Mozilla/5.0 : bare\n"
               "none scanner ua= : empty ua\n"
               "empty2 scanner ua=\"\" referer=x : empty quoted\n"
               "early scanner secs<10 ua~chrome : early chrome\n"
               "late\tproxy\tsecs>=86400\tua~chrome\t:\tlate chrome\n"
               "b scanner burst>=3 : burst\n",
               &r, err, sizeof(err)) == 0);
    CHECK(rules_count(r) == 11);
    if (r == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }

    f = facts(1, "curl/8", "192.0.2.0", 5, 1, "");
    rules_classify(r, &f, &v);
    CHECK_STR(v.rule, "h");
    CHECK(v.cls == STORE_HEAD_PROBE);
    CHECK_STR(v.reason, "head");

    CHECK_STR(rule_for(r, "curl/8", "192.0.2.0", 5, 1, "", &v), "g");
    CHECK_STR(rule_for(r, "x", "192.0.2.0", 5, 1, "", &v), "in");
    CHECK_STR(rule_for(r, "x", "198.51.100.0", 5, 1, "", &v), "in");
    CHECK_STR(rule_for(r, "x", "2001:db8:100::", 5, 1, "", &v), "in");
    CHECK_STR(rule_for(r, "x", "203.0.113.0", 5, 1, "", &v), "in");
    CHECK_STR(rule_for(r, "x", "198.51.101.0", 5, 1,
                       "helpdesk.example.com", &v), "ref");
    CHECK_STR(v.reason, "help desk");
    CHECK(v.cls == STORE_INTERNAL);
    CHECK_STR(rule_for(r, "x", "198.51.101.0", 5, 1,
                       "helpdesk.example.com.evil", &v), "default");
    CHECK_STR(rule_for(r, "Microsoft Office Protection", "198.51.101.0", 5,
                       1, "", &v), "q");
    CHECK_STR(rule_for(r, "Microsoft Office Protection Outlook",
                       "198.51.101.0", 5, 1, "", &v), "default");
    CHECK_STR(rule_for(r, "Mozilla/5.0", "198.51.101.0", 5, 1, "", &v),
              "bare");
    CHECK_STR(rule_for(r, "Mozilla/5.0 (X11)", "198.51.101.0", 99, 0, "",
                       &v), "default");
    CHECK_STR(rule_for(r, "", "198.51.101.0", 5, 1, "", &v), "none");
    CHECK_STR(rule_for(r, "Chrome/1", "198.51.101.0", 9, 1, "", &v),
              "early");
    CHECK_STR(rule_for(r, "Chrome/1", "198.51.101.0", 86400, 0, "", &v),
              "late");
    CHECK_STR(rule_for(r, "Chrome/1", "198.51.101.0", 100, 3, "", &v),
              "b");
    rules_free(r);
}


static void
parser_should_accept_crlf_and_a_last_line_without_end(void)
{
    char err[512];
    struct rules *r = NULL;
    struct store_verdict v;

    CHECK(load("a scanner ua~curl : curl\r\n"
               "b scanner ua~wget : wget", &r, err, sizeof(err)) == 0);
    CHECK(rules_count(r) == 2);
    CHECK_STR(rule_for(r, "Wget/1", "192.0.2.0", 1, 1, "", &v), "b");
    CHECK_STR(v.reason, "wget");
    rules_free(r);

    /* A file with no rule would count every machine as a person. */
    CHECK(load("", &r, err, sizeof(err)) == -1);
    CHECK(strstr(err, "holds no rule") != NULL);
    CHECK(load("# only a comment\n", &r, err, sizeof(err)) == -1);
}


/* Expects loading text to fail on line with a message holding want. */
static void
expect_error(const char *text, unsigned line, const char *want, int at)
{
    char err[512];
    char prefix[192];
    struct rules *r = (struct rules *) &err;
    int ok;

    snprintf(prefix, sizeof(prefix), "%s:%u: ", rules_path, line);
    err[0] = '\0';
    ok = load(text, &r, err, sizeof(err)) == -1 && r == NULL
         && strncmp(err, prefix, strlen(prefix)) == 0
         && strstr(err + strlen(prefix), want) != NULL;
    CHECK(ok);
    if (!ok) {
        fprintf(stderr, "  case on line %d: got \"%s\", want line %u "
                "and \"%s\"\n", at, err, line, want);
    }
}

#define EXPECT_ERROR(text, line, want) \
    expect_error(text, line, want, __LINE__)


static void
parser_should_name_every_error_with_its_line(void)
{
    EXPECT_ERROR("# ok\nx humn : r\n", 2, "unknown class \"humn\" (human, "
                 "proxy, privacy_prefetch, scanner, internal, head_probe)");
    EXPECT_ERROR("x\n", 1, "needs a class");
    EXPECT_ERROR("x : r\n", 1, "needs a class");
    EXPECT_ERROR("x human ua~a\n", 1, "needs ': reason' at its end");
    EXPECT_ERROR("x human ua~a :\n", 1, "has no reason after ':'");
    EXPECT_ERROR("x human ua~a :   \t\n", 1, "has no reason after ':'");
    EXPECT_ERROR("x human agent~a : r\n", 1,
                 "unknown condition \"agent~a\"");
    EXPECT_ERROR("x human ua>a : r\n", 1, "unknown condition \"ua>a\"");
    EXPECT_ERROR("x human UA~a : r\n", 1, "unknown condition");
    EXPECT_ERROR("x human method=POST : r\n", 1,
                 "method must be GET or HEAD, not \"POST\"");
    EXPECT_ERROR("x human ua~ : r\n", 1, "\"ua~\" needs text to look for");
    EXPECT_ERROR("x human ua!~\"\" : r\n", 1, "needs text to look for");
    EXPECT_ERROR("x human secs<ten : r\n", 1, "not a whole number");
    EXPECT_ERROR("x human secs>= : r\n", 1, "needs a number");
    EXPECT_ERROR("x human secs<-1 : r\n", 1, "not a whole number");
    EXPECT_ERROR("x human secs<99999999999999 : r\n", 1,
                 "number too large");
    EXPECT_ERROR("x human burst>=0 : r\n", 1, "burst>= needs at least 1");
    EXPECT_ERROR("x human net= : r\n", 1, "net= needs networks or @set");
    EXPECT_ERROR("x human net=10.0.0.0/8, : r\n", 1,
                 "empty network in a list");
    EXPECT_ERROR("x human net=10.0.0.0/33 : r\n", 1,
                 "\"10.0.0.0/33\" is not a network");
    EXPECT_ERROR("x human net=@nowhere : r\n", 1,
                 "unknown network set @nowhere");
    EXPECT_ERROR("x human ua~\"open : r\n", 1, "unterminated quote");
    EXPECT_ERROR("x human ua~\"a\"b : r\n", 1, "text after a closing quote");
    EXPECT_ERROR("x! human : r\n", 1, "bad rule id \"x!\"");
    EXPECT_ERROR("a human : r\nb human : r\na scanner : r\n", 3,
                 "rule id \"a\" is already used on line 1");
    EXPECT_ERROR("default human : r\n", 1, "rule id \"default\" is kept");
    EXPECT_ERROR("x human : r\ny human ua~\x01 : r\n", 2,
                 "control byte 0x01 in line");
    EXPECT_ERROR("net\tbad!name 10.0.0.0/8\n", 1,
                 "bad network set name \"bad!name\"");
    EXPECT_ERROR("net x\n", 1, "network set \"x\" needs networks");
    EXPECT_ERROR("net\n", 1, "\"net\" needs a set name and networks");
    EXPECT_ERROR("# x\nnet scanner ua~x : r\n", 2,
                 "a rule cannot be called \"net\"");
    EXPECT_ERROR("net x 10.0.0.0/8,@y\n", 1, "a set cannot include another");
    EXPECT_ERROR("net a 10.0.0.0/8\nr human net=@a : r\nnet a 11.0.0.0/8\n",
                 3, "network set \"a\" is already used by the rule on line 2");
}


static void
parser_should_reject_networks_narrower_than_stored(void)
{
    char err[512];
    struct rules *r = NULL;
    struct store_verdict v;

    EXPECT_ERROR("x human net=192.0.2.0/25 : r\n", 1,
                 "network 192.0.2.0/25 is narrower than /24");
    EXPECT_ERROR("x human net=192.0.2.7 : r\n", 1, "narrower than /24");
    EXPECT_ERROR("x human net=2001:db8::/49 : r\n", 1,
                 "network 2001:db8::/49 is narrower than /48");
    EXPECT_ERROR("x human net=2001:db8::1 : r\n", 1, "narrower than /48");
    EXPECT_ERROR("x human net=::ffff:192.0.2.0/121 : r\n", 1,
                 "narrower than /24");
    EXPECT_ERROR("net n 10.0.0.0/8,192.0.2.128/26\n", 1,
                 "narrower than /24");

    CHECK(load("a human net=192.0.2.0/24,2001:db8:1::/48,0.0.0.0/0,::/0 "
               ": r\n", &r, err, sizeof(err)) == 0);
    CHECK(rules_count(r) == 1);
    rules_free(r);

    /* IPv6 sets, "::" included, are not taken for a rule's ':'. */
    CHECK(load("net v6 ::ffff:10.0.0.0/104 ::/0\n"
               "v6 scanner net=@v6 : any v6\n", &r, err, sizeof(err)) == 0);
    CHECK_STR(rule_for(r, "a", "2001:db8:1::", 1, 1, "", &v), "v6");
    CHECK_STR(rule_for(r, "a", "10.9.8.0", 1, 1, "", &v), "v6");
    CHECK_STR(rule_for(r, "a", "11.9.8.0", 1, 1, "", &v), "default");
    rules_free(r);
}


/* Appends to a growing text; exits on failure (test scaffolding). */
static void
append(char **buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    char *grown = realloc(*buf, *len + n + 1);

    if (grown == NULL) {
        exit(2);
    }
    memcpy(grown + *len, s, n + 1);
    *buf = grown;
    *len += n;
}


static void
parser_should_bound_rules_and_lines(void)
{
    char line[1200];
    char err[512];
    char *text = NULL;
    size_t len = 0;
    struct rules *r = NULL;

    for (int i = 0; i < 1000; i++) {
        snprintf(line, sizeof(line), "r%d scanner ua~x%d : r\n", i, i);
        append(&text, &len, line);
    }
    CHECK(load(text, &r, err, sizeof(err)) == 0);
    CHECK(rules_count(r) == 1000);
    rules_free(r);
    append(&text, &len, "one-more human : r\n");
    EXPECT_ERROR(text, 1001, "more than 1000 rules");
    free(text);

    /* A line of exactly 1000 bytes passes; 1001 does not. */
    memset(line, 0, sizeof(line));
    strcpy(line, "x human : ");
    memset(line + strlen(line), 'a', 1000 - strlen(line));
    CHECK(strlen(line) == 1000);
    CHECK(load(line, &r, err, sizeof(err)) == -1);
    CHECK(strstr(err, "reason longer than 159 bytes") != NULL);
    strcpy(line, "# ");
    memset(line + 2, 'c', 998);
    line[1000] = '\n';
    strcpy(line + 1001, "x human : x\n");
    CHECK(load(line, &r, err, sizeof(err)) == 0);
    rules_free(r);
    line[1000] = 'c';
    line[1001] = '\n';
    EXPECT_ERROR(line, 1, "line longer than 1000 bytes");
}


static void
parser_should_bound_ids_reasons_and_conditions(void)
{
    char text[2048];
    char err[512];
    struct rules *r = NULL;
    struct store_verdict v;
    char id[64];
    char reason[200];

    memset(id, 'i', 47);
    id[47] = '\0';
    memset(reason, 'r', 159);
    reason[159] = '\0';
    snprintf(text, sizeof(text), "%s human : %s\n", id, reason);
    CHECK(load(text, &r, err, sizeof(err)) == 0);
    CHECK_STR(rule_for(r, "x", "192.0.2.0", 1, 1, "", &v), id);
    CHECK_STR(v.reason, reason);
    rules_free(r);

    snprintf(text, sizeof(text), "%si human : r\n", id);
    EXPECT_ERROR(text, 1, "is longer than 47 characters");
    snprintf(text, sizeof(text), "x human : %sr\n", reason);
    EXPECT_ERROR(text, 1, "reason longer than 159 bytes");

    strcpy(text, "x human");
    for (int i = 0; i < 16; i++) {
        strcat(text, " ua!~zz");
    }
    strcat(text, " : r\n");
    CHECK(load(text, &r, err, sizeof(err)) == 0);
    rules_free(r);
    strcpy(strstr(text, " : r"), " ua!~zz : r\n");
    EXPECT_ERROR(text, 1, "more than 16 conditions in one rule");
}


static void
parser_should_report_a_missing_file(void)
{
    char err[512];
    char path[192];
    struct rules *r = (struct rules *) &err;

    snprintf(path, sizeof(path), "%s/none.rules", tmp_dir);
    CHECK(rules_load(&r, path, err, sizeof(err)) == -1);
    CHECK(r == NULL);
    CHECK(strncmp(err, path, strlen(path)) == 0);
    CHECK(strstr(err, ": cannot open: ") != NULL);
}


/* ---- matching ------------------------------------------------------ */


static void
matching_should_take_the_first_rule_that_holds(void)
{
    char err[512];
    struct rules *r = NULL;
    struct store_verdict v;
    struct store_fetch_facts f;

    CHECK(load("first proxy ua~proxy : one\n"
               "second scanner ua~proxy : two\n"
               "third scanner ua~bot net=10.0.0.0/8 : three\n",
               &r, err, sizeof(err)) == 0);
    CHECK_STR(rule_for(r, "SomeProxy", "10.1.2.0", 1, 1, "", &v), "first");
    CHECK(v.cls == STORE_PROXY);
    CHECK_STR(v.reason, "one");

    /* All conditions must hold: a bot outside 10/8 falls through. */
    CHECK_STR(rule_for(r, "bot", "10.1.2.0", 1, 1, "", &v), "third");
    CHECK_STR(rule_for(r, "bot", "11.1.2.0", 1, 1, "", &v), "default");
    CHECK(v.cls == STORE_HUMAN && v.whole_burst == 0);
    CHECK_STR(v.reason, "no rule matched: counted as a person");

    /* Unknown or missing network text never matches a net= condition. */
    CHECK_STR(rule_for(r, "bot", "unknown", 1, 1, "", &v), "default");
    f = facts(0, NULL, NULL, 1, 1, NULL);
    rules_classify(r, &f, &v);
    CHECK_STR(v.rule, "default");

    /* No rules at all: the default. */
    rules_classify(NULL, &f, &v);
    CHECK_STR(v.rule, "default");
    CHECK(v.cls == STORE_HUMAN);
    rules_free(r);
}


static void
matching_should_mark_whole_bursts_only_for_burst_rules(void)
{
    char err[512];
    struct rules *r = NULL;
    struct store_verdict v;

    CHECK(load("wide scanner burst>=3 secs<60 : burst\n"
               "doc scanner net=203.0.113.0/24 : doc\n",
               &r, err, sizeof(err)) == 0);
    CHECK_STR(rule_for(r, "a", "198.51.100.0", 5, 3, "", &v), "wide");
    CHECK(v.whole_burst == 1);
    CHECK_STR(rule_for(r, "a", "198.51.100.0", 5, 2, "", &v), "default");
    CHECK(v.whole_burst == 0);
    /* After the window the store reports 0 clients: no burst. */
    CHECK_STR(rule_for(r, "a", "198.51.100.0", 90, 0, "", &v), "default");
    CHECK_STR(rule_for(r, "a", "203.0.113.0", 5, 3, "", &v), "wide");
    CHECK_STR(rule_for(r, "a", "203.0.113.0", 5, 1, "", &v), "doc");
    CHECK(v.whole_burst == 0);
    rules_free(r);
}


static void
matching_should_respect_secs_edges(void)
{
    char err[512];
    struct rules *r = NULL;
    struct store_verdict v;

    CHECK(load("early scanner secs<10 : early\n"
               "late human secs>=3600 : late\n"
               "zero scanner secs<1 ua~z : zero\n",
               &r, err, sizeof(err)) == 0);
    CHECK_STR(rule_for(r, "a", "192.0.2.0", 0, 1, "", &v), "early");
    CHECK_STR(rule_for(r, "a", "192.0.2.0", 9, 1, "", &v), "early");
    CHECK_STR(rule_for(r, "a", "192.0.2.0", 10, 1, "", &v), "default");
    CHECK_STR(rule_for(r, "a", "192.0.2.0", 3599, 0, "", &v), "default");
    CHECK_STR(rule_for(r, "a", "192.0.2.0", 3600, 0, "", &v), "late");
    CHECK_STR(rule_for(r, "a", "192.0.2.0", INT64_MAX, 0, "", &v), "late");
    rules_free(r);
}


static void
matching_should_ignore_case(void)
{
    char err[512];
    struct rules *r = NULL;
    struct store_verdict v;
    struct store_fetch_facts f;

    CHECK(load("g proxy ua~GoogleImageProxy : g\n"
               "e scanner ua=\"Exact Agent\" : e\n"
               "n scanner ua!~Mozilla referer=desk.EXAMPLE.com : n\n"
               "h head_probe method=head : h\n",
               &r, err, sizeof(err)) == 0);
    CHECK_STR(rule_for(r, "x googleimageproxy", "192.0.2.0", 1, 1, "", &v),
              "g");
    CHECK_STR(rule_for(r, "X GOOGLEIMAGEPROXY", "192.0.2.0", 1, 1, "", &v),
              "g");
    CHECK_STR(rule_for(r, "exact AGENT", "192.0.2.0", 1, 1, "", &v), "e");
    CHECK_STR(rule_for(r, "exact agent ", "192.0.2.0", 1, 1, "", &v),
              "default");
    CHECK_STR(rule_for(r, "curl", "192.0.2.0", 1, 1, "Desk.Example.Com",
                       &v), "n");
    CHECK_STR(rule_for(r, "MOZILLA", "192.0.2.0", 1, 1, "desk.example.com",
                       &v), "default");
    f = facts(1, "a", "192.0.2.0", 1, 1, "");
    rules_classify(r, &f, &v);
    CHECK_STR(v.rule, "h");
    rules_free(r);
}


/* ---- the classifier ------------------------------------------------ */


static void
classifier_should_keep_its_rules_on_a_bad_reload(void)
{
    char err[512];
    struct classifier *c = NULL;
    struct store_fetch_facts f = facts(0, "curl/8", "192.0.2.0", 1, 1, "");
    struct store_verdict v;

    write_rules("old scanner ua~curl : old rules\n");
    CHECK(classifier_new(&c, rules_path, err, sizeof(err)) == 0);
    classifier_classify(c, &f, &v);
    CHECK_STR(v.rule, "old");

    write_rules("new human ua~curl : new rules\nbroken humn : x\n");
    CHECK(classifier_reload(c, err, sizeof(err)) == -1);
    CHECK(strstr(err, ":2: unknown class \"humn\"") != NULL);
    classifier_classify(c, &f, &v);
    CHECK_STR(v.rule, "old");
    CHECK(v.cls == STORE_SCANNER);

    unlink(rules_path);
    CHECK(classifier_reload(c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "cannot open") != NULL);
    classifier_classify(c, &f, &v);
    CHECK_STR(v.rule, "old");

    write_rules("new human ua~curl : new rules\n");
    CHECK(classifier_reload(c, err, sizeof(err)) == 0);
    classifier_classify(c, &f, &v);
    CHECK_STR(v.rule, "new");
    CHECK(v.cls == STORE_HUMAN);
    classifier_free(c);

    unlink(rules_path);
    c = (struct classifier *) &err;
    CHECK(classifier_new(&c, rules_path, err, sizeof(err)) == -1);
    CHECK(c == NULL);
    classifier_classify(NULL, &f, &v);
    CHECK_STR(v.rule, "default");
    classifier_free(NULL);
}


struct race {
    struct classifier *c;
    int torn;
};


static void *
classify_many(void *arg)
{
    struct race *rc = arg;
    struct store_fetch_facts f = facts(0, "curl/8", "192.0.2.0", 1, 1, "");
    struct store_verdict v;

    for (int i = 0; i < 20000; i++) {
        classifier_classify(rc->c, &f, &v);
        if (!((strcmp(v.rule, "a") == 0 && strcmp(v.reason, "ra") == 0)
              || (strcmp(v.rule, "b") == 0 && strcmp(v.reason, "rb") == 0))) {
            rc->torn++;
        }
    }
    return NULL;
}


static void
classifier_should_swap_rules_under_readers(void)
{
    char err[512];
    struct race rc = { NULL, 0 };
    pthread_t t;

    write_rules("a scanner ua~curl : ra\n");
    CHECK(classifier_new(&rc.c, rules_path, err, sizeof(err)) == 0);
    CHECK(pthread_create(&t, NULL, classify_many, &rc) == 0);
    for (int i = 0; i < 200; i++) {
        write_rules(i % 2 ? "a scanner ua~curl : ra\n"
                          : "b scanner ua~curl : rb\n");
        CHECK(classifier_reload(rc.c, err, sizeof(err)) == 0);
    }
    pthread_join(t, NULL);
    CHECK(rc.torn == 0);
    classifier_free(rc.c);
}


int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_classify SOURCE_ROOT\n");
        return 2;
    }
    log_set_level(LOG_ERROR);
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/beacon-classify-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(rules_path, sizeof(rules_path), "%s/test.rules", tmp_dir);

    shipped_rules_should_classify_the_table(argv[1]);
    shipped_rules_should_handle_bursts(argv[1]);
    parser_should_read_every_condition();
    parser_should_accept_crlf_and_a_last_line_without_end();
    parser_should_name_every_error_with_its_line();
    parser_should_reject_networks_narrower_than_stored();
    parser_should_bound_rules_and_lines();
    parser_should_bound_ids_reasons_and_conditions();
    parser_should_report_a_missing_file();
    matching_should_take_the_first_rule_that_holds();
    matching_should_mark_whole_bursts_only_for_burst_rules();
    matching_should_respect_secs_edges();
    matching_should_ignore_case();
    classifier_should_keep_its_rules_on_a_bad_reload();
    classifier_should_swap_rules_under_readers();

    unlink(rules_path);
    rmdir(tmp_dir);
    return check_done();
}
