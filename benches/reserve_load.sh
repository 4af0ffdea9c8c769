#!/usr/bin/env bash
# Load test of POST /v1/inventory/allocations on the release binary: reservations spread over
# SKUS SKUs in three warehouses (32 connections), then one hot SKU under 64 concurrent callers;
# on SQLite and on PostgreSQL. Afterwards `shipgate inventory verify` checks every stock row
# against its movements and reservations. Prints throughput and p50/p99 per case.
#   benches/reserve_load.sh [sqlite|postgres|both]   (env: DURATION=15s SKUS=200 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. benches/lib.sh

backends=${1:-both}
duration=${DURATION:-15s}
skus=${SKUS:-200}
threads=${THREADS:-2}

services_install wrk curl postgresql-client
cargo build --release --quiet
bin=$PWD/target/release/shipgate
[ "$backends" = sqlite ] || services_start

api() { # api METHOD PATH BODY
  curl -fsS -o /dev/null -X "$1" "$base$2" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d "$3"
}

run_backend() {
  local backend=$1 dir port pid
  dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
  bench_database "$backend" "$dir"
  export SHIPGATE_RATE_LIMITS__ENABLED=false SHIPGATE_LOG__LEVEL=warn
  port=$(free_port)
  key=$("$bin" keys create --tenant bench --create-tenant | tail -n 1)
  SHIPGATE_LISTEN=127.0.0.1:$port "$bin" serve > "$dir/server.log" 2>&1 &
  pid=$!
  base="http://127.0.0.1:$port"
  wait_ready "$base"

  api PUT /v1/inventory/warehouses/SZ '{"country":"CN","priority":1}'
  api PUT /v1/inventory/warehouses/US-EAST '{"country":"US","priority":2,"serves":[{"country":"US","states":["NY","NJ"]}]}'
  api PUT /v1/inventory/warehouses/US-WEST '{"country":"US","priority":2,"serves":[{"country":"US","states":["CA"]}]}'
  for sku in HOT $(seq -f 'SKU-%g' 1 "$skus"); do
    api PUT "/v1/inventory/skus/$sku" '{}'
    for wh in SZ US-EAST US-WEST; do
      api POST /v1/inventory/movements "{\"type\":\"RECEIVE\",\"sku\":\"$sku\",\"warehouse\":\"$wh\",\"quantity\":100000000}"
    done
  done

  local spread hot
  spread=$(wrk -t"$threads" -c32 -d"$duration" -s benches/reserve.lua "$base" -- \
    "$key" spread "$(date +%s)" "$skus" | grep '^RESULT')
  hot=$(wrk -t"$threads" -c64 -d"$duration" -s benches/reserve.lua "$base" -- \
    "$key" hot "$(date +%s)" | grep '^RESULT')
  printf '%-9s %-14s %s\n' "$backend" "spread(${skus})" "${spread#RESULT }" "$backend" "hot(64 callers)" "${hot#RESULT }"
  echo "$backend peak RSS of shipgate: $(peak_rss "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  "$bin" inventory verify
  rm -rf "$dir"
}

echo "shipgate reservation load: $threads wrk threads, $duration per case, $(nproc) cores"
case "$backends" in
  sqlite|postgres) run_backend "$backends" ;;
  both) run_backend sqlite; run_backend postgres ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
