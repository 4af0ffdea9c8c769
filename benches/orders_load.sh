#!/usr/bin/env bash
# Load test of the orders service on the release binary, on SQLite and on PostgreSQL:
#   1. ingest through the batch API: batches of 500 new orders (4 connections);
#   2. re-ingest of unchanged orders (the same batches again);
#      (1 and 2 with the processor resting: what the API takes, not what is planned after)
#   3. on a fresh database and instance, order to waybill with its label (sandbox carrier): N
#      orders with stock ingested, timed until none is left before its waybill (the processor
#      runs as in production).
# Prints orders per second per case.
#   benches/orders_load.sh [sqlite|postgres|both]   (env: DURATION=10s ORDERS=5000 THREADS=2
#   CASES="ingest ship": which of the two parts run; PERF=1 records `perf` during the second;
#   PG_STATS=1 prints PostgreSQL's costliest statements of the second, from pg_stat_statements
#   (loaded at the server's start), their totals (calls, buffer hits and WAL: steadier than the
#   rates between runs), and the events written by type; PG_URL_PARAMS=?k=v is added
#   to the database URL (e.g. ?statement-cache-capacity=2000);
#   BIN=path runs that binary instead of building one: two builds compared back to back;
#   LOG_LEVEL=filter, e.g. warn,sqlx::query=debug, keeps the ship part's server log in target/)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. benches/lib.sh

backends=${1:-both}
duration=${DURATION:-10s}
orders=${ORDERS:-5000}
threads=${THREADS:-2}
cases=${CASES:-ingest ship}

services_install wrk curl postgresql-client
if [ -n "${BIN:-}" ]; then bin=$BIN; else cargo build --release --quiet; bin=$PWD/target/release/shipgate; fi
# PG_STATS needs the statement statistics loaded when the server starts.
if [ -n "${PG_STATS:-}" ]; then
  export PG_OPTIONS="${PG_OPTIONS:-} -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"
fi
[ "$backends" = sqlite ] || services_start
# A failed step leaves no server behind (nor the databases).
pid=
trap 'kill $pid 2>/dev/null || true; services_stop' EXIT

api() { # api METHOD PATH BODY
  curl -fsS -o /dev/null -X "$1" "$base$2" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d "$3"
}

left() { # left STATE: whether any order is in STATE
  curl -fsS "$base/v1/orders?state=$1&limit=1" -H "Authorization: Bearer $key" | grep -q '"orders":\[{'
}

now_ms() { date +%s%3N; }

metric() { # metric NAME: the value of an unlabelled sample of shipgate's /metrics (0 if none)
  curl -fsS "$base/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}

drained() { # drained URL: waits (up to 300 s) until every consumer has handled every event
  for _ in $(seq 600); do
    curl -fsS "$1/metrics" | awk '/^shipgate_events_behind/ && $2 != 0 { busy = 1 } END { exit busy }' && return
    sleep 0.5
  done
  echo "events still behind after 300 s" >&2
}

start_server() { # start_server BACKEND DIR [ENV=VALUE...]: a fresh database and instance
  local backend=$1 dir=$2 port
  shift 2
  bench_database "$backend" "$dir"
  port=$(free_port)
  key=$("$bin" keys create --tenant bench --create-tenant | tail -n 1)
  env "$@" SHIPGATE_LISTEN=127.0.0.1:$port "$bin" serve > "$dir/server.log" 2>&1 &
  pid=$!
  base="http://127.0.0.1:$port"
  wait_ready "$base"
}

run_backend() {
  local backend=$1 dir run
  dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
  export SHIPGATE_RATE_LIMITS__ENABLED=false SHIPGATE_LOG__LEVEL=${LOG_LEVEL:-warn} SHIPGATE_HTTP__MAX_BODY_BYTES=4194304
  case " $cases " in *" ingest "*) run_ingest "$backend" "$dir" ;; esac
  case " $cases " in *" ship "*) run_ship "$backend" "$dir" ;; esac
  rm -rf "$dir"
}

