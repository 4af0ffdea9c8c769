#!/usr/bin/env bash
# The test command: installs PostgreSQL and Redis from Debian packages if missing, starts them on
# loopback in a temporary directory, runs the whole suite, and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh

services_install docker-compose poppler-utils zbar-tools
services_start

# docker-compose.yml cannot be started here (no Docker engine): validate it offline.
docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml: valid"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
