#!/usr/bin/env bash
# Load benchmark: the release binary under wrk, one run per store setup, in one go so that the
# ratios compare like with like. Loopback only; every server it starts it stops by pid.
#
#   scripts/bench.sh [seconds per run, default 10] [connections, default 32]
#   SETUPS="memory fs-disk" scripts/bench.sh 5     # only some setups (memory is always run)
#   SETUPS="redis redis-tls redis-wait" scripts/bench.sh   # Redis plain, over TLS, with WAIT 1
#   OLD_BIN=path/to/older/session-server scripts/bench.sh   # adds memory-, fs-disk-, redis- and
#       one-session-lock-before: that build, each run right after today's, so the two face the same machine
#   POPULATE=1000000 SETUPS="fs-disk" scripts/bench.sh   # fs-disk's folder first filled with that
#       many other live sessions (examples/populate), to see the file store at scale
#
# For each setup it logs in one session per connection, then measures GET / (loads and writes
# the session on every request: the visit counter) and GET /api/session (loads it and slides the
# expiry), printing requests/s, p50/p99 latency, requests per server CPU-second, and each
# figure's ratio to the memory store's.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-32}
source scripts/lib.sh
SHM=$(mktemp -d /dev/shm/session-bench.XXXXXX)
EXTRA_CLEANUP+=("$SHM")

# wanted SETUP: whether SETUPS (when set) names it.
wanted() { [ -z "${SETUPS:-}" ] || [[ " $SETUPS " == *" $1 "* ]]; }

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
# measure SETUP ENDPOINT COOKIES: one wrk run; with a redis running, also the Redis commands it
# took per request.
measure() {
  local calls_before=0 per_request=- engine=
  if [ -n "$REDIS_PID" ]; then calls_before=$(redis_calls); fi
  # The engine's own CPU per request, for the capacity model (docs/scaling.md).
  case "$1" in
    *redis*) engine=$REDIS_PID ;;
    postgres*) engine=$POSTGRES_PID ;;
    memcached*) engine=${MEMCACHED_PID:-} ;;
  esac
  ENGINE_PID=$engine run_wrk "$2" "$3" "$DURATION" "$CONNS"
  if [ -n "$REDIS_PID" ] && [[ "$1" == *redis* ]]; then
    per_request=$(echo "scale=2; ($(redis_calls) - $calls_before) / $TOTAL" | bc -l)
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$RPS" "$P50" "$P99" "$PER_CPU" "$per_request" "$ENGINE_US" >> "$RESULTS"
}

# run_setup NAME SESSION_TOML FILESYSTEM_TOML [same-session]
run_setup() {
  if [ "$1" != memory ] && ! wanted "$1"; then return 0; fi
  start_server "$1" "$2" "$3"
  local cookies="$WORK/$1/cookies"
  if [ "${4:-}" = same-session ]; then
    login_sessions 1 "$cookies.one"
    for _ in $(seq "$CONNS"); do cat "$cookies.one"; done > "$cookies"
    measure "$1" / "$cookies"
  else
    login_sessions "$CONNS" "$cookies"
    measure "$1" / "$cookies"
    measure "$1" /api/session "$cookies"
  fi
  stop_server
}

echo "machine: $(nproc) cores; $DURATION s per run, $CONNS connections; repo disk: $(df --output=fstype . | tail -1), tmpfs at /dev/shm" >&2
# before NAME SESSION_TOML FILESYSTEM_TOML [same-session]: the same setup on OLD_BIN, when given.
before() {
  if [ -n "${OLD_BIN:-}" ] && { [ "$1" = memory ] || wanted "$1"; }; then
    SERVER_BIN=$OLD_BIN run_setup_named "$1-before" "${@:2}"
  fi
}
# run_setup_named: run_setup for a name that SETUPS need not list (the "-before" twins).
run_setup_named() {
  local name=$1
  shift
  SETUPS="${SETUPS:+$SETUPS }$name" run_setup "$name" "$@"
}
run_setup memory 'type = "memory"' ''
before memory 'type = "memory"' ''
if [ -n "${POPULATE:-}" ] && wanted fs-disk; then
  cargo build --release --quiet --example populate
  target/release/examples/populate "$WORK/fs-disk/sessions" "$POPULATE" >&2
