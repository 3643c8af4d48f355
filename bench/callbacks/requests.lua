-- wrk script: cycle through pre-generated callbacks, one distinct message per request.
--
--   wrk -t1 -c64 -d15s -s requests.lua URL -- FILE BYTE_OFFSET STEP LIMIT
--
-- FILE has one request a line, "PATH?QUERY<TAB>BODY" (see messages.py). The script reads it
-- from BYTE_OFFSET (the start of a line; 0 by default), at most LIMIT lines (0 or none: to the
-- end), and formats every request once, in init, so that request() only hands out a ready
-- string. Thread k of n sends the loaded lines k, k+n, ... (STEP is n) so no two threads send
-- the same message; past the last loaded line it starts again from the first. done() prints
-- one line "BENCH {json}" with the figures the runner reads, and how many lines were loaded.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local reqs = {}
local count = 0
local next_index = 0
local step = 1
local verifying = false
issued = 0
loaded = 0

function init(args)
  local file = assert(io.open(args[1], "r"))
  local offset = tonumber(args[2] or "0")
  step = tonumber(args[3] or "1")
  local limit = tonumber(args[4] or "0")
  local headers = { ["Content-Type"] = "text/xml" }
  file:seek("set", offset)
  for line in file:lines() do
    if limit > 0 and count >= limit then
      break
    end
    local tab = line:find("\t", 1, true)
    count = count + 1
    reqs[count] = wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
  end
  file:close()
  loaded = count
  next_index = id
  -- wrk calls request() once on thread 0 to verify it, before any connection: that call
  -- must not use up a message, or the first message of every run would never be sent.
  verifying = id == 0
end

function request()
  local r = reqs[(next_index % count) + 1]
  if verifying then
    verifying = false
    return r
  end
  next_index = next_index + step
  issued = issued + 1
  return r
end

function done(summary, latency, requests)
  local sent = 0
  local lines = 0
  for _, thread in ipairs(threads) do
    sent = sent + thread:get("issued")
    lines = math.max(lines, thread:get("loaded"))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "issued": %d, "loaded": %d, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors": {"connect": %d, '
      .. '"read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, sent, lines, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean, e.connect,
    e.read, e.write, e.status, e.timeout))
end
