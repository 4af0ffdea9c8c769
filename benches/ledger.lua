-- wrk script for the ledger: one transfer per request, or batches of transfers.
--   wrk ... -s benches/ledger.lua URL -- KEY one RUN_ID ACCOUNTS      POST /v1/ledger/transfers
--   wrk ... -s benches/ledger.lua URL -- KEY batch RUN_ID ACCOUNTS N  POST /v1/ledger/transfer-batches
-- Each transfer moves 1 minor unit between two of ACCOUNTS accounts (bench-0..) with a new id.
-- Prints one line: RESULT requests=.. rps=.. transfers_per_s=.. p50_ms=.. p99_ms=.. ok=.. other=..

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  key, mode, run, accounts = args[1], args[2], args[3], tonumber(args[4])
  per = tonumber(args[5] or "1")
  n = 0
  ok = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

local function transfer(i)
  local d = i % accounts
  local c = (i + 1 + math.floor(i / accounts) % (accounts - 1)) % accounts
  if c == d then c = (d + 1) % accounts end
  return string.format([[{"id":"%s-%d-%d","debitAccount":"bench-%d","creditAccount":"bench-%d","amount":1}]],
    run, tid, i, d, c)
end

function request()
  if mode == "one" then
    n = n + 1
    return wrk.format(nil, "/v1/ledger/transfers", nil, transfer(n))
  end
  local parts = {}
  for k = 1, per do
    n = n + 1
    parts[k] = transfer(n)
  end
  return wrk.format(nil, "/v1/ledger/transfer-batches", nil, '{"transfers":[' .. table.concat(parts, ",") .. "]}")
end

function response(status, headers, body)
  if status == 200 or status == 201 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
  end
  local secs = summary.duration / 1e6
  local per = threads[1]:get("per")
  io.write(string.format("RESULT requests=%d rps=%.1f transfers_per_s=%.0f p50_ms=%.1f p99_ms=%.1f ok=%d other=%d\n",
    summary.requests, summary.requests / secs, total_ok * per / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, total_ok, total_other))
end
