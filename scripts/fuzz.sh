#!/usr/bin/env bash
# Fuzzes the running API against its own contract with schemathesis (PyPI): every operation in
# /openapi.json, generated and stateful cases; fails on any server error, on a response that does
# not match the schema, on an undocumented status or content type.
#   scripts/fuzz.sh [MAX_EXAMPLES]   (env: SEED, fixed by default so that CI is repeatable)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

max_examples=${1:-30}
seed=${SEED:-20261123}
venv=${FUZZ_VENV:-target/fuzz-venv}
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis>=4,<5"
fi
cargo build --quiet --bin shipgate

dir=$(mktemp -d /tmp/shipgate-fuzz.XXXXXX)
port=$(free_port)
export SHIPGATE_DATABASE_URL="sqlite://$dir/shipgate.db" SHIPGATE_LISTEN="127.0.0.1:$port"
export SHIPGATE_LOG__LEVEL=warn SHIPGATE_RATE_LIMITS__ENABLED=false
key=$(target/debug/shipgate keys create --tenant fuzz --create-tenant | tail -n 1)
target/debug/shipgate serve > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.1; done

"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --url "http://127.0.0.1:$port" -H "Authorization: Bearer $key" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance \
  --max-examples "$max_examples" --seed "$seed" --no-color
