#!/usr/bin/env bash
# The test command: installs PostgreSQL and Redis from Debian packages if missing, starts them on
# loopback in a temporary directory, runs the whole suite, and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

missing=()
[ -x "$(pg_bin)/initdb" ] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PG_BIN=$(pg_bin)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

work=$(mktemp -d /tmp/shipgate-test.XXXXXX)
chmod 755 "$work"
pg_port=$(free_port)
redis_port=$(free_port)

# initdb refuses to run as root: run PostgreSQL as the postgres user then.
run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home "$work" postgres
  install -d -o postgres -g postgres "$work/pg"
else
  mkdir -p "$work/pg"
fi

cleanup() {
  run_pg "$PG_BIN/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

run_pg "$PG_BIN/initdb" -D "$work/pg" -A trust -U postgres --no-sync >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w start \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=300" >/dev/null
redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --pidfile "$work/redis.pid" \
  --save "" --appendonly no --dir "$work" --logfile "$work/redis.log"

export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
export TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
echo "PostgreSQL on $pg_port, Redis on $redis_port"

# docker-compose.yml cannot be started here (no Docker engine): validate it offline.
docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml: valid"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
