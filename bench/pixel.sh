#!/usr/bin/env bash
# bench/pixel.sh - Beacon's pixel path against nginx's empty_gif.
#
# Starts Beacon on a fresh temporary database with N registered messages
# and nginx (a constant GIF from memory, access log on) on another
# loopback port, then runs wrk against both in turn, A B A B, with
# keep-alive and with "Connection: close"; every request fetches a
# different valid token.  Prints requests/s, p50 and p99 latency, the
# ratio Beacon/nginx per mode, Beacon's peak RSS (also with 1,000 idle
# connections open), and checks that Beacon stored every open wrk counted
# a 200 answer for (and none it did not send).  Exits 1 when an open was
# lost (or Beacon answered anything but 200), 2 on a usage or setup
# error.
#
# Needs (Debian packages): wrk, nginx, python3; taskset (util-linux) to
# pin; sqlite3 is used when present.  Installs nothing.  All traffic is on
# 127.0.0.1; every wait is bounded; only the processes started here are
# signalled, and the temporary directory is removed on exit.
set -euo pipefail

BENCH_NAME=pixel.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

usage()
{
    cat <<EOF
usage: bench/pixel.sh [options]

  --beacon PATH       beacon binary (env BEACON_BIN; default build/beacon)
  --n N               messages registered, tokens walked (env BENCH_N;
                      default 20000)
  --duration S        seconds per measured wrk run (env BENCH_DURATION;
                      default 10)
  --warmup S          seconds of the discarded run before each measured
                      one (env BENCH_WARMUP; default 2)
  --connections C     wrk connections (env BENCH_CONNECTIONS; default 50)
  --pairs P           Beacon/nginx pairs per mode (env BENCH_PAIRS;
                      default 3)
  --idle C            idle connections for the RSS step
                      (env BENCH_IDLE; default 1000)
  --smoke             a few seconds: --n 200 --duration 1 --warmup 1
                      --pairs 1 (later options still apply)
  --keep              keep the temporary directory (logs, database)
  -h, --help          this text

Extra flags for \`beacon serve\` can be given in BENCH_BEACON_ARGS.
EOF
}

N=${BENCH_N:-20000}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-50}
PAIRS=${BENCH_PAIRS:-3}
IDLE=${BENCH_IDLE:-1000}
KEEP=0
BEACON=${BEACON_BIN:-}
TAIL=0.3            # seconds at the end of a wrk run with nothing sent

need_arg()
{
    [ $# -ge 2 ] || bench_die "$1 needs a value (see --help)"
}

while [ $# -gt 0 ]; do
    case $1 in
    --beacon) need_arg "$@"; BEACON=$2; shift 2 ;;
    --n) need_arg "$@"; N=$2; shift 2 ;;
    --duration) need_arg "$@"; DURATION=$2; shift 2 ;;
    --warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
    --connections) need_arg "$@"; CONNS=$2; shift 2 ;;
    --pairs) need_arg "$@"; PAIRS=$2; shift 2 ;;
    --idle) need_arg "$@"; IDLE=$2; shift 2 ;;
    --smoke) N=200; DURATION=1; WARMUP=1; PAIRS=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bench_die "unknown option: $1 (see --help)" ;;
    esac
done

for v in N DURATION WARMUP CONNS PAIRS IDLE; do
    case ${!v} in
    ''|*[!0-9]*|0*) bench_die "$v must be a positive integer, not '${!v}'" ;;
    esac
done

# -- tools -----------------------------------------------------------------

missing=()
WRK=$(bench_find_tool wrk) || missing+=("wrk (Debian package wrk)")
NGINX=$(bench_find_tool nginx) || missing+=("nginx (Debian package nginx)")
command -v "$BENCH_PY" >/dev/null 2>&1 ||
    missing+=("python3 (Debian package python3)")
command -v timeout >/dev/null 2>&1 ||
    missing+=("timeout (Debian package coreutils)")
if [ -z "$BEACON" ]; then
    if [ -x "$root/build/beacon" ]; then
        BEACON=$root/build/beacon
    else
        BEACON=$(command -v beacon 2>/dev/null) || BEACON=
    fi
fi
[ -n "$BEACON" ] && [ -x "$BEACON" ] ||
    missing+=("beacon binary (build it, or give --beacon PATH)")
if [ ${#missing[@]} -gt 0 ]; then
    printf '%s: missing:\n' "$BENCH_NAME" >&2
    printf '  %s\n' "${missing[@]}" >&2
    printf 'Install with: sudo apt-get install wrk nginx python3\n' >&2
    exit 2
fi

# wrk in front on cpu 0, the server under test alone on cpu 1: unpinned,
# the scheduler moves them around and runs of the same server vary by 2x.
PIN_WRK=
BENCH_PIN_SERVER=
SERVER_CPU=cpu
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    PIN_WRK="taskset -c 0"
    BENCH_PIN_SERVER="taskset -c 1"
    SERVER_CPU=cpu1
    pinning="servers on cpu 1, wrk on cpu 0"
else
    pinning="not pinned (needs 2 CPUs and taskset)"
fi

# Beacon and the idle-connection step each need more than 1,000 files.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then
    hard=65536
fi
[ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$hard" ] &&
    ulimit -Sn "$hard"
if [ "$IDLE" -gt $((hard - 64)) ]; then
    bench_say "note: open files limited to $hard; idle step uses" \
        "$((hard - 64)) connections"
    IDLE=$((hard - 64))
fi
CLK_TCK=$(getconf CLK_TCK)

# -- clean-up --------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/beacon-pixel.XXXXXX")
BEACON_PID=
NGINX_PID=

cleanup()
{
    local rc=$?

    trap - EXIT
    if [ -n "$NGINX_PID" ]; then
        bench_stop_pid "$NGINX_PID" TERM 5 || true
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

# -- servers ---------------------------------------------------------------

start_nginx()
{
    local port

    port=$(bench_free_port)
    sed -e "s|@DIR@|$TMP|g" -e "s|@PORT@|$port|g" \
        "$here/nginx.conf.in" >"$TMP/nginx.conf"
    if ! "$NGINX" -t -q -p "$TMP" -e "$TMP/nginx-error.log" \
        -c "$TMP/nginx.conf" 2>"$TMP/nginx-test.err"; then
        cat "$TMP/nginx-test.err" >&2
        bench_die "nginx rejected the generated $TMP/nginx.conf (above)"
    fi
    # shellcheck disable=SC2086
    $BENCH_PIN_SERVER "$NGINX" -p "$TMP" -e "$TMP/nginx-error.log" \
        -c "$TMP/nginx.conf" >"$TMP/nginx.out" 2>&1 </dev/null &
    NGINX_PID=$!
    NGINX_PORT=$port
    bench_wait_port "$port" 10 "$NGINX_PID" ||
        bench_die "nginx did not start: $(tail -n 3 "$TMP/nginx-error.log")"
}

bench_say "beacon:  $BEACON"
bench_say "nginx:   $NGINX ($("$NGINX" -v 2>&1 | sed 's/^nginx version: //'))"
bench_say "wrk:     $WRK ($("$WRK" -v 2>&1 | head -n 1 | awk '{ print $2 }'))"
bench_say "machine: $ncpu CPUs, $pinning"
bench_say "runs:    $N tokens, ${CONNS} connections, ${WARMUP}s warm-up +" \
    "${DURATION}s measured, $PAIRS pairs per mode"

# Every connection here, wrk's and the idle ones, comes from 127.0.0.1:
# the per-address limit would cut the idle step short.  The queue keeps
# its default size: under overload a pixel waits for room, and a bigger
# queue only makes each wait longer (p99), not the writer faster.
# shellcheck disable=SC2086
bench_start_beacon "$BEACON" "$TMP" --max-connections-per-ip 0 \
    ${BENCH_BEACON_ARGS:-}
t0=$(date +%s.%N)
bench_register "$BEACON_PORT" "$TMP/api.key" "$N" "$TMP/tokens.txt" ||
    bench_die "registering $N messages failed"
t1=$(date +%s.%N)
bench_say "registered $N messages in $(awk -v a="$t0" -v b="$t1" \
    'BEGIN { printf "%.1f", b - a }')s"
start_nginx

# -- wrk runs --------------------------------------------------------------

RESULTS=$TMP/results.txt
: >"$RESULTS"
run_no=0

# run_wrk SERVER MODE KIND PAIR SECONDS: one wrk run; appends
# "SERVER MODE KIND PAIR BENCH-words server_cpu= wrk_cpu= steal=" to
# RESULTS: CPU use of the server and of wrk over the whole wrk run (its
# idle start and tail included, so a little low), in % of one core, and
# the steal on the server's CPU over the same time.
run_wrk()
{
    local server=$1 mode=$2 kind=$3 pair=$4 secs=$5
    local port pid active hdr=() out tfile c0 c1 s0 s1 rc=0 line
    local TIMEFORMAT='%R %U %S'

    if [ "$server" = beacon ]; then
        port=$BEACON_PORT pid=$BEACON_PID
    else
        port=$NGINX_PORT pid=$NGINX_PID
    fi
    [ "$mode" = close ] && hdr=(-H "Connection: close")
    active=$(awk -v s="$secs" -v t="$TAIL" 'BEGIN { print s - t }')
    run_no=$((run_no + 1))
    out=$TMP/wrk-$run_no.out
    tfile=$TMP/wrk-$run_no.time

    c0=$(bench_cpu_ticks "$pid")
    s0=$(bench_cpu_steal "$SERVER_CPU")
    # shellcheck disable=SC2086
    { time timeout $((secs + 30)) $PIN_WRK "$WRK" -t1 -c"$CONNS" \
        -d"${secs}s" --timeout 2s --latency "${hdr[@]}" \
        -s "$here/pixel.lua" "http://127.0.0.1:$port/" \
        -- "$TMP/tokens.txt" "$active" >"$out" 2>&1 || rc=$?; } 2>"$tfile"
    c1=$(bench_cpu_ticks "$pid")
    s1=$(bench_cpu_steal "$SERVER_CPU")
    line=$(grep '^BENCH ' "$out" || true)
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        cat "$out" >&2
        bench_die "wrk against $server ($mode) failed (exit $rc)"
    fi
    line=${line#BENCH }
    awk -v l="$line" -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" \
        -v s0="$s0" -v s1="$s1" -v head="$server $mode $kind $pair" '
        {
            split(l, w, " ")
            for (i in w) { split(w[i], kv, "="); f[kv[1]] = kv[2] }
            wall = $1 > 0 ? $1 : 1
            split(s0, a, " "); split(s1, b, " ")
            st = b[1] > a[1] ? 100 * (b[2] - a[2]) / (b[1] - a[1]) : 0
            printf "%s %s server_cpu=%.0f wrk_cpu=%.0f steal=%.0f\n",
                head, l, 100 * (c1 - c0) / hz / wall,
                100 * ($2 + $3) / wall, st
        }' "$tfile" >>"$RESULTS"
    if [ "$kind" = main ]; then
        tail -n 1 "$RESULTS" | awk '
        {
            for (i = 5; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            printf "  %-10s %-6s pair %d: %7.0f req/s  p50 %6.2f ms" \
                "  p99 %6.2f ms  cpu %3d%% wrk %3d%% steal %2d%%" \
                "  non-2xx %d\n",
                $2, $1, $4, f["requests"] / (f["active_us"] / 1e6),
                f["p50_us"] / 1000, f["p99_us"] / 1000,
                f["server_cpu"], f["wrk_cpu"], f["steal"], f["non2xx"]
        }'
    fi
}

for mode in keepalive close; do
    bench_say "== $mode"
    for ((pair = 1; pair <= PAIRS; pair++)); do
        for server in beacon nginx; do
            run_wrk "$server" "$mode" warmup "$pair" "$WARMUP"
            run_wrk "$server" "$mode" main "$pair" "$DURATION"
        done
    done
done

HWM_RUNS=$(bench_vm_kib "$BEACON_PID" VmHWM)
STATS=$(bench_beacon_stats "$BEACON_PORT" "$TMP/api.key") || STATS="(none)"

# -- idle connections --------------------------------------------------------

# IDLE keep-alive connections, each after one GET of its own token, held
# open while Beacon's memory is read.  Prints "IDLE opened= ok= rss_kib=
# hwm_kib=".
idle_step()
{
    "$BENCH_PY" - "$BEACON_PORT" "$TMP/tokens.txt" "$IDLE" "$BEACON_PID" \
        <<'EOF'
import socket, sys, time
port, tokens, pid = sys.argv[1], sys.argv[2], sys.argv[4]
want = int(sys.argv[3])
paths = [l.strip() for l in open(tokens, encoding="ascii") if l.strip()]
socks, ok = [], 0
deadline = time.monotonic() + 30
try:
    for i in range(want):
        if time.monotonic() > deadline:
            break
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        socks.append(s)
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                   % paths[i % len(paths)]).encode("ascii"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for h in head.split(b"\r\n")[1:]:
            name, _, value = h.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                break
            body += chunk
        if head.startswith(b"HTTP/1.1 200"):
            ok += 1
    time.sleep(0.5)
    vm = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            vm[k] = v.split()[0] if v.split() else ""
    print("IDLE opened=%d ok=%d rss_kib=%s hwm_kib=%s"
          % (len(socks), ok, vm.get("VmRSS", "0"), vm.get("VmHWM", "0")))
finally:
    for s in socks:
        s.close()
EOF
}

IDLE_LINE=$(idle_step) || bench_die "idle-connection step failed"

# -- stop, count -------------------------------------------------------------

# A clean stop writes every queued open before Beacon exits.
kill -TERM "$BEACON_PID"
for ((i = 0; i < 1200; i++)); do
    bench_alive "$BEACON_PID" || break
    sleep 0.05
done
if bench_alive "$BEACON_PID"; then
    bench_die "beacon did not stop within 60s of SIGTERM"
fi
brc=0
wait "$BEACON_PID" || brc=$?
BEACON_PID=
[ "$brc" = 0 ] || bench_die "beacon exited $brc after SIGTERM" \
    "($(tail -n 2 "$TMP/beacon.err"))"
bench_stop_pid "$NGINX_PID" TERM 5 || true
NGINX_PID=

STORED=$(bench_stored_fetches "$TMP/beacon.db")

# -- report ------------------------------------------------------------------

bench_say ""
awk -v hwm="$HWM_RUNS" -v idle="$IDLE_LINE" -v stored="$STORED" \
    -v stats="$STATS" '
function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--)
            a[j + 1] = a[j]
        a[j + 1] = t
    }
    if (n == 0)
        return 0
    if (n % 2)
        return a[(n + 1) / 2]
    return (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { L[key] = (key in L) ? L[key] " " v : v }
{
    delete f
    for (i = 5; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    server = $1; mode = $2; kind = $3; pair = $4
    if (server == "beacon") {
        ok += f["requests"] - f["non2xx"]
        sent += f["sent"]
        bad += f["non2xx"]
        errs += f["connect"] + f["read"] + f["write"] + f["timeout"]
    }
    if (kind != "main")
        next
    rps = f["requests"] / (f["active_us"] / 1e6)
    k = mode SUBSEP server
    add(k SUBSEP "rps", rps)
    add(k SUBSEP "p50", f["p50_us"] / 1000)
    add(k SUBSEP "p99", f["p99_us"] / 1000)
    add(k SUBSEP "cpu", f["server_cpu"])
    add(k SUBSEP "wrk", f["wrk_cpu"])
    add(k SUBSEP "steal", f["steal"])
    R[mode, server, pair] = rps
    P[mode, server, pair] = f["p99_us"]
    pairs[mode] = pair > pairs[mode] ? pair : pairs[mode]
}
END {
    split(idle, iw, " ")
    for (i in iw) { split(iw[i], kv, "="); I[kv[1]] = kv[2] }
    printf "%-22s %-7s %10s %8s %8s %6s %6s %6s\n", "mode", "server",
        "req/s", "p50 ms", "p99 ms", "cpu%", "wrk%", "steal%"
    nm = split("keepalive close", modes, " ")
    for (m = 1; m <= nm; m++) {
        mode = modes[m]
        label = mode == "close" ? "Connection: close" : "keep-alive"
        for (s = 1; s <= 2; s++) {
            server = s == 1 ? "beacon" : "nginx"
            k = mode SUBSEP server
            printf "%-22s %-7s %10.0f %8.2f %8.2f %6.0f %6.0f %6.0f\n",
                label, server, median(L[k SUBSEP "rps"]),
                median(L[k SUBSEP "p50"]), median(L[k SUBSEP "p99"]),
                median(L[k SUBSEP "cpu"]), median(L[k SUBSEP "wrk"]),
                median(L[k SUBSEP "steal"])
        }
    }
    printf "\n"
    for (m = 1; m <= nm; m++) {
        mode = modes[m]
        label = mode == "close" ? "Connection: close" : "keep-alive"
        rl = ""; pl = ""
        for (p = 1; p <= pairs[mode]; p++) {
            r = R[mode, "nginx", p] > 0 ? \
                R[mode, "beacon", p] / R[mode, "nginx", p] : 0
            q = P[mode, "nginx", p] > 0 ? \
                P[mode, "beacon", p] / P[mode, "nginx", p] : 0
            rl = rl (rl == "" ? "" : " ") sprintf("%.3f", r)
            pl = pl (pl == "" ? "" : " ") sprintf("%.3f", q)
        }
        printf "ratio beacon/nginx %-17s req/s %.2f (pairs %s)," \
            " p99 %.2f (pairs %s)\n", label ":", median(rl), rl,
            median(pl), pl
    }
    printf "\nbeacon peak RSS after the runs: %.1f MiB (VmHWM)\n", hwm / 1024
    printf "beacon with %d idle connections open (%d answered 200):" \
        " VmRSS %.1f MiB, VmHWM %.1f MiB\n", I["opened"], I["ok"],
        I["rss_kib"] / 1024, I["hwm_kib"] / 1024
    printf "beacon stats: %s\n", stats
    answered = ok + I["ok"]
    printf "beacon: %d GETs sent by wrk, %d answered 200 (+%d in the idle" \
        " step), %d non-2xx, %d socket errors\n", sent, ok, I["ok"], bad, errs
    status = 0
    if (bad > 0) {
        printf "FAIL: beacon answered %d pixel requests with an error\n", bad
        status = 1
    }
    # wrk stops reading at the end of a run: a request Beacon answered
    # then (and stored) is not counted by wrk, but was sent.  So stored
    # may exceed answered, never the requests sent.
    if (stored == answered) {
        printf "no open lost: %d stored == %d answered\n", stored, answered
    } else if (stored > answered && stored <= sent + I["ok"]) {
        printf "no open lost: %d stored >= %d answered (%d answered as" \
            " wrk stopped, uncounted; %d sent)\n", stored, answered,
            stored - answered, sent + I["ok"]
    } else {
        printf "LOST: %d stored != %d answered (%+d)\n", stored, answered,
            stored - answered
        if (sent != ok)
            printf "  (wrk sent %d GETs but counted %d answers)\n", sent, ok
        status = 1
    }
    exit status
}' "$RESULTS"
