#!/usr/bin/env python3
"""Privacy and HTTP hygiene against the real binary (issue 6).

- --retain-days purges old fetch details (network, User-Agent, Referer,
  rule reason) and keeps every figure the reports show.
- DELETE /api/v1/recipients/{address} erases a recipient: the domains
  report drops by exactly their figures, the ticket view and the call
  list forget them, a second DELETE is 404, their pixel still answers.
- Security headers on the dashboard, static files and JSON replies.
- Neither pixel tokens nor API keys ever reach the log or an error.

Usage: test_privacy.py PATH_TO_BEACON
"""

import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from beacon_harness import (Beacon, Failure, check, check_eq, now_ms, poll,
                            quote, rfc3339, run_tests)

BINARY = None
DAY_MS = 24 * 3600 * 1000
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")
PROXY = ["--trusted-proxy", "127.0.0.0/8"]


def register(srv, ticket, recipient, sent_ms, value=None):
    fields = {"ticket_id": ticket, "recipient": recipient,
              "sent_at": rfc3339(sent_ms)}
    if value is not None:
        fields["customer"] = {"value": value}
    reg = srv.register(**fields)
    reg["_ticket"] = ticket
    return reg


def fetch(srv, reg, addr, ua):
    status, _, _ = srv.fetch_from(srv.pixel_path(reg), addr, ua=ua,
                                  headers={"Referer":
                                           "https://webmail.example/x"})
    check_eq(status, 200, "pixel status")


def figures(srv):
    """What the reports show: domains rows and the call list."""
    domains = srv.get("/api/v1/domains")["domains"]
    calls = srv.get("/api/v1/unopened?older_than=1h")["customers"]
    return domains, [c["recipient"] for c in calls]


def db_rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def retain_days_purges_details_and_keeps_every_figure():
    sent = now_ms() - 3 * DAY_MS
    with Beacon(BINARY, args=PROXY) as srv:
        a = register(srv, "P1", "ann@old.example", sent, value=5)
        b = register(srv, "P2", "bob@old.example", sent, value=9)
        fetch(srv, a, "198.51.100.7", "Mozilla/5.0 ann-client")
        fetch(srv, a, "203.0.113.9", "GoogleImageProxy")
        fetch(srv, b, "192.0.2.44", "Mozilla/5.0 bob-client")
        srv.wait_fetches("P1", a["id"], 2)
        srv.wait_fetches("P2", b["id"], 1)
        before = figures(srv)
        msg_before = srv.message("P1", a["id"])
        workdir = srv.workdir
        db = srv.db
        srv.owned_dir, owned = None, srv.owned_dir

    try:
        # Age every fetch of P1 by 40 days (the server is stopped).
        con = sqlite3.connect(db)
        con.execute("UPDATE fetches SET at = at - 40 * 86400000,"
                    " last_at = last_at - 40 * 86400000 WHERE message_id"
                    " = ?", (a["id"],))
        con.commit()
        con.close()

        srv = Beacon(BINARY, workdir=workdir,
                     args=PROXY + ["--retain-days", "30"])
        with srv:
            poll(lambda: "event=retention.purged" in srv.stderr_text(),
                 "a retention.purged log line", timeout=10)
            log = srv.stderr_text()
            check("messages=1 rows=2 fetches=2" in log,
                  "purge logged: %s" % log[-600:])
            after = figures(srv)
            check_eq(after, before, "reports after the purge")
            msg = srv.message("P1", a["id"])
            check_eq(msg["fetches"], [], "P1's fetch details")
            check_eq(msg["fetches_by_class"], msg_before["fetches_by_class"],
                     "P1's counts")
            check_eq(msg["first_open_at"], msg_before["first_open_at"],
                     "P1's first open")
            check_eq(len(srv.message("P2", b["id"])["fetches"]), 1,
                     "P2's recent fetch")
            check_eq(db_rows(db, "SELECT count(*) FROM fetches WHERE"
                             " user_agent LIKE '%ann%' OR addr LIKE"
                             " '198.51%'"), [(0,)], "ann's details in db")

        # Reclassify afterwards keeps every count.
        rules = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "..", "..", "rules", "beacon.rules")
        rc = os.spawnv(os.P_WAIT, BINARY, [BINARY, "reclassify", "--db", db,
                                           "--rules", rules])
        check_eq(rc, 0, "beacon reclassify exit")
        with Beacon(BINARY, workdir=workdir, args=PROXY) as srv:
            check_eq(figures(srv), before, "reports after reclassify")
    finally:
        owned.cleanup()


