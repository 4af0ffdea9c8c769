#!/usr/bin/env bash
# The test command: installs PostgreSQL and Redis from Debian packages if missing, starts them on
# loopback in a temporary directory, runs the whole suite, and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
. scripts/lib/broker.sh
. scripts/lib/redis_cluster.sh

# poppler-utils and zbar-tools read labels back (pdftotext, pdftoppm, zbarimg); chromium and
# playwright-core (npm) drive the label station page; prometheus carries promtool.
services_install docker-compose poppler-utils zbar-tools chromium prometheus curl
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
# The Kafka-protocol broker (tansu) is built from crates.io once per machine, then reused.
broker_install
services_start
redis_cluster_start
broker_start
broker_start_scram

# docker-compose.yml cannot be started here (no Docker engine): validate it offline.
docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml: valid"

# Alert rules: valid, and each fires within a minute of its condition (unit tests).
promtool check rules ops/prometheus/alerts.yml
(cd ops/prometheus && promtool test rules alerts_test.yml)
# (syntax only: its rule file path is the one inside the Prometheus container)
promtool check config --syntax-only ops/prometheus/prometheus.yml
python3 -m json.tool ops/grafana/dashboards/shipgate.json >/dev/null
echo "alert rules, Prometheus config, Grafana dashboard: valid"

# Dependencies point one way: no module cycle in either crate (the map is in docs/architecture.md).
for crate_src in src carriers/src; do
  python3 scripts/modgraph.py "$crate_src" 2 >/dev/null
done
echo "module graphs: no cycles"

# The official Standard Webhooks library checks our signatures (in and out) in the tests.
if [ ! -x target/standardwebhooks-venv/bin/python ]; then
  python3 -m venv target/standardwebhooks-venv
  target/standardwebhooks-venv/bin/pip install --quiet --disable-pip-version-check standardwebhooks==1.1.0
fi
export STANDARDWEBHOOKS_PYTHON="$PWD/target/standardwebhooks-venv/bin/python"

# Here every server is up: a test that would skip for want of one fails instead.
export TEST_REQUIRE_SERVERS=1
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@" || status=$?
else
  cargo test --workspace --no-fail-fast "$@" || status=$?
fi

# The API fuzzed against its contract (schemathesis, fixed seed).
scripts/fuzz.sh 20 || status=$?
exit "$status"
