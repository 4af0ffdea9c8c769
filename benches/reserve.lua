-- wrk script for POST /v1/inventory/allocations: every request a new allocation of 1 unit.
--   wrk ... -s benches/reserve.lua URL -- KEY spread RUN_ID SKUS   SKU-1..SKUS in turn
--   wrk ... -s benches/reserve.lua URL -- KEY hot RUN_ID            every request the SKU HOT
-- Prints one line: RESULT requests=.. rps=.. p50_ms=.. p99_ms=.. ok=.. other=..

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local template = [[{"allocationId":"%s","lines":[{"sku":"%s","quantity":1}],"destination":{"country":"US","state":"%s"}}]]
local states = {"NY", "CA", "TX", "NJ"}

function init(args)
  key, mode, run, skus = args[1], args[2], args[3], tonumber(args[4] or "1")
  n = 0
  ok = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  n = n + 1
  local sku = "HOT"
  if mode == "spread" then
    sku = string.format("SKU-%d", ((n * 7 + tid) % skus) + 1)
  end
  local id = string.format("A-%s-%d-%d", run, tid, n)
  return wrk.format(nil, "/v1/inventory/allocations", nil,
    string.format(template, id, sku, states[(n % 4) + 1]))
end

function response(status, headers, body)
  if status == 201 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
  end
  io.write(string.format("RESULT requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f ok=%d other=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, total_ok, total_other))
end
