#!/usr/bin/env bash
# Load test of the tracking read path, GET /v1/tracking/{number}, on the release binary:
# seeds WAYBILLS waybills with EVENTS events each through the sandbox carrier's signed callbacks
# (one event per push: the callback ingestion rate is printed too), then drives random numbers
# with wrk at CONNECTIONS connections, with Redis and then with Redis stopped, each time beside
# the same server's /livez throughput as the ceiling.
#   benches/tracking_load.sh      (env: WAYBILLS=10000 EVENTS=20 DURATION=15s CONNECTIONS=64 THREADS=2 DB=sqlite|postgres;
#   BIN=path runs that binary instead of building one: two builds compared back to back)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. benches/lib.sh

waybills=${WAYBILLS:-10000}
events=${EVENTS:-20}
duration=${DURATION:-15s}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
db=${DB:-sqlite}
secret=bench-callback-secret

services_install wrk curl postgresql-client
if [ -n "${BIN:-}" ]; then
  cargo build --release --quiet --example tracking_seed
  bin=$BIN
else
  cargo build --release --quiet --bin shipgate --example tracking_seed
  bin=$PWD/target/release/shipgate
fi
seed=$PWD/target/release/examples/tracking_seed
services_start

dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
bench_database "$db" "$dir"
export SHIPGATE_REDIS_URL=$TEST_REDIS_URL
export SHIPGATE_TRACKING__CALLBACKS__SANDBOX__SECRET=$secret
export SHIPGATE_TRACKING__POLLING__ENABLED=false
export SHIPGATE_LOG__LEVEL=warn
# The benchmark measures the server, not the per-key quota.
export SHIPGATE_RATE_LIMITS__ENABLED=false
port=$(free_port)
url="http://127.0.0.1:$port"
key=$("$bin" keys create --tenant bench --create-tenant | tail -n 1)
SHIPGATE_LISTEN=127.0.0.1:$port "$bin" serve > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"; services_stop' EXIT
wait_ready "$url"

echo "shipgate tracking load: $waybills waybills x $events events, $db, $threads wrk threads, $connections connections, $duration per case, $(nproc) cores"
"$seed" "$url" "$key" "$secret" "$waybills" "$events" "$dir/numbers.txt" 64 1 | tee "$dir/seed.txt"
printf '%-28s %s\n' "RSS after seeding" "$(rss "$pid")"

# Warm-up: fills the cache with every answer.
wrk -t"$threads" -c"$connections" -d5s -s benches/tracking.lua "$url" -- "$key" "$dir/numbers.txt" >/dev/null

livez() { wrk -t"$threads" -c"$connections" -d"$duration" -s benches/livez.lua "$url/livez" | grep '^RESULT'; }
tracking() { wrk -t"$threads" -c"$connections" -d"$duration" -s benches/tracking.lua "$url" -- "$key" "$dir/numbers.txt" | grep '^RESULT'; }

printf '%-28s %s\n' "livez (ceiling)" "$(livez | cut -c8-)"
printf '%-28s %s\n' "tracking, redis" "$(tracking | cut -c8-)"
printf '%-28s %s\n' "RSS after tracking, redis" "$(rss "$pid")"
redis-cli -p "$SERVICES_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
sleep 1
printf '%-28s %s\n' "livez, redis stopped" "$(livez | cut -c8-)"
printf '%-28s %s\n' "tracking, redis stopped" "$(tracking | cut -c8-)"
grep -c '"level":"ERROR"' "$dir/server.log" | sed 's/^/server error log lines: /' || true
printf '%-28s %s\n' "RSS after Redis stopped" "$(rss "$pid")"
