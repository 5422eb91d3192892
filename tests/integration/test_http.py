"""End to end over HTTP: the real `beacon serve` on a free loopback port.

Usage: python3 test_http.py path/to/beacon

Each test is a plain function named for the behaviour it checks; they run
in order and the run ends with "N passed, N failed".  Most share one
server; the reports and the restart tests start their own so they can
assert exact numbers.
"""

import csv
import datetime
import html.parser
import io
import json
import os
import re
import stat
import struct
import subprocess
import sys
import tempfile
import time


sys.dont_write_bytecode = True      # keep the source tree clean
from beacon_harness import (Beacon, Failure, check, check_eq, make_token,
                            poll, quote, read_signing_keys, run_tests)

BINARY = None
SRV = None                      # the shared server

CACHE_CONTROL = "no-store, no-cache, must-revalidate, private, max-age=0"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
B64URL = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
          "0123456789-_")
DAY_MS = 86400 * 1000

API_ROUTES = [
    ("POST", "/api/v1/messages"),
    ("GET", "/api/v1/tickets/anything"),
    ("GET", "/api/v1/domains"),
    ("GET", "/api/v1/unopened"),
    ("GET", "/api/v1/stats"),
]


# -- helpers -----------------------------------------------------------------

def now_ms():
    return int(time.time() * 1000)


def rfc3339(ms):
    """ms since the epoch as "YYYY-MM-DDTHH:MM:SSZ" (whole seconds)."""
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    """An RFC 3339 string from the API as ms since the epoch."""
    check(isinstance(s, str), "time %r is not a string" % (s,))
    t = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    check(t.tzinfo is not None, "time %r has no offset" % s)
    return int(t.timestamp() * 1000)


def lzw_decode(min_size, data, npixels):
    """Decodes GIF image data (the variable-length LZW of the GIF spec)."""
    clear, end = 1 << min_size, (1 << min_size) + 1
    size = min_size + 1
    table = [[i] for i in range(clear)] + [None, None]
    bits, nbits, pos = int.from_bytes(data, "little"), len(data) * 8, 0
    out, prev = [], None
    while pos + size <= nbits and len(out) < npixels:
        code = (bits >> pos) & ((1 << size) - 1)
        pos += size
        if code == clear:
            table, size, prev = table[:clear + 2], min_size + 1, None
            continue
        if code == end:
            break
        if prev is None:
            entry = table[code] if code < len(table) else None
        elif code < len(table):
            entry = table[code]
            if entry is not None:
                table.append(prev + entry[:1])
        elif code == len(table):
            entry = prev + prev[:1]
            table.append(entry)
        else:
            entry = None
        check(entry is not None, "bad LZW code %d in GIF data" % code)
        out += entry
        prev = entry
        if len(table) == 1 << size and size < 12:
            size += 1
    return out


def parse_gif(data):
    """Parses a GIF fully; returns its size, pixels and transparent index."""
    check(data[:6] in (b"GIF87a", b"GIF89a"), "no GIF signature: %r"
          % data[:6])
    width, height, packed = struct.unpack("<HHB", data[6:11])
    pos = 13
    if packed & 0x80:
        pos += 3 * (2 << (packed & 7))
    gif = {"width": width, "height": height, "transparent": None,
           "pixels": None}
    while True:
        check(pos < len(data), "GIF ends without a trailer")
        kind = data[pos]
        if kind == 0x3B:
            pos += 1
            break
        if kind == 0x21:
            label, blocks, pos = data[pos + 1], [], pos + 2
            while data[pos]:
                blocks.append(data[pos + 1:pos + 1 + data[pos]])
                pos += 1 + data[pos]
            pos += 1
            if label == 0xF9 and blocks and blocks[0][0] & 1:
                gif["transparent"] = blocks[0][3]
        elif kind == 0x2C:
            iw, ih, ipacked = struct.unpack("<HHB", data[pos + 5:pos + 10])
            pos += 10
            if ipacked & 0x80:
                pos += 3 * (2 << (ipacked & 7))
            min_size, sub, pos = data[pos], b"", pos + 1
            while data[pos]:
                sub += data[pos + 1:pos + 1 + data[pos]]
                pos += 1 + data[pos]
            pos += 1
            check_eq((iw, ih), (1, 1), "GIF image size")
            gif["pixels"] = lzw_decode(min_size, sub, iw * ih)
        else:
            raise Failure("unexpected GIF block 0x%02x at %d" % (kind, pos))
    check_eq(pos, len(data), "GIF length (bytes after the trailer?)")
    return gif


class TagCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def check_json_error(status, headers, body, want, what):
    check_eq(status, want, "%s: status (body %r)" % (what, body))
    check(headers.get("content-type", "").startswith("application/json"),
          "%s: content type %r" % (what, headers.get("content-type")))
    check(isinstance(body, dict) and isinstance(body.get("error"), str)
          and body["error"], "%s: no {\"error\": ...} in %r" % (what, body))


