# shellcheck shell=bash
# bench/lib.sh - helpers shared by the bench/ scripts.  Source it from a
# bash script that runs with `set -euo pipefail`.
#
# Everything here talks to 127.0.0.1 only, waits for a bounded time, and
# signals only the processes whose ids the caller hands it.  Python parts
# use the standard library only.

BENCH_PY=${BENCH_PY:-python3}

bench_say()
{
    printf '%s\n' "$*"
}

bench_die()
{
    printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2
    exit 2
}

# Finds a command: prints its path, or nothing.  Debian keeps some
# daemons (nginx) in /usr/sbin, which a normal user's PATH may lack.
bench_find_tool()
{
    local name=$1 path

    if path=$(command -v "$name" 2>/dev/null); then
        printf '%s\n' "$path"
        return 0
    fi
    for path in "/usr/sbin/$name" "/sbin/$name"; do
        if [ -x "$path" ]; then
            printf '%s\n' "$path"
            return 0
        fi
    done
    return 1
}

# A TCP port free on 127.0.0.1 right now (the kernel's pick).
bench_free_port()
{
    "$BENCH_PY" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# Waits until 127.0.0.1:PORT accepts a connection, for at most SECS.
bench_wait_port()
{
    local port=$1 secs=$2 pid=${3:-}

    "$BENCH_PY" - "$port" "$secs" "$pid" <<'EOF'
import os, socket, sys, time
port, secs, pid = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + secs
while time.monotonic() < deadline:
    if pid and not os.path.exists("/proc/" + pid):
        sys.exit("process %s exited before listening" % pid)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.02)
sys.exit("nothing listens on 127.0.0.1:%d after %ss" % (port, secs))
EOF
}

# Is PID still running (and not a zombie we have not reaped)?
bench_alive()
{
    local pid=$1 state

    [ -r "/proc/$pid/stat" ] || return 1
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" \
        2>/dev/null) || return 1
    [ "$state" != Z ]
}

# Sends SIGNAL to PID (one we started) and waits up to SECS for it to
# exit; then SIGKILL.  Returns 0 when it exited within SECS.
bench_stop_pid()
{
    local pid=$1 sig=$2 secs=$3 i

    bench_alive "$pid" || return 0
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 20; i++)); do
        bench_alive "$pid" || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}

# Prints a field of /proc/PID/status in KiB (VmHWM, VmRSS, ...).
bench_vm_kib()
{
    local pid=$1 field=$2

    awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status"
}

# CPU time used so far by PID and all its threads, in clock ticks.
bench_cpu_ticks()
{
    local pid=$1

    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat"
}

# "TOTAL STEAL" clock ticks of /proc/stat's line for CPU (cpu1, or cpu
# for the whole machine): steal is time a virtual machine's CPU was
# runnable but given to another guest, which makes runs slower.
bench_cpu_steal()
{
    local cpu=$1

    awk -v c="$cpu" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i
        print t, $9 }' /proc/stat
}

# Starts `beacon serve` on a free loopback port with its files in DIR;
# extra flags follow DIR.  Sets BEACON_PID and BEACON_PORT.
# BENCH_PIN_SERVER, when set, is a command prefix such as "taskset -c 1"
# (a plain word list).
bench_start_beacon()
{
    local bin=$1 dir=$2 i url
    shift 2

    : >"$dir/beacon.out"
    # shellcheck disable=SC2086
    ${BENCH_PIN_SERVER:-} "$bin" serve --listen 127.0.0.1:0 \
        --db "$dir/beacon.db" --key-file "$dir/signing.key" \
        --api-key-file "$dir/api.key" "$@" \
        >"$dir/beacon.out" 2>"$dir/beacon.err" </dev/null &
    BEACON_PID=$!
    for ((i = 0; i < 200; i++)); do
        url=$(awk 'NR == 1 && $1 == "beacon" && $3 == "serving" { print $4 }' \
            "$dir/beacon.out") || url=
        [ -n "$url" ] && break
        bench_alive "$BEACON_PID" || break
        sleep 0.05
    done
    if [ -z "$url" ]; then
        sed -n '1,20p' "$dir/beacon.err" >&2
        bench_die "beacon did not start (see above)"
    fi
    BEACON_PORT=${url##*:}
    BEACON_PORT=${BEACON_PORT%%/*}
}

# Registers N messages through POST /api/v1/messages over one keep-alive
# connection and writes their pixel paths (/p/TOKEN.gif), one a line, to
# OUT.  Recipients spread over 50 domains.
bench_register()
{
    local port=$1 key_file=$2 n=$3 out=$4

    "$BENCH_PY" - "$port" "$key_file" "$n" "$out" <<'EOF'
import http.client, json, sys, urllib.parse
port, key_file, n, out = sys.argv[1:5]
with open(key_file, encoding="utf-8") as f:
    key = f.read().strip()
hdrs = {"Authorization": "Bearer " + key,
        "Content-Type": "application/json"}
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
with open(out, "w", encoding="ascii") as f:
    for i in range(int(n)):
        body = json.dumps({"ticket_id": "bench-%d" % i,
                           "recipient": "reader%d@d%d.example" % (i, i % 50),
                           "customer": {"value": i % 1000}})
        conn.request("POST", "/api/v1/messages", body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 201:
            sys.exit("POST /api/v1/messages: %d %r" % (resp.status, data[:200]))
        path = urllib.parse.urlsplit(json.loads(data)["pixel_url"]).path
        f.write(path + "\n")
conn.close()
EOF
}

# GET /api/v1/stats: prints "name=value" words on one line.
bench_beacon_stats()
{
    local port=$1 key_file=$2

    "$BENCH_PY" - "$port" "$key_file" <<'EOF'
import http.client, json, sys
port, key_file = sys.argv[1:3]
with open(key_file, encoding="utf-8") as f:
    key = f.read().strip()
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
conn.request("GET", "/api/v1/stats", headers={"Authorization": "Bearer " + key})
resp = conn.getresponse()
data = resp.read()
if resp.status != 200:
    sys.exit("GET /api/v1/stats: %d" % resp.status)
doc = json.loads(data)
print(" ".join("%s=%d" % (k, v) for k, v in doc.items()))
EOF
}

# Sum of the GET fetches stored on every message (every class but
# head_probe, which HEAD requests get and which is no open).
bench_stored_fetches()
{
    local db=$1
    local sql="SELECT coalesce(sum(n_human + n_proxy + n_privacy_prefetch
        + n_scanner + n_internal), 0) FROM messages;"

    if command -v sqlite3 >/dev/null 2>&1; then
        sqlite3 -readonly "$db" "$sql"
    else
        "$BENCH_PY" - "$db" "$sql" <<'EOF'
import sqlite3, sys
conn = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print(conn.execute(sys.argv[2]).fetchone()[0])
EOF
    fi
}
