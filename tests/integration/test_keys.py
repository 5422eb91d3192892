"""End to end: signing key rotation and API keys on the real binary.

Usage: python3 test_keys.py path/to/beacon

Rotates the signing key of a serving `beacon serve` and sends SIGHUP:
new tokens carry the new key id and old tokens still count; removes the
old key and sends SIGHUP: its tokens are refused and store nothing.
Then API keys through `beacon apikey` and the HTTP API, and the refusals
of bad command lines.  Ends with "N passed, N failed".
"""

import base64
import os
import signal
import stat
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True      # keep the source tree clean
from beacon_harness import (Beacon, Failure, check, check_eq, make_token,
                            poll, read_signing_keys, run_tests)

BINARY = None


def beacon(*args, cwd=None):
    """Runs the binary to completion; returns the CompletedProcess."""
    return subprocess.run([BINARY] + list(args), capture_output=True,
                          text=True, timeout=20, cwd=cwd)


def key_id_of(reg):
    """The key id byte of the token a registration answered."""
    tok = reg["token"]
    raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
    return raw[1]


def register(srv, ticket):
    return srv.register(ticket_id=ticket, recipient="k@keys.example")


def fetch_ok(srv, path):
    status, headers, body = srv.fetch(path)
    check_eq(status, 200, "pixel status for %s" % path)
    check_eq(headers.get("content-type"), "image/gif", "pixel type")
    return body


def reload_and_wait(srv, count):
    """SIGHUP, then waits for the count-th keys.reloaded log line."""
    srv.send_signal(signal.SIGHUP)
    poll(lambda: srv.stderr_text().count("event=keys.reloaded") >= count,
         "keys.reloaded #%d in the log" % count)


def rotate_while_serving_then_remove_the_old_key():
    with Beacon(BINARY) as srv:
        old = register(srv, "T-old")
        check_eq(key_id_of(old), 1, "key id of a token before rotation")

        r = beacon("keygen", "--rotate", "--key-file", srv.key_file)
        check_eq(r.returncode, 0, "rotate exit code (%r)" % r.stderr)
        check("added key 2" in r.stdout, "rotate says: %r" % r.stdout)
        check_eq([k for k, _ in read_signing_keys(srv.key_file)], [1, 2],
                 "ids in the file after rotation")
        check_eq(oct(stat.S_IMODE(os.stat(srv.key_file).st_mode)),
                 oct(0o600), "key file mode after rotation")

        # Before the reload the server still signs with key 1.
        check_eq(key_id_of(register(srv, "T-before-hup")), 1,
                 "key id before SIGHUP")
        reload_and_wait(srv, 1)
        check("keys=2 current=2" in srv.stderr_text(), "reload log line")
        new = register(srv, "T-new")
        check_eq(key_id_of(new), 2, "key id of a token after SIGHUP")

        fetch_ok(srv, srv.pixel_path(old))
        fetch_ok(srv, srv.pixel_path(new))
        srv.wait_opens("T-old", old["id"], 1)
        srv.wait_opens("T-new", new["id"], 1)

        r = beacon("keygen", "--remove", "1", "--key-file", srv.key_file)
        check_eq(r.returncode, 0, "remove exit code (%r)" % r.stderr)
        check_eq([k for k, _ in read_signing_keys(srv.key_file)], [2],
                 "ids in the file after removal")
        rejected = srv.stats()["tokens_rejected"]
        reload_and_wait(srv, 2)

        # Key 1's tokens now get the same GIF and store nothing; a token
        # forged with the removed key is refused alike.
        fetch_ok(srv, srv.pixel_path(old))
        fetch_ok(srv, "/p/%s.gif" % make_token(1, bytes(32), old["id"]))
        fetch_ok(srv, srv.pixel_path(new))
        srv.wait_opens("T-new", new["id"], 2)    # written after the others
        check_eq(srv.open_count("T-old", old["id"]), 1,
                 "opens of the removed key's message")
        check_eq(srv.stats()["tokens_rejected"], rejected + 2,
                 "tokens rejected after the removal")

        text = srv.stderr_text()
        for kid, key in read_signing_keys(srv.key_file):
            check(key.hex() not in text, "key %d in the log" % kid)
        check(old["token"] not in text and new["token"] not in text,
              "a token in the log")
        workdir = srv.workdir

        # A restart reads the same file: the same verdicts.
        srv.stop()
        srv.start()
        fetch_ok(srv, srv.pixel_path(old))
        fetch_ok(srv, srv.pixel_path(new))
        srv.wait_opens("T-new", new["id"], 3)
        check_eq(srv.open_count("T-old", old["id"]), 1,
                 "opens of the removed key's message after restart")
        check_eq(srv.workdir, workdir, "same workdir")