fi
run_setup fs-disk 'type = "filesystem"' "dir = \"$WORK/fs-disk/sessions\""
before fs-disk 'type = "filesystem"' "dir = \"$WORK/fs-disk-before/sessions\""
if wanted redis; then
  start_redis
  run_setup redis "type = \"redis\"
[session.redis]
url = \"redis://127.0.0.1:$REDIS_PORT\"" ''
  before redis "type = \"redis\"
[session.redis]
url = \"redis://127.0.0.1:$REDIS_PORT\"" ''
  # The same Redis over TLS, and with every session write waiting for a replica (WAIT 1).
  if wanted redis-tls; then
    run_setup redis-tls "type = \"redis\"
[session.redis]
url = \"rediss://localhost:$REDIS_TLS_PORT\"
tls_ca_file = \"$WORK/tls/ca.pem\"" ''
  fi
  if wanted redis-wait; then
    start_replica
    run_setup redis-wait "type = \"redis\"
[session.redis]
url = \"redis://127.0.0.1:$REDIS_PORT\"
wait_replicas = 1" ''
  fi
fi
if wanted sqlite; then
  run_setup sqlite "type = \"sqlite\"
[session.sqlite]
path = \"$WORK/sqlite/sessions.db\"" ''
fi
if wanted postgres; then
  start_postgres
  run_setup postgres "type = \"postgres\"
[session.postgres]
url = \"$POSTGRES_URL\"" ''
fi
if wanted memcached; then
  start_memcached
  run_setup memcached "type = \"memcached\"
