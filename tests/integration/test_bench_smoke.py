"""Smoke run of bench/pixel.sh, so the benchmark cannot rot.

Usage: python3 test_bench_smoke.py path/to/beacon

Runs `bench/pixel.sh --smoke` (200 tokens, 1 s runs, one pair: about ten
seconds) with the given binary and checks its report: a table row with
a positive rate for each mode and server, the two ratio lines, the memory
lines, and "no open lost" with equal, non-trivial counts.  Timing targets
are the benchmark's business, not this test's.  wrk and nginx missing is
a failure (tools/deps.sh installs them), not a skip.
"""

import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "pixel.sh")
TIMEOUT = 60        # a hang guard; the smoke run takes about 10 s


def find_tool(name):
    return (shutil.which(name)
            or next((p for p in ("/usr/sbin/" + name, "/sbin/" + name)
                     if os.access(p, os.X_OK)), None))


def check_report(out):
    """Returns a list of what is wrong with pixel.sh's report."""
    bad = []
    for label in ("keep-alive", "Connection: close"):
        for server in ("beacon", "nginx"):
            m = re.search(r"^%s +%s +(\d+) +([\d.]+) +([\d.]+) " % (
                re.escape(label), server), out, re.M)
            if not m:
                bad.append("no table row for %s %s" % (label, server))
            elif int(m.group(1)) <= 0 or float(m.group(3)) <= 0:
                bad.append("%s %s: rate or p99 not positive: %s"
                           % (label, server, m.group(0)))
        if not re.search(r"^ratio beacon/nginx %s: +req/s \d+\.\d+ \(pairs "
                         % re.escape(label), out, re.M):
            bad.append("no ratio line for %s" % label)
    if not re.search(r"^beacon peak RSS after the runs: [\d.]+ MiB", out,
                     re.M):
        bad.append("no peak RSS line")
    m = re.search(r"^beacon with (\d+) idle connections open \((\d+) "
                  r"answered 200\): VmRSS ([\d.]+) MiB", out, re.M)
    if not m or m.group(1) != "1000" or m.group(2) != "1000":
        bad.append("idle step did not hold 1000 answered connections")
    # Requests answered as wrk stopped are stored but not counted by wrk
    # (pixel.sh says so); fewer stored than answered is a lost open.
    m = re.search(r"^no open lost: (\d+) stored (==|>=) (\d+) answered",
                  out, re.M)
    if not m:
        bad.append("no 'no open lost' line")
    elif int(m.group(1)) < int(m.group(3)) or int(m.group(3)) < 2000:
        bad.append("implausible counts: %s" % m.group(0))
    return bad


def main():
    if len(sys.argv) != 2:
        print("usage: test_bench_smoke.py path/to/beacon", file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    missing = [n for n in ("wrk", "nginx") if find_tool(n) is None]
    if missing:
        print("FAIL: bench smoke needs %s: apt-get install %s (make deps)"
              % (" and ".join(missing), " ".join(missing)))
        return 1

    # A bad option is refused before anything starts.
    rc = subprocess.run(["bash", SCRIPT, "--n", "0"], capture_output=True,
                        text=True, timeout=TIMEOUT)
    if rc.returncode != 2 or "positive integer" not in rc.stderr:
        print("FAIL: --n 0 gave exit %d, stderr %r"
              % (rc.returncode, rc.stderr))
        return 1

    start = time.monotonic()
    env = dict(os.environ, BEACON_BIN=binary)
    proc = subprocess.Popen(["bash", SCRIPT, "--smoke"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the script's trap stop the servers it started.
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        print(out)
        print(err, file=sys.stderr)
        print("FAIL: pixel.sh --smoke still running after %ds" % TIMEOUT)
        return 1
    run = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    took = time.monotonic() - start
    print(run.stdout)
    if run.stderr:
        print(run.stderr, file=sys.stderr)
    if run.returncode != 0:
        print("FAIL: pixel.sh --smoke exited %d" % run.returncode)
        return 1
    bad = check_report(run.stdout)
    for what in bad:
        print("FAIL: " + what)
    if bad:
        return 1
    print("bench smoke passed in %.1fs" % took)
    return 0


if __name__ == "__main__":
    sys.exit(main())
