"""A real client opens a real reply: headless Chromium renders an HTML mail
that carries the img_tag from the API, and the open shows up in the ticket.

Usage: python3 test_browser.py path/to/beacon

A missing Chromium is a failure, not a skip: `make test` installs it
(tools/deps.sh).  Ends with "N passed, N failed".
"""

import os
import shutil
import subprocess
import sys
import tempfile


sys.dont_write_bytecode = True      # keep the source tree clean
from beacon_harness import Beacon, Failure, check, run_tests

BINARY = None
BROWSER_TIMEOUT = 90

REPLY_HTML = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Re: [#{ticket}] Invoice question</title>
</head>
<body>
<p>Hello Nora,</p>
<p>thanks for your patience. We corrected the invoice; the new copy is
attached.</p>
<p>Best regards,<br>The Support Team</p>
{img_tag}
</body>
</html>
"""


def find_chromium():
    path = shutil.which("chromium")
    if path is None:
        raise Failure("`chromium` not found on PATH; install Debian's "
                      "chromium package (tools/deps.sh does it)")
    return path


def render(browser, html_path, profile):
    """Loads the reply in headless Chromium; returns the dumped DOM."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--user-data-dir=" + profile,
           "--dump-dom", "file://" + html_path]
    env = dict(os.environ, HOME=profile)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure("chromium did not finish within %ds"
                      % BROWSER_TIMEOUT)
    if r.returncode != 0:
        raise Failure("chromium exited %d; stderr tail:\n%s"
                      % (r.returncode, r.stderr[-2000:]))
    return r.stdout


def headless_chromium_opening_a_reply_records_an_open():
    browser = find_chromium()
    with Beacon(BINARY) as b, \
            tempfile.TemporaryDirectory(prefix="beacon-browser-") as d:
        ticket = "BR-7001"
        reg = b.register(ticket_id=ticket, recipient="nora@example.com",
                         customer={"name": "Nora", "value": 300})
        html_path = os.path.join(d, "reply.html")
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(REPLY_HTML.format(ticket=ticket, img_tag=reg["img_tag"]))

        dom = render(browser, html_path, os.path.join(d, "profile"))
        check(reg["token"] in dom, "the rendered DOM has no pixel: %r"
              % dom[:500])

        (op,) = b.wait_opens(ticket, reg["id"], 1)
        ua = op.get("user_agent") or ""
        print("     open recorded: user_agent=%r addr=%r"
              % (ua, op.get("addr")))
        check("Chrome" in ua, "user agent %r is not Chromium's" % ua)

        rows = b.get("/api/v1/domains")["domains"]
        got = [(r["domain"], r["sent"], r["opened"]) for r in rows]
        check(("example.com", 1, 1) in got, "domains report %r" % got)


def main():
    global BINARY
    if len(sys.argv) != 2:
        print("usage: test_browser.py path/to/beacon", file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    return run_tests([headless_chromium_opening_a_reply_records_an_open])


if __name__ == "__main__":
    sys.exit(main())
