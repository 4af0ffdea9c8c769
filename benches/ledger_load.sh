#!/usr/bin/env bash
# Load test of the ledger on the release binary, on SQLite and on PostgreSQL:
#   1. one transfer per request (CONNECTIONS connections), each with a new id, between ACCOUNTS
#      accounts (fewer accounts: more contention on their row locks);
#   2. batches of BATCH transfers per request (4 connections).
# Then checks the ledger's invariants (debits = credits per currency).
# Prints transfers per second and latency per case.
#   benches/ledger_load.sh [sqlite|postgres|both]
#   (env: DURATION=10s ACCOUNTS=100 BATCH=1000 CONNECTIONS=32 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. benches/lib.sh

backends=${1:-both}
duration=${DURATION:-10s}
accounts=${ACCOUNTS:-100}
batch=${BATCH:-1000}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}

services_install wrk curl postgresql-client
cargo build --release --quiet
bin=$PWD/target/release/shipgate
[ "$backends" = sqlite ] || services_start

run_backend() {
  local backend=$1 dir port run one many
  dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
  export SHIPGATE_RATE_LIMITS__ENABLED=false SHIPGATE_LOG__LEVEL=warn SHIPGATE_HTTP__MAX_BODY_BYTES=4194304
  bench_database "$backend" "$dir"
  port=$(free_port)
  key=$("$bin" keys create --tenant bench --create-tenant | tail -n 1)
  SHIPGATE_LISTEN=127.0.0.1:$port "$bin" serve > "$dir/server.log" 2>&1 &
  pid=$!
  base="http://127.0.0.1:$port"
  wait_ready "$base"
  for k in $(seq 0 $((accounts - 1))); do
    curl -fsS -o /dev/null -X PUT "$base/v1/ledger/accounts/bench-$k" -H "Authorization: Bearer $key" \
      -H 'Content-Type: application/json' -d '{"currency":"USD","kind":"asset"}'
  done
  run=$(date +%s)
  one=$(wrk -t"$threads" -c"$connections" -d"$duration" --timeout 30s --latency -s benches/ledger.lua "$base" -- "$key" one "$run" "$accounts" | grep '^RESULT')
  many=$(wrk -t"$threads" -c4 -d"$duration" --timeout 30s -s benches/ledger.lua "$base" -- "$key" batch "b$run" "$accounts" "$batch" | grep '^RESULT')
  printf '%-9s %-26s %s\n' "$backend" "one per request (c=$connections)" "${one#RESULT }" "$backend" "batches of $batch" "${many#RESULT }"
  curl -fsS "$base/v1/ledger/trial-balance" -H "Authorization: Bearer $key"; echo
  echo "$backend peak RSS of shipgate: $(peak_rss "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

echo "shipgate ledger load: $threads wrk threads, $duration per case, $accounts accounts, $(nproc) cores"
case "$backends" in
  sqlite|postgres) run_backend "$backends" ;;
  both) run_backend sqlite; run_backend postgres ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
