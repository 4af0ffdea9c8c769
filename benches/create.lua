-- wrk script for POST /v1/waybills.
--   wrk ... -s benches/create.lua URL -- KEY new RUN_ID     every request a new reference
--   wrk ... -s benches/create.lua URL -- KEY replay N       cycles through BENCH-REPLAY-1..N
-- Prints one line: RESULT requests=.. rps=.. p50_ms=.. p99_ms=.. ok=.. other=..

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local template = [[{"referenceNumber":"%s","channel":"SANDBOX_EXPRESS",
"shipper":{"name":"Li Wei","company":"Shenzhen Export Co","phone":"+86 755 8888 1234","street1":"88 Keji Road","city":"Shenzhen","state":"Guangdong","postalCode":"518057","country":"CN"},
"consignee":{"name":"Jane Doe","phone":null,"street1":"742 Evergreen Terrace","city":"Los Angeles","state":"CA","postalCode":"90001","country":"US"},
"parcels":[{"weightGrams":1200}],
"customs":{"currency":"USD","incoterm":"DDU","items":[{"description":"Cotton T-shirt","hsCode":"610910","quantity":2,"unitValue":"9.90","weightGrams":300,"originCountry":"CN"}]}}]]

function init(args)
  key, mode, arg = args[1], args[2], args[3]
  n = 0
  ok = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  n = n + 1
  local ref
  if mode == "replay" then
    ref = string.format("BENCH-REPLAY-%d", ((n * 7 + tid) % tonumber(arg)) + 1)
  else
    ref = string.format("BENCH-%s-%d-%d", arg, tid, n)
  end
  return wrk.format(nil, "/v1/waybills", nil, string.format(template, ref))
end

function response(status, headers, body)
  local want = (mode == "replay") and 200 or 201
  if status == want then ok = ok + 1 else other = other + 1 end
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