run_ingest() {
  local backend=$1 dir=$2 run
  start_server "$backend" "$dir" SHIPGATE_ORDERS__PROCESS_INTERVAL_MS=3600000
  run=$(date +%s)

  # 1 and 2: ingest (unknown SKUs: the processor holds them, as it would in production).
  local fresh same
  fresh=$(wrk -t"$threads" -c4 -d"$duration" --timeout 30s -s benches/orders.lua "$base" -- "$key" new "$run" | grep '^RESULT')
  # The repeated set is created first (its first round per thread is new), and the events of
  # both phases are handled, so the measured run is re-ingest alone.
  wrk -t"$threads" -c4 -d"$duration" --timeout 30s -s benches/orders.lua "$base" -- "$key" same "$run" >/dev/null
  drained "$base"
  same=$(wrk -t"$threads" -c4 -d"$duration" --timeout 30s -s benches/orders.lua "$base" -- "$key" same "$run" | grep '^RESULT')
  printf '%-9s %-22s %s\n' "$backend" "ingest new (500/batch)" "${fresh#RESULT }" "$backend" "ingest unchanged" "${same#RESULT }"

  echo "$backend peak RSS of shipgate (ingest): $(peak_rss "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

# 3: order to waybill, with stock and a shipping warehouse.
run_ship() {
  local backend=$1 dir=$2 run perf_pid= cpu_start cpu_end pg_start= pg_end=
  run=$(date +%s)
  mkdir -p "$dir/ship"
  start_server "$backend" "$dir/ship"
  api PUT /v1/inventory/warehouses/US-EAST '{"country":"US","state":"NJ","postalCode":"07102","priority":1,"address":{"name":"US-East","phone":"+1 555 0100","street1":"1 Dock Rd","city":"Newark"}}'
  for k in $(seq 0 49); do
    api PUT "/v1/inventory/skus/BENCH-$k" '{}'
    api POST /v1/inventory/movements "{\"type\":\"RECEIVE\",\"sku\":\"BENCH-$k\",\"warehouse\":\"US-EAST\",\"quantity\":100000000}"
  done
  local start end batches
  batches=$(( (orders + 499) / 500 ))
  if [ -n "${PG_STATS:-}" ] && [ "$backend" = postgres ]; then
    psql -qAt "$SHIPGATE_DATABASE_URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
      -c "SELECT pg_stat_statements_reset()" > /dev/null
  fi
  # The batches are written before the clock starts: it times shipgate, not their making.
  for b in $(seq 1 "$batches"); do
    python3 - "$run" "$b" <<'PY' > "$dir/batch-$b.json"
import json, sys
run, b = sys.argv[1], int(sys.argv[2])
print(json.dumps({"orders": [{"channel": "erp", "shop": "bench", "externalId": f"ship-{run}-{b}-{k}",
  "currency": "USD", "total": "19.80", "buyer": {"email": f"b{b}-{k}@example.com"},
  "shipTo": {"name": f"Buyer {b} {k}", "street1": f"{k} Elm St", "city": "Newark", "state": "NJ",
             "postalCode": "07102", "country": "US"},
  "lines": [{"sku": f"BENCH-{k % 50}", "quantity": 1, "unitPrice": "19.80", "weightGrams": 300}]}
  for k in range(500)]}))
PY
  done
  local busy_start commits_start jobs_start
  busy_start=$(metric shipgate_sqlite_writer_batch_seconds_sum)
  commits_start=$(metric shipgate_sqlite_writer_batch_seconds_count)
  jobs_start=$(metric shipgate_sqlite_writer_jobs_total)
  start=$(now_ms)
  cpu_start=$(cpu_ticks "$pid")
  if [ "$backend" = postgres ]; then pg_start=$(pg_cpu_ticks); fi
  if [ -n "${PERF:-}" ]; then
    perf record -F 499 -g -p "$pid" -o "$dir/perf.data" 2>/dev/null &
    perf_pid=$!
  fi
  for b in $(seq 1 "$batches"); do
    curl -fsS -o /dev/null -X POST "$base/v1/orders" -H "Authorization: Bearer $key" \
      -H 'Content-Type: application/json' --data-binary @"$dir/batch-$b.json"
  done
  while left RECEIVED || left ALLOCATED; do sleep 0.1; done
  end=$(now_ms)
  cpu_end=$(cpu_ticks "$pid")
  if [ "$backend" = postgres ]; then pg_end=$(pg_cpu_ticks); fi
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    perf report -i "$dir/perf.data" --no-children -g none --sort comm,dso,symbol --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -80 > "target/orders_perf_$backend.txt" || true
    echo "perf profile: target/orders_perf_$backend.txt"
  fi
  if [ -n "${PG_STATS:-}" ] && [ "$backend" = postgres ]; then
    psql -q "$SHIPGATE_DATABASE_URL" -c "SELECT count(*) AS statements, sum(calls) AS calls,
      round(sum(total_exec_time)) AS exec_ms, round(sum(total_plan_time)) AS plan_ms,
      sum(shared_blks_hit) AS buffer_hits, sum(wal_records) AS wal_records,
      pg_size_pretty(sum(wal_bytes)) AS wal FROM pg_stat_statements" -c "SELECT calls, round(total_exec_time) AS ms,
      round(total_plan_time) AS plan_ms,
      round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct,
      left(regexp_replace(query, '\s+', ' ', 'g'), 150) AS query
      FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 25" \
      -c "SELECT event_type, count(*) AS events FROM events GROUP BY 1 ORDER BY 2 DESC"
  fi
  local made
  made=$(( batches * 500 ))
  printf '%-9s %-22s orders=%d seconds=%.1f orders_per_s=%.0f\n' "$backend" "order to waybill" \
    "$made" "$(echo "($end - $start) / 1000" | bc -l)" "$(echo "$made * 1000 / ($end - $start)" | bc -l)"
  printf '%-9s shipgate CPU: %.1f s of %.1f s on %d cores (%.2f ms per order)\n' "$backend" \
    "$(echo "($cpu_end - $cpu_start) / $(getconf CLK_TCK)" | bc -l)" \
    "$(echo "($end - $start) / 1000" | bc -l)" "$(nproc)" \
    "$(echo "($cpu_end - $cpu_start) * 1000 / $(getconf CLK_TCK) / $made" | bc -l)"
  if [ "$backend" = postgres ]; then
    printf '%-9s PostgreSQL CPU: %.1f s (%.2f ms per order)\n' "$backend" \
      "$(echo "($pg_end - $pg_start) / $(getconf CLK_TCK)" | bc -l)" \
      "$(echo "($pg_end - $pg_start) * 1000 / $(getconf CLK_TCK) / $made" | bc -l)"
  fi
  if [ "$backend" = sqlite ]; then
    printf '%-9s SQLite writer: busy %.1f s of %.1f s, %d commits, %d statements or units\n' \
      "$backend" "$(echo "$(metric shipgate_sqlite_writer_batch_seconds_sum) - $busy_start" | bc -l)" \
      "$(echo "($end - $start) / 1000" | bc -l)" \
      "$(( $(metric shipgate_sqlite_writer_batch_seconds_count) - commits_start ))" \
      "$(( $(metric shipgate_sqlite_writer_jobs_total) - jobs_start ))"
  fi
  if left ON_HOLD; then echo "$backend: some orders were held (see GET /v1/orders?state=ON_HOLD)"; fi
  echo "$backend peak RSS of shipgate: $(peak_rss "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ -n "${LOG_LEVEL:-}" ]; then cp "$dir/ship/server.log" "target/orders_server_$backend.log"; fi
}

echo "shipgate orders load: $threads wrk threads, $duration per ingest case, $orders orders to ship, $(nproc) cores"
case "$backends" in
  sqlite|postgres) run_backend "$backends" ;;
  both) run_backend sqlite; run_backend postgres ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
