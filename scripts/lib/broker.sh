# Sourced by scripts/test.sh and benches/*.sh after scripts/lib/services.sh: Kafka-protocol
# brokers (tansu, from crates.io) on loopback, stopped with the services.
#   broker_install     builds tansu once (~16 min cold on 2 cores) unless a binary is there
#   broker_start       starts one with in-memory storage; exports TEST_KAFKA_BROKERS (host:port)
#   broker_start_scram starts one that signs clients in with SASL SCRAM-SHA-512, storing in
#                      PostgreSQL (needs services_start); exports TEST_KAFKA_SCRAM_BROKERS,
#                      TEST_KAFKA_SCRAM_USER and TEST_KAFKA_SCRAM_PASSWORD
#   broker_topics T..  creates topics (3 partitions each); tansu does not create them on use

TANSU_VERSION=0.6.0
# Where a built broker is kept: outside the work tree, so every clone reuses it. Built with
# in-memory storage (dynostore) and PostgreSQL storage, with the latter's schema beside it.
TANSU_ROOT=${TANSU_ROOT:-${CARGO_HOME:-$HOME/.cargo}/tools/tansu-$TANSU_VERSION-pg}

broker_bin() {
  if [ -n "${TANSU_BIN:-}" ] && [ -x "$TANSU_BIN" ]; then echo "$TANSU_BIN"; return; fi
  echo "$TANSU_ROOT/bin/tansu"
}

# The PostgreSQL storage's schema (shipped in tansu-storage's sources), kept with the binary.
broker_ddl() {
  echo "$(dirname "$(dirname "$(broker_bin)")")/ddl"
}

broker_install() {
  local bin src
  bin=$(broker_bin)
  if [ ! -x "$bin" ]; then
    echo "building the broker (tansu $TANSU_VERSION): once per machine"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,postgres \
      --root "$TANSU_ROOT" --quiet
  fi
  if [ ! -d "$(broker_ddl)" ]; then
    src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/tansu-storage-"$TANSU_VERSION"/src/ddl \
      2>/dev/null | head -n 1)
    if [ -z "$src" ]; then
      # Sources not in the registry cache (a binary copied in): fetch them.
      cargo install tansu-storage --version "$TANSU_VERSION" --root "$(mktemp -d)" \
        >/dev/null 2>&1 || true
      src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/tansu-storage-"$TANSU_VERSION"/src/ddl \
        | head -n 1)
    fi
    cp -r "$src" "$(broker_ddl)"
  fi
}

# Runs a broker on $1 with the storage $2 and any further flags; its pid in $SERVICES_DIR/$3.pid.
broker_run() {
  local port=$1 storage=$2 name=$3
  shift 3
  "$(broker_bin)" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "$storage" "$@" >> "$SERVICES_DIR/$name.log" 2>&1 &
  echo $! > "$SERVICES_DIR/$name.pid"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start: $(tail -n 5 "$SERVICES_DIR/$name.log")" >&2
  return 1
}

broker_start() {
  local port
  port=$(free_port)
  broker_run "$port" memory://tansu/ broker
  export TEST_KAFKA_BROKERS="127.0.0.1:$port"
  # Tests that stop and start a broker of their own run this binary.
  TEST_KAFKA_BIN=$(broker_bin)
  export TEST_KAFKA_BIN
  echo "broker on $port"
}

# tansu keeps SCRAM users in its storage and takes no request before sign-in once
# `--authentication` is on, so the user is made first on a broker without it, over storage that
# outlives it (PostgreSQL), and the broker is started again requiring sign-in.
broker_start_scram() {
  local port db storage f
  port=$(free_port)
  db=${TEST_POSTGRES_URL%/*}
  psql -q "$TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS tansu" -c "CREATE DATABASE tansu"
  for f in "$(broker_ddl)"/*.sql; do
    psql -q -v ON_ERROR_STOP=1 "$db/tansu" -f "$f" > /dev/null
  done
  storage="$db/tansu"
  broker_run "$port" "$storage" broker-scram-setup
  TEST_KAFKA_SCRAM_USER=distributor
  TEST_KAFKA_SCRAM_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  "$(broker_bin)" user create "$TEST_KAFKA_SCRAM_USER" "$TEST_KAFKA_SCRAM_PASSWORD" \
    --broker "tcp://127.0.0.1:$port" --mechanism scram512 > /dev/null
  kill "$(cat "$SERVICES_DIR/broker-scram-setup.pid")"
  wait "$(cat "$SERVICES_DIR/broker-scram-setup.pid")" 2>/dev/null || true
  rm -f "$SERVICES_DIR/broker-scram-setup.pid"
  broker_run "$port" "$storage" broker-scram --authentication
  export TEST_KAFKA_SCRAM_BROKERS="127.0.0.1:$port" TEST_KAFKA_SCRAM_USER TEST_KAFKA_SCRAM_PASSWORD
  echo "SCRAM broker on $port"
}

broker_topics() {
  local bin topic
  bin=$(broker_bin)
  for topic in "$@"; do
    "$bin" topic create --broker "tcp://$TEST_KAFKA_BROKERS" --partitions 3 "$topic" >/dev/null
  done
}

broker_stop() {
  local name
  for name in broker broker-scram broker-scram-setup; do
    [ -f "${SERVICES_DIR:-}/$name.pid" ] || continue
    kill "$(cat "$SERVICES_DIR/$name.pid")" 2>/dev/null || true
  done
}