def a_bad_key_file_on_sighup_keeps_the_keys_in_force():
    with Beacon(BINARY) as srv:
        reg = register(srv, "T-bad")
        with open(srv.key_file, "a", encoding="ascii") as f:
            f.write("300 nothex\n")
        srv.send_signal(signal.SIGHUP)
        poll(lambda: "event=keys.reload_failed" in srv.stderr_text(),
             "keys.reload_failed in the log")
        fetch_ok(srv, srv.pixel_path(reg))
        srv.wait_opens("T-bad", reg["id"], 1)
        check_eq(key_id_of(register(srv, "T-bad-2")), 1,
                 "key id after a refused reload")


def api_keys_from_the_cli_are_honoured_by_the_api():
    with Beacon(BINARY) as srv:
        r = beacon("apikey", "add", "--scope", "read", "--db", srv.db)
        check_eq(r.returncode, 0, "add read (%r)" % r.stderr)
        read_key = r.stdout.strip()
        check(len(read_key) == 43 and "\n" not in read_key,
              "a read key of 43 characters: %r" % r.stdout)
        check("added key 1 (read)" in r.stderr, "add says: %r" % r.stderr)
        r = beacon("apikey", "add", "--scope=write", "--db", srv.db)
        check_eq(r.returncode, 0, "add write (%r)" % r.stderr)
        write_key = r.stdout.strip()
        check(write_key != read_key, "two different keys")

        r = beacon("apikey", "list", "--db", srv.db)
        check_eq(r.returncode, 0, "list exit code")
        rows = [line.split() for line in r.stdout.splitlines()]
        check_eq(rows[0], ["ID", "SCOPE", "CREATED", "REVOKED"], "header")
        check_eq([(row[0], row[1], row[3]) for row in rows[1:]],
                 [("1", "read", "-"), ("2", "write", "-")], "list rows")
        check(read_key not in r.stdout and write_key not in r.stdout,
              "list shows a key")

        def call(method, path, key, obj=None):
            headers = {"Authorization": "Bearer " + key}
            status, _, body = srv.api(method, path, obj, auth=False,
                                      headers=headers)
            return status, body

        msg = {"ticket_id": "A1", "recipient": "a@api.example"}
        check_eq(call("GET", "/api/v1/domains", read_key)[0], 200,
                 "read key on GET")
        status, body = call("POST", "/api/v1/messages", read_key, msg)
        check_eq(status, 403, "read key on POST")
        check("write key" in body["error"], "403 error: %r" % body)
        check_eq(call("POST", "/api/v1/messages", write_key, msg)[0], 201,
                 "write key on POST")
        check_eq(call("POST", "/api/v1/messages", srv.api_key, msg)[0], 201,
                 "the key file's key on POST")

        r = beacon("apikey", "revoke", "1", "--db", srv.db)
        check_eq(r.returncode, 0, "revoke exit code (%r)" % r.stderr)
        status, body = call("GET", "/api/v1/domains", read_key)
        check_eq(status, 401, "revoked read key, no restart")
        check_eq(body, {"error": "invalid API key"}, "401 body")
        check_eq(call("GET", "/api/v1/domains", write_key)[0], 200,
                 "write key after another key's revocation")

        r = beacon("apikey", "list", "--db", srv.db)
        rows = [line.split() for line in r.stdout.splitlines()]
        check(rows[1][0] == "1" and rows[1][3] != "-", "revoked shown")
        r = beacon("apikey", "revoke", "1", "--db", srv.db)
        check_eq(r.returncode, 1, "revoking twice")
        check("no API key in force has id 1" in r.stderr, r.stderr)

        text = srv.stderr_text()
        check(read_key not in text and write_key not in text,
              "an API key in the log")