def retain_days_rejects_bad_values():
    for bad in ("-1", "x", "36501"):
        proc = os.popen("%s serve --retain-days %s 2>&1" % (BINARY, bad))
        out = proc.read()
        check(proc.close() is not None, "--retain-days %s accepted" % bad)
        check("--retain-days" in out, "error names the flag: %r" % out)


def delete_recipient_erases_them_and_only_them():
    sent = now_ms() - 2 * DAY_MS
    with Beacon(BINARY, args=PROXY + ["--log-level", "debug"]) as srv:
        keep = register(srv, "E1", "keep@shop.example", sent, value=3)
        gone1 = register(srv, "E2", "Gone@Shop.Example", sent, value=8)
        gone2 = register(srv, "E3", "gone@shop.example", sent + 1000,
                         value=8)
        fetch(srv, keep, "192.0.2.1", "Mozilla/5.0 keep")
        fetch(srv, gone1, "192.0.2.2", "Mozilla/5.0 gone")
        fetch(srv, gone1, "192.0.2.3", "GoogleImageProxy")
        srv.wait_fetches("E1", keep["id"], 1)
        srv.wait_fetches("E2", gone1["id"], 2)
        status, _, _ = srv.api("POST", "/api/v1/calls", {
            "recipient": "gone@shop.example", "outcome": "voicemail"})
        check_eq(status, 201, "call recorded")

        row = srv.domain("shop.example")
        check_eq(row["sent"], 3, "sent before")
        _, listed = figures(srv)
        check("gone@shop.example" in [r.lower() for r in listed],
              "gone is on the call list: %r" % listed)

        status, headers, body = srv.api(
            "DELETE", "/api/v1/recipients/" + quote("gone@SHOP.example."))
        check_eq(status, 200, "DELETE status (%r)" % body)
        check_eq(body, {"recipient": "gone@shop.example", "messages": 2,
                        "fetches": 2, "fetch_rows": 2, "calls": 1,
                        "customer": True}, "DELETE reply")
        check_eq(headers.get("referrer-policy"), "no-referrer",
                 "Referrer-Policy on JSON")

        after = srv.domain("shop.example")
        check_eq(after["sent"], row["sent"] - 2, "sent after")
        check_eq(after["opened"], row["opened"] - 1, "opened after")
        check_eq(after["fetches"], row["fetches"] - 2, "fetches after")
        check_eq(after["total_opens"], row["total_opens"] - 2,
                 "total opens after")
        status, _, _ = srv.api("GET", "/api/v1/tickets/E2")
        check_eq(status, 404, "E2's ticket after the erasure")
        check_eq(len(srv.message("E1", keep["id"])["fetches"]), 1,
                 "keep's fetches")
        _, listed = figures(srv)
        check("gone@shop.example" not in [r.lower() for r in listed],
              "gone left the call list: %r" % listed)

        # Their pixel still answers and records nothing; a second DELETE
        # finds nothing; a bad address is a 400; GET is not allowed.
        before = srv.stats()["opens_unknown"]
        fetch(srv, gone1, "192.0.2.2", "Mozilla/5.0 gone")
        poll(lambda: srv.stats()["opens_unknown"] == before + 1,
             "the erased message's fetch skipped")
        status, _, body = srv.api("DELETE",
                                  "/api/v1/recipients/gone@shop.example")
        check_eq(status, 404, "second DELETE (%r)" % body)
        status, _, _ = srv.api("DELETE", "/api/v1/recipients/no-at-sign")
        check_eq(status, 400, "DELETE of a bad address")
        status, _, _ = srv.api("GET", "/api/v1/recipients/keep@shop.example")
        check_eq(status, 405, "GET of a recipient")
        status, _, _ = srv.api("DELETE",
                               "/api/v1/recipients/keep@shop.example",
                               auth=False)
        check_eq(status, 401, "DELETE without the key")
        check_eq(srv.domain("shop.example")["sent"], 1, "keep stays")
        check("gone@shop.example" not in srv.stderr_text().lower(),
              "the erased address is in the log")


