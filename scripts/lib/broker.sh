# Sourced by scripts/test.sh and benches/*.sh after scripts/lib/services.sh: a Kafka-protocol
# broker (tansu, from crates.io) on loopback with in-memory storage, stopped with the services.
#   broker_install     builds tansu once (~18 min cold on 2 cores) unless a binary is there
#   broker_start       starts it; exports TEST_KAFKA_BROKERS (host:port)
#   broker_start_scram starts a second one that signs clients in with SASL SCRAM-SHA-512
#                      (SQLite storage, where tansu keeps its users); exports
#                      TEST_KAFKA_SCRAM_BROKERS, TEST_KAFKA_SCRAM_USER, TEST_KAFKA_SCRAM_PASSWORD
#   broker_topics T..  creates topics (3 partitions each); tansu does not create them on use

TANSU_VERSION=0.6.0
# In-memory storage (dynostore) and SQLite storage (libsql), which can hold SCRAM users.
TANSU_FEATURES=dynostore,libsql
# Where a built broker is kept: outside the work tree, so every clone reuses it.
TANSU_ROOT=${TANSU_ROOT:-${CARGO_HOME:-$HOME/.cargo}/tools/tansu-$TANSU_VERSION-${TANSU_FEATURES//,/-}}

broker_bin() {
  if [ -n "${TANSU_BIN:-}" ] && [ -x "$TANSU_BIN" ]; then echo "$TANSU_BIN"; return; fi
  echo "$TANSU_ROOT/bin/tansu"
}

broker_install() {
  local bin
  bin=$(broker_bin)
  [ -x "$bin" ] && return 0
  echo "building the broker (tansu $TANSU_VERSION): once per machine"
  cargo install tansu --version "$TANSU_VERSION" --locked --features "$TANSU_FEATURES" \
    --root "$TANSU_ROOT" --quiet
}

# broker_run DIR PORT STORAGE [ARGS..]: a broker on 127.0.0.1:PORT in the background, run in DIR
# (where a relative storage path lands), logging to DIR/broker.log; its pid in BROKER_PID.
broker_run() {
  local dir=$1 port=$2 storage=$3 bin
  shift 3
  bin=$(broker_bin)
  (cd "$dir" && exec "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine "$storage" "$@") \
    >> "$dir/broker.log" 2>&1 &
  BROKER_PID=$!
}

# Waits until something listens on 127.0.0.1:$1.
broker_wait() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no broker on $1" >&2
  return 1
}

broker_start() {
  local port bin
  bin=$(broker_bin)
  port=$(free_port)
  broker_run "$SERVICES_DIR" "$port" memory://tansu/
  echo "$BROKER_PID" > "$SERVICES_DIR/broker.pid"
  broker_wait "$port"
  export TEST_KAFKA_BROKERS="127.0.0.1:$port"
  # Tests that stop and start a broker of their own run this binary.
  TEST_KAFKA_BIN=$bin
  export TEST_KAFKA_BIN
  echo "broker on $port"
}

# The user is created while the broker runs without sign-in, then it restarts on the same
# SQLite file with --authentication.
broker_start_scram() {
  local port bin dir
  bin=$(broker_bin)
  port=$(free_port)
  dir="$SERVICES_DIR/scram-broker"
  mkdir -p "$dir"
  TEST_KAFKA_SCRAM_USER=distributor
  TEST_KAFKA_SCRAM_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  broker_run "$dir" "$port" sqlite://tansu.db
  broker_wait "$port"
  "$bin" user create "$TEST_KAFKA_SCRAM_USER" "$TEST_KAFKA_SCRAM_PASSWORD" \
    --broker "tcp://127.0.0.1:$port" --mechanism scram512 > /dev/null
  kill "$BROKER_PID"
  wait "$BROKER_PID" 2>/dev/null || true
  broker_run "$dir" "$port" sqlite://tansu.db --authentication
  echo "$BROKER_PID" > "$SERVICES_DIR/scram-broker.pid"
  broker_wait "$port"
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
  local pidfile
  for pidfile in "${SERVICES_DIR:-}/broker.pid" "${SERVICES_DIR:-}/scram-broker.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  return 0
}
