#!/usr/bin/env bash
# End-to-end event lag through the broker, on the release binary: a writer puts RATE events a
# second (tracking events, ~450 bytes, 1,000 aggregates) into the outbox of a SQLite database for
# SECS seconds while shipgate relays them to the broker (tansu, in-memory storage, 3 partitions a
# topic) and its consumers take them back from it (`events.kafka.consume`, a consumer group
# each). Lag is handling time less write time, from shipgate_event_delivery_lag_seconds: printed
# per consumer as the share handled within 0.5 s and 1 s, and the p99 interpolated within its
# bucket.
#   benches/event_lag.sh     (env: RATE=5000 SECS=20 SERVICES=gateway; all consumers:
#                             SERVICES=gateway,inventory,orders,finance)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. scripts/lib/broker.sh
. benches/lib.sh

rate=${RATE:-5000}
secs=${SECS:-20}
services=${SERVICES:-gateway}

services_install curl
broker_install
cargo build --release --quiet --bin shipgate
bin=$PWD/target/release/shipgate
services_start
broker_start
broker_topics lag.waybills lag.tracking lag.orders lag.inventory lag.finance lag.other

dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"; services_stop' EXIT
pid=
export SHIPGATE_DATABASE_URL="sqlite://$dir/shipgate.db" SHIPGATE_LOG__LEVEL=warn
"$bin" migrate >/dev/null
port=$(free_port)
SHIPGATE_LISTEN=127.0.0.1:$port SHIPGATE_EVENTS__KAFKA__BROKERS=$TEST_KAFKA_BROKERS \
  SHIPGATE_EVENTS__KAFKA__TOPIC_PREFIX=lag. SHIPGATE_EVENTS__KAFKA__GROUP_PREFIX=lag. \
  SHIPGATE_EVENTS__POLL_INTERVAL_MS=50 SHIPGATE_SERVICES="$services" \
  "$bin" serve > "$dir/server.log" 2>&1 &
pid=$!
wait_ready "http://127.0.0.1:$port"
# The consumers' groups form before the load starts.
sleep 5

python3 - "$dir/shipgate.db" "$rate" "$secs" <<'PY'
import json, sqlite3, sys, time, uuid
db = sqlite3.connect(sys.argv[1], timeout=10)
rate, secs = int(sys.argv[2]), int(sys.argv[3])
tick, per_tick = 0.05, max(1, int(sys.argv[2]) // 20)
start, written = time.time(), 0
while time.time() - start < secs:
    now = int(time.time() * 1000)
    rows = []
    for _ in range(per_tick):
        i = written
        written += 1
        eid = "evt_" + uuid.uuid4().hex
        body = {"eventId": eid, "type": "tracking.updated", "createdAt": "2026-12-02T10:00:00.000Z",
                "waybill": {"waybillNumber": f"SBX{i % 1000:010d}", "referenceNumber": f"PO-{i % 1000}",
                            "carrier": "sandbox"},
                "event": {"source": "sandbox", "statusCode": "IT", "trackingStatus": "IN_TRANSIT",
                          "description": "Departed facility, Memphis TN, United States",
                          "occurredAt": "2026-12-02T09:59:00Z"}}
        rows.append((eid, "ten_bench", "tracking.updated", f"waybill:wb_{i % 1000}", json.dumps(body), now))
    db.executemany("INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, created_at_ms) "
                   "VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    time.sleep(max(0.0, start + written / rate - time.time()))
print(f"written: {written} events in {time.time() - start:.1f} s ({written / (time.time() - start):,.0f}/s)")
PY
# Let the last events through.
sleep 5
curl -fs "http://127.0.0.1:$port/metrics" > "$dir/metrics"
python3 - "$dir/metrics" <<'PY'
import re, sys
buckets = {}
for line in open(sys.argv[1]):
    m = re.match(r'shipgate_event_delivery_lag_seconds_bucket\{(.*)\} (\S+)', line)
    if not m:
        continue
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
    buckets.setdefault(labels.get("consumer", "?"), []).append((le, float(m.group(2))))
for consumer, bs in sorted(buckets.items()):
    bs.sort()
    total = bs[-1][1]
    if total == 0:
        continue
    within = lambda x: next((c for le, c in bs if le >= x), total) / total
    target, prev_le, prev_c, p99 = 0.99 * total, 0.0, 0.0, None
    for le, c in bs:
        if c >= target:
            p99 = le if le == float("inf") or c == prev_c else prev_le + (le - prev_le) * (target - prev_c) / (c - prev_c)
            break
        prev_le, prev_c = le, c
    shares = ", ".join(f"{within(x):.1%} within {x:g} s" for x in (0.1, 0.25, 0.5, 1.0))
    print(f"{consumer}: {int(total)} events, {shares}, p99 ~{p99:.2f} s")
PY
echo "peak RSS of shipgate: $(peak_rss "$pid")"
grep '"level":"WARN"' "$dir/server.log" | cut -c1-300 | head -5 || true
