"""Smoke run of bench/reports.sh, and the query plans of the two reports.

Usage: python3 test_reports_smoke.py path/to/beacon

1. Runs `bench/reports.sh --smoke --build DIR` (DIR: the beacon binary's
   directory; bench/gen_reports is built under it) and checks its report:
   a timing row per report, the pixel rows with positive rates, and every
   target stated as met or MISSED.  Missing a target is the benchmark's
   business, not this test's.
2. Proves with EXPLAIN QUERY PLAN, on a smoke database made by
   gen_reports, that the domains report, the domain trend and the call
   list read the big tables (messages, fetches) through an index, never
   by a full scan, and that the call list reads customers_on_call_list
   in its order, and that the domains report's statements sort
   nothing (store_domains() sums per domain in C).  The SQL is read from
   store/store_sqlite.c (the S_DOMAINS_SLICES, S_DOMAINS_EDGE,
   S_DOMAIN_SERIES and S_UNOPENED entries of stmt_sql), so the check
   follows the code; when it cannot be read there, the check falls back
   to the query shapes the reports are built on and says so.  The
   checker is also shown a query
   that must scan, so it cannot pass by accident.
"""

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SCRIPT = os.path.join(ROOT, "bench", "reports.sh")
STORE_C = os.path.join(ROOT, "store", "store_sqlite.c")
TIMEOUT = 60        # a hang guard; the smoke run takes about 10 s
BIG_TABLES = ("messages", "fetches")

# Used only when the statements cannot be read from store_sqlite.c.
FALLBACK_SQL = {
    "S_DOMAINS_SLICES":
        "SELECT domain, sent, reached, opened FROM domain_slices"
        " WHERE slice >= ?1 AND slice < ?2",
    "S_DOMAINS_EDGE":
        "SELECT domain, 1, reached_at IS NOT NULL FROM messages"
        " WHERE sent_at >= ?1 AND sent_at < ?2",
    "S_UNOPENED":
        "SELECT count(*), min(sent_at), max(sent_at) FROM messages"
        " WHERE customer_id = ?1 AND kind = 'reply' AND sent_at >= ?2",
    "S_DOMAIN_SERIES":
        "SELECT sent_at, reached_at IS NOT NULL, first_open_at IS NOT NULL"
        " FROM messages WHERE domain = ?1 AND sent_at >= ?2"
        " AND sent_at < ?3 ORDER BY sent_at",
}


# Read from store_sqlite.c only: the call list's statements (version 4).
CALL_LIST_SQL = ["S_UNOPENED_COUNT", "S_UNOPENED_DETAIL",
                 "S_UNOPENED_TICKETS"]


def c_string(text, pos):
    """The C string literal at text[pos] (a '"'): (value, end)."""
    out, i = [], pos + 1
    escapes = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
    while text[i] != '"':
        if text[i] == "\\":
            out.append(escapes.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out), i + 1


def c_literals(text, pos, macros):
    """Adjacent string literals and string macros from pos up to the
    ',' or '}' that ends an initializer: (sql, None) or (None, why)."""
    parts = []
    while True:
        m = re.compile(r"\s*(/\*.*?\*/)?", re.S).match(text, pos)
        pos = m.end()
        if m.group(1):
            continue
        ch = text[pos]
        if ch == '"':
            value, pos = c_string(text, pos)
            parts.append(value)
        elif ch in ",}":
            return ("".join(parts), None) if parts else (None, "empty")
        else:
            m = re.compile(r"[A-Za-z_]\w*").match(text, pos)
            if not m or m.group(0) not in macros:
                return None, "unknown token at %r" % text[pos:pos + 30]
            parts.append(macros[m.group(0)])
            pos = m.end()


def store_sql(names):
    """{name: sql} read from store_sqlite.c; {name: None} when not."""
    with open(STORE_C, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    macros = {}
    for m in re.finditer(r'^#define (\w+)\s+((?:"(?:[^"\\]|\\.)*"\s*)+)$',
                         text, re.M):
        macros[m.group(1)] = "".join(
            c_string(s, 0)[0] for s in re.findall(
                r'"(?:[^"\\]|\\.)*"', m.group(2)))
    found = {}
    for name in names:
        m = re.search(r"\[%s\]\s*=" % re.escape(name), text)
        sql, why = (c_literals(text, m.end(), macros) if m
                    else (None, "no entry"))
        if sql is None:
            print("note: cannot read %s from store_sqlite.c (%s)"
                  % (name, why))
        found[name] = sql
    return found


def query_plan(conn, sql):
    """EXPLAIN QUERY PLAN details of sql, its parameters bound to 0."""
    last = None
    for n in range(0, 33):
        try:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql,
                                (0,) * n).fetchall()
            return [r[3] for r in rows]
        except sqlite3.ProgrammingError as e:
            last = e        # wrong number of bindings: try the next
    raise last


def aliases(sql):
    """Names (tables and their aliases) that stand for a big table."""
    names = set(BIG_TABLES)
    for m in re.finditer(r"\b(%s)\s+(?:AS\s+)?([A-Za-z_]\w*)"
                         % "|".join(BIG_TABLES), sql, re.I):
        word = m.group(2).upper()
        if word not in ("WHERE", "ON", "JOIN", "GROUP", "ORDER", "LEFT",
                        "CROSS", "INNER", "USING", "SET", "LIMIT"):
            names.add(m.group(2))
    return names