def bad_command_lines_exit_nonzero_with_a_reason():
    with tempfile.TemporaryDirectory(prefix="beacon-e2e-") as d:
        key = os.path.join(d, "k.key")
        db = os.path.join(d, "b.db")
        check_eq(beacon("keygen", "--key-file", key).returncode, 0, "keygen")
        check_eq(beacon("demo", "--db", db).returncode, 0, "demo db")
        with open(key, "rb") as f:
            before = f.read()
        cases = [
            (["keygen", "--rotate", "--bogus", "--key-file", key], 2,
             "unknown argument"),
            (["keygen", "--remove", "abc", "--key-file", key], 2,
             "not a key id"),
            (["keygen", "--remove", "0", "--key-file", key], 2,
             "not a key id"),
            (["keygen", "--remove", "99", "--key-file", key], 1,
             "no key with id 99"),
            (["keygen", "--remove", "1", "--key-file", key], 1,
             "current key"),
            (["keygen", "--remove", "1", "--rotate", "--key-file", key], 2,
             "separate runs"),
            (["keygen", "--rotate"], 2, "--key-file PATH is required"),
            (["keygen", "--rotate", "--key-file", key + ".missing"], 1,
             "No such file"),
            (["apikey", "add", "--scope", "admin", "--db", db], 2,
             "read or write"),
            (["apikey", "add", "--db", db], 2, "--scope"),
            (["apikey", "revoke", "x1", "--db", db], 2, "needs the ID"),
            (["apikey", "revoke", "--db", db], 2, "needs the ID"),
            (["apikey", "revoke", "42", "--db", db], 1, "id 42"),
            (["apikey", "list", "--db", db, "--bogus"], 2,
             "unknown argument"),
            (["apikey", "frob", "--db", db], 2, "unknown action"),
            (["apikey", "list"], 2, "--db PATH is required"),
            (["apikey", "list", "--db", db + ".missing"], 1,
             "No such file"),
            (["apikey"], 2, "usage"),
        ]
        for args, want_rc, want_text in cases:
            r = beacon(*args, cwd=d)
            check_eq(r.returncode, want_rc, "exit code of %r" % args)
            check(want_text in r.stderr,
                  "%r says %r, want %r" % (args, r.stderr, want_text))
        with open(key, "rb") as f:
            check(f.read() == before, "a refused keygen changed the file")
        check(not os.path.exists(db + ".missing"), "a database was made")
        extra = [f for f in os.listdir(d)
                 if f not in ("k.key", "b.db", "b.db-wal", "b.db-shm")]
        check_eq(extra, [], "files left in the directory")
        r = beacon("apikey", "list", "--db", db)
        check_eq(r.stdout.splitlines()[1:], [], "no key added by refusals")


TESTS = [
    rotate_while_serving_then_remove_the_old_key,
    a_bad_key_file_on_sighup_keeps_the_keys_in_force,
    api_keys_from_the_cli_are_honoured_by_the_api,
    bad_command_lines_exit_nonzero_with_a_reason,
]


def main():
    global BINARY
    if len(sys.argv) != 2:
        print("usage: test_keys.py path/to/beacon", file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    return run_tests(TESTS)


if __name__ == "__main__":
    sys.exit(main())
