-- wrk script for POST /v1/orders with batches of 500 orders.
--   wrk ... -s benches/orders.lua URL -- KEY new RUN_ID    every batch 500 new orders
--   wrk ... -s benches/orders.lua URL -- KEY same RUN_ID   8 batches per thread sent again and
--                                                          again (after the first round: unchanged)
-- Prints one line: RESULT requests=.. rps=.. orders_per_s=.. unchanged_per_s=.. p50_ms=.. p99_ms=.. ok=.. other=..
-- (unchanged_per_s: the orders the answers counted as unchanged)

local threads = {}
local counter = 0
local batch = 500

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local template = [[{"channel":"erp","shop":"bench","externalId":"%s","currency":"USD","total":"19.80",]] ..
  [["placedAt":"2026-12-01T10:00:00Z","buyer":{"email":"b%d@example.com"},]] ..
  [["shipTo":{"name":"Buyer %d","street1":"%d Elm St","city":"Newark","state":"NJ","postalCode":"07102","country":"US"},]] ..
  [["lines":[{"sku":"BENCH-%d","quantity":1,"unitPrice":"19.80","weightGrams":300}]}]]

function init(args)
  key, mode, run = args[1], args[2], args[3]
  n = 0
  ok = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  n = n + 1
  local round = n
  if mode == "same" then round = n % 8 end
  local parts = {}
  for k = 1, batch do
    local id = string.format("%s-%s-%d-%d-%d", mode, run, tid, round, k)
    parts[k] = string.format(template, id, k, k, k, k % 50)
  end
  return wrk.format(nil, "/v1/orders", nil, '{"orders":[' .. table.concat(parts, ",") .. "]}")
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
  -- Orders the answer counts as unchanged (what the "same" case measures).
  unchanged = (unchanged or 0) + (tonumber(body:match('"unchanged":(%d+)')) or 0)
end

function done(summary, latency, requests)
  local total_ok, total_other, total_unchanged = 0, 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
    total_unchanged = total_unchanged + (t:get("unchanged") or 0)
  end
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT requests=%d rps=%.1f orders_per_s=%.0f unchanged_per_s=%.0f p50_ms=%.1f p99_ms=%.1f ok=%d other=%d\n",
    summary.requests, summary.requests / secs, total_ok * batch / secs, total_unchanged / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, total_ok, total_other))
end