def security_headers_on_pages_files_and_json():
    with Beacon(BINARY) as srv:
        for path in ("/", "/index.html"):
            status, h, _ = srv.request("GET", path)
            check_eq(status, 200, "GET %s" % path)
            check_eq(h.get("content-security-policy"), CSP, "CSP on " + path)
            check_eq(h.get("x-content-type-options"), "nosniff",
                     "nosniff on " + path)
            check_eq(h.get("referrer-policy"), "no-referrer",
                     "Referrer-Policy on " + path)
            check_eq(h.get("x-frame-options"), "DENY", "XFO on " + path)
        for path in ("/healthz", "/api/v1/stats"):
            status, h, _ = srv.api("GET", path)
            check_eq(status, 200, "GET %s" % path)
            check_eq(h.get("x-content-type-options"), "nosniff",
                     "nosniff on " + path)
            check_eq(h.get("referrer-policy"), "no-referrer",
                     "Referrer-Policy on " + path)


def security_headers_on_every_static_file():
    with tempfile.TemporaryDirectory(prefix="beacon-static-") as static:
        with open(os.path.join(static, "index.html"), "w") as f:
            f.write("<!doctype html><script src=app.js></script>")
        with open(os.path.join(static, "app.js"), "w") as f:
            f.write("document.title = 'x';\n")
        with Beacon(BINARY, args=["--static-dir", static]) as srv:
            for path in ("/", "/app.js"):
                status, h, _ = srv.request("GET", path)
                check_eq(status, 200, "GET %s" % path)
                check_eq(h.get("content-security-policy"), CSP,
                         "CSP on " + path)
                check_eq(h.get("x-content-type-options"), "nosniff",
                         "nosniff on " + path)
                check_eq(h.get("referrer-policy"), "no-referrer",
                         "Referrer-Policy on " + path)


def logs_and_errors_never_carry_tokens_or_keys():
    with Beacon(BINARY, args=["--log-level", "debug"]) as srv:
        reg = register(srv, "L1", "log@example.com", now_ms())
        token = srv.pixel_path(reg).split("/")[-1].split(".")[0]
        check(len(token) > 20, "token %r" % token)
        bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        for t in (token, bad, "x" * 30):
            status, _, _ = srv.fetch("/p/%s.gif" % t)
            check_eq(status, 200, "pixel status")
        srv.wait_fetches("L1", reg["id"], 1)

        wrong = "wrong-" + srv.api_key[6:]
        for key in (srv.api_key, wrong):
            for method, path in (("GET", "/api/v1/domains"),
                                 ("GET", "/api/v1/tickets/L1"),
                                 ("DELETE", "/api/v1/recipients/x@y.org")):
                status, _, body = srv.request(
                    method, path, headers={"Authorization": "Bearer " + key})
                check(status in (200, 401, 404), "%s %s: %d"
                      % (method, path, status))
                check(srv.api_key.encode() not in body
                      and wrong.encode() not in body,
                      "a key echoed in %r" % body)
        status, _, body = srv.request(
            "POST", "/api/v1/messages", body='{"ticket_id": "%s"' % token,
            headers={"Authorization": "Bearer " + srv.api_key})
        check_eq(status, 400, "bad body")
        check(token.encode() not in body, "body echoed: %r" % body)
        with open(srv.api_key_file) as f:
            key = f.read().strip()
        log = srv.stderr_text() + srv.stdout_text()
        check("level=debug" in log, "debug lines were written")
        for secret in (token, bad, key, wrong):
            check(secret not in log, "a secret in the log: %s..."
                  % secret[:6])


def main():
    global BINARY
    if len(sys.argv) != 2:
        print("usage: test_privacy.py PATH_TO_BEACON", file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    return run_tests([
        retain_days_purges_details_and_keeps_every_figure,
        retain_days_rejects_bad_values,
        delete_recipient_erases_them_and_only_them,
        security_headers_on_pages_files_and_json,
        security_headers_on_every_static_file,
        logs_and_errors_never_carry_tokens_or_keys,
    ])


if __name__ == "__main__":
    sys.exit(main())
