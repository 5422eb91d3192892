"""Limits of `beacon serve` under hostile clients, over loopback.

Usage: python3 test_limits.py path/to/beacon

Each test starts its own server with the limits it checks: idle
connections that must not crowd out a pixel, the total and the
per-address connection limits, the idle timeout against a client that
sends its headers a byte at a time (slowloris), oversize request lines
and headers, and a log that one client cannot flood.
"""

import os
import socket
import subprocess
import sys
import time


sys.dont_write_bytecode = True      # keep the source tree clean
from beacon_harness import Beacon, check, check_eq, poll, run_tests

BINARY = None
GIF_MAGIC = b"GIF89a"


def pixel_request(path="/p/limits-test.gif", close=False):
    lines = ["GET %s HTTP/1.1" % path, "Host: beacon.test",
             "User-Agent: beacon-limits/1"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def read_reply(sock, timeout=5.0):
    """Reads one reply with a Content-Length body: (status, head, body).

    (None, b"", b"") when the server closes or resets without answering.
    """
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None, b"", b""
            data += chunk
    except ConnectionResetError:
        return None, b"", b""
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), head, body


def closed_by_server(sock, timeout):
    """True when the server closes (or resets) sock within timeout s."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def still_open(sock):
    """True when the server has neither closed sock nor sent anything."""
    sock.setblocking(False)
    try:
        sock.recv(1)            # data, or b"" for a close: not idle
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
    return False


def connect(srv, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect((srv.host, srv.port))
    return s


def close_all(socks):
    for s in socks:
        s.close()


def count_lines(srv, event):
    return sum(1 for line in srv.stderr_text().splitlines()
               if "event=%s " % event in line + " ")


# -- tests -------------------------------------------------------------------

def five_hundred_idle_connections_do_not_delay_a_pixel():
    args = ["--max-connections", "2000", "--max-connections-per-ip", "0",
            "--idle-timeout", "60"]
    with Beacon(BINARY, args=args) as srv:
        idle = []
        try:
            for _ in range(500):
                idle.append(connect(srv))
            # Let the server accept every one before the pixel comes.
            time.sleep(0.5)

            start = time.monotonic()
            s = connect(srv)
            s.sendall(pixel_request(close=True))
            status, _, body = read_reply(s)
            took = time.monotonic() - start
            s.close()
            check_eq(status, 200, "pixel status beside 500 idle connections")
            check(body.startswith(GIF_MAGIC) and len(body) == 43,
                  "pixel body is not the 43-byte GIF: %r" % body[:16])
            check(took < 2.0, "pixel took %.3f s beside 500 idle "
                  "connections (bound 2 s)" % took)

            check_eq(sum(1 for c in idle if still_open(c)), 500,
                     "idle connections still open after the pixel")
            # Open and served, not just queued in the backlog: each of
            # the 500 answers a pixel now.
            # A loose bound: this counts answers, it does not time them
            # (a sanitizer build on a busy machine is slow).
            for c in idle:
                c.sendall(pixel_request())
            answered, silent = 0, []
            for i, c in enumerate(idle):
                try:
                    answered += read_reply(c, timeout=30.0)[0] == 200
                except socket.timeout:
                    silent.append(i)
            check_eq(answered, 500, "idle connections answering a pixel "
                     "(no answer in 30 s on connections %r)" % silent)
            print("     500 idle: new pixel answered in %.1f ms"
                  % (1000 * took))
        finally:
            close_all(idle)


def the_total_connection_limit_holds_one_more_back():
    """At --max-connections the library stops accepting: one more
    connection waits in the kernel's backlog, unserved, until a slot
    frees."""
    args = ["--max-connections", "8", "--max-connections-per-ip", "0"]
    with Beacon(BINARY, args=args) as srv:
        held = [connect(srv) for _ in range(8)]
        try:
            time.sleep(0.3)
            extra = connect(srv)
            extra.sendall(pixel_request(close=True))
            extra.settimeout(1.5)
            try:
                early = extra.recv(4096)
            except socket.timeout:
                early = None
            check(early is None, "a 9th connection over --max-connections "
                  "8 was answered or closed at once: %r" % early)
            check_eq(sum(1 for c in held if still_open(c)), 8,
                     "the 8 connections within the limit stay open")

            held.pop().close()
            status, _, body = read_reply(extra)
            extra.close()
            check_eq(status, 200, "the waiting pixel once a slot is free")
            check(body.startswith(GIF_MAGIC), "pixel body is a GIF")
        finally:
            close_all(held)


def the_per_address_limit_refuses_one_address_only():
    args = ["--max-connections-per-ip", "4"]
    with Beacon(BINARY, args=args) as srv:
        held = [connect(srv) for _ in range(4)]
        try:
            time.sleep(0.3)
            extra = connect(srv)
            try:
                extra.sendall(pixel_request())
            except OSError:
                pass
            check(closed_by_server(extra, 3.0),
                  "a 5th connection from 127.0.0.1 over "
                  "--max-connections-per-ip 4 was served")
            extra.close()

            # Another loopback address is another client.
            other = connect(srv, source="127.0.0.2")
            other.sendall(pixel_request(close=True))
            status, _, body = read_reply(other)
            other.close()
            check_eq(status, 200, "pixel from 127.0.0.2 beside the limit")
            check(body.startswith(GIF_MAGIC), "pixel body is a GIF")
            check_eq(sum(1 for c in held if still_open(c)), 4,
                     "the 4 connections within the limit stay open")
        finally:
            close_all(held)


def per_address_limit_flag_is_checked_and_documented():
    out = subprocess.run([BINARY, "serve", "--help"], capture_output=True,
                         text=True, timeout=10)
    check("--max-connections-per-ip" in out.stdout
          and "BEACON_MAX_CONNECTIONS_PER_IP" in out.stdout
          and "default 256" in out.stdout,
          "serve --help lacks --max-connections-per-ip, its env or its "
          "default:\n%s" % out.stdout)
    bad = subprocess.run([BINARY, "serve", "--max-connections-per-ip",
                          "-1"], capture_output=True, text=True, timeout=10)
    check_eq(bad.returncode, 2, "exit status of a negative per-ip limit")
    check("--max-connections-per-ip" in bad.stderr,
          "error names the flag: %r" % bad.stderr)


def slowloris_is_closed_by_the_idle_timeout():
    """Headers a byte at a time, each gap longer than --idle-timeout."""
    with Beacon(BINARY, args=["--idle-timeout", "1"]) as srv:
        s = connect(srv)
        request = pixel_request()
        start = time.monotonic()
        sent = 0
        closed = False
        try:
            for byte in request[:4]:
                s.sendall(bytes([byte]))
                sent += 1
                if closed_by_server(s, 2.5):
                    closed = True
                    break
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        took = time.monotonic() - start
        s.close()
        check(closed, "a client sending a byte per 2.5 s was not closed "
              "by --idle-timeout 1 (sent %d bytes)" % sent)
        check_eq(sent, 1, "bytes sent before the server closed")
        check(took < 4.0, "closed after %.1f s, want about 1 s" % took)

        # The server itself is fine.
        status, _, body = srv.fetch("/p/after-slowloris.gif")
        check_eq(status, 200, "pixel after the slow client")


def oversize_request_line_and_headers_are_refused():
    with Beacon(BINARY) as srv:
        s = connect(srv)
        s.sendall(pixel_request("/p/" + "a" * 9000))
        status, head, _ = read_reply(s)
        s.close()
        check_eq(status, 414, "status of a 9 kB request line")
        check(b"connection: close" in head.lower(),
              "414 closes the connection: %r" % head)

        for _ in range(20):
            s = connect(srv)
            s.sendall(b"GET /p/x.gif HTTP/1.1\r\nHost: x\r\nX-Big: "
                      + b"b" * 9000 + b"\r\n\r\n")
            status, head, _ = read_reply(s)
            s.close()
            check_eq(status, 431, "status of a 9 kB header")

        # Twenty-one refusals, one log line: the library's messages are
        # rate-limited so a client cannot fill the log.
        check_eq(count_lines(srv, "http.library"), 1,
                 "http.library lines after 21 oversize requests")

        status, _, body = srv.request("POST", "/api/v1/messages",
                                      body=b"x" * 70000, auth=True)
        check_eq(status, 413, "status of a 70 kB API body")
        check(b"\"error\"" in body, "413 body is JSON: %r" % body[:80])

        check_eq(srv.fetch("/p/after.gif")[0], 200, "pixel afterwards")


TESTS = [
    five_hundred_idle_connections_do_not_delay_a_pixel,
    the_total_connection_limit_holds_one_more_back,
    the_per_address_limit_refuses_one_address_only,
    per_address_limit_flag_is_checked_and_documented,
    slowloris_is_closed_by_the_idle_timeout,
    oversize_request_line_and_headers_are_refused,
]


def main():
    global BINARY
    if len(sys.argv) != 2:
        print("usage: test_limits.py path/to/beacon", file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    return run_tests(TESTS)


if __name__ == "__main__":
    sys.exit(main())
