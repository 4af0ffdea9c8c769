-- wrk script for GET /v1/tracking/{number} over random numbers from a file (one per line).
--   wrk ... -s benches/tracking.lua URL -- KEY NUMBERS_FILE
-- Prints one line: RESULT requests=.. rps=.. p50_ms=.. p99_ms=.. ok=.. other=..

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  local key, file = args[1], args[2]
  numbers = {}
  for line in io.lines(file) do
    if #line > 0 then numbers[#numbers + 1] = line end
  end
  math.randomseed(os.time() + tid)
  ok = 0
  other = 0
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  return wrk.format("GET", "/v1/tracking/" .. numbers[math.random(#numbers)])
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
  end
  io.write(string.format("RESULT requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f ok=%d other=%d errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, total_ok, total_other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
