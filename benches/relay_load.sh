#!/usr/bin/env bash
# Throughput of the outbox relay to the Kafka-protocol broker, on the release binary: EVENTS
# tracking events (~450 bytes each, 1,000 waybills) are written to the outbox of a fresh SQLite
# database before shipgate starts; then shipgate starts with `events.kafka` set and relays them
# to the broker (tansu, in-memory storage, 3 partitions a topic). Prints how long the relay took
# from start-up until its position passed the last event (all acknowledged by the broker).
#   benches/relay_load.sh     (env: EVENTS=200000 BATCH=5000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. scripts/lib/broker.sh
. benches/lib.sh

events=${EVENTS:-200000}
batch=${BATCH:-5000}

services_install curl
broker_install
cargo build --release --quiet --bin shipgate
bin=$PWD/target/release/shipgate
services_start
broker_start
broker_topics bench.waybills bench.tracking bench.orders bench.inventory bench.finance bench.other

dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"; services_stop' EXIT
pid=
export SHIPGATE_DATABASE_URL="sqlite://$dir/shipgate.db" SHIPGATE_LOG__LEVEL=warn
"$bin" migrate >/dev/null
python3 - "$dir/shipgate.db" "$events" <<'PY'
import json, sqlite3, sys, time, uuid
db, n = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
now = int(time.time() * 1000)
def rows():
    for i in range(n):
        eid = "evt_" + uuid.uuid4().hex
        body = {"eventId": eid, "type": "tracking.updated", "createdAt": "2026-12-02T10:00:00.000Z",
                "waybill": {"waybillNumber": f"SBX{i % 1000:010d}", "referenceNumber": f"PO-{i % 1000}",
                            "carrier": "sandbox"},
                "event": {"source": "sandbox", "statusCode": "IT", "trackingStatus": "IN_TRANSIT",
                          "description": "Departed facility, Memphis TN, United States",
                          "occurredAt": "2026-12-02T09:59:00Z"}}
        yield (eid, "ten_bench", "tracking.updated", f"waybill:wb_{i % 1000}", json.dumps(body), now)
db.executemany("INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, created_at_ms) "
               "VALUES (?, ?, ?, ?, ?, ?)", rows())
db.commit()
PY
last=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT MAX(seq) FROM events').fetchone()[0])" "$dir/shipgate.db")

port=$(free_port)
start=$(date +%s.%N)
SHIPGATE_LISTEN=127.0.0.1:$port SHIPGATE_EVENTS__KAFKA__BROKERS=$TEST_KAFKA_BROKERS \
  SHIPGATE_EVENTS__KAFKA__TOPIC_PREFIX=bench. SHIPGATE_EVENTS__KAFKA__RELAY_BATCH=$batch \
  SHIPGATE_EVENTS__KAFKA__CONSUME=false \
  "$bin" serve > "$dir/server.log" 2>&1 &
pid=$!
position() {
  python3 -c "import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute(\"SELECT position FROM event_consumers WHERE name = 'kafka-relay'\").fetchone(); print(r[0] if r else 0)" "$dir/shipgate.db" 2>/dev/null || echo 0
}
until [ "$(position)" -ge "$last" ]; do
  kill -0 "$pid" || { cat "$dir/server.log"; exit 1; }
  sleep 0.05
done
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); n=int(sys.argv[3]); print(f'relay: {n} events in {s:.2f} s from start-up = {n/s:,.0f} events/s (batch {sys.argv[4]})')" "$start" "$end" "$events" "$batch"
echo "peak RSS of shipgate: $(peak_rss "$pid")"
grep '"level":"WARN"' "$dir/server.log" | cut -c1-300 || true
