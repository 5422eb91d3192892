#!/usr/bin/env bash
# bench/reports.sh - how fast the reports answer at scale, alone and while
# the pixel path is busy.
#
# Generates a database with bench/gen_reports (by default 1,000,000
# messages across 2,000 domains and 3,000,000 classified fetches), starts
# Beacon on it, and times GET /api/v1/domains (the default 30-day window)
# and GET /api/v1/unopened (default parameters): cold (the first request
# after Beacon started; the OS file cache is not dropped) and warm (the
# median of the next ones).  Then registers a few thousand messages
# through the API and runs wrk with bench/pixel.lua over their pixel
# paths, A B C A: alone, while one client asks for the domains report
# back to back, while one asks for the call list back to back, alone
# again.  Prints a table, the pixel rate with and without the reports
# running, and each target of issue 4 as met or missed.
#
# Exits 0 when everything ran (targets missed or not), 2 on a usage or
# setup error or a request that failed.  Builds nothing: the binaries
# come from a build directory.  Needs wrk and python3; taskset to pin.
# All traffic is on 127.0.0.1; every wait is bounded; only processes
# started here are signalled; the temporary directory is removed on exit.
set -euo pipefail

BENCH_NAME=reports.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

usage()
{
    cat <<EOF
usage: bench/reports.sh [options]

  --build DIR         build directory holding beacon and bench/gen_reports
                      (default: build, in the source tree)
  --messages N        messages generated (default 1000000)
  --domains D         recipient domains (default 2000)
  --fetches F         fetches generated (default 3000000)
  --tokens T          messages registered for the pixel load (default 2000)
  --warm R            warm requests per report, median quoted (default 10)
  --duration S        seconds per wrk run (default 10)
  --warmup S          seconds of the discarded first wrk run (default 2)
  --connections C     wrk connections (default 50)
  --smoke             a few seconds: 5000 messages, 50 domains, 15000
                      fetches, 200 tokens, 3 warm requests, 1 s runs
                      (later options still apply)
  --db PATH           time the reports on this database (one a --keep
                      run left) instead of generating one; the pixel
                      load adds its messages and fetches to it
  --keep              keep the temporary directory (database, logs)
  -h, --help          this text
EOF
}

BUILD=$root/build
N=1000000
D=2000
F=3000000
TOKENS=2000
WARM=10
DURATION=10
WARMUP=2
CONNS=50
KEEP=0
DB_IN=
TAIL=0.3            # seconds at the end of a wrk run with nothing sent
DOMAINS_TARGET_MS=100
UNOPENED_TARGET_MS=200
SLOWDOWN_TARGET_PCT=20

need_arg()
{
    [ $# -ge 2 ] || bench_die "$1 needs a value (see --help)"
}

while [ $# -gt 0 ]; do
    case $1 in
    --build) need_arg "$@"; BUILD=$2; shift 2 ;;
    --messages) need_arg "$@"; N=$2; shift 2 ;;
    --domains) need_arg "$@"; D=$2; shift 2 ;;
    --fetches) need_arg "$@"; F=$2; shift 2 ;;
    --tokens) need_arg "$@"; TOKENS=$2; shift 2 ;;
    --warm) need_arg "$@"; WARM=$2; shift 2 ;;
    --duration) need_arg "$@"; DURATION=$2; shift 2 ;;
    --warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
    --connections) need_arg "$@"; CONNS=$2; shift 2 ;;
    --smoke) N=5000; D=50; F=15000; TOKENS=200; WARM=3; DURATION=1
        WARMUP=1; shift ;;
    --db) need_arg "$@"; DB_IN=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bench_die "unknown option: $1 (see --help)" ;;
    esac
done

for v in N D TOKENS WARM DURATION WARMUP CONNS; do
    case ${!v} in
    ''|*[!0-9]*|0*) bench_die "$v must be a positive integer, not '${!v}'" ;;
    esac
done
case $F in
''|*[!0-9]*) bench_die "F must be a whole number, not '$F'" ;;
esac

# -- tools -----------------------------------------------------------------

BUILD=$(cd "$BUILD" 2>/dev/null && pwd) ||
    bench_die "no build directory $BUILD (see --build)"
