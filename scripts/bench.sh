#!/usr/bin/env bash
# Load benchmark: the release binary under wrk, one run per store setup, in one go so that the
# ratios compare like with like. Loopback only; every server it starts it stops by pid.
#
#   scripts/bench.sh [seconds per run, default 10] [connections, default 32]
#   SETUPS="memory fs-disk" scripts/bench.sh 5     # only some setups (memory is always run)
#
# For each setup it logs in one session per connection, then measures GET / (loads and writes
# the session on every request: the visit counter) and GET /api/session (loads it and slides the
# expiry), printing requests/s, p50/p99 latency, requests per server CPU-second, and each
# figure's ratio to the memory store's.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
CONNS=${2:-32}
THREADS=2
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: apt-get install -y curl" >&2; exit 1; }
cargo build --release --quiet
BIN=$PWD/target/release/session-server
WORK=$(mktemp -d "$PWD/target/bench.XXXXXX")
SHM=$(mktemp -d /dev/shm/session-bench.XXXXXX)
TICK=$(getconf CLK_TCK)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_server NAME SESSION_TOML FILESYSTEM_TOML
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
bcrypt_cost = 4
max_failed_logins = 100000
TOML
  RUST_LOG=warn "$BIN" --config "$dir/config.toml" 2>"$dir/server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server $name did not start:" >&2; cat "$dir/server.log" >&2; exit 1
}

stop_server() {
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

# login_sessions COUNT FILE: registers one user and logs in COUNT sessions, one cookie per line.
login_sessions() {
  local count=$1 out=$2 jar="$WORK/jar" base="http://127.0.0.1:$PORT"
  : > "$out"
  token() { grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
  rm -f "$jar"
  local t; t=$(curl -fs -c "$jar" -b "$jar" "$base/register" | token)
  curl -fs -o /dev/null -c "$jar" -b "$jar" --data "user_id=bench&user_name=Bench&password=benchmark-pw&repassword=benchmark-pw&csrf_token=$t" "$base/register"
  for _ in $(seq "$count"); do
    rm -f "$jar"
    t=$(curl -fs -c "$jar" -b "$jar" "$base/login" | token)
    curl -fs -o /dev/null -c "$jar" -b "$jar" --data "user_id=bench&password=benchmark-pw&csrf_token=$t" "$base/login"
    awk '$6 == "session" { print "session=" $7 }' "$jar" >> "$out"
  done
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
# measure SETUP ENDPOINT COOKIES
measure() {
  local setup=$1 path=$2 cookies=$3 before after out
  before=$(cpu_ticks "$SERVER_PID")
  out=$(COOKIE_FILE=$cookies WRK_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
        -s scripts/wrk-sessions.lua "http://127.0.0.1:$PORT$path")
  after=$(cpu_ticks "$SERVER_PID")
  echo "$out" | grep -q "Non-2xx" && { echo "$setup $path: errors:"; echo "$out"; } >&2
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  local total; total=$(echo "$out" | awk '/requests in/ {print $1}')
  local cpu; cpu=$(echo "($after - $before) / $TICK" | bc -l)
  local per_cpu; per_cpu=$(echo "$total / $cpu" | bc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%.0f\n' "$setup" "$path" "$rps" "$p50" "$p99" "$per_cpu" >> "$RESULTS"
}

# run_setup NAME SESSION_TOML FILESYSTEM_TOML [same-session]
run_setup() {
  if [ -n "${SETUPS:-}" ] && [ "$1" != memory ] && [[ " $SETUPS " != *" $1 "* ]]; then return 0; fi
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
run_setup memory 'type = "memory"' ''
run_setup fs-disk 'type = "filesystem"' "dir = \"$WORK/fs-disk/sessions\""
run_setup fs-tmpfs 'type = "filesystem"' "dir = \"$SHM/sessions\""
run_setup fs-disk-fsync 'type = "filesystem"' "dir = \"$WORK/fs-disk-fsync/sessions\"
durability = \"fsync\""
run_setup one-session-nolock 'type = "filesystem"
lock = false' "dir = \"$WORK/one-session-nolock/sessions\"" same-session
run_setup one-session-lock 'type = "filesystem"
lock = true' "dir = \"$WORK/one-session-lock/sessions\"" same-session

# The table, with ratios to the memory store on the same endpoint.
awk -F'\t' '
  $1 == "memory" { base_rps[$2] = $3; base_cpu[$2] = $6 }
  { rows[NR] = $0 }
  END {
    printf "%-20s %-13s %10s %9s %9s %12s %9s %9s\n", "setup", "endpoint", "req/s", "p50", "p99", "req/CPU-s", "rps/mem", "cpu/mem"
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      r = (f[2] in base_rps) ? sprintf("%.2f", f[3] / base_rps[f[2]]) : "-"
      c = (f[2] in base_cpu) ? sprintf("%.2f", base_cpu[f[2]] / f[6]) : "-"
      printf "%-20s %-13s %10.0f %9s %9s %12s %9s %9s\n", f[1], f[2], f[3], f[4], f[5], f[6], r, c
    }
  }' "$RESULTS"
echo "(cpu/mem: server CPU per request relative to the memory store's; 1.50 = 1.5x as much)"
