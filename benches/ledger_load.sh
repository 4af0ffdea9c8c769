#!/usr/bin/env bash
# Load test of the ledger on the release binary, on SQLite and on PostgreSQL:
#   1. one transfer per request (CONNECTIONS connections), each with a new id, between ACCOUNTS
#      accounts (fewer accounts: more contention on their row locks);
#   2. batches of BATCH transfers per request (4 connections);
#   3. one UPS Billing Data invoice of INVOICE_ROWS rows (two rows per tracking number, the real
#      file's first row as template) imported and classified, timed.
# Then prints the trial balance (debits = credits per currency).
# Prints transfers per second and latency per case.
#   benches/ledger_load.sh [sqlite|postgres|both]
#   (env: DURATION=10s ACCOUNTS=100 BATCH=1000 CONNECTIONS=32 THREADS=2 INVOICE_ROWS=50000)
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
invoice_rows=${INVOICE_ROWS:-50000}

services_install wrk curl postgresql-client
cargo build --release --quiet
bin=$PWD/target/release/shipgate
[ "$backends" = sqlite ] || services_start

run_backend() {
  local backend=$1 dir port run one many
  dir=$(mktemp -d /tmp/shipgate-bench.XXXXXX)
  export SHIPGATE_RATE_LIMITS__ENABLED=false SHIPGATE_LOG__LEVEL=warn SHIPGATE_HTTP__MAX_BODY_BYTES=134217728
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
  python3 - "$invoice_rows" "$dir/invoice.csv" <<'PY'
import csv, sys
rows, out = int(sys.argv[1]), sys.argv[2]
src = "tests/fixtures/carrier_invoices/ups_billing_data_v2.1_Invoice_000000K7Q318255_062125_excerpt.csv"
template = next(csv.reader(open(src)))
with open(out, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    for i in range(rows):
        r = list(template)
        r[20] = f"1ZBENCH{i // 2:011d}"
        r[43], r[52] = ("FRT", "12.95") if i % 2 == 0 else ("FSC", "1.63")
        w.writerow(r)
PY
  local t0 t1
  t0=$(date +%s%3N)
  curl -fsS -o "$dir/imported.json" -X POST "$base/v1/carrier-invoices?carrier=ups" -H "Authorization: Bearer $key" \
    -H 'Content-Type: text/csv' --data-binary @"$dir/invoice.csv"
  t1=$(date +%s%3N)
  printf '%-9s %-26s rows=%d seconds=%.2f rows_per_min=%.0f\n' "$backend" "invoice import (UPS)" "$invoice_rows" \
    "$(echo "($t1 - $t0) / 1000" | bc -l)" "$(echo "$invoice_rows * 60000 / ($t1 - $t0)" | bc -l)"
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