BEACON=$BUILD/beacon
GEN=$BUILD/bench/gen_reports
missing=()
WRK=$(bench_find_tool wrk) || missing+=("wrk (Debian package wrk)")
command -v "$BENCH_PY" >/dev/null 2>&1 ||
    missing+=("python3 (Debian package python3)")
command -v timeout >/dev/null 2>&1 ||
    missing+=("timeout (Debian package coreutils)")
[ -x "$BEACON" ] || missing+=("$BEACON (build the beacon target)")
[ -x "$GEN" ] || missing+=("$GEN (build the gen_reports target)")
if [ ${#missing[@]} -gt 0 ]; then
    printf '%s: missing:\n' "$BENCH_NAME" >&2
    printf '  %s\n' "${missing[@]}" >&2
    exit 2
fi

# As in pixel.sh: wrk on cpu 0, Beacon alone on cpu 1.  The report
# queries run in Beacon, so they share cpu 1 with the pixel path: the
# slowdown measured is the one a 2-core machine would see.
PIN_WRK=
BENCH_PIN_SERVER=
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    PIN_WRK="taskset -c 0"
    BENCH_PIN_SERVER="taskset -c 1"
    pinning="beacon on cpu 1, wrk and the report client on cpu 0"
else
    pinning="not pinned (needs 2 CPUs and taskset)"
fi

# -- clean-up --------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/beacon-reports.XXXXXX")
BEACON_PID=
LOOP_PID=

cleanup()
{
    local rc=$?

    trap - EXIT
    if [ -n "$LOOP_PID" ]; then
        bench_stop_pid "$LOOP_PID" TERM 5 || true
    fi
    if [ -n "$BEACON_PID" ]; then
        bench_stop_pid "$BEACON_PID" TERM 30 || true
    fi
    if [ "$KEEP" = 1 ]; then
        bench_say "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -- report client ---------------------------------------------------------

# $GET_PY PORT KEYFILE PATH COUNT SECONDS: GETs PATH on one keep-alive
# connection, COUNT times or, when SECONDS > 0, until SECONDS have
# passed.  Prints "first_ms= median_ms= max_ms= n= bytes=": the first
# request's time, and the median and maximum of the others (of all when
# there is only one).  Exits 1 on any answer but 200.
GET_PY=$TMP/get_times.py
cat >"$GET_PY" <<'EOF'
import http.client, statistics, sys, time
port, key_file, path = sys.argv[1], sys.argv[2], sys.argv[3]
count, secs = int(sys.argv[4]), float(sys.argv[5])
with open(key_file, encoding="utf-8") as f:
    hdrs = {"Authorization": "Bearer " + f.read().strip()}
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
times, size = [], 0
deadline = time.monotonic() + secs
while (len(times) < count) if secs <= 0 else (time.monotonic() < deadline):
    t0 = time.perf_counter()
    conn.request("GET", path, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    times.append((time.perf_counter() - t0) * 1000)
    if resp.status != 200:
        sys.exit("GET %s: %d %r" % (path, resp.status, data[:200]))
    size = len(data)
conn.close()
rest = times[1:] or times
print("first_ms=%.2f median_ms=%.2f max_ms=%.2f n=%d bytes=%d"
      % (times[0], statistics.median(rest), max(rest), len(times), size))
EOF

get_times()
{
    "$BENCH_PY" "$GET_PY" "$@"
}

# -- database --------------------------------------------------------------

bench_say "beacon:   $BEACON"
bench_say "wrk:      $WRK ($("$WRK" -v 2>&1 | head -n 1 | awk '{ print $2 }'))"
bench_say "machine:  $ncpu CPUs, $pinning"
bench_say "database: $N messages, $D domains, $F fetches"

DB=$TMP/beacon.db
if [ -n "$DB_IN" ]; then
    # A database from an earlier --keep run: the pixel load adds to it.
    [ -f "$DB_IN" ] || bench_die "no database $DB_IN (see --db)"
    DB=$DB_IN
    GEN_SECS=-
    bench_say "database reused: $DB (the figures above are its generator's)"
else
    t0=$(date +%s.%N)
    "$GEN" --db "$DB" --messages "$N" --domains "$D" \
        --fetches "$F" >"$TMP/gen.out" 2>"$TMP/gen.err" || {
        cat "$TMP/gen.err" >&2
        bench_die "gen_reports failed"
    }
    t1=$(date +%s.%N)
    GEN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    grep -v '^gen_reports: \(messages\|fetches\) ' "$TMP/gen.out" || true
fi
DB_MIB=$(du -m "$DB" | awk '{ print $1 }')
bench_say "generated in ${GEN_SECS}s, database ${DB_MIB} MiB"

# A later --db wins over the one bench_start_beacon gives.
# shellcheck disable=SC2086
bench_start_beacon "$BEACON" "$TMP" --db "$DB"
KEY=$TMP/api.key
DOMAINS_PATH=/api/v1/domains
UNOPENED_PATH=/api/v1/unopened

# -- reports alone ---------------------------------------------------------

DOM=$(get_times "$BEACON_PORT" "$KEY" "$DOMAINS_PATH" $((WARM + 1)) 0) ||
    bench_die "timing $DOMAINS_PATH failed"
UNO=$(get_times "$BEACON_PORT" "$KEY" "$UNOPENED_PATH" $((WARM + 1)) 0) ||
    bench_die "timing $UNOPENED_PATH failed"

# -- pixel load ------------------------------------------------------------

bench_register "$BEACON_PORT" "$KEY" "$TOKENS" "$TMP/tokens.txt" ||
    bench_die "registering $TOKENS messages failed"

# run_wrk LABEL SECONDS [REPORT-PATH]: one wrk run, with a client asking
# for REPORT-PATH back to back for as long when given.  Appends
# "LABEL rps= p50_us= p99_us= non2xx= errors= [q_...]" to RESULTS.
RESULTS=$TMP/results.txt
: >"$RESULTS"
run_wrk()
{
    local label=$1 secs=$2 report=${3:-} out line rc=0 active q=
    local loop_out=$TMP/loop-$label.out

    out=$TMP/wrk-$label.out
    active=$(awk -v s="$secs" -v t="$TAIL" 'BEGIN { print s - t }')
    if [ -n "$report" ]; then
        # shellcheck disable=SC2086
        $PIN_WRK "$BENCH_PY" "$GET_PY" "$BEACON_PORT" "$KEY" "$report" 1 \
            "$secs" >"$loop_out" 2>&1 &
        LOOP_PID=$!
    fi
    # shellcheck disable=SC2086
    timeout $((secs + 30)) $PIN_WRK "$WRK" -t1 -c"$CONNS" -d"${secs}s" \
        --timeout 2s --latency -s "$here/pixel.lua" \
        "http://127.0.0.1:$BEACON_PORT/" -- "$TMP/tokens.txt" "$active" \
        >"$out" 2>&1 || rc=$?
    if [ -n "$report" ]; then
        wait "$LOOP_PID" || {
            LOOP_PID=
            cat "$loop_out" >&2
            bench_die "the $report client failed during $label"
        }
        LOOP_PID=
        q=$(sed 's/\([a-z_]*=\)/q_\1/g' "$loop_out")
    fi
    line=$(grep '^BENCH ' "$out" || true)
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        cat "$out" >&2
        bench_die "wrk ($label) failed (exit $rc)"
    fi
    awk -v l="${line#BENCH }" -v label="$label" -v q="$q" 'BEGIN {
        n = split(l, w, " ")
        for (i = 1; i <= n; i++) { split(w[i], kv, "="); f[kv[1]] = kv[2] }
        printf "%s rps=%.0f p50_us=%d p99_us=%d non2xx=%d errors=%d %s\n",
            label, f["requests"] / (f["active_us"] / 1e6), f["p50_us"],
            f["p99_us"], f["non2xx"],
            f["connect"] + f["read"] + f["write"] + f["timeout"], q
    }' >>"$RESULTS"
    tail -n 1 "$RESULTS" | awk '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "  %-16s %8d req/s  p50 %6.2f ms  p99 %6.2f ms", $1,
            f["rps"], f["p50_us"] / 1000, f["p99_us"] / 1000
        if ("q_n" in f)
            printf "  (%d reports, median %.1f ms)", f["q_n"],
                f["q_median_ms"]
        printf "\n"
    }'
}

bench_say "pixel load: $TOKENS tokens, $CONNS connections, ${DURATION}s runs"
run_wrk warmup "$WARMUP"
run_wrk alone-1 "$DURATION"
run_wrk with-domains "$DURATION" "$DOMAINS_PATH"
run_wrk with-unopened "$DURATION" "$UNOPENED_PATH"
run_wrk alone-2 "$DURATION"

bad=$(awk '$1 != "warmup" { for (i = 2; i <= NF; i++) {
        split($i, kv, "="); if (kv[1] == "non2xx") s += kv[2] } }
    END { print s + 0 }' "$RESULTS")
[ "$bad" = 0 ] || bench_die "beacon answered $bad pixel requests with an error"

# -- report ----------------------------------------------------------------

bench_say ""
awk -v dom="$DOM" -v uno="$UNO" -v n="$N" -v warm="$WARM" \
    -v dt="$DOMAINS_TARGET_MS" -v ut="$UNOPENED_TARGET_MS" \
    -v st="$SLOWDOWN_TARGET_PCT" -v gen="$GEN_SECS" '
function kv(line, arr,    w, i, m, p) {
    delete arr
    m = split(line, w, " ")
    for (i = 1; i <= m; i++) { split(w[i], p, "="); arr[p[1]] = p[2] }
}
function verdict(ok) { return ok ? "met" : "MISSED" }
{
    kv($0, f)
    rps[$1] = f["rps"]; p99[$1] = f["p99_us"] / 1000
    qmed[$1] = f["q_median_ms"]; qn[$1] = f["q_n"]
}
END {
    kv(dom, d); kv(uno, u)
    base = (rps["alone-1"] + rps["alone-2"]) / 2
    sd = base > 0 ? 100 * (1 - rps["with-domains"] / base) : 0
    su = base > 0 ? 100 * (1 - rps["with-unopened"] / base) : 0
    printf "%-18s %9s %9s %9s %12s %10s\n", "report", "cold ms",
        "warm ms", "max ms", "loaded ms", "bytes"
    printf "%-18s %9.1f %9.1f %9.1f %12.1f %10d\n", "/api/v1/domains",
        d["first_ms"], d["median_ms"], d["max_ms"], qmed["with-domains"],
        d["bytes"]
    printf "%-18s %9.1f %9.1f %9.1f %12.1f %10d\n", "/api/v1/unopened",
        u["first_ms"], u["median_ms"], u["max_ms"], qmed["with-unopened"],
        u["bytes"]
    printf "(warm: median of %d after the first; loaded: median while" \
        " the pixel load runs)\n\n", warm
    printf "%-18s %9s %9s %12s\n", "pixel load", "req/s", "p99 ms",
        "slowdown"
    printf "%-18s %9.0f %9.2f %12s\n", "alone (A, twice)", base,
        (p99["alone-1"] + p99["alone-2"]) / 2, "-"
    printf "%-18s %9.0f %9.2f %11.1f%%\n", "with domains", \
        rps["with-domains"], p99["with-domains"], sd
    printf "%-18s %9.0f %9.2f %11.1f%%\n", "with unopened", \
        rps["with-unopened"], p99["with-unopened"], su
    if (gen == "-")
        printf "\ngenerator: not run (database reused)\n\n"
    else
        printf "\ngenerator: %d messages in %.1f s\n\n", n, gen
    printf "target domains warm < %d ms: %s (%.1f ms)\n", dt,
        verdict(d["median_ms"] < dt), d["median_ms"]
    printf "target unopened warm < %d ms: %s (%.1f ms)\n", ut,
        verdict(u["median_ms"] < ut), u["median_ms"]
    printf "target pixel slowdown with domains <= %d%%: %s (%.1f%%)\n",
        st, verdict(sd <= st), sd
    printf "target pixel slowdown with unopened <= %d%%: %s (%.1f%%)\n",
        st, verdict(su <= st), su
}' "$RESULTS"
