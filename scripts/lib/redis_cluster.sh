# Sourced after scripts/lib/services.sh: a Redis Cluster on loopback from Debian's redis-server,
# three masters with a replica each, failing over after a second.
#   redis_cluster_start [DIR]  starts it (in DIR, default $SERVICES_DIR/cluster); exports
#                              TEST_REDIS_CLUSTER_URL (the six nodes' URLs, comma-separated)
#   redis_cluster_stop [DIR]   stops every node started in DIR

# A port whose cluster bus port (port + 10000) is free too.
cluster_port() {
  python3 - <<'PY'
import random, socket
while True:
    p = random.randint(20000, 29999)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p)
        break
    except OSError:
        pass
PY
}

redis_cluster_start() {
  local dir=${1:-$SERVICES_DIR/cluster} ports=() port role
  mkdir -p "$dir"
  for _ in 1 2 3 4 5 6; do
    port=$(cluster_port)
    ports+=("$port")
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --cluster-enabled yes \
      --cluster-config-file "$dir/nodes-$port.conf" --cluster-node-timeout 1000 \
      --pidfile "$dir/redis-$port.pid" --save "" --appendonly no --dir "$dir" \
      --logfile "$dir/redis-$port.log"
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 1 \
    --cluster-yes >/dev/null
  # Ready: every node sees the cluster whole, and every replica has its master's data.
  for port in "${ports[@]}"; do
    for _ in $(seq 200); do
      role=$(redis-cli -p "$port" role | head -n 1)
      if redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' &&
        { [ "$role" = master ] ||
          redis-cli -p "$port" info replication | grep -q 'master_link_status:up'; }; then
        break
      fi
      sleep 0.05
    done
  done
  TEST_REDIS_CLUSTER_URL=$(printf 'redis://127.0.0.1:%s,' "${ports[@]}")
  export TEST_REDIS_CLUSTER_URL=${TEST_REDIS_CLUSTER_URL%,}
  echo "Redis Cluster on ${ports[*]}"
}

redis_cluster_stop() {
  local dir=${1:-${SERVICES_DIR:-}/cluster} pid
  for pid in "$dir"/redis-*.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
}
