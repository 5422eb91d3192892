"""End-to-end test of `beacon demo`: the command line, then the API of a
`beacon serve` started on the demo database.

The figures themselves are checked in tests/unit/test_demo.c with a
fixed clock; here the month ends at the real now, so this test checks
what the user sees: the exit codes and messages, and that the API serves
the demo month (fourteen mail hosts, yahoo.com's collapse, a call list).

Usage: test_demo.py path/to/beacon
"""

import datetime
import os
import subprocess
import sys
import tempfile

from beacon_harness import Beacon, Failure, check, check_eq


def demo(binary, *args):
    """Runs `beacon demo ARGS`; returns (exit code, stdout, stderr)."""
    p = subprocess.run([binary, "demo"] + list(args), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_command_line(binary, db):
    rc, out, err = demo(binary, "--db", db)
    check_eq(rc, 0, "first demo run's exit code (stderr %r)" % err)
    check(out.startswith("beacon demo: wrote 400 customers, "),
          "summary line: %r" % out)
    check("(seed 20260401)" in out, "default seed named: %r" % out)

    rc, out, err = demo(binary, "--db", db)
    check_eq(rc, 1, "second demo run's exit code")
    check("already holds" in err and "messages" in err
          and "empty" in err, "refusal message: %r" % err)
    check_eq(out, "", "nothing on stdout when refused")

    rc, _, err = demo(binary, "--db", db + ".2", "--seed", "x7")
    check_eq(rc, 2, "exit code for a bad seed")
    check("--seed" in err, "bad seed message: %r" % err)
    check(not os.path.exists(db + ".2"), "no database for a bad seed")

    rc, _, err = demo(binary)
    check_eq(rc, 2, "exit code without --db")
    check("--db PATH is required" in err, "missing --db message: %r" % err)

    rc, out, _ = demo(binary, "--help")
    check_eq(rc, 0, "--help exit code")
    check("usage: beacon demo --db PATH" in out, "--help text: %r" % out)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def rows_by_domain(srv, since, until):
    body = srv.get("/api/v1/domains?since=%s&until=%s"
                   % (iso(since), iso(until)))
    return {r["domain"]: r for r in body["domains"]}


def test_served(binary, workdir):
    now = datetime.datetime.now(datetime.timezone.utc)
    week = datetime.timedelta(days=7)
    with Beacon(binary, workdir=workdir) as srv:
        month = rows_by_domain(srv, now - 5 * week, now + week)
        check_eq(len(month), 14, "mail hosts in the demo month")
        for host in ("gmail.com", "yahoo.com", "mail.yahoo.co.uk",
                     "icloud.com", "acme.example"):
            check(host in month, "%s in /api/v1/domains" % host)

        cur = rows_by_domain(srv, now - week, now + week)["yahoo.com"]
        base = rows_by_domain(srv, now - 5 * week, now - week)["yahoo.com"]
        check(cur["sent"] >= 30 and base["sent"] >= 30,
              "yahoo.com sent: %d, %d" % (cur["sent"], base["sent"]))
        check(cur["open_rate"] < 0.15 and base["open_rate"] > 0.4,
              "yahoo.com open rate %.3f this week, %.3f before"
              % (cur["open_rate"], base["open_rate"]))

        calls = srv.get("/api/v1/unopened")["customers"]
        check(len(calls) >= 20, "call list rows: %d" % len(calls))
        check(calls[0]["value"] >= 5000,
              "most valuable first: %r" % calls[0])
        check(calls[0]["name"], "a name on the first row: %r" % calls[0])


def main():
    if len(sys.argv) != 2:
        print("usage: test_demo.py path/to/beacon", file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="beacon-e2e-demo-") as d:
        for name, fn in (("command_line",
                          lambda: test_command_line(
                              binary, os.path.join(d, "beacon.db"))),
                         ("served", lambda: test_served(binary, d))):
            try:
                fn()
                passed += 1
                print("ok   %s" % name)
            except Failure as e:
                failed += 1
                print("FAIL %s: %s" % (name, e))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