def plan_problems(sql, plan):
    """What is wrong with a plan: a big table scanned without an index,
    or no step that uses an index at all."""
    bad = []
    big = aliases(sql)
    for step in plan:
        m = re.match(r"SCAN (\w+)", step)
        if m and m.group(1) in big and "INDEX" not in step:
            bad.append("full scan: %s" % step)
    if not any(re.search(r"USING (COVERING |INTEGER PRIMARY KEY|PRIMARY "
                         r"KEY|INDEX)", s) for s in plan):
        bad.append("no step uses an index")
    return bad


def call_list_problems(plan):
    """The call list must walk customers_on_call_list in its own order,
    so that a page stops early instead of sorting every listed row."""
    bad = []
    if not any("customers_on_call_list" in step for step in plan):
        bad.append("does not read customers_on_call_list")
    if any("TEMP B-TREE FOR ORDER BY" in step for step in plan):
        bad.append("sorts its rows instead of reading them in order")
    return bad


def check_plans(gen):
    """Returns what is wrong with the report queries' plans."""
    bad = []
    tmp = tempfile.mkdtemp(prefix="beacon-plan.")
    try:
        db = os.path.join(tmp, "plan.db")
        run = subprocess.run([gen, "--db", db, "--messages", "5000",
                              "--domains", "50", "--fetches", "15000"],
                             capture_output=True, text=True,
                             timeout=TIMEOUT)
        if run.returncode != 0:
            return ["gen_reports exited %d: %s" % (run.returncode,
                                                   run.stderr.strip())]
        conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True)

        # The checker must catch a scan: no index has recipient first.
        probe = "SELECT domain, count(*) FROM messages WHERE recipient = ?1"
        if not plan_problems(probe, query_plan(conn, probe)):
            bad.append("plan checker missed a full scan of messages")

        sql = store_sql(list(FALLBACK_SQL) + CALL_LIST_SQL)
        for name, text in sorted(sql.items()):
            source = "store_sqlite.c"
            if text is None and name not in FALLBACK_SQL:
                bad.append("%s: cannot read it from store_sqlite.c" % name)
                continue
            if text is None:
                text, source = FALLBACK_SQL[name], "fallback shape"
            plan = query_plan(conn, text)
            print("%s (%s):" % (name, source))
            for step in plan:
                print("    " + step)
            bad += ["%s: %s" % (name, p) for p in plan_problems(text, plan)]
            if name.startswith("S_DOMAINS_") and any(
                    "TEMP B-TREE" in step for step in plan):
                bad.append("%s: sorts or groups in SQLite" % name)
            if name == "S_UNOPENED" and source == "store_sqlite.c":
                bad += ["S_UNOPENED: %s" % p for p in call_list_problems(plan)]
            if name == "S_UNOPENED_COUNT" and not any(
                    "COVERING INDEX customers_on_call_list" in step
                    for step in plan):
                bad.append("S_UNOPENED_COUNT: reads the customers table,"
                           " not only customers_on_call_list")
        conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return bad


def check_report(out):
    """Returns a list of what is wrong with reports.sh's report."""
    bad = []
    for path in ("/api/v1/domains", "/api/v1/unopened"):
        m = re.search(r"^%s +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+) +(\d+)$"
                      % re.escape(path), out, re.M)
        if not m:
            bad.append("no timing row for %s" % path)
        elif float(m.group(2)) <= 0 or int(m.group(5)) <= 2:
            bad.append("implausible row: %s" % m.group(0))
    for label in (r"alone \(A, twice\)", "with domains", "with unopened"):
        m = re.search(r"^%s +(\d+) +([\d.]+) " % label, out, re.M)
        if not m or int(m.group(1)) <= 0:
            bad.append("no pixel row with a positive rate for %s" % label)
    targets = re.findall(r"^target .*: (met|MISSED) \(", out, re.M)
    if len(targets) != 4:
        bad.append("expected 4 target lines, found %d" % len(targets))
    m = re.search(r"^gen_reports: 5000 messages \(\d+ customers, 50 "
                  r"domains\) in [\d.]+ s, 15000 fetches", out, re.M)
    if not m:
        bad.append("no generator summary for 5000 messages, 15000 fetches")
    return bad


def run_smoke(build):
    """Runs reports.sh --smoke; returns (stdout, what is wrong)."""
    proc = subprocess.Popen(["bash", SCRIPT, "--smoke", "--build", build],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the script's trap stop the server it started.
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return out + err, ["reports.sh --smoke still running after %ds"
                           % TIMEOUT]
    print(out)
    if err:
        print(err, file=sys.stderr)
    if proc.returncode != 0:
        return out, ["reports.sh --smoke exited %d" % proc.returncode]
    return out, check_report(out)


def main():
    if len(sys.argv) != 2:
        print("usage: test_reports_smoke.py path/to/beacon", file=sys.stderr)
        return 2
    build = os.path.dirname(os.path.abspath(sys.argv[1]))
    gen = os.path.join(build, "bench", "gen_reports")
    if shutil.which("wrk") is None:
        print("FAIL: reports smoke needs wrk: apt-get install wrk")
        return 1
    if not os.access(gen, os.X_OK):
        print("FAIL: no %s (build the gen_reports target)" % gen)
        return 1

    # A bad option is refused before anything starts.
    rc = subprocess.run(["bash", SCRIPT, "--messages", "0"],
                        capture_output=True, text=True, timeout=TIMEOUT)
    if rc.returncode != 2 or "positive integer" not in rc.stderr:
        print("FAIL: --messages 0 gave exit %d, stderr %r"
              % (rc.returncode, rc.stderr))
        return 1

    start = time.monotonic()
    bad = check_plans(gen)
    _, smoke_bad = run_smoke(build)
    bad += smoke_bad
    for what in bad:
        print("FAIL: " + what)
    if bad:
        return 1
    print("reports smoke passed in %.1fs" % (time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
