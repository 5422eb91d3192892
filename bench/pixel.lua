-- bench/pixel.lua - the wrk script of bench/pixel.sh.
--
--   wrk -t1 -cC -dD -s pixel.lua URL -- TOKENS ACTIVE_SECONDS
--
-- TOKENS holds one request path a line ("/p/TOKEN.gif"); each request
-- takes the next one, wrapping around, so consecutive requests fetch
-- different valid tokens.  nginx's empty_gif ignores the path, so the
-- same list serves both servers.
--
-- ACTIVE_SECONDS (a little less than wrk's -d) ends the measured window:
-- from then on every new request is sent without the blank line that ends
-- its header.  The server waits for the rest, answers nothing and records
-- nothing, so when wrk stops no counted request is still in flight: every
-- GET the server answered is one wrk counted, which the "no open lost"
-- check needs.  The rate is requests / the active window.
--
-- done() prints one machine-readable line:
--   BENCH requests= non2xx= connect= read= write= timeout= sent=
--         active_us= duration_us= p50_us= p99_us= max_us=
-- requests counts complete answers, non2xx those with status > 399 (wrk's
-- own count), sent the complete requests written.

local ffi = require("ffi")

ffi.cdef [[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clock_id, struct bench_timespec *tp);
]]

local CLOCK_MONOTONIC = 1
local CHECK_EVERY = 32          -- requests between two clock reads

local ts = ffi.new("struct bench_timespec")
local requests = {}
local count = 0
local pos = 0
local active_us = 0
local stall = nil
local stalled = false

-- Per-thread figures, read by done() through thread:get().
sent = 0
t_first = 0
t_stop = 0

-- wrk calls the first thread's request() once before the run, only to
-- check what it returns; setup() sets this so that call is not counted.
verify_call = false

local function now_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

function init(args)
    local path = args[1]
    local seconds = tonumber(args[2] or "")

    if path == nil or seconds == nil then
        error("usage: -- TOKENS ACTIVE_SECONDS")
    end
    active_us = seconds * 1000000
    -- Whole requests are built once: request() only picks one.
    for line in io.lines(path) do
        if line ~= "" then
            count = count + 1
            requests[count] = wrk.format("GET", line)
        end
    end
    if count == 0 then
        error("no request paths in " .. path)
    end
    -- The same request without its final CRLF: a header never finished.
    stall = string.sub(requests[1], 1, -3)
end

function request()
    if stalled then
        return stall
    end
    if verify_call then
        verify_call = false
        return requests[1]
    end
    if t_first == 0 then
        t_first = now_us()
    end
    if sent % CHECK_EVERY == 0 and now_us() - t_first >= active_us then
        stalled = true
        t_stop = now_us()
        return stall
    end
    sent = sent + 1
    pos = pos % count + 1
    return requests[pos]
end

local threads = {}

function setup(thread)
    thread:set("verify_call", #threads == 0)
    threads[#threads + 1] = thread
end

function done(summary, latency, _)
    local total_sent = 0
    local active = 0
    local e = summary.errors

    for _, t in ipairs(threads) do
        local first = t:get("t_first")
        local stop = t:get("t_stop")

        total_sent = total_sent + t:get("sent")
        if stop == 0 then
            -- The window never closed: in-flight requests may be lost
            -- to the count; pixel.sh reports sent != requests.
            active = summary.duration
        elseif stop - first > active then
            active = stop - first
        end
    end
    io.write(string.format(
        "BENCH requests=%d non2xx=%d connect=%d read=%d write=%d"
        .. " timeout=%d sent=%d active_us=%d duration_us=%d p50_us=%d"
        .. " p99_us=%d max_us=%d\n",
        summary.requests, e.status, e.connect, e.read, e.write,
        e.timeout, total_sent, active, summary.duration,
        latency:percentile(50), latency:percentile(99), latency.max))
end