def register(srv, ticket_id, recipient, **more):
    reg = srv.register(ticket_id=ticket_id, recipient=recipient, **more)
    reg["_ticket"] = ticket_id
    return reg


def open_count(srv, reg):
    return srv.open_count(reg["_ticket"], reg["id"])


def run_beacon(*args, cwd):
    """Runs the binary to completion in cwd (a temporary directory)."""
    return subprocess.run([BINARY] + list(args), capture_output=True,
                          text=True, timeout=20, cwd=cwd)


def barrier(srv):
    """Returns once every open queued before the call is written.

    The writer takes opens in order, so when a fresh marker open shows up
    any earlier one has been written too.
    """
    reg = register(srv, "barrier-%d" % time.monotonic_ns(),
                   "barrier@barrier.test")
    check_eq(srv.fetch(srv.pixel_path(reg))[0], 200, "barrier fetch")
    srv.wait_opens(reg["_ticket"], reg["id"], 1)


class _Drop:
    """Marks a field to leave out of a request body."""


DROP = _Drop()


# -- start-up ----------------------------------------------------------------

def serve_prints_urls_but_never_the_key():
    lines = SRV.stdout_text().splitlines()
    check(re.match(r"^beacon \S+ serving http://127\.0\.0\.1:\d+$", lines[0]),
          "first stdout line %r" % lines[0])
    rest = lines[1:]
    check(rest and all(line.startswith((" ", "\t")) for line in rest),
          "lines after the first are not indented: %r" % rest)
    text = "\n".join(rest)
    for part in ("/p/", "/api/v1", "/healthz", SRV.api_key_file):
        check(part in text, "start-up output does not name %r:\n%s"
              % (part, text))
    check(SRV.api_key not in SRV.stdout_text(), "API key printed on stdout")
    check(SRV.api_key not in SRV.stderr_text(), "API key logged on stderr")


def key_files_are_created_0600():
    for path in (SRV.key_file, SRV.api_key_file):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        check_eq(oct(mode), oct(0o600), "mode of %s" % path)


def healthz_answers_ok_without_auth():
    status, headers, body = SRV.api("GET", "/healthz", auth=False)
    check_eq(status, 200, "status")
    check_eq(body, {"status": "ok"}, "body")
    check(headers.get("content-type", "").startswith("application/json"),
          "content type %r" % headers.get("content-type"))


def every_api_route_requires_the_api_key():
    key = SRV.api_key
    bad = [
        ("missing", None),
        ("wrong key", "Bearer " + "x" * len(key)),
        ("key minus its last char", "Bearer " + key[:-1]),
        ("key plus a char", "Bearer " + key + "x"),
        ("wrong scheme", "Basic " + key),
        ("no scheme", key),
        ("empty bearer", "Bearer "),
    ]
    body = {"ticket_id": "noauth-1", "recipient": "a@noauth.test"}
    for method, path in API_ROUTES:
        for name, value in bad:
            headers = {} if value is None else {"Authorization": value}
            status, got, answer = SRV.api(method, path,
                                          body if method == "POST" else None,
                                          auth=False, headers=headers)
            check_json_error(status, got, answer, 401,
                             "%s %s, %s" % (method, path, name))
    status, _, _ = SRV.api("GET", "/api/v1/tickets/noauth-1")
    check_eq(status, 404, "ticket posted without auth was stored")


# -- registration ------------------------------------------------------------

def register_returns_id_token_pixel_url_and_img_tag():
    status, headers, reg = SRV.api("POST", "/api/v1/messages", {
        "ticket_id": "T-1001", "recipient": "Alice@Example.COM",
        "kind": "reply", "message_id": "<r1@support.example>",
        "customer": {"name": "Alice", "phone": "+1 555 0100",
                     "value": 1200.5}})
    check_eq(status, 201, "status (body %r)" % reg)
    check(headers.get("content-type", "").startswith("application/json"),
          "content type")
    check(set(reg) >= {"id", "token", "pixel_url", "img_tag"},
          "fields %r" % sorted(reg))
    check(isinstance(reg["id"], int) and reg["id"] > 0, "id %r" % reg["id"])
    token = reg["token"]
    check(TOKEN_RE.match(token), "token %r is not base64url <= 48" % token)
    check_eq(reg["pixel_url"], SRV.url + "/p/" + token + ".gif", "pixel_url")

    parser = TagCollector()
    parser.feed(reg["img_tag"])
    check_eq([t for t, _ in parser.tags], ["img"], "tags in img_tag")
    attrs = parser.tags[0][1]
    check_eq(attrs.get("src"), reg["pixel_url"], "img src")
    check_eq(attrs.get("width"), "1", "img width")
    check_eq(attrs.get("height"), "1", "img height")
    check("alt" in attrs and attrs["alt"] in ("", None),
          "img alt %r is not empty" % attrs.get("alt"))
    style = (attrs.get("style") or "").replace(" ", "").lower()
    check(attrs.get("border") == "0" or "border:0" in style
          or "border:none" in style, "img has a border: %r" % attrs)

    ticket = SRV.get("/api/v1/tickets/T-1001")
    check_eq(str(ticket["ticket_id"]), "T-1001", "ticket_id")
    check_eq(len(ticket["messages"]), 1, "messages")
    m = ticket["messages"][0]
    check_eq(m["id"], reg["id"], "message id")
    check_eq(m["kind"], "reply", "kind")
    check_eq(m["fetches"], [], "fetches")
    check(abs(parse_time(m["sent_at"]) - now_ms()) < 60000,
          "default sent_at %r is not now" % m["sent_at"])


