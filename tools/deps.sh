#!/bin/sh
# deps.sh - install the Debian packages Beacon needs to build, run and test.
#
# Installs only what is missing (asks dpkg-query), runs `apt-get update`
# once and only when something is missing, and goes through sudo when not
# root.  Prints nothing when everything is already there.
#
# `deps.sh run` installs what building and serving need (npm included: the
# build fetches the dashboard's chart library); `deps.sh test` (the
# default) adds what the tests drive: Chromium for the browser tests, wrk
# and nginx for the benchmark smoke test, clang and its runtime libraries
# (libFuzzer, ASan, UBSan) for the fuzz targets.  BEACON_NO_BROWSER=1 leaves
# out Chromium; `make test` fails without it.
set -eu

packages="build-essential cmake make pkg-config
    libmicrohttpd-dev libsodium-dev libsqlite3-dev libcjson-dev libidn2-dev
    libicu-dev libpsl-dev python3 curl"
# The build copies the dashboard's chart library from npm and the
# dashboard test runs Playwright from npm.  A Node.js from elsewhere
# (NodeSource bundles npm) is used as it is; only when there is no npm at
# all are Debian's nodejs and npm installed.
if ! command -v npm >/dev/null 2>&1; then
    packages="$packages nodejs npm"
fi
if [ "${1:-test}" = test ]; then
    packages="$packages wrk nginx clang-14 libclang-rt-14-dev"
    if [ "${BEACON_NO_BROWSER:-0}" != 1 ]; then
        packages="$packages chromium"
    fi
fi

missing=""
for p in $packages; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "deps.sh: missing packages:$missing; run as root or install sudo" >&2
    exit 1
fi

echo "deps.sh: installing$missing"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086  # the list is meant to split into words
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
