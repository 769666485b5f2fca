# Shared by the benchmark scripts: start and stop the release server, log sessions in, run wrk.
# Loopback only; every server started here is stopped by its pid. Source it after `cd` to the
# repo root; it sets WORK (a scratch folder removed on exit) and BIN.

set -euo pipefail
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: apt-get install -y curl" >&2; exit 1; }
cargo build --release --quiet --bin session-server
BIN=$PWD/target/release/session-server
WORK=$(mktemp -d "$PWD/target/bench.XXXXXX")
TICK=$(getconf CLK_TCK)
THREADS=2
SERVER_PID=
EXTRA_CLEANUP=()
REDIS_PID=
REPLICA_PID=
POSTGRES_PID=
MEMCACHED_PID=
cleanup() {
  local pid
  for pid in "$SERVER_PID" "$REDIS_PID" "$REPLICA_PID" "$MEMCACHED_PID"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  # The postmaster runs as postgres, under runuser: stop it by the pid it wrote, fast.
  if [ -n "$POSTGRES_PID" ]; then
    kill -INT "$POSTGRES_PID" 2>/dev/null || true
    while kill -0 "$POSTGRES_PID" 2>/dev/null; do sleep 0.05; done
  fi
  rm -rf "$WORK" "${EXTRA_CLEANUP[@]}"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU time (ticks) of a server and its worker processes (gunicorn has several).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$p/stat") ))
  done
  echo "$total"
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# start_server NAME SESSION_TOML FILESYSTEM_TOML: sets PORT, SERVER_PID, STARTUP_MS. Runs
# $SERVER_BIN when set (another build, for a before/after comparison in one run), else $BIN;
# passwords at $BCRYPT_COST (default 4: the benchmarks measure sessions, not bcrypt).
start_server() {
  local name=$1 dir="$WORK/$1"
  mkdir -p "$dir"
  PORT=$(free_port)
  cat > "$dir/config.toml" <<TOML
[server]
bind = "127.0.0.1:$PORT"
workers = 2
[session]
permanent = true
lifetime = 3600
$2
[session.filesystem]
$3
[auth]
bcrypt_cost = ${BCRYPT_COST:-4}
max_failed_logins = 100000
TOML
  local t0; t0=$(date +%s%N)
  RUST_LOG=${SERVER_LOG:-warn} "${SERVER_BIN:-$BIN}" --config "$dir/config.toml" 2>"$dir/server.log" &
  SERVER_PID=$!
  for _ in $(seq 300); do
    if curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
      STARTUP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
      return 0
    fi
    sleep 0.02
  done
  echo "server $name did not start:" >&2; cat "$dir/server.log" >&2; exit 1
}

stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

# login_sessions COUNT FILE: registers one user and logs in COUNT sessions, one cookie per line.
login_sessions() {
  local count=$1 out=$2 jar="$WORK/jar" base="http://127.0.0.1:$PORT" t
  token() { grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
  : > "$out"
  rm -f "$jar"
  t=$(curl -fs -c "$jar" -b "$jar" "$base/register" | token)
  curl -fs -o /dev/null -c "$jar" -b "$jar" --data "user_id=bench&user_name=Bench&password=benchmark-pw&repassword=benchmark-pw&csrf_token=$t" "$base/register" || true
  for _ in $(seq "$count"); do
    rm -f "$jar"
    t=$(curl -fs -c "$jar" -b "$jar" "$base/login" | token)
    curl -fs -o /dev/null -c "$jar" -b "$jar" --data "user_id=bench&password=benchmark-pw&csrf_token=$t" "$base/login"
    awk '$6 == "session" { print "session=" $7 }' "$jar" >> "$out"
  done
}

# run_wrk PATH COOKIES SECONDS CONNS: sets RPS, P50, P99, PER_CPU (requests per server CPU-second)
# and TOTAL (requests made); with ENGINE_PID set, also ENGINE_US: the engine's CPU microseconds
# per request (its processes' user + system time over the run).
run_wrk() {
  local path=$1 cookies=$2 secs=$3 conns=$4 before after out total cpu engine_before=0
  if [ -n "${ENGINE_PID:-}" ]; then engine_before=$(cpu_ticks "$ENGINE_PID"); fi
  before=$(cpu_ticks "$SERVER_PID")
  out=$(COOKIE_FILE=$cookies WRK_THREADS=$THREADS wrk -t"$THREADS" -c"$conns" -d"${secs}s" --latency \
        -s scripts/wrk-sessions.lua "http://127.0.0.1:$PORT$path")
  after=$(cpu_ticks "$SERVER_PID")
  if echo "$out" | grep -q "Non-2xx"; then echo "errors on $path:" >&2; echo "$out" >&2; fi
  RPS=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  P99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  cpu=$(echo "($after - $before) / $TICK" | bc -l)
  PER_CPU=$(printf '%.0f' "$(echo "$total / $cpu" | bc -l)")
  TOTAL=$total
  ENGINE_US=-
  if [ -n "${ENGINE_PID:-}" ]; then
    ENGINE_US=$(printf '%.1f' "$(echo "($(cpu_ticks "$ENGINE_PID") - $engine_before) / $TICK * 1000000 / $total" | bc -l)")
  fi
}

# start_redis: a throw-away redis-server on a free loopback port, and with TLS on a second one
# (certificates made now with openssl: $WORK/tls/ca.pem signed the server's, for localhost);
# sets REDIS_PORT, REDIS_TLS_PORT, REDIS_PID.
start_redis() {
  command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
  command -v openssl >/dev/null || { echo "openssl is missing: apt-get install -y openssl" >&2; exit 1; }
  REDIS_PORT=$(free_port)
  REDIS_TLS_PORT=$(free_port)
  mkdir -p "$WORK/redis" "$WORK/tls"
  (
    cd "$WORK/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA"
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
      -days 2 -extfile san.ext
  ) >/dev/null 2>&1
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$WORK/tls/server.pem" \
    --tls-key-file "$WORK/tls/server.key" --tls-ca-cert-file "$WORK/tls/ca.pem" \
    --tls-auth-clients no --dir "$WORK/redis" --logfile "$WORK/redis/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "redis-server did not start" >&2; exit 1
}

# start_replica: a replica of start_redis's server, for wait_replicas; sets REPLICA_PID.
start_replica() {
  local port; port=$(free_port)
  mkdir -p "$WORK/replica"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --replicaof 127.0.0.1 "$REDIS_PORT" --dir "$WORK/replica" --logfile "$WORK/replica/redis.log" &
  REPLICA_PID=$!
  for _ in $(seq 200); do
    redis-cli -p "$port" info replication 2>/dev/null | grep -q 'master_link_status:up' && return 0
    sleep 0.05
  done
  echo "the replica did not sync" >&2; exit 1
}

# start_postgres: a throw-away PostgreSQL 15 cluster (fsync off, trust auth on loopback and its
# own socket folder) on a free loopback port; sets POSTGRES_URL, POSTGRES_PID. PostgreSQL refuses
# root, so it runs as the postgres user. PG_EXTRA adds settings for one run, e.g.
# PG_EXTRA="-c autovacuum=off".
start_postgres() {
  local bin=/usr/lib/postgresql/15/bin dir="$WORK/postgres"
  [ -x "$bin/initdb" ] || { echo "postgresql is missing: apt-get install -y postgresql" >&2; exit 1; }
  local port; port=$(free_port)
  mkdir -p "$dir"
  chown postgres "$dir"
  chmod 755 "$WORK"
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1
  runuser -u postgres -- "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c full_page_writes=off -c max_connections=200 ${PG_EXTRA:-} >"$dir/postgres.log" 2>&1 &
  for _ in $(seq 200); do
    if [ -s "$dir/data/postmaster.pid" ] && runuser -u postgres -- "$bin/pg_isready" -q -h "$dir" -p "$port"; then
      POSTGRES_PID=$(head -1 "$dir/data/postmaster.pid")
      POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
    sleep 0.05
  done
  echo "postgres did not start:" >&2; cat "$dir/postgres.log" >&2; exit 1
}

# start_memcached: a throw-away memcached on a free loopback port; sets MEMCACHED_PORT,
# MEMCACHED_PID. As root it must be told which user to run as.
start_memcached() {
  command -v memcached >/dev/null || { echo "memcached is missing: apt-get install -y memcached" >&2; exit 1; }
  MEMCACHED_PORT=$(free_port)
  memcached -u root -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 256 -c 4096 &
  MEMCACHED_PID=$!
  for _ in $(seq 100); do
    { exec 3<>"/dev/tcp/127.0.0.1/$MEMCACHED_PORT"; } 2>/dev/null && { exec 3>&-; return 0; }
    sleep 0.05
  done
  echo "memcached did not start" >&2; exit 1
}

# redis_calls: how many commands the redis of start_redis has run (INFO itself excluded).
redis_calls() {
  redis-cli -p "$REDIS_PORT" info commandstats |
    awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" { n += $3 } END { print n + 0 }'
}
