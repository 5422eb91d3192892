"""Store failures: locked, read-only and full databases, over loopback.

Usage: python3 test_faults.py path/to/beacon

In each fault the pixel must still answer at once, its opens wait in the
writer's queue, /healthz answers 503 "degraded" with the reason, the log
says so once (not per request), and when the fault clears the opens are
written without help.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time


sys.dont_write_bytecode = True      # keep the source tree clean
from beacon_harness import Beacon, check, check_eq, poll, run_tests

BINARY = None
FETCHES = 40
REPLY_BOUND = 1.0                   # seconds: loose, timing lives in bench/
REFUSED = 5                         # registrations tried while read-only
NOBODY = 65534


def register_some(srv, tag, n=4):
    regs = []
    for i in range(n):
        reg = srv.register(ticket_id="%s-%d" % (tag, i),
                           recipient="r%d@faults.test" % i)
        reg["_ticket"] = "%s-%d" % (tag, i)
        regs.append(reg)
    return regs


def fetch_all(srv, regs, n, tag):
    """n pixel GETs over regs with distinct User-Agents; returns the
    slowest reply in seconds.  Each must be 200 with the GIF."""
    slowest = 0.0
    for i in range(n):
        reg = regs[i % len(regs)]
        start = time.monotonic()
        status, _, body = srv.fetch(srv.pixel_path(reg),
                                    ua="beacon-faults/%s/%d" % (tag, i))
        slowest = max(slowest, time.monotonic() - start)
        check_eq(status, 200, "pixel status during the fault")
        check(body.startswith(b"GIF89a"), "pixel body is the GIF")
    return slowest


def health(srv):
    status, _, body = srv.api("GET", "/healthz", auth=False)
    return status, body


def wait_degraded(srv, words, timeout=8.0):
    """Polls /healthz until 503 degraded; its reason must hold words."""
    got = poll(lambda: (lambda h: h if h[0] == 503 else None)(health(srv)),
               "/healthz to say degraded", timeout=timeout)
    status, body = got
    check_eq(body.get("status"), "degraded", "healthz status")
    reason = body.get("reason", "")
    check(any(w in reason for w in words),
          "healthz reason %r names none of %r" % (reason, words))
    return reason


def wait_healthy(srv, timeout=10.0):
    poll(lambda: health(srv)[0] == 200, "/healthz to say ok again",
         timeout=timeout)
    check_eq(health(srv)[1], {"status": "ok"}, "healthz body")


def stored_opens(srv, regs):
    return sum(sum(srv.message(r["_ticket"], r["id"])["fetches_by_class"]
                   .values()) for r in regs)


def log_count(srv, event):
    return srv.stderr_text().count("event=%s " % event)


def check_quiet_log(srv, before, what):
    """The fault was logged, and not once per request."""
    lines = srv.stderr_text().splitlines()[before:]
    failed = sum("event=writer.batch_failed " in l for l in lines)
    check(failed >= 1, "%s: no writer.batch_failed line" % what)
    check(failed <= 2, "%s: %d writer.batch_failed lines, want one per "
          "10 s" % (what, failed))
    api_failed = sum("event=api.store_failed " in l for l in lines)
    check(api_failed <= 2, "%s: %d api.store_failed lines, want one per "
          "10 s" % (what, api_failed))
    check(len(lines) <= 8, "%s: %d log lines for %d pixels and the health "
          "polls; a line per request?\n%s"
          % (what, len(lines), FETCHES, "\n".join(lines)))


def log_lines(srv):
    return len(srv.stderr_text().splitlines())


# -- locked --------------------------------------------------------------------

def a_locked_store_queues_opens_and_resumes():
    with Beacon(BINARY) as srv:
        regs = register_some(srv, "locked")
        before = log_lines(srv)
        held = threading.Event()
        release = threading.Event()

        def hold_lock():
            conn = sqlite3.connect(srv.db, timeout=10, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            held.set()
            release.wait(20)
            conn.execute("ROLLBACK")
            conn.close()

        locker = threading.Thread(target=hold_lock)
        locker.start()
        try:
            check(held.wait(10), "could not take the lock")
            slowest = fetch_all(srv, regs, FETCHES, "locked")
            check(slowest < REPLY_BOUND, "a pixel took %.3f s while the "
                  "store was locked" % slowest)
            reason = wait_degraded(srv, ["locked", "waited"])
            # Past SQLite's 5 s busy timeout the batch fails and is kept.
            poll(lambda: log_count(srv, "writer.batch_failed") >= 1,
                 "the writer to give up one try", timeout=10)
            slowest = max(slowest, fetch_all(srv, regs, 8, "locked2"))
            check(slowest < REPLY_BOUND, "a pixel took %.3f s while the "
                  "store failed" % slowest)
            check_eq(srv.stats()["opens_written"], 0,
                     "opens written while locked")
            check_eq(srv.stats()["opens_dropped"], 0, "opens dropped")
        finally:
            release.set()
            locker.join(20)

        wait_healthy(srv)
        poll(lambda: stored_opens(srv, regs) == FETCHES + 8,
             "the queued opens to be written", timeout=10)
        check_quiet_log(srv, before, "locked")
        print("     locked: slowest pixel %.1f ms; reason %r"
              % (1000 * slowest, reason))


# -- full ----------------------------------------------------------------------

def a_full_store_queues_opens_and_resumes():
    srv = Beacon(BINARY)
    try:
        srv.start()
        regs = register_some(srv, "full")
        srv.stop()

        # 2 MB of ballast the test can free later, then a cap at today's
        # size: the writer can only reuse pages freed inside the file.
        conn = sqlite3.connect(srv.db)
        conn.execute("CREATE TABLE ballast (b BLOB)")
        conn.executemany("INSERT INTO ballast VALUES (zeroblob(4000))",
                         [()] * 500)
        conn.commit()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

        full = Beacon(BINARY, workdir=srv.workdir,
                      env={"BEACON_TEST_MAX_PAGES": str(pages)})
        with full:
            before = log_lines(full)
            slowest = fetch_all(full, regs, FETCHES * 5, "full")
            check(slowest < REPLY_BOUND, "a pixel took %.3f s while the "
                  "store was full" % slowest)
            reason = wait_degraded(full, ["full"])
            # The first few fit in the free space of pages already used.
            check(full.stats()["opens_written"] < FETCHES * 5,
                  "every open was written although the file was full")

            conn = sqlite3.connect(srv.db, timeout=10)
            conn.execute("DELETE FROM ballast")
            conn.commit()
            conn.close()

            wait_healthy(full)
            poll(lambda: stored_opens(full, regs) == FETCHES * 5,
                 "the queued opens to be written", timeout=10)
            check_quiet_log(full, before, "full")
        print("     full: slowest pixel %.1f ms; reason %r"
              % (1000 * slowest, reason))
    finally:
        srv.cleanup()


# -- read-only -----------------------------------------------------------------

class Unprivileged(Beacon):
    """A Beacon run as nobody when the test runs as root: root writes
    to any file whatever its mode, and a read-only file is the fault."""

    def start(self):
        if os.geteuid() != 0:
            return super().start()
        real = subprocess.Popen

        def as_nobody():
            os.setgid(NOBODY)
            os.setuid(NOBODY)

        def popen(*args, **kwargs):
            kwargs["preexec_fn"] = as_nobody
            return real(*args, **kwargs)

        subprocess.Popen = popen
        try:
            return super().start()
        finally:
            subprocess.Popen = real


def a_read_only_store_queues_opens_and_resumes():
    workdir = tempfile.mkdtemp(prefix="beacon-faults-")
    try:
        if os.geteuid() == 0:
            os.chown(workdir, NOBODY, NOBODY)
        srv = Unprivileged(BINARY, workdir=workdir)
        with srv:
            regs = register_some(srv, "ro")
        os.chmod(srv.db, 0o444)

        ro = Unprivileged(BINARY, workdir=workdir)
        with ro:
            before = log_lines(ro)
            slowest = fetch_all(ro, regs, FETCHES, "ro")
            check(slowest < REPLY_BOUND, "a pixel took %.3f s while the "
                  "store was read-only" % slowest)
            reason = wait_degraded(ro, ["readonly", "read-only"])
            check_eq(ro.stats()["opens_written"], 0,
                     "opens written while read-only")
            for i in range(REFUSED):
                status, _, body = ro.api(
                    "POST", "/api/v1/messages",
                    {"ticket_id": "ro-refused-%d" % i,
                     "recipient": "refused@faults.test"})
                check_eq(status, 500, "registration while read-only")
                check("error" in body, "a JSON error: %r" % (body,))

            os.chmod(srv.db, 0o644)
            wait_healthy(ro)
            # The API's handles were opened read-only too; registering
            # must come back by itself, without a restart.
            poll(lambda: ro.api("POST", "/api/v1/messages",
                                {"ticket_id": "ro-after",
                                 "recipient": "after@faults.test"})[0] == 201,
                 "a registration to succeed once writable", timeout=10)
            poll(lambda: stored_opens(ro, regs) == FETCHES,
                 "the queued opens to be written", timeout=10)
            check_quiet_log(ro, before, "read-only")
        print("     read-only: slowest pixel %.1f ms; reason %r"
              % (1000 * slowest, reason))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


TESTS = [
    a_locked_store_queues_opens_and_resumes,
    a_full_store_queues_opens_and_resumes,
    a_read_only_store_queues_opens_and_resumes,
]


def main():
    global BINARY
    if len(sys.argv) != 2:
        print("usage: test_faults.py path/to/beacon", file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    return run_tests(TESTS)


if __name__ == "__main__":
    sys.exit(main())