def register_accepts_integer_ticket_id_and_defaults_kind_to_reply():
    reg = SRV.register(ticket_id=424242, recipient="bob@example.org")
    ticket = SRV.get("/api/v1/tickets/424242")
    check_eq(str(ticket["ticket_id"]), "424242", "ticket_id")
    check_eq([m["id"] for m in ticket["messages"]], [reg["id"]], "messages")
    check_eq(ticket["messages"][0]["kind"], "reply", "default kind")
    SRV.register(ticket_id=424242, recipient="bob@example.org",
                 kind="confirmation", sent_at="2030-01-01T00:00:00Z")
    kinds = [m["kind"] for m in SRV.get("/api/v1/tickets/424242")["messages"]]
    check_eq(kinds, ["reply", "confirmation"], "kinds in sent_at order")


def unknown_ticket_is_404():
    status, headers, body = SRV.api("GET", "/api/v1/tickets/no-such-ticket")
    check_json_error(status, headers, body, 404, "unknown ticket")


# -- the pixel ---------------------------------------------------------------

def pixel_get_serves_a_1x1_transparent_gif_with_no_cache_headers():
    reg = register(SRV, "T-pix-1", "carol@example.net")
    path = SRV.pixel_path(reg)
    status, h, body = SRV.fetch(path, headers={"Accept-Encoding": "gzip"})
    check_eq(status, 200, "status")
    check_eq(h.get("content-type"), "image/gif", "Content-Type")
    check_eq(h.get("content-length"), str(len(body)), "Content-Length")
    gif = parse_gif(body)
    check_eq((gif["width"], gif["height"]), (1, 1), "GIF screen size")
    check(gif["transparent"] is not None, "GIF has no transparent colour")
    check_eq(gif["pixels"], [gif["transparent"]], "the pixel's colour index")
    check_eq(h.get("cache-control"), CACHE_CONTROL, "Cache-Control")
    check_eq(h.get("pragma"), "no-cache", "Pragma")
    check_eq(h.get("expires"), "0", "Expires")
    for name in ("etag", "last-modified", "content-encoding"):
        check(name not in h, "pixel answer has %s: %r" % (name, h.get(name)))

    status, _, again = SRV.fetch(path, headers={
        "If-None-Match": "*",
        "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})
    check_eq(status, 200, "conditional GET status (never a 304)")
    check_eq(again, body, "conditional GET body")
    SRV.wait_opens("T-pix-1", reg["id"], 2)


def pixel_head_sends_headers_but_no_body_and_no_open():
    reg = register(SRV, "T-head-1", "dave@example.net")
    status, h, body = SRV.raw_request("HEAD", SRV.pixel_path(reg),
                                      {"User-Agent": "LinkChecker/1.0"})
    check_eq(status, 200, "status")
    check_eq(body, b"", "HEAD body")
    check_eq(h.get("content-type"), "image/gif", "Content-Type")
    check_eq(h.get("cache-control"), CACHE_CONTROL, "Cache-Control")
    gif_len = len(SRV.fetch(SRV.pixel_path(reg))[2])
    check_eq(h.get("content-length"), str(gif_len), "HEAD Content-Length")
    barrier(SRV)
    check_eq(open_count(SRV, reg), 1, "opens after HEAD then one GET")


def pixel_other_methods_get_405():
    reg = register(SRV, "T-405", "erin@example.net")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, h, _ = SRV.request(method, SRV.pixel_path(reg), body=b"x")
        check_eq(status, 405, "%s on the pixel" % method)
        check("GET" in h.get("allow", ""), "%s: Allow header %r"
              % (method, h.get("allow")))
    barrier(SRV)
    check_eq(open_count(SRV, reg), 0, "opens after refused methods")


def pixel_without_gif_suffix_and_with_query_string_counts():
    reg = register(SRV, "T-forms", "frank@example.net")
    token = reg["token"]
    _, _, want = SRV.fetch("/p/%s.gif" % token)
    for path in ("/p/%s" % token, "/p/%s.gif?utm_source=mail&x=1" % token,
                 "/p/%s?x=%%20y" % token):
        status, h, body = SRV.fetch(path)
        check_eq(status, 200, "status of %s" % path)
        check_eq(h.get("content-type"), "image/gif", "type of %s" % path)
        check_eq(body, want, "body of %s" % path)
    SRV.wait_opens("T-forms", reg["id"], 4)


def tampered_tokens_get_the_same_gif_and_no_open():
    reg = register(SRV, "T-tamper", "grace@example.net")
    token = reg["token"]
    _, _, want = SRV.fetch("/p/%s.gif" % token)
    SRV.wait_opens("T-tamper", reg["id"], 1)

    def flip(i, xor=1):
        c = B64URL[B64URL.index(token[i]) ^ xor]
        return token[:i] + c + token[i + 1:]

    variants = {
        "first char flipped": flip(0),
        "key id flipped": flip(1, 8),
        "message id flipped": flip(8),
        "MAC char flipped": flip(20),
        "last char, high bits": flip(len(token) - 1, 32),
        "last char, padding bits only": flip(len(token) - 1, 1),
        "truncated by one": token[:-1],
        "truncated to half": token[:len(token) // 2],
        "one char longer": token + "A",
        "over-long (100 chars)": (token * 3)[:100],
        "with = padding": token + "=",
        "garbage": "hello-world",
        "not base64": "!!!!" + token[4:],
    }
    before = SRV.stats()["tokens_rejected"]
    for name, bad in variants.items():
        path = "/p/%s.gif" % quote(bad)
        status, h, body = SRV.fetch(path)
        check_eq(status, 200, "%s: status" % name)
        check_eq(h.get("content-type"), "image/gif", "%s: type" % name)
        check(body == want, "%s: GIF differs from the valid one" % name)
        check_eq(h.get("cache-control"), CACHE_CONTROL, "%s: Cache-Control"
                 % name)
    after = SRV.stats()["tokens_rejected"]
    check_eq(after - before, len(variants), "tokens_rejected increase")
    barrier(SRV)
    check_eq(open_count(SRV, reg), 1, "opens after tampered fetches")


def forged_tokens_for_unknown_key_or_message_record_nothing():
    keys = read_signing_keys(SRV.key_file)
    check(keys, "no key in %s" % SRV.key_file)
    key_id, key = keys[-1]
    reg = register(SRV, "T-forge", "heidi@example.net")
    check_eq(make_token(key_id, key, reg["id"]), reg["token"],
             "token layout of server/token.h")
    _, _, want = SRV.fetch(SRV.pixel_path(reg))

    stats0 = SRV.stats()
    unknown_msg = make_token(key_id, key, 10 ** 12)
    status, _, body = SRV.fetch("/p/%s.gif" % unknown_msg)
    check_eq((status, body == want), (200, True), "unknown message answer")
    poll(lambda: SRV.stats()["opens_unknown"] > stats0["opens_unknown"],
         "opens_unknown to increase")

    other_id = (key_id % 255) + 1
    unknown_key = make_token(other_id, key, reg["id"])
    status, _, body = SRV.fetch("/p/%s.gif" % unknown_key)
    check_eq((status, body == want), (200, True), "unknown key answer")
    stats1 = SRV.stats()
    check_eq(stats1["opens_unknown"] - stats0["opens_unknown"], 1,
             "opens_unknown increase")
    check_eq(stats1["tokens_rejected"] - stats0["tokens_rejected"], 1,
             "tokens_rejected increase (unknown key only)")
    barrier(SRV)
    check_eq(open_count(SRV, reg), 1, "opens of the real message")


def open_records_time_user_agent_and_truncated_address():
    reg = register(SRV, "T-open", "ivan@example.net")
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) e2e-mail-client/7"
    t0 = now_ms()
    SRV.fetch(SRV.pixel_path(reg), ua=ua)
    t1 = now_ms()
    (op,) = SRV.wait_opens("T-open", reg["id"], 1)
    check_eq(op.get("user_agent"), ua, "user_agent")
    check_eq(op.get("addr"), "127.0.0.0", "stored address (IPv4 /24)")
    at = parse_time(op.get("at"))
    check(t0 - 1000 <= at <= t1 + 1000, "open time %r not in [%d, %d]"
          % (op.get("at"), t0, t1))


def user_agent_is_capped_at_512_bytes():
    reg = register(SRV, "T-ua", "judy@example.net")
    ua = "U" * 300 + "V" * 300
    SRV.fetch(SRV.pixel_path(reg), ua=ua)
    (op,) = SRV.wait_opens("T-ua", reg["id"], 1)
    check_eq(op["user_agent"], ua[:512], "stored user agent")


def stats_reports_every_counter():
    stats = SRV.stats()
    for name in ("opens_queued", "opens_written", "opens_unknown",
                 "opens_dropped", "tokens_rejected", "queue_pending"):
        check(isinstance(stats.get(name), int) and stats[name] >= 0,
              "stats %s = %r" % (name, stats.get(name)))
    check(stats["opens_written"] > 0, "no open written so far: %r" % stats)
    check_eq(stats["opens_dropped"], 0, "opens_dropped")


def thread_nice_values(pid):
    """{thread name: [nice, ...]} of a process, from /proc."""
    names = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            stat = f.read()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        names.setdefault(name, []).append(int(fields[16]))  # field 19
    return names


def api_workers_run_below_the_pixel_threads():
    """Reports run on worker threads at nice 10; the rest at 0."""
    SRV.api("GET", "/api/v1/stats")
    nice = sorted(n for ns in thread_nice_values(SRV.proc.pid).values()
                  for n in ns)
    check(nice.count(10) == 2, "two worker threads at nice 10: %r" % nice)
    check(nice.count(0) >= 3, "main, HTTP and writer threads at 0: %r"
          % nice)
    check(set(nice) == {0, 10}, "no other priorities: %r" % nice)


# -- reports -----------------------------------------------------------------

def domains_report_counts_sent_opened_rate_and_fetches():
    with Beacon(BINARY) as b:
        a = register(b, "D-1", "Alice@Example.COM")
        a2 = register(b, "D-2", "bob@example.com")
        register(b, "D-3", "carol@EXAMPLE.com.")
        register(b, "D-4", "dan@other.test")
        idn = register(b, "D-5", "eve@B\u00fccher.Example")
        b.fetch(b.pixel_path(a))
        b.fetch(b.pixel_path(a))
        b.fetch(b.pixel_path(a2))
        b.fetch(b.pixel_path(idn))
        b.wait_opens("D-1", a["id"], 2)
        b.wait_opens("D-2", a2["id"], 1)
        b.wait_opens("D-5", idn["id"], 1)

        rows = b.get("/api/v1/domains")["domains"]
        got = [(r["domain"], r["sent"], r["opened"], r["fetches"])
               for r in rows]
        check_eq(got, [("example.com", 3, 2, 3), ("other.test", 1, 0, 0),
                       ("xn--bcher-kva.example", 1, 1, 1)], "domains")
        rate = {r["domain"]: r["open_rate"] for r in rows}
        check_eq(rate["example.com"], 0.6667, "example.com rate (2/3, "
                 "rounded to 4 decimals)")
        check_eq(rate["other.test"], 0, "other.test rate")
        check_eq(rate["xn--bcher-kva.example"], 1, "idn rate")
        last = {r["domain"]: r["last_open_at"] for r in rows}
        check(abs(parse_time(last["example.com"]) - now_ms()) < 60000,
              "example.com last_open_at %r" % last["example.com"])
        check_eq(last["other.test"], None, "last_open_at with no opens")


def domains_report_window_follows_since_and_until():
    with Beacon(BINARY) as b:
        old = register(b, "W-1", "amy@old.test",
                       sent_at="2021-03-10T12:00:00Z")
        register(b, "W-2", "ben@new.test")
        b.fetch(b.pixel_path(old))
        b.wait_opens("W-1", old["id"], 1)

        def domains(query):
            rows = b.get("/api/v1/domains" + query)["domains"]
            return [(r["domain"], r["sent"], r["opened"]) for r in rows]

        check_eq(domains(""), [("new.test", 1, 0)], "default: last 30 days")
        check_eq(domains("?since=2021-03-01&until=2021-04-01"),
                 [("old.test", 1, 1)], "date window")
        check_eq(domains("?since=2021-03-10&until=2021-03-10"),
                 [("old.test", 1, 1)], "a date as until means its end")
        check_eq(domains("?since=2021-03-10T11:59:59Z"
                         "&until=2021-03-10T12:00:01Z"),
                 [("old.test", 1, 1)], "RFC 3339 window")
        check_eq(domains("?since=2021-03-10T12:00:01Z&until=2021-04-01"),
                 [], "window starting after the message")
        check_eq(domains("?since=2021-01-01"),
                 [("new.test", 1, 0), ("old.test", 1, 1)], "since only")


def unopened_call_list_follows_value_age_and_opens():
    t = now_ms()
    with Beacon(BINARY) as b:
        def reg(ticket, who, ago_ms, value=None, kind="reply", **cust):
            fields = {"kind": kind, "sent_at": rfc3339(t - ago_ms)}
            if value is not None:
                cust["value"] = value
            if cust:
                fields["customer"] = cust
            return register(b, ticket, who, **fields)

        reg("U-A1", "a@cust.test", 3 * DAY_MS, 100, name="Ann")
        reg("U-A2", "A@Cust.Test", 2 * DAY_MS, 500, phone="+1 555 0101")
        reg("U-B", "b@cust.test", 3 * DAY_MS, 50, name='Smith, "Bob"')
        c = reg("U-C", "c@cust.test", 3 * DAY_MS, 900)
        reg("U-D", "d@cust.test", 2 * 3600 * 1000, 700)
        reg("U-E", "e@cust.test", 3 * DAY_MS, 300, kind="confirmation")
        reg("U-F", "f@cust.test", 5 * DAY_MS, 500)
        b.fetch(b.pixel_path(c))
        b.wait_opens("U-C", c["id"], 1)

        def who(query):
            rows = b.get("/api/v1/unopened" + query)["customers"]
            return [r["recipient"].lower() for r in rows], rows

        names, rows = who("")
        check_eq(names, ["f@cust.test", "a@cust.test", "b@cust.test"],
                 "default list (24h, value >= 0)")
        ann = rows[1]
        check_eq((ann["name"], ann["phone"], ann["value"], ann["replies"]),
                 ("Ann", "+1 555 0101", 500, 2), "Ann's row")
        check_eq(ann["ticket_ids"], ["U-A1", "U-A2"], "Ann's tickets")
        check_eq(parse_time(ann["oldest_unopened_at"]),
                 (t - 3 * DAY_MS) // 1000 * 1000, "Ann's oldest reply")
        check_eq(parse_time(ann["newest_unopened_at"]),
                 (t - 2 * DAY_MS) // 1000 * 1000, "Ann's newest reply")
        check_eq(rows[2]["name"], 'Smith, "Bob"', "Bob's name")
        check_eq(rows[0]["name"], None, "a customer without a name")

        check_eq(who("?min_value=100")[0], ["f@cust.test", "a@cust.test"],
                 "min_value=100")
        check_eq(who("?older_than=90m")[0],
                 ["d@cust.test", "f@cust.test", "a@cust.test",
                  "b@cust.test"], "older_than=90m")
        check_eq(who("?older_than=4d")[0], ["f@cust.test"], "older_than=4d")
        check_eq(who("?older_than=24h&min_value=600")[0], [],
                 "min_value=600")

        status, h, body = b.request("GET", "/api/v1/unopened?format=csv",
                                    auth=True)
        check_eq(status, 200, "CSV status")
        check(h.get("content-type", "").startswith("text/csv"),
              "CSV content type %r" % h.get("content-type"))
        check(body.endswith(b"\r\n"), "CSV lines do not end in CRLF")
        table = list(csv.reader(io.StringIO(body.decode("utf-8"),
                                            newline="")))
        header = table[0]
        for col in ("recipient", "name", "phone", "value"):
            check(col in header, "CSV header %r lacks %s" % (header, col))
        check_eq([r[header.index("recipient")].lower() for r in table[1:]],
                 names, "CSV rows")
        check_eq(table[3][header.index("name")], 'Smith, "Bob"',
                 "CSV quoting of a name with a comma and quotes")

        status, _, body2 = b.request("GET", "/api/v1/unopened", auth=True,
                                     headers={"Accept": "text/csv"})
        check_eq((status, body2), (200, body), "Accept: text/csv answer")


# -- bad input ---------------------------------------------------------------

def bad_input_gets_a_4xx_json_error_and_stores_nothing():
    n = [0]

    def msg(**fields):
        n[0] += 1
        body = {"ticket_id": "bad-%d" % n[0], "recipient": "x@bad.test"}
        body.update(fields)
        return json.dumps({k: v for k, v in body.items() if v is not DROP})

    big = msg(customer={"name": "N" * (70 * 1024)})
    cases = [
        ("malformed JSON", "POST", "/api/v1/messages",
         '{"ticket_id": "bad-0", "recipient": ', 400),
        ("trailing garbage", "POST", "/api/v1/messages", msg() + " x", 400),
        ("not an object", "POST", "/api/v1/messages", '["bad-0"]', 400),
        ("empty body", "POST", "/api/v1/messages", "", 400),
        ("ticket_id a boolean", "POST", "/api/v1/messages",
         msg(ticket_id=True), 400),
        ("ticket_id a list", "POST", "/api/v1/messages",
         msg(ticket_id=["bad"]), 400),
        ("recipient a number", "POST", "/api/v1/messages",
         msg(recipient=42), 400),
        ("unknown kind", "POST", "/api/v1/messages", msg(kind="news"), 400),
        ("kind a number", "POST", "/api/v1/messages", msg(kind=1), 400),
        ("sent_at a number", "POST", "/api/v1/messages",
         msg(sent_at=1700000000), 400),
        ("sent_at month 13", "POST", "/api/v1/messages",
         msg(sent_at="2024-13-01T00:00:00Z"), 400),
        ("sent_at Feb 30", "POST", "/api/v1/messages",
         msg(sent_at="2024-02-30T00:00:00Z"), 400),
        ("sent_at a word", "POST", "/api/v1/messages",
         msg(sent_at="yesterday"), 400),
        ("message_id a number", "POST", "/api/v1/messages",
         msg(message_id=5), 400),
        ("customer a string", "POST", "/api/v1/messages",
         msg(customer="vip"), 400),
        ("customer value a string", "POST", "/api/v1/messages",
         msg(customer={"value": "lots"}), 400),
        ("customer name a number", "POST", "/api/v1/messages",
         msg(customer={"name": 5}), 400),
        ("missing ticket_id", "POST", "/api/v1/messages",
         msg(ticket_id=DROP), 400),
        ("missing recipient", "POST", "/api/v1/messages",
         msg(recipient=DROP), 400),
        ("address without @", "POST", "/api/v1/messages",
         msg(recipient="alice"), 400),
        ("address without domain", "POST", "/api/v1/messages",
         msg(recipient="alice@"), 400),
        ("address with only a dot", "POST", "/api/v1/messages",
         msg(recipient="alice@."), 400),
        ("body over 64 KiB", "POST", "/api/v1/messages", big, 413),
        ("since not a date", "GET", "/api/v1/domains?since=notadate",
         None, 400),
        ("until Feb 30", "GET", "/api/v1/domains?until=2024-02-30",
         None, 400),
        ("since after until", "GET",
         "/api/v1/domains?since=2024-02-01&until=2024-01-01", None, 400),
        ("older_than a word", "GET", "/api/v1/unopened?older_than=abc",
         None, 400),
        ("older_than unknown unit", "GET", "/api/v1/unopened?older_than=5x",
         None, 400),
        ("older_than negative", "GET", "/api/v1/unopened?older_than=-3d",
         None, 400),
        ("min_value a word", "GET", "/api/v1/unopened?min_value=abc",
         None, 400),
        ("format unknown", "GET", "/api/v1/unopened?format=xml", None, 400),
        ("unknown API route", "GET", "/api/v1/nope", None, 404),
        ("unknown API version", "GET", "/api/v2/messages", None, 404),
        ("unknown top-level route", "GET", "/nope", None, 404),
        ("GET on messages", "GET", "/api/v1/messages", None, 405),
        ("DELETE on a ticket", "DELETE", "/api/v1/tickets/T-1001", None, 405),
        ("POST on domains", "POST", "/api/v1/domains", "{}", 405),
        ("POST on unopened", "POST", "/api/v1/unopened", "{}", 405),
        ("PUT on healthz", "PUT", "/healthz", "{}", 405),
    ]
    for name, method, path, body, want in cases:
        headers = {"Content-Type": "application/json"} if body else {}
        status, h, data = SRV.request(method, path, body, headers, auth=True)
        try:
            answer = json.loads(data.decode("utf-8"))
        except ValueError:
            answer = data[:200]
        check_json_error(status, h, answer, want, name)
        if want == 405:
            check(h.get("allow"), "%s: 405 without Allow" % name)
    for i in range(n[0] + 1):
        status, _, _ = SRV.api("GET", "/api/v1/tickets/bad-%d" % i)
        check_eq(status, 404, "ticket bad-%d stored from a bad request" % i)


# -- restart, signals and the command line -----------------------------------

def restart_on_the_same_db_keeps_messages_and_opens():
    with tempfile.TemporaryDirectory(prefix="beacon-e2e-") as d:
        with Beacon(BINARY, workdir=d) as b:
            reg = register(b, "R-1", "kim@restart.test")
            b.fetch(b.pixel_path(reg), ua="first-run-agent")
            b.wait_opens("R-1", reg["id"], 1)
            key = b.api_key
        with Beacon(BINARY, workdir=d) as b:
            check_eq(b.api_key, key, "API key after restart")
            ticket = b.get("/api/v1/tickets/R-1")
            check_eq([m["id"] for m in ticket["messages"]], [reg["id"]],
                     "messages after restart")
            opens = ticket["messages"][0]["fetches"]
            check_eq([o["user_agent"] for o in opens], ["first-run-agent"],
                     "opens after restart")
            b.fetch(b.pixel_path(reg), ua="second-run-agent")
            b.wait_opens("R-1", reg["id"], 2)
            reg2 = register(b, "R-2", "kim@restart.test")
            check(reg2["id"] != reg["id"], "message id reused after restart")


def sigterm_writes_every_queued_open_before_exit():
    n = 200
    with tempfile.TemporaryDirectory(prefix="beacon-e2e-") as d:
        with Beacon(BINARY, workdir=d) as b:
            reg = register(b, "S-1", "lee@stop.test")
            path = b.pixel_path(reg)
            for _ in range(n):
                check_eq(b.fetch(path)[0], 200, "fetch")
        with Beacon(BINARY, workdir=d) as b:
            check_eq(b.open_count("S-1", reg["id"]), n,
                     "opens written before the stop")


def env_variables_configure_serve():
    with tempfile.TemporaryDirectory(prefix="beacon-e2e-") as d:
        env = {"BEACON_LISTEN": "127.0.0.1:0",
               "BEACON_DB": os.path.join(d, "sub", "dir", "env.db"),
               "BEACON_KEY_FILE": os.path.join(d, "env-signing.key"),
               "BEACON_API_KEY_FILE": os.path.join(d, "env-api.key"),
               "BEACON_BASE_URL": "https://pixels.example.com",
               "BEACON_LOG_LEVEL": "warn"}
        b = Beacon(BINARY, workdir=d, env=env, use_flags=False)
        b.api_key_file = env["BEACON_API_KEY_FILE"]
        with b:
            check(os.path.exists(env["BEACON_DB"]), "db not at BEACON_DB")
            check(os.path.exists(env["BEACON_KEY_FILE"]),
                  "no key at BEACON_KEY_FILE")
            reg = b.register(ticket_id="E-1", recipient="m@env.test")
            check(reg["pixel_url"].startswith(
                "https://pixels.example.com/p/"), "pixel_url %r ignores "
                "BEACON_BASE_URL" % reg["pixel_url"])


def keygen_creates_a_0600_key_and_refuses_to_overwrite():
    with tempfile.TemporaryDirectory(prefix="beacon-e2e-") as d:
        path = os.path.join(d, "k.key")
        r = run_beacon("keygen", "--key-file", path, cwd=d)
        check_eq(r.returncode, 0, "first keygen (stderr %r)" % r.stderr)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        check_eq(oct(mode), oct(0o600), "key file mode")
        check(read_signing_keys(path), "keygen wrote no key")
        with open(path, "rb") as f:
            first = f.read()
        r = run_beacon("keygen", "--key-file", path, cwd=d)
        check(r.returncode != 0, "second keygen exited 0")
        check(r.stderr.strip(), "second keygen gave no reason")
        with open(path, "rb") as f:
            check(f.read() == first, "keygen changed an existing key file")


def unknown_flags_and_bad_values_exit_2_with_one_line():
    """A refused command line says why in one line, exits 2 (a usage
    error) and creates nothing."""
    for args in (["serve", "--bogus"], ["--bogus"], ["frobnicate"],
                 ["serve", "--log-level", "loud"],
                 ["serve", "--listen", "bogus"],
                 ["serve", "--listen", "127.0.0.1:notaport"],
                 ["serve", "--listen", "127.0.0.1:99999"],
                 ["serve", "--threads", "0"],
                 ["keygen"]):
        with tempfile.TemporaryDirectory(prefix="beacon-e2e-") as d:
            r = run_beacon(*args, cwd=d)
            check_eq(r.returncode, 2, "exit status of %r" % args)
            lines = r.stderr.strip().splitlines()
            check_eq(len(lines), 1, "stderr lines for %r" % args)
            check_eq(os.listdir(d), [], "files left by %r" % args)


def help_describes_the_commands():
    with tempfile.TemporaryDirectory(prefix="beacon-e2e-") as d:
        help_top = run_beacon("--help", cwd=d)
        help_serve = run_beacon("serve", "--help", cwd=d)
    r = help_top
    check_eq(r.returncode, 0, "beacon --help exit")
    check("serve" in r.stdout and "keygen" in r.stdout,
          "beacon --help does not list serve and keygen")
    r = help_serve
    check_eq(r.returncode, 0, "beacon serve --help exit")
    for flag in ("--listen", "--db", "--key-file", "--api-key-file",
                 "--base-url", "BEACON_LISTEN"):
        check(flag in r.stdout, "serve --help lacks %s" % flag)


def sigterm_stops_the_server_with_exit_0():
    SRV.stop()


TESTS = [
    serve_prints_urls_but_never_the_key,
    key_files_are_created_0600,
    healthz_answers_ok_without_auth,
    every_api_route_requires_the_api_key,
    register_returns_id_token_pixel_url_and_img_tag,
    register_accepts_integer_ticket_id_and_defaults_kind_to_reply,
    unknown_ticket_is_404,
    pixel_get_serves_a_1x1_transparent_gif_with_no_cache_headers,
    pixel_head_sends_headers_but_no_body_and_no_open,
    pixel_other_methods_get_405,
    pixel_without_gif_suffix_and_with_query_string_counts,
    tampered_tokens_get_the_same_gif_and_no_open,
    forged_tokens_for_unknown_key_or_message_record_nothing,
    open_records_time_user_agent_and_truncated_address,
    user_agent_is_capped_at_512_bytes,
    bad_input_gets_a_4xx_json_error_and_stores_nothing,
    stats_reports_every_counter,
    api_workers_run_below_the_pixel_threads,
    domains_report_counts_sent_opened_rate_and_fetches,
    domains_report_window_follows_since_and_until,
    unopened_call_list_follows_value_age_and_opens,
    restart_on_the_same_db_keeps_messages_and_opens,
    sigterm_writes_every_queued_open_before_exit,
    env_variables_configure_serve,
    keygen_creates_a_0600_key_and_refuses_to_overwrite,
    unknown_flags_and_bad_values_exit_2_with_one_line,
    help_describes_the_commands,
    sigterm_stops_the_server_with_exit_0,
]


def main():
    global BINARY, SRV
    if len(sys.argv) != 2:
        print("usage: test_http.py path/to/beacon", file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    SRV = Beacon(BINARY)
    try:
        SRV.start()
    except Exception as e:
        SRV.cleanup()
        print("FAIL start: %s" % e)
        print("0 passed, 1 failed")
        return 1
    try:
        return run_tests(TESTS)
    finally:
        SRV.cleanup()


if __name__ == "__main__":
    sys.exit(main())
