# Shared by the load scripts in benches/ (sourced after scripts/lib/services.sh).

# bench_database sqlite|postgres DIR: exports SHIPGATE_DATABASE_URL, a fresh SQLite file in DIR or
# a fresh database on the PostgreSQL server the services started.
bench_database() {
  if [ "$1" = postgres ]; then
    local name="bench_$(date +%s)"
    psql -q "$TEST_POSTGRES_URL" -c "CREATE DATABASE $name"
    export SHIPGATE_DATABASE_URL="${TEST_POSTGRES_URL%/*}/$name${PG_URL_PARAMS:-}"
  else
    export SHIPGATE_DATABASE_URL="sqlite://$2/shipgate.db"
  fi
}

# wait_ready URL: waits up to 10 s for the server's /readyz.
wait_ready() {
  for _ in $(seq 100); do curl -fs "$1/readyz" >/dev/null && break; sleep 0.1; done
}

# peak_rss PID: the process's peak resident memory so far (VmHWM), for the report.
peak_rss() {
  awk '/^VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "n/a"
}

# rss PID: resident memory now (anonymous / file-backed / shared parts) and the peak so far, for
# a report line after each phase.
rss() {
  awk '/^VmRSS/ { now = $2 } /^VmHWM/ { peak = $2 } /^RssAnon/ { anon = $2 }
       /^RssFile/ { file = $2 } /^RssShmem/ { shmem = $2 }
       END { printf "%.0f MB now (anon %.0f, file %.0f, shmem %.0f), %.0f MB peak",
             now / 1024, anon / 1024, file / 1024, shmem / 1024, peak / 1024 }' \
    "/proc/$1/status" 2>/dev/null || echo "n/a"
}

# cpu_ticks PID: user + system CPU time the process has used, in clock ticks.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# pg_cpu_ticks: user + system CPU time the PostgreSQL server of the services has used (the
# postmaster, its live children and those it has reaped), in clock ticks.
pg_cpu_ticks() {
  local pm
  pm=$(head -n 1 "$SERVICES_DIR/pg/postmaster.pid")
  { cat "/proc/$pm/stat"; for c in $(pgrep -P "$pm"); do cat "/proc/$c/stat" 2>/dev/null; done; } \
    | awk '{ s += $14 + $15 + $16 + $17 } END { print s }'
}
