#!/usr/bin/env bash
# Load test of pushes to subscribers on the release binary: a tenant subscribes one endpoint (a
# local receiver answering 204, examples/webhook_sink.rs), then WAYBILLS x EVENTS tracking events
# arrive through the sandbox's signed callbacks (one event per push, 64 at a time). Printed: the
# ingestion rate, the delivery rate (distinct events delivered per second from the first push
# to the last delivery) and how far delivery lagged behind ingestion, all from the same run.
#   benches/webhooks_load.sh      (env: WAYBILLS=2000 EVENTS=10 DB=sqlite|postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. benches/lib.sh

waybills=${WAYBILLS:-2000}
events=${EVENTS:-10}
db=${DB:-sqlite}
secret=bench-callback-secret

services_install curl postgresql-client
cargo build --release --quiet --bin shipgate --example tracking_seed --example webhook_sink
bin=$PWD/target/release/shipgate
seed=$PWD/target/release/examples/tracking_seed
sink=$PWD/target/release/examples/webhook_sink
services_start

dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
bench_database "$db" "$dir"
export SHIPGATE_REDIS_URL=$TEST_REDIS_URL
export SHIPGATE_TRACKING__CALLBACKS__SANDBOX__SECRET=$secret
export SHIPGATE_TRACKING__POLLING__ENABLED=false
export SHIPGATE_WEBHOOKS__POLL_INTERVAL_MS=50
# The receiver listens on loopback.
export SHIPGATE_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true
export SHIPGATE_WEBHOOKS__BATCH=${BATCH:-64}
export SHIPGATE_LOG__LEVEL=warn
export SHIPGATE_RATE_LIMITS__ENABLED=false
port=$(free_port)
sink_port=$(free_port)
url="http://127.0.0.1:$port"
key=$("$bin" keys create --tenant bench --create-tenant | tail -n 1)
"$sink" "$sink_port" > "$dir/sink.log" 2>&1 &
sink_pid=$!
SHIPGATE_LISTEN=127.0.0.1:$port "$bin" serve > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid $sink_pid 2>/dev/null || true; rm -rf "$dir"; services_stop' EXIT
wait_ready "$url"
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$sink_port/count" >/dev/null && break; sleep 0.1; done

curl -fs "$url/v1/webhook-endpoints" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d "{\"url\": \"http://127.0.0.1:$sink_port/hooks\", \"eventTypes\": [\"tracking.updated\"]}" >/dev/null

total=$((waybills * events))
echo "shipgate push load: $waybills waybills x $events events = $total pushes to one endpoint, $db, $(nproc) cores"
start=$(date +%s.%N)
"$seed" "$url" "$key" "$secret" "$waybills" "$events" "$dir/numbers.txt" 64 1 | tee "$dir/seed.txt"
ingested=$(date +%s.%N)
while :; do
  read -r pushes distinct < <(curl -fs "http://127.0.0.1:$sink_port/count"; echo) || true
  [ "$distinct" -ge "$total" ] && break
  sleep 0.05
done
done_at=$(date +%s.%N)
# The seed also creates the waybills first: measure deliveries from its callback phase.
callback_secs=$(sed -n 's/.*RESULT callbacks .*seconds=\([0-9.]*\).*/\1/p' "$dir/seed.txt")
awk -v s="$start" -v i="$ingested" -v d="$done_at" -v cb="$callback_secs" -v n="$total" -v p="$pushes" 'BEGIN {
  create = (i - s) - cb; span = (d - s) - create;
  printf "RESULT pushes delivered=%d distinct=%d seconds=%.1f delivered_per_s=%.0f lag_after_ingestion_s=%.2f duplicates=%d\n", p, n, span, n / span, d - i, p - n
}'
