# Sourced by scripts/test.sh and benches/*.sh after scripts/lib/services.sh: a Kafka-protocol
# broker (tansu, from crates.io) on loopback with in-memory storage, stopped with the services.
#   broker_install     builds tansu once (~16 min cold on 2 cores) unless a binary is there
#   broker_start       starts it; exports TEST_KAFKA_BROKERS (host:port)
#   broker_topics T..  creates topics (3 partitions each); tansu does not create them on use

TANSU_VERSION=0.6.0
# Where a built broker is kept: outside the work tree, so every clone reuses it.
TANSU_ROOT=${TANSU_ROOT:-${CARGO_HOME:-$HOME/.cargo}/tools/tansu-$TANSU_VERSION}

broker_bin() {
  if [ -n "${TANSU_BIN:-}" ] && [ -x "$TANSU_BIN" ]; then echo "$TANSU_BIN"; return; fi
  echo "$TANSU_ROOT/bin/tansu"
}

broker_install() {
  local bin
  bin=$(broker_bin)
  [ -x "$bin" ] && return 0
  echo "building the broker (tansu $TANSU_VERSION): once per machine"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore \
    --root "$TANSU_ROOT" --quiet
}

broker_start() {
  local port bin
  bin=$(broker_bin)
  port=$(free_port)
  "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ > "$SERVICES_DIR/broker.log" 2>&1 &
  echo $! > "$SERVICES_DIR/broker.pid"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  export TEST_KAFKA_BROKERS="127.0.0.1:$port"
  # Tests that stop and start a broker of their own run this binary.
  TEST_KAFKA_BIN=$bin
  export TEST_KAFKA_BIN
  echo "broker on $port"
}

broker_topics() {
  local bin topic
  bin=$(broker_bin)
  for topic in "$@"; do
    "$bin" topic create --broker "tcp://$TEST_KAFKA_BROKERS" --partitions 3 "$topic" >/dev/null
  done
}

broker_stop() {
  [ -f "${SERVICES_DIR:-}/broker.pid" ] || return 0
  kill "$(cat "$SERVICES_DIR/broker.pid")" 2>/dev/null || true
}
