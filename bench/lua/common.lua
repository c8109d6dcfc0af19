-- Shared by every scenario (each scenario script starts with dofile of this file).
--
-- Environment (set by bench/run.py):
--   BENCH_DATA         a Lua file returning the run's tokens, products, cart lines and vocabulary
--   BENCH_SEED         makes each run's random sequence its own
--   BENCH_THREAD_RATE  if set: pace each wrk thread to this many requests/s (wrk's delay() hook);
--                      unset: closed loop, every connection sends its next request at once (saturation)
--
-- done() prints one line "BENCH_JSON {...}" with the totals, the latency percentiles and a histogram
-- of status codes, which bench/run.py parses.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

DATA = dofile(os.getenv("BENCH_DATA"))

-- A different random sequence per thread and per run (BENCH_SEED): each Lua state starts seeded
-- alike, and a run that replayed the previous run's searches would only measure the cache.
local run_seed = tonumber(os.getenv("BENCH_SEED") or "1")
function bench_seed(id)
  math.randomseed(run_seed * 7919 + id * 104729 + 17)
end

function pick(list)
  return list[math.random(#list)]
end

-- Status histogram of this thread, read by done() in the main state through thread:get().
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

-- Pacing: the thread hands out send slots at a fixed rate, shared by its connections; a connection
-- that finishes asks delay() how long to wait for the next free slot. Slots missed while every
-- connection was busy are not made up later, so the offered rate never exceeds the target.
local thread_rate = tonumber(os.getenv("BENCH_THREAD_RATE") or "")
if thread_rate and thread_rate > 0 then
  local interval = 1000 / thread_rate
  local next_slot = 0
  function delay()
    local now = now_ms()
    if next_slot < now then next_slot = now end
    local wait = next_slot - now
    next_slot = next_slot + interval
    return math.floor(wait + 0.5)
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  bench_seed(thread_id or 1)
  if bench_init then bench_init(args) end
end

-- A minimal JSON encoder: numbers, strings, booleans and nested tables (arrays when keyed 1..n).
local function encode(value)
  local kind = type(value)
  if kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then return "null" end
    return string.format("%.17g", value)
  elseif kind == "string" then
    return '"' .. value:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif kind == "boolean" then
    return tostring(value)
  elseif kind == "table" then
    if #value > 0 then
      local parts = {}
      for _, item in ipairs(value) do table.insert(parts, encode(item)) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local parts = {}
    for key, item in pairs(value) do table.insert(parts, encode(tostring(key)) .. ":" .. encode(item)) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

function done(summary, latency, requests)
  local merged = {}
  local extra = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      merged[tostring(status)] = (merged[tostring(status)] or 0) + count
    end
    if bench_collect then bench_collect(thread, extra) end
  end
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    errors = summary.errors,
    statuses = merged,
    latency_us = {
      min = latency.min, max = latency.max, mean = latency.mean, stdev = latency.stdev,
      p50 = latency:percentile(50), p90 = latency:percentile(90), p95 = latency:percentile(95),
      p99 = latency:percentile(99), p999 = latency:percentile(99.9),
    },
    extra = extra,
  }
  if bench_finish then bench_finish(out) end
  io.write("BENCH_JSON " .. encode(out) .. "\n")
end
