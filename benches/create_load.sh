#!/usr/bin/env bash
# Load test of POST /v1/waybills on the release binary with the sandbox carrier: new references
# and replays, on SQLite and on PostgreSQL. Prints throughput and p50/p99 per case.
#   benches/create_load.sh [sqlite|postgres|both]   (env: DURATION=15s CONNECTIONS=32 THREADS=2;
#   BIN=path runs that binary instead of building one: two builds compared back to back)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. benches/lib.sh

backends=${1:-both}
duration=${DURATION:-15s}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
replay_set=${REPLAY_SET:-1000}

services_install wrk curl postgresql-client
if [ -n "${BIN:-}" ]; then bin=$BIN; else cargo build --release --quiet; bin=$PWD/target/release/shipgate; fi
[ "$backends" = sqlite ] || services_start

run_backend() {
  local backend=$1 dir key port pid
  dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
  bench_database "$backend" "$dir"
  # The benchmark measures the server, not the per-key quota.
  export SHIPGATE_RATE_LIMITS__ENABLED=false
  port=$(free_port)
  key=$("$bin" keys create --tenant bench --create-tenant | tail -n 1)
  SHIPGATE_LISTEN=127.0.0.1:$port "$bin" serve > "$dir/server.log" 2>&1 &
  pid=$!
  wait_ready "http://127.0.0.1:$port"

  # The replay set: a short warm-up run creates BENCH-REPLAY-1..N (its first pass creates, the rest
  # replay); the measured replay run then only replays.
  wrk -t"$threads" -c"$connections" -d3s -s benches/create.lua \
    "http://127.0.0.1:$port" -- "$key" replay "$replay_set" >/dev/null

  local new replay
  new=$(wrk -t"$threads" -c"$connections" -d"$duration" -s benches/create.lua \
    "http://127.0.0.1:$port" -- "$key" new "$(date +%s)" | grep '^RESULT')
  replay=$(wrk -t"$threads" -c"$connections" -d"$duration" -s benches/create.lua \
    "http://127.0.0.1:$port" -- "$key" replay "$replay_set" | grep '^RESULT')
  printf '%-9s %-8s %s\n' "$backend" new "${new#RESULT }" "$backend" replay "${replay#RESULT }"
  echo "$backend peak RSS of shipgate: $(peak_rss "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

echo "shipgate create-waybill load: $threads wrk threads, $connections connections, $duration per case, $(nproc) cores"
case "$backends" in
  sqlite|postgres) run_backend "$backends" ;;
  both) run_backend sqlite; run_backend postgres ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
