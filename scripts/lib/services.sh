# Sourced by scripts/test.sh and benches/*.sh: PostgreSQL and Redis from Debian packages, started on
# loopback in a temporary directory and stopped when the calling script exits.
#   services_install [extra Debian packages...]   installs what is missing
#   services_start                                 starts both; exports TEST_POSTGRES_URL, TEST_REDIS_URL

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

services_install() {
  local missing=() pkg
  [ -x "$(pg_bin)/initdb" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# initdb refuses to run as root: run PostgreSQL as the postgres user then.
run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

services_stop() {
  [ -n "${SERVICES_DIR:-}" ] || return 0
  if declare -F broker_stop >/dev/null; then broker_stop; fi
  if declare -F redis_cluster_stop >/dev/null; then redis_cluster_stop; fi
  run_pg "$(pg_bin)/pg_ctl" -D "$SERVICES_DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
  redis-cli -p "$SERVICES_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$SERVICES_DIR"
}

services_start() {
  SERVICES_DIR=$(mktemp -d /tmp/shipgate-services.XXXXXX)
  chmod 755 "$SERVICES_DIR"
  trap services_stop EXIT
  local pg_port
  pg_port=$(free_port)
  SERVICES_REDIS_PORT=$(free_port)
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    install -d -o postgres -g postgres "$SERVICES_DIR/pg"
  else
    mkdir -p "$SERVICES_DIR/pg"
  fi
  run_pg "$(pg_bin)/initdb" -D "$SERVICES_DIR/pg" -A trust -U postgres --no-sync >/dev/null
  run_pg "$(pg_bin)/pg_ctl" -D "$SERVICES_DIR/pg" -l "$SERVICES_DIR/pg/log" -w start \
    -o "-p $pg_port -k $SERVICES_DIR/pg -c listen_addresses=127.0.0.1 -c max_connections=300 ${PG_OPTIONS:-}" >/dev/null
  redis-server --port "$SERVICES_REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
    --pidfile "$SERVICES_DIR/redis.pid" --save "" --appendonly no --dir "$SERVICES_DIR" \
    --logfile "$SERVICES_DIR/redis.log"
  export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
  export TEST_REDIS_URL="redis://127.0.0.1:$SERVICES_REDIS_PORT"
  echo "PostgreSQL on $pg_port, Redis on $SERVICES_REDIS_PORT"
}
