#!/usr/bin/env bash
# Event delivery between services, outbox to consumer, on SQLite and PostgreSQL (started here):
# events/s and the lag under load. See benches/event_bus.rs.
#   benches/events_load.sh   (env: EVENTS=50000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
services_start >/dev/null
echo "shipgate event bus: $(nproc) cores, ${EVENTS:-50000} events per case"
cargo bench --quiet --bench event_bus