[session.memcached]
servers = [\"127.0.0.1:$MEMCACHED_PORT\"]" ''
fi
if wanted cookie; then
  run_setup cookie 'type = "cookie"' ''
fi
# The sweeper deleting 100k expired rows while GET / runs: p99 with the rows being swept
# against p99 of the same server just before (rows inserted straight into the table, the
# sweeper every 2 s, in batches of 1000).
SWEEP_ROWS=${SWEEP_ROWS:-100000}
run_sweep() {
  local name=$1 session_toml=$2 insert=$3 count=$4
  wanted "$name-sweep" || wanted sweep || return 0
  start_server "$name-sweep" "$session_toml" ''
  local cookies="$WORK/$name-sweep/cookies"
  login_sessions "$CONNS" "$cookies"
  measure "$name-quiet" / "$cookies"
  eval "$insert"
  echo "$name: $(eval "$count") expired rows inserted" >&2
  measure "$name-sweeping" / "$cookies"
  echo "$name: $(eval "$count") expired rows left after the run" >&2
  stop_server
}
if wanted sqlite || wanted sweep; then
  run_sweep sqlite "type = \"sqlite\"
[session.sqlite]
path = \"$WORK/sqlite-sweep/sessions.db\"
cleanup_interval = 2" \
    'python3 -c "import sqlite3; db = sqlite3.connect(\"$WORK/sqlite-sweep/sessions.db\", timeout=30); db.executemany(\"INSERT INTO sessions VALUES (?, 0, 1, ?)\", ((\"%064x\" % n, \"{}\") for n in range($SWEEP_ROWS))); db.commit()"' \
    'python3 -c "import sqlite3; print(sqlite3.connect(\"$WORK/sqlite-sweep/sessions.db\", timeout=30).execute(\"SELECT count(*) FROM sessions WHERE expires_at < 100\").fetchone()[0])"'
fi
if wanted postgres || wanted sweep; then
  [ -n "$POSTGRES_PID" ] || start_postgres
  runuser -u postgres -- psql -q "$POSTGRES_URL" -c 'DROP TABLE IF EXISTS sweep_sessions, sweep_sessions_users, sweep_sessions_throttle, sweep_sessions_locks, sweep_sessions_corrupt' 2>/dev/null || true
  run_sweep postgres "type = \"postgres\"
[session.postgres]
url = \"$POSTGRES_URL\"
table = \"sweep_sessions\"
cleanup_interval = 2" \
    'runuser -u postgres -- psql -q "$POSTGRES_URL" -c "INSERT INTO sweep_sessions SELECT md5(n::text) || md5((n + 1)::text), now() - interval '"'"'2 hours'"'"', now() - interval '"'"'1 hour'"'"', '"'"'{}'"'"'::jsonb FROM generate_series(1, $SWEEP_ROWS) n"' \
    'runuser -u postgres -- psql -qtA "$POSTGRES_URL" -c "SELECT count(*) FROM sweep_sessions WHERE expires_at < now() - interval '"'"'30 minutes'"'"'"'
fi
run_setup fs-tmpfs 'type = "filesystem"' "dir = \"$SHM/sessions\""
run_setup fs-disk-fsync 'type = "filesystem"' "dir = \"$WORK/fs-disk-fsync/sessions\"
durability = \"fsync\""
run_setup one-session-nolock 'type = "filesystem"
lock = false' "dir = \"$WORK/one-session-nolock/sessions\"" same-session
run_setup one-session-lock 'type = "filesystem"
lock = true' "dir = \"$WORK/one-session-lock/sessions\"" same-session
before one-session-lock 'type = "filesystem"
lock = true' "dir = \"$WORK/one-session-lock-before/sessions\"" same-session

# The peer: Flask 3 + Flask-Session 0.8 (filesystem) under gunicorn, 4 sync workers on 2 cores.
run_flask() {
  wanted flask || return 0
  local venv=target/flask-peer dir="$WORK/flask"
  if [ ! -x "$venv/bin/gunicorn" ]; then
    { python3 -m venv "$venv" && "$venv/bin/pip" install -q -r scripts/flask_peer/requirements.txt; } ||
      { echo "flask peer: could not be installed from PyPI; skipped" >&2; return 0; }
  fi
  mkdir -p "$dir/sessions"
  PORT=$(free_port)
  SESSION_FILE_DIR="$dir/sessions" "$venv/bin/gunicorn" -w 4 -b "127.0.0.1:$PORT" \
    --chdir scripts/flask_peer app:app 2>"$dir/server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
  : > "$dir/cookies"
  for i in $(seq "$CONNS"); do
    rm -f "$dir/jar"
    curl -fs -o /dev/null -c "$dir/jar" --data "user_id=bench$i" "http://127.0.0.1:$PORT/login"
    awk '$6 == "session" { print "session=" $7 }' "$dir/jar" >> "$dir/cookies"
  done
  measure flask-session / "$dir/cookies"
  measure flask-session /api/session "$dir/cookies"
  stop_server
}
run_flask

# The reference: actix-session's own RedisSessionStore against a plain in-memory store, in a
# minimal app with the same GET / workload (benches/actix-reference), on the same Redis.
run_reference() {
  wanted redis || return 0
  (cd benches/actix-reference && cargo build --release --quiet) ||
    { echo "actix reference: could not be built; skipped" >&2; return 0; }
  local store dir
  for store in memory redis; do
    dir="$WORK/actix-$store"
    mkdir -p "$dir"
    PORT=$(free_port)
    benches/actix-reference/target/release/actix-reference "$store" "127.0.0.1:$PORT" \
      "redis://127.0.0.1:$REDIS_PORT" 2>"$dir/server.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break; sleep 0.05; done
    : > "$dir/cookies"
    for _ in $(seq "$CONNS"); do
      rm -f "$dir/jar"
      curl -fs -o /dev/null -c "$dir/jar" "http://127.0.0.1:$PORT/"
      awk '$6 == "session" { print "session=" $7 }' "$dir/jar" >> "$dir/cookies"
    done
    measure "actix-$store" / "$dir/cookies"
    stop_server
  done
}
run_reference

# The table, with ratios to the memory store on the same endpoint.
awk -F'\t' '
  # wrk prints latencies as 850.00us, 1.23ms or 1.02s.
  function us(t) { if (t ~ /us$/) return t + 0; if (t ~ /ms$/) return t * 1000; if (t ~ /s$/) return t * 1000000; return t + 0 }
  $1 == "memory" { base_rps[$2] = $3; base_cpu[$2] = $6; base_p99[$2] = us($5) }
  $1 == "fs-disk" { fs_rps[$2] = $3 }
  $1 == "flask-session" { flask_rps[$2] = $3 }
  $1 == "redis" { redis_rps[$2] = $3 }
  $1 == "actix-memory" { actix_mem[$2] = $3 }
  $1 == "actix-redis" { actix_redis[$2] = $3 }
  { rows[NR] = $0 }
  END {
    printf "%-20s %-13s %10s %9s %9s %12s %9s %9s %9s %9s %9s\n", "setup", "endpoint", "req/s", "p50", "p99", "req/CPU-s", "rps/mem", "p99/mem", "cpu/mem", "redis/req", "eng-us/req"
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      r = (f[2] in base_rps) ? sprintf("%.2f", f[3] / base_rps[f[2]]) : "-"
      c = (f[2] in base_cpu) ? sprintf("%.2f", base_cpu[f[2]] / f[6]) : "-"
      l = (f[2] in base_p99 && base_p99[f[2]] > 0) ? sprintf("%.2f", us(f[5]) / base_p99[f[2]]) : "-"
      if (f[1] ~ /^actix-/) { r = (f[2] in actix_mem) ? sprintf("%.2f", f[3] / actix_mem[f[2]]) : "-"; c = "-"; l = "-" }
      printf "%-20s %-13s %10.0f %9s %9s %12s %9s %9s %9s %9s %9s\n", f[1], f[2], f[3], f[4], f[5], f[6], r, l, c, f[7], f[8]
    }
    for (p in flask_rps) if (p in fs_rps) printf "fs-disk / flask-session on %s: %.1fx\n", p, fs_rps[p] / flask_rps[p]
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      now[f[1] "\t" f[2]] = f[3]
    }
    for (k in now) {
      split(k, g, "\t")
      if (g[1] ~ /-before$/) {
        t = substr(g[1], 1, length(g[1]) - 7)
        if ((t "\t" g[2]) in now) printf "%s %s: this build / OLD_BIN: %.2fx req/s\n", t, g[2], now[t "\t" g[2]] / now[k]
      }
    }
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      if (f[1] ~ /-quiet$/) { quiet[substr(f[1], 1, length(f[1]) - 6)] = us(f[5]) }
      if (f[1] ~ /-sweeping$/) { sweeping[substr(f[1], 1, length(f[1]) - 9)] = us(f[5]) }
    }
    for (t in sweeping) if (t in quiet && quiet[t] > 0) printf "%s: p99 while the sweeper deletes the expired rows / p99 just before: %.2f (target < 2)\n", t, sweeping[t] / quiet[t]
    if ("/" in redis_rps && "/" in actix_redis && "/" in base_rps && "/" in actix_mem) {
      ours = redis_rps["/"] / base_rps["/"]; theirs = actix_redis["/"] / actix_mem["/"]
      printf "GET /: redis type at %.2fx of our memory store; actix-session RedisSessionStore at %.2fx of its memory store; ours/theirs %.2f (target >= 0.90)\n", ours, theirs, ours / theirs
    }
  }' "$RESULTS"
echo "(p99/mem: p99 latency relative to the memory store's, 2.00 = twice as long; cpu/mem: server CPU per request relative to the memory store's; 1.50 = 1.5x as much; actix-* rows: rps/mem against actix-memory; redis/req: Redis commands per request, INFO commandstats; eng-us/req: the engine's CPU microseconds per request)"
