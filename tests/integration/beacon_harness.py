"""Shared helpers for the end-to-end tests: run the real `beacon serve`.

A Beacon instance runs the binary on a free loopback port with its
database and key files in a temporary directory, learns its URL from the
first stdout line, and offers HTTP helpers that return (status, headers,
body).  It only ever signals the one process it started.

Standard library only.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
POLL_TIMEOUT = 3.0

# Token layout from server/token.h: version | key id | message id (8,
# big-endian) | keyed BLAKE2b-128 over those 10 bytes, base64url, no padding.
TOKEN_VERSION = 1


class Failure(Exception):
    """A check that did not hold."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def check_eq(got, want, what):
    if got != want:
        raise Failure("%s: got %r, want %r" % (what, got, want))


def poll(fn, what, timeout=POLL_TIMEOUT, interval=0.02):
    """Calls fn until it returns a true value, for at most timeout seconds.

    Opens are written by a writer thread a few milliseconds after the
    fetch, so tests wait for them with this instead of a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure("timed out after %.1fs waiting for %s"
                          % (timeout, what))
        time.sleep(interval)


def b64url(raw):
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def make_token(key_id, key, message_id, version=TOKEN_VERSION):
    """Signs a token the way server/token.c does, for forged-token tests."""
    head = bytes([version, key_id]) + message_id.to_bytes(8, "big")
    mac = hashlib.blake2b(head, key=key, digest_size=16).digest()
    return b64url(head + mac)


def read_signing_keys(path):
    """Returns [(id, key bytes)] from a signing key file ("ID HEX" lines)."""
    keys = []
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                kid, hexkey = line.split()
                keys.append((int(kid), bytes.fromhex(hexkey)))
    return keys


class Beacon:
    """One running `beacon serve`.  Use as a context manager.

    workdir holds beacon.db, signing.key and api.key; pass the same
    workdir to a second instance to restart on the same data.
    """

    def __init__(self, binary, workdir=None, args=(), env=None,
                 use_flags=True):
        self.binary = binary
        self.owned_dir = None
        if workdir is None:
            self.owned_dir = tempfile.TemporaryDirectory(prefix="beacon-e2e-")
            workdir = self.owned_dir.name
        self.workdir = workdir
        self.db = os.path.join(workdir, "beacon.db")
        self.key_file = os.path.join(workdir, "signing.key")
        self.api_key_file = os.path.join(workdir, "api.key")
        self.extra_args = list(args)
        self.extra_env = dict(env or {})
        self.use_flags = use_flags
        self.proc = None
        self.url = None
        self.host = None
        self.port = None
        self.api_key = None
        self.stdout_path = os.path.join(workdir, "stdout.log")
        self.stderr_path = os.path.join(workdir, "stderr.log")

    # -- lifecycle ---------------------------------------------------------

    def command(self):
        cmd = [self.binary, "serve"]
        if self.use_flags:
            cmd += ["--listen", "127.0.0.1:0", "--db", self.db,
                    "--key-file", self.key_file,
                    "--api-key-file", self.api_key_file]
        return cmd + self.extra_args

    def start(self):
        env = dict(os.environ)
        for name in list(env):
            if name.startswith("BEACON_"):
                del env[name]
        env.update(self.extra_env)
        # Output goes to files, not pipes: a pipe nobody drains would
        # block the server once it filled up.
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        self.stdout_start = out.tell()
        try:
            self.proc = subprocess.Popen(self.command(), stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.workdir)
        finally:
            out.close()
            err.close()
        try:
            self.wait_serving()
            self.read_api_key()
        except BaseException:
            self.kill()
            raise
        return self

    def stdout_text(self):
        with open(self.stdout_path, "rb") as f:
            f.seek(self.stdout_start)
            return f.read().decode("utf-8", "replace")

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_serving(self):
        """Reads stdout until `beacon VERSION serving http://HOST:PORT`."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for line in self.stdout_text().splitlines():
                words = line.split()
                if (len(words) == 4 and words[0] == "beacon"
                        and words[2] == "serving"):
                    self.set_url(words[3])
                    return
            if self.proc.poll() is not None:
                raise Failure("beacon exited with %d before serving; "
                              "stderr:\n%s" % (self.proc.returncode,
                                               self.stderr_text()))
            if time.monotonic() > deadline:
                raise Failure("no 'serving' line within %.0fs; stdout:\n%s"
                              % (START_TIMEOUT, self.stdout_text()))
            time.sleep(0.01)

    def set_url(self, url):
        parts = urllib.parse.urlsplit(url)
        check(parts.scheme == "http" and parts.port,
              "serving line has no http URL with a port: %r" % url)
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port

    def read_api_key(self):
        with open(self.api_key_file, encoding="utf-8") as f:
            self.api_key = f.read().strip()
        check(self.api_key, "API key file %s is empty" % self.api_key_file)

    def stop(self):
        """SIGTERM, then checks the server exited 0 within STOP_TIMEOUT."""
        if self.proc is None:
            return
        proc = self.proc
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("beacon did not stop within %.0fs of SIGTERM"
                          % STOP_TIMEOUT)
        self.proc = None
        if rc != 0:
            raise Failure("beacon exited %d after SIGTERM; stderr:\n%s"
                          % (rc, self.stderr_text()[-2000:]))

    def kill(self):
        """Kills the child this instance started, if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.kill()
        if self.owned_dir is not None:
            self.owned_dir.cleanup()
            self.owned_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
        finally:
            self.cleanup()
        return False

    # -- HTTP ----------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, auth=False):
        """One HTTP request; returns (status, headers, body bytes).

        headers in the answer is a dict with lower-case names.  auth adds
        the Bearer key.
        """
        hdrs = dict(headers or {})
        if auth:
            hdrs["Authorization"] = "Bearer " + self.api_key
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            got = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, got, data
        finally:
            conn.close()

    def raw_request(self, method, path, headers=None):
        """A request over a bare socket, reading until the server closes.

        http.client never reads a body after HEAD, so this is how a test
        sees whether the server wrongly sent one.
        """
        lines = ["%s %s HTTP/1.1" % (method, path),
                 "Host: %s:%d" % (self.host, self.port),
                 "Connection: close"]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        data = b""
        with socket.create_connection((self.host, self.port), 10) as s:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        check(sep, "no end of headers in %r" % data[:200])
        head_lines = head.decode("latin-1").split("\r\n")
        status = int(head_lines[0].split()[1])
        got = {}
        for line in head_lines[1:]:
            name, _, value = line.partition(":")
            got[name.strip().lower()] = value.strip()
        return status, got, body

    def api(self, method, path, obj=None, auth=True, headers=None):
        """A JSON request; returns (status, headers, parsed body or None)."""
        hdrs = dict(headers or {})
        body = None
        if obj is not None:
            body = json.dumps(obj)
            hdrs["Content-Type"] = "application/json"
        status, got, data = self.request(method, path, body, hdrs, auth)
        return status, got, parse_json(data)

    def get(self, path):
        """GET an API path that must answer 200; returns the JSON body."""
        status, _, body = self.api("GET", path)
        check_eq(status, 200, "status of GET %s (body %r)" % (path, body))
        return body

    def register(self, **fields):
        """POST /api/v1/messages; must answer 201.  Returns the JSON."""
        status, _, body = self.api("POST", "/api/v1/messages", fields)
        check_eq(status, 201, "register %r -> %r" % (fields, body))
        return body

    def pixel_path(self, reg):
        return urllib.parse.urlsplit(reg["pixel_url"]).path

    def fetch(self, path, ua="beacon-e2e/1", method="GET", headers=None):
        hdrs = {"User-Agent": ua}
        hdrs.update(headers or {})
        return self.request(method, path, headers=hdrs)

    def stats(self):
        return self.get("/api/v1/stats")

    def opens(self, ticket_id, message_id):
        """The GET fetch rows of one message, read through the ticket view
        (HEAD probes are recorded too, but are never opens)."""
        ticket = self.get("/api/v1/tickets/%s" % quote(ticket_id))
        for m in ticket["messages"]:
            if m["id"] == message_id:
                return [f for f in m["fetches"]
                        if f["class"] != "head_probe"]
        raise Failure("message %r missing from ticket %r"
                      % (message_id, ticket_id))

    def open_count(self, ticket_id, message_id):
        """GET fetches of one message, every one counted: identical
        fetches within a minute share a row and add to its count."""
        return sum(f["count"] for f in self.opens(ticket_id, message_id))

    def wait_opens(self, ticket_id, message_id, n):
        """Polls until the message has exactly n GET fetches, counted;
        returns its fetch rows."""
        last = []

        def ready():
            last[:] = self.opens(ticket_id, message_id)
            return sum(f["count"] for f in last) >= n

        total = lambda: sum(f["count"] for f in last)
        try:
            poll(ready, "%d open(s) of message %r" % (n, message_id))
        except Failure:
            raise Failure("message %r has %d opens, want %d"
                          % (message_id, total(), n))
        check_eq(total(), n, "opens of message %r" % message_id)
        return list(last)

    # -- issue 3: classified fetches -----------------------------------------

    def send_signal(self, sig):
        """Sends sig to the server this instance started (SIGHUP: reload)."""
        check(self.proc is not None and self.proc.poll() is None,
              "beacon is not running")
        self.proc.send_signal(sig)

    def fetch_from(self, path, addr, ua="beacon-e2e/1", method="GET",
                   headers=None):
        """A pixel fetch presented as coming from addr (X-Forwarded-For).

        Only a server started with --trusted-proxy covering 127.0.0.1
        believes the header.
        """
        hdrs = {"X-Forwarded-For": addr}
        hdrs.update(headers or {})
        return self.fetch(path, ua=ua, method=method, headers=hdrs)

    def message(self, ticket_id, message_id):
        """One message of the ticket view, with its figures and fetches."""
        ticket = self.get("/api/v1/tickets/%s" % quote(ticket_id))
        for m in ticket["messages"]:
            if m["id"] == message_id:
                return m
        raise Failure("message %r missing from ticket %r"
                      % (message_id, ticket_id))

    def wait_fetches(self, ticket_id, message_id, n, timeout=POLL_TIMEOUT):
        """Polls until the message counts n fetches (all classes, HEADs
        included); returns the message.  More than n is a failure.
        """
        last = [None]

        def ready():
            last[0] = self.message(ticket_id, message_id)
            return sum(last[0]["fetches_by_class"].values()) >= n

        try:
            poll(ready, "%d fetch(es) of message %r" % (n, message_id),
                 timeout=timeout)
        except Failure:
            got = None if last[0] is None else last[0]["fetches_by_class"]
            raise Failure("message %r counts %r, want %d fetches in all"
                          % (message_id, got, n))
        check_eq(sum(last[0]["fetches_by_class"].values()), n,
                 "fetches counted on message %r" % message_id)
        return last[0]

    def domain(self, name, query=""):
        """The /api/v1/domains row of one domain, or None."""
        for row in self.get("/api/v1/domains" + query)["domains"]:
            if row["domain"] == name:
                return row
        return None

    def event(self, obj):
        """POST /api/v1/events; returns (status, parsed body)."""
        status, _, body = self.api("POST", "/api/v1/events", obj)
        return status, body


def quote(s):
    return urllib.parse.quote(str(s), safe="")


def now_ms():
    return int(time.time() * 1000)


def rfc3339(ms):
    """ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ"."""
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def parse_time(s):
    """An RFC 3339 string from the API as ms since the epoch."""
    check(isinstance(s, str), "time %r is not a string" % (s,))
    t = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    check(t.tzinfo is not None, "time %r has no offset" % s)
    return round(t.timestamp() * 1000)


def parse_json(data):
    if not data:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def run_tests(tests):
    """Runs each function in order, prints each result and the tally.

    Returns the process exit status: 0 when everything passed.
    """
    # A SIGTERM (a ctest timeout) unwinds like an error, so every
    # Beacon's cleanup still kills the server it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    passed = failed = 0
    for fn in tests:
        name = fn.__name__
        start = time.monotonic()
        try:
            fn()
        except Exception as e:  # a test failure must not stop the run
            failed += 1
            print("FAIL %s: %s" % (name, e))
            if not isinstance(e, Failure):
                traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print("ok   %s (%.0f ms)" % (name, 1000 * (time.monotonic()
                                                      - start)))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1
